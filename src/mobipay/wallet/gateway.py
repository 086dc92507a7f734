"""The ``BankGateway`` port: what the wallet needs from a partner bank, and the adapter of
it to the partner-order engine (``orders/service.py``).

Cash-in debits the subscriber's card and cash-out credits it; both are named by our
order id, which the bank keeps unique, so sending an order again never moves money twice.
A money call returns what the bank said, or ``UNKNOWN`` when it said nothing we can
trust (timeout, connection error, 5xx, a reply whose signature does not verify). Unknown
is not failure: the order stays pending until a status query or the daily file settles it.

The real adapter is ``bank_http.HttpBankGateway``; ``simulators/bank.py`` plays the bank.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Protocol

from mobipay.orders.model import PartnerAnswer
from mobipay.orders.service import PartnerOrder, StatementLine

BANK = "bank"  # the partner's name in the order book


@dataclass(frozen=True, slots=True)
class CardCheck:
    """The bank's answer to "is this card this person's?" (four elements: card, name,
    identity card, phone). ``token`` names the card in later orders; the number is not kept."""

    verified: bool
    token: str = ""
    reason: str = ""


class BankGateway(Protocol):
    async def verify_card(self, card_number: str, name: str, id_number: str, phone: str) -> CardCheck:
        """Raises ``BANK_UNAVAILABLE`` when the bank does not answer (nothing was bound)."""
        ...

    async def debit(self, order_id: str, token: str, amount: int) -> PartnerAnswer: ...

    async def credit(self, order_id: str, token: str, amount: int) -> PartnerAnswer: ...

    async def query(self, order_id: str) -> PartnerAnswer: ...

    async def statement(self, day: date) -> list[StatementLine]:
        """The bank's daily file for ``day``; raises ``BANK_UNAVAILABLE`` if it cannot be had."""
        ...


class BankPartner:
    """The bank as the order book sees it: cash-in debits the card, the others credit it."""

    def __init__(self, gateway: BankGateway) -> None:
        self.gateway = gateway

    async def submit(self, order: PartnerOrder) -> PartnerAnswer:
        token = str(order.details["token"])
        if order.kind == "cash_in":
            return await self.gateway.debit(order.id, token, order.amount)
        return await self.gateway.credit(order.id, token, order.amount)

    async def query(self, order: PartnerOrder) -> PartnerAnswer:
        return await self.gateway.query(order.id)
