"""The console's tourism pages (旅游通 back office): the work orders of every county with
their deadlines and escalation, one work order with its steps, the route replay on a Leaflet
map over the county's shipped GeoJSON (no internet), its evidence (each file's hash verified
on demand, a changed file shown as NOT intact) and chain of custody, and a printable summary.

Evidence files are personal data: served only here, to a console session with the role, and
every view or export is written to the file's chain of custody. Roles: ``operations`` and
``support`` (``admin`` opens everything). Thin as every console page: CSRF checked, the
tourism service does the work; a refusal re-renders the page with its words and code."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from mobipay.backoffice.operators import Operator
from mobipay.channels.web.common import check_csrf, container, form_key, harden, lang, message, page
from mobipay.channels.web.console.auth import ROLE_NAMES, guard
from mobipay.channels.web.forms import parse_yuan
from mobipay.kernel.clock import SHANGHAI
from mobipay.kernel.errors import MobipayError, ValidationFailed
from mobipay.tourism.model import CAUSES, STEPS, OrderState, RefusalGround
from mobipay.tourism.service import Viewer, base_layer, counties

router = APIRouter(prefix="/console/tourism")
ROLES = ("operations", "support")


def _viewer(me: Operator) -> Viewer:
    return Viewer(f"console:{me.name}", None)


def _render(request: Request, name: str, me: Operator, ctx: dict[str, Any], *, status: int = 200) -> Response:
    return page(request, f"console/{name}", {"me": me, "role_names": ROLE_NAMES, "error": "", "notice": "",
                                             "counties": counties(), "causes": CAUSES, **ctx}, status=status)


@router.get("", response_class=HTMLResponse)
async def orders(request: Request, state: str = "") -> Response:
    me = await guard(request, *ROLES)
    if isinstance(me, Response):
        return me
    svc = container(request).tourism
    wanted = state if state in {s.value for s in OrderState} else ""
    return _render(request, "tourism.html", me, {
        "orders": await svc.work_orders(_viewer(me), wanted), "state": wanted,
        "states": [s.value for s in OrderState], "counts": await svc.counts(), "now": svc.uow.clock.now()})


async def _order_page(request: Request, me: Operator, order_id: str, *, template: str = "tourism_order.html",
                      error: str = "", notice: str = "", status: int = 200, checks: dict[str, Any] | None = None
                      ) -> Response:
    svc = container(request).tourism
    viewer = _viewer(me)
    order = await svc.work_order(viewer, order_id)
    agency = await svc.agency(viewer, order.agency_id)
    replays = await svc.replays_of(viewer, order_id)
    for r in replays:  # the verdicts' times as the bureau reads them: Beijing time
        for v in r["verdicts"]:
            v["arrived_local"], v["left_local"] = (datetime.fromisoformat(v[k]).astimezone(SHANGHAI).strftime("%H:%M")
                                                   if v[k] else "" for k in ("arrived", "left"))
    return _render(request, template, me, {
        "o": order, "agency": agency, "replay": replays[-1] if replays else None,
        "evidence": await svc.evidence_of(viewer, order_id), "checks": checks or {}, "key": form_key(),
        "next": {s.value for s in STEPS.get(order.state, frozenset())}, "grounds": [g.value for g in RefusalGround],
        "now": svc.uow.clock.now(), "error": error, "notice": notice}, status=status)


@router.get("/orders/{order_id}", response_class=HTMLResponse)
async def order(request: Request, order_id: str) -> Response:
    me = await guard(request, *ROLES)
    if isinstance(me, Response):
        return me
    try:
        return await _order_page(request, me, order_id[:64])
    except MobipayError as exc:
        return _render(request, "tourism.html", me, {"orders": [], "state": "", "states": [], "counts": {},
                                                     "now": None, "error": message(exc, lang(request))},
                       status=exc.status)


@router.get("/orders/{order_id}/print", response_class=HTMLResponse)
async def printable(request: Request, order_id: str) -> Response:
    """The work order's summary on one printable page (the browser's print)."""
    me = await guard(request, *ROLES)
    if isinstance(me, Response):
        return me
    try:
        return await _order_page(request, me, order_id[:64], template="tourism_print.html")
    except MobipayError as exc:
        return _render(request, "tourism.html", me, {"orders": [], "state": "", "states": [], "counts": {},
                                                     "now": None, "error": message(exc, lang(request))},
                       status=exc.status)


@router.get("/orders/{order_id}/map.json")
async def map_data(request: Request, order_id: str) -> Response:
    """What the page's map draws: the county's base layer and the latest route replay."""
    me = await guard(request, *ROLES)
    if isinstance(me, Response):
        return me
    svc = container(request).tourism
    try:
        o = await svc.work_order(_viewer(me), order_id[:64])
        replays = await svc.replays_of(_viewer(me), o.id)
    except MobipayError as exc:
        return harden(JSONResponse({"code": exc.code, "detail": exc.detail}, status_code=exc.status), request)
    return harden(JSONResponse({"base": json.loads(base_layer(o.county)),
                                "replay": replays[-1] if replays else None}), request)


@router.post("/orders/{order_id}/replay", response_class=HTMLResponse)
async def replay(request: Request, order_id: str, csrf: str = Form(""), subject: str = Form("guide")) -> Response:
    me = await guard(request, *ROLES)
    if isinstance(me, Response):
        return me
    svc = container(request).tourism
    try:
        check_csrf(request, csrf)
        done = await svc.replay_route(_viewer(me), order_id[:64], subject="driver" if subject == "driver" else "guide")
    except MobipayError as exc:
        return await _order_page(request, me, order_id[:64], error=message(exc, lang(request)), status=exc.status)
    return await _order_page(request, me, order_id[:64], notice=", ".join(done.not_visited) or "ok")


@router.post("/orders/{order_id}/{step}", response_class=HTMLResponse)
async def act(request: Request, order_id: str, step: str, csrf: str = Form(""), text: str = Form(""),
              outcome: str = Form(""), grounds: Annotated[list[str] | None, Form()] = None, amount: str = Form(""),
              method: str = Form("wallet"), bank_reference: str = Form(""), key: str = Form("")) -> Response:
    """One step of the work order by the rules (the service checks the state under the order's
    row lock): accept, refuse with grounds, the respondent's reply, mediation or termination,
    the refund the mediation decided (its form's key is the Idempotency-Key)."""
    me = await guard(request, *ROLES)
    if isinstance(me, Response):
        return me
    svc = container(request).tourism
    viewer, oid = _viewer(me), order_id[:64]
    steps: dict[str, Callable[[], Awaitable[Any]]] = {
        "accept": lambda: svc.accept(viewer, oid),
        "refuse": lambda: svc.refuse(viewer, oid, grounds or [], text),
        "reply": lambda: svc.record_reply(viewer, oid, text),
        "mediate": lambda: svc.mediate(viewer, oid, outcome, text),
        "terminate": lambda: svc.terminate(viewer, oid, text),
        "refund": lambda: svc.refund(viewer, oid, parse_yuan(amount), method=method, bank_reference=bank_reference,
                                     idempotency_key=key),
    }
    try:
        check_csrf(request, csrf)
        if step not in steps:
            raise ValidationFailed(f"no step {step!r}", field="step")
        await steps[step]()
    except MobipayError as exc:
        return await _order_page(request, me, oid, error=message(exc, lang(request)), status=exc.status)
    return await _order_page(request, me, oid, notice=step)


@router.post("/evidence/{evidence_id}/verify", response_class=HTMLResponse)
async def verify(request: Request, evidence_id: str, csrf: str = Form(""), order_id: str = Form("")) -> Response:
    me = await guard(request, *ROLES)
    if isinstance(me, Response):
        return me
    svc = container(request).tourism
    try:
        check_csrf(request, csrf)
        result = await svc.verify_evidence(_viewer(me), evidence_id[:64])
    except MobipayError as exc:
        return await _order_page(request, me, order_id[:64], error=message(exc, lang(request)), status=exc.status)
    return await _order_page(request, me, order_id[:64], checks={evidence_id: result})


@router.get("/evidence/{evidence_id}")
async def evidence_file(request: Request, evidence_id: str, export: int = 0) -> Response:
    """The file as kept (viewed, or with ``export=1`` downloaded: exported, in its custody)."""
    me = await guard(request, *ROLES)
    if isinstance(me, Response):
        return me
    try:
        ev, data = await container(request).tourism.open_evidence(_viewer(me), evidence_id[:64], export=bool(export))
    except MobipayError as exc:
        return harden(Response(message(exc, lang(request)), status_code=exc.status, media_type="text/plain"),
                      request)
    response = harden(Response(data, media_type=ev.content_type), request)
    if export:
        response.headers["Content-Disposition"] = f'attachment; filename="{ev.id}-{ev.filename}"'
    return response


@router.get("/evidence/{evidence_id}/custody", response_class=HTMLResponse)
async def custody(request: Request, evidence_id: str) -> Response:
    me = await guard(request, *ROLES)
    if isinstance(me, Response):
        return me
    try:
        lines = await container(request).tourism.custody_of(_viewer(me), evidence_id[:64])
    except MobipayError as exc:
        return _render(request, "tourism.html", me, {"orders": [], "state": "", "states": [], "counts": {},
                                                     "now": None, "error": message(exc, lang(request))},
                       status=exc.status)
    return _render(request, "tourism_custody.html", me, {"evidence_id": evidence_id, "lines": lines})


@router.get("/agencies", response_class=HTMLResponse)
async def agencies(request: Request, county: str = "", q: str = "") -> Response:
    """The agencies the bureau supervises, by county and name, licence or phone."""
    me = await guard(request, *ROLES)
    if isinstance(me, Response):
        return me
    wanted = county if county in counties() else ""
    found = await container(request).tourism.directory(Viewer(f"console:{me.name}", wanted or None), q[:40],
                                                       kind="agency", limit=200)
    return _render(request, "tourism_agencies.html", me, {"agencies": found, "county": wanted, "q": q[:40]})


async def _agency_page(request: Request, me: Operator, agency_id: str, *, error: str = "", notice: str = "",
                       status: int = 200) -> Response:
    svc = container(request).tourism
    viewer = _viewer(me)
    log = await svc.operations(viewer, agency_id, 100)
    for e in log:  # as the bureau reads it: Beijing time
        e["at_local"] = datetime.fromisoformat(e["at"]).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
    return _render(request, "tourism_agency.html", me, {
        "agency": await svc.agency(viewer, agency_id), "network": await svc.network(viewer, agency_id),
        "accounts": await svc.agency_accounts_of(agency_id), "log": log, "error": error, "notice": notice},
        status=status)


@router.get("/agencies/{agency_id}", response_class=HTMLResponse)
async def agency(request: Request, agency_id: str) -> Response:
    """One agency: its manager, sales network, staff, sign-in accounts and operations log."""
    me = await guard(request, *ROLES)
    if isinstance(me, Response):
        return me
    try:
        return await _agency_page(request, me, agency_id[:64])
    except MobipayError as exc:
        return _render(request, "tourism_agencies.html", me, {"agencies": [], "county": "", "q": "",
                                                              "error": message(exc, lang(request))},
                       status=exc.status)


@router.post("/agencies/{agency_id}/accounts", response_class=HTMLResponse)
async def account_change(request: Request, agency_id: str, csrf: str = Form(""), login: str = Form(""),
                         change: str = Form(""), password: str = Form(""), reason: str = Form("")) -> Response:
    """Disable or enable one of the agency's accounts, or set its new password (the person
    is told it in person); ends its sessions, audited, in the agency's operations log."""
    me = await guard(request, *ROLES)
    if isinstance(me, Response):
        return me
    svc = container(request).tourism
    aid = agency_id[:64]
    try:
        check_csrf(request, csrf)
        if change not in ("disable", "enable", "password"):
            raise ValidationFailed("choose disable, enable or a new password", field="change")
        done = await svc.change_agency_account(
            login, actor=f"console:{me.name}", reason=reason, agency_id=aid,
            disabled={"disable": True, "enable": False}.get(change),
            password=password if change == "password" else None)
    except MobipayError as exc:
        return await _agency_page(request, me, aid, error=message(exc, lang(request)), status=exc.status)
    return await _agency_page(request, me, aid, notice=f"{done.login}: {change}")
