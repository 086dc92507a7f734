"""The console's SP governance pages (移动梦网 SP 管理): the SPs with their state, points and
cards; one SP's record (its services, decisions with the checker's button on a proposed red
card or exit, the measures in force, the latest complaints) and its trend chart (complaints,
subscribers and the rate per 10,000 per month, ECharts); the forms to record a violation,
propose an exit, lift a measure; the exit report as a PDF download.

Role: ``sp_governance``. Thin as every console page: CSRF checked, then the governance
service does the work (the role, maker-checker and the ladder are its own); a refusal
re-renders the page with its words and code and the error's HTTP status, nothing changed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mobipay.backoffice.operators import Operator
from mobipay.channels.web.common import check_csrf, container, harden, lang, message, page
from mobipay.channels.web.console.auth import ROLE_NAMES, guard
from mobipay.kernel.errors import MobipayError, ValidationFailed
from mobipay.sp.model import CLASSES, LEVELS, Measure

router = APIRouter(prefix="/console/sp")
ROLE = "sp_governance"
LIFTABLE = (Measure.SUSPEND_SETTLEMENT, Measure.SHIELD_PORT, Measure.FORCE_CONFIRMATION, Measure.SERVICE_OFFLINE,
            Measure.YELLOW_CARD, Measure.RED_CARD)


def _render(request: Request, name: str, me: Operator, ctx: dict[str, Any], *, status: int = 200) -> Response:
    return page(request, f"console/{name}", {"me": me, "role_names": ROLE_NAMES, "error": "", "notice": "", **ctx},
                status=status)


@router.get("", response_class=HTMLResponse)
async def sps(request: Request) -> Response:
    me = await guard(request, ROLE)
    if isinstance(me, Response):
        return me
    c = container(request)
    now = c.clock.now()
    rows = []
    for sp in await c.sp.all_sps():
        record, _ = await c.sp_governance.record(sp.code)
        rows.append({"sp": sp, "points": record.points(now), "yellow": record.yellow_level(now),
                     "red": record.red(now)})
    return _render(request, "sp.html", me, {"rows": rows})


async def _record_page(request: Request, me: Operator, code: str, *, error: str = "", notice: str = "",
                       status: int = 200) -> Response:
    c = container(request)
    sp = await c.sp.sp(code)
    record, decisions = await c.sp_governance.record(code)
    now = c.clock.now()
    trend = await c.sp.trend(code)
    data = {"periods": [t["period"] for t in trend], "complaints": [t["complaints"] for t in trend],
            "subscribers": [t["subscribers"] for t in trend], "rate": [t["rate"] for t in trend]}
    return _render(request, "sp_record.html", me, {
        "sp": sp, "services": await c.sp.services(code), "decisions": list(reversed(decisions)),
        "in_force": record.in_force(now), "points": record.points(now), "yellow": record.yellow_level(now),
        "red": record.red(now), "complaints": await c.sp.complaints(code, 20), "trend": trend, "data": data,
        "classes": CLASSES, "levels": LEVELS, "liftable": [m.value for m in LIFTABLE], "error": error,
        "notice": notice}, status=status)


@router.get("/{code}", response_class=HTMLResponse)
async def record(request: Request, code: str) -> Response:
    me = await guard(request, ROLE)
    if isinstance(me, Response):
        return me
    try:
        return await _record_page(request, me, code)
    except MobipayError as exc:
        return _render(request, "sp.html", me, {"rows": [], "error": message(exc, lang(request))},
                       status=exc.status)


async def _act(request: Request, code: str, csrf: str, what: str, work: Any) -> Response:
    me = await guard(request, ROLE)
    if isinstance(me, Response):
        return me
    check_csrf(request, csrf)
    try:
        await work(me)
    except MobipayError as exc:
        return await _record_page(request, me, code, error=message(exc, lang(request)), status=exc.status)
    return RedirectResponse(f"/console/sp/{code}?done={what}", status_code=303)


@router.post("/{code}/violation")
async def violation(request: Request, code: str, csrf: str = Form(""), cls: str = Form(""),
                    level: str = Form(""), reason: str = Form(""), evidence: str = Form("")) -> Response:
    gov = container(request).sp_governance
    return await _act(request, code, csrf, "violation", lambda me: gov.record_violation(
        code, cls, level, reason=reason, evidence=evidence, actor=me.name))


@router.post("/{code}/exit")
async def propose_exit(request: Request, code: str, csrf: str = Form(""), reason: str = Form(""),
                       evidence: str = Form("")) -> Response:
    gov = container(request).sp_governance
    return await _act(request, code, csrf, "exit", lambda me: gov.propose_exit(code, reason=reason,
                                                                              evidence=evidence, actor=me.name))


@router.post("/{code}/decisions/{decision_id}/check")
async def check(request: Request, code: str, decision_id: str, csrf: str = Form(""), verdict: str = Form(""),
                reason: str = Form("")) -> Response:
    gov = container(request).sp_governance

    async def work(me: Operator) -> None:
        if verdict not in ("approve", "reject"):
            raise ValidationFailed("approve or reject", field="verdict")
        await gov.check(decision_id, approve=verdict == "approve", actor=me.name, reason=reason)

    return await _act(request, code, csrf, "check", work)


@router.post("/{code}/lift")
async def lift(request: Request, code: str, csrf: str = Form(""), measure: str = Form(""),
               reason: str = Form("")) -> Response:
    gov = container(request).sp_governance

    async def work(me: Operator) -> None:
        if measure not in {m.value for m in LIFTABLE}:
            raise ValidationFailed("choose a measure that can be lifted", field="measure")
        await gov.lift(code, Measure(measure), actor=me.name, reason=reason)

    return await _act(request, code, csrf, "lift", work)


@router.get("/{code}/exit-report.pdf")
async def exit_report(request: Request, code: str) -> Response:
    me = await guard(request, ROLE)
    if isinstance(me, Response):
        return me
    try:
        pdf = await container(request).sp_governance.exit_report(code)
    except MobipayError as exc:
        return await _record_page(request, me, code, error=message(exc, lang(request)), status=exc.status)
    response = Response(pdf, media_type="application/pdf",
                        headers={"Content-Disposition": f'attachment; filename="sp-exit-{code}.pdf"'})
    return harden(response, request)
