"""The ``LotteryCentre`` port: sell a ticket (the centre's serial number is the receipt),
ask about it, publish a draw; and its adapter to the partner-order engine."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from mobipay.orders.model import PartnerAnswer
from mobipay.orders.service import PartnerOrder, StatementLine

CENTRE = "lottery_centre"


@dataclass(frozen=True, slots=True)
class Draw:
    game: str
    issue: str
    numbers: list[list[int]]
    prizes: dict[int, int]  # floating tier -> prize per bet, fen


class LotteryCentre(Protocol):
    async def sell(self, order_id: str, amount: int, ticket: dict[str, Any]) -> PartnerAnswer: ...

    async def query(self, order_id: str) -> PartnerAnswer: ...

    async def draw(self, game: str, issue: str) -> Draw | None:
        """The published draw, None while there is none; ``PARTNER_UNAVAILABLE`` without an answer."""
        ...

    async def statement(self, day: date) -> list[StatementLine]: ...


#: What the lottery centre is sent of a ticket order's details.
TICKET_FIELDS = ("game", "issue", "bets", "multiplier")


class CentrePartner:
    def __init__(self, centre: LotteryCentre) -> None:
        self.centre = centre

    async def submit(self, order: PartnerOrder) -> PartnerAnswer:
        # The ticket as the centre knows it; the order also keeps how it was asked for.
        ticket = {k: order.details[k] for k in TICKET_FIELDS}
        return await self.centre.sell(order.id, order.amount, ticket)

    async def query(self, order: PartnerOrder) -> PartnerAnswer:
        return await self.centre.query(order.id)
