"""The hosted cashier: the page a merchant sends a buyer to (web and mobile web) to pay a
trade from the wallet, then back to the merchant's ``return_url``.

``GET /cashier/{trade_id}?return_url=…``: sign in by number and SMS code (a wallet
session in an HttpOnly cookie), see the order, pick a red envelope, confirm with the PIN
(not needed up to the password-free amount), pay; a done page returns to the merchant.
Every form carries a CSRF token (double submit: cookie and field must match); every page
is sent with a strict Content-Security-Policy. The return URL must be an unambiguous
http(s) address on the host of the merchant's registered website, compared as a browser
reads it (:func:`mobipay.merchants.model.check_return_url`), and it is checked before
anything else is done; the done page sends the buyer to the address as checked.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mobipay.channels.web.common import check_csrf, container, lang, message, page, renew_csrf, set_cookie
from mobipay.kernel.errors import MobipayError, ValidationFailed
from mobipay.kernel.urls import WebAddress
from mobipay.merchants.model import check_return_url
from mobipay.merchants.service import Trade
from mobipay.wallet.model import OtpPurpose

router = APIRouter(prefix="/cashier", include_in_schema=False)
SESSION = "mp_session"
_container = container


async def _return_url(request: Request, trade: Trade, raw: str) -> WebAddress | None:
    """The checked way back to the shop; none when the buyer came without one (a QR code
    scanned by the phone: the buyer stays on the done page)."""
    if not raw:
        return None
    website = (await _container(request).merchants.merchant(trade.merchant_id)).website
    return check_return_url(raw, website)


def _query(back: WebAddress | None) -> str:
    return "?" + urlencode({"return_url": str(back)}) if back is not None else ""


async def _page(request: Request, trade_id: str, return_url: str = "", *, error: str = "", msisdn: str = "",
                status: int = 200) -> Response:
    c = _container(request)
    trade = await c.merchants.trade(trade_id)
    back = await _return_url(request, trade, return_url)
    merchant = await c.merchants.merchant(trade.merchant_id)
    principal = await _principal(request)
    coupons = []
    if principal is not None:
        coupons = [cp for cp in await c.red_envelopes.mine(principal)
                   if cp.state == "issued" and cp.merchant_id == trade.merchant_id and cp.min_spend <= trade.amount
                   and cp.expires_at > c.clock.now()]
    return page(request, "cashier.html", {
        "trade": trade, "merchant": merchant.name, "signed_in": principal is not None, "coupons": coupons,
        "error": error, "msisdn": msisdn, "password_free": c.wallet.limits.password_free,
        "base": f"/cashier/{trade.id}", "query": _query(back)}, status=status)


async def _principal(request: Request) -> Any:
    token = request.cookies.get(SESSION)
    if not token:
        return None
    try:
        return await _container(request).wallet.authenticate(token)
    except MobipayError:
        return None


def _message(request: Request, exc: MobipayError) -> str:
    return message(exc, lang(request))


@router.get("/{trade_id}", response_class=HTMLResponse)
async def cashier(trade_id: str, request: Request, return_url: str = "") -> Response:
    return await _page(request, trade_id, return_url)


@router.post("/{trade_id}/otp", response_class=HTMLResponse)
async def otp(trade_id: str, request: Request, return_url: str = "", csrf: str = Form(""), msisdn: str = Form("")
              ) -> Response:
    await _return_url(request, await _container(request).merchants.trade(trade_id), return_url)
    try:
        check_csrf(request, csrf)
        await _container(request).wallet.request_otp(msisdn, OtpPurpose.LOGIN)
    except MobipayError as exc:
        return await _page(request, trade_id, return_url, error=_message(request, exc), status=exc.status)
    return await _page(request, trade_id, return_url, msisdn=msisdn)


@router.post("/{trade_id}/signin", response_class=HTMLResponse)
async def signin(trade_id: str, request: Request, return_url: str = "", csrf: str = Form(""), msisdn: str = Form(""),
                 code: str = Form("")) -> Response:
    back = await _return_url(request, await _container(request).merchants.trade(trade_id), return_url)
    try:
        check_csrf(request, csrf)
        tokens = await _container(request).wallet.login(msisdn, device_id="web-cashier", device_name="cashier",
                                                         code=code)
    except MobipayError as exc:
        return await _page(request, trade_id, return_url, error=_message(request, exc), msisdn=msisdn,
                           status=exc.status)
    response = RedirectResponse(f"/cashier/{trade_id}{_query(back)}", status_code=303)
    set_cookie(response, request, SESSION, tokens.access_token, tokens.expires_in)
    renew_csrf(response, request)
    return response


@router.post("/{trade_id}/pay", response_class=HTMLResponse)
async def pay(trade_id: str, request: Request, return_url: str = "", csrf: str = Form(""), pin: str = Form(""),
              coupon_id: str = Form("")) -> Response:
    c = _container(request)
    principal = await _principal(request)
    back = await _return_url(request, await c.merchants.trade(trade_id), return_url)  # before any money moves
    try:
        check_csrf(request, csrf)
        if principal is None:
            raise ValidationFailed("sign in first", field="msisdn")
        trade = await c.merchants.pay(principal, trade_id, pin=pin or None, coupon_id=coupon_id or None)
    except MobipayError as exc:
        return await _page(request, trade_id, return_url, error=_message(request, exc), status=exc.status)
    target = back.with_query(urlencode(await c.merchants.cashier_return(trade))) if back is not None else ""
    merchant = await c.merchants.merchant(trade.merchant_id)
    return page(request, "done.html", {"trade": trade, "merchant": merchant.name,
                                       "paid": trade.paid_at is not None, "back": str(target)})
