"""The mobile web wallet's cinema tickets (电子电影票) at ``/m/cinema``: the cinemas and their
shows, a show's seat map to tick seats on (no script: checkboxes), the lock with the time to
pay by, paying from the wallet, the code string of a paid order, and its refund with the fee
shown first. Over the same ``Cinemas`` use cases as ``/v1/cinema``.

Every POST carries the CSRF token; the lock and the payment carry the form's idempotency key,
so a double submit locks and pays once. Refusals are shown in words with their code, nothing
changed."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from mobipay.channels.web.common import check_csrf, container, form_key
from mobipay.channels.web.wallet import _go, _signed_in, _view, _words
from mobipay.cinema.model import MAX_SEATS, grouped
from mobipay.kernel.errors import MobipayError

router = APIRouter(prefix="/m", include_in_schema=False)


def _status(exc: MobipayError) -> int:
    return exc.status if exc.status < 500 else 400


@router.get("/cinema", response_class=HTMLResponse)
async def cinemas(request: Request) -> Response:
    me = await _signed_in(request)
    cs = container(request).cinema
    listing = [(c, (await cs.shows(c.id))[:12]) for c in await cs.find_cinemas()]
    return _view(request, "cinema.html", {"cinemas": listing, "orders": (await cs.mine(me))[:20]})


async def _show_page(request: Request, show_id: str, *, error: str = "", status: int = 200) -> Response:
    await _signed_in(request)
    try:
        view = await container(request).cinema.seat_map(show_id[:40])
    except MobipayError as exc:
        return _view(request, "notfound.html", {"error": _words(request, exc)}, status=404)
    cols = max((len(r) for r in view.rows), default=1)
    return _view(request, "cinema_show.html", {"view": view, "cols": cols, "key": form_key(), "error": error,
                                               "max_seats": MAX_SEATS}, status=status)


@router.get("/cinema/shows/{show_id}", response_class=HTMLResponse)
async def show(request: Request, show_id: str) -> Response:
    return await _show_page(request, show_id)


@router.post("/cinema/shows/{show_id}/lock", response_class=HTMLResponse)
async def lock(request: Request, show_id: str, csrf: str = Form(""), key: str = Form("")) -> Response:
    me = await _signed_in(request)
    form = await request.form()
    wanted = [str(s)[:8] for s in form.getlist("seats")][:MAX_SEATS + 1]
    try:
        check_csrf(request, csrf)
        order = await container(request).cinema.lock(me, show_id[:40], wanted, idempotency_key=key[:64])
    except MobipayError as exc:
        return await _show_page(request, show_id, error=_words(request, exc), status=_status(exc))
    return _go(request, f"/m/cinema/orders/{order.id}")


async def _order_page(request: Request, order_id: str, *, error: str = "", done: str = "",
                      status: int = 200) -> Response:
    me = await _signed_in(request)
    cs = container(request).cinema
    try:
        order = await cs.order(me, order_id[:40])
    except MobipayError as exc:
        return _view(request, "notfound.html", {"error": _words(request, exc)}, status=404)
    quote = None
    if order.state == "paid" and order.collected_at is None:
        try:
            quote = await cs.refund_quote(me, order.id)
        except MobipayError:
            quote = None  # within 30 minutes of the show: no refund offered
    return _view(request, "cinema_order.html", {
        "order": order, "code": grouped(order.code) if order.code else "", "quote": quote, "key": form_key(),
        "error": error, "done": done, "password_free": container(request).wallet.limits.password_free},
        status=status)


@router.get("/cinema/orders/{order_id}", response_class=HTMLResponse)
async def order(request: Request, order_id: str, done: str = "") -> Response:
    return await _order_page(request, order_id, done=done[:16])


@router.post("/cinema/orders/{order_id}/pay", response_class=HTMLResponse)
async def pay(request: Request, order_id: str, csrf: str = Form(""), key: str = Form(""),
              pin: str = Form("")) -> Response:
    me = await _signed_in(request)
    try:
        check_csrf(request, csrf)
        await container(request).cinema.pay(me, order_id[:40], idempotency_key=key[:64], pin=pin[:12] or None)
    except MobipayError as exc:
        return await _order_page(request, order_id, error=_words(request, exc), status=_status(exc))
    return _go(request, f"/m/cinema/orders/{order_id[:40]}?done=paid")


@router.post("/cinema/orders/{order_id}/refund", response_class=HTMLResponse)
async def refund(request: Request, order_id: str, csrf: str = Form(""), key: str = Form("")) -> Response:
    me = await _signed_in(request)
    try:
        check_csrf(request, csrf)
        await container(request).cinema.refund(me, order_id[:40], idempotency_key=key[:64])
    except MobipayError as exc:
        return await _order_page(request, order_id, error=_words(request, exc), status=_status(exc))
    return _go(request, f"/m/cinema/orders/{order_id[:40]}?done=refunded")


@router.post("/cinema/orders/{order_id}/release", response_class=HTMLResponse)
async def release(request: Request, order_id: str, csrf: str = Form("")) -> Response:
    me = await _signed_in(request)
    try:
        check_csrf(request, csrf)
        order = await container(request).cinema.release(me, order_id[:40])
    except MobipayError as exc:
        return await _order_page(request, order_id, error=_words(request, exc), status=_status(exc))
    return _go(request, f"/m/cinema/shows/{order.show.id}")
