"""The HTTP application: routers of every context, health, metrics, and one error mapping.

Every refusal leaves as RFC 9457 problem+json with the stable ``code`` of the error tree
(see docs/errors.md); request validation failures name the offending fields. A 5xx is a
bug: it is logged with the request id and answered without internals.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp

from mobipay import __version__
from mobipay.app.bootstrap import Container, build
from mobipay.bills import api as bills_api
from mobipay.campaigns import bulk_api, draws_api
from mobipay.channels.sms import api as sms_api
from mobipay.channels.voice import vxml as voice_vxml
from mobipay.channels.web import (
    cashier,
    console,
    hall,
    merchant_enterprise,
    merchant_groupbuy,
    merchant_portal,
    merchant_terminals,
    rural_agent,
    tourism,
    wallet_alliances,
    wallet_cinema,
    wallet_paycode,
    wallet_protection,
    wallet_sp,
    wallet_transit,
)
from mobipay.channels.web import wallet as web_wallet
from mobipay.channels.web.common import STATIC_DIR
from mobipay.cinema import api as cinema_api
from mobipay.enterprise import api as enterprise_api
from mobipay.enterprise import terminal_api as enterprise_terminal_api
from mobipay.groupbuy import api as groupbuy_api
from mobipay.instore import alliances_api, micropay_api, nfc_api, terminals_api
from mobipay.instore import api as instore_api
from mobipay.kernel.errors import CATALOGUE, MobipayError, ServiceUnavailable
from mobipay.kernel.money import CURRENCIES
from mobipay.ledger import api as ledger_api
from mobipay.lottery import api as lottery_api
from mobipay.merchants import api as merchants_api
from mobipay.merchants import api_alipay, api_wechat
from mobipay.platform.api_common import field_as_sent
from mobipay.platform.config import Settings
from mobipay.platform.db import is_unavailable
from mobipay.platform.edge import Edge
from mobipay.platform.observability import RequestContextMiddleware, configure_logging
from mobipay.platform.openapi import document_problems
from mobipay.products import api as products_api
from mobipay.protection import api as protection_api
from mobipay.rural import api as rural_api
from mobipay.sp import api as sp_api
from mobipay.topup import api as topup_api
from mobipay.topup import partner_api
from mobipay.tourism import api as tourism_api
from mobipay.transit import api as transit_api
from mobipay.wallet import api as wallet_api
from mobipay.wallet import banking_api

log = structlog.get_logger(__name__)
PROBLEM = "application/problem+json"
SWAGGER_UI = "/static/vendor/swagger-ui-dist"  # vendored from npm (web-vendor/): the docs need no internet


def problem(
    request: Request, status: int, code: str, title: str, detail: str, errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None, extensions: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"/errors/{code.lower().replace('_', '-')}",
        "title": title,
        "status": status,
        "code": code,
        "detail": detail,
        "request_id": getattr(request.state, "request_id", None),
    }
    if errors:
        body["errors"] = errors
    for key, value in jsonable_encoder(extensions or {}).items():  # RFC 9457 extension members
        body.setdefault(key, value)
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _field_code(loc: tuple[Any, ...], err_type: str, value: object) -> str:
    if loc and str(loc[-1]) == "currency":
        # A real currency the wallet does not move is not the same mistake as a made-up code.
        return "UNSUPPORTED_CURRENCY" if isinstance(value, str) and value in CURRENCIES else "INVALID_CURRENCY"
    if any(str(part) == "amount" for part in loc):
        return "INVALID_AMOUNT"
    return "INVALID_FIELD" if err_type != "missing" else "FIELD_REQUIRED"


_FIELD_MESSAGES = {"INVALID_AMOUNT": "amount is integer fen, e.g. 1250 for 12.50 CNY",
                   "UNSUPPORTED_CURRENCY": "the wallet moves CNY only",
                   "INVALID_CURRENCY": "not an ISO 4217 currency code the wallet moves: use CNY"}


async def refusal(request: Request, exc: MobipayError) -> JSONResponse:
    """A domain refusal as problem+json: its status, stable code, field (as the route's
    request names it: :func:`~mobipay.platform.api_common.sent_as`) and extensions."""
    field = field_as_sent(request.scope.get("endpoint"), exc.field)
    errors = [{"field": field, "code": exc.code}] if field else None
    retry = exc.extra.get("retry_after_s")
    headers = {"Retry-After": str(retry)} if isinstance(retry, int) else None
    return problem(request, exc.status, exc.code, exc.title, exc.detail, errors, headers=headers,
                   extensions=exc.extra)


async def unexpected(request: Request, exc: Exception) -> JSONResponse:
    """A bug: logged with the request id, answered 500 without internals. The database not
    answering is no bug: 503 with Retry-After (API-CONVENTIONS: a dependency is down), one
    log line, so a client retries with its idempotency key and the log stays readable."""
    if is_unavailable(exc):
        log.warning("http.database_unavailable", error=f"{type(exc).__name__}: {str(exc)[:200]}")
        return problem(request, 503, ServiceUnavailable.code, ServiceUnavailable.title,
                       "The database did not answer; send the request again (with the same Idempotency-Key).",
                       headers={"Retry-After": "1"})
    log.exception("http.unexpected_error", error=type(exc).__name__)
    return problem(request, 500, "INTERNAL_ERROR", "Internal error",
                   "An unexpected error occurred; it has been logged with this request id.")


class MobipayApp(FastAPI):
    """FastAPI with three plain ASGI layers in front of its whole middleware stack: the
    request context (request id, metrics, the access log), the edge (body limits, control
    characters, JSON depth: docs/hardening.md) and the transfer lane, which so skips
    FastAPI's own layers as well as its routing (docs/performance.md)."""

    def build_middleware_stack(self) -> ASGIApp:
        inner = super().build_middleware_stack()
        lane = wallet_api.TransferLane(inner, refusal=refusal, unexpected=unexpected)
        return RequestContextMiddleware(Edge(lane, refusal=refusal))

    def openapi(self) -> dict[str, Any]:
        """FastAPI's document with every operation's problem answers (platform/openapi.py)."""
        if self.openapi_schema is None:
            self.openapi_schema = document_problems(self, super().openapi())
        return self.openapi_schema


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(MobipayError, refusal)  # type: ignore[arg-type]

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for err in exc.errors():
            loc = tuple(err.get("loc", ()))
            parts = loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc
            field = ".".join(str(p) for p in parts)
            code = _field_code(loc, str(err.get("type")), err.get("input"))
            message = f"{_FIELD_MESSAGES[code]} ({err.get('msg')})" if code in _FIELD_MESSAGES else err.get("msg")
            errors.append({"field": field, "code": code, "message": message})
        codes = {e["code"] for e in errors}
        # One specific mistake (every field error an INVALID_AMOUNT, say) answers as that error.
        one = CATALOGUE.get(next(iter(codes))) if len(codes) == 1 else None
        status, code, title = (one.status, one.code, one.title) if one else (400, "VALIDATION_FAILED",
                                                                             "The request is not valid")
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return problem(request, status, code, title, detail, errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(
            exc.status_code, "HTTP_ERROR")
        return problem(request, exc.status_code, code, str(exc.detail), str(exc.detail),
                       headers=getattr(exc, "headers", None))

    # Database errors are answered here, below the server-error layer, which would re-raise
    # them to uvicorn (a second traceback per request) after answering.
    app.add_exception_handler(DBAPIError, unexpected)
    app.add_exception_handler(OSError, unexpected)
    app.add_exception_handler(Exception, unexpected)


def create_app(settings: Settings | None = None, container: Container | None = None, *,
               freeze_heap: bool = False) -> FastAPI:
    """Build the HTTP app; the container (and so the database) is built at startup.
    ``freeze_heap``: after start-up, move every object to the garbage collector's permanent
    generation (:func:`gc.freeze`), as a served process wants; not for tests, which build
    many apps in one process."""
    settings = settings or (container.settings if container else Settings())
    configure_logging(settings.log_level, settings.log_json)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        c = container or build(settings)
        app.state.container = c
        await c.ensure_system_accounts()
        c.ledger.start_group_commit()
        stop = asyncio.Event()
        sweeper = asyncio.create_task(c.ledger.run_hold_sweeper(settings.hold_sweep_interval_s, stop))
        log.info("mobipay.started", version=__version__, database=c.db.dialect, env=settings.env.value)
        if freeze_heap:
            # What start-up built lives as long as the process: out of the collector's sight,
            # a full collection no longer walks it (it paused every request 100+ ms).
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            stop.set()
            await sweeper
            if container is None:
                await c.close()
            else:
                await c.stop_writers()

    app = MobipayApp(
        title="mobipay",
        version=__version__,
        summary="Operator-grade mobile payment platform",
        description="Money is an integer number of fen. Errors are RFC 9457 problem+json with stable "
        "codes (docs/errors.md). Money-moving POSTs take an Idempotency-Key header.",
        lifespan=lifespan,
        docs_url=None,  # served below from the package's own Swagger UI, not a CDN
        redoc_url=None,  # ReDoc would come from a CDN too; /docs is the one API reference page
    )
    install_error_handlers(app)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title="mobipay API",
                                   swagger_js_url=f"{SWAGGER_UI}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{SWAGGER_UI}/swagger-ui.css",
                                   swagger_favicon_url=f"{SWAGGER_UI}/favicon-32x32.png",
                                   oauth2_redirect_url="/docs/oauth2-redirect")

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def docs_oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/healthz", tags=["operations"], summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.get("/readyz", tags=["operations"], summary="Readiness: the database answers",
             responses={503: {"description": "The database did not answer"}})
    async def readyz(request: Request) -> JSONResponse:
        c: Container = request.app.state.container
        try:
            await asyncio.wait_for(c.db.ping(), timeout=2)
        except Exception as exc:  # not ready: say why, with 503
            return problem(request, 503, "SERVICE_UNAVAILABLE", "Not ready",
                           f"database did not answer: {type(exc).__name__}")
        return JSONResponse({"status": "ready", "database": c.db.dialect})

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics", response_class=PlainTextResponse)
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest().decode(), media_type=CONTENT_TYPE_LATEST)

    app.include_router(ledger_api.router)
    app.include_router(wallet_api.router)
    app.include_router(banking_api.router)
    app.include_router(topup_api.router)
    app.include_router(partner_api.router)
    app.include_router(bills_api.router)
    app.include_router(products_api.router)
    app.include_router(lottery_api.router)
    app.include_router(draws_api.router)
    app.include_router(bulk_api.router)
    app.include_router(protection_api.router)
    app.include_router(sp_api.router)
    app.include_router(merchants_api.router)
    app.include_router(api_alipay.router)
    app.include_router(api_wechat.router)
    app.include_router(terminals_api.router)
    app.include_router(instore_api.router)
    app.include_router(alliances_api.router)
    app.include_router(micropay_api.router)
    app.include_router(nfc_api.router)
    app.include_router(groupbuy_api.router)
    app.include_router(transit_api.router)
    app.include_router(tourism_api.router)
    app.include_router(tourism.router)  # the officers' field app (PWA) at /tourism/app
    app.include_router(enterprise_api.router)
    app.include_router(enterprise_api.employer_router)
    app.include_router(enterprise_terminal_api.router)  # the canteen POS charges a payment code
    app.include_router(cinema_api.router)
    app.include_router(rural_api.router)
    app.include_router(rural_agent.router)  # the village agent's page at /m/agent
    app.include_router(hall.router)
    app.include_router(cashier.router)
    app.include_router(web_wallet.router)
    app.include_router(wallet_alliances.router)
    app.include_router(wallet_paycode.router)
    app.include_router(wallet_protection.router)
    app.include_router(wallet_sp.router)
    app.include_router(wallet_cinema.router)
    app.include_router(wallet_transit.router)
    app.add_exception_handler(web_wallet.SignInRequired, web_wallet.sign_in_redirect)
    app.include_router(merchant_portal.router)
    app.include_router(merchant_terminals.router)
    app.include_router(merchant_groupbuy.router)
    app.include_router(merchant_enterprise.router)
    app.include_router(console.router)
    app.include_router(sms_api.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(voice_vxml.router)
    return app


def create_served_app() -> FastAPI:
    """The app as ``mobipay serve`` runs it (uvicorn's factory): settings from the environment,
    the heap frozen after start-up."""
    return create_app(freeze_heap=True)
