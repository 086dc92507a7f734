"""SIMULATOR of a lottery centre (welfare / sports lottery style), the far side of
``lottery/gateway_http.py``.

- ``POST /v1/tickets`` ``{order_id, amount, game, issue, bets, multiplier}`` sells a ticket
  through the simulators' order counter (``desk.py``); its reference is the ticket's
  serial number. A ticket for a draw already published is refused (``sales_closed``).
- ``GET /v1/draws/{game}/{issue}``: the draw, made up from the game and issue (the same
  numbers every time) unless set with ``PUT /sim/draws/{game}/{issue}``; floating prizes
  come with it. ``POST /sim/draws/{game}/{issue}/hold`` keeps a draw unpublished (404);
  ``POST /sim/draws/{game}/{issue}/close`` closes its sales early (tickets ``sales_closed``).

Run: ``python -m mobipay.simulators.lottery_centre --port 8107``
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

from fastapi import FastAPI, Request, Response

from mobipay.simulators.desk import Behaviour, Order, OrderDesk, behaviour_from, command_line, serve

SHAPES = {"ssq": ((6, 1, 33, True), (1, 1, 16, True)), "dlt": ((5, 1, 35, True), (2, 1, 12, True)),
          "fc3d": ((3, 0, 9, False),)}
FLOATING = {"ssq": {"1": 500_000_000, "2": 15_000_000}, "dlt": {"1": 800_000_000, "2": 20_000_000}, "fc3d": {}}


class Centre:
    def __init__(self, secret: bytes, behaviour: Behaviour) -> None:
        self.tickets: dict[str, dict[str, Any]] = {}
        self.draws: dict[tuple[str, str], dict[str, Any]] = {}
        self.held: set[tuple[str, str]] = set()
        self.published: set[tuple[str, str]] = set()
        self.desk = OrderDesk(secret, behaviour, self.sell, ref_prefix="L")

    def sell(self, order: Order) -> str | None:
        t = self.tickets[order.order_id]
        if (t["game"], t["issue"]) in self.published:
            return "sales_closed"
        return None

    def draw(self, game: str, issue: str) -> dict[str, Any]:
        if (game, issue) not in self.draws:
            rng = random.Random(hashlib.sha256(f"{game}|{issue}".encode()).digest())
            numbers = []
            for pick, low, high, distinct in SHAPES[game]:
                picked = rng.sample(range(low, high + 1), pick) if distinct else [rng.randint(low, high)
                                                                                   for _ in range(pick)]
                numbers.append(sorted(picked) if game != "fc3d" else picked)
            self.draws[(game, issue)] = {"numbers": numbers, "prizes": FLOATING[game]}
        return self.draws[(game, issue)]

    def forget_all(self) -> None:
        self.tickets.clear()
        self.draws.clear()
        self.held.clear()
        self.published.clear()


def create_centre_app(secret: str = "demo-lottery-secret", behaviour: Behaviour | None = None  # noqa: S107
                      ) -> FastAPI:
    centre = Centre(secret.encode(), behaviour or Behaviour())
    desk = centre.desk
    app = FastAPI(title="Lottery centre SIMULATOR")

    @app.post("/v1/tickets")
    async def sell(request: Request) -> Response:
        nonce, body = await desk.read(request)
        if isinstance(body, Response):
            return body
        centre.tickets.setdefault(body["order_id"], body)
        return await desk.take(nonce, body["order_id"], "ticket", f"{body['game']}|{body['issue']}",
                               int(body["amount"]))

    @app.get("/v1/draws/{game}/{issue}")
    async def draw(game: str, issue: str, request: Request) -> Response:
        nonce, body = await desk.read(request)
        if isinstance(body, Response):
            return body
        if game not in SHAPES or (game, issue) in centre.held:
            return desk.signer.reply(nonce, 404, {"error": "not_drawn"})
        centre.published.add((game, issue))
        return desk.signer.reply(nonce, 200, centre.draw(game, issue))

    @app.put("/sim/draws/{game}/{issue}")
    async def set_draw(game: str, issue: str, body: dict[str, Any]) -> dict[str, Any]:
        centre.draws[(game, issue)] = {"numbers": body["numbers"], "prizes": body.get("prizes", FLOATING[game])}
        centre.held.discard((game, issue))
        return centre.draws[(game, issue)]

    @app.post("/sim/draws/{game}/{issue}/close")
    async def close(game: str, issue: str) -> dict[str, Any]:
        """Close a draw's sales early (a centre may, e.g. before a record jackpot)."""
        centre.published.add((game, issue))
        return {"closed": True}

    @app.post("/sim/draws/{game}/{issue}/hold")
    async def hold(game: str, issue: str) -> dict[str, Any]:
        centre.held.add((game, issue))
        return {"held": True}

    desk.install_order_routes(app, "/v1/tickets/{order_id}")
    desk.install_controls(app, centre.forget_all)
    return app


def main(argv: list[str] | None = None) -> None:
    args = command_line("lottery_centre", "SIMULATOR of a lottery centre.", "--port 8107", 8107,
                        "demo-lottery-secret").parse_args(argv)
    serve(create_centre_app(args.secret, behaviour_from(args)), args)

if __name__ == "__main__":
    main()
