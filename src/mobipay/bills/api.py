"""Bill-zone HTTP API: browse billers by city and category or search them, fetch a bill,
pay it (Idempotency-Key required), receipts, saved bills (reminders, autopay), complaints.

A payment answers 201 when the biller confirmed it, 202 while its outcome is unknown
(poll ``GET /v1/bill-payments/{id}``), 200 for a replay, 409 ``DUPLICATE_BILL_PAYMENT``
when this customer's bill was already paid this period (send ``confirm_duplicate``), and
422 ``BILL_PAYMENT_FAILED`` (with ``order_id``) when the biller refused: the money is back.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from mobipay.bills import errors
from mobipay.bills.complaints import Complaint, Complaints
from mobipay.bills.model import Biller, Category, ComplaintReason, ComplaintState
from mobipay.bills.saved import SavedBill, SavedBills
from mobipay.bills.service import BillsService
from mobipay.orders.api import answer_order
from mobipay.orders.service import PartnerOrder
from mobipay.platform.api_common import PENDING, IdemKey, MoneyIn, MoneyOut, from_container, require_key
from mobipay.wallet.api_deps import Me

router = APIRouter(prefix="/v1", tags=["bills"])


BillsDep = Annotated[BillsService, from_container("bills")]


class BillerOut(BaseModel):
    code: str
    name: str
    category: Category
    city: str
    province: str
    customer_id_label: str
    customer_id_pattern: str
    fetch: Literal["mandatory", "optional", "none"]
    amount_rule: Literal["exact", "partial", "over", "any"]
    minimum: MoneyOut
    maximum: MoneyOut
    opens: str
    closes: str


class CityOut(BaseModel):
    city: str
    province: str
    billers: int


class FetchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    biller: str = Field(max_length=32)
    customer_id: str = Field(max_length=64)


class BillOut(BaseModel):
    id: str = Field(description="Pass as bill_id to pay this bill")
    biller: str
    customer_id: str
    bill_number: str
    amount_due: MoneyOut
    customer_name: str = Field(description="Masked")
    due_date: date
    period: str


class PayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    biller: str = Field(max_length=32)
    customer_id: str = Field(max_length=64)
    amount: MoneyIn
    bill_id: str | None = Field(default=None, max_length=40, description="A fetched bill (mandatory for some billers)")
    pin: str | None = Field(default=None, max_length=12, description="Needed above the password-free amount")
    confirm_duplicate: bool = Field(default=False, description="Pay although this period was already paid")


class PaymentOut(BaseModel):
    id: str
    biller: str
    biller_name: str
    customer_id: str
    period: str
    amount: MoneyOut
    state: Literal["pending", "succeeded", "failed"]
    biller_ref: str = Field(description="The biller's reference: the receipt number")
    reason: str
    created_at: datetime
    settled_at: datetime | None


def _money(amount: int) -> MoneyOut:
    return MoneyOut(amount=amount, currency="CNY")


def _biller_out(b: Biller) -> BillerOut:
    return BillerOut(code=b.code, name=b.name, category=b.category, city=b.city, province=b.province,
                     customer_id_label=b.id_label, customer_id_pattern=b.id_regex, fetch=b.fetch.value,
                     amount_rule=b.amount_rule.value, minimum=_money(b.minimum), maximum=_money(b.maximum),
                     opens=b.opens.strftime("%H:%M"), closes=b.closes.strftime("%H:%M"))


def _payment_out(o: PartnerOrder) -> PaymentOut:
    d = o.details
    return PaymentOut(id=o.id, biller=d["biller"], biller_name=d["biller_name"], customer_id=d["customer_id"],
                      period=d["period"], amount=_money(o.amount), state=o.state.value, biller_ref=o.partner_ref,
                      reason=o.reason, created_at=o.created_at, settled_at=o.settled_at)


@router.get("/billers/cities", response_model=list[CityOut], summary="Cities of the bill zone")
async def cities(service: BillsDep) -> list[CityOut]:
    return [CityOut(city=c, province=p, billers=n) for c, p, n in await service.cities()]


@router.get("/billers", response_model=list[BillerOut], summary="Billers by city and category, or search by name")
async def find(service: BillsDep, city: Annotated[str | None, Query(max_length=32)] = None,
               category: Category | None = None, q: Annotated[str | None, Query(min_length=1, max_length=32)] = None,
               limit: Annotated[int, Query(ge=1, le=300)] = 50) -> list[BillerOut]:
    return [_biller_out(b) for b in await service.find(city=city, category=category, q=q, limit=limit)]


@router.get("/billers/{code}", response_model=BillerOut, summary="One biller and its rules")
async def biller(code: str, service: BillsDep) -> BillerOut:
    return _biller_out(await service.biller(code))


@router.post("/bills/fetch", response_model=BillOut, summary="Fetch a customer's open bill from the biller")
async def fetch(body: FetchIn, me: Me, service: BillsDep) -> BillOut:
    f = await service.fetch(me, body.biller, body.customer_id)
    b = f.bill
    return BillOut(id=f.id, biller=b.biller, customer_id=b.customer_id, bill_number=b.bill_number,
                   amount_due=_money(b.amount_due), customer_name=b.customer_name, due_date=b.due_date,
                   period=b.period)


@router.post("/bill-payments", response_model=PaymentOut, status_code=201, responses=PENDING,
             summary="Pay a bill from the wallet (Idempotency-Key required)")
async def pay(body: PayIn, response: Response, me: Me, service: BillsDep, idempotency_key: IdemKey = None
              ) -> PaymentOut:
    order = await service.pay(me, body.biller, body.customer_id, body.amount.amount,
                              idempotency_key=require_key(idempotency_key), bill_id=body.bill_id, pin=body.pin,
                              confirm_duplicate=body.confirm_duplicate)
    answer_order(order, response, errors.BillPaymentFailed, "the biller")
    return _payment_out(order)


@router.get("/bill-payments", response_model=list[PaymentOut], summary="My bill payments, newest first")
async def mine(me: Me, service: BillsDep) -> list[PaymentOut]:
    return [_payment_out(o) for o in await service.mine(me)]


@router.get("/bill-payments/{payment_id}", response_model=PaymentOut, summary="A receipt; a pending one is checked")
async def get(payment_id: str, me: Me, service: BillsDep) -> PaymentOut:
    return _payment_out(await service.get(me, payment_id))


# ---------------------------------------------------------------------- saved bills


SavedDep = Annotated[SavedBills, from_container("saved_bills")]


class SaveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    biller: str = Field(max_length=32)
    customer_id: str = Field(max_length=64)
    nickname: str = Field(default="", max_length=32, description="e.g. 家里的电费")
    autopay_limit: MoneyIn | None = Field(default=None, description="Pay new bills up to this amount automatically")


class SavedOut(BaseModel):
    id: str
    biller: str
    customer_id: str
    nickname: str
    autopay_limit: MoneyOut | None
    last_bill_number: str | None
    checked_at: datetime | None


def _saved_out(s: SavedBill) -> SavedOut:
    return SavedOut(id=s.id, biller=s.biller, customer_id=s.customer_id, nickname=s.nickname,
                    autopay_limit=_money(s.autopay_limit) if s.autopay_limit is not None else None,
                    last_bill_number=s.last_bill_number, checked_at=s.checked_at)


@router.put("/saved-bills", response_model=SavedOut,
            summary="Save a customer number: reminders of new bills, optional autopay up to a limit")
async def save(body: SaveIn, me: Me, saved: SavedDep) -> SavedOut:
    return _saved_out(await saved.save(me, body.biller, body.customer_id, nickname=body.nickname,
                                       autopay_limit=body.autopay_limit.amount if body.autopay_limit else None))


@router.get("/saved-bills", response_model=list[SavedOut], summary="My saved bills")
async def saved_list(me: Me, saved: SavedDep) -> list[SavedOut]:
    return [_saved_out(s) for s in await saved.mine(me)]


@router.delete("/saved-bills/{saved_id}", status_code=204, summary="Forget a saved bill")
async def forget(saved_id: str, me: Me, saved: SavedDep) -> Response:
    await saved.forget(me, saved_id)
    return Response(status_code=204)


# ---------------------------------------------------------------------- complaints


ComplaintsDep = Annotated[Complaints, from_container("complaints")]


class ComplaintIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    payment_id: str = Field(max_length=40)
    reason: ComplaintReason
    description: str = Field(default="", max_length=500)


class ComplaintOut(BaseModel):
    id: str
    payment_id: str
    biller: str
    reason: ComplaintReason
    description: str
    state: ComplaintState
    assignee: Literal["biller", "operator", "supervisor"]
    due_at: datetime = Field(description="When it escalates if nobody acts")
    resolution: str
    created_at: datetime
    updated_at: datetime


def _complaint_out(c: Complaint) -> ComplaintOut:
    return ComplaintOut(id=c.id, payment_id=c.payment_id, biller=c.biller, reason=c.reason,
                        description=c.description, state=c.state, assignee=c.assignee,
                        due_at=c.due_at, resolution=c.resolution, created_at=c.created_at, updated_at=c.updated_at)


@router.post("/complaints", response_model=ComplaintOut, status_code=201,
             summary="Complain about one of my bill payments; the biller must answer before the deadline")
async def complain(body: ComplaintIn, me: Me, service: ComplaintsDep) -> ComplaintOut:
    return _complaint_out(await service.raise_(me, body.payment_id, body.reason, body.description))


@router.get("/complaints", response_model=list[ComplaintOut], summary="My complaints")
async def my_complaints(me: Me, service: ComplaintsDep) -> list[ComplaintOut]:
    return [_complaint_out(c) for c in await service.mine(me)]


@router.get("/complaints/{complaint_id}", response_model=ComplaintOut, summary="One of my complaints")
async def complaint(complaint_id: str, me: Me, service: ComplaintsDep) -> ComplaintOut:
    return _complaint_out(await service.get(me, complaint_id))
