"""``HttpLocationPlatform``: the operator's location platform (位置服务) over the signed partner
protocol (``orders/signed_http.py``): ``POST /v1/location/track`` ``{msisdn, from, to,
consent_ref}`` answers ``{points: [{at, lat, lon, accuracy_m}]}``, 404 when the platform knows
no positions of that phone in the window."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx

from mobipay.kernel.clock import as_utc
from mobipay.orders.signed_http import PartnerUnavailable, SignedClient
from mobipay.tourism.errors import LocationUnavailable
from mobipay.tourism.model import Fix


class HttpLocationPlatform:
    def __init__(self, base_url: str, secret: bytes, *, timeout_s: float = 10.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.http = SignedClient("location_platform", base_url, secret, timeout_s=timeout_s, transport=transport)

    async def close(self) -> None:
        await self.http.close()

    async def track(self, msisdn: str, start: datetime, end: datetime, *, consent_ref: str) -> list[Fix]:
        try:
            body = await self.http.fetch("POST", "/v1/location/track", {
                "msisdn": msisdn, "from": start.isoformat(), "to": end.isoformat(), "consent_ref": consent_ref})
        except PartnerUnavailable as exc:
            raise LocationUnavailable(exc.detail) from exc
        if body is None:
            return []
        try:
            points = json.loads(body)["points"]
            return [Fix(as_utc(p["at"]).astimezone(UTC), float(p["lat"]), float(p["lon"]),
                        float(p.get("accuracy_m", 20.0)))
                    for p in points]
        except (ValueError, KeyError, TypeError) as exc:
            raise LocationUnavailable("the location platform's answer could not be read") from exc
