"""The console's campaign pages (role ``operations``): segments with their counts, prize
draws (commit, draw once the named lottery draw is imported, the published files), the
prize inventory, prizes won and delivery runs to the winners' doors.

Thin as every console page: CSRF checked, then the campaigns' services do the work and
write the audit entry; a refusal re-renders the page with its words and code and the
error's HTTP status, and nothing changes. A form that commits a draw carries a fresh
idempotency key, so submitting it twice commits one draw.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from mobipay.backoffice.operators import Operator
from mobipay.channels.web.common import check_csrf, container, form_key, lang, message, page
from mobipay.channels.web.console.auth import ROLE_NAMES, guard
from mobipay.kernel.errors import MobipayError, ValidationFailed
from mobipay.kernel.msisdn import mask_msisdn

router = APIRouter(prefix="/console")

CAMPAIGNS = ("operations",)
GAMES = ("ssq", "dlt", "fc3d")


def _list(raw: str) -> list[str]:
    return [v.strip() for v in raw.replace("，", ",").split(",") if v.strip()]


async def _page(request: Request, me: Operator, *, error: str = "", notice: str = "", status: int = 200) -> Response:
    c = container(request)
    segments, _ = await c.segments.page(limit=200)
    draws, _ = await c.draws.page(limit=200)
    upcoming = [(g, c.lottery.on_sale(g)[1]) for g in GAMES]
    return page(request, "console/campaigns.html", {
        "me": me, "role_names": ROLE_NAMES, "error": error, "notice": notice, "segments": segments,
        "draws": list(reversed(draws)), "items": await c.prizes.inventory(),
        "awards": await c.prizes.awards(limit=500), "runs": list(reversed(await c.prizes.runs(limit=200))),
        "counts": await c.prizes.counts(), "upcoming": upcoming, "mask": mask_msisdn, "key": form_key()},
        status=status)


async def _do(request: Request, csrf: str, work: Callable[[Operator], Awaitable[str]]) -> Response:
    me = await guard(request, *CAMPAIGNS)
    if isinstance(me, Response):
        return me
    try:
        check_csrf(request, csrf)
        notice = await work(me)
    except MobipayError as exc:
        return await _page(request, me, error=message(exc, lang(request)), status=exc.status)
    return await _page(request, me, notice=notice)


@router.get("/campaigns", response_class=HTMLResponse)
async def campaigns(request: Request) -> Response:
    me = await guard(request, *CAMPAIGNS)
    if isinstance(me, Response):
        return me
    return await _page(request, me)


@router.post("/campaigns/segments", response_class=HTMLResponse)
async def create_segment(request: Request, csrf: str = Form(""), name: str = Form(""), brands: str = Form(""),
                         cities: str = Form(""), tiers: str = Form(""), active: str = Form(""),
                         alliance: str = Form("")) -> Response:
    async def work(me: Operator) -> str:
        seg = await container(request).segments.create(name, {
            "brands": _list(brands), "cities": _list(cities), "tiers": _list(tiers), "active": active,
            "alliance": alliance.strip()}, actor=me.name)
        return f"{seg.name}: {seg.last_count}"

    return await _do(request, csrf, work)


@router.post("/campaigns/segments/{segment_id}/count", response_class=HTMLResponse)
async def count_segment(request: Request, segment_id: str, csrf: str = Form("")) -> Response:
    async def work(me: Operator) -> str:
        seg = await container(request).segments.count(segment_id)
        return f"{seg.name}: {seg.last_count}"

    return await _do(request, csrf, work)


@router.post("/campaigns/draws", response_class=HTMLResponse)
async def create_draw(request: Request, csrf: str = Form(""), key: str = Form(""), name: str = Form(""),
                      segment: str = Form(""), game: str = Form("ssq"), issue: str = Form(""),
                      prizes: str = Form(""), claim_days: str = Form("30")) -> Response:
    async def work(me: Operator) -> str:
        if not claim_days.strip().isdigit():
            raise ValidationFailed("claim days is a whole number", field="claim_days")
        d = await container(request).draws.create(name=name, segment_id=segment, game=game, issue=issue.strip(),
                                                  prizes=_list(prizes), idempotency_key=key, actor=me.name,
                                                  claim_days=int(claim_days))
        return f"{d.id}: {d.entry_count}"

    return await _do(request, csrf, work)


@router.post("/campaigns/draws/{draw_id}/draw", response_class=HTMLResponse)
async def run_draw(request: Request, draw_id: str, csrf: str = Form("")) -> Response:
    async def work(me: Operator) -> str:
        d = await container(request).draws.draw(draw_id, actor=me.name)
        return f"{d.id}: {d.state}"

    return await _do(request, csrf, work)


@router.post("/campaigns/prizes", response_class=HTMLResponse)
async def stock(request: Request, csrf: str = Form(""), code: str = Form(""), name: str = Form(""),
                add: str = Form("")) -> Response:
    async def work(me: Operator) -> str:
        if not add.strip().isdigit():
            raise ValidationFailed("add a whole number of units", field="add")
        item = await container(request).prizes.stock(code, name, int(add), actor=me.name)
        return f"{item.code}: {item.on_hand}"

    return await _do(request, csrf, work)


@router.post("/campaigns/awards/{award_id}/address", response_class=HTMLResponse)
async def address(request: Request, award_id: str, csrf: str = Form(""), where: str = Form(""),
                  receiver: str = Form("")) -> Response:
    async def work(me: Operator) -> str:
        a = await container(request).prizes.set_address(award_id, address=where, receiver=receiver, actor=me.name)
        return f"{a.id}: {a.address}"

    return await _do(request, csrf, work)


@router.post("/campaigns/runs", response_class=HTMLResponse)
async def plan_run(request: Request, csrf: str = Form(""), vehicle: str = Form(""), driver: str = Form(""),
                   day: str = Form(""), awards: str = Form("")) -> Response:
    async def work(me: Operator) -> str:
        try:
            when = date.fromisoformat(day.strip())
        except ValueError:
            raise ValidationFailed("day must be a date like 2026-11-26", field="day") from None
        r = await container(request).prizes.plan_run(vehicle=vehicle, driver=driver, day=when,
                                                     award_ids=_list(awards), actor=me.name)
        return f"{r.id}: {len(r.stops)}"

    return await _do(request, csrf, work)


@router.post("/campaigns/runs/{run_id}/{action}", response_class=HTMLResponse)
async def run_action(request: Request, run_id: str, action: str, csrf: str = Form("")) -> Response:
    async def work(me: Operator) -> str:
        prizes = container(request).prizes
        if action == "depart":
            r = await prizes.depart(run_id, actor=me.name)
        elif action == "close":
            r = await prizes.close_run(run_id, actor=me.name)
        else:
            raise ValidationFailed("a run departs or closes", field="action")
        return f"{r.id}: {r.state.value}"

    return await _do(request, csrf, work)


@router.post("/campaigns/stops/{stop_id}", response_class=HTMLResponse)
async def stop_outcome(request: Request, stop_id: str, csrf: str = Form(""), outcome: str = Form(""),
                       receiver: str = Form(""), kind: str = Form("signature"), sha256: str = Form(""),
                       reason: str = Form("")) -> Response:
    async def work(me: Operator) -> str:
        prizes = container(request).prizes
        if outcome == "delivered":
            s = await prizes.delivered(stop_id, receiver=receiver, proof_kind=kind, proof_sha256=sha256.strip().lower(),
                                       actor=me.name)
        elif outcome == "failed":
            s = await prizes.failed(stop_id, reason=reason, actor=me.name)
        else:
            raise ValidationFailed("a stop is delivered or failed", field="outcome")
        return f"{s.id}: {s.state.value}"

    return await _do(request, csrf, work)
