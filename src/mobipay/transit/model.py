"""Fares as data and the rules that price a trip, without I/O (docs/transit.md, "Fares").

A city's fares are a list of **versions**, each in force from a Beijing date until the next
one (``transit/data/fares.json``). A version holds: the flat bus fare; the metro's distance
bands (the last band's fare, then ``beyond_step_fare`` more per ``beyond_step_km`` or part);
the fare charged for an entry without an exit (or an exit without an entry); the longest a
journey may take to pair an entry with an exit; an optional transfer discount within a time
window; monthly spending tiers; an optional daily cap.

A trip is priced in this order, each step on what the one before left:

1. the **base** fare: the bus's flat fare, the metro's fare for the network distance between
   entry and exit, or the missing-exit fare;
2. the **transfer** discount, when the rider's previous trip in the city ended at most
   ``window_min`` minutes before this one started (the edge counts), both of the modes named;
3. the **monthly tiers**: the percentage payable depends on what the rider has paid in the
   calendar month so far on the modes named; a trip that crosses a threshold pays each part
   at its own tier's rate (Beijing: 98 CNY paid, a 5 CNY trip is 2 CNY at full price and
   3 CNY at 80%: 4.40 CNY);
4. the **daily cap**: what is paid in a Beijing day in the city never passes it.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from importlib import resources
from itertools import pairwise
from typing import Any

from mobipay.kernel.clock import SHANGHAI
from mobipay.transit import errors

BUS, METRO = "bus", "metro"
MODES = (BUS, METRO)
#: A validator's role: a bus reader charges its flat fare at one tap; metro gates pair an entry with an exit.
FLAT, ENTRY, EXIT = "flat", "entry", "exit"
ROLES = (FLAT, ENTRY, EXIT)


@dataclass(frozen=True, slots=True)
class MetroFare:
    bands: tuple[tuple[int, int], ...]  # (up to km inclusive, fen), ascending
    beyond_step_km: int
    beyond_step_fare: int
    missing_exit_fare: int
    max_journey: timedelta


@dataclass(frozen=True, slots=True)
class TransferRule:
    window: timedelta
    discount: int  # fen off the next trip (never below zero)
    modes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FareRules:
    """One city's fares in force from ``effective``."""

    city: str
    effective: date
    bus_flat: int
    metro: MetroFare | None
    transfer: TransferRule | None
    tiers: tuple[tuple[int, int], ...]  # (from fen paid this month, percent payable), the first from 0
    tier_modes: tuple[str, ...]
    daily_cap: int | None


@dataclass(frozen=True, slots=True)
class Priced:
    """What a trip costs, step by step (fen): ``fare`` is what the rider pays."""

    base: int
    transfer_discount: int
    tier_discount: int
    cap_discount: int

    @property
    def fare(self) -> int:
        return self.base - self.transfer_discount - self.tier_discount - self.cap_discount

    @property
    def discounts(self) -> int:
        return self.transfer_discount + self.tier_discount + self.cap_discount


@dataclass(frozen=True, slots=True)
class RiderState:
    """What pricing remembers of a rider in a city: paid this month (on the tier modes), paid
    today (all modes), and when and how the last trip ended (for the transfer window)."""

    month: str = ""  # YYYY-MM, Beijing
    month_spent: int = 0
    day: date | None = None
    day_spent: int = 0
    last_end: datetime | None = None
    last_mode: str = ""


# ---------------------------------------------------------------------- the data


def _rules(city: str, raw: Mapping[str, Any]) -> FareRules:
    try:
        metro_raw = raw.get("metro")
        metro = None if metro_raw is None else MetroFare(
            tuple((int(k), int(f)) for k, f in metro_raw["bands"]), int(metro_raw["beyond_step_km"]),
            int(metro_raw["beyond_step_fare"]), int(metro_raw["missing_exit_fare"]),
            timedelta(minutes=int(metro_raw["max_journey_min"])))
        t = raw.get("transfer")
        transfer = None if t is None else TransferRule(timedelta(minutes=int(t["window_min"])), int(t["discount"]),
                                                       tuple(t["modes"]))
        tiers = tuple((int(a), int(p)) for a, p in raw.get("monthly_tiers") or [[0, 100]])
        cap = raw.get("daily_cap")
        rules = FareRules(city, date.fromisoformat(raw["from"]), int(raw["bus_flat"]), metro, transfer, tiers,
                          tuple(raw.get("tier_modes") or ()), None if cap is None else int(cap))
    except (KeyError, TypeError, ValueError) as exc:
        raise errors.FaresInvalid(f"{city}: {exc}") from None
    check_rules(rules)
    return rules


def check_rules(r: FareRules) -> None:
    """Refuse fares that cannot be applied (a table is data: it is checked when loaded)."""
    problems = []
    if r.bus_flat < 0:
        problems.append("bus_flat is not negative")
    if r.metro is not None:
        kms = [k for k, _ in r.metro.bands]
        if not kms or kms != sorted(kms) or len(set(kms)) != len(kms) or kms[0] <= 0:
            problems.append("metro bands ascend by km")
        if r.metro.beyond_step_km <= 0 or r.metro.beyond_step_fare < 0 or r.metro.missing_exit_fare < 0:
            problems.append("metro steps are positive")
    if not r.tiers or r.tiers[0][0] != 0 or [a for a, _ in r.tiers] != sorted({a for a, _ in r.tiers}):
        problems.append("monthly tiers start at 0 and ascend")
    if any(not 0 <= p <= 100 for _, p in r.tiers):
        problems.append("a tier's percent is 0 to 100")
    if r.daily_cap is not None and r.daily_cap < 0:
        problems.append("daily_cap is not negative")
    if problems:
        raise errors.FaresInvalid(f"{r.city} from {r.effective}: " + "; ".join(problems))


@dataclass(frozen=True, slots=True)
class FareTable:
    """Every city's fare versions."""

    cities: Mapping[str, tuple[FareRules, ...]] = field(default_factory=dict)

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> FareTable:
        cities: dict[str, tuple[FareRules, ...]] = {}
        for city, versions in data.items():
            if city.startswith("_"):
                continue
            rules = sorted((_rules(city, v) for v in versions), key=lambda r: r.effective)
            if len({r.effective for r in rules}) != len(rules):
                raise errors.FaresInvalid(f"{city}: two versions from the same day")
            cities[city] = tuple(rules)
        return cls(cities)

    @classmethod
    def load(cls) -> FareTable:
        """The fares shipped with the platform (transit/data/fares.json)."""
        text = resources.files("mobipay.transit").joinpath("data/fares.json").read_text("utf-8")
        return cls.parse(json.loads(text))

    def rules(self, city: str, day: date) -> FareRules:
        """The version in force in ``city`` on ``day``."""
        versions = self.cities.get(city)
        if not versions:
            raise errors.FaresNotDefined(f"no fares for {city}", field="city")
        found = None
        for r in versions:
            if r.effective <= day:
                found = r
        if found is None:
            raise errors.FaresNotDefined(f"no fares for {city} on {day.isoformat()}", field="city")
        return found


# ---------------------------------------------------------------------- the rules


def distance_fare(metro: MetroFare, meters: int) -> int:
    """The metro fare for a distance: the first band whose km it does not pass; beyond the
    last, ``beyond_step_fare`` per ``beyond_step_km`` or part."""
    for km, fare in metro.bands:
        if meters <= km * 1000:
            return fare
    last_km, last_fare = metro.bands[-1]
    over = meters - last_km * 1000
    steps = -(-over // (metro.beyond_step_km * 1000))
    return last_fare + steps * metro.beyond_step_fare


def _percent(amount: int, pct: int) -> int:
    """``amount * pct / 100`` rounded half up, in whole fen."""
    return (amount * pct + 50) // 100


def tiered(amount: int, spent: int, tiers: Sequence[tuple[int, int]]) -> int:
    """What a trip of ``amount`` costs when ``spent`` was paid this month: each part at the
    rate of the tier it falls in, the thresholds counted on what is paid."""
    paid, left, s = 0, amount, spent
    while left > 0:
        i = max(j for j, (start, _) in enumerate(tiers) if start <= s)
        pct = tiers[i][1]
        nxt = tiers[i + 1][0] if i + 1 < len(tiers) else None
        if nxt is None or pct == 0 or left * pct <= (nxt - s) * 100:
            return paid + _percent(left, pct)
        room = nxt - s  # paid at this rate up to the threshold
        used = -(-room * 100 // pct)  # of the base it takes
        paid, s, left = paid + room, nxt, left - used
    return paid


def month_of(when: datetime) -> str:
    return when.astimezone(SHANGHAI).strftime("%Y-%m")


def day_of(when: datetime) -> date:
    return when.astimezone(SHANGHAI).date()


def price(rules: FareRules, mode: str, base: int, start: datetime, end: datetime,
          state: RiderState) -> tuple[Priced, RiderState]:
    """Price one trip (``base`` from :func:`distance_fare`, the flat fare or the missing-exit
    fare) for a rider in ``state``; answers the price and the state after the trip."""
    month, day = month_of(start), day_of(start)
    month_spent = state.month_spent if state.month == month else 0
    day_spent = state.day_spent if state.day == day else 0
    transfer = 0
    t = rules.transfer
    if (t is not None and state.last_end is not None and mode in t.modes and state.last_mode in t.modes
            and timedelta(0) <= start - state.last_end <= t.window):
        transfer = min(t.discount, base)
    after_transfer = base - transfer
    tier = 0
    if mode in rules.tier_modes:
        tier = after_transfer - tiered(after_transfer, month_spent, rules.tiers)
    after_tier = after_transfer - tier
    cap = 0
    if rules.daily_cap is not None:
        cap = max(0, min(after_tier, day_spent + after_tier - rules.daily_cap))
    priced = Priced(base, transfer, tier, cap)
    counted = priced.fare if mode in rules.tier_modes else 0
    last_end = end if state.last_end is None or end >= state.last_end else state.last_end
    return priced, replace(state, month=month, month_spent=month_spent + counted, day=day,
                           day_spent=day_spent + priced.fare, last_end=last_end, last_mode=mode)


# ---------------------------------------------------------------------- the metro network


@dataclass(frozen=True, slots=True)
class Stop:
    """A station on a line: ``position_m`` along it, from the line's first station."""

    id: str
    line_id: str
    name: str
    position_m: int


class Network:
    """A city's metro as a graph: neighbouring stations of a line joined by their distance,
    stations of the same name on two lines joined at no distance (an interchange). The fare
    distance is the shortest path (cached per pair)."""

    def __init__(self, stops: Iterable[Stop]) -> None:
        self.stops = {s.id: s for s in stops}
        self._edges: dict[str, list[tuple[int, str]]] = {s: [] for s in self.stops}
        by_line: dict[str, list[Stop]] = {}
        by_name: dict[str, list[Stop]] = {}
        for s in self.stops.values():
            by_line.setdefault(s.line_id, []).append(s)
            by_name.setdefault(s.name, []).append(s)
        for line in by_line.values():
            line.sort(key=lambda s: s.position_m)
            for a, b in pairwise(line):
                self._join(a.id, b.id, b.position_m - a.position_m)
        for same in by_name.values():
            for a in same:
                for b in same:
                    if a.id < b.id:
                        self._join(a.id, b.id, 0)
        self._cache: dict[tuple[str, str], int] = {}

    def _join(self, a: str, b: str, meters: int) -> None:
        self._edges[a].append((meters, b))
        self._edges[b].append((meters, a))

    def distance(self, a: str, b: str) -> int:
        """Meters of the shortest path between two stations (``TRANSIT_NO_ROUTE`` when none)."""
        key = (a, b) if a <= b else (b, a)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        if a not in self.stops or b not in self.stops:
            raise errors.NoRoute(f"{a} or {b} is not a station of this network")
        best = {a: 0}
        queue = [(0, a)]
        while queue:
            d, s = heapq.heappop(queue)
            if s == b:
                self._cache[key] = d
                return d
            if d > best.get(s, d):
                continue
            for w, n in self._edges[s]:
                if d + w < best.get(n, 1 << 62):
                    best[n] = d + w
                    heapq.heappush(queue, (d + w, n))
        raise errors.NoRoute(f"no route from {a} to {b}")
