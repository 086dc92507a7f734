"""Products HTTP API: the operator's catalogue and insurance, bought from the wallet
(Idempotency-Key required), my product orders and subscriptions (list, one, cancel), and
cancelling a policy in its cooling-off period.

A purchase answers 201 when delivered, 202 while the provider's answer is unknown, 200
for a replay, 422 ``DELIVERY_FAILED`` (with ``order_id``) when the provider could not
deliver: the money is back in the wallet. A monthly product already subscribed is 409
``ALREADY_SUBSCRIBED`` (nothing charged). A cancellation the insurer declined is 422
``CANCELLATION_DECLINED``: the policy stays in force, nothing came back, and it may be
asked for again until ``retry_until``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from mobipay.kernel.msisdn import mask_name
from mobipay.orders.api import answer_order
from mobipay.orders.model import OrderState
from mobipay.orders.service import PartnerOrder
from mobipay.platform.api_common import PENDING, IdemKey, MoneyOut, from_container, require_key, sent_as
from mobipay.products import errors
from mobipay.products.model import Subscription, SubscriptionState, add_months
from mobipay.products.service import MONTHLY, ProductsService, subscription_id
from mobipay.wallet.api_deps import Me

router = APIRouter(prefix="/v1", tags=["products and insurance"])


ProductsDep = Annotated[ProductsService, from_container("products")]
State = Literal["pending", "succeeded", "failed"]
SubState = Literal["pending", "active", "cancelled", "ended", "lapsed", "failed"]


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


class ProductOrderOut(PurchaseOut):
    subscription: str | None = Field(default=None, description="The subscription this order starts or renews "
                                     "(monthly products)")
    cycle: int | None = Field(default=None, description="The period it pays: 1 the purchase, 2… renewals")
    settled_at: datetime | None


class SubscriptionOut(BaseModel):
    id: str
    product: str
    name: str
    price: MoneyOut = Field(description="What each period costs now")
    state: SubState = Field(description="pending: first order at the provider; active: renews at paid_until; "
                            "cancelled: in service until paid_until, never renewed; ended; lapsed: a renewal "
                            "could not be paid or delivered; failed: the purchase failed")
    in_service: bool = Field(description="The product is paid for now")
    cycle: int = Field(description="Periods paid so far")
    period_start: datetime
    paid_until: datetime
    renews_at: datetime | None = Field(description="When the next period is charged (active only)")
    order_id: str = Field(description="The order that paid the current period")
    created_at: datetime
    cancelled_at: datetime | None


class PolicyOut(PurchaseOut):
    insured: str = Field(description="The insured person, masked")
    starts_at: datetime
    ends_at: datetime
    cancellation: State | None = Field(description="The state of its cancellation, if one was asked for")


def _purchase(o: PartnerOrder) -> PurchaseOut:
    return PurchaseOut(id=o.id, product=o.details["product"], name=o.details.get("name", ""), amount=_money(o.amount),
                       state=o.state.value, reference=o.partner_ref, reason=o.reason, created_at=o.created_at)


def _product_order(o: PartnerOrder) -> ProductOrderOut:
    monthly = o.details.get("period") == MONTHLY
    return ProductOrderOut(**_purchase(o).model_dump(), settled_at=o.settled_at,
                           subscription=(o.details.get("subscription") or subscription_id(o.id)) if monthly else None,
                           cycle=int(o.details.get("cycle", 1)) if monthly else None)


def _subscription(s: Subscription, service: ProductsService) -> SubscriptionOut:
    product = service.catalogue.get(s.product)
    now = service.uow.clock.now()
    return SubscriptionOut(
        id=s.id, product=s.product, name=product.name if product else s.product,
        price=_money(product.price if product else 0), state=s.state.value,
        in_service=s.state in (SubscriptionState.ACTIVE, SubscriptionState.CANCELLED) and now < s.paid_until,
        cycle=s.cycle, period_start=add_months(s.anchor, s.cycle - 1), paid_until=s.paid_until,
        renews_at=s.paid_until if s.state is SubscriptionState.ACTIVE else None, order_id=s.order_id,
        created_at=s.created_at, cancelled_at=s.cancelled_at)


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


@router.post("/product-orders", response_model=ProductOrderOut, status_code=201, responses=PENDING,
             summary="Buy one of the operator's products for my number (Idempotency-Key required); a monthly "
                     "one starts a subscription renewed from the wallet until cancelled")
async def buy(body: BuyIn, response: Response, me: Me, service: ProductsDep, idempotency_key: IdemKey = None
              ) -> ProductOrderOut:
    order = await service.buy_product(me, body.product, idempotency_key=require_key(idempotency_key), pin=body.pin)
    answer_order(order, response, errors.DeliveryFailed, "the provider")
    return _product_order(order)


@router.get("/products/orders", response_model=list[ProductOrderOut],
            summary="My product orders (purchases and renewals) with their states, newest first")
async def product_orders(me: Me, service: ProductsDep) -> list[ProductOrderOut]:
    return [_product_order(o) for o in await service.product_orders(me)]


@router.get("/products/orders/{order_id}", response_model=ProductOrderOut, summary="One of my product orders")
async def product_order(order_id: str, me: Me, service: ProductsDep) -> ProductOrderOut:
    return _product_order(await service.product_order(me, order_id))


@router.get("/products/subscriptions", response_model=list[SubscriptionOut],
            summary="My subscriptions to monthly products, live and past, newest first")
async def subscriptions(me: Me, service: ProductsDep) -> list[SubscriptionOut]:
    return [_subscription(s, service) for s in await service.subscriptions(me)]


@router.get("/products/subscriptions/{subscription_id}", response_model=SubscriptionOut,
            summary="One of my subscriptions")
async def subscription(subscription_id: str, me: Me, service: ProductsDep) -> SubscriptionOut:
    return _subscription(await service.subscription(me, subscription_id), service)


@router.post("/products/subscriptions/{subscription_id}/cancel", response_model=SubscriptionOut,
             summary="Stop renewing a subscription: the period paid for stays in service until it ends; "
                     "asking again answers the same (no Idempotency-Key needed)")
async def cancel_subscription(subscription_id: str, me: Me, service: ProductsDep) -> SubscriptionOut:
    return _subscription(await service.cancel_subscription(me, subscription_id), service)


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
             summary="Cancel a policy in its cooling-off period; the premium comes back in full. After the "
                     "insurer declined, asking again in the period is a new attempt")
async def cancel(policy_id: str, response: Response, me: Me, service: ProductsDep) -> PurchaseOut:
    order = await service.cancel_policy(me, policy_id)
    if order.state is OrderState.FAILED:
        until = service.cancellable_until(order)
        raise errors.CancellationDeclined(
            f"the insurer declined it ({order.reason or 'no reason given'}): the policy stays in force and "
            "nothing was refunded" + (f"; you may ask again until {until.isoformat()}" if until else ""),
            order_id=order.id, retry_until=until.isoformat() if until else None)
    answer_order(order, response, errors.DeliveryFailed, "the insurer")
    return _purchase(order)
