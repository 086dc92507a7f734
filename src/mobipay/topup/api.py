"""Top-up HTTP API: quote, top up (Idempotency-Key required), follow my top-ups.

A top-up answers 201 when the partner confirmed it, 202 while its outcome is unknown
(poll ``GET /v1/topups/{id}``; the platform keeps asking), 200 for a replay, and 422
``TOPUP_FAILED`` (with ``order_id``) when the partner refused it: the money is back.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from mobipay.kernel.msisdn import mask_msisdn
from mobipay.orders.api import answer_order
from mobipay.orders.service import PartnerOrder
from mobipay.platform.api_common import PENDING, IdemKey, MoneyIn, MoneyOut, from_container, require_key
from mobipay.topup.errors import TopupFailed
from mobipay.topup.service import TopupService
from mobipay.wallet.api_deps import Me

router = APIRouter(prefix="/v1", tags=["top-up"])


TopupDep = Annotated[TopupService, from_container("topup")]


class QuoteOut(BaseModel):
    msisdn: str = Field(description="The number, masked")
    operator: str
    route: Literal["operator_billing", "topup_aggregator"]
    face: MoneyOut
    price: MoneyOut = Field(description="What the wallet pays")
    discount: MoneyOut
    rule: str = Field(description="The price rule applied, if any")


class TopupIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    msisdn: str = Field(max_length=32, description="Any mainland mobile number (your own or another's)")
    amount: MoneyIn = Field(description="Face value, whole yuan: 10, 20, 30, 50, 100, 200, 300, 500 CNY or any "
                            "amount within the bounds")
    pin: str | None = Field(default=None, max_length=12, description="Needed when the price is over the "
                            "password-free amount")


class TopupOut(BaseModel):
    id: str
    msisdn: str = Field(description="The topped-up number, masked")
    operator: str
    face: MoneyOut
    price: MoneyOut
    state: Literal["pending", "succeeded", "failed"]
    partner_ref: str
    reason: str
    created_at: datetime
    settled_at: datetime | None


def _money(amount: int) -> MoneyOut:
    return MoneyOut(amount=amount, currency="CNY")


def _out(o: PartnerOrder) -> TopupOut:
    d = o.details
    return TopupOut(id=o.id, msisdn=mask_msisdn(d["msisdn"]), operator=d["operator"], face=_money(o.amount),
                    price=_money(d["price"]), state=o.state.value, partner_ref=o.partner_ref, reason=o.reason,
                    created_at=o.created_at, settled_at=o.settled_at)


@router.get("/topup/quote", response_model=QuoteOut, summary="Price and route of a top-up, before paying")
async def quote(me: Me, service: TopupDep, msisdn: Annotated[str, Query(max_length=32)],
                amount: Annotated[int, Query(description="Face value in fen")]) -> QuoteOut:
    q = service.quote(msisdn, amount)
    return QuoteOut(msisdn=mask_msisdn(q.msisdn), operator=q.operator, route=q.route.value, face=_money(q.face),
                    price=_money(q.price), discount=_money(q.discount), rule=q.rule)


@router.post("/topups", response_model=TopupOut, status_code=201, responses=PENDING,
             summary="Top up a mobile number from the wallet (Idempotency-Key required)")
async def topup(body: TopupIn, response: Response, me: Me, service: TopupDep, idempotency_key: IdemKey = None
                ) -> TopupOut:
    order = await service.topup(me, body.msisdn, body.amount.amount, idempotency_key=require_key(idempotency_key),
                                pin=body.pin)
    answer_order(order, response, TopupFailed, "the operator")
    return _out(order)


@router.get("/topups", response_model=list[TopupOut], summary="My top-ups, newest first")
async def mine(me: Me, service: TopupDep) -> list[TopupOut]:
    return [_out(o) for o in await service.mine(me)]


@router.get("/topups/{order_id}", response_model=TopupOut, summary="One top-up; a pending one is checked first")
async def get(order_id: str, me: Me, service: TopupDep) -> TopupOut:
    return _out(await service.get(me, order_id))
