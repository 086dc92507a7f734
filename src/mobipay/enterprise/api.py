"""The enterprise one-card over HTTP.

For the employee's app (bearer access token): the allowance and today's rules
(``GET /v1/enterprise/me``), what a payment would take from the allowance and the wallet
(``POST /v1/enterprise/previews``), and paying a closed-loop merchant's counter code
(``POST /v1/enterprise/payments``, ``Idempotency-Key`` required): the allowance first, the
wallet the rest, one receipt.

For a company's readers (doors, attendance): ``POST /v1/enterprise/reader/taps``, signed with
the reader's Ed25519 key (headers ``Reader-Id``, ``Timestamp``, ``Nonce``, ``Signature``; the
signed string is in docs/enterprise.md); an upload may be sent again, a tap counts once.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from mobipay.enterprise import errors
from mobipay.enterprise.service import Enterprise, Reader, Receipt, TapIn
from mobipay.platform.api_common import IdemKey, MoneyOut, from_container, require_key
from mobipay.wallet.api_deps import Me

router = APIRouter(prefix="/v1/enterprise", tags=["enterprise"])

EnterpriseDep = Annotated[Enterprise, from_container("enterprise")]


def _money(fen: int) -> MoneyOut:
    return MoneyOut(amount=fen, currency="CNY")


class WindowOut(BaseModel):
    name: str
    start: str = Field(description="HH:MM Beijing time, included")
    end: str = Field(description="HH:MM Beijing time, excluded")


class MeOut(BaseModel):
    employee_id: str
    employer_id: str
    employer: str
    allowance: MoneyOut
    windows: list[WindowOut]
    per_meal: MoneyOut = Field(description="0: no cap")
    per_day: MoneyOut = Field(description="0: no cap")
    month_end: str = Field(description="rollover | expire")
    closed_loop: list[str] = Field(description="Names of the merchants that accept the allowance")


class PayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    payload: str = Field(max_length=512, description="The closed-loop merchant's counter QR code, as scanned")
    amount: StrictInt = Field(gt=0, description="Integer fen")
    pin: str | None = Field(default=None, max_length=12, description="When the wallet's share is above the "
                            "password-free amount")


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    merchant_id: str = Field(max_length=40)
    amount: StrictInt = Field(gt=0)


class SplitOut(BaseModel):
    amount: MoneyOut
    allowance: MoneyOut = Field(description="What the allowance pays")
    wallet: MoneyOut = Field(description="What the wallet pays")
    window: str = Field(description="The meal window, empty outside every window")
    reason: str = Field(description="Why the allowance pays less than the amount (empty when it pays all)")


class ReceiptOut(SplitOut):
    id: str
    trade_id: str = Field(description="The merchant's one trade for this payment")
    merchant: str
    merchant_id: str
    store_id: str | None
    created_at: datetime
    allowance_left: MoneyOut


def _receipt(r: Receipt) -> ReceiptOut:
    return ReceiptOut(id=r.id, trade_id=r.trade_id, merchant=r.merchant_name, merchant_id=r.merchant_id,
                      store_id=r.store_id, amount=_money(r.amount), allowance=_money(r.allowance),
                      wallet=_money(r.wallet), window=r.window, reason=r.reason, created_at=r.created_at,
                      allowance_left=_money(r.allowance_left))


@router.get("/me", response_model=MeOut, summary="My employer, allowance and its rules")
async def me_(me: Me, ent: EnterpriseDep) -> MeOut:
    employee, employer = await ent.me(me)
    rules = employer.rules
    return MeOut(employee_id=employee.id, employer_id=employer.id, employer=employer.name,
                 allowance=_money(employee.balance),
                 windows=[WindowOut(name=w.name, start=w.start.strftime("%H:%M"), end=w.end.strftime("%H:%M"))
                          for w in rules.windows],
                 per_meal=_money(rules.per_meal), per_day=_money(rules.per_day), month_end=rules.month_end.value,
                 closed_loop=[name for _, name, _ in await ent.closed_loop_merchants(employer.id)])


@router.post("/previews", response_model=SplitOut, summary="What the allowance and the wallet would pay now")
async def preview(body: PreviewIn, me: Me, ent: EnterpriseDep) -> SplitOut:
    s = await ent.preview(me, body.merchant_id, body.amount)
    return SplitOut(amount=_money(body.amount), allowance=_money(s.allowance), wallet=_money(s.wallet),
                    window=s.window, reason=s.reason)


@router.post("/payments", response_model=ReceiptOut, status_code=201,
             responses={200: {"description": "A retry: the first receipt (header Idempotent-Replayed: true)"}},
             summary="Pay a closed-loop merchant's counter code: allowance first, wallet the rest, one receipt")
async def pay(body: PayIn, response: Response, me: Me, ent: EnterpriseDep, idempotency_key: IdemKey = None
              ) -> ReceiptOut:
    """``ALLOWANCE_NOT_ACCEPTED`` (422) at a merchant the employer did not name: nothing moves."""
    r = await ent.pay_scanned(me, body.payload, body.amount, idempotency_key=require_key(idempotency_key),
                              pin=body.pin)
    if r.replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return _receipt(r)


# ---------------------------------------------------------------------- the company's readers


async def signed_reader(
    request: Request, ent: EnterpriseDep,
    reader_id: Annotated[str, Header(alias="Reader-Id", description="The reader's id (rdr_…)")] = "",
    timestamp: Annotated[str, Header(alias="Timestamp", description="Unix seconds, within ±300 s")] = "",
    nonce: Annotated[str, Header(alias="Nonce", description="8-64 printable characters, once")] = "",
    signature: Annotated[str, Header(alias="Signature", description="base64 Ed25519 (docs/enterprise.md)")] = "",
) -> Reader:
    """The verified reader behind this request (or its refusal, with nothing done)."""
    return await ent.verify_reader(reader_id=reader_id, timestamp=timestamp, nonce=nonce, signature=signature,
                                   body=await request.body())


SignedReader = Annotated[Reader, Depends(signed_reader)]


class TapModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token_id: str = Field(max_length=64, description="The phone's device token (the in-store NFC token)")
    at: datetime = Field(description="When it was tapped (with its offset)")


class TapsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    taps: list[TapModel]


class RejectedOut(BaseModel):
    index: int
    reason: str


class TapsOut(BaseModel):
    accepted: int = Field(description="New taps recorded")
    duplicates: int = Field(description="Taps recorded before (the same token, reader and time)")
    rejected: list[RejectedOut]


@router.post("/reader/taps", response_model=TapsOut, summary="A reader's taps (signed; may be sent again)")
async def upload(request: Request, reader: SignedReader, ent: EnterpriseDep) -> TapsOut:
    try:
        body = TapsIn.model_validate(json.loads(await request.body()))
    except (ValueError, ValidationError):
        raise errors.TapsInvalid('send {"taps": [{"token_id": …, "at": "2026-12-07T09:00:00+08:00"}]}',
                                 field="taps") from None
    if any(t.at.tzinfo is None for t in body.taps):
        raise errors.TapsInvalid("every tap's time has its offset (+08:00 or Z)", field="taps")
    done = await ent.upload_taps(reader, [TapIn(t.token_id, t.at) for t in body.taps])
    return TapsOut(accepted=done.accepted, duplicates=done.duplicates,
                   rejected=[RejectedOut(index=i, reason=why) for i, why in done.rejected])


class AccessIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token_id: str = Field(max_length=64)


class AccessOut(BaseModel):
    allowed: bool
    reason: str = Field(description="Why not (empty when allowed)")


@router.post("/reader/access", response_model=AccessOut, summary="A door asks: may this phone pass? (signed)")
async def access(request: Request, reader: SignedReader, ent: EnterpriseDep) -> AccessOut:
    """Allowed for an active token of an active employee of the reader's company; the tap is
    recorded as attendance."""
    try:
        body = AccessIn.model_validate(json.loads(await request.body()))
    except (ValueError, ValidationError):
        raise errors.TapsInvalid('send {"token_id": "nft_…"}', field="token_id") from None
    allowed, reason = await ent.access(reader, body.token_id)
    return AccessOut(allowed=allowed, reason=reason)
