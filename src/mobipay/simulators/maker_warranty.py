"""SIMULATOR of a handset maker's after-sales service (售后): the far side of
``protection/gateway_http.py``, answering whether a phone's damage is repaired free under
the three guarantees (三包).

- ``POST /v1/warranty/status`` ``{imei, damage}`` (signed as every partner) answers
  ``{covered, until, reason}``. A phone's 三包 period is a year from a made-up activation
  day derived from the IMEI (the same answer every time); accidental damage (a cracked
  screen, water, a crushed body: the words ``screen``/``water``/``crack``/``屏``/``水``/``摔``)
  is never covered, a performance fault within the year is. An IMEI set with
  ``PUT /sim/warranty/{imei}`` ``{covered, until, reason}`` answers that instead;
  ``POST /sim/warranty/{imei}/unknown`` makes it 404 (the maker does not know it);
  ``POST /sim/down`` / ``/sim/up`` makes every enquiry answer 503 / normally again.

Run: ``python -m mobipay.simulators.maker_warranty --port 8109``
"""

from __future__ import annotations

import hashlib
from datetime import date, timedelta
from typing import Any

from fastapi import FastAPI, Request, Response

from mobipay.simulators.desk import command_line, serve
from mobipay.simulators.signing import Signer

ACCIDENTAL = ("screen", "water", "crack", "drop", "屏", "水", "摔", "碎")


class Maker:
    def __init__(self) -> None:
        self.set: dict[str, dict[str, Any]] = {}
        self.unknown: set[str] = set()
        self.down = False

    def status(self, imei: str, damage: str, today: date) -> dict[str, Any]:
        if imei in self.set:
            return self.set[imei]
        activated = today - timedelta(days=int(hashlib.sha256(imei.encode()).hexdigest(), 16) % 500)
        until = activated + timedelta(days=365)
        if today > until:
            return {"covered": False, "until": until.isoformat(), "reason": "warranty_expired"}
        if any(word in damage.lower() for word in ACCIDENTAL):
            return {"covered": False, "until": until.isoformat(), "reason": "accidental_damage"}
        return {"covered": True, "until": until.isoformat(), "reason": "performance_fault"}


def create_maker_app(secret: str = "demo-maker-secret") -> FastAPI:  # noqa: S107
    maker = Maker()
    signer = Signer(secret.encode())
    app = FastAPI(title="Handset maker's warranty service SIMULATOR")

    @app.post("/v1/warranty/status")
    async def status(request: Request) -> Response:
        nonce, body = await signer.read(request)
        if isinstance(body, Response):
            return body
        if maker.down:
            return signer.reply(nonce, 503, {"error": "unavailable"})
        imei = str(body.get("imei", ""))
        if imei in maker.unknown:
            return signer.reply(nonce, 404, {"error": "unknown_imei"})
        return signer.reply(nonce, 200, maker.status(imei, str(body.get("damage", "")), date.today()))

    @app.put("/sim/warranty/{imei}")
    async def put(imei: str, body: dict[str, Any]) -> dict[str, Any]:
        maker.set[imei] = {"covered": bool(body.get("covered")), "until": body.get("until"),
                           "reason": body.get("reason", "set")}
        maker.unknown.discard(imei)
        return maker.set[imei]

    @app.post("/sim/warranty/{imei}/unknown")
    async def unknown(imei: str) -> dict[str, Any]:
        maker.unknown.add(imei)
        return {"unknown": True}

    @app.post("/sim/down")
    async def down() -> dict[str, Any]:
        maker.down = True
        return {"down": True}

    @app.post("/sim/up")
    async def up() -> dict[str, Any]:
        maker.down = False
        return {"down": False}

    @app.post("/sim/reset")
    async def reset() -> dict[str, Any]:
        maker.__init__()  # type: ignore[misc]
        return {"reset": True}

    return app


def main(argv: list[str] | None = None) -> None:
    args = command_line("maker_warranty", "SIMULATOR of a handset maker's warranty (三包) service.", "--port 8109",
                        8109, "demo-maker-secret").parse_args(argv)
    serve(create_maker_app(args.secret), args)


if __name__ == "__main__":
    main()
