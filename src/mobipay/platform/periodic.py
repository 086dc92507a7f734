"""Background jobs that run again and again until told to stop (the worker's loops)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

from mobipay.platform.db import is_unavailable

log = structlog.get_logger(__name__)


async def every(interval_s: float, stop: asyncio.Event, job: Callable[[], Awaitable[object]], name: str) -> None:
    """Run ``job`` now and every ``interval_s`` until ``stop`` is set; a failing round is
    logged and the next one tries again (the jobs are idempotent)."""
    while not stop.is_set():
        try:
            await job()
        except Exception as exc:  # keep going; the next round retries
            if is_unavailable(exc):  # the database restarting: no traceback every round
                log.warning("periodic.database_unavailable", job=name, error=type(exc).__name__)
            else:
                log.exception("periodic.job_failed", job=name)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_s)
