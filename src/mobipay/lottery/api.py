"""Lottery HTTP API: games and the draw on sale, buy a ticket (numbers chosen and/or quick
picks; Idempotency-Key required), my tickets with their prizes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from mobipay.lottery import errors
from mobipay.lottery.model import GAMES, MAX_BETS, MAX_MULTIPLIER
from mobipay.lottery.service import LotteryService, Ticket
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


class TicketOut(BaseModel):
    id: str
    game: str
    issue: str
    bets: list[list[list[int]]]
    multiplier: int
    cost: MoneyOut
    state: Literal["pending", "succeeded", "failed"]
    serial: str = Field(description="The lottery centre's serial number")
    prize: MoneyOut | None = Field(description="None until the draw is imported")
    created_at: datetime


def _out(t: Ticket) -> TicketOut:
    return TicketOut(id=t.order.id, game=t.game, issue=t.issue, bets=t.bets, multiplier=t.multiplier,
                     cost=MoneyOut(amount=t.order.amount, currency="CNY"), state=t.order.state.value,
                     serial=t.order.partner_ref, created_at=t.order.created_at,
                     prize=MoneyOut(amount=t.prize, currency="CNY") if t.prize is not None else None)


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
                               multiplier=body.multiplier, idempotency_key=require_key(idempotency_key), pin=body.pin)
    answer_order(ticket.order, response, errors.TicketRejected, "the lottery centre")
    return _out(ticket)


@router.get("/tickets", response_model=list[TicketOut], summary="My tickets, newest first, with prizes")
async def mine(me: Me, service: LotteryDep) -> list[TicketOut]:
    return [_out(t) for t in await service.mine(me)]
