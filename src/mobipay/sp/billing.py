"""The ``PhoneBilling`` port: the operator's billing system, which puts SP information fees
on subscribers' phone bills (代收费) and gives them back. A billing run sends its lines in
chunks; the billing system keeps each line's id unique, so sending a chunk again (after a
crash, a lost reply) charges nothing twice. Anything untrustworthy is ``None``: the charge
stays ``submitted`` and the next run asks again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class BillLine:
    id: str  # our charge id: the billing system's idempotency key
    msisdn: str
    amount: int  # fen; a refund line is the amount given back
    sp_code: str
    service: str


@dataclass(frozen=True, slots=True)
class LineAnswer:
    id: str
    charged: bool
    reason: str = ""  # why the billing system refused it (number suspended, cancelled)


class PhoneBilling(Protocol):
    async def charge(self, lines: Sequence[BillLine]) -> list[LineAnswer] | None:
        """Put the lines on the phone bills; None when no trustworthy answer came."""
        ...

    async def refund(self, line: BillLine) -> LineAnswer | None:
        """Give an amount back on the phone bill (a waiver, a double refund)."""
        ...
