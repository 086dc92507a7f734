"""SIMULATOR of the far sides of phone top-up: the home operator's billing system (for
its own numbers) and a top-up aggregator (for other operators' numbers). Both speak the
protocol ``topup/gateway_http.py`` speaks; run one process per role.

- ``POST /v1/recharges`` ``{order_id, msisdn, amount}`` credits the number's phone
  balance; ``GET /v1/recharges/{order_id}`` is the status query; ``GET
  /v1/statements/{date}`` the daily file. Orders go through the simulators' order counter
  (``desk.py``): idempotent, with latency, declines, errors, lost replies, late success.
- A number listed with ``POST /sim/numbers`` ``{msisdn, state}`` as ``suspended`` or
  ``cancelled`` is refused (``number_suspended`` / ``number_cancelled``); any other number
  is an active subscriber whose balance starts at zero. ``GET /sim/numbers/{msisdn}``
  shows the phone balance.

Run: ``python -m mobipay.simulators.telco --role billing --port 8102``
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response

from mobipay.simulators.desk import Behaviour, Order, OrderDesk, behaviour_from, command_line, serve


class Telco:
    def __init__(self, secret: bytes, behaviour: Behaviour, role: str) -> None:
        self.role = role
        self.balances: dict[str, int] = {}
        self.states: dict[str, str] = {}
        self.desk = OrderDesk(secret, behaviour, self.recharge, ref_prefix="T" if role == "billing" else "A")

    def recharge(self, order: Order) -> str | None:
        state = self.states.get(order.target, "active")
        if state != "active":
            return f"number_{state}"
        self.balances[order.target] = self.balances.get(order.target, 0) + order.amount
        return None

    def forget_all(self) -> None:
        self.balances.clear()
        self.states.clear()


def create_telco_app(secret: str = "demo-telco-secret", behaviour: Behaviour | None = None,  # noqa: S107 - demo
                     role: str = "billing") -> FastAPI:
    telco = Telco(secret.encode(), behaviour or Behaviour(), role)
    desk = telco.desk
    title = "Operator billing SIMULATOR" if role == "billing" else "Top-up aggregator SIMULATOR"
    app = FastAPI(title=title, summary="The far side of mobipay's top-up adapter")

    @app.post("/v1/recharges")
    async def recharge(request: Request) -> Response:
        nonce, body = await desk.read(request)
        if isinstance(body, Response):
            return body
        return await desk.take(nonce, body["order_id"], "recharge", str(body["msisdn"]), int(body["amount"]))

    @app.post("/sim/numbers", status_code=201)
    async def set_number(body: dict[str, Any]) -> dict[str, Any]:
        telco.states[body["msisdn"]] = body.get("state", "active")
        return {"msisdn": body["msisdn"], "state": telco.states[body["msisdn"]]}

    @app.get("/sim/numbers/{msisdn}")
    async def number(msisdn: str) -> dict[str, Any]:
        return {"msisdn": msisdn, "state": telco.states.get(msisdn, "active"), "balance": telco.balances.get(msisdn, 0)}

    desk.install_order_routes(app, "/v1/recharges/{order_id}")
    desk.install_controls(app, telco.forget_all)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = command_line("telco", "SIMULATOR of the home operator's billing system or a top-up aggregator.",
                          "--role aggregator --port 8103 --processing-rate 0.2", 8102, "demo-telco-secret")
    parser.add_argument("--role", choices=("billing", "aggregator"), default="billing")
    args = parser.parse_args(argv)
    serve(create_telco_app(args.secret, behaviour_from(args), args.role), args)

if __name__ == "__main__":
    main()
