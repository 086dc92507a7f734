"""The port to the operator's location platform: a phone's positions over a time window,
asked only with the consent recorded in a work order (``location_http.py`` is the adapter)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from mobipay.tourism.model import Fix


class LocationPlatform(Protocol):
    async def track(self, msisdn: str, start: datetime, end: datetime, *, consent_ref: str) -> list[Fix]:
        """The phone's fixes from ``start`` to ``end`` (empty: none); ``LOCATION_UNAVAILABLE``
        when the platform gives no trustworthy answer."""
        ...

    async def close(self) -> None: ...
