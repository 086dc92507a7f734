"""The round trips of one password-free micropay payment (``POST /v1/terminal/micropay``), on
both databases: transactions and statements counted with a SQLAlchemy ``before_cursor_execute``
hook, per use case (``UnitOfWorkRunner.run``'s name). Guards the figures in docs/performance.md
("Micropay over HTTP") from creeping back: each re-read costs a transaction on the hot path.
``MICROPAY_STATEMENTS=1`` prints the per-use-case table. ManualClock only."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event

from mobipay.kernel.clock import ManualClock
from tests.e2e.test_instore_micropay import Till, applet, client, clock, shop_balance  # noqa: F401 (fixtures)
from tests.e2e.test_instore_qr_api import payer
from tests.e2e.test_instore_terminals import Shop
from tests.e2e.test_wallet_api import balance

#: Upper bounds of one password-free payment, the signed request's verification included.
MAX_TRANSACTIONS = 12
MAX_STATEMENTS = 37


class Counted:
    """Statements and transactions on the container's engine, by the use case running them."""

    def __init__(self, test_client: TestClient) -> None:
        c = test_client.app.state.container  # type: ignore[attr-defined]
        self.uow, self.engine = c.uow, c.uow.db.engine.sync_engine
        self.on = False
        self.current = "(outside a use case)"
        self.statements: Counter[str] = Counter()
        self.transactions: Counter[str] = Counter()
        self.texts: list[tuple[str, str]] = []
        runner = self.uow.run

        async def run(use_case: str, work: Callable[[Any], Awaitable[Any]]) -> Any:
            outer, self.current = self.current, use_case
            if self.on:
                self.transactions[use_case] += 1
            try:
                return await runner(use_case, work)
            finally:
                self.current = outer

        self.uow.run = run
        event.listen(self.engine, "before_cursor_execute", self._statement)

    def _statement(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        head = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else ""
        if self.on and head not in ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"):
            self.statements[self.current] += 1
            self.texts.append((self.current, " ".join(statement.split())[:160]))

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._statement)


def test_one_password_free_payment_counts_its_round_trips(
    client: TestClient,  # noqa: F811 (the fixture)
    db_url: str,
    clock: ManualClock,  # noqa: F811 (the fixture)
) -> None:
    shop = Shop(client, clock)
    till = Till(shop)
    who = payer(client, db_url, "13900139000", 100_000)
    phone = applet(client, clock, who)
    assert till.charge("W-1", phone.code(), 10).json()["state"] == "SUCCESS"  # warm: today's rows exist
    clock.advance(30)
    counted = Counted(client)
    try:
        counted.on = True
        r = till.charge("M-1", phone.code(), 88)
        counted.on = False
    finally:
        counted.close()
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "SUCCESS" and r.json()["paid"] == 88
    assert balance(client, who) == 100_000 - 98 and shop_balance(shop) == 98
    transactions, statements = sum(counted.transactions.values()), sum(counted.statements.values())
    if os.environ.get("MICROPAY_STATEMENTS"):
        print(f"\n{transactions} transactions, {statements} statements")
        for name in counted.transactions:
            print(f"  {name:<24}{counted.transactions[name]:>3} tx {counted.statements[name]:>4} statements")
        for name, text in counted.texts:
            print(f"    {name:<22}{text}")
    assert transactions <= MAX_TRANSACTIONS, counted.transactions
    assert statements <= MAX_STATEMENTS, counted.statements
