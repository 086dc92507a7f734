"""The agent's page in the mobile web (/m/agent): a village shop's phone signs in with the
staff member's number and PIN and does cash-in, cash-out (the customer's code typed in),
and sees the float, the till, the mini statement and the month's commissions.

The page holds no data of its own: it calls /v1/rural with the staff bearer token, kept in
the tab's sessionStorage only (static/rural-agent.js)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from mobipay.channels.web.common import STATIC_DIR, harden

router = APIRouter(prefix="/m/agent", include_in_schema=False)

PAGE = STATIC_DIR / "rural-agent.html"


@router.get("")
def agent_page(request: Request) -> Response:
    """The page (a plain function: the file is read in the thread pool)."""
    return harden(Response(PAGE.read_bytes(), media_type="text/html; charset=utf-8"), request)
