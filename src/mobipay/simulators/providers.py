"""SIMULATOR of the providers behind products sold from the wallet: the operator's product
platform (subscribes a number to wireless music, 12580, Fetion…) or an insurer (issues a
policy, takes a cancellation). Speaks what ``products/gateway_http.py`` speaks.

- ``POST /v1/orders`` ``{order_id, action: deliver|cancel, amount, product, msisdn, …}``,
  ``GET /v1/orders/{order_id}``, ``GET /v1/statements/{date}``: through the simulators'
  order counter (``desk.py``): idempotent, with latency, declines, errors, lost replies
  and late success. A delivery's reference is the subscription or policy number.
- Numbers listed with ``POST /sim/barred`` ``{msisdn}`` are refused (``subscriber_barred``);
  a cancellation of a policy never issued is refused (``no_such_policy``).

Run: ``python -m mobipay.simulators.providers --role insurer --port 8106``
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response

from mobipay.simulators.desk import Behaviour, Order, OrderDesk, behaviour_from, command_line, serve


class Provider:
    def __init__(self, secret: bytes, behaviour: Behaviour, role: str) -> None:
        self.barred: set[str] = set()
        self.issued: set[str] = set()  # references delivered (policies, subscriptions)
        self.cancelled: set[str] = set()
        self.requests: dict[str, dict[str, Any]] = {}
        self.desk = OrderDesk(secret, behaviour, self.act, ref_prefix="P" if role == "insurer" else "S")

    def act(self, order: Order) -> str | None:
        request = self.requests[order.order_id]
        if order.kind == "cancel":
            policy = str(request.get("policy", ""))
            if policy not in self.issued or policy in self.cancelled:
                return "no_such_policy"
            self.cancelled.add(policy)
            return None
        if request.get("msisdn") in self.barred:
            return "subscriber_barred"
        self.issued.add(order.ref)
        return None

    def forget_all(self) -> None:
        self.barred.clear()
        self.issued.clear()
        self.cancelled.clear()
        self.requests.clear()


def create_provider_app(secret: str = "demo-provider-secret", behaviour: Behaviour | None = None,  # noqa: S107
                        role: str = "products") -> FastAPI:
    provider = Provider(secret.encode(), behaviour or Behaviour(), role)
    desk = provider.desk
    app = FastAPI(title=f"{'Insurer' if role == 'insurer' else 'Operator product platform'} SIMULATOR")

    @app.post("/v1/orders")
    async def order(request: Request) -> Response:
        nonce, body = await desk.read(request)
        if isinstance(body, Response):
            return body
        provider.requests.setdefault(body["order_id"], body)
        return await desk.take(nonce, body["order_id"], str(body["action"]), str(body.get("msisdn", "")),
                               int(body["amount"]))

    @app.post("/sim/barred", status_code=201)
    async def bar(body: dict[str, Any]) -> dict[str, Any]:
        provider.barred.add(str(body["msisdn"]))
        return {"barred": sorted(provider.barred)}

    desk.install_order_routes(app, "/v1/orders/{order_id}")
    desk.install_controls(app, provider.forget_all)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = command_line("providers", "SIMULATOR of the operator's product platform or an insurer.",
                          "--role insurer --port 8106", 8105, "demo-provider-secret")
    parser.add_argument("--role", choices=("products", "insurer"), default="products")
    args = parser.parse_args(argv)
    serve(create_provider_app(args.secret, behaviour_from(args), args.role), args)

if __name__ == "__main__":
    main()
