"""Product rules without I/O: the operator's catalogue and insurance products as data,
what may be bought by whom, and when a policy may still be cancelled for a refund."""

from __future__ import annotations

import csv
import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from mobipay.products import errors


class Family(enum.StrEnum):
    MUSIC = "music"  # wireless music
    INFO = "info"  # 12580 information services
    FETION = "fetion"  # Fetion membership


@dataclass(frozen=True, slots=True)
class OperatorProduct:
    code: str
    name: str
    family: Family
    price: int
    period: str  # monthly | once
    description: str


@dataclass(frozen=True, slots=True)
class InsuranceProduct:
    code: str
    name: str
    insurer: str
    kind: str  # accident | travel
    premium: int
    coverage: int
    term_days: int
    cooling_off_days: int

    def cancellable_until(self, bought_at: datetime, starts_at: datetime) -> datetime:
        """Until when a policy may be cancelled for a full refund: the cooling-off period
        after purchase, or (without one) until the cover starts."""
        if self.cooling_off_days:
            return bought_at + timedelta(days=self.cooling_off_days)
        return starts_at

    def check_cancellable(self, bought_at: datetime, starts_at: datetime, now: datetime) -> None:
        until = self.cancellable_until(bought_at, starts_at)
        if now >= until:
            raise errors.CoolingOffOver(f"{self.name} could be cancelled until {until:%Y-%m-%d %H:%M} UTC",
                                        field="policy_id")


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(line for line in text.splitlines() if line.strip() and not line.startswith("#")))


def parse_operator_products(text: str) -> dict[str, OperatorProduct]:
    out = {}
    for r in _rows(text):
        p = OperatorProduct(r["code"], r["name"], Family(r["family"]), int(r["price_fen"]), r["period"],
                            r["description"])
        if p.price <= 0 or p.period not in ("monthly", "once"):
            raise ValueError(f"bad operator product {p.code!r}")
        out[p.code] = p
    return out


def parse_insurance_products(text: str) -> dict[str, InsuranceProduct]:
    out = {}
    for r in _rows(text):
        p = InsuranceProduct(r["code"], r["name"], r["insurer"], r["kind"], int(r["premium_fen"]),
                             int(r["coverage_fen"]), int(r["term_days"]), int(r["cooling_off_days"]))
        if p.premium <= 0 or p.term_days <= 0 or p.kind not in ("accident", "travel"):
            raise ValueError(f"bad insurance product {p.code!r}")
        out[p.code] = p
    return out
