"""The console's pages: dashboard, users, transactions and reversals (maker-checker),
billers, merchants, reconciliation exceptions, complaints, operators.

Handlers are thin: they check the role (:func:`guard`), the CSRF token and that a reason
was given, then call the owning service, which does the work and writes the audit entry
in the same transaction. A refusal re-renders the page with its words and code and the
HTTP status of the error; nothing changes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from mobipay.backoffice.errors import OperatorSessionExpired
from mobipay.backoffice.operators import Operator
from mobipay.bills.model import Category, ComplaintState
from mobipay.channels.web.common import check_csrf, container, harden, lang, message, page
from mobipay.channels.web.console.auth import ROLE_NAMES, guard, operator
from mobipay.channels.words import KIND_WORDS
from mobipay.kernel.clock import SHANGHAI
from mobipay.kernel.errors import MobipayError, RoleRequired, ValidationFailed
from mobipay.ledger.model import Side, StoredTransfer
from mobipay.merchants.model import MerchantState
from mobipay.platform import audit
from mobipay.reporting import kpi

router = APIRouter(prefix="/console")

DASHBOARD = ("operations", "finance", "risk")
USERS = ("support", "risk")
TRANSACTIONS = ("support", "operations", "finance", "risk")
REVERSALS = ("operations", "finance")
BILLERS = ("operations", "support")
MERCHANTS = ("merchant_review", "risk", "finance")
RECON = ("finance", "operations")
COMPLAINTS = ("support",)


def _render(request: Request, name: str, me: Operator, ctx: dict[str, Any], *, status: int = 200) -> Response:
    return page(request, name, {"me": me, "role_names": ROLE_NAMES, "error": "", "notice": "", "kinds": KIND_WORDS,
                                **ctx}, status=status)


def _reason(reason: str) -> str:
    if not reason.strip():
        raise ValidationFailed("give the reason for the audit trail", field="reason")
    return reason.strip()


def _day(raw: str, field: str = "date") -> date | None:
    if not raw.strip():
        return None
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise ValidationFailed(f"{field} must be a date like 2026-11-24", field=field) from None


def _day_window(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, SHANGHAI).astimezone(UTC)
    return start, start + timedelta(days=1)


async def _act(request: Request, csrf: str, reason: str, work: Callable[[str], Awaitable[Any]]) -> tuple[str, int]:
    """Run a form's action: CSRF, a reason, then ``work(reason)``. Returns ``(error, status)``."""
    try:
        check_csrf(request, csrf)
        await work(_reason(reason))
    except MobipayError as exc:
        return message(exc, lang(request)), exc.status
    return "", 200


# ---------------------------------------------------------------------------- dashboard

#: The dashboard's windows: the last 7, 30 or 90 Shanghai days (today so far included).
DAYS = (7, 30, 90)
#: Each product's name on the page (docs/kpi.md says what each counts).
PRODUCT_NAMES: dict[str, tuple[str, str]] = {
    "p2p": ("转账", "Transfers"), "topup": ("话费充值", "Top-up"), "bill": ("生活缴费", "Bills"),
    "merchant": ("商户消费", "Merchant payments"), "operator_product": ("运营商业务", "Operator products"),
    "insurance": ("保险", "Insurance"), "lottery": ("彩票", "Lottery"), "cash_in": ("充值（银行卡转入）", "Cash-in"),
    "cash_out": ("提现", "Cash-out"), "close_payout": ("销户退款", "Closing payouts"),
    "settlement": ("商户结算付款", "Merchant settlement payouts"), "insurance_cancel": ("退保", "Policy cancellations"),
}
UNKNOWN_PLACE = ("未知", "Unknown")


def _days(raw: str) -> int:
    """One of :data:`DAYS` (30 when the value is anything else)."""
    return int(raw) if raw.strip() in {str(d) for d in DAYS} else 30


def figures_json(k: kpi.Kpis, days: int, language: str) -> dict[str, Any]:
    """The dashboard's figures as the page's charts read them (fen and counts, names in
    the page's language)."""
    en = language == "en"

    def name(key: str) -> str:
        zh_en = PRODUCT_NAMES.get(key, (key, key))
        return zh_en[1] if en else zh_en[0]

    def place(key: str) -> str:
        return (UNKNOWN_PLACE[1] if en else UNKNOWN_PLACE[0]) if key == "-" else key

    rates = k.success_rates
    return {
        "days": days, "since": k.since.isoformat(), "until": k.until.isoformat(),
        "first_day": k.by_day[0].day if k.by_day else None, "last_day": k.by_day[-1].day if k.by_day else None,
        "totals": {"count": k.total.count, "amount": k.total.amount, "gmv": k.total.gmv,
                   "success_rate": k.success_rate, "registered_users": k.registered_users,
                   "new_users": k.new_users, "daily_active_users": k.daily_active_users,
                   "monthly_active_users": k.monthly_active_users, "merchants_approved": k.merchants_approved,
                   "merchants_total": k.merchants_total},
        "products": [{"key": v.key, "name": name(v.key), "count": v.count, "amount": v.amount, "gmv": v.gmv,
                      "success_rate": rates.get(v.key)} for v in k.by_product],
        "funds": [{"key": v.key, "name": name(v.key), "count": v.count, "amount": v.amount,
                   "success_rate": rates.get(v.key)} for v in k.funds],
        "success_rates": {key: {"name": name(key), "rate": rate, "succeeded": k.outcomes[key][0],
                                "decided": k.outcomes[key][1]} for key, rate in rates.items()},
        "days_series": [{"day": d.day, "count": d.count, "amount": d.amount, "gmv": d.gmv,
                         "active_users": d.active_users} for d in k.by_day],
        "trend": [{"key": key, "name": name(key), "amounts": amounts} for key, amounts in k.trend.items()],
        "provinces": [{"name": v.key, "label": place(v.key), "count": v.count, "amount": v.amount, "gmv": v.gmv}
                      for v in k.by_province],
        "cities": [{"name": v.key, "label": place(v.key), "province": v.parent, "count": v.count,
                    "amount": v.amount, "gmv": v.gmv} for v in k.by_city],
    }


async def _figures(request: Request, days: int) -> kpi.Kpis:
    c = container(request)
    return await kpi.dashboard(c, *kpi.window(c.clock.now(), days))


@router.get("", response_class=HTMLResponse)
async def dashboard(request: Request, days: str = "30") -> Response:
    me = await guard(request, *DASHBOARD)
    if isinstance(me, Response):
        return me
    n = _days(days)
    figures = await _figures(request, n)
    c = container(request)
    groupbuy = await c.groupbuy.daily_spend(c.clock.now().astimezone(SHANGHAI).date())  # 聚惠啦, today
    staleness = await c.read_db.staleness()  # seconds behind the writer when the figures came from a replica
    return _render(request, "console/dashboard.html", me, {
        "k": figures, "days": n, "choices": DAYS, "names": PRODUCT_NAMES, "groupbuy": groupbuy,
        "staleness": staleness, "data": figures_json(figures, n, lang(request))})


@router.get("/api/dashboard")
async def dashboard_data(request: Request, days: str = "30") -> Response:
    """The dashboard's figures as JSON for its charts: signed-in operators with a
    dashboard role only (problem+json 401 / 403 otherwise)."""
    me = await operator(request)
    if me is None:
        raise OperatorSessionExpired("sign in to the console")
    if not any(me.has(r) for r in DASHBOARD):
        raise RoleRequired(f"{me.name!r} needs one of the roles {', '.join(DASHBOARD)}", role=DASHBOARD[0])
    n = _days(days)
    return harden(JSONResponse(figures_json(await _figures(request, n), n, lang(request))), request)


# ---------------------------------------------------------------------------- users


async def _user_page(request: Request, me: Operator, msisdn: str, *, error: str = "", notice: str = "",
                     status: int = 200) -> Response:
    c = container(request)
    try:
        user = await c.wallet.user_by_msisdn(msisdn)
    except MobipayError as exc:
        return _render(request, "console/users.html", me, {"q": msisdn, "error": message(exc, lang(request))},
                       status=exc.status)
    account = await c.ledger.account(user.account_code)
    cards = await c.banking.cards(await c.wallet.principal(user.id))
    history, _ = await c.ledger.statement(user.account_code, limit=50, newest_first=True)
    async with c.db.begin() as conn:
        trail = await audit.entries(conn, user.msisdn)
    return _render(request, "console/user.html", me, {
        "user": user, "account": account, "cards": cards, "devices": await c.wallet.devices(user.id),
        "pin": await c.wallet.pin_status(user.msisdn), "history": history, "trail": trail[-20:],
        "now": c.clock.now(), "error": error, "notice": notice}, status=status)


@router.get("/users", response_class=HTMLResponse)
async def users(request: Request, msisdn: str = "") -> Response:
    me = await guard(request, *USERS)
    if isinstance(me, Response):
        return me
    if msisdn.strip():
        return await _user_page(request, me, msisdn.strip())
    return _render(request, "console/users.html", me, {"q": ""})


@router.get("/users/{msisdn}", response_class=HTMLResponse)
async def user(request: Request, msisdn: str) -> Response:
    me = await guard(request, *USERS)
    if isinstance(me, Response):
        return me
    return await _user_page(request, me, msisdn)


async def _user_action(request: Request, msisdn: str, role: str, csrf: str, reason: str, done: tuple[str, str],
                       work: Callable[[Operator, str], Awaitable[Any]]) -> Response:
    me = await guard(request, role)
    if isinstance(me, Response):
        return me
    error, status = await _act(request, csrf, reason, lambda why: work(me, why))
    notice = "" if error else done[1 if lang(request) == "en" else 0]
    return await _user_page(request, me, msisdn, error=error, notice=notice, status=status)


@router.post("/users/{msisdn}/freeze", response_class=HTMLResponse)
async def freeze(request: Request, msisdn: str, csrf: str = Form(""), reason: str = Form("")) -> Response:
    wallet = container(request).wallet
    return await _user_action(request, msisdn, "risk", csrf, reason, ("已冻结", "Frozen"),
                              lambda me, why: wallet.set_frozen(msisdn, True, actor=me.name, reason=why))


@router.post("/users/{msisdn}/unfreeze", response_class=HTMLResponse)
async def unfreeze(request: Request, msisdn: str, csrf: str = Form(""), reason: str = Form("")) -> Response:
    wallet = container(request).wallet
    return await _user_action(request, msisdn, "risk", csrf, reason, ("已解冻", "Unfrozen"),
                              lambda me, why: wallet.set_frozen(msisdn, False, actor=me.name, reason=why))


@router.post("/users/{msisdn}/pin-unlock", response_class=HTMLResponse)
async def pin_unlock(request: Request, msisdn: str, csrf: str = Form(""), reason: str = Form("")) -> Response:
    wallet = container(request).wallet
    return await _user_action(request, msisdn, "support", csrf, reason, ("支付密码已解锁", "PIN unlocked"),
                              lambda me, why: wallet.unlock_pin(msisdn, actor=me.name, reason=why))


# ---------------------------------------------------------------------------- transactions


def _amount(t: StoredTransfer) -> int:
    """What a transfer moved: the sum of its debit legs."""
    return sum(leg.amount for leg in t.legs if leg.side is Side.DEBIT)


@router.get("/transactions", response_class=HTMLResponse)
async def transactions(request: Request, id: str = "", msisdn: str = "", kind: str = "",
                       date: str = "") -> Response:
    me = await guard(request, *TRANSACTIONS)
    if isinstance(me, Response):
        return me
    c = container(request)
    q = {"id": id.strip(), "msisdn": msisdn.strip(), "kind": kind.strip(), "date": date.strip()}
    rows: list[dict[str, Any]] = []
    try:
        day = _day(q["date"])
        since, until = _day_window(day) if day else (None, None)
        if q["id"]:
            t = await c.ledger.transfer(q["id"])
            rows = [{"id": t.id, "code": t.code, "type": t.type.value, "amount": _amount(t), "at": t.created_at}]
        elif q["msisdn"]:
            owner = await c.wallet.user_by_msisdn(q["msisdn"])
            lines, _ = await c.ledger.statement(owner.account_code, limit=100, newest_first=True,
                                                codes=[q["kind"]] if q["kind"] else None, since=since, until=until)
            rows = [{"id": ln["transfer_id"], "code": ln["code"], "type": ln["type"], "amount": -ln["amount"],
                     "at": ln["created_at"]} for ln in lines]
        else:
            found = await c.ledger.find_transfers(code=q["kind"] or None, since=since, until=until, limit=100)
            rows = [{"id": t.id, "code": t.code, "type": t.type.value, "amount": _amount(t), "at": t.created_at}
                    for t in found]
    except MobipayError as exc:
        return _render(request, "console/transactions.html", me, {"q": q, "rows": [],
                                                                   "error": message(exc, lang(request))},
                       status=exc.status)
    return _render(request, "console/transactions.html", me, {"q": q, "rows": rows, "signed": bool(q["msisdn"])})


async def _transaction_page(request: Request, me: Operator, transfer_id: str, *, error: str = "", notice: str = "",
                            status: int = 200) -> Response:
    c = container(request)
    try:
        t = await c.ledger.transfer(transfer_id)
    except MobipayError as exc:
        return _render(request, "console/transactions.html", me, {
            "q": {"id": transfer_id, "msisdn": "", "kind": "", "date": ""}, "rows": [],
            "error": message(exc, lang(request))}, status=exc.status)
    return _render(request, "console/transaction.html", me, {
        "tr": t, "amount": _amount(t), "reversed_by": await c.ledger.reversed_by(t.id),
        "requests": await c.reversals.list(state=None, transfer_id=t.id), "error": error, "notice": notice},
        status=status)


@router.get("/transactions/{transfer_id:path}", response_class=HTMLResponse)
async def transaction(request: Request, transfer_id: str) -> Response:
    me = await guard(request, *TRANSACTIONS)
    if isinstance(me, Response):
        return me
    return await _transaction_page(request, me, transfer_id)


@router.post("/reversals", response_class=HTMLResponse)
async def request_reversal(request: Request, csrf: str = Form(""), transfer_id: str = Form(""),
                           reason: str = Form("")) -> Response:
    me = await guard(request, "operations")
    if isinstance(me, Response):
        return me
    reversals = container(request).reversals
    error, status = await _act(request, csrf, reason, lambda why: reversals.request(me, transfer_id, reason=why))
    notice = "" if error else ("已提交冲正申请，等待另一位操作员审批" if lang(request) == "zh"
                               else "Reversal requested; another operator must approve it")
    return await _transaction_page(request, me, transfer_id, error=error, notice=notice, status=status)


async def _queue_page(request: Request, me: Operator, *, error: str = "", notice: str = "",
                      status: int = 200) -> Response:
    reversals = container(request).reversals
    return _render(request, "console/reversals.html", me, {
        "pending": await reversals.list(state="pending"),
        "decided": list(reversed(await reversals.list(state=None)))[:50], "error": error, "notice": notice},
        status=status)


@router.get("/reversals", response_class=HTMLResponse)
async def reversal_queue(request: Request) -> Response:
    me = await guard(request, *REVERSALS)
    if isinstance(me, Response):
        return me
    return await _queue_page(request, me)


@router.post("/reversals/{request_id}/{decision}", response_class=HTMLResponse)
async def decide_reversal(request: Request, request_id: str, decision: str, csrf: str = Form(""),
                          reason: str = Form("")) -> Response:
    me = await guard(request, "finance")
    if isinstance(me, Response):
        return me
    if decision not in ("approve", "reject"):
        return Response("no such decision", status_code=404, media_type="text/plain")
    reversals = container(request).reversals
    decide = reversals.approve if decision == "approve" else reversals.reject
    error, status = await _act(request, csrf, reason, lambda why: decide(me, request_id, reason=why))
    words = {"approve": ("已批准，冲正已入账", "Approved: the reversal is posted"),
             "reject": ("已驳回", "Rejected")}[decision]
    notice = "" if error else words[1 if lang(request) == "en" else 0]
    return await _queue_page(request, me, error=error, notice=notice, status=status)


# ---------------------------------------------------------------------------- billers


@router.get("/billers", response_class=HTMLResponse)
async def billers(request: Request, q: str = "", city: str = "", category: str = "") -> Response:
    me = await guard(request, *BILLERS)
    if isinstance(me, Response):
        return me
    c = container(request)
    error, status, found = "", 200, []
    try:
        if category and category not in {cat.value for cat in Category}:
            raise ValidationFailed(f"category is one of {', '.join(cat.value for cat in Category)}",
                                   field="category")
        found = await c.bills.find(city=city.strip() or None, category=Category(category) if category else None,
                                   q=q.strip() or None, limit=200)
    except MobipayError as exc:
        error, status = message(exc, lang(request)), exc.status
    return _render(request, "console/billers.html", me, {
        "billers": found, "q": q, "city": city, "category": category, "categories": [cat.value for cat in Category],
        "error": error}, status=status)


# ---------------------------------------------------------------------------- merchants


async def _merchants_page(request: Request, me: Operator, merchant_id: str = "", *, error: str = "",
                          notice: str = "", status: int = 200) -> Response:
    c = container(request)
    found = None
    if merchant_id.strip():
        try:
            found = await c.merchants.merchant(merchant_id.strip())
        except MobipayError as exc:
            error, status = error or message(exc, lang(request)), status if error else exc.status
    return _render(request, "console/merchants.html", me, {
        "queue": await c.merchants.review_queue(), "found": found, "id": merchant_id,
        "categories": sorted(c.merchants.categories.values(), key=lambda cat: cat.mcc),
        "states": [s.value for s in MerchantState], "error": error, "notice": notice}, status=status)


@router.get("/merchants", response_class=HTMLResponse)
async def merchants(request: Request, id: str = "") -> Response:
    me = await guard(request, *MERCHANTS)
    if isinstance(me, Response):
        return me
    return await _merchants_page(request, me, id)


@router.post("/merchants/{merchant_id}/review", response_class=HTMLResponse)
async def review_merchant(request: Request, merchant_id: str, csrf: str = Form(""), state: str = Form(""),
                          reason: str = Form("")) -> Response:
    me = await guard(request, "merchant_review", "risk")
    if isinstance(me, Response):
        return me
    service = container(request).merchants

    async def work(why: str) -> None:
        if state not in {s.value for s in MerchantState}:
            raise ValidationFailed(f"state is one of {', '.join(s.value for s in MerchantState)}", field="state")
        await service.review(merchant_id, MerchantState(state), actor=me.name, reason=why)

    error, status = await _act(request, csrf, reason, work)
    notice = "" if error else f"{merchant_id}: {state}"
    return await _merchants_page(request, me, merchant_id, error=error, notice=notice, status=status)


# ---------------------------------------------------------------------------- reconciliation


async def _recon_page(request: Request, me: Operator, *, show_all: bool = False, error: str = "", notice: str = "",
                      status: int = 200) -> Response:
    items = await container(request).orders.recon_exceptions(open_only=not show_all)
    return _render(request, "console/recon.html", me, {"items": items, "show_all": show_all, "error": error,
                                                       "notice": notice}, status=status)


@router.get("/recon", response_class=HTMLResponse)
async def recon(request: Request, all: bool = False) -> Response:
    me = await guard(request, *RECON)
    if isinstance(me, Response):
        return me
    return await _recon_page(request, me, show_all=all)


@router.post("/recon/{order_id}/resolve", response_class=HTMLResponse)
async def recon_resolve(request: Request, order_id: str, csrf: str = Form(""), action: str = Form(""),
                        reason: str = Form("")) -> Response:
    me = await guard(request, "finance")
    if isinstance(me, Response):
        return me
    orders = container(request).orders

    async def work(why: str) -> None:
        if action == "repush":
            await orders.repush(order_id, actor=me.name, reason=why)
        elif action == "refund":
            await orders.refund(order_id, actor=me.name, reason=why)
        else:
            raise ValidationFailed("action is repush or refund", field="action")

    error, status = await _act(request, csrf, reason, work)
    return await _recon_page(request, me, error=error, notice="" if error else f"{order_id}: {action}",
                             status=status)


# ---------------------------------------------------------------------------- complaints


async def _complaints_page(request: Request, me: Operator, *, error: str = "", notice: str = "",
                           status: int = 200) -> Response:
    c = container(request)
    queue = await c.complaints.queue()  # oldest deadline first: the overdue ones lead
    return _render(request, "console/complaints.html", me, {
        "items": queue, "now": c.clock.now(), "states": [s.value for s in ComplaintState if s.value != "open"],
        "error": error, "notice": notice}, status=status)


@router.get("/complaints", response_class=HTMLResponse)
async def complaints(request: Request) -> Response:
    me = await guard(request, *COMPLAINTS)
    if isinstance(me, Response):
        return me
    return await _complaints_page(request, me)


@router.post("/complaints/{complaint_id}/move", response_class=HTMLResponse)
async def move_complaint(request: Request, complaint_id: str, csrf: str = Form(""), state: str = Form(""),
                         reason: str = Form("")) -> Response:
    me = await guard(request, *COMPLAINTS)
    if isinstance(me, Response):
        return me
    service = container(request).complaints

    async def work(why: str) -> None:
        if state == "escalate":
            await service.escalate(complaint_id, actor=me.name, reason=why)
            return
        if state not in {s.value for s in ComplaintState}:
            raise ValidationFailed("state is in_progress, resolved, rejected or escalate", field="state")
        await service.move(complaint_id, ComplaintState(state), actor=me.name, note=why)

    error, status = await _act(request, csrf, reason, work)
    return await _complaints_page(request, me, error=error, notice="" if error else f"{complaint_id}: {state}",
                                  status=status)


# ---------------------------------------------------------------------------- operators


@router.get("/operators", response_class=HTMLResponse)
async def operators(request: Request) -> Response:
    me = await guard(request, "admin")
    if isinstance(me, Response):
        return me
    return _render(request, "console/operators.html", me, {"operators": await container(request).operators.list()})
