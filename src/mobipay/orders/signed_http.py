"""Signed HTTP to partners (bank, operator billing, top-up aggregator, billers).

One scheme for every partner we run simulators of (docs/bank-protocol.md): each request
carries ``X-Bank-Timestamp``, ``X-Bank-Nonce`` and ``X-Bank-Signature`` = hex
HMAC-SHA256 of ``ts \\n nonce \\n METHOD \\n path \\n body``; each reply is signed over
``ts \\n our nonce \\n body``, which binds it to our request. A reply that does not
verify is no reply at all: :class:`Unverified` is raised, like a timeout, and callers
treat the outcome as unknown. (A partner with another scheme gets its own client here.)
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import secrets
import time
from typing import Any

import httpx
import structlog

from mobipay.kernel.errors import ServiceUnavailable
from mobipay.orders.model import PartnerAnswer, PartnerStatus
from mobipay.orders.service import StatementLine

log = structlog.get_logger(__name__)


class Unverified(Exception):
    """The partner's reply is unsigned or wrongly signed (tampered, or not from them)."""


#: What a call can raise instead of a trustworthy reply: treat it as "no answer".
NO_ANSWER = (httpx.HTTPError, Unverified)


def signature(secret: bytes, *parts: str | bytes) -> str:
    """Hex HMAC-SHA256 of the parts joined by newlines."""
    message = b"\n".join(p.encode() if isinstance(p, str) else p for p in parts)
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


class SignedClient:
    def __init__(self, name: str, base_url: str, secret: bytes, *, timeout_s: float = 5.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.name = name
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
        given = response.headers.get("x-bank-signature", "").encode("utf-8", "replace")
        if not hmac.compare_digest(expected.encode(), given):  # bytes: a non-ASCII header is just "unsigned"
            raise Unverified(f"reply to {path} is not signed by the partner (HTTP {response.status_code})")
        return response.status_code, response.content

    async def order(self, method: str, path: str, order_id: str, payload: dict[str, Any] | None = None
                    ) -> PartnerAnswer:
        """A money order or its status query: the partner's answer, ``NOT_FOUND`` on 404, and
        ``UNKNOWN`` for anything untrustworthy (no reply, unsigned, 5xx) — never a guess."""
        try:
            status, body = await self.call(method, path, payload)
        except NO_ANSWER as exc:
            log.warning("partner.no_answer", partner=self.name, path=path, order_id=order_id,
                        error=f"{type(exc).__name__}: {exc}")
            return PartnerAnswer(order_id, PartnerStatus.UNKNOWN, reason=type(exc).__name__)
        if status == 404:
            return PartnerAnswer(order_id, PartnerStatus.NOT_FOUND)
        if status != 200:
            log.warning("partner.error_reply", partner=self.name, path=path, order_id=order_id, status=status)
            return PartnerAnswer(order_id, PartnerStatus.UNKNOWN, reason=f"http_{status}")
        data = json.loads(body)
        return PartnerAnswer(order_id, PartnerStatus(data["status"]), data.get("ref", ""), data.get("reason", ""))

    async def fetch(self, method: str, path: str, payload: dict[str, Any] | None = None) -> bytes | None:
        """A read that must be answered (a bill, a draw, a daily file): the body, None on
        404 (there is none), ``PARTNER_UNAVAILABLE`` for no trustworthy answer."""
        try:
            status, body = await self.call(method, path, payload)
        except NO_ANSWER as exc:
            raise PartnerUnavailable(f"{self.name}: {path} could not be fetched ({type(exc).__name__}); "
                                     "try again in a moment") from exc
        if status == 404:
            return None
        if status != 200:
            raise PartnerUnavailable(f"{self.name} refused {path} with HTTP {status}")
        return body

    async def statement(self, path: str) -> list[StatementLine]:
        """A daily file (CSV: order_id, ref, type, amount_fen, status, completed_at)."""
        body = await self.fetch("GET", path)
        if body is None:
            raise PartnerUnavailable(f"{self.name} has no file at {path}")
        return parse_statement(body.decode())


class PartnerUnavailable(ServiceUnavailable):
    code = "PARTNER_UNAVAILABLE"
    title = "A partner did not answer; nothing was changed, try again later"


def parse_statement(text: str) -> list[StatementLine]:
    """A partner's daily CSV (order_id, ref, type, amount_fen, status, completed_at)."""
    return [StatementLine(r["order_id"], r["ref"], int(r["amount_fen"]), PartnerStatus(r["status"]))
            for r in csv.DictReader(io.StringIO(text))]
