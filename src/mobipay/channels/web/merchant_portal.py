"""The merchant portal under ``/merchant``, for a merchant's staff: orders (search, detail),
partial refunds confirmed with the operator's refund PIN, daily statements (CSV, the
settlement module's file), settlement reports, API apps (create, rotate the RSA2 key) and
notify URLs.

Staff sign in with the merchant id, their name and password (accounts made with
``mobipay merchants operator-create``); the session is a random token in an HttpOnly,
SameSite=Lax cookie (Secure over HTTPS), kept server-side only as SHA-256. Every read and
write goes through :class:`mobipay.merchants.operators.MerchantOperators`, scoped to the
signed-in operator's merchant: another merchant's trade id is "not found". Every POST
carries the CSRF token; a refund form carries its own request number (rendered with the
form), so a double submit refunds once.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mobipay.channels.web.common import (
    check_csrf,
    client_address,
    container,
    harden,
    lang,
    message,
    page,
    renew_csrf,
    set_cookie,
)
from mobipay.channels.web.forms import parse_yuan
from mobipay.kernel.clock import SHANGHAI
from mobipay.kernel.errors import MobipayError, ValidationFailed
from mobipay.merchants.model import TradeState
from mobipay.merchants.operators import MerchantOperator, MerchantOperators
from mobipay.platform.staff_sessions import SESSION_TTL

router = APIRouter(prefix="/merchant", include_in_schema=False)
SESSION = "mp_merchant"


def _ops(request: Request) -> MerchantOperators:
    return container(request).merchant_operators


async def _op(request: Request) -> MerchantOperator | None:
    token = request.cookies.get(SESSION, "")
    if not token:
        return None
    try:
        return await _ops(request).session(token)
    except MobipayError:
        return None


def _signin(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/merchant/signin?next={quote(target)}", status_code=303)


def _view(request: Request, op: MerchantOperator, name: str, ctx: dict[str, Any] | None = None, *,
          status: int = 200) -> Response:
    return page(request, f"merchant/{name}", {"op": op, **(ctx or {})}, status=status)


def _words(request: Request, exc: MobipayError) -> str:
    return message(exc, lang(request))


def _safe_next(raw: str) -> str:
    return raw if raw.startswith("/merchant") and "\\" not in raw else "/merchant"


@router.get("/signin", response_class=HTMLResponse)
async def signin_page(request: Request, next: str = "/merchant") -> Response:
    return page(request, "merchant/signin.html", {"next": _safe_next(next), "merchant_id": "", "name": ""})


@router.post("/signin", response_class=HTMLResponse)
async def signin(request: Request, csrf: str = Form(""), merchant_id: str = Form(""), name: str = Form(""),
                 password: str = Form(""), next: str = Form("/merchant")) -> Response:
    try:
        check_csrf(request, csrf)
        await container(request).rate_limiter.hit("pin", client_address(request))
        token, _ = await _ops(request).sign_in(merchant_id, name, password, client=client_address(request))
    except MobipayError as exc:
        return page(request, "merchant/signin.html", {"next": _safe_next(next), "merchant_id": merchant_id,
                                                       "name": name, "error": _words(request, exc)},
                    status=exc.status)
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_cookie(response, request, SESSION, token, int(SESSION_TTL.total_seconds()))
    renew_csrf(response, request)
    return response


@router.post("/signout", response_class=HTMLResponse)
async def signout(request: Request, csrf: str = Form("")) -> Response:
    check_csrf(request, csrf)
    token = request.cookies.get(SESSION, "")
    if token:
        await _ops(request).sign_out(token)
    response = RedirectResponse("/merchant/signin", status_code=303)
    response.delete_cookie(SESSION)
    return response


# ---------------------------------------------------------------------- orders and refunds


@router.get("", response_class=HTMLResponse)
async def orders(request: Request, q: str = "", state: str = "", before: str = "") -> Response:
    op = await _op(request)
    if op is None:
        return _signin(request)
    error = ""
    if state and state not in {s.value for s in TradeState}:
        state, error = "", _words(request, ValidationFailed("choose a state from the list", field="state"))
    items, nxt = await _ops(request).trades(op, q=q[:64], state=state, before=before[:40])
    merchant = await container(request).merchants.merchant(op.merchant_id)
    query = {k: v for k, v in {"q": q, "state": state}.items() if v}
    return _view(request, op, "orders.html", {
        "merchant": merchant, "items": items, "q": q, "state": state, "states": [s.value for s in TradeState],
        "error": error, "next": urlencode({**query, "before": nxt}) if nxt else None})


async def _trade_page(request: Request, op: MerchantOperator, trade_id: str, *, error: str = "",
                      done: str = "", status: int = 200, amount: str = "") -> Response:
    try:
        trade, back = await _ops(request).trade(op, trade_id)
    except MobipayError as exc:
        return _view(request, op, "notfound.html", {"error": _words(request, exc)}, status=exc.status)
    return _view(request, op, "trade.html", {"trade": trade, "refunds": back, "error": error, "done": done,
                                             "amount": amount, "request_no": "rf" + secrets.token_hex(12)},
                 status=status)


@router.get("/orders/{trade_id}", response_class=HTMLResponse)
async def trade(trade_id: str, request: Request) -> Response:
    op = await _op(request)
    if op is None:
        return _signin(request)
    return await _trade_page(request, op, trade_id)


@router.post("/orders/{trade_id}/refund", response_class=HTMLResponse)
async def refund(trade_id: str, request: Request, csrf: str = Form(""), amount: str = Form(""),
                 refund_pin: str = Form(""), request_no: str = Form("")) -> Response:
    op = await _op(request)
    if op is None:
        return _signin(request)
    try:
        check_csrf(request, csrf)
        _, refunded, _ = await _ops(request).refund(op, trade_id, parse_yuan(amount),
                                                           out_request_no=request_no, pin=refund_pin)
    except MobipayError as exc:
        return await _trade_page(request, op, trade_id, error=_words(request, exc), status=exc.status,
                                 amount=amount)
    return await _trade_page(request, op, trade_id, done=f"{refunded // 100}.{refunded % 100:02d}")


# ---------------------------------------------------------------------- statements and settlement


@router.get("/statements", response_class=HTMLResponse)
async def statements(request: Request) -> Response:
    op = await _op(request)
    if op is None:
        return _signin(request)
    today = container(request).clock.now().astimezone(SHANGHAI).date()
    days = [(today - timedelta(days=n)).isoformat() for n in range(0, 14)]
    return _view(request, op, "statements.html", {"days": days,
                                                  "settlements": await _ops(request).settlements(op)})


@router.get("/statements/{day}.csv")
async def statement_csv(day: str, request: Request) -> Response:
    op = await _op(request)
    if op is None:
        return _signin(request)
    try:
        when = MerchantOperators.parse_day(day)
    except MobipayError as exc:
        return _view(request, op, "notfound.html", {"error": _words(request, exc)}, status=exc.status)
    body = await container(request).settlements.statement(op.merchant_id, when)
    response = Response(body, media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="statement-{op.merchant_id}-{when.isoformat()}.csv"'})
    return harden(response, request)


# ---------------------------------------------------------------------- API apps and notify URL


async def _apps_page(request: Request, op: MerchantOperator, *, error: str = "", shown_key: str = "",
                     done: str = "", status: int = 200) -> Response:
    undelivered = await container(request).merchant_notifier.undelivered(op.merchant_id, limit=20)
    return _view(request, op, "apps.html", {"apps": await _ops(request).apps(op), "error": error,
                                            "shown_key": shown_key, "done": done, "undelivered": undelivered},
                 status=status)


@router.get("/apps", response_class=HTMLResponse)
async def apps(request: Request) -> Response:
    op = await _op(request)
    if op is None:
        return _signin(request)
    return await _apps_page(request, op)


@router.post("/apps", response_class=HTMLResponse)
async def create_app(request: Request, csrf: str = Form(""), sign_type: str = Form(""),
                     public_key: str = Form(""), notify_url: str = Form(""), protocol: str = Form("mobipay")
                     ) -> Response:
    op = await _op(request)
    if op is None:
        return _signin(request)
    try:
        check_csrf(request, csrf)
        app_id, key = await _ops(request).create_app(op, sign_type, public_key, notify_url, protocol)
    except MobipayError as exc:
        return await _apps_page(request, op, error=_words(request, exc), status=exc.status)
    return await _apps_page(request, op, shown_key=key or "", done=app_id)


@router.post("/apps/{app_id}/key", response_class=HTMLResponse)
async def rotate_key(app_id: str, request: Request, csrf: str = Form(""), public_key: str = Form("")) -> Response:
    op = await _op(request)
    if op is None:
        return _signin(request)
    try:
        check_csrf(request, csrf)
        await _ops(request).rotate_key(op, app_id, public_key)
    except MobipayError as exc:
        return await _apps_page(request, op, error=_words(request, exc), status=exc.status)
    return await _apps_page(request, op, done=app_id)


@router.post("/apps/{app_id}/notify-url", response_class=HTMLResponse)
async def notify_url(app_id: str, request: Request, csrf: str = Form(""), url: str = Form("")) -> Response:
    op = await _op(request)
    if op is None:
        return _signin(request)
    try:
        check_csrf(request, csrf)
        await _ops(request).set_notify_url(op, app_id, url)
    except MobipayError as exc:
        return await _apps_page(request, op, error=_words(request, exc), status=exc.status)
    return await _apps_page(request, op, done=app_id)
