"""The console's handset protection pages (手机保障服务): the claims queue with each claim's
deadline (overdue first), one claim with its history and the step it is due for (ask for
information, approve or reject, the second review of a flagged claim, allocate a phone at a
business hall, ready for pick-up or delivery, hand over), the business hall's counter
(enrol a phone the hall sold, put replacement phones into stock, bar an IMEI), and the
report by city (enrolments, claims, approval rate, hours to replacement) as a table, an
ECharts chart and a CSV download. A claim's photos are served only here
(``/console/protection/photos/{id}``), to a console session with a role that works claims:
they are personal data, never a public URL.

Roles: ``support`` works claims and the counter; ``risk`` is the checker of flagged claims
and keeps the blocklist. Thin as every console page: CSRF checked, then the protection
service does the work (the maker-checker rule and the roles are its own); a refusal
re-renders the page with its words and code and the error's HTTP status, nothing changed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from mobipay.backoffice.operators import Operator
from mobipay.channels.web.common import check_csrf, container, form_key, harden, lang, message, page
from mobipay.channels.web.console.auth import ROLE_NAMES, guard
from mobipay.channels.web.forms import parse_yuan
from mobipay.kernel.errors import MobipayError, ValidationFailed
from mobipay.protection.model import CITY_NAMES, OPEN, ClaimState
from mobipay.protection.service import DEFAULT_PROGRAMME, report_csv

router = APIRouter(prefix="/console/protection")
ROLES = ("support", "risk")
NEXT: dict[ClaimState, tuple[str, ...]] = {
    ClaimState.SUBMITTED: ("ask", "approve", "reject"), ClaimState.MORE_INFO: ("reject",),
    ClaimState.SECOND_REVIEW: ("approve", "reject"), ClaimState.FEE_PAID: ("allocate",),
    ClaimState.ALLOCATED: ("ready",), ClaimState.READY_FOR_PICKUP: ("hand_over",),
    ClaimState.OUT_FOR_DELIVERY: ("hand_over",)}


def _render(request: Request, name: str, me: Operator, ctx: dict[str, Any], *, status: int = 200) -> Response:
    return page(request, f"console/{name}", {"me": me, "role_names": ROLE_NAMES, "error": "", "notice": "",
                                             "cities": CITY_NAMES, **ctx}, status=status)


def _day(raw: str, field: str) -> date | None:
    if not raw.strip():
        return None
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise ValidationFailed(f"{field} is a date like 2026-11-24", field=field) from None


@router.get("", response_class=HTMLResponse)
async def queue(request: Request, state: str = "", city: str = "") -> Response:
    me = await guard(request, *ROLES)
    if isinstance(me, Response):
        return me
    svc = container(request).protection
    wanted = [state] if state in {s.value for s in ClaimState} else None
    return _render(request, "protection.html", me, {
        "claims": await svc.queue(wanted, city=city[:32] or None), "state": state, "city": city,
        "states": [s.value for s in ClaimState], "open": [s.value for s in OPEN], "now": svc.uow.clock.now()})


async def _claim_page(request: Request, me: Operator, claim_id: str, *, error: str = "", notice: str = "",
                      status: int = 200) -> Response:
    svc = container(request).protection
    claim, events = await svc.claim_for_staff(claim_id)
    halls = [h for h in svc.halls.values() if h.city == claim.city] or list(svc.halls.values())
    return _render(request, "protection_claim.html", me, {
        "c": claim, "events": events, "photos": await svc.photos(claim.photos), "next": NEXT.get(claim.state, ()),
        "halls": halls,
        "now": svc.uow.clock.now(), "error": error, "notice": notice}, status=status)


@router.get("/claims/{claim_id}", response_class=HTMLResponse)
async def claim(request: Request, claim_id: str) -> Response:
    me = await guard(request, *ROLES)
    if isinstance(me, Response):
        return me
    try:
        return await _claim_page(request, me, claim_id[:64])
    except MobipayError as exc:
        return _render(request, "protection.html", me, {"claims": [], "state": "", "city": "", "states": [],
                                                        "open": [], "now": None,
                                                        "error": message(exc, lang(request))}, status=exc.status)


@router.post("/claims/{claim_id}/{step}", response_class=HTMLResponse)
async def act(request: Request, claim_id: str, step: str, csrf: str = Form(""), text: str = Form(""),
              hall: str = Form(""), delivery: str = Form(""), old_phone_returned: str = Form("")) -> Response:
    """One step of a claim; the service checks the state (under the claim's row lock), the
    role and, for a flagged claim, that the checker is not the first reviewer."""
    me = await guard(request, *ROLES)
    if isinstance(me, Response):
        return me
    svc = container(request).protection
    claim_id = claim_id[:64]
    steps: dict[str, Callable[[], Awaitable[Any]]] = {
        "ask": lambda: svc.ask_info(me, claim_id, question=text),
        "approve": lambda: svc.approve(me, claim_id, note=text.strip()[:500]),
        "reject": lambda: svc.reject(me, claim_id, reason=text),
        "allocate": lambda: svc.allocate(me, claim_id, hall=hall or None),
        "ready": lambda: svc.ready(me, claim_id, delivery=delivery == "1"),
        "hand_over": lambda: svc.hand_over(me, claim_id, old_phone_returned=old_phone_returned == "1"),
    }
    try:
        check_csrf(request, csrf)
        if step not in steps:
            raise ValidationFailed(f"no step {step!r}", field="step")
        done = await steps[step]()
    except MobipayError as exc:
        return await _claim_page(request, me, claim_id, error=message(exc, lang(request)), status=exc.status)
    return await _claim_page(request, me, claim_id, notice=done.state.value)


# ---------------------------------------------------------------------------- the counter

async def _counter(request: Request, me: Operator, *, error: str = "", notice: str = "", status: int = 200,
                   form: dict[str, str] | None = None) -> Response:
    svc = container(request).protection
    return _render(request, "protection_counter.html", me, {
        "halls": list(svc.halls.values()), "stock": sorted((await svc.stock_levels()).items()),
        "programme": svc.programme(DEFAULT_PROGRAMME), "key": form_key(), "form": form or {}, "error": error,
        "notice": notice}, status=status)


@router.get("/counter", response_class=HTMLResponse)
async def counter(request: Request) -> Response:
    me = await guard(request, *ROLES)
    if isinstance(me, Response):
        return me
    return await _counter(request, me)


@router.post("/counter/enrol", response_class=HTMLResponse)
async def counter_enrol(request: Request, csrf: str = Form(""), key: str = Form(""), hall: str = Form(""),
                        msisdn: str = Form(""), imei: str = Form(""), price: str = Form(""),
                        purchased_on: str = Form(""), receipt: str = Form(""),
                        payment: str = Form("phone_bill")) -> Response:
    """A phone the hall sold, enrolled for the customer at the counter (their consent in
    person stands in for the PIN); the form's key enrols it once on a double submit."""
    me = await guard(request, *ROLES)
    if isinstance(me, Response):
        return me
    form = {"hall": hall[:16], "msisdn": msisdn[:20], "imei": imei[:24], "price": price[:12],
            "purchased_on": purchased_on[:10], "receipt": receipt[:64], "payment": payment[:16]}
    try:
        check_csrf(request, csrf)
        e = await container(request).protection.enrol_at_hall(
            me, hall, msisdn, imei=imei, price=parse_yuan(price, field="price"), purchased_on=purchased_on,
            receipt=receipt, idempotency_key=key, payment=payment)
    except MobipayError as exc:
        return await _counter(request, me, error=message(exc, lang(request)), status=exc.status, form=form)
    return await _counter(request, me, notice=f"{e.id} {e.brand} {e.model} {e.imei} · {e.covered_from}")


@router.post("/counter/stock", response_class=HTMLResponse)
async def counter_stock(request: Request, csrf: str = Form(""), hall: str = Form(""),
                        imeis: str = Form("")) -> Response:
    me = await guard(request, *ROLES)
    if isinstance(me, Response):
        return me
    svc = container(request).protection
    added = []
    try:
        check_csrf(request, csrf)
        for number in [n for n in imeis.replace(",", " ").split() if n][:100]:
            added.append((await svc.add_stock(me, hall, number)).imei)
    except MobipayError as exc:
        done = f" ({len(added)} added before it)" if added else ""
        return await _counter(request, me, error=message(exc, lang(request)) + done, status=exc.status)
    return await _counter(request, me, notice=f"+{len(added)}")


@router.post("/counter/block", response_class=HTMLResponse)
async def counter_block(request: Request, csrf: str = Form(""), imei: str = Form(""),
                        reason: str = Form("")) -> Response:
    me = await guard(request, *ROLES)
    if isinstance(me, Response):
        return me
    try:
        check_csrf(request, csrf)
        await container(request).protection.block(me, imei, reason=reason)
    except MobipayError as exc:
        return await _counter(request, me, error=message(exc, lang(request)), status=exc.status)
    return await _counter(request, me, notice=f"{imei.strip()[:24]} ⛔")


@router.get("/photos/{photo_id}")
async def photo(request: Request, photo_id: str) -> Response:
    """A claim's photo, for staff who work claims (a session with support or risk)."""
    me = await guard(request, *ROLES)
    if isinstance(me, Response):
        return me
    try:
        found, data = await container(request).protection.photo_file(photo_id[:64])
    except MobipayError as exc:
        return harden(Response(message(exc, lang(request)), status_code=404,
                               media_type="text/plain; charset=utf-8"), request)
    response = harden(Response(data, media_type=found.content_type), request)
    response.headers["Cache-Control"] = "private, no-store"
    return response


# ---------------------------------------------------------------------------- the report

@router.get("/report", response_class=HTMLResponse)
async def report(request: Request, since: str = "", until: str = "") -> Response:
    me = await guard(request, *ROLES)
    if isinstance(me, Response):
        return me
    svc = container(request).protection
    error, rows = "", []
    try:
        rows = await svc.report(_day(since, "since"), _day(until, "until"))
    except MobipayError as exc:
        error = message(exc, lang(request))
    en = lang(request) == "en"
    data = {"cities": [r.city.capitalize() if en else CITY_NAMES.get(r.city, r.city) for r in rows],
            "enrolments": [r.enrolments for r in rows], "claims": [r.claims for r in rows],
            "approval": [round(100 * r.approval_rate, 1) if r.approval_rate is not None else None for r in rows],
            "hours": [r.avg_hours_to_replacement for r in rows]}
    return _render(request, "protection_report.html", me, {"rows": rows, "data": data, "since": since[:10],
                                                           "until": until[:10], "error": error},
                   status=400 if error else 200)


@router.get("/report.csv")
async def report_download(request: Request, since: str = "", until: str = "") -> Response:
    me = await guard(request, *ROLES)
    if isinstance(me, Response):
        return me
    try:
        rows = await container(request).protection.report(_day(since, "since"), _day(until, "until"))
    except MobipayError as exc:
        return _render(request, "protection_report.html", me, {"rows": [], "data": {}, "since": "", "until": "",
                                                               "error": message(exc, lang(request))},
                       status=exc.status)
    response = Response(report_csv(rows), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="protection-report.csv"'})
    return harden(response, request)
