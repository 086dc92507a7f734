"""The mobile web wallet's transit trips (手机刷公交) at ``/m/transit``: the month's trips with
the base fare, each discount (transfer, monthly tier, daily cap) and what was paid, what is
still owed (the phone is on the deny list until a top-up pays it), and the monthly statement
as CSV. Over the same ``Transit`` use cases as ``/v1/transit/trips``; read-only."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from mobipay.channels.web.common import container
from mobipay.channels.web.wallet import _signed_in, _view
from mobipay.kernel.clock import SHANGHAI

router = APIRouter(prefix="/m", include_in_schema=False)
MONTH = re.compile(r"20\d\d-(0[1-9]|1[0-2])")


def _month(request: Request, month: str) -> str:
    if MONTH.fullmatch(month or ""):
        return month
    return container(request).clock.now().astimezone(SHANGHAI).strftime("%Y-%m")


@router.get("/transit", response_class=HTMLResponse)
async def trips(request: Request, month: str = "") -> Response:
    me = await _signed_in(request)
    month = _month(request, month)
    transit = container(request).transit
    found = await transit.trips_of(me.user_id, month)
    names = await transit.station_names()
    done = [t for t in found if t.state in ("paid", "debt")]
    return _view(request, "transit.html", {
        "month": month, "trips": found, "names": names, "fares": sum(t.fare for t in done),
        "discounts": sum(t.transfer_discount + t.tier_discount + t.cap_discount for t in done),
        "owed": sum(t.fare for t in done if t.state == "debt")})


@router.get("/transit/statement")
async def statement(request: Request, month: str = "") -> Response:
    me = await _signed_in(request)
    month = _month(request, month)
    text, _ = await container(request).transit.statement(me.user_id, month)
    return Response(text, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="transit-{month}.csv"'})
