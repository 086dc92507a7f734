"""Lottery use cases: buy a ticket (numbers chosen or picked at random) for a game's next
draw from the wallet, import a draw from the lottery centre, pay winnings into wallets.

A ticket is a partner order to the lottery centre: the hold moves its cost from the
wallet towards what the platform owes the centre; the centre's serial number is the
receipt. Sales stop at the game's cut-off before each draw. When a draw is imported,
every sold ticket of that issue is settled once (the ticket row records its prize under
a row lock): winnings are posted from what the centre owes the platform into the wallet,
with an id derived from the ticket, so a second import pays nothing twice.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import insert, select, update

from mobipay.kernel.clock import SHANGHAI, as_utc
from mobipay.kernel.errors import IdempotencyConflict
from mobipay.kernel.events import SmsRequested
from mobipay.kernel.ids import check_idempotency_key
from mobipay.ledger.chart import PAYABLE_LOTTERY, RECEIVABLE_LOTTERY
from mobipay.ledger.model import Leg, Transfer
from mobipay.ledger.uow import UnitOfWork, UnitOfWorkRunner
from mobipay.lottery import errors
from mobipay.lottery.gateway import CENTRE, CentrePartner, LotteryCentre
from mobipay.lottery.model import Game, game, same_ticket_request, ticket_cost
from mobipay.lottery.tables import draws, tickets
from mobipay.orders.model import OrderState
from mobipay.orders.service import OrderBook, PartnerOrder
from mobipay.orders.service import order_id as make_order_id
from mobipay.wallet.service import Principal, WalletService

log = structlog.get_logger(__name__)
KIND = "lottery"


@dataclass(frozen=True, slots=True)
class Ticket:
    order: PartnerOrder
    game: str
    issue: str
    bets: list[list[list[int]]]
    multiplier: int
    prize: int | None
    tier: int | None


@dataclass(frozen=True, slots=True)
class DrawResult:
    game: str
    issue: str
    numbers: list[list[int]]
    tickets: int
    winners: int
    paid: int


class LotteryService:
    def __init__(self, uow: UnitOfWorkRunner, wallet: WalletService, orders: OrderBook,
                 centre: LotteryCentre) -> None:
        self.uow = uow
        self.wallet = wallet
        self.orders = orders
        self.centre = centre
        orders.register(CENTRE, CentrePartner(centre))
        orders.on_settled(KIND, self._settled)

    def on_sale(self, code: str) -> tuple[Game, str, datetime, datetime]:
        """The game, the issue on sale now, its sales cut-off and its draw time."""
        g = game(code)
        issue, close, draw_at = g.next_draw(self.uow.clock.now().astimezone(SHANGHAI))
        return g, issue, close, draw_at

    async def buy(self, me: Principal, code: str, *, bets: list[Any] | None = None, quick_picks: int = 0,
                  multiplier: int = 1, idempotency_key: str, pin: str | None = None) -> Ticket:
        """A ticket for the next draw: the bets given, and/or ``quick_picks`` random ones. The
        same Idempotency-Key and request is the first ticket again (``replayed``, whatever
        was picked at random); the same key for another request is ``IDEMPOTENCY_CONFLICT``."""
        g, issue, close, _ = self.on_sale(code)
        check_idempotency_key(idempotency_key)
        quick_picks = max(0, quick_picks)
        given = [g.check_bet(b) for b in (bets or [])]
        request = ([[list(part) for part in bet] for bet in given], quick_picks, multiplier)
        order_id = make_order_id("lt_", me.user_id, idempotency_key)
        known = await self.orders.get(order_id)
        if known is not None:
            return await self._replay(known, g, *request)
        chosen = given + [g.quick_pick() for _ in range(quick_picks)]
        cost = ticket_cost(len(chosen), multiplier)
        payer = await self.wallet.authorize_payment(me, cost, pin)
        if self.uow.clock.now() >= close:
            raise errors.SalesClosed(f"sales for {g.name} {issue} closed at {close:%H:%M}", field="game")
        as_lists = [[list(part) for part in bet] for bet in chosen]

        async def record(uow: UnitOfWork) -> None:
            await self.wallet.count_payment(uow, payer, cost)
            await uow.conn.execute(insert(tickets).values(
                order_id=order_id, user_id=payer.id, game=g.code, issue=issue, bets=json.dumps(as_lists),
                multiplier=multiplier, cost=cost))

        try:
            order = await self.orders.place(
                order_id, partner=CENTRE, kind=KIND, user_id=payer.id, msisdn=payer.msisdn, amount=cost, fee=0,
                legs=[Leg.debit(payer.account_code, cost), Leg.credit(PAYABLE_LOTTERY, cost)], then=record,
                details={"game": g.code, "issue": issue, "bets": as_lists, "multiplier": multiplier,
                         "quick_picks": quick_picks},
                reference=f"{g.name} {issue}")
        except IdempotencyConflict:
            # The same key placed a moment ago by a concurrent request: its random picks differ
            # from ours, so compare the requests, not the tickets.
            known = await self.orders.get(order_id)
            if known is None:
                raise
            return await self._replay(known, g, *request)
        return await self._ticket(order)

    async def _replay(self, known: PartnerOrder, g: Game, chosen: list[list[list[int]]], quick_picks: int,
                      multiplier: int) -> Ticket:
        if known.kind != KIND or not same_ticket_request(known.details, g.code, chosen, quick_picks, multiplier):
            raise IdempotencyConflict("this Idempotency-Key was used for another ticket (game, numbers, quick "
                                      "picks or multiplier): use a new key for a new ticket", field="Idempotency-Key")
        return await self._ticket(dataclasses.replace(known, replayed=True))

    async def mine(self, me: Principal) -> list[Ticket]:
        return [await self._ticket(o) for o in await self.orders.of_user(me.user_id, (KIND,))]

    async def _ticket(self, order: PartnerOrder) -> Ticket:
        async def work(uow: UnitOfWork) -> Any:
            return (await uow.conn.execute(select(tickets).where(tickets.c.order_id == order.id))).first()

        row = await self.uow.run("ticket", work)
        d = order.details
        return Ticket(order, d["game"], d["issue"], d["bets"], d["multiplier"], row.prize if row else None,
                      row.tier if row else None)

    async def import_draw(self, code: str, issue: str) -> DrawResult:
        """Fetch a draw from the centre, keep it, and settle every ticket sold for it."""
        g = game(code)
        draw = await self.centre.draw(g.code, issue)
        if draw is None:
            raise errors.DrawNotFound(f"{g.name} {issue} has not been drawn yet", field="issue")
        drawn = g.check_bet(draw.numbers)

        async def keep(uow: UnitOfWork) -> list[str]:
            known = (await uow.conn.execute(select(draws.c.issue).where(draws.c.game == g.code,
                                                                        draws.c.issue == issue))).first()
            if known is None:
                await uow.conn.execute(insert(draws).values(game=g.code, issue=issue, numbers=json.dumps(draw.numbers),
                                                            prizes=json.dumps(draw.prizes), imported_at=uow.now))
            rows = await uow.conn.execute(select(tickets.c.order_id).where(
                tickets.c.game == g.code, tickets.c.issue == issue, tickets.c.prize.is_(None)))
            return [r[0] for r in rows]

        open_tickets = await self.uow.run("import_draw", keep)
        winners = paid = 0
        for order_id in open_tickets:
            order = await self.orders.get(order_id)
            if order is None or order.state is not OrderState.SUCCEEDED:
                continue  # not sold (or not yet known to be): settled when it is, by a later import
            prize = await self._settle_ticket(g, drawn, draw.prizes, order)
            winners += prize > 0
            paid += prize
        log.info("lottery.draw_imported", game=g.code, issue=issue, tickets=len(open_tickets), winners=winners)
        return DrawResult(g.code, issue, draw.numbers, len(open_tickets), winners, paid)

    async def _settle_ticket(self, g: Game, drawn: tuple[tuple[int, ...], ...], floating: dict[int, int],
                             order: PartnerOrder) -> int:
        bets = [g.check_bet(b) for b in order.details["bets"]]
        won = [g.prize(b, drawn, floating) for b in bets]
        multiplier = int(order.details["multiplier"])
        prize = sum(amount for _, amount in won) * multiplier
        tier = min((t for t, amount in won if amount), default=0)
        winner = await self.wallet.principal(order.user_id)  # before the transaction: one at a time on SQLite

        async def work(uow: UnitOfWork) -> int:
            row = (await uow.conn.execute(select(tickets).where(tickets.c.order_id == order.id)
                                          .with_for_update())).one()
            if row.prize is not None:
                return 0  # settled by another import
            await uow.conn.execute(update(tickets).where(tickets.c.order_id == order.id).values(
                prize=prize, tier=tier, settled_at=uow.now))
            if prize:
                [result] = await uow.post([Transfer(f"prize:{order.id}", (Leg.debit(RECEIVABLE_LOTTERY, prize),
                                                                          Leg.credit(winner.account_code, prize)),
                                                    "lottery.prize", reference=f"{g.name} {order.details['issue']}")])
                if result.error is not None:
                    raise result.error
                await uow.emit(SmsRequested(key=f"{order.id}:won", to=order.msisdn, template="lottery.won",
                                            params={"game": g.name, "issue": order.details["issue"],
                                                    "amount_fen": prize, "tier": tier}))
            return prize

        return await self.uow.run("settle_ticket", work)

    async def _settled(self, uow: UnitOfWork, order: PartnerOrder, state: OrderState) -> None:
        if state is OrderState.FAILED:
            await self.wallet.uncount_payment(uow, order.user_id, order.amount, as_utc(order.created_at))
            await uow.conn.execute(update(tickets).where(tickets.c.order_id == order.id).values(
                prize=0, tier=0, settled_at=uow.now))  # never drawn for: not a ticket
        await uow.emit(SmsRequested(key=f"{order.id}:{state.value}", to=order.msisdn, template=f"lottery.{state.value}",
                                    params={"game": order.details["game"], "issue": order.details["issue"],
                                            "serial": order.partner_ref}))
