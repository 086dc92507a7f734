"""The merchant portal's group-buy verification page (``/merchant/groupbuy``) for shop staff:
choose the store, type the buyer's code, see what it is (prepare), consume N of the order's
vouchers, reverse one of today's consumptions within the window, and the day's records.

The same use cases as the shop API (:class:`mobipay.groupbuy.service.GroupBuy`), scoped to the
signed-in operator's merchant; wrong codes count towards the store's lock there. Every form
carries the CSRF token, and the consume form its own request id (rendered with the form), so a
double submit consumes once.
"""

from __future__ import annotations

import secrets
from datetime import date

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from mobipay.channels.web.common import check_csrf, container
from mobipay.channels.web.merchant_portal import _op, _signin, _view, _words
from mobipay.groupbuy.service import Prepared
from mobipay.kernel.clock import SHANGHAI
from mobipay.kernel.errors import MobipayError
from mobipay.merchants.operators import MerchantOperator

router = APIRouter(prefix="/merchant", include_in_schema=False)


async def _page(request: Request, op: MerchantOperator, *, store_id: str = "", code: str = "",
                prepared: Prepared | None = None, error: str = "", done: str = "", day: str = "",
                status: int = 200) -> Response:
    c = container(request)
    stores = await c.merchants.stores(op.merchant_id)
    store_id = store_id or (stores[0].id if stores else "")
    try:
        when = date.fromisoformat(day) if day else c.clock.now().astimezone(SHANGHAI).date()
    except ValueError:
        when = c.clock.now().astimezone(SHANGHAI).date()
    history = await c.groupbuy.history(op, when) if stores else []
    return _view(request, op, "groupbuy.html", {
        "stores": stores, "store_id": store_id, "code": code, "prepared": prepared, "error": error, "done": done,
        "history": history, "day": when.isoformat(), "now": c.clock.now(),
        "request_id": "gb" + secrets.token_hex(12)}, status=status)


@router.get("/groupbuy", response_class=HTMLResponse)
async def groupbuy(request: Request, store_id: str = "", day: str = "") -> Response:
    op = await _op(request)
    if op is None:
        return _signin(request)
    return await _page(request, op, store_id=store_id[:40], day=day[:10])


@router.post("/groupbuy/prepare", response_class=HTMLResponse)
async def prepare(request: Request, csrf: str = Form(""), store_id: str = Form(""),
                  receipt_code: str = Form("")) -> Response:
    op = await _op(request)
    if op is None:
        return _signin(request)
    try:
        check_csrf(request, csrf)
        seen = await container(request).groupbuy.prepare(op, store_id[:40], receipt_code[:32])
    except MobipayError as exc:
        return await _page(request, op, store_id=store_id, code=receipt_code[:32], error=_words(request, exc),
                           status=exc.status)
    return await _page(request, op, store_id=store_id, code=receipt_code[:32], prepared=seen)


@router.post("/groupbuy/consume", response_class=HTMLResponse)
async def consume(request: Request, csrf: str = Form(""), store_id: str = Form(""), receipt_code: str = Form(""),
                  count: int = Form(1), request_id: str = Form("")) -> Response:
    op = await _op(request)
    if op is None:
        return _signin(request)
    try:
        check_csrf(request, csrf)
        used = await container(request).groupbuy.consume(op, store_id[:40], receipt_code[:32], count,
                                                         request_id=request_id[:64])
    except MobipayError as exc:
        return await _page(request, op, store_id=store_id, code=receipt_code[:32], error=_words(request, exc),
                           status=exc.status)
    return await _page(request, op, store_id=store_id, done=f"{used.title} × {used.count}")


@router.post("/groupbuy/consumptions/{consumption_id}/reversal", response_class=HTMLResponse)
async def reverse(request: Request, consumption_id: str, csrf: str = Form(""), store_id: str = Form("")) -> Response:
    op = await _op(request)
    if op is None:
        return _signin(request)
    try:
        check_csrf(request, csrf)
        back = await container(request).groupbuy.reverse(op, consumption_id[:40])
    except MobipayError as exc:
        return await _page(request, op, store_id=store_id, error=_words(request, exc), status=exc.status)
    return await _page(request, op, store_id=store_id, done=f"{back.title} × {back.count} ↩")
