"""Structured JSON logs with a correlation id per request, and Prometheus metrics.

The request id comes from ``X-Request-Id`` (or is made up), is bound into structlog's
context variables for the request, and is echoed on the response, so one id follows a
request through every log line it causes.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Awaitable, Callable

import structlog
from prometheus_client import Counter, Histogram
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import Response

from mobipay.kernel.ids import new_id

HTTP_REQUESTS = Counter(
    "mobipay_http_requests_total", "HTTP requests", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "mobipay_http_request_seconds", "HTTP request latency", ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
USE_CASES = Counter("mobipay_use_case_total", "Use-case calls by outcome", ["use_case", "outcome"])


def configure_logging(level: str = "INFO", json_logs: bool = True) -> None:
    """Route structlog (and stdlib logging) to stderr as JSON lines (or console for humans)."""
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False) if json_logs
        else structlog.dev.ConsoleRenderer()
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


class RequestContextMiddleware(BaseHTTPMiddleware):
    """Bind a request id to the logs, echo it, and record metrics per route."""

    async def dispatch(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        request_id = request.headers.get("x-request-id") or new_id("req")
        request_id = request_id[:128]
        request.state.request_id = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        start = time.perf_counter()
        response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", "unmatched")
        elapsed = time.perf_counter() - start
        HTTP_REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        HTTP_LATENCY.labels(request.method, route).observe(elapsed)
        response.headers["X-Request-Id"] = request_id
        structlog.get_logger("mobipay.http").info(
            "http.request", method=request.method, path=request.url.path,
            status=response.status_code, ms=round(elapsed * 1000, 2),
        )
        return response
