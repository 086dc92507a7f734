"""SIMULATOR of a transit operator's back office (a bus company's or a metro's clearing
system): its validators report every tap to it as well as to mobipay, and it keeps its own
count per operator and Beijing day, which mobipay's daily clearing is reconciled against.
Speaks what ``transit/backoffice_http.py`` speaks (signed like every partner here).

- ``POST /v1/taps`` ``{operator_id, taps: [{token_id, validator_id, tapped_at}]}``: the
  validators' copy (a tap is the same tap again for the same token, validator and time:
  counted once), answered ``{received, duplicates}``.
- ``GET /v1/operators/{operator_id}/days/{day}`` answers ``{taps, fares}`` (fares: what
  ``POST /sim/fares`` stated, else null).
- ``POST /sim/fares`` ``{operator_id, day, fares}``: the fares the operator computed itself;
  ``POST /sim/drop`` ``{operator_id, day, taps: n}``: forget n taps (a lost upload, to see a
  mismatch); ``POST /sim/reset``; ``GET /sim/orders`` (the counts).

Run: ``python -m mobipay.simulators.transit_operator --port 8113``
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from fastapi import FastAPI, Request, Response

from mobipay.simulators.desk import command_line, serve
from mobipay.simulators.signing import Signer

BEIJING = timezone(timedelta(hours=8))


def create_transit_operator_app(secret: str = "demo-transit-operator-secret") -> FastAPI:  # noqa: S107 - demo
    signer = Signer(secret.encode())
    seen: dict[tuple[str, str], set[tuple[str, str, str]]] = {}  # (operator, day) -> taps
    fares: dict[tuple[str, str], int] = {}
    dropped: dict[tuple[str, str], int] = {}
    app = FastAPI(title="Transit operator back office SIMULATOR",
                  summary="The far side of mobipay's transit/backoffice_http.py")

    @app.post("/v1/taps")
    async def receive(request: Request) -> Response:
        nonce, body = await signer.read(request)
        if isinstance(body, Response):
            return body
        new = dup = 0
        for t in body.get("taps", []):
            at = datetime.fromisoformat(str(t["tapped_at"]))
            key = (str(t["token_id"]), str(t["validator_id"]), at.isoformat())
            bucket = seen.setdefault((str(body["operator_id"]), at.astimezone(BEIJING).date().isoformat()), set())
            if key in bucket:
                dup += 1
            else:
                bucket.add(key)
                new += 1
        return signer.reply(nonce, 200, {"received": new, "duplicates": dup})

    @app.get("/v1/operators/{operator_id}/days/{day}")
    async def count(operator_id: str, day: str, request: Request) -> Response:
        nonce = request.headers.get("x-bank-nonce", "")
        refusal = signer.refusal(request.method, request.url.path, request.headers, b"")
        if refusal is not None:
            return signer.reply(nonce, 401, {"error": "unauthorized", "reason": refusal})
        key = (operator_id, day)
        return signer.reply(nonce, 200, {"operator_id": operator_id, "day": day,
                                         "taps": max(0, len(seen.get(key, ())) - dropped.get(key, 0)),
                                         "fares": fares.get(key)})

    @app.post("/sim/fares")
    async def set_fares(body: dict[str, Any]) -> dict[str, Any]:
        fares[(body["operator_id"], body["day"])] = int(body["fares"])
        return body

    @app.post("/sim/drop")
    async def drop(body: dict[str, Any]) -> dict[str, Any]:
        key = (body["operator_id"], body["day"])
        dropped[key] = dropped.get(key, 0) + int(body["taps"])
        return {"dropped": dropped[key]}

    @app.get("/sim/orders")
    async def orders() -> list[dict[str, Any]]:
        return [{"operator_id": o, "day": d, "taps": len(s)} for (o, d), s in seen.items()]

    @app.post("/sim/reset")
    async def reset() -> dict[str, Any]:
        seen.clear()
        fares.clear()
        dropped.clear()
        return {"reset": True}

    return app


def main(argv: list[str] | None = None) -> None:
    parser = command_line("transit_operator", "SIMULATOR of a transit operator's back office (its own tap count).",
                          "--port 8113", 8113, "demo-transit-operator-secret")
    args = parser.parse_args(argv)
    serve(create_transit_operator_app(args.secret), args)


if __name__ == "__main__":
    main()
