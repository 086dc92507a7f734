"""Lottery use cases: buy a ticket (numbers chosen or picked at random) for a game's next
draw from the wallet, the draw calendar, import a draw from the lottery centre once it has
been held (by hand or by the worker on schedule), pay winnings into wallets with the prize
tax withheld, and let the winner of a large prize claim it with their identity card.

A ticket is a partner order to the lottery centre: the hold moves its cost from the
wallet towards what the platform owes the centre; the centre's serial number is the
receipt. Sales stop at the game's cut-off before each draw. When a draw is imported,
every sold ticket of that issue is settled once (the ticket row records its prize under
a row lock): winnings are posted from what the centre owes the platform into the wallet,
with an id derived from the ticket, so a second import pays nothing twice. The tax
(``model.prize_tax``) goes to the tax payable account in the same posting. A prize above
the claim threshold is recorded, not paid: the winner claims it within 60 days with the
wallet's verified real name and identity card, and the same posting pays it then.

When the centre refuses a ticket because it closed the draw's sales (before the game's
own cut-off), the issue is marked closed: later tickets are refused before any money is
held, instead of each being sold and refunded.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import insert, select, update

from mobipay.kernel.clock import SHANGHAI, as_utc
from mobipay.kernel.errors import IdempotencyConflict, MobipayError
from mobipay.kernel.events import SmsRequested
from mobipay.kernel.ids import check_idempotency_key
from mobipay.ledger.chart import PAYABLE_LOTTERY, PAYABLE_PRIZE_TAX, RECEIVABLE_LOTTERY
from mobipay.ledger.model import Leg, Transfer
from mobipay.ledger.uow import UnitOfWork, UnitOfWorkRunner
from mobipay.lottery import errors
from mobipay.lottery.gateway import CENTRE, CentrePartner, LotteryCentre
from mobipay.lottery.model import CLAIM_DAYS, GAMES, Game, Winnings, game, same_ticket_request, ticket_cost
from mobipay.lottery.tables import closed_issues, draws, tickets
from mobipay.orders.model import OrderState
from mobipay.orders.service import OrderBook, PartnerOrder
from mobipay.orders.service import order_id as make_order_id
from mobipay.platform.db import dialect_insert
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
    prize: int | None  # gross; None until the draw is imported
    tier: int | None
    tax: int = 0  # withheld from the prize
    claim_required: bool = False  # a prize above the claim threshold: paid when claimed
    claimed_at: datetime | None = None
    claim_by: datetime | None = None  # the last moment to claim

    @property
    def paid(self) -> int:
        """What reached the wallet: the prize less its tax, once paid (a claim pending: 0)."""
        if not self.prize or (self.claim_required and self.claimed_at is None):
            return 0
        return self.prize - self.tax


@dataclass(frozen=True, slots=True)
class DrawSlot:
    """One draw of the calendar: on sale, upcoming, closed early by the centre, or drawn."""

    game: str
    issue: str
    sales_close: datetime
    draw_at: datetime
    state: str  # on_sale | upcoming | closed | awaiting_results | drawn
    numbers: list[list[int]] | None = None


@dataclass(frozen=True, slots=True)
class DrawResult:
    game: str
    issue: str
    numbers: list[list[int]]
    tickets: int
    winners: int
    paid: int  # into wallets now, after tax
    tax: int = 0
    claims: int = 0  # large prizes waiting for their winners to claim them


class LotteryService:
    def __init__(self, uow: UnitOfWorkRunner, wallet: WalletService, orders: OrderBook,
                 centre: LotteryCentre, claim_threshold: int = 1_000_000) -> None:
        self.claim_threshold = claim_threshold  # fen: a prize above it waits for a claim
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
                  multiplier: int = 1, idempotency_key: str, pin: str | None = None, issue: str | None = None
                  ) -> Ticket:
        """A ticket for the next draw: the bets given, and/or ``quick_picks`` random ones. The
        same Idempotency-Key and request is the first ticket again (``replayed``, whatever
        was picked at random); the same key for another request is ``IDEMPOTENCY_CONFLICT``.
        With ``issue`` (the draw the buyer was shown, on a form or in an SMS), a ticket for
        any other draw is ``SALES_CLOSED``: its sales closed in between, and the buyer did not
        ask for the next one."""
        g, on_sale, close, _ = self.on_sale(code)
        shown, issue = issue, on_sale
        check_idempotency_key(idempotency_key)
        quick_picks = max(0, quick_picks)
        given = [g.check_bet(b) for b in (bets or [])]
        request = ([[list(part) for part in bet] for bet in given], quick_picks, multiplier)
        order_id = make_order_id("lt_", me.user_id, idempotency_key)
        known = await self.orders.get(order_id)
        if known is not None:
            return await self._replay(known, g, *request)
        if shown is not None and shown != issue:
            raise errors.SalesClosed(f"sales for {g.name} {shown} have closed; the draw on sale is {issue}",
                                     field="game")
        chosen = given + [g.quick_pick() for _ in range(quick_picks)]
        cost = ticket_cost(len(chosen), multiplier)
        if await self._closed(g.code, issue):
            raise errors.SalesClosed(f"the lottery centre closed sales for {g.name} {issue}; the next draw goes on "
                                     f"sale after {close:%H:%M}", field="game")
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

    async def ticket(self, me: Principal, ticket_id: str) -> Ticket:
        """One of my tickets; another subscriber's looks exactly like a missing one."""
        order = await self.orders.get(ticket_id)
        if order is None or order.kind != KIND or order.user_id != me.user_id:
            raise errors.TicketNotFound("no such ticket in your wallet", field="ticket_id")
        return await self._ticket(order)

    async def _ticket(self, order: PartnerOrder) -> Ticket:
        async def work(uow: UnitOfWork) -> Any:
            return (await uow.conn.execute(select(tickets).where(tickets.c.order_id == order.id))).first()

        row = await self.uow.run("ticket", work)
        d = order.details
        claim_by = None
        if row is not None and row.claim_required:
            _, draw_at = game(d["game"]).draw_of(d["issue"], SHANGHAI)
            claim_by = draw_at + timedelta(days=CLAIM_DAYS)
        return Ticket(order, d["game"], d["issue"], d["bets"], d["multiplier"], row.prize if row else None,
                      row.tier if row else None, tax=row.tax if row else 0,
                      claim_required=bool(row.claim_required) if row else False,
                      claimed_at=as_utc(row.claimed_at) if row is not None and row.claimed_at else None,
                      claim_by=claim_by)

    # ------------------------------------------------------------------ the draw calendar

    async def calendar(self, code: str | None = None, *, upcoming: int = 5, past_days: int = 7) -> list[DrawSlot]:
        """Each game's draws (or one game's): the last ``past_days`` days with their numbers
        once imported, the one on sale and the next ``upcoming`` after it, with cut-offs."""
        now = self.uow.clock.now().astimezone(SHANGHAI)
        chosen = [game(code)] if code else list(GAMES.values())

        async def work(uow: UnitOfWork) -> tuple[dict[tuple[str, str], str], set[tuple[str, str]]]:
            codes = [g.code for g in chosen]
            drawn = {(r.game, r.issue): r.numbers for r in await uow.conn.execute(
                select(draws.c.game, draws.c.issue, draws.c.numbers).where(
                    draws.c.game.in_(codes), draws.c.imported_at >= now - timedelta(days=past_days + 1)))}
            closed = {(r.game, r.issue) for r in await uow.conn.execute(
                select(closed_issues.c.game, closed_issues.c.issue).where(closed_issues.c.game.in_(codes)))}
            return drawn, closed

        drawn, closed = await self.uow.run("lottery_calendar", work)
        out = []
        for g in chosen:
            for issue, close, draw_at in g.draws_between(now - timedelta(days=past_days), now):
                if close <= now:
                    numbers = drawn.get((g.code, issue))
                    out.append(DrawSlot(g.code, issue, close, draw_at, "drawn" if numbers else "awaiting_results",
                                        json.loads(numbers) if numbers else None))
            for n, (issue, close, draw_at) in enumerate(g.draws_from(now)):
                if n > upcoming:
                    break
                state = "closed" if (g.code, issue) in closed else "on_sale" if n == 0 else "upcoming"
                out.append(DrawSlot(g.code, issue, close, draw_at, state))
        return out

    async def drawn(self, code: str, issue: str) -> tuple[datetime, list[list[int]] | None]:
        """A draw's time and, once imported, its numbers (``UNKNOWN_GAME`` / ``UNKNOWN_ISSUE``
        for a draw that does not exist): campaign prize draws name one as their randomness."""
        g = game(code)
        _, draw_at = g.draw_of(issue, SHANGHAI)

        async def work(uow: UnitOfWork) -> str | None:
            row = (await uow.conn.execute(select(draws.c.numbers).where(draws.c.game == g.code,
                                                                        draws.c.issue == issue))).first()
            return None if row is None else str(row[0])

        numbers = await self.uow.run("lottery_drawn", work)
        return draw_at, json.loads(numbers) if numbers else None

    async def _closed(self, code: str, issue: str) -> bool:
        async def work(uow: UnitOfWork) -> bool:
            return (await uow.conn.execute(select(closed_issues.c.issue).where(
                closed_issues.c.game == code, closed_issues.c.issue == issue))).first() is not None

        return await self.uow.run("lottery_closed", work)

    # ------------------------------------------------------------------ draws and prizes

    async def import_due(self, past_days: int = 7) -> list[DrawResult]:
        """The worker's round: import every draw of the last ``past_days`` days that has been
        held and is not yet imported. A draw the centre has not published yet (or a centre
        that does not answer) is tried again next round; importing again pays nothing twice."""
        now = self.uow.clock.now().astimezone(SHANGHAI)

        async def work(uow: UnitOfWork) -> set[tuple[str, str]]:
            rows = await uow.conn.execute(select(draws.c.game, draws.c.issue).where(
                draws.c.imported_at >= now - timedelta(days=past_days + 1)))
            return {(r.game, r.issue) for r in rows}

        known = await self.uow.run("lottery_imported", work)
        due = [(g.code, issue) for g in GAMES.values()
               for issue, _, draw_at in g.draws_between(now - timedelta(days=past_days), now)
               if draw_at <= now and (g.code, issue) not in known]
        results = []
        for code, issue in due:
            try:
                results.append(await self.import_draw(code, issue))
            except errors.DrawNotFound:
                log.info("lottery.draw_not_published", game=code, issue=issue)
            except MobipayError as exc:  # the centre not answering: one line, and the whole round next time
                log.warning("lottery.draw_import_failed", game=code, issue=issue, code=exc.code,
                            waiting=len(due) - len(results))
                break
        return results

    async def import_draw(self, code: str, issue: str) -> DrawResult:
        """Fetch a held draw from the centre, keep it, and settle every ticket sold for it.
        Refused before the draw time: numbers published early would settle tickets still on
        sale."""
        g = game(code)
        _, draw_at = g.draw_of(issue, SHANGHAI)
        if self.uow.clock.now() < draw_at:
            raise errors.DrawNotDue(f"{g.name} {issue} is drawn at {draw_at:%Y-%m-%d %H:%M} Beijing time; import it "
                                    "after that", field="issue")
        draw = await self.centre.draw(g.code, issue)
        if draw is None:
            raise errors.DrawNotFound(f"{g.name} {issue} has not been published yet; try again later", field="issue")
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
        winners = paid = tax = claims = 0
        for order_id in open_tickets:
            order = await self.orders.get(order_id)
            if order is None or order.state is not OrderState.SUCCEEDED:
                continue  # not sold (or not yet known to be): settled when it is, by a later import
            won, claim = await self._settle_ticket(g, drawn, draw.prizes, order)
            winners += won.gross > 0
            if claim:
                claims += 1
            else:
                paid += won.net
                tax += won.tax
        log.info("lottery.draw_imported", game=g.code, issue=issue, tickets=len(open_tickets), winners=winners,
                 claims=claims)
        return DrawResult(g.code, issue, draw.numbers, len(open_tickets), winners, paid, tax, claims)

    async def _settle_ticket(self, g: Game, drawn: tuple[tuple[int, ...], ...], floating: dict[int, int],
                             order: PartnerOrder) -> tuple[Winnings, bool]:
        """Record a ticket's prize once; pay it now, or (above the claim threshold) wait for
        the winner's claim. Returns the winnings and whether they wait for a claim."""
        won = g.winnings([g.check_bet(b) for b in order.details["bets"]], drawn, floating,
                         int(order.details["multiplier"]))
        claim = won.gross > self.claim_threshold
        winner = await self.wallet.principal(order.user_id)  # before the transaction: one at a time on SQLite

        async def work(uow: UnitOfWork) -> bool:
            row = (await uow.conn.execute(select(tickets).where(tickets.c.order_id == order.id)
                                          .with_for_update())).one()
            if row.prize is not None:
                return False  # settled by another import
            await uow.conn.execute(update(tickets).where(tickets.c.order_id == order.id).values(
                prize=won.gross, tax=won.tax, tier=won.tier, claim_required=claim, settled_at=uow.now))
            if claim:
                _, draw_at = g.draw_of(order.details["issue"], SHANGHAI)
                await uow.emit(SmsRequested(key=f"{order.id}:claim", to=order.msisdn, template="lottery.claim",
                                            params={"game": g.name, "issue": order.details["issue"],
                                                    "amount_fen": won.gross, "tax_fen": won.tax, "tier": won.tier,
                                                    "until": f"{draw_at + timedelta(days=CLAIM_DAYS):%Y-%m-%d}"}))
            elif won.gross:
                await self._pay(uow, g, order, won, winner.account_code)
            return True

        settled = await self.uow.run("settle_ticket", work)
        return (won, claim) if settled else (Winnings(0, 0, 0), False)

    async def _pay(self, uow: UnitOfWork, g: Game, order: PartnerOrder, won: Winnings, account: str) -> None:
        """The prize posting: the centre owes the gross, the wallet gets it less the tax, the
        tax office is owed the tax. One id per ticket: paying twice is impossible."""
        issue = order.details["issue"]
        legs = [Leg.debit(RECEIVABLE_LOTTERY, won.gross), Leg.credit(account, won.net)]
        if won.tax:
            legs.append(Leg.credit(PAYABLE_PRIZE_TAX, won.tax))
        reference = f"{g.name} {issue}" + (f" (prize {won.gross / 100:.2f}, tax {won.tax / 100:.2f} withheld)"
                                           if won.tax else "")
        [result] = await uow.post([Transfer(f"prize:{order.id}", tuple(legs), "lottery.prize", reference=reference,
                                            metadata={"gross_fen": won.gross, "tax_fen": won.tax,
                                                      "ticket": order.id})])
        if result.error is not None:
            raise result.error
        await uow.emit(SmsRequested(key=f"{order.id}:won", to=order.msisdn,
                                    template="lottery.won_taxed" if won.tax else "lottery.won",
                                    params={"game": g.name, "issue": issue, "amount_fen": won.net,
                                            "tax_fen": won.tax, "tier": won.tier}))

    async def claim(self, me: Principal, ticket_id: str, *, name: object, id_number: object) -> Ticket:
        """Claim a large prize: the claimant must be the wallet's verified real name and
        identity card; the prize less its tax is paid at once. Claiming again answers the
        paid ticket (the ticket's row lock and the posting's id keep it to one payment)."""
        ticket = await self.ticket(me, ticket_id)
        if not ticket.claim_required:
            raise errors.NothingToClaim("this ticket's prize, if any, was paid without a claim", field="ticket_id")
        if ticket.claimed_at is not None:
            return ticket
        assert ticket.claim_by is not None  # a claim always has its deadline
        if self.uow.clock.now() >= ticket.claim_by:
            raise errors.ClaimExpired(f"the claim period ended on {ticket.claim_by:%Y-%m-%d}", field="ticket_id")
        await self.wallet.check_claimant(me.user_id, name, id_number)
        g = game(ticket.game)
        won = Winnings(ticket.prize or 0, ticket.tax, ticket.tier or 0)

        async def work(uow: UnitOfWork) -> None:
            row = (await uow.conn.execute(select(tickets).where(tickets.c.order_id == ticket.order.id)
                                          .with_for_update())).one()
            if row.claimed_at is not None:
                return  # a concurrent claim paid it
            await uow.conn.execute(update(tickets).where(tickets.c.order_id == ticket.order.id).values(
                claimed_at=uow.now))
            await self._pay(uow, g, ticket.order, won, me.account_code)

        await self.uow.run("claim_prize", work)
        log.info("lottery.prize_claimed", ticket=ticket.order.id, gross=won.gross, tax=won.tax)
        return await self._ticket(ticket.order)

    async def _settled(self, uow: UnitOfWork, order: PartnerOrder, state: OrderState) -> None:
        if state is OrderState.FAILED:
            await self.wallet.uncount_payment(uow, order.user_id, order.amount, as_utc(order.created_at))
            await uow.conn.execute(update(tickets).where(tickets.c.order_id == order.id).values(
                prize=0, tier=0, settled_at=uow.now))  # never drawn for: not a ticket
            if order.reason == "sales_closed":  # the centre closed this draw early: stop selling it
                ins = dialect_insert(uow.conn.dialect.name, closed_issues)
                await uow.conn.execute(ins.values(game=order.details["game"], issue=order.details["issue"],
                                                  closed_at=uow.now, reason=order.reason).on_conflict_do_nothing())
        await uow.emit(SmsRequested(key=f"{order.id}:{state.value}", to=order.msisdn, template=f"lottery.{state.value}",
                                    params={"game": game(order.details["game"]).name, "issue": order.details["issue"],
                                            "serial": order.partner_ref}))
