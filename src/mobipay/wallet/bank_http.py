"""``HttpBankGateway``: the bank adapter, over HTTPS with HMAC-signed messages
(``platform/signed_http.py``, docs/bank-protocol.md). A reply that is late, unsigned,
wrongly signed or a 5xx is *unknown*: the caller keeps the order pending rather than guess.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from typing import Any

import structlog

from mobipay.kernel.orders import PartnerAnswer, PartnerStatus
from mobipay.platform.partner_orders import StatementLine
from mobipay.platform.signed_http import NO_ANSWER, SignedClient
from mobipay.wallet import errors as E
from mobipay.wallet.bank import CardCheck

log = structlog.get_logger(__name__)


class HttpBankGateway:
    def __init__(self, base_url: str, secret: bytes, *, timeout_s: float = 5.0) -> None:
        self.http = SignedClient(base_url, secret, timeout_s=timeout_s)

    async def close(self) -> None:
        await self.http.close()

    async def _order(self, method: str, path: str, order_id: str, payload: dict[str, Any] | None = None
                     ) -> PartnerAnswer:
        try:
            status, body = await self.http.call(method, path, payload)
        except NO_ANSWER as exc:
            log.warning("bank.no_answer", path=path, order_id=order_id, error=f"{type(exc).__name__}: {exc}")
            return PartnerAnswer(order_id, PartnerStatus.UNKNOWN, reason=type(exc).__name__)
        if status == 404:
            return PartnerAnswer(order_id, PartnerStatus.NOT_FOUND)
        if status != 200:
            log.warning("bank.error_reply", path=path, order_id=order_id, status=status)
            return PartnerAnswer(order_id, PartnerStatus.UNKNOWN, reason=f"http_{status}")
        data = json.loads(body)
        return PartnerAnswer(order_id, PartnerStatus(data["status"]), data.get("ref", ""), data.get("reason", ""))

    async def verify_card(self, card_number: str, name: str, id_number: str, phone: str) -> CardCheck:
        payload = {"card_number": card_number, "name": name, "id_number": id_number, "phone": phone}
        try:
            status, body = await self.http.call("POST", "/v1/cards/verify", payload)
        except NO_ANSWER as exc:
            raise E.BankUnavailable(f"the bank did not answer the card check ({type(exc).__name__})") from exc
        if status != 200:
            raise E.BankUnavailable(f"the bank refused the card check with HTTP {status}")
        data = json.loads(body)
        return CardCheck(data["result"] == "verified", data.get("token", ""), data.get("reason", ""))

    async def debit(self, order_id: str, token: str, amount: int) -> PartnerAnswer:
        return await self._order("POST", "/v1/debits", order_id, {"order_id": order_id, "token": token,
                                                                   "amount": amount})

    async def credit(self, order_id: str, token: str, amount: int) -> PartnerAnswer:
        return await self._order("POST", "/v1/credits", order_id, {"order_id": order_id, "token": token,
                                                                    "amount": amount})

    async def query(self, order_id: str) -> PartnerAnswer:
        return await self._order("GET", f"/v1/orders/{order_id}", order_id)

    async def statement(self, day: date) -> list[StatementLine]:
        try:
            status, body = await self.http.call("GET", f"/v1/statements/{day.isoformat()}")
        except NO_ANSWER as exc:
            raise E.BankUnavailable(f"the bank's file for {day} could not be fetched ({type(exc).__name__})") from exc
        if status != 200:
            raise E.BankUnavailable(f"the bank refused the file for {day} with HTTP {status}")
        return parse_statement(body.decode())


def parse_statement(text: str) -> list[StatementLine]:
    """The bank's daily CSV (order_id, ref, type, amount_fen, status, completed_at)."""
    return [StatementLine(r["order_id"], r["ref"], int(r["amount_fen"]), PartnerStatus(r["status"]))
            for r in csv.DictReader(io.StringIO(text))]
