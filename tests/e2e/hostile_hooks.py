"""Schemathesis hooks for the hostile-input suite (loaded with SCHEMATHESIS_HOOKS by
tests/e2e/test_hostile_input.py): who signs each request, one check of our own, and a
count of what was sent.

- ``/v1/ledger/*`` carries the admin token; every other call the subscriber's access
  token, renewed with the rotating refresh token (or a PIN sign-in) when the fuzzer signed
  the session out or it expired.
- ``/v1/merchant/*`` takes flat signed parameters that the OpenAPI document does not
  describe, so the fuzzer sends them no body (they answer 400/401 problems).
- problem_json: every 4xx/5xx is application/problem+json with a ``code``, except where a
  foreign protocol decides the shape: the WeChat Pay v3 edge (``/v3/``) answers its own
  ``{"code", "message"}`` JSON, the Alipay gateway's browser methods an HTML page.
"""

from __future__ import annotations

import atexit
import json
import os
import threading
from typing import Any

import httpx
import schemathesis

BASE = os.environ["HOSTILE_BASE_URL"]
ADMIN = os.environ["HOSTILE_ADMIN_TOKEN"]
MSISDN, PIN = os.environ["HOSTILE_MSISDN"], os.environ["HOSTILE_PIN"]
COUNTS_FILE = os.environ["HOSTILE_COUNTS"]

_lock = threading.Lock()
_tokens = {"access": os.environ["HOSTILE_ACCESS"], "refresh": os.environ["HOSTILE_REFRESH"]}
counts = {"requests": 0, "5xx": 0, "non_problem_errors": 0, "relogins": 0}


def _save() -> None:
    with open(COUNTS_FILE, "w") as out:
        json.dump(counts, out)


atexit.register(_save)


def _sign_in_again() -> None:
    with _lock:
        counts["relogins"] += 1
        r = httpx.post(f"{BASE}/v1/sessions/refresh", json={"refresh_token": _tokens["refresh"]}, timeout=10)
        if r.status_code != 200:
            r = httpx.post(f"{BASE}/v1/sessions", json={"msisdn": MSISDN, "pin": PIN, "device_id": "fuzz"},
                           timeout=10)
        if r.status_code in (200, 201):
            _tokens["access"], _tokens["refresh"] = r.json()["access_token"], r.json()["refresh_token"]


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    path: str = case.operation.path
    headers = dict(case.headers or {})
    if path.startswith("/v1/ledger"):
        headers["Authorization"] = f"Bearer {ADMIN}"
    elif not path.startswith(("/v1/merchant/", "/v1/partner/", "/voice/")):
        headers["Authorization"] = f"Bearer {_tokens['access']}"
    case.headers = headers


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    with _lock:
        counts["requests"] += 1
        if response.status_code >= 500:
            counts["5xx"] += 1
        if response.status_code >= 400 and not _error_shape_ok(case.operation.path, response):
            counts["non_problem_errors"] += 1
        if counts["requests"] % 200 == 0:
            _save()
    if response.status_code == 401 and not case.operation.path.startswith(("/v1/ledger", "/v1/merchant/",
                                                                            "/v1/partner/")):
        _sign_in_again()


def _error_shape_ok(path: str, response: Any) -> bool:
    """Whether an error answer has its route's shape: problem+json with a ``code`` (or, on the
    foreign-protocol edges, that protocol's own: WeChat Pay's JSON with a ``code``, an HTML
    page for a browser sent to the Alipay gateway)."""
    kind = response.headers.get("content-type", [""])[0]
    if path.startswith("/gateway.do") and kind.startswith("text/html"):
        return True
    if not kind.startswith("application/problem+json") and not (path.startswith("/v3/") and
                                                                kind.startswith("application/json")):
        return False
    body = json.loads(response.content)
    return isinstance(body, dict) and isinstance(body.get("code"), str)


@schemathesis.check
def problem_json(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every error is RFC 9457 problem+json with the platform's stable code (the
    foreign-protocol edges: their own shape, see _error_shape_ok)."""
    if response.status_code < 400:
        return None
    kind = response.headers.get("content-type", [""])[0]
    assert _error_shape_ok(case.operation.path, response), f"{response.status_code} answered as {kind!r}: " \
        f"{response.content[:200]!r}"
    return True
