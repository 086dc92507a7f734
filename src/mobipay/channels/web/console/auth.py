"""Console sign-in, sign-out and the role guard every page goes through.

The session is a random token in an HttpOnly, SameSite=Lax cookie (Secure over HTTPS and
in production); the database keeps only its SHA-256, for 8 hours. :func:`guard` answers
each request with the signed-in operator, a redirect to the sign-in page, or a 403 page
naming the role that is missing.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mobipay.backoffice.operators import Operator
from mobipay.channels.web.common import (
    check_csrf,
    client_address,
    container,
    lang,
    message,
    page,
    renew_csrf,
    set_cookie,
)
from mobipay.kernel.errors import MobipayError
from mobipay.platform.staff_sessions import SESSION_TTL

router = APIRouter(prefix="/console")
COOKIE = "mp_console"

#: Which roles open which part of the console (``admin`` opens everything).
ROLE_NAMES = {
    "admin": ("管理员", "Administrator"), "operations": ("运营", "Operations"), "risk": ("风控", "Risk"),
    "finance": ("财务", "Finance"), "support": ("客服", "Support"), "merchant_review": ("商户审核", "Merchant review"),
    "sp_governance": ("SP管理", "SP governance"),
}


async def operator(request: Request) -> Operator | None:
    """The operator signed in with this request's cookie (None when there is none or it
    ended). Their current roles are vouched to the roster the services check."""
    token = request.cookies.get(COOKIE, "")
    if not token:
        return None
    c = container(request)
    try:
        op = await c.operators.session(token)
    except MobipayError:
        return None
    c.merchants.roster.vouch(op.name, op.roles)
    return op


async def guard(request: Request, *roles: str) -> Operator | Response:
    """The operator if they hold one of ``roles`` (or admin); otherwise the sign-in page
    (not signed in) or a 403 page that changes nothing."""
    op = await operator(request)
    if op is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse("/console/signin?" + urlencode({"next": target}), status_code=303)
    if not any(op.has(r) for r in roles):
        return page(request, "console/forbidden.html", {"me": op, "roles": roles, "role_names": ROLE_NAMES},
                    status=403)
    return op


def _next(raw: str) -> str:
    """Only a path inside the console (no open redirect)."""
    return raw if raw.startswith("/console") and not raw.startswith("//") else "/console"


@router.get("/signin", response_class=HTMLResponse)
async def signin_page(request: Request, next: str = "/console") -> Response:
    return page(request, "console/signin.html", {"next": _next(next), "error": "", "name": ""})


@router.post("/signin", response_class=HTMLResponse)
async def signin(request: Request, csrf: str = Form(""), name: str = Form(""), password: str = Form(""),
                 next: str = Form("/console")) -> Response:
    try:
        check_csrf(request, csrf)
        # Password guessing is slowed per address like PIN guessing (argon2 alone only slows each
        # try), and stopped per account by the lockout whatever the addresses.
        await container(request).rate_limiter.hit("pin", client_address(request))
        token, _ = await container(request).operators.sign_in(name, password, client=client_address(request))
    except MobipayError as exc:
        return page(request, "console/signin.html", {"next": _next(next), "error": message(exc, lang(request)),
                                                     "name": name}, status=exc.status)
    response = RedirectResponse(_next(next), status_code=303)
    set_cookie(response, request, COOKIE, token, int(SESSION_TTL.total_seconds()))
    renew_csrf(response, request)
    return response


@router.post("/signout")
async def signout(request: Request, csrf: str = Form("")) -> Response:
    try:
        check_csrf(request, csrf)
    except MobipayError as exc:
        return page(request, "console/signin.html", {"next": "/console", "error": message(exc, lang(request)),
                                                     "name": ""}, status=exc.status)
    token = request.cookies.get(COOKIE, "")
    if token:
        await container(request).operators.sign_out(token)
    response = RedirectResponse("/console/signin", status_code=303)
    response.delete_cookie(COOKIE)
    return response
