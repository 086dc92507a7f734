"""SIMULATOR of a partner bank's payment gateway: the far side of ``wallet/bank_http.py``.

No bank can be reached from here, so this process plays one, speaking the protocol the
real adapter speaks (docs/bank-protocol.md) with the behaviours that make the adapter's
job hard: latency, declines, server errors before anything happens, replies lost after
the money moved (a timeout to the caller), and orders that finish later ("processing").

- Every request is signed by the caller and every reply by the bank: HMAC-SHA256 over
  ``timestamp \\n nonce \\n method \\n path \\n body`` (reply: ``timestamp \\n request
  nonce \\n body``) with the shared secret; a stale timestamp or a reused nonce is refused.
- Card holders are accounts of this bank (name, identity card, phone, balance), added by
  ``POST /sim/accounts`` or, with ``--auto-open``, opened for whoever binds an unknown card.
- Debits (cash-in) and credits (cash-out) are idempotent by ``order_id``: a repeated
  order returns the first answer and moves nothing again.
- ``GET /v1/statements/{date}`` is the daily settlement file (CSV), final orders only.

State lives in memory: a restart is a bank that forgot everything, so keep it running
for the life of a test or a demo. Never imported by mobipay itself (import-linter).

Run: ``python -m mobipay.simulators.bank --port 8101 --auto-open``
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import random
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request, Response

from mobipay.simulators.signing import Signer

SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass
class Behaviour:
    """How the bank misbehaves; rates are probabilities per money order."""

    latency_ms: int = 0
    decline_rate: float = 0.0  # answered "failed": insufficient funds
    error_rate: float = 0.0  # 500 before anything moved
    timeout_rate: float = 0.0  # the money moves, the reply comes after hang_s (caller times out)
    processing_rate: float = 0.0  # answered "processing"; succeeds settle_after_s later
    hang_s: float = 30.0
    settle_after_s: float = 2.0
    seed: int | None = None


@dataclass
class Account:
    card_number: str
    name: str
    id_number: str
    phone: str
    balance: int = 1_000_000_00
    token: str = field(default_factory=lambda: "tok_" + secrets.token_hex(12))


@dataclass
class Order:
    order_id: str
    kind: str  # debit (from the card) | credit (to the card)
    token: str
    amount: int
    status: str  # processing | succeeded | failed
    bank_ref: str
    reason: str
    created_at: str
    completed_at: str | None = None


class Bank:
    def __init__(self, secret: bytes, behaviour: Behaviour, auto_open: bool) -> None:
        self.signer = Signer(secret)
        self.behaviour = behaviour
        self.auto_open = auto_open
        self.rng = random.Random(behaviour.seed)
        self.accounts: dict[str, Account] = {}
        self.by_token: dict[str, Account] = {}
        self.orders: dict[str, Order] = {}
        self.lock = asyncio.Lock()
        self.tasks: set[asyncio.Task[None]] = set()

    def add(self, account: Account) -> Account:
        known = self.accounts.get(account.card_number)
        if known is not None:  # an existing card keeps its token
            account.token = known.token
        self.accounts[account.card_number] = account
        self.by_token[account.token] = account
        return account

    def settle_later(self, order: Order) -> None:
        async def finish() -> None:
            await asyncio.sleep(self.behaviour.settle_after_s)
            async with self.lock:
                self.apply(order)

        task = asyncio.get_running_loop().create_task(finish())
        self.tasks.add(task)  # keep a reference until it is done
        task.add_done_callback(self.tasks.discard)

    def apply(self, order: Order) -> None:
        """Move the money of an accepted order (once)."""
        if order.status != "processing":
            return
        account = self.by_token[order.token]
        if order.kind == "debit" and account.balance < order.amount:
            order.status, order.reason = "failed", "insufficient_funds"
        else:
            account.balance += order.amount if order.kind == "credit" else -order.amount
            order.status = "succeeded"
        order.completed_at = datetime.now(UTC).isoformat()


def _public(order: Order) -> dict[str, Any]:
    """An order as the bank tells it (the card token stays inside)."""
    return {k: v for k, v in asdict(order).items() if k != "token"}


def create_bank_app(secret: str = "demo-bank-secret", behaviour: Behaviour | None = None,  # noqa: S107 - demo
                    auto_open: bool = False) -> FastAPI:
    bank = Bank(secret.encode(), behaviour or Behaviour(), auto_open)
    app = FastAPI(title="Bank gateway SIMULATOR", summary="The far side of mobipay's bank adapter")
    app.state.bank = bank

    async def signed_body(request: Request) -> tuple[str, dict[str, Any] | Response]:
        nonce, body = await bank.signer.read(request)
        if bank.behaviour.latency_ms and not isinstance(body, Response):
            await asyncio.sleep(bank.behaviour.latency_ms / 1000)
        return nonce, body

    @app.post("/v1/cards/verify")
    async def verify(request: Request) -> Response:
        nonce, body = await signed_body(request)
        if isinstance(body, Response):
            return body
        async with bank.lock:
            account = bank.accounts.get(body.get("card_number", ""))
            if account is None and bank.auto_open:
                account = bank.add(Account(body["card_number"], body["name"], body["id_number"], body["phone"]))
            if account is None:
                return bank.signer.reply(nonce, 200, {"result": "rejected", "reason": "card_not_found"})
            holder = (account.name, account.id_number, account.phone)
            if holder != (body.get("name"), body.get("id_number"), body.get("phone")):
                return bank.signer.reply(nonce, 200, {"result": "rejected", "reason": "holder_mismatch"})
            return bank.signer.reply(nonce, 200, {"result": "verified", "token": account.token})

    async def money(request: Request, kind: str) -> Response:
        nonce, body = await signed_body(request)
        if isinstance(body, Response):
            return body
        b, roll, hang = bank.behaviour, bank.rng.random(), False
        async with bank.lock:
            order = bank.orders.get(body["order_id"])
            if order is None:  # a new order; a known one just gets its answer again
                if roll < b.error_rate:
                    return bank.signer.reply(nonce, 500, {"error": "internal_error"})
                if body.get("token") not in bank.by_token:
                    return bank.signer.reply(nonce, 200, {"order_id": body["order_id"], "status": "failed",
                                                    "reason": "unknown_token", "bank_ref": ""})
                order = Order(body["order_id"], kind, body["token"], int(body["amount"]), "processing",
                              "B" + secrets.token_hex(8).upper(), "", datetime.now(UTC).isoformat())
                bank.orders[order.order_id] = order
                roll -= b.error_rate
                if roll < b.decline_rate:
                    order.status, order.reason = "failed", "declined"
                    order.completed_at = order.created_at
                elif (roll := roll - b.decline_rate) < b.processing_rate:
                    bank.settle_later(order)
                else:
                    bank.apply(order)
                    hang = roll - b.processing_rate < b.timeout_rate
            response = bank.signer.reply(nonce, 200, _public(order))
        if hang:  # the money moved; the caller will not hear it in time
            await asyncio.sleep(b.hang_s)
        return response

    @app.post("/v1/debits")
    async def debit(request: Request) -> Response:
        return await money(request, "debit")

    @app.post("/v1/credits")
    async def credit(request: Request) -> Response:
        return await money(request, "credit")

    @app.get("/v1/orders/{order_id}")
    async def query(order_id: str, request: Request) -> Response:
        nonce, body = await signed_body(request)
        if isinstance(body, Response):
            return body
        order = bank.orders.get(order_id)
        if order is None:
            return bank.signer.reply(nonce, 404, {"order_id": order_id, "status": "not_found"})
        return bank.signer.reply(nonce, 200, _public(order))

    @app.get("/v1/statements/{day}")
    async def statement(day: str, request: Request) -> Response:
        """The daily file: every final order completed on ``day`` (Shanghai)."""
        nonce, body = await signed_body(request)
        if isinstance(body, Response):
            return body
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["order_id", "bank_ref", "type", "amount_fen", "status", "completed_at"])
        for o in bank.orders.values():
            if o.completed_at and datetime.fromisoformat(o.completed_at).astimezone(SHANGHAI).date().isoformat() == day:
                writer.writerow([o.order_id, o.bank_ref, o.kind, o.amount, o.status, o.completed_at])
        return bank.signer.reply(nonce, 200, out.getvalue().encode(), media_type="text/csv")

    # ---- simulator controls (unsigned: tests and demos only; a real bank has none of this)

    @app.post("/sim/accounts", status_code=201)
    async def add_account(body: dict[str, Any]) -> dict[str, Any]:
        account = bank.add(Account(body["card_number"], body["name"], body["id_number"], body["phone"],
                                   int(body.get("balance", 1_000_000_00))))
        return {"card_number": account.card_number, "balance": account.balance}

    @app.get("/sim/accounts/{card_number}")
    async def get_account(card_number: str) -> dict[str, Any]:
        account = bank.accounts[card_number]
        return {"card_number": account.card_number, "balance": account.balance}

    @app.put("/sim/behaviour")
    async def set_behaviour(body: dict[str, Any]) -> dict[str, Any]:
        bank.behaviour = Behaviour(**body)
        bank.rng = random.Random(bank.behaviour.seed)
        return asdict(bank.behaviour)

    @app.get("/sim/orders")
    async def orders() -> list[dict[str, Any]]:
        return [_public(o) for o in bank.orders.values()]

    @app.post("/sim/reset")
    async def reset() -> dict[str, Any]:
        """Forget every account and order, and behave well (a fresh bank for the next test)."""
        bank.accounts.clear()
        bank.by_token.clear()
        bank.orders.clear()
        bank.behaviour = Behaviour()
        return {"reset": True}

    @app.post("/sim/orders/{order_id}/forget")
    async def forget(order_id: str) -> dict[str, Any]:
        """Make the bank lose an order (to test the "here but not there" reconciliation case)."""
        return {"forgotten": bank.orders.pop(order_id, None) is not None}

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m mobipay.simulators.bank",
        description="SIMULATOR of a partner bank's gateway for mobipay's cash-in and cash-out.",
        epilog="example: python -m mobipay.simulators.bank --port 8101 --auto-open --latency-ms 50 "
        "--timeout-rate 0.01",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    parser.add_argument("--secret", default="demo-bank-secret", help="shared HMAC secret (MOBIPAY_BANK_SECRET)")
    parser.add_argument("--auto-open", action="store_true", help="open an account for any unknown card bound")
    for name, kind, default in (("latency-ms", int, 0), ("decline-rate", float, 0.0), ("error-rate", float, 0.0),
                                ("timeout-rate", float, 0.0), ("processing-rate", float, 0.0),
                                ("hang-s", float, 30.0), ("settle-after-s", float, 2.0)):
        parser.add_argument(f"--{name}", type=kind, default=default)
    args = parser.parse_args(argv)
    behaviour = Behaviour(args.latency_ms, args.decline_rate, args.error_rate, args.timeout_rate,
                          args.processing_rate, args.hang_s, args.settle_after_s)
    import uvicorn

    uvicorn.run(create_bank_app(args.secret, behaviour, args.auto_open), host=args.host, port=args.port,
                log_level="warning")


if __name__ == "__main__":
    main()
