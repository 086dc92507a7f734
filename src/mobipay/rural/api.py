"""Rural e-commerce over HTTP.

For agents' staff (``POST /v1/rural/agent/sessions`` with their number and PIN answers a
bearer token; the mobile agent page /m/agent uses the same calls): the fee of an amount,
cash-in, a cash-out started for a customer and confirmed with the code the customer reads
out, the float and till, the mini statement, this month's commissions, float bought from and
sold to the bank, a villager's wallet registered, a marketplace order for a villager and
its pick-up with the villager's code.

For subscribers (the wallet's bearer token): cash-out at an agent's number with the PIN; the
marketplace (browse, order, confirm receipt, dispute). For anyone: the agent locator.

For sellers (``/v1/rural/seller/…``, the wallet's bearer token of the seller's own number:
sellers are paid into that wallet, so its session is their sign-in): their products (list,
add, change price, stock, photos, origin, delivery area), their orders, and an order shipped.

For operator staff (``/v1/rural/disputes``; ``Authorization: Bearer <MOBIPAY_ADMIN_TOKEN>``
and ``X-Operator: NAME`` with the operations role, as every back-office route): the open
disputes with their deadlines, and the decision on one (refund or release, with a reason).
Every money write takes an ``Idempotency-Key``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from mobipay.orders.service import PartnerOrder
from mobipay.platform.api_common import IdemKey, MoneyOut, OperatorDep, from_container, require_key
from mobipay.rural import errors
from mobipay.rural.market import Dispute, MarketOrder, Marketplace, Product, Seller, SellerOrder
from mobipay.rural.model import TxKind
from mobipay.rural.service import Agent, AgentStaff, RuralService, Txn
from mobipay.wallet.api_deps import Me

router = APIRouter(prefix="/v1/rural", tags=["rural"])

RuralDep = Annotated[RuralService, from_container("rural")]
MarketDep = Annotated[Marketplace, from_container("rural_market")]
agent_bearer = HTTPBearer(auto_error=False, scheme_name="agent_staff")


async def agent_staff(request: Request,
                      credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(agent_bearer)]) -> AgentStaff:
    """The agent's staff member behind ``Authorization: Bearer <token>``."""
    if credentials is None:
        raise errors.AgentSessionInvalid("send Authorization: Bearer <token> from POST /v1/rural/agent/sessions")
    staff: AgentStaff = await request.app.state.container.rural.session(credentials.credentials)
    return staff


Staff = Annotated[AgentStaff, Depends(agent_staff)]


async def seller_me(me: Me, request: Request) -> Seller:
    """The seller whose own wallet session this is (``RURAL_NOT_SELLER`` for any other wallet)."""
    seller: Seller = await request.app.state.container.rural_market.seller_of(me)
    return seller


SellerMe = Annotated[Seller, Depends(seller_me)]


def _money(fen: int) -> MoneyOut:
    return MoneyOut(amount=fen, currency="CNY")


def _replayed(response: Response, replayed: bool) -> None:
    if replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    msisdn: str = Field(max_length=20, description="The staff member's own number")
    pin: str = Field(max_length=12, description="Their 6-digit staff PIN")


class SessionOut(BaseModel):
    token: str
    agent_id: str
    staff: str


class AgentOut(BaseModel):
    id: str
    name: str
    kind: str
    msisdn: str
    province: str
    city: str
    county: str
    township: str
    village: str
    state: str


class AgentMe(AgentOut):
    float_balance: MoneyOut
    cash: MoneyOut


def _agent_out(a: Agent) -> AgentOut:
    p = a.location
    return AgentOut(id=a.id, name=a.name, kind=a.kind, msisdn=a.msisdn, province=p.province, city=p.city,
                    county=p.county, township=p.township, village=p.village, state=a.state)


class QuoteOut(BaseModel):
    kind: str
    amount: MoneyOut
    fee: MoneyOut = Field(description="What the customer pays on top, by tier (shown before confirming)")
    total: MoneyOut


class CashIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer: str = Field(max_length=20, description="The customer's number")
    amount: StrictInt = Field(description="Fen")


class TxnOut(BaseModel):
    id: str
    kind: str
    customer: str
    amount: MoneyOut
    fee: MoneyOut
    flags: list[str] = Field(description="Fraud rules it broke (flagged to the risk role)")
    float_after: MoneyOut | None
    created_at: datetime


def _txn_out(t: Txn) -> TxnOut:
    return TxnOut(id=t.id, kind=t.kind, customer=t.customer, amount=_money(t.amount), fee=_money(t.fee),
                  flags=list(t.flags), float_after=_money(t.float_after) if t.float_after is not None else None,
                  created_at=t.created_at)


class CashOutAsk(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer: str = Field(max_length=20)
    amount: StrictInt = Field(description="Fen")


class CashOutAskOut(BaseModel):
    id: str
    customer: str
    amount: MoneyOut
    fee: MoneyOut
    state: str
    expires_at: datetime


class CodeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=6, max_length=6, description="The code the customer received by SMS")


class AppCashOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agent: str = Field(max_length=20, description="The agent's number (on its sign)")
    amount: StrictInt = Field(description="Fen")
    pin: str = Field(max_length=12, description="The payment PIN: always asked, cash leaves the wallet")


class FloatIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: StrictInt = Field(gt=0, description="Fen")


class FloatOrderOut(BaseModel):
    id: str
    kind: str
    amount: MoneyOut
    state: str


def _float_out(o: PartnerOrder) -> FloatOrderOut:
    return FloatOrderOut(id=o.id, kind=o.kind, amount=_money(o.amount), state=o.state.value)


class CommissionsOut(BaseModel):
    month: str
    accrued: MoneyOut
    held: MoneyOut = Field(description="On flagged transactions, until the risk role decides")
    paid: MoneyOut


class Register(BaseModel):
    model_config = ConfigDict(extra="forbid")
    msisdn: str = Field(max_length=20)


class ProductOut(BaseModel):
    id: str
    seller: str
    title: str
    price: MoneyOut
    unit: str
    stock: int
    origin: str
    photos: list[str]
    delivery: list[str] = Field(description='Counties delivered to; ["*"]: everywhere')


def _product_out(p: Product) -> ProductOut:
    return ProductOut(id=p.id, seller=p.seller, title=p.title, price=_money(p.price), unit=p.unit, stock=p.stock,
                      origin=p.origin, photos=list(p.photos), delivery=list(p.delivery))


class OrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    product_id: str = Field(max_length=40)
    quantity: StrictInt = Field(ge=1, le=999)
    county: str = Field(max_length=32)
    address: str = Field(max_length=200)
    pin: str | None = Field(default=None, max_length=12)


class AgentOrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    villager: str = Field(max_length=20)
    product_id: str = Field(max_length=40)
    quantity: StrictInt = Field(ge=1, le=999)
    paid_by: str = Field(pattern="^(wallet|cash)$")
    pin: str | None = Field(default=None, max_length=12, description="The villager's PIN, for paid_by=wallet")


class OrderOut(BaseModel):
    id: str
    product_id: str
    quantity: int
    amount: MoneyOut
    fee: MoneyOut = Field(description="The platform's, taken from the seller's side at release")
    paid_by: str
    state: str
    tracking_no: str | None
    release_at: datetime = Field(description="When the escrow goes to the seller unless disputed")
    decide_by: datetime | None


def _order_out(o: MarketOrder) -> OrderOut:
    return OrderOut(id=o.id, product_id=o.product_id, quantity=o.quantity, amount=_money(o.amount),
                    fee=_money(o.fee), paid_by=o.paid_by, state=o.state, tracking_no=o.tracking_no,
                    release_at=o.release_at, decide_by=o.decide_by)


class DisputeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(max_length=200)


class DisputeOut(BaseModel):
    order_id: str
    title: str
    seller_id: str
    seller: str
    buyer: str
    amount: MoneyOut
    paid_by: str = Field(description="wallet | cash (a refund goes back to the agent's float, paid out in cash)")
    reason: str = Field(description="What the buyer said is wrong")
    decide_by: datetime = Field(description="The deadline: undecided, the buyer is refunded then")


def _dispute_out(d: Dispute) -> DisputeOut:
    return DisputeOut(order_id=d.order_id, title=d.title, seller_id=d.seller_id, seller=d.seller, buyer=d.buyer,
                      amount=_money(d.amount), paid_by=d.paid_by, reason=d.reason, decide_by=d.decide_by)


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["refund", "release"] = Field(description="refund: money and stock back to the buyer; "
                                                   "release: the seller paid, less the fee")
    reason: str = Field(min_length=2, max_length=200, description="Why (audited; kept with the decision)")


class SellerOut(BaseModel):
    id: str
    name: str
    kind: str
    county: str


class ProductIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(max_length=80)
    price: StrictInt = Field(description="Fen per unit")
    unit: str = Field(max_length=16, description="e.g. 袋, 斤, 盒")
    stock: StrictInt
    origin: str = Field(max_length=80)
    photos: list[str] = Field(default_factory=list, max_length=9, description="https:// or /path URLs")
    delivery: list[str] = Field(default_factory=lambda: ["*"], max_length=100,
                                description='Counties delivered to; ["*"]: everywhere')


class ProductPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    price: StrictInt | None = Field(default=None, description="Fen per unit (orders already placed keep theirs)")
    stock: StrictInt | None = None
    photos: list[str] | None = Field(default=None, max_length=9)
    origin: str | None = Field(default=None, max_length=80)
    delivery: list[str] | None = Field(default=None, max_length=100)


class SellerOrderOut(OrderOut):
    title: str
    buyer: str = Field(description="Masked")
    county: str
    address: str


def _seller_order_out(o: SellerOrder) -> SellerOrderOut:
    return SellerOrderOut(**_order_out(o.order).model_dump(), title=o.order.title, buyer=o.buyer_masked,
                          county=o.county, address=o.address)


# ---------------------------------------------------------------------- agents' staff


@router.post("/agent/sessions", response_model=SessionOut, status_code=201, summary="Staff sign-in (number, PIN)")
async def sign_in(body: SignIn, rural: RuralDep) -> SessionOut:
    token, staff = await rural.sign_in(body.msisdn, body.pin)
    return SessionOut(token=token, agent_id=staff.agent_id, staff=staff.name)


@router.get("/agent", response_model=AgentMe, summary="My agent: its float and the cash in the till")
async def me(staff: Staff, rural: RuralDep) -> AgentMe:
    a = await rural.agent(staff.agent_id)
    return AgentMe(**_agent_out(a).model_dump(), float_balance=_money(a.float_balance), cash=_money(a.cash))


@router.get("/quote", response_model=QuoteOut, summary="The customer's fee for an amount (by tier)")
async def quote(rural: RuralDep, kind: Annotated[str, Query(pattern="^(cash_in|cash_out)$")],
                amount: Annotated[int, Query()]) -> QuoteOut:
    q = rural.quote(TxKind(kind), amount)
    return QuoteOut(kind=q.kind, amount=_money(q.amount), fee=_money(q.fee), total=_money(q.total))


@router.post("/agent/cash-ins", response_model=TxnOut, status_code=201,
             summary="Cash-in: the float pays the customer's wallet (Idempotency-Key required)")
async def cash_in(body: CashIn, response: Response, staff: Staff, rural: RuralDep,
                  idempotency_key: IdemKey = None) -> TxnOut:
    t = await rural.cash_in(staff, body.customer, body.amount, idempotency_key=require_key(idempotency_key))
    _replayed(response, t.replayed)
    return _txn_out(t)


@router.post("/agent/cash-outs", response_model=CashOutAskOut, status_code=201,
             summary="Start a cash-out for a customer: they get a code by SMS (Idempotency-Key required)")
async def start_cash_out(body: CashOutAsk, response: Response, staff: Staff, rural: RuralDep,
                         idempotency_key: IdemKey = None) -> CashOutAskOut:
    r = await rural.start_cash_out(staff, body.customer, body.amount, idempotency_key=require_key(idempotency_key))
    _replayed(response, r.replayed)
    return CashOutAskOut(id=r.id, customer=r.customer, amount=_money(r.amount), fee=_money(r.fee), state=r.state,
                         expires_at=r.expires_at)


@router.post("/agent/cash-outs/{request_id}/confirm", response_model=TxnOut,
             summary="The code the customer read out: the cash-out is paid (once)")
async def confirm_cash_out(request_id: str, body: CodeIn, staff: Staff, rural: RuralDep) -> TxnOut:
    return _txn_out(await rural.confirm_cash_out(staff, body.code, request_id=request_id))


@router.get("/agent/statement", response_model=list[TxnOut], summary="Mini statement: the latest transactions")
async def statement(staff: Staff, rural: RuralDep, limit: Annotated[int, Query(ge=1, le=50)] = 10) -> list[TxnOut]:
    return [_txn_out(t) for t in await rural.statement(staff.agent_id, limit)]


@router.get("/agent/commissions", response_model=CommissionsOut, summary="A month's commissions (YYYY-MM)")
async def commissions(staff: Staff, rural: RuralDep, month: Annotated[str, Query(max_length=7)]) -> CommissionsOut:
    s = await rural.commission_summary(staff.agent_id, month)
    return CommissionsOut(month=s.month, accrued=_money(s.accrued), held=_money(s.held), paid=_money(s.paid))


@router.post("/agent/float/purchases", response_model=FloatOrderOut, status_code=201,
             summary="Buy float from the bank (the agent's card debited; Idempotency-Key required)")
async def buy_float(body: FloatIn, staff: Staff, rural: RuralDep, idempotency_key: IdemKey = None) -> FloatOrderOut:
    return _float_out(await rural.buy_float(staff, body.amount, idempotency_key=require_key(idempotency_key)))


@router.post("/agent/float/sales", response_model=FloatOrderOut, status_code=201,
             summary="Sell float to the bank (paid to the agent's account; Idempotency-Key required)")
async def sell_float(body: FloatIn, staff: Staff, rural: RuralDep, idempotency_key: IdemKey = None) -> FloatOrderOut:
    return _float_out(await rural.sell_float(staff, body.amount, idempotency_key=require_key(idempotency_key)))


@router.post("/agent/customers", status_code=201, summary="Open a villager's wallet at the agent")
async def register(body: Register, staff: Staff, rural: RuralDep) -> dict[str, str]:
    user = await rural.register_customer(staff, body.msisdn)
    return {"msisdn": user.msisdn, "state": user.status.value}


@router.post("/agent/orders", response_model=OrderOut, status_code=201,
             summary="Order for a villager, delivered to this village point (Idempotency-Key required)")
async def agent_order(body: AgentOrderIn, response: Response, staff: Staff, market: MarketDep,
                      idempotency_key: IdemKey = None) -> OrderOut:
    o = await market.agent_order(staff, body.villager, body.product_id, body.quantity, paid_by=body.paid_by,
                                 idempotency_key=require_key(idempotency_key), pin=body.pin)
    _replayed(response, o.replayed)
    return _order_out(o)


@router.post("/agent/orders/{order_id}/pickup", response_model=OrderOut,
             summary="The villager's pick-up code: delivered, and the seller paid")
async def pick_up(order_id: str, body: CodeIn, staff: Staff, market: MarketDep) -> OrderOut:
    return _order_out(await market.pick_up(staff, order_id, body.code))


# ---------------------------------------------------------------------- subscribers and anyone


@router.post("/cash-outs", response_model=TxnOut, status_code=201,
             summary="Cash-out at an agent's number with my PIN (Idempotency-Key required)")
async def app_cash_out(body: AppCashOut, response: Response, me: Me, rural: RuralDep,
                       idempotency_key: IdemKey = None) -> TxnOut:
    t = await rural.customer_cash_out(me, body.agent, body.amount, body.pin,
                                      idempotency_key=require_key(idempotency_key))
    _replayed(response, t.replayed)
    return _txn_out(t)


@router.get("/agents", response_model=list[AgentOut], summary="Agent locator: by county, township or village")
async def locate(rural: RuralDep, county: Annotated[str, Query(max_length=32)] = "",
                 township: Annotated[str, Query(max_length=32)] = "",
                 village: Annotated[str, Query(max_length=32)] = "") -> list[AgentOut]:
    return [_agent_out(a) for a in await rural.locate(county=county, township=township, village=village)]


@router.get("/products", response_model=list[ProductOut], summary="Marketplace products (delivered to a county)")
async def browse(market: MarketDep, county: Annotated[str, Query(max_length=32)] = "") -> list[ProductOut]:
    return [_product_out(p) for p in await market.browse(county=county)]


@router.post("/orders", response_model=OrderOut, status_code=201,
             summary="Order and pay from the wallet into escrow (Idempotency-Key required)")
async def order(body: OrderIn, response: Response, me: Me, market: MarketDep,
                idempotency_key: IdemKey = None) -> OrderOut:
    o = await market.order(me, body.product_id, body.quantity, county=body.county, address=body.address,
                           idempotency_key=require_key(idempotency_key), pin=body.pin)
    _replayed(response, o.replayed)
    return _order_out(o)


@router.post("/orders/{order_id}/receipt", response_model=OrderOut, summary="I received it: pay the seller now")
async def confirm_receipt(order_id: str, me: Me, market: MarketDep) -> OrderOut:
    return _order_out(await market.confirm_receipt(me, order_id))


@router.post("/orders/{order_id}/dispute", response_model=OrderOut, summary="Dispute while the money is held")
async def dispute(order_id: str, body: DisputeIn, me: Me, market: MarketDep) -> OrderOut:
    return _order_out(await market.dispute(me, order_id, body.reason))


# ---------------------------------------------------------------------- sellers (their own wallet session)


@router.get("/seller", response_model=SellerOut, summary="Me as a marketplace seller")
async def seller_self(seller: SellerMe) -> SellerOut:
    return SellerOut(id=seller.id, name=seller.name, kind=seller.kind, county=seller.county)


@router.get("/seller/products", response_model=list[ProductOut], summary="My products (sold out too)")
async def seller_products(seller: SellerMe, market: MarketDep) -> list[ProductOut]:
    return [_product_out(p) for p in await market.seller_products(seller.id)]


@router.post("/seller/products", response_model=ProductOut, status_code=201,
             summary="List a product (Idempotency-Key required)")
async def product_add(body: ProductIn, response: Response, seller: SellerMe, market: MarketDep,
                      idempotency_key: IdemKey = None) -> ProductOut:
    p = await market.list_product(seller.id, title=body.title, price=body.price, unit=body.unit, stock=body.stock,
                                  origin=body.origin, photos=body.photos, delivery=body.delivery,
                                  idempotency_key=require_key(idempotency_key))
    _replayed(response, p.replayed)
    return _product_out(p)


@router.patch("/seller/products/{product_id}", response_model=ProductOut,
              summary="Change my product's price, stock, photos, origin or delivery area")
async def product_update(product_id: str, body: ProductPatch, seller: SellerMe, market: MarketDep) -> ProductOut:
    return _product_out(await market.update_product(seller.id, product_id[:40], price=body.price, stock=body.stock,
                                                    photos=body.photos, origin=body.origin, delivery=body.delivery))


@router.get("/seller/orders", response_model=list[SellerOrderOut], summary="My orders, newest first")
async def seller_orders(seller: SellerMe, market: MarketDep, state: Annotated[str, Query(max_length=10)] = "",
                        limit: Annotated[int, Query(ge=1, le=200)] = 50) -> list[SellerOrderOut]:
    return [_seller_order_out(o) for o in await market.seller_orders(seller.id, state=state, limit=limit)]


@router.post("/seller/orders/{order_id}/shipment", response_model=OrderOut,
             summary="Hand the order to the carrier (again: the same shipment, Idempotent-Replayed)")
async def ship(order_id: str, response: Response, seller: SellerMe, market: MarketDep) -> OrderOut:
    o = await market.ship(seller.id, order_id[:40])
    _replayed(response, o.replayed)
    return _order_out(o)


# ---------------------------------------------------------------------- operator staff (back office)


@router.get("/disputes", response_model=list[DisputeOut],
            summary="Open disputes, nearest deadline first (admin token, X-Operator with the operations role)")
async def disputes(actor: OperatorDep, market: MarketDep) -> list[DisputeOut]:
    return [_dispute_out(d) for d in await market.disputes(actor=actor)]


@router.post("/disputes/{order_id}/decision", response_model=OrderOut,
             summary="Refund the buyer or release to the seller, with a reason (Idempotency-Key required; "
                     "admin token, X-Operator with the operations role)")
async def decide(order_id: str, body: DecisionIn, response: Response, actor: OperatorDep, market: MarketDep,
                 idempotency_key: IdemKey = None) -> OrderOut:
    o = await market.decide_dispute(order_id[:40], actor=actor, refund=body.decision == "refund", note=body.reason,
                                    idempotency_key=require_key(idempotency_key))
    _replayed(response, o.replayed)
    return _order_out(o)
