"""Signed HTTP to partners (bank, operator billing, top-up aggregator, billers).

One scheme for every partner we run simulators of (docs/bank-protocol.md): each request
carries ``X-Bank-Timestamp``, ``X-Bank-Nonce`` and ``X-Bank-Signature`` = hex
HMAC-SHA256 of ``ts \\n nonce \\n METHOD \\n path \\n body``; each reply is signed over
``ts \\n our nonce \\n body``, which binds it to our request. A reply that does not
verify is no reply at all: :class:`Unverified` is raised, like a timeout, and callers
treat the outcome as unknown. (A partner with another scheme gets its own client here.)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from typing import Any

import httpx


class Unverified(Exception):
    """The partner's reply is unsigned or wrongly signed (tampered, or not from them)."""


#: What a call can raise instead of a trustworthy reply: treat it as "no answer".
NO_ANSWER = (httpx.HTTPError, Unverified)


def signature(secret: bytes, *parts: str | bytes) -> str:
    """Hex HMAC-SHA256 of the parts joined by newlines."""
    message = b"\n".join(p.encode() if isinstance(p, str) else p for p in parts)
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


class SignedClient:
    def __init__(self, base_url: str, secret: bytes, *, timeout_s: float = 5.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.secret = secret
        self.client = httpx.AsyncClient(base_url=base_url, timeout=timeout_s, transport=transport)

    async def close(self) -> None:
        await self.client.aclose()

    async def call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> tuple[int, bytes]:
        """Send a signed request; the status and body of a reply whose signature verifies.
        Raises ``httpx.HTTPError`` or :class:`Unverified` when there is no trustworthy reply."""
        body = json.dumps(payload, ensure_ascii=False).encode() if payload is not None else b""
        ts, nonce = str(int(time.time())), secrets.token_hex(16)
        headers = {"X-Bank-Timestamp": ts, "X-Bank-Nonce": nonce, "Content-Type": "application/json",
                   "X-Bank-Signature": signature(self.secret, ts, nonce, method, path, body)}
        response = await self.client.request(method, path, content=body, headers=headers)
        expected = signature(self.secret, response.headers.get("x-bank-timestamp", ""), nonce, response.content)
        if not hmac.compare_digest(expected, response.headers.get("x-bank-signature", "")):
            raise Unverified(f"reply to {path} is not signed by the partner (HTTP {response.status_code})")
        return response.status_code, response.content
