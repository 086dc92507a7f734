"""The console's marketplace disputes: the open disputes of the rural marketplace, nearest
deadline first (undecided, the buyer is refunded then), each refunded or released to the
seller with a reason by the operations role (audited by the marketplace). Thin as every
console page: CSRF checked, the marketplace does the work; a refusal re-renders the page with
its code. Each rendered form carries its own idempotency key, so a form sent twice (a double
click, a reload) is one decision."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from mobipay.backoffice.operators import Operator
from mobipay.channels.web.common import check_csrf, container, lang, message, page
from mobipay.channels.web.console.auth import ROLE_NAMES, guard
from mobipay.kernel.errors import MobipayError
from mobipay.rural import errors

router = APIRouter(prefix="/console/rural/disputes")
ROLE = "operations"


async def _render(request: Request, me: Operator, *, error: str = "", notice: str = "", status: int = 200) -> Response:
    market = container(request).rural_market
    return page(
        request,
        "console/rural_disputes.html",
        {
            "me": me,
            "role_names": ROLE_NAMES,
            "error": error,
            "notice": notice,
            "disputes": await market.disputes(actor=me.name),
            "now": market.uow.clock.now(),
            "form_key": f"console-{secrets.token_urlsafe(12)}",
        },
        status=status,
    )


@router.get("", response_class=HTMLResponse)
async def overview(request: Request) -> Response:
    me = await guard(request, ROLE)
    if isinstance(me, Response):
        return me
    return await _render(request, me)


@router.post("/{order_id}", response_class=HTMLResponse)
async def decide(
    request: Request,
    order_id: str,
    csrf: Annotated[str, Form()],
    decision: Annotated[str, Form()],
    reason: Annotated[str, Form()] = "",
    key: Annotated[str, Form()] = "",
) -> Response:
    me = await guard(request, ROLE)
    if isinstance(me, Response):
        return me
    try:
        check_csrf(request, csrf)
        if decision not in ("refund", "release"):
            raise errors.RuralInvalid("choose refund or release", field="decision")
        if len(reason.strip()) < 2:
            raise errors.RuralInvalid("say why (2 to 200 characters): it is kept with the decision", field="reason")
        o = await container(
            request
        ).rural_market.decide_dispute(
            order_id[:40],
            actor=me.name,
            refund=decision == "refund",  # vouched at sign-in
            note=reason.strip()[:200],
            idempotency_key=key[:64] or None,
        )
    except MobipayError as exc:
        return await _render(request, me, error=message(exc, lang(request)), status=exc.status)
    return await _render(request, me, notice=f"{o.id}: {o.state}")
