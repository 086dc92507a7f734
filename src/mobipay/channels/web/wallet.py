"""The mobile web wallet (the WAP / online business hall channel) under ``/m``.

Phone-sized server-rendered pages over the same services as the JSON API: sign in by
number and SMS code, balance, transfer (the recipient's masked real name shown before
paying), request money, top-up (quote, then pay), the bill zone, history and receipts,
red envelopes, bank cards (binding one is the real-name upgrade), cash-in/out, the PIN;
the operator's products, insurance and lottery.

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

from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mobipay.bills import errors as bills_errors
from mobipay.bills.model import Category
from mobipay.channels.actions import bet_text
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
from mobipay.channels.web.forms import parse_bets, parse_count, parse_yuan, yuan_text
from mobipay.channels.words import (
    CATEGORY_WORDS,
    COVER_WORDS,
    FAMILY_WORDS,
    INSURER_WORDS,
    OPERATOR_WORDS,
    PERIOD_WORDS,
    game_words,
    product_words,
)
from mobipay.kernel.clock import SHANGHAI
from mobipay.kernel.errors import MobipayError, ValidationFailed
from mobipay.kernel.msisdn import mask_msisdn, mask_name
from mobipay.ledger.model import Side
from mobipay.lottery import errors as lottery_errors
from mobipay.lottery.model import MAX_BETS, MAX_MULTIPLIER, ticket_cost
from mobipay.lottery.service import Ticket
from mobipay.orders.model import OrderState
from mobipay.orders.service import PartnerOrder
from mobipay.products import errors as products_errors
from mobipay.products.service import POLICY, PRODUCT
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
        ("bill", ("bill.failed", "bill.refund")), ("operator_product", ("operator_product.failed",)),
        ("insurance", ("insurance.failed", "insurance_cancel")), ("lottery", ("lottery.failed", "lottery.prize")),
        ("merchant.payment", ()), ("merchant.refund", ()))
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
    refused: type[MobipayError] = {
        "topup": TopupFailed, "bill": bills_errors.BillPaymentFailed, PRODUCT: products_errors.DeliveryFailed,
        POLICY: products_errors.DeliveryFailed, "insurance_cancel": products_errors.DeliveryFailed,
        "lottery": lottery_errors.TicketRejected}.get(order.kind, wallet_errors.BankDeclined)
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


# ---------------------------------------------------------------------- the operator's products


def _not_found(request: Request, exc: MobipayError) -> Response:
    return _view(request, "notfound.html", {"error": _words(request, exc)}, status=exc.status)


async def _products_page(request: Request, me: Principal, *, error: str = "", status: int = 200) -> Response:
    c = container(request)
    families: dict[str, list[Any]] = {}
    for n, p in enumerate(c.channel_actions.product_list(), 1):
        families.setdefault(p.family.value, []).append((n, p, product_words(p.code, p.name, p.description)))
    orders = await c.products.product_orders(me, limit=20)
    return _view(request, "products.html", {"families": families, "family_words": FAMILY_WORDS,
                                            "period_words": PERIOD_WORDS, "orders": orders, "error": error},
                 status=status)


@router.get("/products", response_class=HTMLResponse)
async def products_page(request: Request) -> Response:
    me = await _signed_in(request)
    return await _products_page(request, me)


async def _product_confirm(request: Request, me: Principal, code: str, *, error: str = "",
                           status: int = 200) -> Response:
    c = container(request)
    product = c.channel_actions.product(code)
    refused = False  # not sold to this number: no form to pay with
    if not error:
        try:
            c.channel_actions.check_product(me, product)
        except MobipayError as exc:
            error, status, refused = _words(request, exc), exc.status, True
    return _view(request, "product_confirm.html", {
        "p": product, "words": product_words(product.code, product.name, product.description),
        "period": PERIOD_WORDS[product.period], "masked": mask_msisdn(me.msisdn), "key": _key(),
        "needs_pin": product.price > c.wallet.limits.password_free, "error": error, "refused": refused},
        status=status)


@router.get("/products/{code}", response_class=HTMLResponse)
async def product_page(code: str, request: Request) -> Response:
    me = await _signed_in(request)
    try:
        return await _product_confirm(request, me, code)
    except MobipayError as exc:
        return _not_found(request, exc)


@router.post("/products/{code}", response_class=HTMLResponse)
async def buy_product(code: str, request: Request, csrf: str = Form(""), pin: str = Form(""), key: str = Form("")
                      ) -> Response:
    me = await _signed_in(request)
    c = container(request)
    try:
        product = c.channel_actions.product(code)
    except MobipayError as exc:
        return _not_found(request, exc)
    try:
        check_csrf(request, csrf)
        order = await c.products.buy_product(me, product.code, idempotency_key=key, pin=pin or None)
    except MobipayError as exc:
        return await _product_confirm(request, me, product.code, error=_words(request, exc), status=exc.status)
    return _go(request, f"/m/product-orders/{order.id}")


@router.get("/product-orders/{order_id}", response_class=HTMLResponse)
async def product_order(order_id: str, request: Request) -> Response:
    me = await _signed_in(request)
    try:
        order = await container(request).products.product_order(me, order_id[:80])
    except MobipayError as exc:
        return _not_found(request, exc)
    name = product_words(order.details["product"], order.details.get("name", ""), "")
    return _view(request, "order.html", {"o": order, "what": name, "target": mask_msisdn(order.details["msisdn"]),
                                         "paid": order.amount, "error": order_error(request, order)})


# ---------------------------------------------------------------------- insurance


def _today(request: Request) -> date:
    return container(request).clock.now().astimezone(SHANGHAI).date()


def _cancellable(request: Request, policy: PartnerOrder, cancel: PartnerOrder | None) -> bool:
    """Whether a cancel button belongs on the policy: issued, not cancelled, in its cooling-off period."""
    c = container(request)
    product = c.products.insurance.get(policy.details["product"])
    if product is None or policy.state is not OrderState.SUCCEEDED or (
            cancel is not None and cancel.state is not OrderState.FAILED):
        return False
    until = product.cancellable_until(policy.created_at, datetime.fromisoformat(policy.details["starts_at"]))
    return c.clock.now() < until


async def _insurance_page(request: Request, me: Principal, *, error: str = "", status: int = 200,
                          form: dict[str, str] | None = None) -> Response:
    c = container(request)
    policies = [(p, cancel, _cancellable(request, p, cancel)) for p, cancel in await c.products.policies(me)]
    tomorrow = (_today(request) + timedelta(days=1)).isoformat()
    return _view(request, "insurance.html", {
        "products": list(c.products.insurance.values()), "policies": policies, "mask_name": mask_name,
        "insurer_words": INSURER_WORDS, "cover_words": COVER_WORDS,
        "form": {"product": "", "insured_name": "", "starts_on": tomorrow, **(form or {})}, "key": _key(),
        "today": _today(request).isoformat(), "password_free": c.wallet.limits.password_free, "error": error},
        status=status)


@router.get("/insurance", response_class=HTMLResponse)
async def insurance_page(request: Request) -> Response:
    me = await _signed_in(request)
    return await _insurance_page(request, me)


@router.post("/insurance", response_class=HTMLResponse)
async def buy_policy(request: Request, csrf: str = Form(""), product: str = Form(""), insured_name: str = Form(""),
                     insured_id_number: str = Form(""), starts_on: str = Form(""), pin: str = Form(""),
                     key: str = Form("")) -> Response:
    me = await _signed_in(request)
    try:
        check_csrf(request, csrf)
        if not product:
            raise ValidationFailed("choose an insurance product", field="product")
        starts = _day(starts_on, "starts_on")
        if starts is None:
            raise ValidationFailed("choose the day the cover starts", field="starts_on")
        policy = await container(request).products.buy_policy(
            me, product[:32], insured_name=insured_name[:64], insured_id=insured_id_number[:32],
            starts_on=starts.date(), idempotency_key=key, pin=pin or None)
    except MobipayError as exc:  # the identity number is never echoed back into the page
        return await _insurance_page(request, me, error=_words(request, exc), status=exc.status,
                                     form={"product": product[:32], "insured_name": insured_name[:64],
                                           "starts_on": starts_on[:10]})
    return _go(request, f"/m/policies/{policy.id}")


async def _policy(request: Request, me: Principal, policy_id: str) -> tuple[PartnerOrder, PartnerOrder | None]:
    for policy, cancel in await container(request).products.policies(me):
        if policy.id == policy_id:
            return policy, cancel
    raise products_errors.PolicyNotFound("no such policy in your wallet", field="policy_id")


async def _policy_page(request: Request, me: Principal, policy_id: str, *, error: str = "",
                       status: int = 200) -> Response:
    try:
        policy, cancel = await _policy(request, me, policy_id)
    except MobipayError as exc:
        return _not_found(request, exc)
    return _view(request, "policy.html", {
        "o": policy, "cancel": cancel, "insured": mask_name(policy.details["insured_name"]),
        "starts": datetime.fromisoformat(policy.details["starts_at"]),
        "ends": datetime.fromisoformat(policy.details["ends_at"]), "cancellable": _cancellable(request, policy, cancel),
        "error": error or order_error(request, policy)}, status=status)


@router.get("/policies/{policy_id}", response_class=HTMLResponse)
async def policy_page(policy_id: str, request: Request) -> Response:
    me = await _signed_in(request)
    return await _policy_page(request, me, policy_id)


@router.post("/policies/{policy_id}/cancel", response_class=HTMLResponse)
async def cancel_policy(policy_id: str, request: Request, csrf: str = Form("")) -> Response:
    me = await _signed_in(request)
    try:
        check_csrf(request, csrf)
        await container(request).products.cancel_policy(me, policy_id)
    except MobipayError as exc:
        if isinstance(exc, products_errors.PolicyNotFound):
            return _not_found(request, exc)
        return await _policy_page(request, me, policy_id, error=_words(request, exc), status=exc.status)
    return _go(request, f"/m/policies/{policy_id}")


# ---------------------------------------------------------------------- lottery


async def _lottery_page(request: Request, me: Principal, *, error: str = "", status: int = 200,
                        form: dict[str, str] | None = None) -> Response:
    c = container(request)
    tickets = await c.lottery.mine(me)
    return _view(request, "lottery.html", {
        "games": c.channel_actions.games(), "game_words": game_words, "tickets": tickets[:20], "bet_text": bet_text,
        "form": {"game": "", "numbers": "", "quick_picks": "0", "multiplier": "1", **(form or {})},
        "max_bets": MAX_BETS, "max_multiplier": MAX_MULTIPLIER, "error": error}, status=status)


@router.get("/lottery", response_class=HTMLResponse)
async def lottery_page(request: Request) -> Response:
    me = await _signed_in(request)
    return await _lottery_page(request, me)


def _ticket_request(request: Request, game: str, numbers: str, quick_picks: str, multiplier: str
                    ) -> tuple[Any, list[list[list[int]]], int, int, int]:
    """The game on sale and the ticket asked for, checked: (sale, bets, quick picks, multiplier, cost)."""
    sale = container(request).channel_actions.on_sale(game[:8])
    bets = parse_bets(numbers[:2000], max_bets=MAX_BETS)
    for bet in bets:
        sale.game.check_bet(bet)
    picks = parse_count(quick_picks, 0, MAX_BETS, field="quick_picks")
    times = parse_count(multiplier, 1, MAX_MULTIPLIER, field="multiplier")
    if not bets and not picks:
        raise lottery_errors.InvalidNumbers("type your numbers or ask for quick picks", field="numbers")
    return sale, bets, picks, times, ticket_cost(len(bets) + picks, times)


@router.post("/lottery/{game}/confirm", response_class=HTMLResponse)
async def lottery_confirm(game: str, request: Request, csrf: str = Form(""), numbers: str = Form(""),
                          quick_picks: str = Form("0"), multiplier: str = Form("1")) -> Response:
    me = await _signed_in(request)
    form = {"game": game[:8], "numbers": numbers[:200], "quick_picks": quick_picks[:3], "multiplier": multiplier[:3]}
    try:
        check_csrf(request, csrf)
        sale, bets, picks, times, cost = _ticket_request(request, game, numbers, quick_picks, multiplier)
    except MobipayError as exc:
        return await _lottery_page(request, me, error=_words(request, exc), status=exc.status, form=form)
    return _view(request, "lottery_confirm.html", {
        "sale": sale, "name": game_words(sale.game.code), "bets": [bet_text(b) for b in bets], "picks": picks,
        "times": times, "cost": cost, "numbers": numbers[:2000], "key": _key(),
        "needs_pin": cost > container(request).wallet.limits.password_free})


@router.post("/lottery/{game}", response_class=HTMLResponse)
async def buy_ticket(game: str, request: Request, csrf: str = Form(""), numbers: str = Form(""),
                     quick_picks: str = Form("0"), multiplier: str = Form("1"), issue: str = Form(""),
                     pin: str = Form(""), key: str = Form("")) -> Response:
    me = await _signed_in(request)
    c = container(request)
    form = {"game": game[:8], "numbers": numbers[:200], "quick_picks": quick_picks[:3], "multiplier": multiplier[:3]}
    try:
        check_csrf(request, csrf)
        sale, bets, picks, times, _ = _ticket_request(request, game, numbers, quick_picks, multiplier)
        ticket = await c.lottery.buy(me, sale.game.code, bets=bets, quick_picks=picks, multiplier=times,
                                     idempotency_key=key, pin=pin or None, issue=issue[:16])
    except MobipayError as exc:
        return await _lottery_page(request, me, error=_words(request, exc), status=exc.status, form=form)
    return _go(request, f"/m/lottery/tickets/{ticket.order.id}")


async def _ticket_view(request: Request, t: Ticket, *, error: str = "", status: int = 200) -> Response:
    now = container(request).clock.now()
    claim_open = t.claim_required and t.claimed_at is None and t.claim_by is not None and now < t.claim_by
    return _view(request, "ticket.html", {"tk": t, "name": game_words(t.game), "bets": [bet_text(b) for b in t.bets],
                                          "claim_open": claim_open, "error": error or order_error(request, t.order)},
                 status=status)


@router.get("/lottery/tickets/{ticket_id}", response_class=HTMLResponse)
async def ticket_page(ticket_id: str, request: Request) -> Response:
    me = await _signed_in(request)
    try:
        t = await container(request).lottery.ticket(me, ticket_id[:80])
    except MobipayError as exc:
        return _not_found(request, exc)
    return await _ticket_view(request, t)


@router.post("/lottery/tickets/{ticket_id}/claim", response_class=HTMLResponse)
async def claim_prize(ticket_id: str, request: Request, csrf: str = Form(""), name: str = Form(""),
                      id_number: str = Form("")) -> Response:
    """A large prize, claimed with the wallet's verified identity; a refusal is a sentence on
    the ticket's page and pays nothing; claiming again shows the paid ticket."""
    me = await _signed_in(request)
    c = container(request)
    try:
        t = await c.lottery.ticket(me, ticket_id[:80])
    except MobipayError as exc:
        return _not_found(request, exc)
    try:
        check_csrf(request, csrf)
        await c.lottery.claim(me, t.order.id, name=name[:32], id_number=id_number[:18])
    except MobipayError as exc:
        return await _ticket_view(request, t, error=_words(request, exc), status=exc.status)
    return _go(request, f"/m/lottery/tickets/{t.order.id}")
