"""``HttpProviderGateway``: the signed provider protocol (``orders/signed_http.py``), for
the operator's product platform and insurers alike (one instance each)."""

from __future__ import annotations

from datetime import date
from typing import Any

from mobipay.orders.model import PartnerAnswer
from mobipay.orders.service import StatementLine
from mobipay.orders.signed_http import SignedClient


class HttpProviderGateway:
    def __init__(self, name: str, base_url: str, secret: bytes, *, timeout_s: float = 5.0) -> None:
        self.http = SignedClient(name, base_url, secret, timeout_s=timeout_s)

    async def close(self) -> None:
        await self.http.close()

    async def order(self, order_id: str, action: str, amount: int, details: dict[str, Any]) -> PartnerAnswer:
        return await self.http.order("POST", "/v1/orders", order_id,
                                     {"order_id": order_id, "action": action, "amount": amount, **details})

    async def query(self, order_id: str) -> PartnerAnswer:
        return await self.http.order("GET", f"/v1/orders/{order_id}", order_id)

    async def statement(self, day: date) -> list[StatementLine]:
        return await self.http.statement(f"/v1/statements/{day.isoformat()}")
