"""SIMULATOR of the operator's billing system as SP information fees reach it: lines put
on subscribers' phone bills (代收费) and refunds given back on them. Speaks the protocol
``sp/billing_http.py`` speaks (signed like every partner here).

- ``POST /v1/bill-lines`` ``{lines: [{id, msisdn, amount, sp_code, service}]}`` answers
  ``{lines: [{id, status: charged|refused, reason}]}``; a line id seen before gets its first
  answer again and is not charged twice.
- ``POST /v1/bill-refunds`` ``{id, msisdn, amount, sp_code, service}`` gives the amount back
  on the bill, once per id.
- ``POST /sim/numbers`` ``{msisdn, state}`` (``suspended`` / ``cancelled``): lines for that
  number are refused. ``GET /sim/numbers/{msisdn}`` shows what its bill carries (charged
  less refunded). ``PUT /sim/behaviour`` ``{down: true}`` answers 500 to everything;
  ``POST /sim/reset`` forgets everything; ``GET /sim/orders`` lists the first lines and
  ``GET /sim/summary`` counts them all.

Run: ``python -m mobipay.simulators.sp_billing --port 8112``
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response

from mobipay.simulators.desk import command_line, serve
from mobipay.simulators.signing import Signer


def create_sp_billing_app(secret: str = "demo-sp-billing-secret") -> FastAPI:  # noqa: S107 - demo
    signer = Signer(secret.encode())
    lines: dict[str, tuple[str, int, str]] = {}  # id -> (msisdn, amount, refusal or ""): compact for big runs
    refunds: dict[str, dict[str, Any]] = {}
    states: dict[str, str] = {}
    down = {"down": False}
    app = FastAPI(title="Operator billing (SP fees) SIMULATOR", summary="The far side of mobipay's sp/billing_http.py")

    def answer(line: dict[str, Any]) -> dict[str, Any]:
        known = lines.get(line["id"])
        if known is None:
            state = states.get(line["msisdn"], "active")
            known = lines[line["id"]] = (line["msisdn"], int(line["amount"]), "" if state == "active"
                                         else f"number_{state}")
        return {"id": line["id"], "status": "refused" if known[2] else "charged", "reason": known[2]}

    @app.post("/v1/bill-lines")
    async def bill(request: Request) -> Response:
        nonce, body = await signer.read(request)
        if isinstance(body, Response):
            return body
        if down["down"]:
            return signer.reply(nonce, 500, {"error": "internal_error"})
        return signer.reply(nonce, 200, {"lines": [answer(line) for line in body["lines"]]})

    @app.post("/v1/bill-refunds")
    async def refund(request: Request) -> Response:
        nonce, body = await signer.read(request)
        if isinstance(body, Response):
            return body
        if down["down"]:
            return signer.reply(nonce, 500, {"error": "internal_error"})
        known = refunds.setdefault(body["id"], {**body, "status": "charged", "reason": ""})
        return signer.reply(nonce, 200, {"id": known["id"], "status": "charged", "reason": ""})

    @app.post("/sim/numbers", status_code=201)
    async def set_number(body: dict[str, Any]) -> dict[str, Any]:
        states[body["msisdn"]] = body.get("state", "active")
        return {"msisdn": body["msisdn"], "state": states[body["msisdn"]]}

    @app.get("/sim/numbers/{msisdn}")
    async def number(msisdn: str) -> dict[str, Any]:
        charged = sum(amount for who, amount, refused in lines.values() if who == msisdn and not refused)
        back = sum(x["amount"] for x in refunds.values() if x["msisdn"] == msisdn)
        return {"msisdn": msisdn, "state": states.get(msisdn, "active"), "billed": charged - back}

    @app.put("/sim/behaviour")
    async def behaviour(body: dict[str, Any]) -> dict[str, Any]:
        down["down"] = bool(body.get("down", False))
        return down

    @app.get("/sim/orders")
    async def orders() -> list[dict[str, Any]]:
        return [*({"id": k, "msisdn": m, "amount": a, "status": "refused" if r else "charged", "reason": r}
                  for k, (m, a, r) in list(lines.items())[:1000]), *({**r, "refund": True} for r in refunds.values())]

    @app.get("/sim/summary")
    async def summary() -> dict[str, Any]:
        """Totals over every line (a big billing run's check)."""
        charged = [a for _, a, r in lines.values() if not r]
        return {"lines": len(lines), "charged": len(charged), "amount": sum(charged),
                "refunded": sum(int(r["amount"]) for r in refunds.values())}

    @app.post("/sim/reset")
    async def reset() -> dict[str, Any]:
        lines.clear()
        refunds.clear()
        states.clear()
        down["down"] = False
        return {"reset": True}

    return app


def main(argv: list[str] | None = None) -> None:
    parser = command_line("sp_billing", "SIMULATOR of the operator's billing system for SP information fees.",
                          "--port 8112", 8112, "demo-sp-billing-secret")
    args = parser.parse_args(argv)
    serve(create_sp_billing_app(args.secret), args)


if __name__ == "__main__":
    main()
