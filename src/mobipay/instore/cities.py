"""The 50 cities of mobipay's reference data (``data/cities.csv``), read once: what a store's
QR code prints for its city (tag 60 takes Latin only) and where the demo's offline merchants
are. They are the biller registry's cities (the demo's subscribers live there too); a test
keeps the two lists the same."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib.resources import files


@dataclass(frozen=True, slots=True)
class City:
    name: str  # as a store names it, e.g. 上海
    province: str
    latin: str  # EMV tag 60: printable ASCII, at most 15
    division: str  # GB/T 2260 code, 6 digits (characters 3-8 of a credit code registered there)


@cache
def cities() -> tuple[City, ...]:
    """Every city of the file, in its order (north to south by division code)."""
    text = files("mobipay.instore").joinpath("data/cities.csv").read_text(encoding="utf-8")
    rows = csv.DictReader(line for line in text.splitlines() if line.strip() and not line.startswith("#"))
    out = tuple(City(r["city"], r["province"], r["latin"], r["division"]) for r in rows)
    for c in out:
        if not (c.latin.isascii() and c.latin.isprintable() and 1 <= len(c.latin) <= 15
                and len(c.division) == 6 and c.division.isdigit()):
            raise ValueError(f"bad city {c.name} in cities.csv")
    return out


def latin_names() -> dict[str, str]:
    """City name → its Latin name for tag 60."""
    return {c.name: c.latin for c in cities()}
