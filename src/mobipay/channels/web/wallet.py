"""The mobile web wallet (the WAP / online business hall channel) under ``/m``.

Phone-sized server-rendered pages over the same services as the JSON API: sign in by
number and SMS code, balance, transfer (the recipient's masked real name shown before
paying), request money, top-up (quote, then pay), the bill zone, history and receipts,
red envelopes, bank cards (binding one is the real-name upgrade), cash-in/out, the PIN.

* **Session**: the wallet's own access token in an HttpOnly, SameSite=Lax cookie (Secure
  over HTTPS), renewed with the rotating refresh token kept in a second such cookie.
* **Forms**: every POST carries the CSRF token (double submit, :func:`check_csrf`); every
  money-moving form also carries an idempotency key made when the form was rendered, so a
  double submit pays once and shows the same result.
* **Ownership**: receipts, orders and requests are read through the services' own checks
  (``me`` is always the signed-in subscriber): another subscriber's id is "not found".
* **Refusals**: the API's error codes, in words plus the code (:func:`message`), with the
  form filled in again and nothing changed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mobipay.bills import errors as bills_errors
from mobipay.bills.model import Category
from mobipay.channels.web.common import (
    check_csrf,
    container,
    form_key,
    hit_limit,
    lang,
    message,
    page,
    renew_csrf,
    set_cookie,
)
from mobipay.channels.web.forms import parse_yuan, yuan_text
from mobipay.channels.words import CATEGORY_WORDS, OPERATOR_WORDS
from mobipay.kernel.clock import SHANGHAI
from mobipay.kernel.errors import MobipayError, ValidationFailed
from mobipay.kernel.msisdn import mask_msisdn
from mobipay.ledger.model import Side
from mobipay.orders.model import OrderState
from mobipay.orders.service import PartnerOrder
from mobipay.topup.errors import TopupFailed
from mobipay.wallet import errors as wallet_errors
from mobipay.wallet.model import OtpPurpose
from mobipay.wallet.service import Principal, Tokens, check_not_self

router = APIRouter(prefix="/m", include_in_schema=False)
SESSION, REFRESH = "mp_wallet", "mp_wallet_r"
REFRESH_AGE = 30 * 86400
#: The history filter's choices: a kind and the transfer codes of its entries (a transfer and
#: its claim or return; an order's hold, its post and the money back after a failure).
KINDS: dict[str, tuple[str, ...]] = {
    kind: (kind, *extra) for kind, extra in (
        ("p2p", ("p2p.claim", "p2p.return")), ("cash_in", ("cash_in.failed",)),
        ("cash_out", ("cash_out.failed", "cash_out.refund")), ("topup", ("topup.failed", "topup.refund")),
        ("bill", ("bill.failed", "bill.refund")), ("merchant.payment", ()), ("merchant.refund", ()))
}
CATEGORY_NAMES = CATEGORY_WORDS


# ---------------------------------------------------------------------- session plumbing


async def _me(request: Request) -> Principal | None:
    """The signed-in subscriber, renewing an expired access token with the refresh token."""
    wallet = container(request).wallet
    token = request.cookies.get(SESSION)
    if token:
        try:
            return await wallet.authenticate(token)
        except MobipayError:
            pass
    refresh = request.cookies.get(REFRESH)
    if not refresh:
        return None
    try:
        tokens = await wallet.refresh(refresh)
        me = await wallet.authenticate(tokens.access_token)
    except MobipayError:
        return None
    request.state.wallet_tokens = tokens
    return me


def _keep(request: Request, response: Response) -> Response:
    """Send renewed tokens along with whatever the page answers."""
    tokens: Tokens | None = getattr(request.state, "wallet_tokens", None)
    if tokens is not None:
        _set_session(response, request, tokens)
    return response


def _set_session(response: Response, request: Request, tokens: Tokens) -> None:
    set_cookie(response, request, SESSION, tokens.access_token, tokens.expires_in)
    set_cookie(response, request, REFRESH, tokens.refresh_token, REFRESH_AGE)


def _view(request: Request, name: str, ctx: dict[str, Any] | None = None, *, status: int = 200) -> Response:
    return _keep(request, page(request, f"wallet/{name}", ctx, status=status))


def _go(request: Request, url: str) -> Response:
    return _keep(request, RedirectResponse(url, status_code=303))


class SignInRequired(Exception):
    """A page that needs a signed-in subscriber was asked for without one; the app answers
    it with :func:`sign_in_redirect`, so no page repeats the check-and-redirect."""

    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.target = target


async def _signed_in(request: Request) -> Principal:
    """The signed-in subscriber, or :class:`SignInRequired` (back to this page after sign-in)."""
    me = await _me(request)
    if me is None:
        raise SignInRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    return me


async def sign_in_redirect(request: Request, exc: Exception) -> Response:
    """Exception handler for :class:`SignInRequired`: to the sign-in page, then back."""
    assert isinstance(exc, SignInRequired)
    return RedirectResponse(f"/m/signin?next={quote(exc.target)}", status_code=303)


def _words(request: Request, exc: MobipayError) -> str:
    return message(exc, lang(request))


_key = form_key


def _safe_next(raw: str) -> str:
    """Only our own wallet pages may follow sign-in (no open redirect)."""
    return raw if raw.startswith("/m") and not raw.startswith("//") and "\\" not in raw else "/m"


_hit = hit_limit


def order_error(request: Request, order: PartnerOrder) -> str:
    """A failed partner order in words: nothing was taken (the API's 422 codes)."""
    if order.state is not OrderState.FAILED:
        return ""
    refused: type[MobipayError] = {"topup": TopupFailed, "bill": bills_errors.BillPaymentFailed}.get(
        order.kind, wallet_errors.BankDeclined)
    return _words(request, refused(order.reason or "refused"))


# ---------------------------------------------------------------------- sign in, home


@router.get("/signin", response_class=HTMLResponse)
async def signin_page(request: Request, next: str = "/m") -> Response:
    return page(request, "wallet/signin.html", {"next": _safe_next(next), "msisdn": ""})


@router.post("/otp", response_class=HTMLResponse)
async def otp(request: Request, csrf: str = Form(""), msisdn: str = Form(""), next: str = Form("/m")) -> Response:
    try:
        check_csrf(request, csrf)
        await _hit(request, "otp")
        await container(request).wallet.request_otp(msisdn, OtpPurpose.LOGIN)
    except MobipayError as exc:
        return page(request, "wallet/signin.html", {"next": _safe_next(next), "msisdn": "",
                                                     "error": _words(request, exc)}, status=exc.status)
    return page(request, "wallet/signin.html", {"next": _safe_next(next), "msisdn": msisdn, "sent": True})


@router.post("/signin", response_class=HTMLResponse)
async def signin(request: Request, csrf: str = Form(""), msisdn: str = Form(""), code: str = Form(""),
                 next: str = Form("/m")) -> Response:
    try:
        check_csrf(request, csrf)
        await _hit(request, "pin")
        tokens = await container(request).wallet.login(msisdn, device_id="web-wallet", device_name="mobile web",
                                                        code=code)
    except MobipayError as exc:
        return page(request, "wallet/signin.html", {"next": _safe_next(next), "msisdn": msisdn, "sent": True,
                                                     "error": _words(request, exc)}, status=exc.status)
    response = RedirectResponse(_safe_next(next), status_code=303)
    _set_session(response, request, tokens)
    renew_csrf(response, request)
    return response


@router.post("/signout", response_class=HTMLResponse)
async def signout(request: Request, csrf: str = Form("")) -> Response:
    check_csrf(request, csrf)
    me = await _me(request)
    if me is not None:
        await container(request).wallet.logout(me.user_id, me.session_id)
    response = RedirectResponse("/m/signin", status_code=303)
    response.delete_cookie(SESSION)
    response.delete_cookie(REFRESH)
    return response


@router.get("", response_class=HTMLResponse)
async def home(request: Request) -> Response:
    me = await _signed_in(request)
    c = container(request)
    user = await c.wallet.user_by_msisdn(me.msisdn)
    account = await c.ledger.account(me.account_code)
    incoming, _ = await c.wallet.money_requests(me)
    return _view(request, "home.html", {"me": me, "masked": mask_msisdn(me.msisdn), "tier": int(user.tier),
                                        "balance": account.balance, "available": account.available,
                                        "open_requests": sum(1 for r in incoming if r.state == "open")})


# ---------------------------------------------------------------------- transfer


def _transfer_form(request: Request, *, error: str = "", status: int = 200, to: str = "", amount: str = "",
                   note: str = "") -> Response:
    return _view(request, "transfer.html", {"error": error, "to": to, "amount": amount, "note": note},
                 status=status)


@router.get("/transfer", response_class=HTMLResponse)
async def transfer_page(request: Request, to: str = "") -> Response:
    await _signed_in(request)
    return _transfer_form(request, to=to)


@router.post("/transfer/confirm", response_class=HTMLResponse)
async def transfer_confirm(request: Request, csrf: str = Form(""), to: str = Form(""), amount: str = Form(""),
                           note: str = Form("")) -> Response:
    me = await _signed_in(request)
    c = container(request)
    try:
        check_csrf(request, csrf)
        fen = parse_yuan(amount)
        if len(note) > 64:
            raise ValidationFailed("a note has at most 64 characters", field="note")
        await _hit(request, "lookup")
        who = await c.banking.recipient(to)
        check_not_self(me.msisdn, who.msisdn)
    except MobipayError as exc:
        return _transfer_form(request, error=_words(request, exc), status=exc.status, to=to, amount=amount,
                              note=note)
    return _view(request, "transfer_confirm.html", {
        "to": to, "masked": mask_msisdn(who.msisdn), "name": who.masked_name, "registered": who.registered,
        "fen": fen, "amount": yuan_text(fen), "note": note, "key": _key(),
        "needs_pin": fen > c.wallet.limits.password_free})


@router.post("/transfer", response_class=HTMLResponse)
async def transfer(request: Request, csrf: str = Form(""), to: str = Form(""), amount: str = Form(""),
                   note: str = Form(""), pin: str = Form(""), key: str = Form("")) -> Response:
    me = await _signed_in(request)
    try:
        check_csrf(request, csrf)
        fen = parse_yuan(amount)
        done = await container(request).wallet.transfer(me, to, fen, idempotency_key=key, pin=pin or None,
                                                         note=note[:64])
    except MobipayError as exc:
        return _transfer_form(request, error=_words(request, exc), status=exc.status, to=to, amount=amount,
                              note=note)
    return _go(request, f"/m/receipts/{done.id}")


# ---------------------------------------------------------------------- history and receipts


@router.get("/history", response_class=HTMLResponse)
async def history(request: Request, kind: str = "", direction: str = "", since: str = "", until: str = "",
                  after: str = "") -> Response:
    me = await _signed_in(request)
    error, nxt = "", None
    items: list[dict[str, Any]] = []
    try:
        if kind and kind not in KINDS:
            raise ValidationFailed("choose a kind from the list", field="kind")
        if direction not in ("", "in", "out"):
            raise ValidationFailed("direction is in or out", field="direction")
        if after and not (after.isascii() and after.isdigit() and len(after) <= 18):
            raise ValidationFailed("not a page of this list", field="after")
        start = _day(since, "since")
        end = _day(until, "until")
        side = {"out": Side.DEBIT, "in": Side.CREDIT}.get(direction)
        items, nxt = await container(request).wallet.history(
            me.account_code, after=int(after or 0), limit=20, codes=KINDS[kind] if kind else None, side=side,
            since=start, until=end.replace(hour=23, minute=59, second=59) if end else None)
    except MobipayError as exc:
        error = _words(request, exc)
    query = {k: v for k, v in {"kind": kind, "direction": direction, "since": since, "until": until}.items() if v}
    return _view(request, "history.html", {
        "error": error, "items": items, "kinds": list(KINDS), "kind": kind, "direction": direction, "since": since,
        "until": until, "next": urlencode({**query, "after": nxt}) if nxt is not None else None})


def _day(raw: str, field: str) -> datetime | None:
    """A YYYY-MM-DD day of the date picker as the start of that day in Shanghai."""
    if not raw:
        return None
    try:
        return datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=SHANGHAI)
    except ValueError:
        raise ValidationFailed("give the day as YYYY-MM-DD", field=field) from None


@router.get("/receipts/{transfer_id}", response_class=HTMLResponse)
async def receipt(transfer_id: str, request: Request) -> Response:
    me = await _signed_in(request)
    try:
        r = await container(request).wallet.receipt(me, transfer_id)
    except MobipayError as exc:
        return _view(request, "notfound.html", {"error": _words(request, exc)}, status=exc.status)
    return _view(request, "receipt.html", {"r": r})


# ---------------------------------------------------------------------- top-up


def _topup_form(request: Request, me: Principal, *, error: str = "", status: int = 200, msisdn: str = "",
                amount: str = "") -> Response:
    return _view(request, "topup.html", {"error": error, "msisdn": msisdn or me.msisdn.removeprefix("+86"),
                                         "amount": amount, "faces": (10, 20, 30, 50, 100, 200, 300, 500)},
                 status=status)


@router.get("/topup", response_class=HTMLResponse)
async def topup_page(request: Request) -> Response:
    me = await _signed_in(request)
    return _topup_form(request, me)


@router.post("/topup/quote", response_class=HTMLResponse)
async def topup_quote(request: Request, csrf: str = Form(""), msisdn: str = Form(""), amount: str = Form("")
                      ) -> Response:
    me = await _signed_in(request)
    c = container(request)
    try:
        check_csrf(request, csrf)
        q = c.topup.quote(msisdn, parse_yuan(amount))
    except MobipayError as exc:
        return _topup_form(request, me, error=_words(request, exc), status=exc.status, msisdn=msisdn,
                           amount=amount)
    return _view(request, "topup_confirm.html", {"q": q, "masked": mask_msisdn(q.msisdn), "msisdn": msisdn,
                                                 "operator": OPERATOR_WORDS.get(q.operator, (q.operator, q.operator)),
                                                 "amount": yuan_text(q.face), "key": _key(),
                                                 "needs_pin": q.price > c.wallet.limits.password_free})


@router.post("/topup", response_class=HTMLResponse)
async def topup(request: Request, csrf: str = Form(""), msisdn: str = Form(""), amount: str = Form(""),
                pin: str = Form(""), key: str = Form("")) -> Response:
    me = await _signed_in(request)
    try:
        check_csrf(request, csrf)
        order = await container(request).topup.topup(me, msisdn, parse_yuan(amount), idempotency_key=key,
                                                     pin=pin or None)
    except MobipayError as exc:
        return _topup_form(request, me, error=_words(request, exc), status=exc.status, msisdn=msisdn,
                           amount=amount)
    return _go(request, f"/m/topups/{order.id}")


@router.get("/topups/{order_id}", response_class=HTMLResponse)
async def topup_order(order_id: str, request: Request) -> Response:
    me = await _signed_in(request)
    try:
        order = await container(request).topup.get(me, order_id)
    except MobipayError as exc:
        return _view(request, "notfound.html", {"error": _words(request, exc)}, status=exc.status)
    return _view(request, "order.html", {"o": order, "what": ("话费充值", "Top-up"),
                                         "target": mask_msisdn(order.details["msisdn"]),
                                         "paid": order.details["price"], "error": order_error(request, order)})


# ---------------------------------------------------------------------- bill zone


@router.get("/bills", response_class=HTMLResponse)
async def bills(request: Request, city: str = "", category: str = "", q: str = "") -> Response:
    await _signed_in(request)
    c = container(request)
    error, found = "", []
    try:
        cat = Category(category) if category else None
    except ValueError:
        cat, error = None, _words(request, ValidationFailed("choose a category from the list", field="category"))
    if (city or cat or q.strip()) and not error:
        found = await c.bills.find(city=city or None, category=cat, q=q.strip()[:32] or None, limit=100)
    return _view(request, "bills.html", {"cities": await c.bills.cities(), "categories": CATEGORY_NAMES,
                                         "city": city, "category": category, "q": q, "billers": found,
                                         "error": error})


async def _biller_page(request: Request, code: str, *, error: str = "", status: int = 200, customer_id: str = "",
                       bill: Any = None, amount: str = "", duplicate: bool = False) -> Response:
    biller = await container(request).bills.biller(code)
    return _view(request, "biller.html", {
        "b": biller, "category": CATEGORY_NAMES[biller.category.value], "error": error, "customer_id": customer_id,
        "bill": bill, "amount": amount or (yuan_text(bill.bill.amount_due) if bill else ""), "key": _key(),
        "duplicate": duplicate, "password_free": container(request).wallet.limits.password_free}, status=status)


@router.get("/bills/billers/{code}", response_class=HTMLResponse)
async def biller(code: str, request: Request) -> Response:
    await _signed_in(request)
    try:
        return await _biller_page(request, code)
    except MobipayError as exc:
        return _view(request, "notfound.html", {"error": _words(request, exc)}, status=exc.status)


@router.post("/bills/billers/{code}/fetch", response_class=HTMLResponse)
async def fetch_bill(code: str, request: Request, csrf: str = Form(""), customer_id: str = Form("")) -> Response:
    me = await _signed_in(request)
    try:
        check_csrf(request, csrf)
        bill = await container(request).bills.fetch(me, code, customer_id)
    except MobipayError as exc:
        return await _biller_page(request, code, error=_words(request, exc), status=exc.status,
                                  customer_id=customer_id)
    return await _biller_page(request, code, customer_id=customer_id, bill=bill)


@router.post("/bills/billers/{code}/pay", response_class=HTMLResponse)
async def pay_bill(code: str, request: Request, csrf: str = Form(""), customer_id: str = Form(""),
                   amount: str = Form(""), bill_id: str = Form(""), pin: str = Form(""), key: str = Form(""),
                   confirm_duplicate: str = Form("")) -> Response:
    me = await _signed_in(request)
    c = container(request)
    try:
        check_csrf(request, csrf)
        order = await c.bills.pay(me, code, customer_id, parse_yuan(amount), idempotency_key=key,
                                  bill_id=bill_id or None, pin=pin or None, confirm_duplicate=confirm_duplicate == "1")
    except MobipayError as exc:
        bill = None
        if bill_id:
            try:
                bill = await c.bills.fetch(me, code, customer_id)
            except MobipayError:
                bill = None
        return await _biller_page(request, code, error=_words(request, exc), status=exc.status,
                                  customer_id=customer_id, bill=bill, amount=amount,
                                  duplicate=isinstance(exc, bills_errors.DuplicatePayment))
    return _go(request, f"/m/bills/payments/{order.id}")


@router.get("/bills/payments/{payment_id}", response_class=HTMLResponse)
async def bill_payment(payment_id: str, request: Request) -> Response:
    me = await _signed_in(request)
    try:
        order = await container(request).bills.get(me, payment_id)
    except MobipayError as exc:
        return _view(request, "notfound.html", {"error": _words(request, exc)}, status=exc.status)
    return _view(request, "order.html", {"o": order, "what": (order.details["biller_name"],
                                                              order.details["biller_name"]),
                                         "target": f"{order.details['customer_id']} · {order.details['period']}",
                                         "paid": order.amount, "error": order_error(request, order)})


# ---------------------------------------------------------------------- money requests


async def _requests_page(request: Request, me: Principal, *, error: str = "", status: int = 200,
                         payer: str = "", amount: str = "", note: str = "") -> Response:
    c = container(request)
    incoming, outgoing = await c.wallet.money_requests(me)
    return _view(request, "requests.html", {
        "incoming": incoming, "outgoing": outgoing, "mask": mask_msisdn, "error": error, "payer": payer,
        "amount": amount, "note": note, "key": _key(), "password_free": c.wallet.limits.password_free},
        status=status)


@router.get("/requests", response_class=HTMLResponse)
async def requests_page(request: Request) -> Response:
    me = await _signed_in(request)
    return await _requests_page(request, me)


@router.post("/requests", response_class=HTMLResponse)
async def request_money(request: Request, csrf: str = Form(""), payer: str = Form(""), amount: str = Form(""),
                        note: str = Form(""), key: str = Form("")) -> Response:
    me = await _signed_in(request)
    try:
        check_csrf(request, csrf)
        await container(request).wallet.request_money(me, payer, parse_yuan(amount), idempotency_key=key,
                                                      note=note[:64])
    except MobipayError as exc:
        return await _requests_page(request, me, error=_words(request, exc), status=exc.status, payer=payer,
                                    amount=amount, note=note)
    return _go(request, "/m/requests")


@router.post("/requests/{request_id}/pay", response_class=HTMLResponse)
async def pay_request(request_id: str, request: Request, csrf: str = Form(""), pin: str = Form("")) -> Response:
    me = await _signed_in(request)
    try:
        check_csrf(request, csrf)
        done = await container(request).wallet.pay_request(me, request_id, pin=pin or None)
    except MobipayError as exc:
        return await _requests_page(request, me, error=_words(request, exc), status=exc.status)
    return _go(request, f"/m/receipts/{done.id}")


@router.post("/requests/{request_id}/decline", response_class=HTMLResponse)
async def decline_request(request_id: str, request: Request, csrf: str = Form("")) -> Response:
    me = await _signed_in(request)
    try:
        check_csrf(request, csrf)
        await container(request).wallet.decline_request(me, request_id)
    except MobipayError as exc:
        return await _requests_page(request, me, error=_words(request, exc), status=exc.status)
    return _go(request, "/m/requests")


# ---------------------------------------------------------------------- red envelopes


async def _envelopes_page(request: Request, me: Principal, *, error: str = "", status: int = 200) -> Response:
    c = container(request)
    now = c.clock.now()
    return _view(request, "envelopes.html", {"mine": await c.red_envelopes.mine(me), "zone": await c.red_envelopes
                                             .zone(limit=30), "now": now, "error": error}, status=status)


@router.get("/envelopes", response_class=HTMLResponse)
async def envelopes(request: Request) -> Response:
    me = await _signed_in(request)
    return await _envelopes_page(request, me)


@router.post("/envelopes/{campaign_id}/claim", response_class=HTMLResponse)
async def claim(campaign_id: str, request: Request, csrf: str = Form("")) -> Response:
    me = await _signed_in(request)
    try:
        check_csrf(request, csrf)
        await container(request).red_envelopes.claim(me, campaign_id)
    except MobipayError as exc:
        return await _envelopes_page(request, me, error=_words(request, exc), status=exc.status)
    return _go(request, "/m/envelopes")


# ---------------------------------------------------------------------- cards, cash-in/out, PIN


async def _cards_page(request: Request, me: Principal, *, error: str = "", status: int = 200,
                      name: str = "", amount: str = "") -> Response:
    c = container(request)
    user = await c.wallet.user_by_msisdn(me.msisdn)
    return _view(request, "cards.html", {"cards": await c.banking.cards(me), "orders": await c.banking.my_orders(me,
                                         limit=10), "tier": int(user.tier), "error": error, "name": name,
                                         "amount": amount, "key": _key()}, status=status)


@router.get("/cards", response_class=HTMLResponse)
async def cards(request: Request) -> Response:
    me = await _signed_in(request)
    return await _cards_page(request, me)


@router.post("/cards", response_class=HTMLResponse)
async def bind_card(request: Request, csrf: str = Form(""), name: str = Form(""), id_number: str = Form(""),
                    card_number: str = Form("")) -> Response:
    me = await _signed_in(request)
    try:
        check_csrf(request, csrf)
        await _hit(request, "pin")
        await container(request).banking.bind_card(me, card_number, name, id_number)
    except MobipayError as exc:  # the identity and card numbers are never echoed back into the page
        return await _cards_page(request, me, error=_words(request, exc), status=exc.status, name=name)
    return _go(request, "/m/cards")


@router.post("/cash", response_class=HTMLResponse)
async def cash(request: Request, csrf: str = Form(""), direction: str = Form(""), card_id: str = Form(""),
               amount: str = Form(""), pin: str = Form(""), key: str = Form("")) -> Response:
    me = await _signed_in(request)
    banking = container(request).banking
    try:
        check_csrf(request, csrf)
        fen = parse_yuan(amount)
        if direction == "in":
            order = await banking.cash_in(me, card_id, fen, idempotency_key=key)
        elif direction == "out":
            order = await banking.cash_out(me, card_id, fen, idempotency_key=key, pin=pin or None)
        else:
            raise ValidationFailed("choose add money or withdraw", field="direction")
    except MobipayError as exc:
        return await _cards_page(request, me, error=_words(request, exc), status=exc.status, amount=amount)
    return _go(request, f"/m/bank-orders/{order.id}")


@router.get("/bank-orders/{order_id}", response_class=HTMLResponse)
async def bank_order(order_id: str, request: Request) -> Response:
    me = await _signed_in(request)
    try:
        order = await container(request).banking.order(me, order_id)
    except MobipayError as exc:
        return _view(request, "notfound.html", {"error": _words(request, exc)}, status=exc.status)
    what = {"cash_in": ("银行卡充值", "Add money"), "cash_out": ("提现", "Withdrawal")}.get(order.kind,
                                                                                     ("银行", "Bank"))
    return _view(request, "order.html", {"o": order, "what": what, "target": "", "paid": order.amount + order.fee,
                                         "error": order_error(request, order)})


async def _pin_page(request: Request, me: Principal, *, error: str = "", done: bool = False,
                    status: int = 200) -> Response:
    state = await container(request).wallet.pin_status(me.msisdn)
    return _view(request, "pin.html", {"has_pin": state is not None, "error": error, "done": done}, status=status)


@router.get("/pin", response_class=HTMLResponse)
async def pin_page(request: Request) -> Response:
    me = await _signed_in(request)
    return await _pin_page(request, me)


@router.post("/pin", response_class=HTMLResponse)
async def set_pin(request: Request, csrf: str = Form(""), current: str = Form(""), pin: str = Form(""),
                  again: str = Form("")) -> Response:
    me = await _signed_in(request)
    wallet = container(request).wallet
    try:
        check_csrf(request, csrf)
        await _hit(request, "pin")
        if pin != again:
            raise ValidationFailed("the two new PINs differ; type the same one twice", field="pin")
        if current:
            await wallet.change_pin(me.msisdn, current, pin)
        else:
            await wallet.set_pin(me.msisdn, pin)
    except MobipayError as exc:
        return await _pin_page(request, me, error=_words(request, exc), status=exc.status)
    return await _pin_page(request, me, done=True)
