"""Driving the partners' SIMULATORS from a test: behaviour, and holds a test releases.

A partner that "finishes later" or "answers too late" is held (``settle_after_s`` or
``hang_s`` = ``None``) until the test calls :func:`release`: the test decides when the
partner acts, so a loaded machine cannot make the partner act before the test looks.
"""

from __future__ import annotations

from typing import Any

import httpx


def behave(controls: str, **behaviour: Any) -> None:
    """Set how the partner behaves (``controls``: its ``…/sim`` or ``…/sim/billers/{code}``)."""
    httpx.put(f"{controls}/behaviour", json=behaviour).raise_for_status()


def release(controls: str) -> int:
    """Finish the held orders and send the held-back replies; how many orders were held."""
    response = httpx.post(f"{controls}/release")
    response.raise_for_status()
    return int(response.json()["released"])
