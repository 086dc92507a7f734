"""The logistics partner's client (real HTTP; ``simulators/logistics.py`` plays the carrier here).

``POST /v1/shipments`` ``{order_id, county, address}`` → ``{tracking_no}`` (the order id is
the carrier's idempotency key: asking twice gives the same shipment); ``GET
/v1/shipments/{tracking_no}/events`` → ``{events: [{status, place, at}]}`` in order. Requests
carry ``X-Logistics-Key``. The carrier not answering is ``LOGISTICS_UNAVAILABLE``: nothing
changes, the order ships (or is tracked) on the next try.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import httpx

from mobipay.kernel.clock import as_utc
from mobipay.kernel.errors import MobipayError


class LogisticsUnavailable(MobipayError):
    code = "LOGISTICS_UNAVAILABLE"
    status = 503
    title = "The logistics partner did not answer: try again in a moment"


@dataclass(frozen=True, slots=True)
class CarrierEvent:
    status: str  # model.SHIPMENT_STEPS
    place: str
    at: datetime


class HttpLogistics:
    def __init__(self, base_url: str, key: str, *, timeout_s: float = 5.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.client = httpx.AsyncClient(base_url=base_url, timeout=timeout_s, transport=transport,
                                        headers={"X-Logistics-Key": key})

    async def close(self) -> None:
        await self.client.aclose()

    async def create(self, order_id: str, county: str, address: str) -> str:
        data = await self._call("POST", "/v1/shipments", {"order_id": order_id, "county": county, "address": address})
        return str(data["tracking_no"])

    async def events(self, tracking_no: str) -> list[CarrierEvent]:
        data = await self._call("GET", f"/v1/shipments/{tracking_no}/events", None)
        events: list[dict[str, str]] = data["events"]  # type: ignore[assignment]
        return [CarrierEvent(str(e["status"]), str(e["place"]), as_utc(e["at"])) for e in events]

    async def _call(self, method: str, path: str, body: dict[str, str] | None) -> dict[str, object]:
        try:
            response = await self.client.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise LogisticsUnavailable(f"{type(exc).__name__} calling {path}") from exc
        if response.status_code != 200:
            raise LogisticsUnavailable(f"the carrier answered HTTP {response.status_code} to {path}")
        data: dict[str, object] = response.json()
        return data
