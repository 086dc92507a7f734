"""The bank for agents' float: float bought from the bank debits the agent's verified bank
card (``POST /v1/debits``), float sold to the bank is paid to the agent's bank account with
the payout call every context shares (``orders/payouts.py``). Both are orders of the order
book under the partner name ``rural_bank``, in the bank's daily file with the others.
"""

from __future__ import annotations

import json

from mobipay.orders.model import PartnerAnswer
from mobipay.orders.payouts import BankPayouts
from mobipay.orders.service import PartnerOrder
from mobipay.orders.signed_http import NO_ANSWER
from mobipay.rural import errors

PARTNER = "rural_bank"
BUY, SELL = "rural.float_buy", "rural.float_sell"


class RuralBank(BankPayouts):
    """The bank's calls for agents' float (docs/bank-protocol.md), on the shared payout client."""

    def __init__(self, base_url: str, secret: bytes, *, timeout_s: float = 5.0) -> None:
        super().__init__(base_url, secret, partner=PARTNER, timeout_s=timeout_s)

    async def verify_card(self, card_number: str, name: str, id_number: str, phone: str) -> str:
        """The bank's token of the agent's card (four elements checked), or ``AGENT_BANK_CARD_REJECTED``."""
        try:
            status, body = await self.http.call("POST", "/v1/cards/verify", {
                "card_number": card_number, "name": name, "id_number": id_number, "phone": phone})
        except NO_ANSWER as exc:
            raise errors.BankCardRejected(f"the bank did not answer ({type(exc).__name__}): try again") from exc
        data = json.loads(body) if status == 200 else {}
        if data.get("result") != "verified":
            raise errors.BankCardRejected(f"the bank said {data.get('reason') or status}", field="card_number")
        return str(data["token"])

    async def submit(self, order: PartnerOrder) -> PartnerAnswer:
        if order.kind == BUY:
            return await self.http.order("POST", "/v1/debits", order.id, {
                "order_id": order.id, "token": order.details["token"], "amount": order.amount})
        return await super().submit(order)
