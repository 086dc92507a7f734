"""SIMULATOR of the operator's location platform (位置服务平台): the far side of
``tourism/location_http.py``, answering where a phone was over a time window, as the network
and the handset's GPS reported it.

- ``POST /v1/location/track`` ``{msisdn, from, to, consent_ref}`` (signed as every partner)
  answers ``{msisdn, points: [{at, lat, lon, accuracy_m, source}]}``; 404 when no positions of
  that phone fall in the window; 403 without a ``consent_ref``.
- A phone's day is a **plan**: a start, a place, then legs (drive along ``via`` points to
  ``to`` at ``speed_kmh``, then stay ``dwell_min`` there). The track is sampled every
  ``interval_s`` with GPS noise (``noise_m``, Gaussian), samples lost (``drop``), and now and
  then a coarse cell fix (accuracy 500-1500 m, far off): what real phones send. The same plan
  gives the same track (seeded by the number).
- ``PUT /sim/plans/{msisdn}`` sets a plan; ``POST /sim/down`` / ``/sim/up`` make every query
  answer 503 / normally again; ``POST /sim/reset`` forgets the plans set (the built-in demo
  plans of the seed's National Day tour stay).

Run: ``python -m mobipay.simulators.location_platform --port 8124``
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import FastAPI, Request, Response

from mobipay.simulators.desk import command_line, serve
from mobipay.simulators.signing import Signer

EARTH_M = 6_371_008.8

COUNTY_SEAT = (26.5812, 110.1556)  # 绥宁县 长铺镇
SHOP = (26.5690, 110.1395)  # a local-produce shop on the S221 at the edge of town
HUANGSANG = (26.3950, 110.0350)
SHANGBAO = (26.4280, 110.0180)
S221 = [(26.5600, 110.1380), (26.5300, 110.1150), (26.4950, 110.0900), (26.4600, 110.0650), (26.4250, 110.0500)]


def seed_story_plan(start: str = "2026-10-03T08:00:00+08:00") -> dict[str, Any]:
    """The seed's tour: from the county seat down the S221 to 黄桑 (an hour and a half there),
    back up the road past the turn to 上堡侗寨 (never taken) to a shop in town for 80 minutes."""
    return {"start": start, "from": list(COUNTY_SEAT), "interval_s": 60, "noise_m": 12, "drop": 0.05, "legs": [
        {"dwell_min": 15, "to": list(COUNTY_SEAT)},  # boarding at the hotel
        {"via": [list(p) for p in S221], "to": list(HUANGSANG), "speed_kmh": 40, "dwell_min": 95},
        {"via": [list(p) for p in reversed(S221)], "to": list(SHOP), "speed_kmh": 45, "dwell_min": 80},
        {"to": list(COUNTY_SEAT), "speed_kmh": 25, "dwell_min": 10},
    ]}


#: The demo's guide and coach driver (mobipay demo) on National Day 2026.
DEMO_PLANS = {"+8613907390001": seed_story_plan(), "+8613907390002": seed_story_plan()}


def _offset(lat: float, lon: float, north_m: float, east_m: float) -> tuple[float, float]:
    return (lat + math.degrees(north_m / EARTH_M),
            lon + math.degrees(east_m / (EARTH_M * math.cos(math.radians(lat)))))


def _dist(a: tuple[float, float], b: tuple[float, float]) -> float:
    p1, p2 = math.radians(a[0]), math.radians(b[0])
    h = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(b[1] - a[1]) / 2) ** 2
    return 2 * EARTH_M * math.asin(min(1.0, math.sqrt(h)))


@dataclass(frozen=True)
class Piece:
    start: datetime
    end: datetime
    a: tuple[float, float]
    b: tuple[float, float]  # a == b: staying

    def at(self, t: datetime) -> tuple[float, float]:
        span = (self.end - self.start).total_seconds()
        f = 0.0 if span <= 0 else min(1.0, max(0.0, (t - self.start).total_seconds() / span))
        return self.a[0] + (self.b[0] - self.a[0]) * f, self.a[1] + (self.b[1] - self.a[1]) * f


def pieces(plan: dict[str, Any]) -> list[Piece]:
    """The plan as a timeline of straight drives and stays."""
    t = datetime.fromisoformat(plan["start"])
    here = (float(plan["from"][0]), float(plan["from"][1]))
    out: list[Piece] = []
    for leg in plan["legs"]:
        speed = float(leg.get("speed_kmh", 40)) / 3.6
        for p in [*leg.get("via", []), leg["to"]]:
            there = (float(p[0]), float(p[1]))
            d = _dist(here, there)
            if d > 0:
                end = t + timedelta(seconds=d / speed)
                out.append(Piece(t, end, here, there))
                t, here = end, there
        dwell = timedelta(minutes=float(leg.get("dwell_min", 0)))
        if dwell:
            out.append(Piece(t, t + dwell, here, here))
            t += dwell
    return out


def track(msisdn: str, plan: dict[str, Any], start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The samples of the plan between ``start`` and ``end`` (deterministic per number and plan)."""
    timeline = pieces(plan)
    if not timeline:
        return []
    rng = random.Random(hashlib.sha256(f"{msisdn}:{plan['start']}".encode()).digest())
    step = timedelta(seconds=int(plan.get("interval_s", 60)))
    noise, drop = float(plan.get("noise_m", 12)), float(plan.get("drop", 0.05))
    out = []
    t = timeline[0].start
    i = 0
    while t <= timeline[-1].end:
        while i < len(timeline) - 1 and t > timeline[i].end:
            i += 1
        lat, lon = timeline[i].at(t)
        lost, coarse = rng.random() < drop, rng.random() < 0.02
        if coarse:  # a cell-tower fix: far off and says so
            acc = rng.uniform(500, 1500)
            lat, lon = _offset(lat, lon, rng.gauss(0, acc / 2), rng.gauss(0, acc / 2))
        else:
            acc = max(5.0, rng.gauss(noise, noise / 3))
            lat, lon = _offset(lat, lon, rng.gauss(0, noise), rng.gauss(0, noise))
        if not lost and start <= t <= end:
            out.append({"at": t.isoformat(), "lat": round(lat, 6), "lon": round(lon, 6),
                        "accuracy_m": round(acc, 1), "source": "cell" if coarse else "gps"})
        t += step
    return out


class Platform:
    def __init__(self) -> None:
        self.plans: dict[str, dict[str, Any]] = dict(DEMO_PLANS)
        self.down = False
        self.queries: list[dict[str, Any]] = []  # what was asked, with which consent (for tests)


def create_location_app(secret: str = "demo-location-secret") -> FastAPI:  # noqa: S107
    platform = Platform()
    signer = Signer(secret.encode())
    app = FastAPI(title="Operator's location platform SIMULATOR")

    @app.post("/v1/location/track")
    async def query(request: Request) -> Response:
        nonce, body = await signer.read(request)
        if isinstance(body, Response):
            return body
        if platform.down:
            return signer.reply(nonce, 503, {"error": "unavailable"})
        if not body.get("consent_ref"):
            return signer.reply(nonce, 403, {"error": "consent_required"})
        msisdn = str(body.get("msisdn", ""))
        platform.queries.append(dict(body))
        plan = platform.plans.get(msisdn)
        try:
            start, end = datetime.fromisoformat(body["from"]), datetime.fromisoformat(body["to"])
        except (KeyError, ValueError):
            return signer.reply(nonce, 400, {"error": "bad_window"})
        points = track(msisdn, plan, start, end) if plan else []
        if not points:
            return signer.reply(nonce, 404, {"error": "no_positions"})
        return signer.reply(nonce, 200, {"msisdn": msisdn, "points": points})

    @app.put("/sim/plans/{msisdn}")
    async def put(msisdn: str, body: dict[str, Any]) -> dict[str, Any]:
        pieces(body)  # refuse a plan that does not read
        platform.plans[msisdn] = body
        return {"msisdn": msisdn, "legs": len(body["legs"])}

    @app.get("/sim/queries")
    async def queries() -> dict[str, Any]:
        return {"queries": platform.queries}

    @app.post("/sim/down")
    async def down() -> dict[str, Any]:
        platform.down = True
        return {"down": True}

    @app.post("/sim/up")
    async def up() -> dict[str, Any]:
        platform.down = False
        return {"down": False}

    @app.post("/sim/reset")
    async def reset() -> dict[str, Any]:
        platform.__init__()  # type: ignore[misc]
        return {"reset": True}

    return app


def main(argv: list[str] | None = None) -> None:
    args = command_line("location_platform", "SIMULATOR of the operator's location platform (phone tracks).",
                        "--port 8124", 8124, "demo-location-secret").parse_args(argv)
    serve(create_location_app(args.secret), args)


if __name__ == "__main__":
    main()
