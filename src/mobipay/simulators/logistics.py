"""SIMULATOR of the logistics partner (the carrier delivering rural marketplace orders to a
county's villages), speaking what ``rural/logistics_http.py`` speaks.

- ``POST /v1/shipments`` ``{order_id, county, address}``: a shipment (the same order id gives
  the same tracking number: the order id is the carrier's idempotency key), its first event
  ``picked_up`` at the dispatch warehouse.
- ``GET /v1/shipments/{tracking_no}/events``: its events so far, in order, each
  ``{status, place, at}``: picked up (发货仓), in transit at the county hub (``<county>分拣中心``),
  arrived at the village point (the address), delivered (the address).
- How the carrier moves: by hand (the default, for tests) with ``POST
  /sim/shipments/{tracking_no}/advance`` (the next step, stamped now); or, with ``--step-s N``
  (``make run``), by itself: step k happens N×k seconds after pick-up and carries that time, so
  a shipment read late shows the times the parcel really moved.
- ``GET /sim/orders`` lists shipments, ``POST /sim/reset`` forgets all (unsigned controls: no
  real carrier has them).
- Requests to ``/v1`` need ``X-Logistics-Key`` (``--secret``), else 401; ``--latency-ms`` slows
  each answer.

Run: ``python -m mobipay.simulators.logistics --port 8120 --step-s 60``
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI, Header, HTTPException

from mobipay.simulators.desk import command_line, serve

STEPS = ("picked_up", "in_transit", "at_village_point", "delivered")
SECRET = "demo-logistics-key"  # noqa: S105 - the demo key, as in Settings.logistics_key
PORT = 8120


def _place(ship: dict[str, Any], status: str) -> str:
    places = {
        "picked_up": "发货仓",
        "in_transit": f"{ship['county']}分拣中心",
        "at_village_point": ship["address"],
        "delivered": ship["address"],
    }
    return str(places[status])


def create_logistics_app(
    secret: str = SECRET, *, step_s: float | None = None, latency_ms: int = 0, now: Callable[[], datetime] | None = None
) -> FastAPI:
    """The carrier; ``step_s`` None moves shipments only through ``/sim``; ``now`` (a test's
    clock) stamps the events."""
    clock = now or (lambda: datetime.now(UTC))
    app = FastAPI(title="Logistics partner SIMULATOR", summary="The far side of mobipay's rural/logistics_http.py")
    shipments: dict[str, dict[str, Any]] = {}
    by_order: dict[str, str] = {}

    async def check(key: str | None) -> None:
        if latency_ms:
            await asyncio.sleep(latency_ms / 1000)
        if key != secret:
            raise HTTPException(401, "wrong X-Logistics-Key")

    def event(ship: dict[str, Any], status: str, at: datetime) -> None:
        ship["events"].append({"status": status, "place": _place(ship, status), "at": at.isoformat()})

    def catch_up(ship: dict[str, Any]) -> None:
        """With ``step_s``: every step whose time has come, stamped with that time."""
        if step_s is None:
            return
        picked = datetime.fromisoformat(ship["events"][0]["at"])
        while len(ship["events"]) < len(STEPS):
            due = picked + timedelta(seconds=step_s * len(ship["events"]))
            if due > clock():
                return
            event(ship, STEPS[len(ship["events"])], due)

    @app.post("/v1/shipments")
    async def create(body: dict[str, str], x_logistics_key: str | None = Header(default=None)) -> dict[str, str]:
        await check(x_logistics_key)
        if not body.get("order_id"):
            raise HTTPException(422, "order_id is required")
        known = by_order.get(body["order_id"])
        if known is None:
            known = f"SF{len(shipments) + 1:010d}"
            ship = {
                "order_id": body["order_id"],
                "county": body.get("county", ""),
                "address": body.get("address", ""),
                "events": [],
            }
            event(ship, "picked_up", clock())
            shipments[known], by_order[body["order_id"]] = ship, known
        return {"tracking_no": known}

    @app.get("/v1/shipments/{tracking_no}/events")
    async def events(tracking_no: str, x_logistics_key: str | None = Header(default=None)) -> dict[str, Any]:
        await check(x_logistics_key)
        ship = shipments.get(tracking_no)
        if ship is None:
            raise HTTPException(404, "no such shipment")
        catch_up(ship)
        return {"tracking_no": tracking_no, "events": ship["events"]}

    @app.post("/sim/shipments/{tracking_no}/advance")
    async def advance(tracking_no: str) -> dict[str, Any]:
        """The next step now (the test or the demo decides when the parcel moves)."""
        ship = shipments.get(tracking_no)
        if ship is None:
            raise HTTPException(404, "no such shipment")
        catch_up(ship)
        if len(ship["events"]) < len(STEPS):
            event(ship, STEPS[len(ship["events"])], clock())
        return {"tracking_no": tracking_no, "status": ship["events"][-1]["status"]}

    @app.get("/sim/orders")
    async def orders() -> dict[str, Any]:
        for ship in shipments.values():
            catch_up(ship)
        return {"shipments": [{"tracking_no": k, **v} for k, v in shipments.items()]}

    @app.post("/sim/reset")
    async def reset() -> dict[str, int]:
        n = len(shipments)
        shipments.clear()
        by_order.clear()
        return {"forgotten": n}

    return app


def main(argv: list[str] | None = None) -> None:
    parser = command_line(
        "logistics",
        "SIMULATOR of the logistics partner delivering mobipay's rural marketplace orders.",
        f"--port {PORT} --step-s 60",
        PORT,
        SECRET,
    )
    parser.add_argument(
        "--step-s",
        type=float,
        default=None,
        help="the carrier moves one step every N seconds by itself (default: only by /sim)",
    )
    args = parser.parse_args(argv)
    serve(create_logistics_app(args.secret, step_s=args.step_s, latency_ms=args.latency_ms), args)


if __name__ == "__main__":
    main()
