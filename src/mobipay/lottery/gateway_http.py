"""``HttpLotteryCentre``: the lottery centre's signed protocol (``orders/signed_http.py``)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from mobipay.lottery.gateway import Draw
from mobipay.orders.model import PartnerAnswer
from mobipay.orders.service import StatementLine
from mobipay.orders.signed_http import SignedClient


class HttpLotteryCentre:
    def __init__(self, base_url: str, secret: bytes, *, timeout_s: float = 5.0) -> None:
        self.http = SignedClient("lottery_centre", base_url, secret, timeout_s=timeout_s)

    async def close(self) -> None:
        await self.http.close()

    async def sell(self, order_id: str, amount: int, ticket: dict[str, Any]) -> PartnerAnswer:
        return await self.http.order("POST", "/v1/tickets", order_id, {"order_id": order_id, "amount": amount,
                                                                        **ticket})

    async def query(self, order_id: str) -> PartnerAnswer:
        return await self.http.order("GET", f"/v1/tickets/{order_id}", order_id)

    async def draw(self, game: str, issue: str) -> Draw | None:
        body = await self.http.fetch("GET", f"/v1/draws/{game}/{issue}")
        if body is None:
            return None
        d = json.loads(body)
        return Draw(game, issue, d["numbers"], {int(k): int(v) for k, v in d["prizes"].items()})

    async def statement(self, day: date) -> list[StatementLine]:
        return await self.http.statement(f"/v1/statements/{day.isoformat()}")
