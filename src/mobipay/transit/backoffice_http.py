"""The transit operator's back office over signed HTTP (the partners' scheme,
orders/signed_http.py): its own count of a day's taps and fares, which the clearing is
reconciled against, and the taps its validators sent it (a validator reports each tap to
its operator as well as to the platform).

- ``GET /v1/operators/{operator_id}/days/{YYYY-MM-DD}`` answers ``{taps, fares}`` (fares may
  be null: an operator that does not price account-based taps counts them only).
"""

from __future__ import annotations

import json
from datetime import date

import httpx

from mobipay.orders.signed_http import SignedClient
from mobipay.transit import errors


class HttpOperatorBackOffice:
    def __init__(self, base_url: str, secret: bytes, *, timeout_s: float = 5.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.http = SignedClient("transit_operator", base_url, secret, timeout_s=timeout_s, transport=transport)

    async def report_taps(self, operator_id: str, taps: list[dict[str, str]]) -> dict[str, int]:
        """Send the operator the validators' copy of taps (what a validator does; the
        benchmark and tests stand in for the validators)."""
        status, body = await self.http.call("POST", "/v1/taps", {"operator_id": operator_id, "taps": taps})
        if status != 200:
            raise errors.TransitInvalid(f"the operator's back office answered HTTP {status}")
        answer: dict[str, int] = json.loads(body)
        return answer

    async def close(self) -> None:
        await self.http.close()

    async def day_count(self, operator_id: str, day: date) -> tuple[int, int]:
        """(taps, fares) as the operator counts them; fares -1 when it states none."""
        status, body = await self.http.call("GET", f"/v1/operators/{operator_id}/days/{day.isoformat()}")
        if status != 200:
            raise errors.TransitInvalid(f"the operator's back office answered HTTP {status}")
        data = json.loads(body)
        fares = data.get("fares")
        return int(data["taps"]), -1 if fares is None else int(fares)
