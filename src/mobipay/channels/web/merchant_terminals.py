"""The merchant portal's stores and POS terminals (``/merchant/stores``): the stores with
their cities and a form to add one (the city is printed on the store's QR code), a terminals
page per store, registering a terminal (the platform-made private key shown once, on the answer
to the form, and kept nowhere), re-keying, disabling and enabling it.

Every page is scoped to the signed-in operator's merchant (another merchant's store or
terminal is "not found"); every form carries the CSRF token. Registering, re-keying and
enabling are the owner's, and so is adding a store; any operator may disable a till (a lost or stolen one cannot wait
for the owner). The use cases are :class:`mobipay.instore.terminals.Terminals`, audited there.
"""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from mobipay.channels.web.common import check_csrf, container
from mobipay.channels.web.merchant_portal import _op, _signin, _view, _words
from mobipay.instore.cities import cities
from mobipay.instore.terminals import Terminal
from mobipay.kernel.errors import MobipayError, ValidationFailed
from mobipay.merchants.operators import MerchantOperator

router = APIRouter(prefix="/merchant", include_in_schema=False)
STORE_FIELDS = ("name", "address", "city")  # the store form's


def _actor(op: MerchantOperator) -> str:
    return f"{op.merchant_id}/{op.name}"


async def _stores_page(request: Request, op: MerchantOperator, *, error: str = "", error_field: str = "",
                       form: dict[str, str] | None = None, done: str = "", status: int = 200) -> Response:
    c = container(request)
    counts: dict[str, int] = {}
    for t in await c.terminals.find(op.merchant_id):
        counts[t.store_id] = counts.get(t.store_id, 0) + 1
    return _view(request, op, "stores.html", {
        "stores": await c.merchants.stores(op.merchant_id), "counts": counts, "cities": [x.name for x in cities()],
        # a field's refusal is said at the field; any other (the CSRF token, not the owner) at the top
        **({"form_error": error, "error_field": error_field} if error_field in STORE_FIELDS else {"error": error}),
        "form": form or dict.fromkeys(STORE_FIELDS, ""), "done": done}, status=status)


@router.get("/stores", response_class=HTMLResponse)
async def stores(request: Request) -> Response:
    op = await _op(request)
    if op is None:
        return _signin(request)
    return await _stores_page(request, op)


@router.post("/stores", response_class=HTMLResponse)
async def add_store(request: Request, csrf: str = Form(""), name: str = Form(""), address: str = Form(""),
                    city: str = Form("")) -> Response:
    """A new store of the signed-in operator's merchant (the owner's): its name, address and city."""
    op = await _op(request)
    if op is None:
        return _signin(request)
    form = {"name": name[:200], "address": address[:300], "city": city[:64]}
    c = container(request)
    try:
        check_csrf(request, csrf)
        c.merchant_operators.require_owner(op)
        if len(address.strip()) > 256:
            raise ValidationFailed("a store's address is at most 256 characters", field="address")
        merchant = await c.merchants.merchant(op.merchant_id)
        store_id = await c.merchants.add_store(merchant, name, address, city)
    except MobipayError as exc:
        return await _stores_page(request, op, error=_words(request, exc), error_field=exc.field or "", form=form,
                                  status=exc.status)
    return await _stores_page(request, op, done=store_id)


async def _terminals_page(request: Request, op: MerchantOperator, store_id: str, *, error: str = "",
                          shown_key: str = "", done: str = "", label: str = "", status: int = 200) -> Response:
    c = container(request)
    try:
        store = await c.merchants.own_store(op.merchant_id, store_id)
    except MobipayError as exc:
        return _view(request, op, "notfound.html", {"error": _words(request, exc)}, status=exc.status)
    return _view(request, op, "terminals.html", {
        "store": store, "terminals": await c.terminals.find(op.merchant_id, store.id), "error": error,
        "shown_key": shown_key, "done": done, "label": label}, status=status)


@router.get("/stores/{store_id}/terminals", response_class=HTMLResponse)
async def terminals(store_id: str, request: Request) -> Response:
    op = await _op(request)
    if op is None:
        return _signin(request)
    return await _terminals_page(request, op, store_id)


@router.post("/stores/{store_id}/terminals", response_class=HTMLResponse)
async def register(store_id: str, request: Request, csrf: str = Form(""), label: str = Form(""),
                   public_key: str = Form("")) -> Response:
    op = await _op(request)
    if op is None:
        return _signin(request)
    try:
        check_csrf(request, csrf)
        container(request).merchant_operators.require_owner(op)
        made, private = await container(request).terminals.register(op.merchant_id, store_id, label[:64],
                                                                      actor=_actor(op), public_key=public_key or None)
    except MobipayError as exc:
        return await _terminals_page(request, op, store_id, error=_words(request, exc), label=label[:64],
                                     status=exc.status)
    return await _terminals_page(request, op, store_id, shown_key=private or "", done=made.id)


async def _change(request: Request, terminal_id: str, csrf: str, what: str, public_key: str = "") -> Response:
    """Disable, enable or re-key one of the merchant's terminals, then its store's page."""
    op = await _op(request)
    if op is None:
        return _signin(request)
    c = container(request)
    try:
        found: Terminal = await c.terminals.terminal(op.merchant_id, terminal_id)
    except MobipayError as exc:
        return _view(request, op, "notfound.html", {"error": _words(request, exc)}, status=exc.status)
    private: str | None = None
    try:
        check_csrf(request, csrf)
        if what != "disable":
            c.merchant_operators.require_owner(op)
        if what == "disable":
            await c.terminals.disable(op.merchant_id, terminal_id, actor=_actor(op))
        elif what == "enable":
            await c.terminals.enable(op.merchant_id, terminal_id, actor=_actor(op))
        else:
            _, private = await c.terminals.rotate_key(op.merchant_id, terminal_id, actor=_actor(op),
                                                      public_key=public_key or None)
    except MobipayError as exc:
        return await _terminals_page(request, op, found.store_id, error=_words(request, exc), status=exc.status)
    return await _terminals_page(request, op, found.store_id, shown_key=private or "", done=terminal_id)


@router.post("/terminals/{terminal_id}/disable", response_class=HTMLResponse)
async def disable(terminal_id: str, request: Request, csrf: str = Form("")) -> Response:
    return await _change(request, terminal_id, csrf, "disable")


@router.post("/terminals/{terminal_id}/enable", response_class=HTMLResponse)
async def enable(terminal_id: str, request: Request, csrf: str = Form("")) -> Response:
    return await _change(request, terminal_id, csrf, "enable")


@router.post("/terminals/{terminal_id}/key", response_class=HTMLResponse)
async def rotate_key(terminal_id: str, request: Request, csrf: str = Form(""), public_key: str = Form("")
                     ) -> Response:
    return await _change(request, terminal_id, csrf, "key", public_key)
