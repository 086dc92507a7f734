"""The group-buy community over HTTP.

For the subscriber's app (bearer access token): browse deals by city, category and
distance, buy vouchers from the wallet (``Idempotency-Key`` required), list them with their
codes, draw a voucher's QR code, ask for a refund of unused ones (随时退).

For shop staff, signed in as the merchant portal's operators (the same accounts, passwords
and lockout; ``POST /v1/groupbuy/shop/sessions`` answers a bearer token): prepare a typed
code, consume N of its order's vouchers with a ``request_id`` (the idempotency key), reverse
a consumption within the window, list a day's consumptions. Prepare and consume are
rate-limited per address and every wrong code counts towards the store's lock.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import segno
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from mobipay.groupbuy.model import CATEGORIES
from mobipay.groupbuy.service import Consumption, Deal, GroupBuy, Order, Staff, cities
from mobipay.kernel.errors import ValidationFailed
from mobipay.merchants.errors import MerchantSessionExpired
from mobipay.platform.api_common import LOOKUP_LIMIT, IdemKey, MoneyOut, from_container, require_key
from mobipay.wallet.api_deps import Me

router = APIRouter(prefix="/v1/groupbuy", tags=["group-buy"])

GroupBuyDep = Annotated[GroupBuy, from_container("groupbuy")]
staff_bearer = HTTPBearer(auto_error=False, scheme_name="shop_staff")


async def shop_staff(request: Request,
                     credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(staff_bearer)]) -> Staff:
    """The merchant operator behind ``Authorization: Bearer <token>`` (a portal session)."""
    if credentials is None:
        raise MerchantSessionExpired("send Authorization: Bearer <token> from POST /v1/groupbuy/shop/sessions")
    op: Staff = await request.app.state.container.merchant_operators.session(credentials.credentials)
    return op


ShopStaff = Annotated[Staff, Depends(shop_staff)]


def _money(fen: int) -> MoneyOut:
    return MoneyOut(amount=fen, currency="CNY")


class CityOut(BaseModel):
    name: str
    province: str
    lat: float
    lon: float


class DealOut(BaseModel):
    id: str
    merchant: str = Field(description="The merchant's name")
    title: str
    city: str
    category: str
    price: MoneyOut
    market_price: MoneyOut
    stock: int
    left: int = Field(description="Vouchers still on sale")
    sale_start: datetime
    sale_end: datetime
    per_user_limit: int
    valid_from: datetime
    valid_until: datetime
    refund_anytime: bool = Field(description="随时退: unused vouchers refunded on request")
    refund_on_expiry: bool = Field(description="过期自动退: unused vouchers refunded automatically at expiry")
    group_min: int = Field(description="0: no threshold; else buyers needed by group_deadline")
    group_deadline: datetime | None
    group_state: str = Field(description="none | open | formed | failed")
    shops: list[str] = Field(description="Store ids where the vouchers may be used (on the deal's own page)")
    distance_km: float | None = None


class DealsOut(BaseModel):
    items: list[DealOut]
    next: str | None


def _deal_out(d: Deal) -> DealOut:
    t = d.terms
    return DealOut(id=d.id, merchant=d.merchant_name, title=t.title, city=t.city, category=t.category,
                   price=_money(t.price), market_price=_money(t.market_price), stock=t.stock, left=d.stock_left,
                   sale_start=t.sale_start, sale_end=t.sale_end, per_user_limit=t.per_user_limit,
                   valid_from=t.valid_from, valid_until=t.valid_until, refund_anytime=t.refund_anytime,
                   refund_on_expiry=t.refund_on_expiry, group_min=t.group_min, group_deadline=t.group_deadline,
                   group_state=d.group_state.value, shops=list(d.shops), distance_km=d.distance_km)


class BuyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    deal_id: str = Field(max_length=40)
    quantity: StrictInt = Field(default=1, ge=1, le=20)
    pin: str | None = Field(default=None, max_length=12, description="Needed above the password-free amount")


class VoucherOut(BaseModel):
    id: str
    code: str = Field(description="The code to show at the shop (only its buyer sees it)")
    state: str = Field(description="unused | consumed | refunded")
    consumed_at: datetime | None = None
    qr: str = Field(description="The path of its QR code (SVG)")


class OrderOut(BaseModel):
    id: str
    deal_id: str
    title: str
    quantity: int
    amount: MoneyOut
    refunded: MoneyOut
    created_at: datetime
    valid_until: datetime
    vouchers: list[VoucherOut]


def _order_out(o: Order) -> OrderOut:
    return OrderOut(id=o.id, deal_id=o.deal_id, title=o.title, quantity=o.quantity, amount=_money(o.amount),
                    refunded=_money(o.refunded), created_at=o.created_at, valid_until=o.valid_until,
                    vouchers=[VoucherOut(id=v.id, code=v.code, state=v.state, consumed_at=v.consumed_at,
                                         qr=f"/v1/groupbuy/vouchers/{v.id}/qr") for v in o.vouchers])


class RefundIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    count: StrictInt | None = Field(default=None, ge=1, le=1000, description="Unused vouchers to refund; all if "
                                    "omitted")


class RefundOut(BaseModel):
    id: str
    order_id: str
    count: int
    amount: MoneyOut
    reason: str


@router.get("/cities", response_model=list[CityOut], summary="The community's cities")
async def list_cities() -> list[CityOut]:
    return [CityOut(name=c.name, province=c.province, lat=c.lat, lon=c.lon) for c in cities()]


@router.get("/categories", summary="Deal categories (code → Chinese name)")
async def list_categories() -> dict[str, str]:
    return dict(CATEGORIES)


@router.get("/deals", response_model=DealsOut, summary="Deals on sale in a city, by category, nearest first")
async def browse(gb: GroupBuyDep, city: Annotated[str, Query(max_length=16)],
                 category: Annotated[str, Query(max_length=16)] = "",
                 lat: Annotated[float | None, Query(ge=-90, le=90)] = None,
                 lon: Annotated[float | None, Query(ge=-180, le=180)] = None,
                 limit: Annotated[int, Query(ge=1, le=50)] = 20,
                 after: Annotated[str, Query(max_length=40)] = "") -> DealsOut:
    """With ``lat``/``lon`` the nearest first, each with its distance; else newest first."""
    found, nxt = await gb.browse(city=city, category=category, lat=lat, lon=lon, limit=limit, after=after)
    return DealsOut(items=[_deal_out(d) for d in found], next=nxt)


@router.get("/deals/{deal_id}", response_model=DealOut, summary="One deal, with the stores where it is valid")
async def one_deal(deal_id: str, gb: GroupBuyDep) -> DealOut:
    return _deal_out(await gb.deal(deal_id))


@router.post("/orders", response_model=OrderOut, status_code=201,
             responses={200: {"description": "A retry: the first order (header Idempotent-Replayed: true)"}},
             summary="Buy vouchers of a deal from the wallet (Idempotency-Key required)")
async def buy(body: BuyIn, response: Response, me: Me, gb: GroupBuyDep, idempotency_key: IdemKey = None) -> OrderOut:
    """The price moves to the deal's escrow; the codes come by SMS and in the answer.
    ``SOLD_OUT`` (409) when the stock is gone: nothing is charged."""
    order = await gb.buy(me, body.deal_id, body.quantity, idempotency_key=require_key(idempotency_key), pin=body.pin)
    if order.replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return _order_out(order)


@router.get("/orders", response_model=list[OrderOut], summary="My group-buy orders and vouchers, newest first")
async def my_orders(me: Me, gb: GroupBuyDep) -> list[OrderOut]:
    return [_order_out(o) for o in await gb.mine(me)]


@router.get("/orders/{order_id}", response_model=OrderOut, summary="One of my orders")
async def my_order(order_id: str, me: Me, gb: GroupBuyDep) -> OrderOut:
    return _order_out(await gb.order(me, order_id))


@router.post("/orders/{order_id}/refunds", response_model=RefundOut, status_code=201,
             summary="随时退: refund unused vouchers to the wallet (Idempotency-Key required)")
async def refund(order_id: str, body: RefundIn, response: Response, me: Me, gb: GroupBuyDep,
                 idempotency_key: IdemKey = None) -> RefundOut:
    done = await gb.refund(me, order_id, body.count, idempotency_key=require_key(idempotency_key))
    if done.replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return RefundOut(id=done.id, order_id=done.order_id, count=done.count, amount=_money(done.amount),
                     reason=done.reason)


@router.get("/vouchers/{voucher_id}/qr", summary="A voucher's QR code (SVG), for its buyer",
            responses={200: {"content": {"image/svg+xml": {}}}})
async def voucher_qr(voucher_id: str, me: Me, gb: GroupBuyDep) -> Response:
    code = await gb.voucher_code(me, voucher_id)
    svg = segno.make_qr(code, error="m").svg_inline(scale=6, border=2)
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})


# ---------------------------------------------------------------------- shop staff

class SignInIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    merchant_id: str = Field(max_length=40)
    name: str = Field(max_length=64)
    password: str = Field(max_length=128)


class SessionOut(BaseModel):
    token: str = Field(description="Send as Authorization: Bearer <token> (8 hours)")
    merchant_id: str
    name: str


class PrepareIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    store_id: str = Field(max_length=40)
    receipt_code: str = Field(max_length=32, description="The 10 to 12 digits the buyer shows (spaces allowed)")


class PrepareOut(BaseModel):
    receipt_code: str = Field(description="Masked: the last four digits")
    deal_id: str
    deal_title: str
    deal_price: MoneyOut
    deal_marketprice: MoneyOut
    receipt_end_date: datetime = Field(description="Valid until")
    count: int = Field(description="Vouchers of the order that can be consumed now with this code")
    left: int = Field(description="Unused vouchers of the order")
    state: str = Field(description="This code's voucher: unused | consumed | refunded")
    mobile: str = Field(description="The buyer's number, masked")
    usable: bool
    reason: str = Field(description="Why not, when not usable")
    consumed_at: datetime | None = None


class ConsumeIn(PrepareIn):
    count: StrictInt = Field(default=1, ge=1, le=100, description="Vouchers of the order to consume at once")
    request_id: str = Field(min_length=1, max_length=64, description="Your id of this request: the same id "
                            "again answers the first consumption")


class ConsumptionOut(BaseModel):
    id: str
    request_id: str
    store_id: str
    deal_id: str
    deal_title: str
    order_id: str
    count: int
    amount: MoneyOut
    codes: list[str] = Field(description="The consumed codes, masked")
    left: int = Field(description="Unused vouchers left in the order")
    operator: str
    state: str = Field(description="consumed | reversed | settled (final: the merchant is paid)")
    created_at: datetime
    reversible_until: datetime
    reversed_at: datetime | None


def _consumption_out(c: Consumption) -> ConsumptionOut:
    return ConsumptionOut(id=c.id, request_id=c.request_id, store_id=c.store_id, deal_id=c.deal_id,
                          deal_title=c.title, order_id=c.order_id, count=c.count, amount=_money(c.amount),
                          codes=list(c.codes), left=c.left, operator=c.operator, state=c.state,
                          created_at=c.created_at, reversible_until=c.reversible_until, reversed_at=c.reversed_at)


@router.post("/shop/sessions", response_model=SessionOut, status_code=201, dependencies=LOOKUP_LIMIT,
             responses={401: {"description": "MERCHANT_SIGN_IN_FAILED: wrong merchant id, name or password"},
                        423: {"description": "MERCHANT_SIGN_IN_LOCKED: too many wrong passwords"}},
             summary="Shop staff sign in (a merchant portal account)")
async def shop_sign_in(body: SignInIn, request: Request) -> SessionOut:
    ops: Any = request.app.state.container.merchant_operators
    client = request.client.host if request.client else ""
    token, op = await ops.sign_in(body.merchant_id, body.name, body.password, client=client)
    return SessionOut(token=token, merchant_id=op.merchant_id, name=op.name)


@router.post("/shop/prepare", response_model=PrepareOut, dependencies=LOOKUP_LIMIT,
             summary="What a typed voucher code is and how many of its order can be consumed")
async def prepare(body: PrepareIn, staff: ShopStaff, gb: GroupBuyDep) -> PrepareOut:
    p = await gb.prepare(staff, body.store_id, body.receipt_code)
    return PrepareOut(receipt_code=p.receipt_code, deal_id=p.deal_id, deal_title=p.title, deal_price=_money(p.price),
                      deal_marketprice=_money(p.market_price), receipt_end_date=p.valid_until, count=p.count,
                      state=p.state, mobile=p.mobile, usable=p.usable, reason=p.reason, consumed_at=p.consumed_at,
                      left=p.left)


@router.post("/shop/consumptions", response_model=ConsumptionOut, status_code=201, dependencies=LOOKUP_LIMIT,
             responses={200: {"description": "The same request_id again: the first consumption"}},
             summary="Consume N vouchers of the order a code belongs to (request_id: idempotent)")
async def consume(body: ConsumeIn, response: Response, staff: ShopStaff, gb: GroupBuyDep) -> ConsumptionOut:
    c = await gb.consume(staff, body.store_id, body.receipt_code, body.count, request_id=body.request_id)
    if c.replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return _consumption_out(c)


@router.post("/shop/consumptions/{consumption_id}/reversal", response_model=ConsumptionOut,
             summary="撤销验券: reverse a consumption within the window")
async def reverse(consumption_id: str, staff: ShopStaff, gb: GroupBuyDep) -> ConsumptionOut:
    return _consumption_out(await gb.reverse(staff, consumption_id))


@router.get("/shop/consumptions", response_model=list[ConsumptionOut], summary="A day's consumptions (Beijing day)")
async def history(staff: ShopStaff, gb: GroupBuyDep, day: Annotated[str, Query(description="YYYY-MM-DD")],
                  store_id: Annotated[str, Query(max_length=40)] = "") -> list[ConsumptionOut]:
    try:
        when = date.fromisoformat(day)
    except ValueError:
        raise ValidationFailed("day is YYYY-MM-DD", field="day") from None
    return [_consumption_out(c) for c in await gb.history(staff, when, store_id)]
