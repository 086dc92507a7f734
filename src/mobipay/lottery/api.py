"""Lottery HTTP API: games and the draw on sale, the draw calendar with results, buy a ticket
(numbers chosen and/or quick picks; Idempotency-Key required), my tickets with their
prizes and the tax withheld, and the claim of a large prize with the identity card."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from mobipay.lottery import errors
from mobipay.lottery.model import GAMES, MAX_BETS, MAX_MULTIPLIER
from mobipay.lottery.service import DrawSlot, LotteryService, Ticket
from mobipay.orders.api import answer_order
from mobipay.platform.api_common import PENDING, IdemKey, MoneyOut, from_container, require_key
from mobipay.wallet.api_deps import Me

router = APIRouter(prefix="/v1/lottery", tags=["lottery"])


LotteryDep = Annotated[LotteryService, from_container("lottery")]


class GameOut(BaseModel):
    code: str
    name: str
    pools: list[dict[str, int]] = Field(description="Per group: pick N numbers from low to high")
    issue: str = Field(description="The draw on sale now")
    sales_close: datetime
    draw_at: datetime


class TicketIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    game: str = Field(max_length=8, examples=["ssq"])
    bets: list[list[list[Any]]] = Field(default=[], max_length=MAX_BETS,
                                        description="Chosen bets, e.g. [[[1,5,12,19,27,33],[9]]] for 双色球")
    quick_picks: int = Field(default=0, ge=0, le=MAX_BETS, description="Random bets to add (机选)")
    multiplier: int = Field(default=1, ge=1, le=MAX_MULTIPLIER)
    pin: str | None = Field(default=None, max_length=12)
    issue: str | None = Field(default=None, max_length=8, description="The draw the buyer was shown: if its sales "
                              "closed meanwhile, SALES_CLOSED instead of a ticket for the next draw")


class DrawOut(BaseModel):
    game: str
    issue: str
    sales_close: datetime
    draw_at: datetime
    state: Literal["on_sale", "upcoming", "closed", "awaiting_results", "drawn"] = Field(
        description="on_sale: tickets are sold for it now; upcoming: after it; closed: the lottery centre closed "
        "its sales early; awaiting_results: held, the numbers not yet imported; drawn: with its numbers")
    numbers: list[list[int]] | None = None


class ClaimIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=64, description="The wallet's verified real name")
    id_number: str = Field(max_length=32, description="The identity card number of the wallet's verified owner")


class TicketOut(BaseModel):
    id: str
    game: str
    issue: str
    bets: list[list[list[int]]]
    multiplier: int
    cost: MoneyOut
    state: Literal["pending", "succeeded", "failed"]
    serial: str = Field(description="The lottery centre's serial number")
    prize: MoneyOut | None = Field(description="The prize before tax; None until the draw is imported")
    tax: MoneyOut | None = Field(default=None, description="Income tax withheld: 20% of each bet's prize above "
                                 "10,000 CNY")
    paid: MoneyOut | None = Field(default=None, description="What reached the wallet (the prize less its tax)")
    claim: Literal["not_needed", "waiting", "claimed", "expired"] = Field(
        default="not_needed", description="A prize above the claim threshold waits for the winner to claim it "
        "(POST …/claim) until claim_by")
    claim_by: datetime | None = None
    created_at: datetime


def _money(amount: int | None) -> MoneyOut | None:
    return MoneyOut(amount=amount, currency="CNY") if amount is not None else None


def _out(t: Ticket, now: datetime) -> TicketOut:
    claim: Literal["not_needed", "waiting", "claimed", "expired"] = "not_needed"
    if t.claim_required:
        claim = "claimed" if t.claimed_at else "expired" if t.claim_by and now >= t.claim_by else "waiting"
    return TicketOut(id=t.order.id, game=t.game, issue=t.issue, bets=t.bets, multiplier=t.multiplier,
                     cost=MoneyOut(amount=t.order.amount, currency="CNY"), state=t.order.state.value,
                     serial=t.order.partner_ref, created_at=t.order.created_at, prize=_money(t.prize),
                     tax=_money(t.tax if t.prize else None), paid=_money(t.paid if t.prize is not None else None),
                     claim=claim, claim_by=t.claim_by)


def _draw(d: DrawSlot) -> DrawOut:
    return DrawOut(game=d.game, issue=d.issue, sales_close=d.sales_close, draw_at=d.draw_at, state=d.state,
                   numbers=d.numbers)


@router.get("/games", response_model=list[GameOut], summary="Games and the draw on sale for each")
async def games(service: LotteryDep) -> list[GameOut]:
    out = []
    for code in GAMES:
        g, issue, close, draw_at = service.on_sale(code)
        out.append(GameOut(code=g.code, name=g.name, issue=issue, sales_close=close, draw_at=draw_at,
                           pools=[{"pick": p.pick, "low": p.low, "high": p.high} for p in g.pools]))
    return out


@router.post("/tickets", response_model=TicketOut, status_code=201, responses=PENDING,
             summary="Buy a ticket for the next draw (Idempotency-Key required)")
async def buy(body: TicketIn, response: Response, me: Me, service: LotteryDep, idempotency_key: IdemKey = None
              ) -> TicketOut:
    ticket = await service.buy(me, body.game, bets=body.bets, quick_picks=body.quick_picks,
                               multiplier=body.multiplier, idempotency_key=require_key(idempotency_key), pin=body.pin,
                               issue=body.issue)
    answer_order(ticket.order, response, errors.TicketRejected, "the lottery centre")
    return _out(ticket, service.uow.clock.now())


@router.get("/tickets", response_model=list[TicketOut], summary="My tickets, newest first, with prizes")
async def mine(me: Me, service: LotteryDep) -> list[TicketOut]:
    now = service.uow.clock.now()
    return [_out(t, now) for t in await service.mine(me)]


@router.get("/tickets/{ticket_id}", response_model=TicketOut, summary="One of my tickets",
            responses={404: {"description": "No such ticket in your wallet"}})
async def one(ticket_id: Annotated[str, Path(max_length=64)], me: Me, service: LotteryDep) -> TicketOut:
    return _out(await service.ticket(me, ticket_id), service.uow.clock.now())


@router.post("/tickets/{ticket_id}/claim", response_model=TicketOut,
             summary="Claim a large prize with the wallet's verified real name and identity card",
             responses={403: {"description": "The wallet has no verified real name"},
                        404: {"description": "No such ticket in your wallet"},
                        409: {"description": "Nothing to claim on this ticket"},
                        422: {"description": "Not the wallet's identity, or the claim period is over"}})
async def claim(ticket_id: Annotated[str, Path(max_length=64)], body: ClaimIn, me: Me, service: LotteryDep
                ) -> TicketOut:
    """Safe to repeat: a claimed prize is answered as claimed, never paid twice."""
    ticket = await service.claim(me, ticket_id, name=body.name, id_number=body.id_number)
    return _out(ticket, service.uow.clock.now())


@router.get("/draws", response_model=list[DrawOut],
            summary="The draw calendar: last week's draws with their numbers, the one on sale, the next ones")
async def calendar(service: LotteryDep, game: Annotated[str | None, Query(max_length=8)] = None,
                   upcoming: Annotated[int, Query(ge=0, le=30)] = 5) -> list[DrawOut]:
    return [_draw(d) for d in await service.calendar(game, upcoming=upcoming)]
