"""The mobile web wallet's payment code (付款码) at ``/m/paycode``.

The page provisions this browser session's device secret once (``Micropay.provision``, the
same use case as ``POST /v1/instore/paycode/devices``) and hands it to the page's script,
which keeps it in the browser (IndexedDB, as a non-extractable WebCrypto key) and computes
every code there: ``78`` + device number + the 8-digit TOTP (RFC 6238, HMAC-SHA1, 30 s
steps) from the browser's clock plus the offset to the platform's. The server never sees
the secret again, so the code keeps changing offline (the page's service worker serves the
page and its scripts from the cache).

The JSON routes under ``/m/paycode/`` are the page's own: signed in by the wallet cookie
(a 401 answer rather than the sign-in redirect, which a script cannot follow), every POST
with the page's CSRF token, refusals as ``{"code", "message"}`` in the page's language.

* ``POST /m/paycode/device`` (csrf, key: the idempotency key the page was rendered with):
  the secret (201); a retry with the same key answers the same device (200). A session opened with the
  PIN alone is refused (``PAYCODE_DEVICE_NOT_BOUND``) with what to do.
* ``GET /m/paycode/pending``: the platform's clock, this session's device state, and the
  orders a till waits on the payer for (USERPAYING); the page polls it every 3 s.
* ``POST /m/paycode/orders/{id}/confirm`` (csrf, pin) and ``…/decline`` (csrf).
"""

from __future__ import annotations

import base64
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from mobipay.channels.web.common import STATIC_DIR, check_csrf, container, form_key, harden, hit_limit, lang, message
from mobipay.channels.web.wallet import _keep, _me, _signed_in, _view
from mobipay.channels.words import yuan
from mobipay.instore.micropay import MicropayOrder, PaycodeDevice
from mobipay.kernel.errors import MobipayError, ValidationFailed
from mobipay.kernel.msisdn import mask_msisdn
from mobipay.wallet.service import Principal

router = APIRouter(prefix="/m", include_in_schema=False)

#: The page's words for the refusals a payer meets here (the shared table has the wallet's own).
WORDS: dict[str, tuple[str, str]] = {
    "PAYCODE_DEVICE_NOT_BOUND": (
        "付款码只发给用短信验证码登录的设备。请退出登录，再用发到本机号码的短信验证码登录，然后开通付款码。",
        "A payment code is issued only to a device signed in with an SMS code. Sign out, sign in again with the "
        "code sent to your number by SMS, then turn the payment code on."),
    "MICROPAY_ORDER_NOT_FOUND": ("没有这笔待确认的付款。", "No such payment is waiting for you."),
    "MICROPAY_ORDER_CLOSED": ("这笔付款已关闭（已拒绝或收银台已撤销），未扣款。",
                              "This payment is closed (declined, or cancelled by the till): nothing was paid."),
    "MICROPAY_ORDER_EXPIRED": ("这笔付款等待超时已关闭，未扣款；请让收银员重新扫码。",
                               "This payment waited too long and closed unpaid; ask the cashier to scan again."),
    "MICROPAY_ORDER_PAID": ("这笔付款已支付，不能拒绝；如需退款请找商户。",
                            "This payment is paid already; ask the shop for a refund."),
    "MICROPAY_ORDER_FAILED": ("这笔付款未成功，未扣款。", "This payment failed; nothing was paid."),
}
SERVICE_WORKER = STATIC_DIR / "paycode-sw.js"


def _say(request: Request, exc: MobipayError) -> str:
    words = WORDS.get(exc.code)
    if words is None:
        return message(exc, lang(request))
    english = lang(request) == "en"
    return f"{words[1]} ({exc.code})" if english else f"{words[0]}（{exc.code}）"


def _json(request: Request, body: dict[str, Any], status: int = 200) -> Response:
    return _keep(request, harden(JSONResponse(body, status_code=status), request))


def _refused(request: Request, exc: MobipayError) -> Response:
    return _json(request, {"code": exc.code, "message": _say(request, exc)}, exc.status)


def _signed_out(request: Request) -> Response:
    words = "Your session has ended: sign in again." if lang(request) == "en" else "登录已失效，请重新登录。"
    return _json(request, {"code": "SESSION_INVALID", "message": words, "signin": "/m/signin?next=/m/paycode"}, 401)


def _mine(devices: list[PaycodeDevice], me: Principal) -> PaycodeDevice | None:
    """This session's device (active or locked); a revoked one is not listed."""
    return next((d for d in devices if d.session_id == me.session_id), None)


def _order(o: MicropayOrder, merchant: str = "", store: str = "") -> dict[str, Any]:
    return {"order_id": o.id, "state": o.state, "amount": o.amount, "amount_text": yuan(o.amount),
            "subject": o.subject, "merchant": merchant, "store": store,
            "expires_at": int(o.expires_at.timestamp()), "privilege": o.privilege,
            "paid_text": yuan(o.amount - o.privilege)}


@router.get("/paycode", response_class=HTMLResponse)
async def paycode_page(request: Request) -> Response:
    """The page: its script shows the code from the secret it keeps; the server only says
    which device this session has (so a re-issued or revoked one is forgotten)."""
    me = await _signed_in(request)
    c = container(request)
    device = _mine(await c.micropay.devices(me), me)
    return _view(request, "paycode.html", {
        "masked": mask_msisdn(me.msisdn), "key": form_key(), "bound": await c.wallet.device_bound(me),
        "device": device, "server_time": int(c.clock.now().timestamp()),
        "not_bound": WORDS["PAYCODE_DEVICE_NOT_BOUND"][1 if lang(request) == "en" else 0]})


@router.get("/paycode-sw.js")
def paycode_worker() -> Response:
    """The payment-code page's service worker, served from ``/m/`` so that it may control
    ``/m/paycode`` (a worker's scope is at most its own folder). A plain function: FastAPI
    reads the file in its thread pool, off the event loop."""
    return Response(SERVICE_WORKER.read_bytes(), media_type="text/javascript",
                    headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})


@router.post("/paycode/device")
async def provision(request: Request, csrf: str = Form(""), key: str = Form("")) -> Response:
    """Issue this session's device secret: answered once to the page, which keeps it."""
    me = await _me(request)
    if me is None:
        return _signed_out(request)
    try:
        check_csrf(request, csrf)
        made, replayed = await container(request).micropay.provision(me, idempotency_key=key)
    except MobipayError as exc:
        return _refused(request, exc)
    if made.secret is None:  # a replay of a key whose device no longer pays: start again
        return _json(request, {"code": "PAYCODE_DEVICE_REVOKED", "message": "", "next_key": form_key()}, 409)
    return _json(request, {
        "device_id": made.device.id, "device_no": made.device.device_no,
        "secret": base64.b32encode(made.secret).decode().rstrip("="), "server_time": int(made.server_time.timestamp()),
        "prefix": "78", "digits": 8, "period": 30, "next_key": form_key()}, 200 if replayed else 201)


@router.get("/paycode/pending")
async def pending(request: Request) -> Response:
    """Polled by the page: the platform's clock, this session's device and the waiting orders."""
    me = await _me(request)
    if me is None:
        return _signed_out(request)
    c = container(request)
    device = _mine(await c.micropay.devices(me), me)
    orders = [_order(p.order, p.merchant.name, p.store.name if p.store else "") for p in await c.micropay.pending(me)]
    return _json(request, {"server_time": int(c.clock.now().timestamp()),
                           "device": {"device_id": device.id, "state": device.state} if device else None,
                           "orders": orders})


@router.post("/paycode/orders/{order_id}/confirm")
async def confirm(request: Request, order_id: str, csrf: str = Form(""), pin: str = Form("")) -> Response:
    """Pay a waiting order with the PIN (a wrong one counts towards the PIN lockout)."""
    me = await _me(request)
    if me is None:
        return _signed_out(request)
    try:
        check_csrf(request, csrf)
        if not pin:
            raise ValidationFailed("type your payment PIN", field="pin")
        await hit_limit(request, "pin")
        done = await container(request).micropay.confirm(me, order_id[:64], pin[:12])
    except MobipayError as exc:
        return _refused(request, exc)
    return _json(request, _order(done))


@router.post("/paycode/orders/{order_id}/decline")
async def decline(request: Request, order_id: str, csrf: str = Form("")) -> Response:
    """Refuse a waiting order: it closes unpaid."""
    me = await _me(request)
    if me is None:
        return _signed_out(request)
    try:
        check_csrf(request, csrf)
        done = await container(request).micropay.decline(me, order_id[:64])
    except MobipayError as exc:
        return _refused(request, exc)
    return _json(request, _order(done))
