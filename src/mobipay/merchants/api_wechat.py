"""The WeChat Pay API v3-compatible edge: ``/v3/pay/transactions/...`` and
``/v3/refund/domestic/refunds``, so a shop's WeChat Pay code (``wechatpayv3``) works against
mobipay by changing the gateway URL and the keys (public-key mode: the platform public key
and its ``PUB_KEY_ID_…`` instead of platform certificates).

Requests are signed in the ``Authorization`` header by the app's key over the method, the
path with its query, the timestamp, the nonce (used once) and the body; answers carry the
platform's signature in ``Wechatpay-*`` headers; refusals are WeChat Pay's ``{"code",
"message"}`` with its HTTP statuses. The translation is :mod:`mobipay.merchants.wechat`; the
use cases are the merchants' own (service.py).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from mobipay.kernel.errors import MobipayError
from mobipay.merchants import errors, wechat
from mobipay.merchants.model import App, Merchant
from mobipay.merchants.service import MerchantService
from mobipay.merchants.signing import sign_rsa2_text
from mobipay.merchants.wechat import WechatRefusal
from mobipay.platform.api_common import from_container
from mobipay.platform.openapi import OWN_SHAPE

MerchantsDep = Annotated[MerchantService, from_container("merchants")]

_JSON: dict[str, Any] = {"content": {"application/json": {}}}
#: What the routes answer, for the OpenAPI document: WeChat Pay's JSON, refusals included.
ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"description": "Done (signed in Wechatpay-* headers)", **_JSON},
    **{status: {"description": f"Refused: WeChat Pay's {code}", **_JSON, OWN_SHAPE: True} for status, code in (
        (400, "PARAM_ERROR / INVALID_REQUEST"), (401, "SIGN_ERROR"), (403, "OUT_TRADE_NO_USED / NOT_ENOUGH / NO_AUTH"),
        (404, "ORDER_NOT_EXIST / RESOURCE_NOT_EXISTS"), (429, "FREQUENCY_LIMITED"), (500, "SYSTEM_ERROR"))}}

router = APIRouter(prefix="/v3", tags=["WeChat Pay v3-compatible API"], default_response_class=Response,
                   responses=ANSWERS)


@dataclass(frozen=True, slots=True)
class Call:
    merchant: Merchant
    app: App
    body: dict[str, Any]
    query: dict[str, str]
    base: str


def signed_response(service: MerchantService, status: int, body: dict[str, Any] | None) -> Response:
    """An answer signed in ``Wechatpay-*`` headers over its body as sent (none for 204)."""
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":")) if body is not None else ""
    timestamp, nonce = str(int(service.uow.clock.now().timestamp())), secrets.token_hex(16)
    headers = {"Wechatpay-Timestamp": timestamp, "Wechatpay-Nonce": nonce,
               "Wechatpay-Signature": sign_rsa2_text(wechat.answer_message(timestamp, nonce, text),
                                                     service.platform_key),
               "Wechatpay-Serial": wechat.public_key_id(service.platform_public_key),
               "Wechatpay-Signature-Type": wechat.SCHEME}
    return Response(text.encode(), status_code=status, headers=headers,
                    media_type="application/json" if body is not None else None)


async def _verified(request: Request, service: MerchantService) -> Call:
    raw = (await request.body()).decode("utf-8", "replace")
    auth = wechat.parse_authorization(request.headers.get("authorization", ""), service.uow.clock.now())
    query = request.scope.get("query_string", b"").decode("latin-1")
    target = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1") + (f"?{query}" if query
                                                                                           else "")
    message = wechat.request_message(request.method, target, auth, raw)
    try:
        merchant, app = await service.authenticate_wechat(auth.mchid, message, auth.signature, auth.nonce)
    except (errors.BadSignature, errors.RequestNotSigned) as exc:
        raise WechatRefusal(401, "SIGN_ERROR", exc.detail) from None
    body: Any = {}
    if raw:
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            raise WechatRefusal(400, "PARAM_ERROR", "the body is not JSON") from None
        if not isinstance(body, dict):
            raise WechatRefusal(400, "PARAM_ERROR", "the body is a JSON object")
        if body.get("mchid", auth.mchid) != auth.mchid:
            raise WechatRefusal(400, "PARAM_ERROR", "mchid in the body is not the one that signed")
    elif request.query_params.get("mchid", auth.mchid) != auth.mchid:
        raise WechatRefusal(400, "PARAM_ERROR", "mchid in the query is not the one that signed")
    return Call(merchant, app, body, dict(request.query_params), str(request.base_url).rstrip("/"))


Handler = Callable[[Call, MerchantService], Awaitable[tuple[int, dict[str, Any] | None]]]


async def _answer(request: Request, service: MerchantService, handler: Handler) -> Response:
    try:
        call = await _verified(request, service)
        status, body = await handler(call, service)
    except (WechatRefusal, MobipayError) as exc:
        refused = exc if isinstance(exc, WechatRefusal) else wechat.refusal_of(exc)
        return signed_response(service, refused.status, refused.body())
    return signed_response(service, status, body)


async def _create(call: Call, service: MerchantService) -> str:
    body = call.body
    amount = body.get("amount")
    if not isinstance(amount, dict):
        raise WechatRefusal(400, "PARAM_ERROR", 'send amount: {"total": fen, "currency": "CNY"}')
    wechat.currency(amount)
    scene: dict[str, Any] = body["scene_info"] if isinstance(body.get("scene_info"), dict) else {}
    store: dict[str, Any] = scene["store_info"] if isinstance(scene.get("store_info"), dict) else {}
    trade = await service.create_trade(
        call.merchant, wechat.text_field(body, "out_trade_no", max_length=32), wechat.fen(amount, "total"),
        wechat.text_field(body, "description", max_length=127), wechat.expire_minutes(body, service.uow.clock.now()),
        app_id=call.app.app_id, notify_url=str(body.get("notify_url") or ""),
        store_id=str(store.get("id")) if store.get("id") else None)
    return f"{call.base}/cashier/{trade.id}"


@router.post("/pay/transactions/native", summary="WeChat Pay v3 Native order: the code_url for the QR code")
async def native(request: Request, service: MerchantsDep) -> Response:
    async def work(call: Call, service: MerchantService) -> tuple[int, dict[str, Any] | None]:
        return 200, {"code_url": await _create(call, service)}

    return await _answer(request, service, work)


@router.post("/pay/transactions/h5", summary="WeChat Pay v3 H5 order: the h5_url a mobile browser opens")
async def h5(request: Request, service: MerchantsDep) -> Response:
    async def work(call: Call, service: MerchantService) -> tuple[int, dict[str, Any] | None]:
        return 200, {"h5_url": await _create(call, service)}

    return await _answer(request, service, work)


async def _query(request: Request, service: MerchantService, **by: str) -> Response:
    """A trade by ``out_trade_no`` or ``trade_no``, as WeChat Pay's query answers it."""
    async def work(call: Call, service: MerchantService) -> tuple[int, dict[str, Any] | None]:
        trade = await service.find_trade(call.merchant, **by)
        return 200, wechat.transaction(trade, call.app.app_id, call.app.app_id)

    return await _answer(request, service, work)


@router.get("/pay/transactions/out-trade-no/{out_trade_no}", summary="WeChat Pay v3 query by out_trade_no")
async def query_out(out_trade_no: str, request: Request, service: MerchantsDep) -> Response:
    return await _query(request, service, out_trade_no=out_trade_no)


@router.get("/pay/transactions/id/{transaction_id}", summary="WeChat Pay v3 query by transaction_id")
async def query_id(transaction_id: str, request: Request, service: MerchantsDep) -> Response:
    return await _query(request, service, trade_no=transaction_id)


@router.post("/pay/transactions/out-trade-no/{out_trade_no}/close", responses={204: {"description": "Closed"}},
             summary="WeChat Pay v3 close (204)")
async def close(out_trade_no: str, request: Request, service: MerchantsDep) -> Response:
    async def work(call: Call, service: MerchantService) -> tuple[int, dict[str, Any] | None]:
        await service.close(call.merchant, out_trade_no)
        return 204, None

    return await _answer(request, service, work)


@router.post("/refund/domestic/refunds", summary="WeChat Pay v3 refund (once per out_refund_no)")
async def refund(request: Request, service: MerchantsDep) -> Response:
    async def work(call: Call, service: MerchantService) -> tuple[int, dict[str, Any] | None]:
        body = call.body
        amount = body.get("amount")
        if not isinstance(amount, dict):
            raise WechatRefusal(400, "PARAM_ERROR", 'send amount: {"refund": fen, "total": fen, "currency": "CNY"}')
        wechat.currency(amount)
        before = await service.find_trade(call.merchant, out_trade_no=str(body.get("out_trade_no") or ""),
                                          trade_no=str(body.get("transaction_id") or ""))
        if wechat.fen(amount, "total") != before.amount:
            raise WechatRefusal(400, "PARAM_ERROR", f"amount.total is the order's total, {before.amount}")
        request_no = wechat.text_field(body, "out_refund_no", max_length=64)
        trade, refunded, _ = await service.refund(call.merchant, before.out_trade_no, request_no,
                                                  wechat.fen(amount, "refund"))
        return 200, wechat.refund(trade, request_no, refunded, service.uow.clock.now(), f"{trade.id}:{request_no}")

    return await _answer(request, service, work)


@router.get("/refund/domestic/refunds/{out_refund_no}", summary="WeChat Pay v3 refund query")
async def refund_query(out_refund_no: str, request: Request, service: MerchantsDep) -> Response:
    async def work(call: Call, service: MerchantService) -> tuple[int, dict[str, Any] | None]:
        found = await service.refund_by_request_no(call.merchant, out_refund_no)
        if found is None:
            raise WechatRefusal(404, "RESOURCE_NOT_EXISTS", "no refund with this out_refund_no")
        trade, made = found
        return 200, wechat.refund(trade, out_refund_no, made.amount, made.created_at, f"{trade.id}:{out_refund_no}")

    return await _answer(request, service, work)
