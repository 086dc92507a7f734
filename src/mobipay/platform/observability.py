"""Structured JSON logs with a correlation id per request, and Prometheus metrics.

The request id comes from ``X-Request-Id`` (or is made up), is bound into structlog's
context variables for the request, and is echoed on the response, so one id follows a
request through every log line it causes.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

import orjson
import structlog
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mobipay.kernel.ids import new_id

HTTP_REQUESTS = Counter(
    "mobipay_http_requests_total", "HTTP requests", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "mobipay_http_request_seconds", "HTTP request latency", ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
_ROUTE_METRICS: dict[tuple[str, str, int], tuple[Any, Any]] = {}
USE_CASES = Counter("mobipay_use_case_total", "Use-case calls by outcome", ["use_case", "outcome"])


def _json(event: Any, **_: Any) -> str:
    """A log line as JSON, UTF-8 as is; never raises (a log call must not fail the work)."""
    try:
        return orjson.dumps(event, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except (TypeError, ValueError):  # e.g. an integer past 64 bits
        return json.dumps(event, default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO", json_logs: bool = True) -> None:
    """Route structlog (and stdlib logging) to stderr as JSON lines, or as text for a person
    (``MOBIPAY_LOG_JSON=false``; coloured only on a terminal). Every process (server,
    worker, CLI) calls this with the same setting, so they all log in one format."""
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(serializer=_json) if json_logs
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=level.upper(), stream=sys.stderr, format="%(message)s")
    for chatty in ("httpx", "httpcore"):  # one line per outgoing request: our adapters log what matters
        logging.getLogger(chatty).setLevel(logging.WARNING)


class RequestContextMiddleware:
    """Bind a request id to the logs, echo it, and record metrics per route. A plain ASGI
    middleware: Starlette's ``BaseHTTPMiddleware`` costs about a tenth of a cheap request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        request_id = (headers.get(b"x-request-id", b"").decode("latin-1") or new_id("req"))[:128]
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        start = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode("latin-1"))]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            elapsed = time.perf_counter() - start
            key = (scope["method"], route, status)
            if (metrics := _ROUTE_METRICS.get(key)) is None:  # labels() costs a lock and a lookup each time
                metrics = _ROUTE_METRICS[key] = (HTTP_REQUESTS.labels(key[0], route, str(status)),
                                                 HTTP_LATENCY.labels(key[0], route))
            metrics[0].inc()
            metrics[1].observe(elapsed)
            structlog.get_logger("mobipay.http").info(
                "http.request", method=scope["method"], path=scope["path"], status=status,
                ms=round(elapsed * 1000, 2))
