"""The ``BillerGateway`` port: fetch a customer's bill, pay it, ask about a payment, get the
daily file; and its adapter to the partner-order engine, where each biller is the partner
``biller:<CODE>``. Unclear answers are UNKNOWN: the payment stays pending until settled.
"""

from __future__ import annotations

from datetime import date
from typing import Protocol

from mobipay.bills.model import Bill
from mobipay.orders.model import PartnerAnswer
from mobipay.orders.service import PartnerOrder, StatementLine

PREFIX = "biller"


def partner_name(code: str) -> str:
    return f"{PREFIX}:{code}"


class BillerGateway(Protocol):
    async def fetch(self, biller: str, customer_id: str) -> Bill | None:
        """The open bill, None when there is none; raises ``PARTNER_UNAVAILABLE`` without an answer."""
        ...

    async def pay(self, order_id: str, biller: str, customer_id: str, amount: int, bill_number: str
                  ) -> PartnerAnswer: ...

    async def query(self, order_id: str, biller: str) -> PartnerAnswer: ...

    async def statement(self, biller: str, day: date) -> list[StatementLine]: ...


class BillerPartner:
    """Billers as the order book sees them, each through the adapter its registry row names."""

    def __init__(self, adapters: dict[str, BillerGateway]) -> None:
        self.adapters = adapters

    async def submit(self, order: PartnerOrder) -> PartnerAnswer:
        d = order.details
        return await self.adapters[d["adapter"]].pay(order.id, d["biller"], d["customer_id"], order.amount,
                                                     d.get("bill_number", ""))

    async def query(self, order: PartnerOrder) -> PartnerAnswer:
        return await self.adapters[order.details["adapter"]].query(order.id, order.details["biller"])
