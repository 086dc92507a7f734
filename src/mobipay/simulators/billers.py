"""SIMULATOR of the billers of the utility bill zone (water, power, gas companies…), all in
one process, speaking the signed biller protocol that ``bills/gateway_http.py`` speaks.

- ``POST /v1/billers/{code}/bills/fetch`` ``{customer_id}``: the open bill of a customer.
  Bills are made up deterministically from the customer number (amount, name, number)
  for the current month; customer numbers starting ``0000`` have no bill, and a bill is
  gone once paid in full.
- ``POST /v1/billers/{code}/payments`` ``{order_id, customer_id, amount, bill_number}``,
  ``GET …/payments/{order_id}``, ``GET /v1/billers/{code}/statements/{date}``: through the
  simulators' order counter (``desk.py``), one per biller, so each biller can be slow,
  refuse, fail, lose replies or succeed late on its own (``PUT /sim/billers/{code}/behaviour``).

Run: ``python -m mobipay.simulators.billers --port 8104``
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI, Request, Response

from mobipay.kernel.clock import SHANGHAI
from mobipay.simulators.desk import Behaviour, Order, OrderDesk, behaviour_from, command_line, serve

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"


def registry_latencies() -> dict[str, int]:
    """Each biller's latency from mobipay's shipped registry (``latency_ms``): billers differ."""
    import csv
    from importlib.resources import files

    text = files("mobipay.bills").joinpath("data/billers.csv").read_text(encoding="utf-8")
    rows = csv.DictReader(line for line in text.splitlines() if line.strip() and not line.startswith("#"))
    return {r["code"]: int(r["latency_ms"] or 0) for r in rows}


class Billers:
    def __init__(self, secret: bytes, behaviour: Behaviour, latencies: dict[str, int] | None = None) -> None:
        self.secret = secret
        self.default = behaviour
        self.latencies = latencies or {}
        self.desks: dict[str, OrderDesk] = {}
        self.paid: dict[tuple[str, str, str], int] = {}  # (biller, customer, period) -> paid

    def desk(self, code: str) -> OrderDesk:
        if code not in self.desks:
            behaviour = Behaviour(**vars(self.default))
            behaviour.latency_ms = max(behaviour.latency_ms, self.latencies.get(code, 0))
            self.desks[code] = OrderDesk(self.secret, behaviour, self.pay, ref_prefix=code[:4])
        return self.desks[code]

    def bill(self, code: str, customer_id: str) -> dict[str, Any] | None:
        """The customer's open bill this month, or None."""
        if customer_id.startswith("0000"):
            return None
        now = datetime.now(SHANGHAI)
        period = now.strftime("%Y-%m")
        h = int(hashlib.sha256(f"{code}|{customer_id}|{period}".encode()).hexdigest(), 16)
        due = 1_000 + h % 49_000 // 10 * 10
        left = due - self.paid.get((code, customer_id, period), 0)
        if left <= 0:
            return None
        name = SURNAMES[h % len(SURNAMES)] + GIVEN[h // 7 % len(GIVEN)] + GIVEN[h // 11 % len(GIVEN)]
        due_date = (now.replace(day=1) + timedelta(days=45)).replace(day=15).date()
        return {"bill_number": f"{code}-{period}-{h % 10**8:08d}", "amount_due": left, "customer_name": name,
                "due_date": due_date.isoformat(), "period": period}

    def pay(self, order: Order) -> str | None:
        code, customer_id = order.target.split("|", 1)
        if customer_id.startswith("9999"):
            return "account_closed"
        period = datetime.fromisoformat(order.created_at).astimezone(SHANGHAI).strftime("%Y-%m")
        key = (code, customer_id, period)
        self.paid[key] = self.paid.get(key, 0) + order.amount
        return None


def create_billers_app(secret: str = "demo-biller-secret", behaviour: Behaviour | None = None,  # noqa: S107
                       latencies: dict[str, int] | None = None) -> FastAPI:
    sim = Billers(secret.encode(), behaviour or Behaviour(), latencies)
    app = FastAPI(title="Billers SIMULATOR", summary="The far side of mobipay's biller adapter")

    @app.post("/v1/billers/{code}/bills/fetch")
    async def fetch(code: str, request: Request) -> Response:
        desk = sim.desk(code)
        nonce, body = await desk.read(request)
        if isinstance(body, Response):
            return body
        bill = sim.bill(code, str(body.get("customer_id", "")))
        if bill is None:
            return desk.signer.reply(nonce, 404, {"error": "no_open_bill"})
        return desk.signer.reply(nonce, 200, bill)

    @app.post("/v1/billers/{code}/payments")
    async def pay(code: str, request: Request) -> Response:
        desk = sim.desk(code)
        nonce, body = await desk.read(request)
        if isinstance(body, Response):
            return body
        return await desk.take(nonce, body["order_id"], "payment", f"{code}|{body['customer_id']}",
                               int(body["amount"]))

    @app.get("/v1/billers/{code}/payments/{order_id}")
    async def query(code: str, order_id: str, request: Request) -> Response:
        desk = sim.desk(code)
        nonce, body = await desk.read(request)
        return body if isinstance(body, Response) else desk.query(nonce, order_id)

    @app.get("/v1/billers/{code}/statements/{day}")
    async def statement(code: str, day: str, request: Request) -> Response:
        desk = sim.desk(code)
        nonce, body = await desk.read(request)
        return body if isinstance(body, Response) else desk.statement(nonce, day)

    # ---- simulator controls (unsigned: tests and demos only)

    @app.put("/sim/billers/{code}/behaviour")
    async def behave(code: str, body: dict[str, Any]) -> dict[str, Any]:
        desk = sim.desk(code)
        desk.behaviour = Behaviour(**body)
        return vars(desk.behaviour)

    @app.post("/sim/billers/{code}/release")
    async def release(code: str) -> dict[str, Any]:
        """Finish this biller's held orders and send its held-back replies."""
        return {"released": await sim.desk(code).release()}

    @app.post("/sim/billers/{code}/orders/{order_id}/forget")
    async def forget(code: str, order_id: str) -> dict[str, Any]:
        return {"forgotten": sim.desk(code).orders.pop(order_id, None) is not None}

    @app.get("/sim/orders")
    async def orders() -> list[dict[str, Any]]:
        return [{"biller": code, **vars(o)} for code, d in sim.desks.items() for o in d.orders.values()]

    @app.post("/sim/reset")
    async def reset() -> dict[str, Any]:
        for desk in sim.desks.values():
            await desk.release()
        sim.desks.clear()
        sim.paid.clear()
        return {"reset": True, "at": datetime.now(UTC).isoformat()}

    return app


def main(argv: list[str] | None = None) -> None:
    parser = command_line("billers", "SIMULATOR of the bill zone's billers (all of them, one process).",
                          "--port 8104 --registry-latency --processing-rate 0.05", 8104, "demo-biller-secret")
    parser.add_argument("--registry-latency", action="store_true",
                        help="each biller as slow as its latency_ms in the shipped registry")
    args = parser.parse_args(argv)
    latencies = registry_latencies() if args.registry_latency else None
    serve(create_billers_app(args.secret, behaviour_from(args), latencies), args)

if __name__ == "__main__":
    main()
