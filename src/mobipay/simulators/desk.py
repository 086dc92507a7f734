"""SIMULATORS' order counter: what every simulated partner (bank, operator billing,
top-up aggregator, biller) does with a money order, including the ways real partners
make their callers' life hard.

- Orders are idempotent by ``order_id``: a repeated order gets the first answer again.
- ``Behaviour`` rates pick, per new order: a 500 before anything happens (``error_rate``),
  a decline (``decline_rate``), "processing" that finishes ``settle_after_s`` later
  (``processing_rate``), or the order is applied and, with ``timeout_rate``, the reply
  is held back for ``hang_s`` (the caller times out though the money moved).
- ``settle_after_s`` or ``hang_s`` set to ``null`` holds the order (or the reply) until
  ``POST /sim/release``: a test decides when the partner finishes, instead of racing a
  timer that a loaded machine may lose.
- ``GET …/{order_id}`` answers a status query (404 ``not_found`` for an order never seen);
  the daily file lists every finished order of a Shanghai day as CSV.
- ``/sim/*`` controls (unsigned; no real partner has them): behaviour, orders, reset.
"""

from __future__ import annotations

import asyncio
import csv
import io
import random
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request, Response

from mobipay.kernel.clock import SHANGHAI
from mobipay.simulators.signing import Signer


@dataclass
class Behaviour:
    """How the partner misbehaves; rates are probabilities per new order."""

    latency_ms: int = 0
    decline_rate: float = 0.0  # answered "failed": declined
    error_rate: float = 0.0  # 500 before anything happened
    timeout_rate: float = 0.0  # applied, but the reply comes after hang_s (the caller times out)
    processing_rate: float = 0.0  # answered "processing"; finishes settle_after_s later
    hang_s: float | None = 30.0  # None: until POST /sim/release
    settle_after_s: float | None = 2.0  # None: until POST /sim/release
    seed: int | None = None


@dataclass
class Order:
    order_id: str
    kind: str
    target: str  # what the order acts on: a card token, a phone number, a customer id
    amount: int
    status: str  # processing | succeeded | failed
    ref: str
    reason: str
    created_at: str
    completed_at: str | None = None


#: Does the order's effect; returns a failure reason, or None when it succeeded.
Apply = Callable[[Order], str | None]


class OrderDesk:
    def __init__(self, secret: bytes, behaviour: Behaviour, apply: Apply, ref_prefix: str = "R") -> None:
        self.signer = Signer(secret)
        self.behaviour = behaviour
        self.rng = random.Random(behaviour.seed)
        self.apply_effect = apply
        self.ref_prefix = ref_prefix
        self.orders: dict[str, Order] = {}
        self.lock = asyncio.Lock()
        self.tasks: set[asyncio.Task[None]] = set()
        self.held: list[Order] = []  # "processing" until released
        self.released = asyncio.Event()  # replies held back wait for it

    async def release(self) -> int:
        """Finish every held order and send every held-back reply; how many were held."""
        async with self.lock:
            held, self.held = self.held, []
            for order in held:
                self.apply(order)
        released, self.released = self.released, asyncio.Event()
        released.set()
        return len(held)

    async def read(self, request: Request) -> tuple[str, dict[str, Any] | Response]:
        """The signed request's nonce and body (or the 401 to return), after the latency."""
        nonce, body = await self.signer.read(request)
        if self.behaviour.latency_ms and not isinstance(body, Response):
            await asyncio.sleep(self.behaviour.latency_ms / 1000)
        return nonce, body

    def public(self, order: Order) -> dict[str, Any]:
        """An order as the partner tells it (what it acted on stays inside)."""
        return {k: v for k, v in asdict(order).items() if k != "target"}

    def apply(self, order: Order) -> None:
        if order.status != "processing":
            return
        reason = self.apply_effect(order)
        order.status, order.reason = ("failed", reason) if reason else ("succeeded", "")
        order.completed_at = datetime.now(UTC).isoformat()

    def _finish_later(self, order: Order) -> None:
        settle_after_s = self.behaviour.settle_after_s
        if settle_after_s is None:
            self.held.append(order)
            return

        async def finish() -> None:
            await asyncio.sleep(settle_after_s)
            async with self.lock:
                self.apply(order)

        task = asyncio.get_running_loop().create_task(finish())
        self.tasks.add(task)  # keep a reference until it is done
        task.add_done_callback(self.tasks.discard)

    async def take(self, nonce: str, order_id: str, kind: str, target: str, amount: int) -> Response:
        """A new order (behaving as configured) or a known one's answer again."""
        b, roll, hang = self.behaviour, self.rng.random(), False
        async with self.lock:
            order = self.orders.get(order_id)
            if order is None:
                if roll < b.error_rate:
                    return self.signer.reply(nonce, 500, {"error": "internal_error"})
                order = Order(order_id, kind, target, amount, "processing",
                              self.ref_prefix + secrets.token_hex(8).upper(), "", datetime.now(UTC).isoformat())
                self.orders[order_id] = order
                roll -= b.error_rate
                if roll < b.decline_rate:
                    order.status, order.reason, order.completed_at = "failed", "declined", order.created_at
                elif (roll := roll - b.decline_rate) < b.processing_rate:
                    self._finish_later(order)
                else:
                    self.apply(order)
                    hang = roll - b.processing_rate < b.timeout_rate
            response = self.signer.reply(nonce, 200, self.public(order))
        if hang and b.hang_s is None:
            await self.released.wait()
        elif hang and b.hang_s:
            await asyncio.sleep(b.hang_s)
        return response

    def query(self, nonce: str, order_id: str) -> Response:
        order = self.orders.get(order_id)
        if order is None:
            return self.signer.reply(nonce, 404, {"order_id": order_id, "status": "not_found"})
        return self.signer.reply(nonce, 200, self.public(order))

    def statement(self, nonce: str, day: str) -> Response:
        """The daily file: every order finished on ``day`` (Shanghai), as CSV."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["order_id", "ref", "type", "amount_fen", "status", "completed_at"])
        for o in self.orders.values():
            if o.completed_at and datetime.fromisoformat(o.completed_at).astimezone(SHANGHAI).date().isoformat() == day:
                writer.writerow([o.order_id, o.ref, o.kind, o.amount, o.status, o.completed_at])
        return self.signer.reply(nonce, 200, out.getvalue().encode(), media_type="text/csv")

    def install_order_routes(self, app: FastAPI, query_path: str, statement_path: str = "/v1/statements/{day}"
                             ) -> None:
        """The status query (``query_path`` with ``{order_id}``) and the daily file, signed."""

        async def query(order_id: str, request: Request) -> Response:
            nonce, body = await self.read(request)
            return body if isinstance(body, Response) else self.query(nonce, order_id)

        async def statement(day: str, request: Request) -> Response:
            nonce, body = await self.read(request)
            return body if isinstance(body, Response) else self.statement(nonce, day)

        app.add_api_route(query_path, query, methods=["GET"])
        app.add_api_route(statement_path, statement, methods=["GET"])

    def install_controls(self, app: FastAPI, on_reset: Callable[[], None]) -> None:
        @app.put("/sim/behaviour")
        async def set_behaviour(body: dict[str, Any]) -> dict[str, Any]:
            self.behaviour = Behaviour(**body)
            self.rng = random.Random(self.behaviour.seed)
            return asdict(self.behaviour)

        @app.get("/sim/orders")
        async def orders() -> list[dict[str, Any]]:
            return [asdict(o) for o in self.orders.values()]

        @app.post("/sim/orders/{order_id}/forget")
        async def forget(order_id: str) -> dict[str, Any]:
            """Lose an order (to test the "here but not there" reconciliation case)."""
            return {"forgotten": self.orders.pop(order_id, None) is not None}

        @app.post("/sim/release")
        async def release() -> dict[str, Any]:
            """Finish the held orders and send the held-back replies (behaviour ``null`` times)."""
            return {"released": await self.release()}

        @app.post("/sim/reset")
        async def reset() -> dict[str, Any]:
            """Forget every order and behave well: a fresh partner for the next test."""
            await self.release()
            self.orders.clear()
            self.behaviour = Behaviour()
            on_reset()
            return {"reset": True}


def command_line(prog: str, description: str, example: str, port: int, secret: str) -> Any:
    """A simulator's command line: where to listen, the shared secret, its behaviour."""
    import argparse

    parser = argparse.ArgumentParser(prog=f"python -m mobipay.simulators.{prog}", description=description,
                                     epilog=f"example: python -m mobipay.simulators.{prog} {example}")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=port)
    parser.add_argument("--secret", default=secret, help="shared HMAC secret")
    behaviour_arguments(parser)
    return parser


def serve(app: FastAPI, args: Any) -> None:
    import uvicorn

    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


def behaviour_arguments(parser: Any) -> None:
    """Add the behaviour options to a simulator's command line."""
    for name, kind, default in (("latency-ms", int, 0), ("decline-rate", float, 0.0), ("error-rate", float, 0.0),
                                ("timeout-rate", float, 0.0), ("processing-rate", float, 0.0),
                                ("hang-s", float, 30.0), ("settle-after-s", float, 2.0)):
        parser.add_argument(f"--{name}", type=kind, default=default)


def behaviour_from(args: Any) -> Behaviour:
    return Behaviour(args.latency_ms, args.decline_rate, args.error_rate, args.timeout_rate, args.processing_rate,
                     args.hang_s, args.settle_after_s)
