"""Products HTTP API: the operator's catalogue and insurance, bought from the wallet
(Idempotency-Key required), and cancelling a policy in its cooling-off period.

A purchase answers 201 when delivered, 202 while the provider's answer is unknown, 200
for a replay, 422 ``DELIVERY_FAILED`` (with ``order_id``) when the provider could not
deliver: the money is back in the wallet.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from mobipay.kernel.msisdn import mask_name
from mobipay.orders.api import answer_order
from mobipay.orders.service import PartnerOrder
from mobipay.platform.api_common import PENDING, IdemKey, MoneyOut, from_container, require_key, sent_as
from mobipay.products import errors
from mobipay.products.service import ProductsService
from mobipay.wallet.api_deps import Me

router = APIRouter(prefix="/v1", tags=["products and insurance"])


ProductsDep = Annotated[ProductsService, from_container("products")]
State = Literal["pending", "succeeded", "failed"]


def _money(amount: int) -> MoneyOut:
    return MoneyOut(amount=amount, currency="CNY")


class ProductOut(BaseModel):
    code: str
    name: str
    family: Literal["music", "info", "fetion"]
    price: MoneyOut
    period: Literal["monthly", "once"]
    description: str


class InsuranceOut(BaseModel):
    code: str
    name: str
    insurer: str
    kind: Literal["accident", "travel"]
    premium: MoneyOut
    coverage: MoneyOut
    term_days: int
    cooling_off_days: int = Field(description="0: cancellable only before cover starts")


class BuyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    product: str = Field(max_length=32)
    pin: str | None = Field(default=None, max_length=12)


class PolicyIn(BuyIn):
    insured_name: str = Field(max_length=64)
    insured_id_number: str = Field(max_length=32)
    starts_on: date


class PurchaseOut(BaseModel):
    id: str
    product: str
    name: str
    amount: MoneyOut
    state: State
    reference: str = Field(description="The provider's subscription or policy number")
    reason: str
    created_at: datetime


class PolicyOut(PurchaseOut):
    insured: str = Field(description="The insured person, masked")
    starts_at: datetime
    ends_at: datetime
    cancellation: State | None = Field(description="The state of its cancellation, if one was asked for")


def _purchase(o: PartnerOrder) -> PurchaseOut:
    return PurchaseOut(id=o.id, product=o.details["product"], name=o.details.get("name", ""), amount=_money(o.amount),
                       state=o.state.value, reference=o.partner_ref, reason=o.reason, created_at=o.created_at)


def _policy(o: PartnerOrder, cancel: PartnerOrder | None) -> PolicyOut:
    d = o.details
    return PolicyOut(**_purchase(o).model_dump(), insured=mask_name(d["insured_name"]),
                     starts_at=datetime.fromisoformat(d["starts_at"]), ends_at=datetime.fromisoformat(d["ends_at"]),
                     cancellation=cancel.state.value if cancel else None)


@router.get("/products", response_model=list[ProductOut], summary="The operator's products sold from the wallet")
async def catalogue(service: ProductsDep) -> list[ProductOut]:
    return [ProductOut(code=p.code, name=p.name, family=p.family.value, price=_money(p.price),
                       period=p.period, description=p.description)
            for p in service.catalogue.values()]


@router.post("/product-orders", response_model=PurchaseOut, status_code=201, responses=PENDING,
             summary="Buy one of the operator's products for my number (Idempotency-Key required)")
async def buy(body: BuyIn, response: Response, me: Me, service: ProductsDep, idempotency_key: IdemKey = None
              ) -> PurchaseOut:
    order = await service.buy_product(me, body.product, idempotency_key=require_key(idempotency_key), pin=body.pin)
    answer_order(order, response, errors.DeliveryFailed, "the provider")
    return _purchase(order)


@router.get("/insurance/products", response_model=list[InsuranceOut], summary="Insurance sold from the wallet")
async def insurance(service: ProductsDep) -> list[InsuranceOut]:
    return [InsuranceOut(code=p.code, name=p.name, insurer=p.insurer, kind=p.kind,
                         premium=_money(p.premium), coverage=_money(p.coverage), term_days=p.term_days,
                         cooling_off_days=p.cooling_off_days) for p in service.insurance.values()]


@router.post("/policies", response_model=PolicyOut, status_code=201, responses=PENDING,
             summary="Buy an insurance policy for a person (Idempotency-Key required)")
@sent_as(id_card="insured_id_number", name="insured_name")
async def buy_policy(body: PolicyIn, response: Response, me: Me, service: ProductsDep,
                     idempotency_key: IdemKey = None) -> PolicyOut:
    order = await service.buy_policy(me, body.product, insured_name=body.insured_name,
                                     insured_id=body.insured_id_number, starts_on=body.starts_on,
                                     idempotency_key=require_key(idempotency_key), pin=body.pin)
    answer_order(order, response, errors.DeliveryFailed, "the provider")
    return _policy(order, None)


@router.get("/policies", response_model=list[PolicyOut], summary="My policies, newest first")
async def policies(me: Me, service: ProductsDep) -> list[PolicyOut]:
    return [_policy(p, c) for p, c in await service.policies(me)]


@router.post("/policies/{policy_id}/cancel", response_model=PurchaseOut, status_code=201, responses=PENDING,
             summary="Cancel a policy in its cooling-off period; the premium comes back in full")
async def cancel(policy_id: str, response: Response, me: Me, service: ProductsDep) -> PurchaseOut:
    order = await service.cancel_policy(me, policy_id)
    answer_order(order, response, errors.DeliveryFailed, "the provider")
    return _purchase(order)
