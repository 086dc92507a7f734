"""A segment's criteria, pure: which subscribers a saved query selects, checked once when it
is saved so a draw, a red-envelope campaign or a bulk SMS never runs on a query that cannot
mean anything (an unknown brand, a tier that does not exist).

Every criterion narrows (AND); a list criterion matches any of its values (OR); an empty one
is no restriction. ``active`` is about paying (a posted debit of the wallet other than a
cash-out), in Shanghai days, as the KPI definitions count an active subscriber.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mobipay.campaigns import errors
from mobipay.kernel.clock import SHANGHAI

BRANDS = ("gotone", "mzone", "easyown")  # 全球通, 动感地带, 神州行
TIERS = (1, 2, 3)
#: paid at least once: this calendar month (Shanghai), or in the last 7 or 30 Shanghai days
ACTIVITY = ("this_month", "last_7_days", "last_30_days")
NOT_PAYMENTS = ("cash_out", "close_payout")  # debits of a wallet that are not paying someone
_KEYS = {"brands", "cities", "tiers", "min_level", "alliance", "active"}


@dataclass(frozen=True, slots=True)
class Criteria:
    brands: tuple[str, ...] = ()
    cities: tuple[str, ...] = ()  # the number's home city (归属地), as the subscriber records name it
    tiers: tuple[int, ...] = ()
    min_level: int = 0  # the CRM's VIP level within the brand
    alliance: str = ""  # a merchant alliance programme (code or id): its rules admit the brand and level
    active: str = ""  # one of ACTIVITY, or no restriction

    @property
    def needs_brand(self) -> bool:
        return bool(self.brands or self.min_level or self.alliance)

    def to_dict(self) -> dict[str, Any]:
        return {"brands": list(self.brands), "cities": list(self.cities), "tiers": list(self.tiers),
                "min_level": self.min_level, "alliance": self.alliance, "active": self.active}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True)

    def describe(self) -> str:
        """The criteria in words (the console's and the CLI's line)."""
        parts = []
        if self.brands:
            parts.append("brand " + "/".join(self.brands))
        if self.min_level:
            parts.append(f"level ≥ {self.min_level}")
        if self.cities:
            parts.append("city " + "/".join(self.cities))
        if self.tiers:
            parts.append("tier " + "/".join(str(t) for t in self.tiers))
        if self.alliance:
            parts.append(f"alliance {self.alliance}")
        if self.active:
            parts.append("paid at least once " + self.active.replace("_", " "))
        return ", ".join(parts) or "every active subscriber"


def _strings(value: object, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise errors.SegmentInvalid(f"{field} is a list of names", field=field)
    out = tuple(dict.fromkeys(v.strip() for v in value if v.strip()))
    if any(len(v) > 32 for v in out):
        raise errors.SegmentInvalid(f"a {field} value is at most 32 characters", field=field)
    return out


def parse_criteria(data: Mapping[str, Any] | None) -> Criteria:
    """Criteria from JSON-like data (the API's body, the CLI's options, a stored row)."""
    data = dict(data or {})
    unknown = set(data) - _KEYS
    if unknown:
        raise errors.SegmentInvalid(f"unknown criteria {', '.join(sorted(unknown))}; known: "
                                    f"{', '.join(sorted(_KEYS))}", field=sorted(unknown)[0])
    brands = tuple(dict.fromkeys(b.lower() for b in _strings(data.get("brands"), "brands")))
    bad = [b for b in brands if b not in BRANDS]
    if bad:
        raise errors.SegmentInvalid(f"no brand {bad[0]!r}; brands: {', '.join(BRANDS)}", field="brands")
    tiers = _tiers(data.get("tiers") or [])
    level = data.get("min_level") or 0
    if type(level) is not int or not 0 <= level <= 9:
        raise errors.SegmentInvalid("min_level is a whole number 0 to 9", field="min_level")
    alliance = data.get("alliance") or ""
    if not isinstance(alliance, str) or len(alliance) > 40:
        raise errors.SegmentInvalid("alliance is a programme's code or id", field="alliance")
    active = data.get("active") or ""
    if active not in ("", *ACTIVITY):
        raise errors.SegmentInvalid(f"active is one of {', '.join(ACTIVITY)}", field="active")
    return Criteria(brands, _strings(data.get("cities"), "cities"), tiers, level, alliance.strip(), active)


def _tiers(raw: object) -> tuple[int, ...]:
    if isinstance(raw, str):
        raw = [t for t in raw.split(",") if t.strip()]
    wrong = errors.SegmentInvalid("tiers are 1, 2 or 3", field="tiers")
    if not isinstance(raw, list | tuple) or any(isinstance(t, bool) or not isinstance(t, int | str) for t in raw):
        raise wrong
    try:
        values = {int(t) for t in raw}
    except ValueError:
        raise wrong from None
    if not values <= set(TIERS):
        raise wrong
    return tuple(sorted(values))


def check_name(name: object) -> str:
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 64:
        raise errors.SegmentInvalid("a segment's name is 1 to 64 characters", field="name")
    return name.strip()


def activity_window(active: str, now: datetime) -> tuple[datetime, datetime]:
    """``[since, until)`` of an activity criterion at ``now``, in Shanghai days."""
    local = now.astimezone(SHANGHAI)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if active == "this_month":
        since = midnight.replace(day=1)
    elif active == "last_7_days":
        since = midnight - timedelta(days=6)
    else:
        since = midnight - timedelta(days=29)
    return since, midnight + timedelta(days=1)


def admits(rules: tuple[tuple[str, int], ...], brand: str, level: int) -> bool:
    """Whether an alliance programme's rules ((brand, min level), …) admit a subscriber."""
    return any(b == brand and level >= lvl for b, lvl in rules)
