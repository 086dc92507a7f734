"""SIMULATOR of the logistics partner (the carrier delivering rural marketplace orders),
speaking what ``rural/logistics_http.py`` speaks.

- ``POST /v1/shipments`` ``{order_id, county, address}``: a shipment (the same order id gives
  the same tracking number), its first event ``picked_up``.
- ``GET /v1/shipments/{tracking_no}/events``: its events so far, in order.
- ``POST /sim/shipments/{tracking_no}/advance``: the next step (``in_transit``,
  ``at_village_point``, ``delivered``), as the test or the demo decides: the carrier never
  moves by the wall clock. ``GET /sim/orders`` lists shipments, ``POST /sim/reset`` forgets all.
- Requests need ``X-Logistics-Key`` (``--secret``), else 401.

Run: ``python -m mobipay.simulators.logistics --port 8110``
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Header, HTTPException

STEPS = ("picked_up", "in_transit", "at_village_point", "delivered")


def create_logistics_app(secret: str = "demo-logistics-key") -> FastAPI:  # noqa: S107 - a demo key
    app = FastAPI(title="Logistics partner SIMULATOR", summary="The far side of mobipay's rural shipments")
    shipments: dict[str, dict[str, Any]] = {}
    by_order: dict[str, str] = {}

    def check(key: str | None) -> None:
        if key != secret:
            raise HTTPException(401, "wrong X-Logistics-Key")

    def event(ship: dict[str, Any], status: str) -> None:
        place = {"picked_up": "发货仓", "in_transit": f"{ship['county']}分拣中心",
                 "at_village_point": ship["address"], "delivered": ship["address"]}[status]
        ship["events"].append({"status": status, "place": place, "at": datetime.now(UTC).isoformat()})

    @app.post("/v1/shipments")
    async def create(body: dict[str, str], x_logistics_key: str | None = Header(default=None)) -> dict[str, str]:
        check(x_logistics_key)
        known = by_order.get(body["order_id"])
        if known is None:
            known = f"SF{len(shipments) + 1:010d}"
            ship = {"order_id": body["order_id"], "county": body.get("county", ""),
                    "address": body.get("address", ""), "events": []}
            event(ship, "picked_up")
            shipments[known], by_order[body["order_id"]] = ship, known
        return {"tracking_no": known}

    @app.get("/v1/shipments/{tracking_no}/events")
    async def events(tracking_no: str, x_logistics_key: str | None = Header(default=None)) -> dict[str, Any]:
        check(x_logistics_key)
        if tracking_no not in shipments:
            raise HTTPException(404, "no such shipment")
        return {"tracking_no": tracking_no, "events": shipments[tracking_no]["events"]}

    @app.post("/sim/shipments/{tracking_no}/advance")
    async def advance(tracking_no: str) -> dict[str, Any]:
        ship = shipments.get(tracking_no)
        if ship is None:
            raise HTTPException(404, "no such shipment")
        done = len(ship["events"])
        if done < len(STEPS):
            event(ship, STEPS[done])
        return {"tracking_no": tracking_no, "status": ship["events"][-1]["status"]}

    @app.get("/sim/orders")
    async def orders() -> dict[str, Any]:
        return {"shipments": [{"tracking_no": k, **v} for k, v in shipments.items()]}

    @app.post("/sim/reset")
    async def reset() -> dict[str, int]:
        n = len(shipments)
        shipments.clear()
        by_order.clear()
        return {"forgotten": n}

    return app


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="SIMULATOR of the logistics partner for mobipay's rural marketplace. "
                                                 "Example: python -m mobipay.simulators.logistics --port 8110")
    parser.add_argument("--port", type=int, default=8110)
    parser.add_argument("--secret", default="demo-logistics-key")
    args = parser.parse_args(argv)
    uvicorn.run(create_logistics_app(args.secret), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
