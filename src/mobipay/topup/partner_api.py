"""Partner API: internet partners sell phone top-up with their own key and commission.

Requests are signed (see ``topup/partners.py``): ``X-Partner-Id``, ``X-Timestamp``,
``X-Nonce``, ``X-Signature``. ``partner_order_id`` is the idempotency key: the same one
returns the same top-up (200); 201 when credited, 202 while the outcome is unknown (poll
``GET /v1/partner/topups/{partner_order_id}``), 422 ``TOPUP_FAILED`` when refused (the
deposit is not charged).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from mobipay.kernel.msisdn import mask_msisdn
from mobipay.orders.api import answer_order
from mobipay.orders.service import PartnerOrder
from mobipay.platform.api_common import PENDING, MoneyIn, MoneyOut, from_container
from mobipay.topup.errors import TopupFailed
from mobipay.topup.partners import Partner, TopupPartners

router = APIRouter(prefix="/v1/partner", tags=["top-up partners"])


async def partner(request: Request, x_partner_id: Annotated[str, Header(max_length=40)] = "",
                  x_timestamp: Annotated[str, Header(max_length=16)] = "",
                  x_nonce: Annotated[str, Header(max_length=64)] = "",
                  x_signature: Annotated[str, Header(max_length=128)] = "") -> Partner:
    service: TopupPartners = request.app.state.container.topup_partners
    return await service.authenticate(x_partner_id, x_timestamp, x_nonce, x_signature, request.method,
                                      request.url.path, await request.body())


Caller = Annotated[Partner, Depends(partner)]


PartnersDep = Annotated[TopupPartners, from_container("topup_partners")]


class PartnerTopupIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    partner_order_id: str = Field(min_length=1, max_length=64, description="Your order number: the idempotency key")
    msisdn: str = Field(max_length=32)
    amount: MoneyIn = Field(description="Face value, whole yuan")


class PartnerTopupOut(BaseModel):
    id: str
    partner_order_id: str
    msisdn: str = Field(description="Masked")
    face: MoneyOut
    charged: MoneyOut = Field(description="Taken from your deposit: face value less your commission")
    commission: MoneyOut
    state: Literal["pending", "succeeded", "failed"]
    operator_ref: str
    created_at: datetime


def _out(o: PartnerOrder) -> PartnerTopupOut:
    d = o.details
    return PartnerTopupOut(id=o.id, partner_order_id=d["partner_order_id"], msisdn=mask_msisdn(d["msisdn"]),
                           face=MoneyOut(amount=o.amount, currency="CNY"),
                           charged=MoneyOut(amount=d["price"], currency="CNY"),
                           commission=MoneyOut(amount=d["commission"], currency="CNY"), state=o.state.value,
                           operator_ref=o.partner_ref, created_at=o.created_at)


@router.post("/topups", response_model=PartnerTopupOut, status_code=201, responses=PENDING,
             summary="Top up a number (signed)")
async def topup(body: PartnerTopupIn, response: Response, caller: Caller, service: PartnersDep) -> PartnerTopupOut:
    order = await service.topup(caller, body.msisdn, body.amount.amount, body.partner_order_id)
    answer_order(order, response, TopupFailed, "the operator")
    return _out(order)


@router.get("/topups/{partner_order_id}", response_model=PartnerTopupOut, summary="One of your top-ups (signed)")
async def get(partner_order_id: str, caller: Caller, service: PartnersDep) -> PartnerTopupOut:
    return _out(await service.order(caller, partner_order_id))
