"""In-store QR payments over HTTP.

For the subscriber's app: ``POST /v1/instore/scans`` reads a scanned merchant code and says
what paying it means; ``POST /v1/instore/payments`` pays it (``Idempotency-Key`` required).
For the merchant's server, signed as the merchant API is (docs/merchant-signatures.md), the
signed parameters in the query string: ``GET /v1/merchant/store-qr`` (a store's static code)
and ``GET /v1/merchant/trade-qr`` (a trade's dynamic code), as SVG, PNG or the payload text.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from mobipay.instore import render
from mobipay.instore.alliances_api import AlliancesDep, OfferOut, PrivilegeOut, receipt, scan_preview
from mobipay.instore.service import InStore, Scan
from mobipay.kernel.errors import ValidationFailed
from mobipay.kernel.money import MAX_AMOUNT
from mobipay.merchants.service import Merchant, MerchantService, Trade
from mobipay.platform.api_common import IdemKey, MoneyOut, from_container, require_key
from mobipay.wallet.api_deps import Me

router = APIRouter(prefix="/v1", tags=["in-store"])

InStoreDep = Annotated[InStore, from_container("instore")]
MerchantsDep = Annotated[MerchantService, from_container("merchants")]


class ScanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    payload: str = Field(max_length=2048, description="The QR code's text as the camera read it")
    amount: StrictInt | None = Field(default=None, gt=0, le=MAX_AMOUNT,
                                     description="Fen the payer typed for a static code: previews its privilege")


class MerchantOut(BaseModel):
    id: str
    name: str = Field(description="The merchant's name (Chinese, as registered)")


class StoreOut(BaseModel):
    id: str
    name: str


class ScanOut(BaseModel):
    scan_id: str = Field(description="Send it back with the payment to pay exactly what was shown")
    kind: Literal["static", "dynamic"] = Field(description="static: type the amount; dynamic: the order's amount")
    merchant: MerchantOut
    store: StoreOut | None
    city: str
    amount: MoneyOut | None = Field(description="A dynamic code's amount; null for a static code")
    trade_id: str | None
    subject: str | None
    privilege: PrivilegeOut | None = Field(default=None, description="The alliance privilege paying would get "
                                           "(a dynamic code's amount, or the amount sent for a static code)")
    offers: list[OfferOut] = Field(default_factory=list, description="Alliance privileges for you at this store")


class PayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    payload: str = Field(max_length=2048)
    amount: StrictInt | None = Field(default=None, gt=0, le=MAX_AMOUNT,
                                     description="Fen, for a static code only (refused for a dynamic one)")
    pin: str | None = Field(default=None, max_length=12)
    scan_id: str | None = Field(default=None, max_length=40, description="The scan's answer this pays")


class PaymentOut(ScanOut):
    state: Literal["WAIT_BUYER_PAY", "TRADE_SUCCESS", "TRADE_CLOSED"]
    paid: MoneyOut
    paid_at: datetime | None = None


def _scan_out(s: Scan, trade: Trade | None = None) -> dict[str, Any]:
    trade = trade or s.trade
    return {"scan_id": s.scan_id, "kind": s.kind, "merchant": MerchantOut(id=s.merchant.id, name=s.merchant.name),
            "store": StoreOut(id=s.store.id, name=s.store.name) if s.store else None, "city": s.city,
            "amount": MoneyOut(amount=s.amount, currency="CNY") if s.amount is not None else None,
            "trade_id": trade.id if trade else None, "subject": trade.subject if trade else None}


@router.post("/instore/scans", response_model=ScanOut, summary="Read a scanned merchant QR code before paying it")
async def scan(body: ScanIn, me: Me, instore: InStoreDep, alliances: AlliancesDep) -> ScanOut:
    """What the app shows: the merchant (Chinese name), store, city and, for a dynamic code,
    the amount; a code that is not ours, damaged, or names nothing payable is refused. With
    the alliance privilege paying would get (for a static code, of the ``amount`` sent)."""
    seen = await instore.scan(body.payload)
    return ScanOut(**_scan_out(seen), **await scan_preview(alliances, me, seen, body.amount))


@router.post("/instore/payments", response_model=PaymentOut, status_code=201,
             responses={200: {"description": "A retry: the payment made before (header Idempotent-Replayed: true)"}},
             summary="Pay a scanned merchant QR code from the wallet (Idempotency-Key required)")
async def pay(body: PayIn, response: Response, me: Me, instore: InStoreDep, alliances: AlliancesDep,
              idempotency_key: IdemKey = None) -> PaymentOut:
    """A dynamic code pays its order (send no amount); a static code pays the store the
    amount sent. Daily limits (PBoC 2017/296): QR_STATIC_DAILY_LIMIT, QR_DYNAMIC_DAILY_LIMIT."""
    seen, trade, replayed = await instore.pay(me, body.payload, idempotency_key=require_key(idempotency_key),
                                              amount=body.amount, pin=body.pin, expected_scan=body.scan_id)
    if replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    out = _scan_out(seen, trade)
    out["amount"] = MoneyOut(amount=trade.amount, currency="CNY")
    return PaymentOut(**out, state=trade.state.value, privilege=await receipt(alliances, trade),
                      paid=MoneyOut(amount=trade.wallet_paid, currency="CNY"),
                      paid_at=trade.paid_at)


# ---------------------------------------------------------------------- the merchant's codes

async def _signed_query(request: Request, merchants: MerchantService) -> tuple[Merchant, bytes | None,
                                                                                   dict[str, str]]:
    """A signed merchant GET: the signed parameters (app_id, timestamp, nonce, sign_type, sign
    and the route's own) in the query string, verified as the merchant API verifies a body."""
    params = dict(request.query_params)
    merchant, key = await merchants.authenticate(dict[str, object](params))
    return merchant, key, params


def _image(merchants: MerchantService, payload: str, fmt: str, key: bytes | None, name: str,
           value: str) -> Response:
    if fmt == "svg":
        return Response(render.svg(payload), media_type="image/svg+xml")
    if fmt == "png":
        return Response(render.png(payload), media_type="image/png")
    if fmt == "text":
        return JSONResponse(merchants.sign_answer({name: value, "emv_qr": payload}, key))
    raise ValidationFailed("format is svg, png or text", field="format")


@router.get("/merchant/store-qr", summary="A store's static QR code: SVG, PNG or its payload (signed query)",
            responses={200: {"content": {"image/svg+xml": {}, "image/png": {}}}})
async def store_qr(request: Request, instore: InStoreDep, merchants: MerchantsDep) -> Response:
    merchant, key, p = await _signed_query(request, merchants)
    store_id = p.get("store_id") or ""
    if not store_id:
        raise ValidationFailed("send store_id", field="store_id")
    payload = await instore.store_payload(merchant, store_id)
    return _image(merchants, payload, p.get("format", "svg"), key, "store_id", store_id)


@router.get("/merchant/trade-qr", summary="A trade's dynamic QR code: SVG, PNG or its payload (signed query)",
            responses={200: {"content": {"image/svg+xml": {}, "image/png": {}}}})
async def trade_qr(request: Request, instore: InStoreDep, merchants: MerchantsDep) -> Response:
    merchant, key, p = await _signed_query(request, merchants)
    out_trade_no = p.get("out_trade_no") or ""
    if not out_trade_no:
        raise ValidationFailed("send out_trade_no", field="out_trade_no")
    payload = await instore.own_trade_payload(merchant, out_trade_no)
    return _image(merchants, payload, p.get("format", "svg"), key, "out_trade_no", out_trade_no)
