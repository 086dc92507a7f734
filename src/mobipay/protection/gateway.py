"""The ``WarrantyService`` port: the maker's after-sales service, asked whether a phone's
damage is repaired free under the three guarantees (三包). A damage claim is for damage the
maker does not cover; the answer is kept on the claim for the reviewer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Protocol


@dataclass(frozen=True, slots=True)
class WarrantyStatus:
    """``covered``: the maker repairs this damage free (within 三包 and not excluded by
    accidental damage); ``until``: the end of the phone's 三包 period, when known."""

    covered: bool
    until: date | None
    reason: str = ""


class WarrantyService(Protocol):
    async def status(self, imei: str, damage: str) -> WarrantyStatus:
        """The phone's 三包 status for this damage; ``WARRANTY_SERVICE_UNAVAILABLE`` without
        a trustworthy answer (the caller keeps the claim with the status unknown)."""
        ...

    async def close(self) -> None: ...
