"""``HttpBankGateway``: the bank adapter, over HTTPS with HMAC-signed messages
(``orders/signed_http.py``, docs/bank-protocol.md). A reply that is late, unsigned,
wrongly signed or a 5xx is *unknown*: the caller keeps the order pending rather than guess.
"""

from __future__ import annotations

import json
from datetime import date

from mobipay.orders.model import PartnerAnswer
from mobipay.orders.service import StatementLine
from mobipay.orders.signed_http import NO_ANSWER, SignedClient
from mobipay.wallet import errors
from mobipay.wallet.gateway import CardCheck


class HttpBankGateway:
    def __init__(self, base_url: str, secret: bytes, *, timeout_s: float = 5.0) -> None:
        self.http = SignedClient("bank", base_url, secret, timeout_s=timeout_s)

    async def close(self) -> None:
        await self.http.close()

    async def verify_card(self, card_number: str, name: str, id_number: str, phone: str) -> CardCheck:
        payload = {"card_number": card_number, "name": name, "id_number": id_number, "phone": phone}
        try:
            status, body = await self.http.call("POST", "/v1/cards/verify", payload)
        except NO_ANSWER as exc:
            raise errors.BankUnavailable(f"the bank did not answer the card check ({type(exc).__name__})") from exc
        if status != 200:
            raise errors.BankUnavailable(f"the bank refused the card check with HTTP {status}")
        data = json.loads(body)
        return CardCheck(data["result"] == "verified", data.get("token", ""), data.get("reason", ""))

    async def debit(self, order_id: str, token: str, amount: int) -> PartnerAnswer:
        return await self.http.order("POST", "/v1/debits", order_id, {"order_id": order_id, "token": token,
                                                                       "amount": amount})

    async def credit(self, order_id: str, token: str, amount: int) -> PartnerAnswer:
        return await self.http.order("POST", "/v1/credits", order_id, {"order_id": order_id, "token": token,
                                                                        "amount": amount})

    async def query(self, order_id: str) -> PartnerAnswer:
        return await self.http.order("GET", f"/v1/orders/{order_id}", order_id)

    async def statement(self, day: date) -> list[StatementLine]:
        return await self.http.statement(f"/v1/statements/{day.isoformat()}")
