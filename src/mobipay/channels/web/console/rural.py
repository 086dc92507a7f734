"""The console's rural page: agents' activity by county (cash-ins, cash-outs, flagged) over
the last days, and the transactions the fraud rules flagged, each cleared or confirmed as
fraud by the risk role (audited by the rural service). Thin as every console page: CSRF
checked, the rural service does the work; a refusal re-renders the page with its code."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from mobipay.backoffice.operators import Operator
from mobipay.channels.web.common import check_csrf, container, lang, message, page
from mobipay.channels.web.console.auth import ROLE_NAMES, guard
from mobipay.kernel.errors import MobipayError

router = APIRouter(prefix="/console/rural")
ROLES = ("risk", "operations")


async def _render(request: Request, me: Operator, days: int, *, error: str = "", notice: str = "",
                  status: int = 200) -> Response:
    rural = container(request).rural
    until = rural.uow.clock.now()
    return page(request, "console/rural.html", {
        "me": me, "role_names": ROLE_NAMES, "error": error, "notice": notice, "days": days,
        "activity": await rural.activity_by_county(until - timedelta(days=days), until),
        "flags": await rural.flagged(), "can_decide": me.has("risk")}, status=status)


@router.get("", response_class=HTMLResponse)
async def overview(request: Request, days: int = 7) -> Response:
    me = await guard(request, *ROLES)
    if isinstance(me, Response):
        return me
    return await _render(request, me, min(max(days, 1), 366))


@router.post("/flags/{flag_id}", response_class=HTMLResponse)
async def decide(request: Request, flag_id: str, csrf: Annotated[str, Form()], decision: Annotated[str, Form()],
                 note: Annotated[str, Form()] = "") -> Response:
    me = await guard(request, "risk")
    if isinstance(me, Response):
        return me
    try:
        check_csrf(request, csrf)
        f = await container(request).rural.decide_flag(flag_id[:64], actor=me.name,  # vouched at sign-in
                                                      fraud=decision == "fraud", note=note[:200])
    except MobipayError as exc:
        return await _render(request, me, 7, error=message(exc, lang(request)), status=exc.status)
    return await _render(request, me, 7, notice=f"{f.rule}: {f.state}")
