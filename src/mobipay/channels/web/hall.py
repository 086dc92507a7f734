"""The operator's online business hall (网上营业厅) at ``/``: the seed's web channel.

A desktop page where anyone tops up a phone number or pays a utility bill with mobile
payment: choose the number and face value (or the city, category and biller), see the price
or the bill, sign in as the payer by SMS code, and pay from the wallet through the very same
services as the app (``topup.quote``/``topup.topup``, ``bills.fetch``/``bills.pay``): limits,
the PIN above the password-free amount, partner orders and idempotency are theirs. It links
the other front doors: the mobile wallet, the merchant portal, the console and the API docs.

* **Session**: the payer's wallet access token in its own HttpOnly cookie (``mp_hall``,
  SameSite=Lax, Secure over HTTPS), a device session named "business hall"; it lasts the
  access token's 15 minutes (a shared desktop should not stay signed in).
* **Forms**: CSRF on every POST; a money-moving form carries an idempotency key made when it
  was rendered, so a double click pays once and lands on the same order.
* **Refusals**: the API's codes in words (:func:`message`), the form filled in again, nothing
  changed.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mobipay.bills import errors
from mobipay.bills.model import Category
from mobipay.channels.web.common import check_csrf, container, form_key, hit_limit, lang, message, page, set_cookie
from mobipay.channels.web.forms import parse_yuan, yuan_text
from mobipay.channels.web.wallet import order_error
from mobipay.channels.words import CATEGORY_WORDS, OPERATOR_WORDS
from mobipay.kernel.errors import MobipayError, ValidationFailed
from mobipay.kernel.msisdn import mask_msisdn
from mobipay.wallet.model import OtpPurpose
from mobipay.wallet.service import Principal

router = APIRouter(include_in_schema=False)
SESSION = "mp_hall"
FACES = (10, 20, 30, 50, 100, 200, 300, 500)  # yuan, as the operator's counters sell them


async def _payer(request: Request) -> Principal | None:
    token = request.cookies.get(SESSION)
    if not token:
        return None
    try:
        return await container(request).wallet.authenticate(token)
    except MobipayError:
        return None


def _safe_next(raw: str) -> str:
    """Only the hall's own pages may follow sign-in (no open redirect)."""
    ok = raw == "/" or (raw.startswith("/hall/") and "\\" not in raw and ".." not in raw)
    return raw if ok else "/"


async def _view(request: Request, name: str, ctx: dict[str, Any] | None = None, *, status: int = 200,
                payer: Principal | None = None) -> Response:
    """A hall page with who is paying (number and available balance) in its header."""
    c = container(request)
    me = payer or await _payer(request)
    available = (await c.ledger.account(me.account_code)).available if me else None
    return page(request, f"hall/{name}", {"payer": me, "payer_masked": mask_msisdn(me.msisdn) if me else "",
                                          "available": available, "here": _here(request), "error": "",
                                          "categories": CATEGORY_WORDS, **(ctx or {})}, status=status)


def _here(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def _words(request: Request, exc: MobipayError) -> str:
    return message(exc, lang(request))


# ---------------------------------------------------------------------- the front page


@router.get("/", response_class=HTMLResponse)
async def index(request: Request) -> Response:
    c = container(request)
    return await _view(request, "index.html", {"faces": FACES, "msisdn": "", "amount": "50",
                                               "cities": await c.bills.cities()})


# ---------------------------------------------------------------------- the payer signs in


@router.get("/hall/signin", response_class=HTMLResponse)
async def signin_page(request: Request, next: str = "/") -> Response:
    return await _view(request, "signin.html", {"next": _safe_next(next), "msisdn": "", "sent": False})


@router.post("/hall/otp", response_class=HTMLResponse)
async def otp(request: Request, csrf: str = Form(""), msisdn: str = Form(""), next: str = Form("/")) -> Response:
    try:
        check_csrf(request, csrf)
        await hit_limit(request, "otp")
        await container(request).wallet.request_otp(msisdn, OtpPurpose.LOGIN)
    except MobipayError as exc:
        return await _view(request, "signin.html", {"next": _safe_next(next), "msisdn": msisdn, "sent": False,
                                                    "error": _words(request, exc)}, status=exc.status)
    return await _view(request, "signin.html", {"next": _safe_next(next), "msisdn": msisdn, "sent": True})


@router.post("/hall/signin", response_class=HTMLResponse)
async def signin(request: Request, csrf: str = Form(""), msisdn: str = Form(""), code: str = Form(""),
                 next: str = Form("/")) -> Response:
    try:
        check_csrf(request, csrf)
        await hit_limit(request, "pin")
        tokens = await container(request).wallet.login(msisdn, device_id="web-business-hall",
                                                        device_name="business hall", code=code)
    except MobipayError as exc:
        return await _view(request, "signin.html", {"next": _safe_next(next), "msisdn": msisdn, "sent": True,
                                                    "error": _words(request, exc)}, status=exc.status)
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_cookie(response, request, SESSION, tokens.access_token, tokens.expires_in)
    return response


@router.post("/hall/signout", response_class=HTMLResponse)
async def signout(request: Request, csrf: str = Form("")) -> Response:
    check_csrf(request, csrf)
    me = await _payer(request)
    if me is not None:
        await container(request).wallet.logout(me.user_id, me.session_id)
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION)
    return response


def _to_signin(request: Request) -> Response:
    return RedirectResponse(f"/hall/signin?next={quote(_here(request))}", status_code=303)


# ---------------------------------------------------------------------- phone top-up


async def _topup_page(request: Request, msisdn: str, amount: str, *, error: str = "", status: int = 200
                      ) -> Response:
    """The price of topping up ``msisdn`` by ``amount`` yuan, and the payer's pay form; a
    number or amount the service refuses goes back to the front page with its words."""
    c = container(request)
    try:
        q = c.topup.quote(msisdn, parse_yuan(amount))
    except MobipayError as exc:
        return await _view(request, "index.html", {"faces": FACES, "msisdn": msisdn, "amount": amount,
                                                   "cities": await c.bills.cities(),
                                                   "error": _words(request, exc)}, status=exc.status)
    return await _view(request, "topup.html", {
        "q": q, "masked": mask_msisdn(q.msisdn), "msisdn": msisdn, "amount": yuan_text(q.face),
        "operator": OPERATOR_WORDS.get(q.operator, (q.operator, q.operator)), "key": form_key(),
        "needs_pin": q.price > c.wallet.limits.password_free, "error": error}, status=status)


@router.get("/hall/topup", response_class=HTMLResponse)
async def topup_quote(request: Request, msisdn: str = "", amount: str = "") -> Response:
    return await _topup_page(request, msisdn, amount)


@router.post("/hall/topup", response_class=HTMLResponse)
async def topup(request: Request, csrf: str = Form(""), msisdn: str = Form(""), amount: str = Form(""),
                pin: str = Form(""), key: str = Form("")) -> Response:
    me = await _payer(request)
    try:
        check_csrf(request, csrf)
        if me is None:
            raise ValidationFailed("sign in with the paying number first", field="msisdn")
        order = await container(request).topup.topup(me, msisdn, parse_yuan(amount), idempotency_key=key,
                                                     pin=pin or None)
    except MobipayError as exc:
        return await _topup_page(request, msisdn, amount, error=_words(request, exc), status=exc.status)
    return RedirectResponse(f"/hall/topups/{order.id}", status_code=303)


@router.get("/hall/topups/{order_id}", response_class=HTMLResponse)
async def topup_order(order_id: str, request: Request) -> Response:
    me = await _payer(request)
    if me is None:
        return _to_signin(request)
    try:
        order = await container(request).topup.get(me, order_id)
    except MobipayError as exc:
        return await _view(request, "notfound.html", {"error": _words(request, exc)}, status=exc.status, payer=me)
    return await _view(request, "order.html", {
        "o": order, "target": mask_msisdn(order.details["msisdn"]), "paid": order.details["price"],
        "again": "/hall/topup?" + urlencode({"msisdn": order.details["msisdn"].removeprefix("+86"),
                                             "amount": yuan_text(order.amount)}),
        "error": order_error(request, order)}, payer=me)


# ---------------------------------------------------------------------- utility bills


@router.get("/hall/bills", response_class=HTMLResponse)
async def bills(request: Request, city: str = "", category: str = "", q: str = "") -> Response:
    c = container(request)
    error, found = "", []
    try:
        cat = Category(category) if category else None
    except ValueError:
        cat, error = None, _words(request, ValidationFailed("choose a category from the list", field="category"))
    if (city or cat or q.strip()) and not error:
        found = await c.bills.find(city=city or None, category=cat, q=q.strip()[:32] or None, limit=100)
    return await _view(request, "bills.html", {"cities": await c.bills.cities(), "city": city, "category": category,
                                               "q": q, "billers": found, "error": error},
                       status=400 if error else 200)


async def _biller_page(request: Request, code: str, me: Principal | None, *, error: str = "", status: int = 200,
                       customer_id: str = "", bill: Any = None, amount: str = "", duplicate: bool = False
                       ) -> Response:
    c = container(request)
    try:
        biller = await c.bills.biller(code)
    except MobipayError as exc:
        return await _view(request, "notfound.html", {"error": _words(request, exc)}, status=exc.status, payer=me)
    return await _view(request, "biller.html", {
        "b": biller, "category": CATEGORY_WORDS[biller.category.value], "error": error, "customer_id": customer_id,
        "bill": bill, "amount": amount or (yuan_text(bill.bill.amount_due) if bill else ""), "key": form_key(),
        "duplicate": duplicate, "password_free": c.wallet.limits.password_free}, status=status, payer=me)


@router.get("/hall/bills/billers/{code}", response_class=HTMLResponse)
async def biller(code: str, request: Request) -> Response:
    return await _biller_page(request, code, await _payer(request))


@router.post("/hall/bills/billers/{code}/fetch", response_class=HTMLResponse)
async def fetch_bill(code: str, request: Request, csrf: str = Form(""), customer_id: str = Form("")) -> Response:
    me = await _payer(request)
    try:
        check_csrf(request, csrf)
        if me is None:
            raise ValidationFailed("sign in with the paying number first", field="msisdn")
        bill = await container(request).bills.fetch(me, code, customer_id)
    except MobipayError as exc:
        return await _biller_page(request, code, me, error=_words(request, exc), status=exc.status,
                                  customer_id=customer_id)
    return await _biller_page(request, code, me, customer_id=customer_id, bill=bill)


@router.post("/hall/bills/billers/{code}/pay", response_class=HTMLResponse)
async def pay_bill(code: str, request: Request, csrf: str = Form(""), customer_id: str = Form(""),
                   amount: str = Form(""), bill_id: str = Form(""), pin: str = Form(""), key: str = Form(""),
                   confirm_duplicate: str = Form("")) -> Response:
    me = await _payer(request)
    c = container(request)
    try:
        check_csrf(request, csrf)
        if me is None:
            raise ValidationFailed("sign in with the paying number first", field="msisdn")
        order = await c.bills.pay(me, code, customer_id, parse_yuan(amount), idempotency_key=key,
                                  bill_id=bill_id or None, pin=pin or None, confirm_duplicate=confirm_duplicate == "1")
    except MobipayError as exc:
        bill = None
        if bill_id and me is not None:
            try:
                bill = await c.bills.fetch(me, code, customer_id)
            except MobipayError:
                bill = None
        return await _biller_page(request, code, me, error=_words(request, exc), status=exc.status,
                                  customer_id=customer_id, bill=bill, amount=amount,
                                  duplicate=isinstance(exc, errors.DuplicatePayment))
    return RedirectResponse(f"/hall/bills/payments/{order.id}", status_code=303)


@router.get("/hall/bills/payments/{payment_id}", response_class=HTMLResponse)
async def bill_payment(payment_id: str, request: Request) -> Response:
    me = await _payer(request)
    if me is None:
        return _to_signin(request)
    try:
        order = await container(request).bills.get(me, payment_id)
    except MobipayError as exc:
        return await _view(request, "notfound.html", {"error": _words(request, exc)}, status=exc.status, payer=me)
    return await _view(request, "order.html", {
        "o": order, "target": f"{order.details['biller_name']} · {order.details['customer_id']} · "
                              f"{order.details['period']}",
        "paid": order.amount, "again": f"/hall/bills/billers/{order.details['biller']}",
        "error": order_error(request, order)}, payer=me)
