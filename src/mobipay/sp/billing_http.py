"""``HttpPhoneBilling``: the phone-bill adapter over signed HTTP (``orders/signed_http.py``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import structlog

from mobipay.orders.signed_http import NO_ANSWER, SignedClient
from mobipay.sp.billing import BillLine, LineAnswer

log = structlog.get_logger(__name__)


class HttpPhoneBilling:
    def __init__(self, base_url: str, secret: bytes, *, timeout_s: float = 10.0) -> None:
        self.http = SignedClient("sp_billing", base_url, secret, timeout_s=timeout_s)

    async def close(self) -> None:
        await self.http.close()

    async def charge(self, lines: Sequence[BillLine]) -> list[LineAnswer] | None:
        data = await self._post("/v1/bill-lines", {"lines": [  # by hand: asdict() is slow on a 5,000-line chunk
            {"id": x.id, "msisdn": x.msisdn, "amount": x.amount, "sp_code": x.sp_code, "service": x.service}
            for x in lines]})
        if data is None:
            return None
        return [LineAnswer(a["id"], a["status"] == "charged", a.get("reason", "")) for a in data["lines"]]

    async def refund(self, line: BillLine) -> LineAnswer | None:
        data = await self._post("/v1/bill-refunds", asdict(line))
        if data is None:
            return None
        return LineAnswer(data["id"], data["status"] == "charged", data.get("reason", ""))

    async def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        try:
            status, body = await self.http.call("POST", path, payload)
        except NO_ANSWER as exc:
            log.warning("sp_billing.no_answer", path=path, error=f"{type(exc).__name__}: {exc}")
            return None
        if status != 200:
            log.warning("sp_billing.error_reply", path=path, status=status)
            return None
        data: dict[str, Any] = json.loads(body)
        return data
