"""Merchant HTTP API.

For merchants' servers (``/v1/merchant/...``): flat JSON parameters signed as
docs/merchant-signatures.md says (``app_id``, ``timestamp``, ``nonce``, ``sign_type``,
``sign``); answers carry the platform's ``sign`` (RSA2 with the platform key, whose public
half is at ``GET /v1/merchant/platform-key``, or HMAC with the app's key). Amounts are
integer fen. Onboarding: ``POST /v1/merchant-applications`` (its answer's token reads the
status at ``GET /v1/merchant-applications/{id}`` and resubmits it).

For buyers (``/v1/trades/{id}``): see the order and pay it from the wallet.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from mobipay.kernel.errors import ValidationFailed
from mobipay.kernel.money import parse_fen
from mobipay.merchants import wechat
from mobipay.merchants.errors import ApplicationTokenRequired
from mobipay.merchants.model import MerchantFile, MerchantState
from mobipay.merchants.redenvelopes import Coupon, RedEnvelopes
from mobipay.merchants.service import Merchant, MerchantService, Trade
from mobipay.merchants.signing import sign_hmac, sign_rsa2
from mobipay.platform.api_common import MoneyOut, from_container, sent_as
from mobipay.wallet.api_deps import Me

router = APIRouter(prefix="/v1", tags=["merchants"])


MerchantsDep = Annotated[MerchantService, from_container("merchants")]


class ApplicationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=128)
    credit_code: str = Field(max_length=18, description="Unified social credit code (GB 32100)")
    legal_person: str = Field(max_length=64)
    contact_msisdn: str = Field(max_length=32)
    mcc: str = Field(max_length=4, description="Merchant category code (ISO 18245)")
    website: str = Field(default="", max_length=256)
    settlement_account: str = Field(max_length=40, description="Bank account for T+1 settlement")


class MerchantOut(BaseModel):
    id: str
    name: str
    state: MerchantState
    reason: str
    fee_bps: int


class ApplicationOut(MerchantOut):
    application_token: str = Field(description="Shown once: send it as Authorization: Bearer to read the "
                                   "application's status and to resubmit it")


class ApplicationStatusOut(BaseModel):
    id: str
    name: str
    state: MerchantState = Field(description="submitted (waiting for review), more_info (resubmit it), approved, "
                                 "rejected; later suspended, settlement_suspended, terminated")
    reason: str = Field(description="The reviewer's words on the last decision")
    fee_bps: int
    mcc: str
    applicant_note: str = Field(description="What the applicant said with the last resubmission")
    resubmittable: bool = Field(description="Sent back for more information: POST …/resubmission")
    created_at: datetime
    updated_at: datetime | None


class ResubmissionIn(BaseModel):
    """What the applicant adds: ``note`` says what, the fields sent replace the old ones."""

    model_config = ConfigDict(extra="forbid")
    note: str = Field(max_length=500, description="What was added or changed, for the reviewer")
    name: str | None = Field(default=None, max_length=128)
    legal_person: str | None = Field(default=None, max_length=64)
    contact_msisdn: str | None = Field(default=None, max_length=32)
    mcc: str | None = Field(default=None, max_length=4)
    website: str | None = Field(default=None, max_length=256)
    settlement_account: str | None = Field(default=None, max_length=40)


application_bearer = HTTPBearer(auto_error=False, scheme_name="merchant_application")


async def application_token(credentials: Annotated[HTTPAuthorizationCredentials | None,
                                                   Depends(application_bearer)]) -> str:
    """The applicant's credential: the token the application's answer carried."""
    if credentials is None:
        raise ApplicationTokenRequired()
    return credentials.credentials


ApplicationToken = Annotated[str, Depends(application_token)]


def _status_out(f: MerchantFile) -> ApplicationStatusOut:
    m = f.merchant
    return ApplicationStatusOut(id=m.id, name=m.name, state=m.state, reason=m.reason, fee_bps=m.fee_bps, mcc=m.mcc,
                                applicant_note=f.applicant_note, resubmittable=m.state is MerchantState.MORE_INFO,
                                created_at=f.created_at, updated_at=f.updated_at)


@router.post("/merchant-applications", response_model=ApplicationOut, status_code=201,
             summary="Apply to take wallet payments (low-risk categories are approved at once)")
@sent_as(msisdn="contact_msisdn")
async def apply(body: ApplicationIn, service: MerchantsDep) -> ApplicationOut:
    """The answer's ``application_token`` is the applicant's only credential until approval
    (there is no account before one): it reads the status, and resubmits the application
    when the reviewer asks for more. Each decision also comes by SMS to the contact number."""
    m, token = await service.apply_online(name=body.name, credit_code=body.credit_code,
                                          legal_person=body.legal_person, contact=body.contact_msisdn,
                                          mcc=body.mcc, website=body.website,
                                          settlement_account=body.settlement_account)
    return ApplicationOut(id=m.id, name=m.name, state=m.state, reason=m.reason, fee_bps=m.fee_bps,
                          application_token=token)


@router.get("/merchant-applications/{application_id}", response_model=ApplicationStatusOut,
            summary="An application's status, for its applicant (Authorization: Bearer <application_token>)")
async def application_status(application_id: str, token: ApplicationToken,
                             service: MerchantsDep) -> ApplicationStatusOut:
    return _status_out(await service.application(application_id, token))


@router.post("/merchant-applications/{application_id}/resubmission", response_model=ApplicationStatusOut,
             summary="Resubmit an application sent back for more information (back to the review queue)")
@sent_as(msisdn="contact_msisdn")
async def resubmit(application_id: str, body: ResubmissionIn, token: ApplicationToken,
                   service: MerchantsDep) -> ApplicationStatusOut:
    return _status_out(await service.resubmit(
        application_id, token, note=body.note, name=body.name, legal_person=body.legal_person,
        contact=body.contact_msisdn, mcc=body.mcc, website=body.website,
        settlement_account=body.settlement_account))


# ---------------------------------------------------------------------- signed merchant calls


@dataclass(frozen=True, slots=True)
class SignedCall:
    """A verified merchant request: who, what it sent, and the HMAC key to answer with (None: RSA2)."""

    merchant: Merchant
    params: dict[str, Any]
    reply_key: bytes | None


async def signed(request: Request, service: MerchantsDep) -> SignedCall:
    try:
        params = await request.json()
    except (ValueError, RecursionError):  # (the edge refuses deep JSON first: platform/edge.py)
        raise ValidationFailed("send the parameters as a JSON object") from None
    if not isinstance(params, dict):
        raise ValidationFailed("send the parameters as a JSON object")
    merchant, key = await service.authenticate(params)
    return SignedCall(merchant, params, key)


Signed = Annotated[SignedCall, Depends(signed)]


def _reply(service: MerchantService, call: SignedCall, data: dict[str, Any], status: int = 200) -> JSONResponse:
    """The answer, signed the way the app signs (RSA2 with the platform key, or HMAC)."""
    body = {k: _value(v) for k, v in data.items()}
    if call.reply_key is not None:
        body["sign_type"], body["sign"] = "HMAC", sign_hmac(body, call.reply_key)
    else:
        body["sign_type"], body["sign"] = "RSA2", sign_rsa2(body, service.platform_key)
    return JSONResponse(body, status_code=status)


def _value(v: object) -> int | str:
    """An answer's value: amounts stay integer fen (JSON numbers, signed as their digits),
    everything else text."""
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    return "" if v is None else str(v)


def _trade_data(t: Trade) -> dict[str, Any]:
    return {"trade_no": t.id, "out_trade_no": t.out_trade_no, "total_amount": t.amount, "subject": t.subject,
            "trade_status": t.state.value, "buyer_pay_amount": t.amount - t.red_envelope,
            "red_envelope_amount": t.red_envelope, "refunded_amount": t.refunded,
            "expires_at": t.expires_at.isoformat(), "paid_at": t.paid_at.isoformat() if t.paid_at else ""}


def _param(params: dict[str, Any], name: str) -> str:
    value = params.get(name)
    if value in (None, ""):
        raise ValidationFailed(f"send {name}", field=name)
    return str(value)


def _fen(params: dict[str, Any], name: str) -> int:
    return parse_fen(_param(params, name), field=name)


def _minutes(params: dict[str, Any], name: str, default: int) -> int:
    value = str(params.get(name, default))
    if not (value.isascii() and value.isdigit() and len(value) <= 4):
        raise ValidationFailed(f"{name} is a whole number of minutes from 1 to 1440, in ASCII digits", field=name)
    return int(value)


@router.get("/merchant/platform-key", response_class=PlainTextResponse,
            summary="The platform's RSA public key (PEM): verify our answers and notifications with it")
async def platform_key(service: MerchantsDep) -> PlainTextResponse:
    """The PEM; its WeChat Pay-style id (``PUB_KEY_ID_…``, for ``Wechatpay-Serial``) in a header."""
    return PlainTextResponse(service.platform_public_key.decode(),
                             headers={"Wechatpay-Public-Key-Id": wechat.public_key_id(service.platform_public_key)})


@router.post("/merchant/trades", summary="Create a trade (signed; out_trade_no unique per merchant)")
async def create_trade(call: Signed, service: MerchantsDep) -> JSONResponse:
    merchant, p = call.merchant, call.params
    trade = await service.create_trade(merchant, _param(p, "out_trade_no"), _fen(p, "total_amount"),
                                       _param(p, "subject"), _minutes(p, "expire_minutes", 30),
                                       app_id=str(p["app_id"]), notify_url=str(p.get("notify_url") or ""),
                                       store_id=str(p["store_id"]) if p.get("store_id") else None)
    data = {**_trade_data(trade), "pay_url": f"/v1/trades/{trade.id}"}
    if service.trade_qr is not None:  # the dynamic QR code's EMV payload, for the till to show
        data["emv_qr"] = await service.trade_qr(trade)
    return _reply(service, call, data, 201)


@router.post("/merchant/trades/query", summary="Query a trade by out_trade_no or trade_no (signed)")
async def query_trade(call: Signed, service: MerchantsDep) -> JSONResponse:
    merchant, p = call.merchant, call.params
    return _reply(service, call, _trade_data(await service.find_trade(
        merchant, out_trade_no=str(p.get("out_trade_no") or ""), trade_no=str(p.get("trade_no") or ""))))


@router.post("/merchant/trades/close", summary="Close an unpaid trade (signed)")
async def close_trade(call: Signed, service: MerchantsDep) -> JSONResponse:
    merchant, p = call.merchant, call.params
    return _reply(service, call, _trade_data(await service.close(merchant, _param(p, "out_trade_no"))))


@router.post("/merchant/refunds", summary="Refund part or all of a paid trade (signed; out_request_no is the key)")
async def refund(call: Signed, service: MerchantsDep) -> JSONResponse:
    merchant, p = call.merchant, call.params
    trade, amount, replayed = await service.refund(merchant, _param(p, "out_trade_no"), _param(p, "out_request_no"),
                                                   _fen(p, "refund_amount"))
    return _reply(service, call, {**_trade_data(trade), "out_request_no": p["out_request_no"], "refund_amount": amount},
                  200 if replayed else 201)


@router.post("/merchant/trades/cancel", summary="Cancel a trade: close it if unpaid, refund it if paid (signed)")
async def cancel_trade(call: Signed, service: MerchantsDep) -> JSONResponse:
    merchant, p = call.merchant, call.params
    return _reply(service, call, _trade_data(await service.cancel(merchant, _param(p, "out_trade_no"))))


@router.post("/merchant/refunds/query", summary="Query a refund by its request number (signed)")
async def refund_query(call: Signed, service: MerchantsDep) -> JSONResponse:
    merchant, p = call.merchant, call.params
    trade, amount = await service.refund_query(merchant, _param(p, "out_trade_no"), _param(p, "out_request_no"))
    return _reply(service, call, {**_trade_data(trade), "out_request_no": p["out_request_no"], "refund_amount": amount})


@router.post("/merchant/keys", summary="Replace the app's RSA2 public key (signed with the current key; 7-day overlap)")
async def upload_key(call: Signed, service: MerchantsDep) -> JSONResponse:
    merchant, p = call.merchant, call.params
    await service.upload_key(merchant, str(p["app_id"]), _param(p, "public_key"))
    return _reply(service, call, {"app_id": p["app_id"], "key_status": "rotated"})


@router.post("/merchant/stores", summary="Add a store (signed); trades may name it with store_id")
async def add_store(call: Signed, service: MerchantsDep) -> JSONResponse:
    merchant, p = call.merchant, call.params
    store_id = await service.add_store(merchant, _param(p, "name"), str(p.get("address") or ""),
                                       str(p.get("city") or ""))
    return _reply(service, call, {"store_id": store_id, "name": p["name"], "city": str(p.get("city") or "")}, 201)


@router.post("/merchant/statements", response_class=PlainTextResponse,
             summary="The day's trade and refund file, CSV (signed; day=YYYY-MM-DD, Shanghai)")
async def statement(call: Signed, request: Request) -> PlainTextResponse:
    merchant, p = call.merchant, call.params
    try:
        day = date.fromisoformat(_param(p, "day"))
    except ValueError:
        raise ValidationFailed("day is YYYY-MM-DD", field="day") from None
    text = await request.app.state.container.settlements.statement(merchant.id, day)
    service: MerchantService = request.app.state.container.merchants
    digest = {"day": day.isoformat(), "sha256": hashlib.sha256(text.encode()).hexdigest()}
    return PlainTextResponse(text, media_type="text/csv",
                             headers={"X-Sha256": digest["sha256"], "X-Sign": sign_rsa2(digest, service.platform_key)})


# ---------------------------------------------------------------------- the buyer's side


class TradeOut(BaseModel):
    id: str
    merchant: str
    out_trade_no: str
    subject: str
    amount: MoneyOut
    red_envelope: MoneyOut = Field(description="What a red envelope paid of the amount (0 without one)")
    wallet_paid: MoneyOut = Field(description="What the wallet paid: the amount less the red envelope")
    state: Literal["WAIT_BUYER_PAY", "TRADE_SUCCESS", "TRADE_CLOSED"]
    expires_at: datetime
    paid_at: datetime | None


class PayTradeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pin: str | None = Field(default=None, max_length=12)
    coupon_id: str | None = Field(default=None, max_length=40, description="A red envelope to pay part with")


async def _trade_out(service: MerchantService, t: Trade) -> TradeOut:
    m = await service.merchant(t.merchant_id)
    return TradeOut(id=t.id, merchant=m.name, out_trade_no=t.out_trade_no, subject=t.subject,
                    amount=MoneyOut(amount=t.amount, currency="CNY"),
                    red_envelope=MoneyOut(amount=t.red_envelope, currency="CNY"),
                    wallet_paid=MoneyOut(amount=t.amount - t.red_envelope, currency="CNY"), state=t.state.value,
                    expires_at=t.expires_at, paid_at=t.paid_at)


@router.get("/trades/{trade_id}", response_model=TradeOut, summary="A merchant's order, as the buyer sees it")
async def see(trade_id: str, me: Me, service: MerchantsDep) -> TradeOut:
    return await _trade_out(service, await service.trade(trade_id))


@router.post("/trades/{trade_id}/pay", response_model=TradeOut,
             summary="Pay a merchant's order from the wallet (once, however often it is pressed)")
async def pay(trade_id: str, body: PayTradeIn, me: Me, service: MerchantsDep) -> TradeOut:
    return await _trade_out(service, await service.pay(me, trade_id, pin=body.pin, coupon_id=body.coupon_id))


class CouponOut(BaseModel):
    id: str
    campaign_id: str
    face: MoneyOut
    min_spend: MoneyOut
    state: Literal["issued", "used", "expired"]
    expires_at: datetime


def _coupon_out(c: Coupon) -> CouponOut:
    return CouponOut(id=c.id, campaign_id=c.campaign_id, face=MoneyOut(amount=c.face, currency="CNY"),
                     min_spend=MoneyOut(amount=c.min_spend, currency="CNY"), state=c.state,
                     expires_at=c.expires_at)


EnvelopesDep = Annotated[RedEnvelopes, from_container("red_envelopes")]


@router.post("/red-envelopes/{campaign_id}/claim", response_model=CouponOut, status_code=201,
             summary="Get a campaign's red envelope, if its rule gives you one (one each)")
async def claim(campaign_id: str, me: Me, envelopes: EnvelopesDep) -> CouponOut:
    return _coupon_out(await envelopes.claim(me, campaign_id))


class OfferOut(BaseModel):
    merchant_id: str
    merchant: str
    campaign_id: str
    name: str
    rule: Literal["new_user", "threshold", "brand"]
    face: MoneyOut
    min_spend: MoneyOut
    left: int = Field(description="Red envelopes still to give")


@router.get("/red-envelopes/zone", response_model=list[OfferOut],
            summary="The red-envelope zone: participating merchants and their offers")
async def zone(envelopes: EnvelopesDep, limit: int = 100, offset: int = 0) -> list[OfferOut]:
    if not (1 <= limit <= 500 and offset >= 0):
        raise ValidationFailed("limit is 1 to 500, offset at least 0", field="limit")
    return [OfferOut(merchant_id=mid, merchant=name, campaign_id=c.id, name=c.name, rule=c.rule,
                     face=MoneyOut(amount=c.face, currency="CNY"),
                     min_spend=MoneyOut(amount=c.min_spend, currency="CNY"), left=left)
            for mid, name, c, left in await envelopes.zone(limit, offset)]


@router.get("/red-envelopes", response_model=list[CouponOut], summary="My red envelopes")
async def my_envelopes(me: Me, envelopes: EnvelopesDep) -> list[CouponOut]:
    return [_coupon_out(c) for c in await envelopes.mine(me)]
