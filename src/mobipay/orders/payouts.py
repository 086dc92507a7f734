"""The bank's payout call (money to a company's account) as a partner of the order book.

One client for every context that pays companies out: the merchants' T+1 settlement and the
SPs' monthly settlement each register it under their own partner name, so their orders and
the bank file's lines stay apart.
"""

from __future__ import annotations

from mobipay.orders.model import PartnerAnswer
from mobipay.orders.service import PartnerOrder
from mobipay.orders.signed_http import SignedClient


class BankPayouts:
    """``POST /v1/payouts`` ``{order_id, account, amount}`` and its query (docs/bank-protocol.md)."""

    def __init__(self, base_url: str, secret: bytes, *, partner: str = "bank_payout", timeout_s: float = 5.0) -> None:
        self.http = SignedClient(partner, base_url, secret, timeout_s=timeout_s)

    async def close(self) -> None:
        await self.http.close()

    async def submit(self, order: PartnerOrder) -> PartnerAnswer:
        return await self.http.order("POST", "/v1/payouts", order.id, {
            "order_id": order.id, "account": order.details["account"], "amount": order.amount})

    async def query(self, order: PartnerOrder) -> PartnerAnswer:
        return await self.http.order("GET", f"/v1/orders/{order.id}", order.id)
