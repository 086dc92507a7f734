"""What every server-rendered page shares (hosted cashier, mobile web wallet, operator
console, merchant portal): one template environment, Chinese by default with English
available, CSRF protection, hardened responses, and refusals in words.

* **Language**: ``?lang=en`` (or ``zh``) switches and is remembered in a cookie; templates
  call ``t("中文", "English")``.
* **CSRF**: double submit. Every page sets a random token in an HttpOnly cookie and puts the
  same token in its forms; :func:`check_csrf` refuses a POST whose field does not match.
  Every sign-in replaces the token (:func:`renew_csrf`): one planted before sign-in (a
  fixation) is worth nothing after it.
* **Hardening**: a strict Content-Security-Policy (no inline script, nothing from other
  origins), nosniff, no referrer, no framing; cookies HttpOnly, SameSite=Lax, Secure over
  HTTPS and always in production.
* **Errors**: the same stable codes as the API, shown as :func:`mobipay.channels.words.say`
  words plus the code, so support can search for it.
* **Words and times**: templates name a transaction kind with ``kind_name(code)`` (the one
  table in :mod:`mobipay.channels.words`, never the raw code) and show an instant with the
  ``shanghai`` filter: Beijing time, which is what subscribers, merchants and operators read.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from mobipay.channels.words import WORDS, Lang, kind_name, operator_name, say, state_name, yuan
from mobipay.kernel.clock import SHANGHAI, as_utc
from mobipay.kernel.errors import MobipayError, ValidationFailed

if TYPE_CHECKING:  # the composition root's type, named in hints only (decision 0006)
    from mobipay.app.bootstrap import Container

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))


def shanghai(at: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """An instant as Beijing time (Asia/Shanghai); a stored naive time is UTC."""
    return "" if at is None else as_utc(at).astimezone(SHANGHAI).strftime(fmt)


templates.env.filters["yuan"] = yuan
templates.env.filters["shanghai"] = shanghai
STATIC_DIR = HERE / "static"
CSRF, LANG = "mp_csrf", "mp_lang"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")


def container(request: Request) -> Container:
    c: Container = request.app.state.container
    return c


def secure(request: Request) -> bool:
    """Cookies are Secure over HTTPS, and always in production (behind a TLS proxy)."""
    return request.url.scheme == "https" or container(request).settings.env.value == "production"


def lang(request: Request) -> Lang:
    wanted = request.query_params.get("lang") or request.cookies.get(LANG) or "zh"
    return "en" if wanted == "en" else "zh"


def translator(language: Lang) -> Callable[[str, str], str]:
    def t(zh: str, en: str) -> str:
        return en if language == "en" else zh

    return t


def csrf_token(request: Request) -> str:
    return request.cookies.get(CSRF) or secrets.token_urlsafe(24)


def check_csrf(request: Request, token: str) -> None:
    """Refuse a form that did not come from one of our pages in this browser."""
    cookie = request.cookies.get(CSRF, "")
    # Bytes: compare_digest refuses non-ASCII text with a TypeError (a 500 for any hostile form).
    if not cookie or not token or not secrets.compare_digest(cookie.encode(), token.encode()):
        raise ValidationFailed("the form expired or did not come from this page; reload it", field="csrf")


def message(exc: MobipayError, language: Lang = "zh") -> str:
    """A refusal as shown on a page: its words (or, for a code without words, what the
    detail says to do) and its stable code, so support can search for it."""
    words = say(exc, language) if exc.code in WORDS else exc.detail
    return f"{words}（{exc.code}）" if language == "zh" else f"{words} ({exc.code})"


def harden(response: Response, request: Request, csrf: str | None = None) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cache-Control"] = "no-store"  # pages show balances and personal data
    if csrf is not None:
        response.set_cookie(CSRF, csrf, httponly=True, samesite="lax", secure=secure(request))
    if "lang" in request.query_params:
        response.set_cookie(LANG, lang(request), max_age=365 * 86400, samesite="lax", secure=secure(request))
    return response


def page(request: Request, name: str, context: Mapping[str, Any] | None = None, *, status: int = 200) -> HTMLResponse:
    """Render ``name`` with the shared context (``t``, ``lang``, ``csrf``) and harden it."""
    language = lang(request)
    csrf = csrf_token(request)
    response = templates.TemplateResponse(request, name, {
        "t": translator(language), "lang": language, "csrf": csrf,
        "kind_name": lambda code: kind_name(code, language), "state_name": lambda code: state_name(code, language),
        "operator_name": lambda code: operator_name(code, language),
        **(context or {})}, status_code=status)
    harden(response, request, csrf)
    return response


def renew_csrf(response: Response, request: Request) -> None:
    """At sign-in: a fresh CSRF token, so a token someone planted or read before the sign-in
    (session fixation) does not carry over into the signed-in session."""
    response.set_cookie(CSRF, secrets.token_urlsafe(24), httponly=True, samesite="lax", secure=secure(request))


def client_address(request: Request) -> str:
    """The client's address as the server sees it (a configured proxy's X-Forwarded-For,
    else the connection): what per-address limits count and the audit trail names."""
    return request.client.host if request.client else "unknown"


def form_key() -> str:
    """A fresh idempotency key for one rendered money-moving form."""
    return secrets.token_urlsafe(18)


async def hit_limit(request: Request, action: str) -> None:
    """Count this request against the per-address limit of ``action``, as the API's routes do."""
    await container(request).rate_limiter.hit(action, client_address(request))


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    """A session cookie: HttpOnly, SameSite=Lax, Secure where it must be."""
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="lax", secure=secure(request))
