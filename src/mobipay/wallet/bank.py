"""The ``BankGateway`` port: what the wallet needs from a partner bank, as types.

Cash-in debits the subscriber's card and cash-out credits it; both are named by our
order id, which the bank keeps unique, so sending an order again never moves money twice.
A money call returns what the bank said, or ``UNKNOWN`` when it said nothing we can
trust (timeout, connection error, 5xx, a reply whose signature does not verify). Unknown
is not failure: the order stays pending until a status query or the daily file settles it.

The real adapter is ``bank_http.HttpBankGateway``; ``simulators/bank.py`` plays the bank.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date
from typing import Protocol


class BankStatus(enum.StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PROCESSING = "processing"  # accepted, not finished: ask again later
    NOT_FOUND = "not_found"  # the bank has no such order (it never arrived)
    UNKNOWN = "unknown"  # no trustworthy answer


@dataclass(frozen=True, slots=True)
class BankAnswer:
    order_id: str
    status: BankStatus
    bank_ref: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class CardCheck:
    """The bank's answer to "is this card this person's?" (four elements: card, name,
    identity card, phone). ``token`` names the card in later orders; the number is not kept."""

    verified: bool
    token: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class StatementLine:
    order_id: str
    bank_ref: str
    kind: str  # debit (cash-in) | credit (cash-out)
    amount: int
    status: BankStatus


class BankGateway(Protocol):
    async def verify_card(self, card_number: str, name: str, id_number: str, phone: str) -> CardCheck:
        """Raises ``BANK_UNAVAILABLE`` when the bank does not answer (nothing was bound)."""
        ...

    async def debit(self, order_id: str, token: str, amount: int) -> BankAnswer: ...

    async def credit(self, order_id: str, token: str, amount: int) -> BankAnswer: ...

    async def query(self, order_id: str) -> BankAnswer: ...

    async def statement(self, day: date) -> list[StatementLine]:
        """The bank's daily file for ``day``; raises ``BANK_UNAVAILABLE`` if it cannot be had."""
        ...
