"""The ``TopupGateway`` port: a partner that credits a phone number's operator balance
(the home operator's billing system, or an aggregator for other operators' numbers), and
its adapter to the partner-order engine. Same rules as every partner order: our order id
is the partner's idempotency key; an unclear answer is UNKNOWN and the order stays pending.
"""

from __future__ import annotations

from datetime import date
from typing import Protocol

from mobipay.orders.model import PartnerAnswer
from mobipay.orders.service import PartnerOrder, StatementLine


class TopupGateway(Protocol):
    async def recharge(self, order_id: str, msisdn: str, amount: int) -> PartnerAnswer: ...

    async def query(self, order_id: str) -> PartnerAnswer: ...

    async def statement(self, day: date) -> list[StatementLine]:
        """The partner's daily file; raises ``PARTNER_UNAVAILABLE`` if it cannot be had."""
        ...


class TopupPartner:
    """A top-up gateway as the order book sees it."""

    def __init__(self, gateway: TopupGateway) -> None:
        self.gateway = gateway

    async def submit(self, order: PartnerOrder) -> PartnerAnswer:
        return await self.gateway.recharge(order.id, str(order.details["msisdn"]), order.amount)

    async def query(self, order: PartnerOrder) -> PartnerAnswer:
        return await self.gateway.query(order.id)
