"""The merchant portal's employer page (``/merchant/enterprise``) for a company that is an
enterprise one-card employer: its employees with their allowance balances, the month's
funding runs, spending by day (allowance and wallet, drawn with the vendored ECharts) and by
employee, and the attendance report; each table as a CSV download. The owner account also
enrols employees from a CSV file (each refused row shown with its reason) and starts a
funding run; both forms carry the CSRF token and their own request id (rendered with the
form, the idempotency key), so a double submit imports or funds once. The owner also replaces
the spending rules (meal windows, weekdays, caps, month end), names and removes the merchants
where the allowance is accepted, and registers and disables readers (a key made here is shown
on the answer page once); each of these is idempotent by what it names.

The same use cases as the CLI (:class:`mobipay.enterprise.service.Enterprise`), scoped to the
signed-in operator's merchant: a merchant that is no employer sees a sentence saying so.
"""

from __future__ import annotations

import csv
import io
import secrets
from typing import Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from mobipay.channels.web.common import check_csrf, container, harden
from mobipay.channels.web.forms import parse_yuan
from mobipay.channels.web.merchant_portal import _op, _signin, _view, _words
from mobipay.enterprise.model import rules_from
from mobipay.enterprise.service import ImportResult, Report
from mobipay.kernel.errors import MobipayError, ValidationFailed
from mobipay.merchants.operators import MerchantOperator

router = APIRouter(prefix="/merchant", include_in_schema=False)
REPORTS = ("employees", "spending", "attendance")
WINDOW_ROWS = 4  # meal windows the rules form offers (the rules themselves take any number)


async def _report(request: Request, merchant_id: str, month: str) -> Report:
    ent = container(request).enterprise
    return await ent.report(merchant_id, month[:7] or ent.this_month())


def _chart(r: Report) -> dict[str, list[object]]:
    return {"days": [d.day for d in r.by_day], "allowance": [d.allowance / 100 for d in r.by_day],
            "wallet": [d.wallet / 100 for d in r.by_day]}


async def _page(request: Request, op: MerchantOperator, month: str = "", *, error: str = "", done: str = "",
                imported: ImportResult | None = None, made_key: str = "", status: int = 200) -> Response:
    ctx: dict[str, Any] = {"report": None, "month": month[:7], "error": error, "done": done, "imported": imported,
                           "request_id": "ent" + secrets.token_hex(12), "made_key": made_key,
                           "window_rows": WINDOW_ROWS}
    if not await container(request).enterprise.is_employer(op.merchant_id):
        return _view(request, op, "enterprise.html", ctx, status=status)
    try:
        r = await _report(request, op.merchant_id, month)
    except MobipayError as exc:
        return _view(request, op, "enterprise.html", ctx | {"error": _words(request, exc)}, status=exc.status)
    readers = await container(request).enterprise.readers(op.merchant_id)
    return _view(request, op, "enterprise.html", ctx | {"report": r, "month": r.month, "chart": _chart(r),
                                                         "readers": readers}, status=status)


def _optional_yuan(text: str, field: str) -> int:
    """A cap typed in yuan; empty is 0 (no cap)."""
    return parse_yuan(text, field=field) if text.strip() else 0


def _rules_form(form: Any) -> dict[str, Any]:
    """The rules form as the rules' JSON (checked whole by rules_from): a window row with
    nothing typed is left out; a row half filled is refused there."""
    windows = []
    for n in range(WINDOW_ROWS):
        name, start, end = (str(form.get(f"window_{part}_{n}", "")).strip() for part in ("name", "start", "end"))
        if name or start or end:
            windows.append({"name": name, "start": start, "end": end})
    days = [str(d) for d in form.getlist("weekdays")]
    if any(d not in {"1", "2", "3", "4", "5", "6", "7"} for d in days):
        raise ValidationFailed("weekdays are 1 (Monday) to 7 (Sunday)", field="weekdays")
    return {"windows": windows, "weekdays": [int(d) for d in days],
            "per_meal": _optional_yuan(str(form.get("per_meal", "")), "per_meal"),
            "per_day": _optional_yuan(str(form.get("per_day", "")), "per_day"),
            "month_end": str(form.get("month_end", "expire")),
            "rollover_cap": _optional_yuan(str(form.get("rollover_cap", "")), "rollover_cap"),
            "work_start": str(form.get("work_start", "")).strip() or "09:00"}


@router.post("/enterprise/rules", response_class=HTMLResponse)
async def set_rules(request: Request) -> Response:
    """Replace the spending rules (the owner); a wrong rule is said and the rules stay as they were."""
    op = await _op(request)
    if op is None:
        return _signin(request)
    c = container(request)
    form = await request.form()
    try:
        check_csrf(request, str(form.get("csrf", "")))
        c.merchant_operators.require_owner(op)
        rules = rules_from(_rules_form(form))
        if rules != (await c.enterprise.employer(op.merchant_id)).rules:  # a double submit changes nothing more
            await c.enterprise.set_rules(op.merchant_id, rules, actor=f"{op.merchant_id}/{op.name}")
    except MobipayError as exc:
        return await _page(request, op, error=_words(request, exc), status=exc.status)
    return await _page(request, op, done="spending rules saved")


@router.post("/enterprise/merchants", response_class=HTMLResponse)
async def name_merchant(request: Request, csrf: str = Form(""), merchant_id: str = Form(""),
                        label: str = Form("canteen"), remove: str = Form("")) -> Response:
    """Name a merchant where the allowance is accepted, or (``remove``) no longer accept it there."""
    op = await _op(request)
    if op is None:
        return _signin(request)
    c = container(request)
    merchant_id = merchant_id.strip()[:40]
    try:
        check_csrf(request, csrf)
        c.merchant_operators.require_owner(op)
        if not merchant_id:
            raise ValidationFailed("type the merchant's id (mch_…)", field="merchant_id")
        actor = f"{op.merchant_id}/{op.name}"
        if remove:
            await c.enterprise.remove_merchant(op.merchant_id, merchant_id, actor=actor)
        elif merchant_id not in {m for m, _, _ in await c.enterprise.closed_loop_merchants(op.merchant_id)}:
            await c.enterprise.name_merchant(op.merchant_id, merchant_id, label=label[:32], actor=actor)
    except MobipayError as exc:
        return await _page(request, op, error=_words(request, exc), status=exc.status)
    return await _page(request, op, done=f"{merchant_id} {'removed' if remove else 'accepts the allowance'}")


@router.post("/enterprise/readers", response_class=HTMLResponse)
async def register_reader(request: Request, csrf: str = Form(""), label: str = Form(""),
                          kind: str = Form("attendance"), public_key: str = Form(""),
                          disable: str = Form("")) -> Response:
    """Register a reader (its own public key, or a key pair made here whose private half this
    answer shows once), or disable one (``disable``: its id)."""
    op = await _op(request)
    if op is None:
        return _signin(request)
    c = container(request)
    actor = f"{op.merchant_id}/{op.name}"
    try:
        check_csrf(request, csrf)
        c.merchant_operators.require_owner(op)
        if disable:
            gone = await c.enterprise.disable_reader(op.merchant_id, disable.strip()[:40], actor=actor)
            return await _page(request, op, done=f"{gone.label} ({gone.id}) disabled")
        reader, seed = await c.enterprise.register_reader(op.merchant_id, label[:64], kind=kind[:12],
                                                          public_key=public_key.strip()[:256] or None, actor=actor)
    except MobipayError as exc:
        return await _page(request, op, error=_words(request, exc), status=exc.status)
    return await _page(request, op, done=f"{reader.label} ({reader.id}, {reader.kind})", made_key=seed or "")


@router.get("/enterprise", response_class=HTMLResponse)
async def enterprise(request: Request, month: str = "") -> Response:
    op = await _op(request)
    if op is None:
        return _signin(request)
    return await _page(request, op, month)


@router.post("/enterprise/import", response_class=HTMLResponse)
async def import_employees(request: Request, csrf: str = Form(""), request_id: str = Form(""),
                           file: UploadFile = File(...)) -> Response:  # noqa: B008 - FastAPI's way
    op = await _op(request)
    if op is None:
        return _signin(request)
    c = container(request)
    try:
        check_csrf(request, csrf)
        c.merchant_operators.require_owner(op)
        raw = await file.read(2_000_001)
        if len(raw) > 2_000_000:
            raise ValidationFailed("the file is larger than 2 MB: send at most 5,000 employees a file", field="file")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValidationFailed("save the file as CSV UTF-8", field="file") from None
        result = await c.enterprise.import_csv(op.merchant_id, text, idempotency_key=request_id[:64],
                                               actor=f"{op.merchant_id}/{op.name}")
    except MobipayError as exc:
        return await _page(request, op, error=_words(request, exc), status=exc.status)
    return await _page(request, op, imported=result)


@router.post("/enterprise/funding", response_class=HTMLResponse)
async def fund(request: Request, csrf: str = Form(""), request_id: str = Form(""), month: str = Form(""),
               amount: str = Form(""), purpose: str = Form("meal")) -> Response:
    op = await _op(request)
    if op is None:
        return _signin(request)
    c = container(request)
    try:
        check_csrf(request, csrf)
        c.merchant_operators.require_owner(op)
        run = await c.enterprise.fund(op.merchant_id, month[:7], parse_yuan(amount), idempotency_key=request_id[:64],
                                      actor=f"{op.merchant_id}/{op.name}", purpose=purpose[:32])
    except MobipayError as exc:
        return await _page(request, op, month, error=_words(request, exc), status=exc.status)
    return await _page(request, op, run.month, done=f"{run.purpose} {run.month}: {run.employees} × "
                       f"¥{run.total / run.employees / 100:.2f}")


@router.get("/enterprise/{name}.csv")
async def enterprise_csv(name: str, request: Request, month: str = "") -> Response:
    op = await _op(request)
    if op is None:
        return _signin(request)
    if name not in REPORTS or not await container(request).enterprise.is_employer(op.merchant_id):
        return _view(request, op, "notfound.html", {}, status=404)
    try:
        r = await _report(request, op.merchant_id, month)
    except MobipayError as exc:
        return _view(request, op, "notfound.html", {"error": _words(request, exc)}, status=exc.status)
    out = io.StringIO()
    w = csv.writer(out)
    if name == "employees":
        w.writerow(["employee_id", "msisdn", "name", "employee_no", "allowance_fen", "enrolled_at"])
        for e in r.employees:
            w.writerow([e.id, e.msisdn, e.name, e.employee_no, e.balance, e.created_at.isoformat()])
    elif name == "spending":
        w.writerow(["employee_id", "msisdn", "name", "funded_fen", "allowance_spent_fen", "wallet_spent_fen",
                    "payments", "balance_fen"])
        for s in r.by_employee:
            w.writerow([s.employee_id, s.msisdn, s.name, s.funded, s.allowance, s.wallet, s.payments, s.balance])
    else:
        w.writerow(["employee_id", "msisdn", "name", "days", "late_days", "hours"])
        for a in r.attendance:
            w.writerow([a.employee_id, a.msisdn, a.name, a.days, a.late, f"{a.minutes / 60:.2f}"])
    response = Response("\ufeff" + out.getvalue(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="enterprise-{name}-{op.merchant_id}-{r.month}.csv"'})
    return harden(response, request)
