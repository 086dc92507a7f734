"""The enterprise one-card over HTTP.

For the employee's app (bearer access token): the allowance and today's rules
(``GET /v1/enterprise/me``), what a payment would take from the allowance and the wallet
(``POST /v1/enterprise/previews``), and paying a closed-loop merchant's counter code
(``POST /v1/enterprise/payments``, ``Idempotency-Key`` required): the allowance first, the
wallet the rest, one receipt.

For a company's readers (doors, attendance): ``POST /v1/enterprise/reader/taps``, signed with
the reader's Ed25519 key (headers ``Reader-Id``, ``Timestamp``, ``Nonce``, ``Signature``; the
signed string is in docs/enterprise.md); an upload may be sent again, a tap counts once.

For the employer's own server (``employer_router``, ``/v1/merchant/enterprise/...``), signed by an
API app of its merchant account like every merchant call (docs/merchant-signatures.md) and
answered signed: employees (enrol one, a CSV file with each row's outcome, list, remove, suspend),
funding runs, the spending rules, the closed-loop merchants, readers and the monthly spending and
attendance reports (JSON or CSV). The same use cases as the CLI and the employer page.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from mobipay.enterprise import errors
from mobipay.enterprise.model import month_bounds, rules_from
from mobipay.enterprise.service import Employee, Employer, Enterprise, FundingRun, Reader, Receipt, TapIn
from mobipay.kernel.errors import ValidationFailed
from mobipay.kernel.money import parse_fen
from mobipay.merchants.service import MerchantService
from mobipay.platform.api_common import IdemKey, MoneyOut, from_container, require_key
from mobipay.wallet.api_deps import Me

router = APIRouter(prefix="/v1/enterprise", tags=["enterprise"])

EnterpriseDep = Annotated[Enterprise, from_container("enterprise")]
MerchantsDep = Annotated[MerchantService, from_container("merchants")]


def _money(fen: int) -> MoneyOut:
    return MoneyOut(amount=fen, currency="CNY")


class WindowOut(BaseModel):
    name: str
    start: str = Field(description="HH:MM Beijing time, included")
    end: str = Field(description="HH:MM Beijing time, excluded")


class MeOut(BaseModel):
    employee_id: str
    employer_id: str
    employer: str
    allowance: MoneyOut
    windows: list[WindowOut]
    per_meal: MoneyOut = Field(description="0: no cap")
    per_day: MoneyOut = Field(description="0: no cap")
    month_end: str = Field(description="rollover | expire")
    closed_loop: list[str] = Field(description="Names of the merchants that accept the allowance")


class PayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    payload: str = Field(max_length=512, description="The closed-loop merchant's counter QR code, as scanned")
    amount: StrictInt = Field(gt=0, description="Integer fen")
    pin: str | None = Field(default=None, max_length=12, description="When the wallet's share is above the "
                            "password-free amount")


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    merchant_id: str = Field(max_length=40)
    amount: StrictInt = Field(gt=0)


class SplitOut(BaseModel):
    amount: MoneyOut
    allowance: MoneyOut = Field(description="What the allowance pays")
    wallet: MoneyOut = Field(description="What the wallet pays")
    window: str = Field(description="The meal window, empty outside every window")
    reason: str = Field(description="Why the allowance pays less than the amount (empty when it pays all)")


class ReceiptOut(SplitOut):
    id: str
    trade_id: str = Field(description="The merchant's one trade for this payment")
    merchant: str
    merchant_id: str
    store_id: str | None
    created_at: datetime
    allowance_left: MoneyOut


def _receipt(r: Receipt) -> ReceiptOut:
    return ReceiptOut(id=r.id, trade_id=r.trade_id, merchant=r.merchant_name, merchant_id=r.merchant_id,
                      store_id=r.store_id, amount=_money(r.amount), allowance=_money(r.allowance),
                      wallet=_money(r.wallet), window=r.window, reason=r.reason, created_at=r.created_at,
                      allowance_left=_money(r.allowance_left))


@router.get("/me", response_model=MeOut, summary="My employer, allowance and its rules")
async def me_(me: Me, ent: EnterpriseDep) -> MeOut:
    employee, employer = await ent.me(me)
    rules = employer.rules
    return MeOut(employee_id=employee.id, employer_id=employer.id, employer=employer.name,
                 allowance=_money(employee.balance),
                 windows=[WindowOut(name=w.name, start=w.start.strftime("%H:%M"), end=w.end.strftime("%H:%M"))
                          for w in rules.windows],
                 per_meal=_money(rules.per_meal), per_day=_money(rules.per_day), month_end=rules.month_end.value,
                 closed_loop=[name for _, name, _ in await ent.closed_loop_merchants(employer.id)])


@router.post("/previews", response_model=SplitOut, summary="What the allowance and the wallet would pay now")
async def preview(body: PreviewIn, me: Me, ent: EnterpriseDep) -> SplitOut:
    s = await ent.preview(me, body.merchant_id, body.amount)
    return SplitOut(amount=_money(body.amount), allowance=_money(s.allowance), wallet=_money(s.wallet),
                    window=s.window, reason=s.reason)


@router.post("/payments", response_model=ReceiptOut, status_code=201,
             responses={200: {"description": "A retry: the first receipt (header Idempotent-Replayed: true)"}},
             summary="Pay a closed-loop merchant's counter code: allowance first, wallet the rest, one receipt")
async def pay(body: PayIn, response: Response, me: Me, ent: EnterpriseDep, idempotency_key: IdemKey = None
              ) -> ReceiptOut:
    """``ALLOWANCE_NOT_ACCEPTED`` (422) at a merchant the employer did not name: nothing moves."""
    r = await ent.pay_scanned(me, body.payload, body.amount, idempotency_key=require_key(idempotency_key),
                              pin=body.pin)
    if r.replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return _receipt(r)


# ---------------------------------------------------------------------- the company's readers


async def signed_reader(
    request: Request, ent: EnterpriseDep,
    reader_id: Annotated[str, Header(alias="Reader-Id", description="The reader's id (rdr_…)")] = "",
    timestamp: Annotated[str, Header(alias="Timestamp", description="Unix seconds, within ±300 s")] = "",
    nonce: Annotated[str, Header(alias="Nonce", description="8-64 printable characters, once")] = "",
    signature: Annotated[str, Header(alias="Signature", description="base64 Ed25519 (docs/enterprise.md)")] = "",
) -> Reader:
    """The verified reader behind this request (or its refusal, with nothing done)."""
    return await ent.verify_reader(reader_id=reader_id, timestamp=timestamp, nonce=nonce, signature=signature,
                                   body=await request.body())


SignedReader = Annotated[Reader, Depends(signed_reader)]


class TapModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token_id: str = Field(max_length=64, description="The phone's device token (the in-store NFC token)")
    at: datetime = Field(description="When it was tapped (with its offset)")


class TapsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    taps: list[TapModel]


class RejectedOut(BaseModel):
    index: int
    reason: str


class TapsOut(BaseModel):
    accepted: int = Field(description="New taps recorded")
    duplicates: int = Field(description="Taps recorded before (the same token, reader and time)")
    rejected: list[RejectedOut]


@router.post("/reader/taps", response_model=TapsOut, summary="A reader's taps (signed; may be sent again)")
async def upload(request: Request, reader: SignedReader, ent: EnterpriseDep) -> TapsOut:
    try:
        body = TapsIn.model_validate(json.loads(await request.body()))
    except (ValueError, ValidationError):
        raise errors.TapsInvalid('send {"taps": [{"token_id": …, "at": "2026-12-07T09:00:00+08:00"}]}',
                                 field="taps") from None
    if any(t.at.tzinfo is None for t in body.taps):
        raise errors.TapsInvalid("every tap's time has its offset (+08:00 or Z)", field="taps")
    done = await ent.upload_taps(reader, [TapIn(t.token_id, t.at) for t in body.taps])
    return TapsOut(accepted=done.accepted, duplicates=done.duplicates,
                   rejected=[RejectedOut(index=i, reason=why) for i, why in done.rejected])


class AccessIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token_id: str = Field(max_length=64)


class AccessOut(BaseModel):
    allowed: bool
    reason: str = Field(description="Why not (empty when allowed)")


@router.post("/reader/access", response_model=AccessOut, summary="A door asks: may this phone pass? (signed)")
async def access(request: Request, reader: SignedReader, ent: EnterpriseDep) -> AccessOut:
    """Allowed for an active token of an active employee of the reader's company; the tap is
    recorded as attendance."""
    try:
        body = AccessIn.model_validate(json.loads(await request.body()))
    except (ValueError, ValidationError):
        raise errors.TapsInvalid('send {"token_id": "nft_…"}', field="token_id") from None
    allowed, reason = await ent.access(reader, body.token_id)
    return AccessOut(allowed=allowed, reason=reason)


# ---------------------------------------------------------------------- the employer's server
#
# Signed like every other /v1/merchant/... call (docs/merchant-signatures.md: app_id, timestamp,
# nonce, sign_type, sign over the flat JSON parameters) by an API app of the employer's merchant
# account, and answered signed the same way. A list or a document is one parameter whose value is
# JSON or CSV text (signed as written, as the terminals' list is). Writes a client may retry take
# the Idempotency-Key header; the others are idempotent by what they name (leave, suspend, a rule
# set, a merchant, disable).


@dataclass(frozen=True, slots=True)
class EmployerCall:
    """A verified request of an employer's server: the employer, what it sent, the HMAC key to
    answer with (None: RSA2 with the platform key)."""

    employer: Employer
    params: dict[str, Any]
    reply_key: bytes | None

    @property
    def actor(self) -> str:
        return f"{self.employer.id}/app:{self.params.get('app_id', '')}"


async def signed(request: Request, merchants: MerchantsDep, ent: EnterpriseDep) -> EmployerCall:
    """The employer behind a signed merchant request (``UNAUTHORIZED`` when it is not signed so;
    ``EMPLOYER_NOT_FOUND`` for a merchant that is no employer)."""
    try:
        params = await request.json()
    except (ValueError, RecursionError):
        raise ValidationFailed("send the parameters as a JSON object") from None
    if not isinstance(params, dict):
        raise ValidationFailed("send the parameters as a JSON object")
    merchant, key = await merchants.authenticate(params)
    return EmployerCall(await ent.employer(merchant.id), params, key)


SignedEmployer = Annotated[EmployerCall, Depends(signed)]
employer_router = APIRouter(prefix="/v1/merchant/enterprise", tags=["enterprise (employers)"])
Answer = dict[str, int | str]


def _reply(merchants: MerchantService, call: EmployerCall, data: Answer, status: int = 200,
           replayed: bool = False) -> JSONResponse:
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return JSONResponse(merchants.sign_answer(data, call.reply_key), status_code=200 if replayed else status,
                        headers=headers)


def _text(params: dict[str, Any], name: str, default: str | None = None, *, limit: int = 64) -> str:
    """A text parameter (required when there is no default), at most ``limit`` characters."""
    value = params.get(name)
    if value in (None, ""):
        if default is None:
            raise ValidationFailed(f"send {name}", field=name)
        return default
    if not isinstance(value, str):
        raise ValidationFailed(f"{name} is text", field=name)
    if len(value) > limit:
        raise ValidationFailed(f"{name} is at most {limit} characters", field=name)
    return value


def _json_text(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _month(ent: Enterprise, params: dict[str, Any]) -> str:
    month = _text(params, "month", ent.this_month(), limit=7)
    month_bounds(month)  # MONTH_INVALID
    return month


def _employee_data(e: Employee) -> dict[str, int | str]:
    return {"employee_id": e.id, "msisdn": e.msisdn, "name": e.name, "employee_no": e.employee_no, "state": e.state,
            "allowance": e.balance, "enrolled_at": e.created_at.isoformat()}


def _run_data(r: FundingRun) -> dict[str, int | str]:
    return {"run_id": r.id, "month": r.month, "purpose": r.purpose, "employees": r.employees,
            "amount": r.total // max(1, r.employees), "total": r.total, "created_at": r.created_at.isoformat()}


def _reader_data(r: Reader) -> dict[str, int | str]:
    return {"reader_id": r.id, "label": r.label, "kind": r.kind, "state": r.state, "public_key": r.public_key,
            "created_at": r.created_at.isoformat()}


def _rules_data(employer: Employer) -> Answer:
    return {"employer_id": employer.id, "rules": _json_text(employer.rules.to_json())}


@employer_router.post("/employees",
             summary="Enrol one employee by phone number (signed; Idempotency-Key)")
async def enrol(call: SignedEmployer, ent: EnterpriseDep, merchants: MerchantsDep,
                idempotency_key: IdemKey = None) -> JSONResponse:
    """``phone`` (a mobipay wallet's number), optionally ``name`` and ``employee_no``. A refused
    number is ``EMPLOYEE_INVALID`` with the reason's code (``reason``: the CSV import's codes)."""
    p = call.params
    e, replayed = await ent.enrol_once(call.employer.id, _text(p, "phone", limit=32),
                                       idempotency_key=require_key(idempotency_key), name=_text(p, "name", ""),
                                       employee_no=_text(p, "employee_no", "", limit=32), actor=call.actor)
    return _reply(merchants, call, _employee_data(e), 201, replayed)


@employer_router.post("/employees/import",
             summary="Enrol the employees of a CSV file (signed; Idempotency-Key; per-row outcome)")
async def import_employees(call: SignedEmployer, ent: EnterpriseDep, merchants: MerchantsDep,
                           idempotency_key: IdemKey = None) -> JSONResponse:
    """``text``: the file (``phone,name,employee_no`` a line, header optional; the request is at
    most 32 KiB, so send a larger file in parts, each with its own key). ``rows`` (JSON text)
    answers every line: ``ok`` with the employee, or its ``code`` and ``detail``."""
    text = _text(call.params, "text", limit=32 * 1024)
    result = await ent.import_csv(call.employer.id, text, idempotency_key=require_key(idempotency_key),
                                  actor=call.actor)
    rows = [{"line": r.line, "phone": r.phone, "ok": r.ok, "code": r.code, "detail": r.detail,
             "employee_id": r.employee_id} for r in result.rows]
    return _reply(merchants, call, {"import_id": result.id, "enrolled": result.enrolled, "failed": result.failed,
                                    "rows": _json_text(rows)}, 201, result.replayed)


@employer_router.post("/employees/query",
             summary="Your employees with their allowance balances (signed; state=active|all)")
async def list_employees(call: SignedEmployer, ent: EnterpriseDep, merchants: MerchantsDep) -> JSONResponse:
    state = _text(call.params, "state", "active", limit=8)
    if state not in ("active", "all"):
        raise ValidationFailed("state is active or all", field="state")
    found = await ent.employees(call.employer.id, active_only=state == "active")
    return _reply(merchants, call, {"count": len(found), "employees": _json_text([_employee_data(e) for e in found])})


@employer_router.post("/employees/leave",
             summary="Remove an employee: the allowance left goes back to your funds (signed; again: the same)")
async def leave(call: SignedEmployer, ent: EnterpriseDep, merchants: MerchantsDep) -> JSONResponse:
    e = await ent.leave(call.employer.id, _text(call.params, "employee_id"), actor=call.actor)
    return _reply(merchants, call, _employee_data(e))


@employer_router.post("/employees/suspend",
             summary="Suspend an employee: the allowance neither pays nor is funded, doors refuse (signed)")
async def suspend(call: SignedEmployer, ent: EnterpriseDep, merchants: MerchantsDep) -> JSONResponse:
    e = await ent.suspend(call.employer.id, _text(call.params, "employee_id"), suspended=True, actor=call.actor)
    return _reply(merchants, call, _employee_data(e))


@employer_router.post("/employees/resume", summary="Resume a suspended employee (signed)")
async def resume(call: SignedEmployer, ent: EnterpriseDep, merchants: MerchantsDep) -> JSONResponse:
    e = await ent.suspend(call.employer.id, _text(call.params, "employee_id"), suspended=False, actor=call.actor)
    return _reply(merchants, call, _employee_data(e))


@employer_router.post("/funding-runs",
             summary="Fund the allowance of every active employee, or of employee_ids (signed; Idempotency-Key)")
async def fund(call: SignedEmployer, ent: EnterpriseDep, merchants: MerchantsDep,
               idempotency_key: IdemKey = None) -> JSONResponse:
    """``amount`` fen to each (integer, or ASCII digits), ``month`` (YYYY-MM, default this one),
    ``purpose`` (default meal), ``employee_ids`` (JSON text of a list; default every active
    employee). Posted whole or not at all; ``funds`` is what your account holds after."""
    p = call.params
    key = require_key(idempotency_key)
    raw = p.get("amount")
    amount = raw if isinstance(raw, int) and not isinstance(raw, bool) else parse_fen(_text(p, "amount", limit=16))
    ids: list[str] | None = None
    if p.get("employee_ids") not in (None, ""):
        try:
            loaded = json.loads(_text(p, "employee_ids", limit=16 * 1024))
        except ValueError:
            loaded = None
        if not (isinstance(loaded, list) and loaded and all(isinstance(i, str) for i in loaded)):
            raise errors.FundingInvalid('employee_ids is JSON text of a list of employee ids, e.g. ["emp_…"]',
                                        field="employee_ids")
        ids = loaded
    run = await ent.fund(call.employer.id, _month(ent, p), amount, idempotency_key=key, actor=call.actor,
                         employee_ids=ids, purpose=_text(p, "purpose", "meal", limit=32))
    funds = await ent.funds(call.employer.id)
    return _reply(merchants, call, {**_run_data(run), "funds": funds}, 201, run.replayed)


@employer_router.post("/funding-runs/query",
             summary="Your funding runs, newest first, of one month with month=YYYY-MM (signed)")
async def list_runs(call: SignedEmployer, ent: EnterpriseDep, merchants: MerchantsDep) -> JSONResponse:
    month = _month(ent, call.params) if call.params.get("month") else ""
    runs = [r for r in await ent.runs(call.employer.id, 200) if not month or r.month == month]
    return _reply(merchants, call, {"count": len(runs), "funds": await ent.funds(call.employer.id),
                                    "runs": _json_text([_run_data(r) for r in runs])})


@employer_router.post("/rules/query",
             summary="Your spending rules: meal windows, weekdays, per-meal and per-day caps (signed)")
async def get_rules(call: SignedEmployer, merchants: MerchantsDep) -> JSONResponse:
    return _reply(merchants, call, _rules_data(call.employer))


@employer_router.post("/rules",
             summary="Replace your spending rules (signed; rules is JSON text, checked whole; again: the same)")
async def set_rules(call: SignedEmployer, ent: EnterpriseDep, merchants: MerchantsDep) -> JSONResponse:
    """``rules`` as docs/enterprise.md writes them; anything wrong is ``ALLOWANCE_RULES_INVALID``
    naming it, and the rules stay as they were. They apply from the next payment."""
    rules = rules_from(_text(call.params, "rules", limit=8 * 1024))
    employer = call.employer
    if rules != employer.rules:  # the same rules again (a retry) change nothing and audit nothing
        employer = await ent.set_rules(employer.id, rules, actor=call.actor)
    return _reply(merchants, call, _rules_data(employer))


def _merchants_data(named: list[tuple[str, str, str]]) -> Answer:
    return {"count": len(named), "merchants": _json_text([{"merchant_id": m, "name": n, "label": label}
                                                          for m, n, label in named])}


@employer_router.post("/merchants/query",
             summary="The merchants where your allowance is accepted (signed)")
async def list_merchants(call: SignedEmployer, ent: EnterpriseDep, merchants: MerchantsDep) -> JSONResponse:
    return _reply(merchants, call, _merchants_data(await ent.closed_loop_merchants(call.employer.id)))


@employer_router.post("/merchants",
             summary="Name an approved merchant where your allowance is accepted (signed; again: the same)")
async def add_merchant(call: SignedEmployer, ent: EnterpriseDep, merchants: MerchantsDep) -> JSONResponse:
    p = call.params
    merchant_id = _text(p, "merchant_id", limit=40)
    named = await ent.closed_loop_merchants(call.employer.id)
    if merchant_id in {m for m, _, _ in named}:
        return _reply(merchants, call, _merchants_data(named))  # named already: nothing to do (a retry)
    await ent.name_merchant(call.employer.id, merchant_id, label=_text(p, "label", "canteen", limit=32),
                            actor=call.actor)
    return _reply(merchants, call, _merchants_data(await ent.closed_loop_merchants(call.employer.id)), 201)


@employer_router.post("/merchants/remove",
             summary="The allowance is no longer accepted at this merchant (signed)")
async def remove_merchant(call: SignedEmployer, ent: EnterpriseDep, merchants: MerchantsDep) -> JSONResponse:
    await ent.remove_merchant(call.employer.id, _text(call.params, "merchant_id", limit=40), actor=call.actor)
    return _reply(merchants, call, _merchants_data(await ent.closed_loop_merchants(call.employer.id)))


@employer_router.post("/readers/query", summary="Your door and attendance readers (signed)")
async def list_readers(call: SignedEmployer, ent: EnterpriseDep, merchants: MerchantsDep) -> JSONResponse:
    found = await ent.readers(call.employer.id)
    return _reply(merchants, call, {"count": len(found), "readers": _json_text([_reader_data(r) for r in found])})


@employer_router.post("/readers",
             summary="Register a door or attendance reader (signed; Idempotency-Key; a made key is shown once)")
async def register_reader(call: SignedEmployer, ent: EnterpriseDep, merchants: MerchantsDep,
                          idempotency_key: IdemKey = None) -> JSONResponse:
    """``label`` (1-64 characters), ``kind`` (door or attendance), optionally ``public_key``
    (Ed25519, base64 of 32 bytes) made on the reader; without one the platform makes the key
    and answers its ``private_key`` in the first answer only (a retry answers it empty)."""
    p = call.params
    require_key(idempotency_key)
    reader, seed, replayed = await _register(ent, call, p)
    return _reply(merchants, call, {**_reader_data(reader), "private_key": seed or ""}, 201, replayed)


async def _register(ent: Enterprise, call: EmployerCall, params: dict[str, Any]) -> tuple[Reader, str | None, bool]:
    """The service names a reader by its label within the employer, so a retry (the same label,
    kind and key) answers the first reader: replayed when that label was there already."""
    label = _text(params, "label")
    known = {r.label for r in await ent.readers(call.employer.id)}
    public_key = _text(params, "public_key", "", limit=256) or None
    kind = _text(params, "kind", "attendance", limit=12)
    reader, seed = await ent.register_reader(call.employer.id, label, kind=kind, public_key=public_key,
                                             actor=call.actor)
    return reader, seed, label.strip() in known


@employer_router.post("/readers/disable",
             summary="Disable a reader: its signed requests are refused from now on (signed; again: the same)")
async def disable_reader(call: SignedEmployer, ent: EnterpriseDep, merchants: MerchantsDep) -> JSONResponse:
    r = await ent.disable_reader(call.employer.id, _text(call.params, "reader_id", limit=40), actor=call.actor)
    return _reply(merchants, call, _reader_data(r))


# ---------------------------------------------------------------------- the employer's reports


def _format(params: dict[str, Any]) -> str:
    fmt = _text(params, "format", "json", limit=4)
    if fmt not in ("json", "csv"):
        raise errors.ReportInvalid("format is json or csv", field="format")
    return fmt


def _csv(merchants: MerchantService, call: EmployerCall, name: str, month: str, header: list[str],
         rows: list[list[object]]) -> Response:
    """A report as CSV (UTF-8 with a BOM, for spreadsheets), its SHA-256 signed as the app signs."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(header)
    w.writerows(rows)
    text = "\ufeff" + out.getvalue()
    digest = hashlib.sha256(text.encode()).hexdigest()
    signed_digest = merchants.sign_answer({"report": name, "month": month, "sha256": digest}, call.reply_key)
    return Response(text, media_type="text/csv; charset=utf-8", headers={
        "X-Sha256": digest, "X-Sign-Type": str(signed_digest["sign_type"]), "X-Sign": str(signed_digest["sign"]),
        "Content-Disposition": f'attachment; filename="enterprise-{name}-{call.employer.id}-{month}.csv"'})


@employer_router.post("/reports/spending", response_model=None,
                      summary="A month's spending by day and by employee: allowance and wallet (signed; json or csv)")
async def spending(call: SignedEmployer, ent: EnterpriseDep, merchants: MerchantsDep) -> Response:
    """``month`` (YYYY-MM, default this one), ``format`` json (``days`` and ``employees`` as JSON
    text) or csv (one line per employee; ``X-Sha256`` and its signature in ``X-Sign``)."""
    fmt = _format(call.params)
    r = await ent.report(call.employer.id, _month(ent, call.params))
    people = [[s.employee_id, s.msisdn, s.name, s.funded, s.allowance, s.wallet, s.payments, s.balance]
              for s in r.by_employee]
    header = ["employee_id", "msisdn", "name", "funded_fen", "allowance_spent_fen", "wallet_spent_fen", "payments",
              "balance_fen"]
    if fmt == "csv":
        return _csv(merchants, call, "spending", r.month, header, people)
    days = [{"day": d.day, "payments": d.payments, "allowance": d.allowance, "wallet": d.wallet} for d in r.by_day]
    return _reply(merchants, call, {
        "month": r.month, "funds": r.funds, "allowance_spent": sum(d.allowance for d in r.by_day),
        "wallet_spent": sum(d.wallet for d in r.by_day), "days": _json_text(days),
        "employees": _json_text([dict(zip(header, line, strict=True)) for line in people])})


@employer_router.post("/reports/attendance", response_model=None,
                      summary="A month's attendance per employee: days, late days, hours (signed; json or csv)")
async def attendance(call: SignedEmployer, ent: EnterpriseDep, merchants: MerchantsDep) -> Response:
    """``month``, ``format`` as the spending report; json adds each employee's days (first and
    last tap in Beijing time, taps, late)."""
    fmt = _format(call.params)
    month = _month(ent, call.params)
    lines = await ent.attendance(call.employer.id, month)
    if fmt == "csv":
        return _csv(merchants, call, "attendance", month, ["employee_id", "msisdn", "name", "days", "late_days",
                                                           "hours"],
                    [[a.employee_id, a.msisdn, a.name, a.days, a.late, f"{a.minutes / 60:.2f}"] for a in lines])
    out = [{"employee_id": a.employee_id, "msisdn": a.msisdn, "name": a.name, "days": a.days, "late_days": a.late,
            "minutes": a.minutes, "by_day": [{"day": d.day.isoformat(), "first": d.first.isoformat(),
                                               "last": d.last.isoformat(), "taps": d.taps, "late": d.late}
                                              for d in a.by_day]} for a in lines]
    return _reply(merchants, call, {"month": month, "count": len(out), "attendance": _json_text(out)})
