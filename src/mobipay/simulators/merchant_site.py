"""SIMULATOR of a merchant's web site receiving mobipay's asynchronous notifications.

- ``POST /notify``: records the notification and answers ``success`` (what mobipay waits
  for), or fails with HTTP 500 for the next N notifications after ``PUT /sim/fail {count}``.
  Once ``PUT /sim/platform-key`` gave it the platform's public key (PEM), it checks every
  notification as a shop must, with the SDK: RSA2 against that key whatever ``sign_type``
  the message names; a forged one is answered 400 ``fail`` and kept in ``/sim/refused``.
- ``POST /moved``: answers 307 to ``/notify`` (a notifier must not follow it).
- ``GET /sim/received``: the notifications received, oldest first; ``GET /sim/hosts``: the
  ``Host`` header of each. ``POST /sim/reset``.

Run: ``python -m mobipay.simulators.merchant_site --port 8108``
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response

from mobipay.simulators.desk import command_line, serve
from mobipay_sdk.merchant import load_platform_key, verify_notification


def create_site_app() -> FastAPI:
    app = FastAPI(title="Merchant site SIMULATOR")
    received: list[dict[str, Any]] = []
    refused: list[dict[str, Any]] = []
    failing = {"count": 0}
    platform: dict[str, Any] = {"key": None}
    hosts: list[str] = []

    @app.post("/notify")
    async def notify(request: Request) -> Response:
        if failing["count"] > 0:
            failing["count"] -= 1
            return Response("busy", status_code=500)
        body = await request.json()
        if platform["key"] is not None and not (isinstance(body, dict) and verify_notification(body, platform["key"])):
            refused.append(body)
            return Response("fail", status_code=400, media_type="text/plain")
        received.append(body)
        hosts.append(request.headers.get("host", ""))
        return Response("success", media_type="text/plain")

    @app.post("/moved")
    async def moved() -> Response:
        return Response(status_code=307, headers={"Location": "/notify"})

    @app.get("/sim/hosts")
    async def got_hosts() -> list[str]:
        return hosts

    @app.put("/sim/platform-key")
    async def platform_key(request: Request) -> dict[str, Any]:
        platform["key"] = load_platform_key(await request.body())
        return {"verifying": True}

    @app.get("/sim/refused")
    async def got_refused() -> list[dict[str, Any]]:
        return refused

    @app.put("/sim/fail")
    async def fail(body: dict[str, Any]) -> dict[str, Any]:
        failing["count"] = int(body.get("count", 0))
        return failing

    @app.get("/sim/received")
    async def got() -> list[dict[str, Any]]:
        return received

    @app.get("/sim/orders")
    async def ready() -> list[Any]:  # the tests' readiness probe
        return []

    @app.post("/sim/reset")
    async def reset() -> dict[str, Any]:
        received.clear()
        refused.clear()
        hosts.clear()
        failing["count"] = 0
        platform["key"] = None
        return {"reset": True}

    return app


def main(argv: list[str] | None = None) -> None:
    args = command_line("merchant_site", "SIMULATOR of a merchant site receiving notifications.", "--port 8108",
                        8108, "").parse_args(argv)
    serve(create_site_app(), args)


if __name__ == "__main__":
    main()
