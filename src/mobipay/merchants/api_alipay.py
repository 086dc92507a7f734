"""The Alipay-compatible gateway: ``GET|POST /gateway.do``, so a shop's existing Alipay
code (python-alipay-sdk, the official alipay-sdk-python, or its own) works against mobipay
by changing the gateway URL and the keys.

Parameters come in the query string and/or a form body, the business fields in
``biz_content``; the request is signed by Alipay's rule (every parameter but ``sign``);
answers are HTTP 200 ``{"<method>_response": {"code": "10000", …}, "sign": "…"}`` signed
with the platform key over the inner JSON as written, refusals ``40001`` / ``40002`` /
``40004`` with ``isv.*`` / ``ACQ.*`` sub-codes in the same envelope. The translation is
:mod:`mobipay.merchants.alipay`; the use cases are the merchants' own (service.py), so a
trade made here is the trade the JSON API, the portal and settlement see.
"""

from __future__ import annotations

import binascii
import io
import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from html import escape
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from mobipay.kernel.errors import MobipayError
from mobipay.kernel.money import yuan
from mobipay.merchants import alipay, errors
from mobipay.merchants.alipay import GatewayRefusal, TradeView, amount, beijing, field, success
from mobipay.merchants.model import App, Merchant, Trade, TradeState, check_day_closed, check_return_url
from mobipay.merchants.service import MerchantService
from mobipay.merchants.settlement import Settlements
from mobipay.merchants.signing import sign_rsa2_text, verify_rsa2_text
from mobipay.platform.api_common import from_container
from mobipay.platform.openapi import OWN_SHAPE

router = APIRouter(tags=["alipay-compatible gateway"])

MerchantsDep = Annotated[MerchantService, from_container("merchants")]
SettlementsDep = Annotated[Settlements, from_container("settlements")]

#: How long a statement's download URL works (Alipay's: 30 seconds; a little longer here).
BILL_URL_S = 300


@dataclass(frozen=True, slots=True)
class Call:
    """A verified gateway request."""

    merchant: Merchant
    app: App
    params: dict[str, str]
    biz: dict[str, str]
    base: str  # this server's address as the client reached it, for URLs in answers


async def _parameters(request: Request) -> dict[str, str]:
    """Query string and form body together (Alipay's official client puts the common
    parameters in the query and ``biz_content`` in the body; others put all in one)."""
    params = dict(request.query_params)
    if request.method == "POST" and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        form: FormData = await request.form()
        params |= {k: v for k, v in form.items() if isinstance(v, str)}
    return params


def _answer(service: MerchantService, method: str, content: dict[str, str]) -> Response:
    key = method if method in alipay.METHODS else "error"
    text = alipay.answer_text(content)
    body = alipay.envelope(key, text, sign_rsa2_text(text, service.platform_key))
    return Response(body, media_type="application/json;charset=utf-8")


#: What the gateway answers, for the OpenAPI document: Alipay's envelope (refusals too, HTTP 200),
#: a redirect to the cashier or an HTML refusal for the browser methods.
ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"description": "Alipay's envelope, signed (refusals too: code 40001/40002/40004)",
          "content": {"application/json": {}}},
    303: {"description": "page.pay / wap.pay: to the hosted cashier"},
    400: {"description": "page.pay / wap.pay refused: a page for the browser", "content": {"text/html": {}},
          OWN_SHAPE: True}}


@router.get("/gateway.do", response_class=Response, operation_id="alipay_gateway_get", responses=ANSWERS,
            summary="Alipay-compatible gateway, parameters in the query (python-alipay-sdk; page pay links)")
@router.post("/gateway.do", response_class=Response, operation_id="alipay_gateway_post", responses=ANSWERS,
             summary="Alipay-compatible gateway: method=alipay.trade.*, Alipay's signing, envelope and codes")
async def gateway(request: Request, service: MerchantsDep) -> Response:
    params = await _parameters(request)
    method = params.get("method", "")
    try:
        call = await _verified(request, service, params)
        if method in alipay.BROWSER_METHODS:
            return await _browser_pay(call, service)
        content = await HANDLERS[method](call, service)
    except (GatewayRefusal, MobipayError) as exc:
        refused = exc if isinstance(exc, GatewayRefusal) else alipay.refusal_of(exc)
        if method in alipay.BROWSER_METHODS:
            return _browser_refusal(refused)
        return _answer(service, method, alipay.failure_content(refused))
    return _answer(service, method, content)


async def _verified(request: Request, service: MerchantsDep, params: dict[str, str]) -> Call:
    alipay.check_common(params, service.uow.clock.now())
    try:
        merchant, app = await service.authenticate_alipay(params["app_id"], alipay.request_string(params),
                                                          params["sign"])
    except errors.BadSignature:
        raise alipay.invalid("signature", "the RSA2 signature does not verify: sign every parameter except sign "
                             "(sign_type included), sorted, with the app's private key") from None
    except errors.RequestNotSigned as exc:
        raise alipay.invalid("app_id", exc.detail) from None
    return Call(merchant, app, params, alipay.biz_content(params), str(request.base_url).rstrip("/"))


async def _create(call: Call, service: MerchantService) -> Trade:
    biz = call.biz
    return await service.create_trade(call.merchant, field(biz, "out_trade_no"), amount(biz, "total_amount"),
                                      field(biz, "subject"), alipay.minutes(biz), app_id=call.app.app_id,
                                      notify_url=call.params.get("notify_url", ""),
                                      store_id=biz.get("store_id") or None)


async def _trade_of(call: Call, service: MerchantService) -> Trade:
    return await service.find_trade(call.merchant, out_trade_no=call.biz.get("out_trade_no", ""),
                                    trade_no=call.biz.get("trade_no", ""))


Handler = Callable[[Call, MerchantService], Awaitable[dict[str, str]]]


async def create(call: Call, service: MerchantService) -> dict[str, str]:
    trade = await _create(call, service)
    return success(out_trade_no=trade.out_trade_no, trade_no=trade.id)


async def precreate(call: Call, service: MerchantService) -> dict[str, str]:
    """A trade and the text of its QR code: the hosted cashier, where the buyer's phone pays it."""
    trade = await _create(call, service)
    return success(out_trade_no=trade.out_trade_no, qr_code=f"{call.base}/cashier/{trade.id}")


async def query(call: Call, service: MerchantService) -> dict[str, str]:
    return TradeView(await _trade_of(call, service)).query()


async def close(call: Call, service: MerchantService) -> dict[str, str]:
    trade = await service.close(call.merchant, (await _trade_of(call, service)).out_trade_no)
    return success(trade_no=trade.id, out_trade_no=trade.out_trade_no)


async def cancel(call: Call, service: MerchantService) -> dict[str, str]:
    before = await _trade_of(call, service)
    trade = await service.cancel(call.merchant, before.out_trade_no)
    return success(trade_no=trade.id, out_trade_no=trade.out_trade_no, retry_flag="N",
                   action="refund" if before.paid_at is not None else "close")


async def refund(call: Call, service: MerchantService) -> dict[str, str]:
    """A refund, once per ``out_request_no`` (Alipay's default: the trade's number, so a
    refund without one is a single refund); a replay answers ``fund_change`` N."""
    before = await _trade_of(call, service)
    request_no = call.biz.get("out_request_no") or before.out_trade_no
    trade, refunded, replayed = await service.refund(call.merchant, before.out_trade_no, request_no,
                                                     amount(call.biz, "refund_amount"))
    return success(trade_no=trade.id, out_trade_no=trade.out_trade_no, out_request_no=request_no,
                   fund_change="N" if replayed else "Y", refund_fee=yuan(trade.refunded),
                   send_back_fee=yuan(refunded), gmt_refund_pay=beijing(service.uow.clock.now()))


async def refund_query(call: Call, service: MerchantService) -> dict[str, str]:
    """A refund by its request number; as Alipay answers, a refund that does not exist is a
    success without ``refund_amount`` (it was not made)."""
    trade = await _trade_of(call, service)
    request_no = call.biz.get("out_request_no") or trade.out_trade_no
    try:
        _trade, refunded = await service.refund_query(call.merchant, trade.out_trade_no, request_no)
    except errors.TradeNotFound as exc:
        if exc.field != "out_request_no":
            raise
        return success(trade_no=trade.id, out_trade_no=trade.out_trade_no, out_request_no=request_no)
    return success(trade_no=trade.id, out_trade_no=trade.out_trade_no, out_request_no=request_no,
                   total_amount=yuan(trade.amount), refund_amount=yuan(refunded),
                   refund_status="REFUND_SUCCESS")


async def bill_url(call: Call, service: MerchantService) -> dict[str, str]:
    """Where to download a day's trade and refund file (a zip of Alipay's CSV layout), for
    BILL_URL_S seconds."""
    bill_type, text = field(call.biz, "bill_type"), field(call.biz, "bill_date")
    if bill_type not in ("trade", "signcustomer"):
        raise GatewayRefusal("40004", "isv.invalid-bill-type", "bill_type is trade (or signcustomer: the same file)")
    try:
        day = date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        day = None
    if day is None:
        raise GatewayRefusal("40004", "isv.invalid-bill-date", "bill_date is one day, yyyy-MM-dd (Beijing time); "
                             "a month's file is the files of its days")
    try:
        check_day_closed(day, service.uow.clock.now())
    except errors.SettlementDayOpen as exc:
        raise GatewayRefusal("40004", "isp.bill_not_exist", exc.detail, exc.code) from None
    expires = str(int(service.uow.clock.now().timestamp()) + BILL_URL_S)
    token = _bill_token(call.merchant.id, call.app.app_id, day, expires)
    query_text = urlencode({"merchant": call.merchant.id, "app": call.app.app_id, "day": day.isoformat(),
                            "expires": expires,
                            "sign": sign_rsa2_text(token, service.platform_key)})
    return success(bill_download_url=f"{call.base}/gateway/bill?{query_text}")


HANDLERS: dict[str, Handler] = {
    "alipay.trade.create": create, "alipay.trade.precreate": precreate, "alipay.trade.query": query,
    "alipay.trade.close": close, "alipay.trade.cancel": cancel, "alipay.trade.refund": refund,
    "alipay.trade.fastpay.refund.query": refund_query,
    "alipay.data.dataservice.bill.downloadurl.query": bill_url,
}


def _bill_token(merchant_id: str, app_id: str, day: date, expires: str) -> str:
    return f"bill|{merchant_id}|{app_id}|{day.isoformat()}|{expires}"


async def _browser_pay(call: Call, service: MerchantService) -> Response:
    """page.pay / wap.pay: the trade, then the buyer's browser to the hosted cashier, which
    returns to ``return_url`` (on the shop's registered website) with Alipay's signed return."""
    return_url = call.params.get("return_url", "")
    back = str(check_return_url(return_url, call.merchant.website)) if return_url else ""
    trade = await _create(call, service)
    if trade.state is not TradeState.WAIT_BUYER_PAY:
        raise GatewayRefusal("40004", "ACQ.TRADE_HAS_SUCCESS" if trade.paid_at else "ACQ.TRADE_HAS_CLOSE",
                             f"the trade is {trade.state.value}")
    target = f"/cashier/{trade.id}" + (f"?{urlencode({'return_url': back})}" if back else "")
    return RedirectResponse(target, status_code=303)


def _browser_refusal(refusal: GatewayRefusal) -> Response:
    """A refusal a buyer's browser shows: the shop's developer reads the codes in it."""
    text = (f"<!doctype html><meta charset=utf-8><title>{refusal.code}</title><h1>支付请求有误 · Payment request "
            f"refused</h1><p>{escape(refusal.sub_code)}: {escape(refusal.sub_msg)}</p>")
    return HTMLResponse(text, status_code=400)


@router.get("/gateway/bill", response_class=Response, include_in_schema=False)
async def bill(merchant: str, app: str, day: str, expires: str, sign: str, service: MerchantsDep,
               settlements: SettlementsDep) -> Response:
    """A statement's download (the URL ``bill.downloadurl.query`` answered): a zip holding
    the day's CSV as Alipay writes it (GB18030, which reads as GBK), while the URL's
    signature and time hold."""
    try:
        when = date.fromisoformat(day)
        verify_rsa2_text(_bill_token(merchant, app, when, expires), sign, service.platform_public_key)
        if not (expires.isascii() and expires.isdigit() and int(expires) >= service.uow.clock.now().timestamp()):
            raise ValueError("expired")
    except (ValueError, binascii.Error, errors.BadSignature):
        return Response("this download link is not valid or has expired: ask for a new one "
                        "(alipay.data.dataservice.bill.downloadurl.query)", status_code=404, media_type="text/plain")
    paid, refunded = await settlements.day_lines(merchant, when)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{app}_{when:%Y%m%d}_业务明细.csv", alipay.bill(app, when, paid, refunded).encode("gb18030"))
    name = f"{merchant}_{when:%Y%m%d}.csv.zip"
    return Response(out.getvalue(), media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})

