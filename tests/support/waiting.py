"""Waiting on a condition with a deadline, never on a fixed time.

A test that sleeps "0.4 s" for a simulator or a worker fails on a loaded machine; one that
polls the condition passes as soon as it holds and fails with a message after the
deadline (generous: only a real hang reaches it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import httpx

T = TypeVar("T")


def wait_for(check: Callable[[], T], deadline_s: float, what: str, *, every_s: float = 0.1) -> T:
    """Poll ``check`` until it returns something truthy; TimeoutError naming ``what`` after the deadline."""
    deadline = time.monotonic() + deadline_s
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {deadline_s:.0f} s (last: {found!r})")
        time.sleep(every_s)



def server_ready(base: str, timeout_s: float = 2.0) -> bool:
    """Whether ``mobipay serve`` at ``base`` answers its readiness check (database included)."""
    try:
        return httpx.get(f"{base}/readyz", timeout=timeout_s).status_code == 200
    except httpx.HTTPError:
        return False
