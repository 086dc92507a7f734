"""The mobile web wallet's Monternet subscriptions (梦网业务) at ``/m/sp``: what SMS "0000"
lists, with "QX n" and "00000" as buttons, the charges with any refund, an order for an SP's
service (confirmed by the "是" SMS the platform sends when a rule asks), and a complaint
about an SP. Over the same ``SpService`` use cases as ``/v1/me/sp-subscriptions``.

Every POST carries the CSRF token; a cancellation inside the 72 hours says that nothing
was charged. Refusals are shown in words with their code, nothing changed."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from mobipay.channels.web.common import check_csrf, container
from mobipay.channels.web.wallet import _go, _signed_in, _view, _words
from mobipay.kernel.errors import MobipayError, ValidationFailed
from mobipay.sp.model import WAIVER_WINDOW, ChargeMethod, SubState

router = APIRouter(prefix="/m", include_in_schema=False)
DONE = ("cancelled", "waived", "cancelled_all", "ordered", "asked", "complained")


async def _page(request: Request, *, error: str = "", done: str = "", status: int = 200) -> Response:
    me = await _signed_in(request)
    svc = container(request).sp
    sps = {sp.code: sp for sp in await svc.all_sps()}
    offered = [(sp, s) for sp in sps.values() if sp.takes_orders
               for s in await svc.services(sp.code) if s.online]
    subs = await svc.subscriptions(me.msisdn)
    now = container(request).clock.now()
    return _view(request, "sp.html", {
        "subs": [{"s": s, "n": i, "sp": sps[s.sp_code].name if s.sp_code in sps else s.sp_code,
                  "free_until": (s.active_since + WAIVER_WINDOW  # cancelled before then: never charged
                                 if s.active_since is not None and s.active_since + WAIVER_WINDOW > now else None)}
                 for i, s in enumerate(subs, 1)],
        "charges": (await svc.charges(me.msisdn))[:20], "names": {c: sp.name for c, sp in sps.items()},
        "offered": offered, "sps": sorted(sps.values(), key=lambda sp: sp.code), "error": error,
        "done": done if done in DONE else ""}, status=status)


@router.get("/sp", response_class=HTMLResponse)
async def subscriptions(request: Request, done: str = "") -> Response:
    return await _page(request, done=done[:16])


@router.post("/sp/cancel", response_class=HTMLResponse)
async def cancel(request: Request, csrf: str = Form(""), subscription_id: str = Form("")) -> Response:
    me = await _signed_in(request)
    try:
        check_csrf(request, csrf)
        cancelled = await container(request).sp.cancel_subscription(subscription_id[:64], me.msisdn)
    except MobipayError as exc:
        return await _page(request, error=_words(request, exc), status=exc.status if exc.status < 500 else 400)
    return _go(request, "/m/sp?done=" + ("waived" if cancelled.waived else "cancelled"))


@router.post("/sp/cancel-all", response_class=HTMLResponse)
async def cancel_all(request: Request, csrf: str = Form("")) -> Response:
    me = await _signed_in(request)
    try:
        check_csrf(request, csrf)
        await container(request).sp.cancel_all(me.msisdn)
    except MobipayError as exc:
        return await _page(request, error=_words(request, exc), status=exc.status if exc.status < 500 else 400)
    return _go(request, "/m/sp?done=cancelled_all")


@router.post("/sp/order", response_class=HTMLResponse)
async def order(request: Request, csrf: str = Form(""), service: str = Form(""),
                method: str = Form("phone_bill")) -> Response:
    me = await _signed_in(request)
    try:
        check_csrf(request, csrf)
        sp_code, _, keyword = service[:40].partition(":")
        if not sp_code or not keyword:
            raise ValidationFailed("choose a service to order", field="service")
        try:
            how = ChargeMethod(method)
        except ValueError:
            raise ValidationFailed("pay on the phone bill or from the wallet", field="method") from None
        sub = await container(request).sp.subscribe(me.msisdn, sp_code, keyword, channel="web", method=how)
    except MobipayError as exc:
        return await _page(request, error=_words(request, exc), status=exc.status if exc.status < 500 else 400)
    return _go(request, "/m/sp?done=" + ("asked" if sub.state is SubState.AWAITING else "ordered"))


@router.post("/sp/complaints", response_class=HTMLResponse)
async def complain(request: Request, csrf: str = Form(""), sp_code: str = Form(""), text: str = Form("")) -> Response:
    me = await _signed_in(request)
    try:
        check_csrf(request, csrf)
        if not text.strip():
            raise ValidationFailed("say what went wrong", field="text")
        await container(request).sp.complain(me.msisdn, sp_code[:16], text.strip()[:1000], source="web")
    except MobipayError as exc:
        return await _page(request, error=_words(request, exc), status=exc.status if exc.status < 500 else 400)
    return _go(request, "/m/sp?done=complained")
