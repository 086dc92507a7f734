"""``HttpBankGateway``: the bank adapter, over HTTPS with HMAC-signed messages.

Protocol (docs/bank-protocol.md): each request carries ``X-Bank-Timestamp``,
``X-Bank-Nonce`` and ``X-Bank-Signature`` = hex HMAC-SHA256 of ``ts \\n nonce \\n METHOD
\\n path \\n body``; each reply is signed over ``ts \\n our nonce \\n body``, which binds
it to our request. A reply that is late, unsigned, wrongly signed or a 5xx is *unknown*:
the caller keeps the order pending rather than guess.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import secrets
import time
from datetime import date
from typing import Any

import httpx
import structlog

from mobipay.wallet import errors as E
from mobipay.wallet.bank import BankAnswer, BankStatus, CardCheck, StatementLine

log = structlog.get_logger(__name__)


class HttpBankGateway:
    def __init__(self, base_url: str, secret: bytes, *, timeout_s: float = 5.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.secret = secret
        self.client = httpx.AsyncClient(base_url=base_url, timeout=timeout_s, transport=transport)

    async def close(self) -> None:
        await self.client.aclose()

    async def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> tuple[int, bytes]:
        """Send a signed request; the status and body of a reply whose signature verifies.
        Raises ``httpx.HTTPError`` or ``ValueError`` when there is no trustworthy reply."""
        body = json.dumps(payload, ensure_ascii=False).encode() if payload is not None else b""
        ts, nonce = str(int(time.time())), secrets.token_hex(16)
        signature = hmac.new(self.secret, f"{ts}\n{nonce}\n{method}\n{path}\n".encode() + body,
                             hashlib.sha256).hexdigest()
        headers = {"X-Bank-Timestamp": ts, "X-Bank-Nonce": nonce, "X-Bank-Signature": signature,
                   "Content-Type": "application/json"}
        response = await self.client.request(method, path, content=body, headers=headers)
        reply_ts = response.headers.get("x-bank-timestamp", "")
        expected = hmac.new(self.secret, f"{reply_ts}\n{nonce}\n".encode() + response.content,
                            hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, response.headers.get("x-bank-signature", "")):
            raise ValueError(f"bank reply to {path} is not signed by the bank (HTTP {response.status_code})")
        return response.status_code, response.content

    async def _order(self, method: str, path: str, order_id: str, payload: dict[str, Any] | None = None
                     ) -> BankAnswer:
        try:
            status, body = await self._call(method, path, payload)
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("bank.no_answer", path=path, order_id=order_id, error=f"{type(exc).__name__}: {exc}")
            return BankAnswer(order_id, BankStatus.UNKNOWN, reason=type(exc).__name__)
        if status == 404:
            return BankAnswer(order_id, BankStatus.NOT_FOUND)
        if status != 200:
            log.warning("bank.error_reply", path=path, order_id=order_id, status=status)
            return BankAnswer(order_id, BankStatus.UNKNOWN, reason=f"http_{status}")
        data = json.loads(body)
        return BankAnswer(order_id, BankStatus(data["status"]), data.get("bank_ref", ""), data.get("reason", ""))

    async def verify_card(self, card_number: str, name: str, id_number: str, phone: str) -> CardCheck:
        payload = {"card_number": card_number, "name": name, "id_number": id_number, "phone": phone}
        try:
            status, body = await self._call("POST", "/v1/cards/verify", payload)
        except (httpx.HTTPError, ValueError) as exc:
            raise E.BankUnavailable(f"the bank did not answer the card check ({type(exc).__name__})") from exc
        if status != 200:
            raise E.BankUnavailable(f"the bank refused the card check with HTTP {status}")
        data = json.loads(body)
        return CardCheck(data["result"] == "verified", data.get("token", ""), data.get("reason", ""))

    async def debit(self, order_id: str, token: str, amount: int) -> BankAnswer:
        return await self._order("POST", "/v1/debits", order_id, {"order_id": order_id, "token": token,
                                                                   "amount": amount})

    async def credit(self, order_id: str, token: str, amount: int) -> BankAnswer:
        return await self._order("POST", "/v1/credits", order_id, {"order_id": order_id, "token": token,
                                                                    "amount": amount})

    async def query(self, order_id: str) -> BankAnswer:
        return await self._order("GET", f"/v1/orders/{order_id}", order_id)

    async def statement(self, day: date) -> list[StatementLine]:
        try:
            status, body = await self._call("GET", f"/v1/statements/{day.isoformat()}")
        except (httpx.HTTPError, ValueError) as exc:
            raise E.BankUnavailable(f"the bank's file for {day} could not be fetched ({type(exc).__name__})") from exc
        if status != 200:
            raise E.BankUnavailable(f"the bank refused the file for {day} with HTTP {status}")
        return parse_statement(body.decode())


def parse_statement(text: str) -> list[StatementLine]:
    """The bank's daily CSV (order_id, bank_ref, type, amount_fen, status, completed_at)."""
    return [StatementLine(r["order_id"], r["bank_ref"], r["type"], int(r["amount_fen"]), BankStatus(r["status"]))
            for r in csv.DictReader(io.StringIO(text))]
