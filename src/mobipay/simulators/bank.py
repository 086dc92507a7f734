"""SIMULATOR of a partner bank's payment gateway: the far side of ``wallet/gateway_http.py``.

No bank can be reached from here, so this process plays one, speaking the protocol the
real adapter speaks (docs/bank-protocol.md) with the behaviours that make the adapter's
job hard: latency, declines, server errors before anything happens, replies lost after
the money moved (a timeout to the caller), and orders that finish later ("processing").

- Every request is signed by the caller and every reply by the bank: HMAC-SHA256 over
  ``timestamp \\n nonce \\n method \\n path \\n body`` (reply: ``timestamp \\n request
  nonce \\n body``) with the shared secret; a stale timestamp or a reused nonce is refused.
- Card holders are accounts of this bank (name, identity card, phone, balance), added by
  ``POST /sim/accounts`` or, with ``--auto-open``, opened for whoever binds an unknown card.
- Debits (cash-in) and credits (cash-out) go through the simulators' order counter
  (``desk.py``): idempotent by ``order_id``, misbehaving as configured, with status
  queries and the daily settlement file (``GET /v1/statements/{date}``, CSV).

State lives in memory: a restart is a bank that forgot everything, so keep it running
for the life of a test or a demo. Never imported by mobipay itself (import-linter).

Run: ``python -m mobipay.simulators.bank --port 8101 --auto-open``
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, Response

from mobipay.simulators.desk import Behaviour, Order, OrderDesk, behaviour_from, command_line, serve


@dataclass
class Account:
    card_number: str
    name: str
    id_number: str
    phone: str
    balance: int = 1_000_000_00
    token: str = field(default_factory=lambda: "tok_" + secrets.token_hex(12))


class Bank:
    def __init__(self, secret: bytes, behaviour: Behaviour, auto_open: bool) -> None:
        self.auto_open = auto_open
        self.accounts: dict[str, Account] = {}
        self.by_token: dict[str, Account] = {}
        self.desk = OrderDesk(secret, behaviour, self.move, ref_prefix="B")

    def add(self, account: Account) -> Account:
        known = self.accounts.get(account.card_number)
        if known is not None:  # an existing card keeps its token
            account.token = known.token
        self.accounts[account.card_number] = account
        self.by_token[account.token] = account
        return account

    def move(self, order: Order) -> str | None:
        """Debit or credit the card's account (or pay out to a company account); the failure reason, if any."""
        if order.kind == "payout":
            return "account_closed" if order.target.startswith("acct:0000") else None
        account = self.by_token.get(order.target)
        if account is None:
            return "unknown_token"
        if order.kind == "debit" and account.balance < order.amount:
            return "insufficient_funds"
        account.balance += order.amount if order.kind == "credit" else -order.amount
        return None

    def forget_all(self) -> None:
        self.accounts.clear()
        self.by_token.clear()


def create_bank_app(secret: str = "demo-bank-secret", behaviour: Behaviour | None = None,  # noqa: S107 - demo
                    auto_open: bool = False) -> FastAPI:
    bank = Bank(secret.encode(), behaviour or Behaviour(), auto_open)
    desk = bank.desk
    app = FastAPI(title="Bank gateway SIMULATOR", summary="The far side of mobipay's bank adapter")
    app.state.bank = bank

    @app.post("/v1/cards/verify")
    async def verify(request: Request) -> Response:
        nonce, body = await desk.read(request)
        if isinstance(body, Response):
            return body
        async with desk.lock:
            account = bank.accounts.get(body.get("card_number", ""))
            if account is None and bank.auto_open:
                account = bank.add(Account(body["card_number"], body["name"], body["id_number"], body["phone"]))
            if account is None:
                return desk.signer.reply(nonce, 200, {"result": "rejected", "reason": "card_not_found"})
            holder = (account.name, account.id_number, account.phone)
            if holder != (body.get("name"), body.get("id_number"), body.get("phone")):
                return desk.signer.reply(nonce, 200, {"result": "rejected", "reason": "holder_mismatch"})
            return desk.signer.reply(nonce, 200, {"result": "verified", "token": account.token})

    async def money(request: Request, kind: str) -> Response:
        nonce, body = await desk.read(request)
        if isinstance(body, Response):
            return body
        return await desk.take(nonce, body["order_id"], kind, str(body.get("token", "")), int(body["amount"]))

    @app.post("/v1/payouts")
    async def payout(request: Request) -> Response:
        """Pay to a (company) bank account: merchants' settlements."""
        nonce, body = await desk.read(request)
        if isinstance(body, Response):
            return body
        return await desk.take(nonce, body["order_id"], "payout", f"acct:{body.get('account', '')}",
                               int(body["amount"]))

    @app.post("/v1/debits")
    async def debit(request: Request) -> Response:
        return await money(request, "debit")

    @app.post("/v1/credits")
    async def credit(request: Request) -> Response:
        return await money(request, "credit")

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

    desk.install_order_routes(app, "/v1/orders/{order_id}")
    desk.install_controls(app, bank.forget_all)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = command_line("bank", "SIMULATOR of a partner bank's gateway for mobipay's cash-in and cash-out.",
                          "--port 8101 --auto-open --latency-ms 50 --timeout-rate 0.01", 8101, "demo-bank-secret")
    parser.add_argument("--auto-open", action="store_true", help="open an account for any unknown card bound")
    args = parser.parse_args(argv)
    serve(create_bank_app(args.secret, behaviour_from(args), args.auto_open), args)

if __name__ == "__main__":
    main()
