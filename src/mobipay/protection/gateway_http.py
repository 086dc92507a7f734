"""``HttpWarrantyService``: the maker's warranty (三包) enquiry over the signed partner
protocol (``orders/signed_http.py``)."""

from __future__ import annotations

import json
from datetime import date

import httpx

from mobipay.orders.signed_http import PartnerUnavailable, SignedClient
from mobipay.protection.errors import WarrantyUnavailable
from mobipay.protection.gateway import WarrantyStatus


class HttpWarrantyService:
    def __init__(self, base_url: str, secret: bytes, *, timeout_s: float = 5.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.http = SignedClient("maker_warranty", base_url, secret, timeout_s=timeout_s, transport=transport)

    async def close(self) -> None:
        await self.http.close()

    async def status(self, imei: str, damage: str) -> WarrantyStatus:
        try:
            body = await self.http.fetch("POST", "/v1/warranty/status", {"imei": imei, "damage": damage})
        except PartnerUnavailable as exc:  # no trustworthy answer: "unknown", never a guess
            raise WarrantyUnavailable(exc.detail) from exc
        if body is None:
            return WarrantyStatus(False, None, "unknown_imei")
        d = json.loads(body)
        until = date.fromisoformat(d["until"]) if d.get("until") else None
        return WarrantyStatus(bool(d["covered"]), until, d.get("reason", ""))
