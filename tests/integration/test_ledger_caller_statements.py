"""The ledger inside a caller's own statements on PostgreSQL (``pg_lock_accounts``,
``Ledger.decide_locked``, ``pg_post_with``): what the wallet's transfer batches build on.

The caller locks the accounts in its read, the ledger decides on the locked rows, and one
statement writes the money with the caller's rows; a stored id fails that statement and
nothing is written; the ledger's cached account state is not trusted afterwards."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from mobipay.kernel.clock import ManualClock
from mobipay.ledger.model import AccountKind, Leg, Transfer
from mobipay.ledger.service import PG_POST_WITH_FIRST, AccountSpec, Ledger, pg_lock_accounts, pg_post_with
from mobipay.platform.db import Database

pytestmark = pytest.mark.postgres

READ = f"WITH l AS ({pg_lock_accounts('SELECT unnest(CAST($1 AS text[]))')}) SELECT array_agg(l) FROM l"
WRITE = pg_post_with(f"n AS (SELECT CAST(${PG_POST_WITH_FIRST} AS text) AS note)", "SELECT note FROM n")


def p2p(tid: str, src: str, dst: str, amount: int) -> Transfer:
    return Transfer(tid, (Leg.debit(src, amount), Leg.credit(dst, amount)), "p2p")


async def in_one_transaction(db: Database, ledger: Ledger, commands: list[Transfer]) -> tuple[list[Any], Any]:
    """Read and lock, decide, write with the caller's row, commit (or roll back on error)."""
    async with db.engine.connect() as conn:
        drv: Any = (await conn.get_raw_connection()).driver_connection
        async with drv.transaction():
            rows = await drv.fetchval(READ, sorted({leg.account for c in commands for leg in c.legs}))
            posting = ledger.decide_locked(commands, rows or ())
            written = None if posting.args is None else await drv.fetch(WRITE, *posting.args, "caller's row")
    return posting.results, written


async def test_a_caller_posts_with_its_own_rows_and_a_replay_writes_nothing(pg_url: str) -> None:
    db, clock = Database(pg_url), ManualClock()
    ledger = Ledger(db, clock)
    try:
        await ledger.open_accounts([AccountSpec("bank", AccountKind.ASSET)] + [
            AccountSpec(c, AccountKind.LIABILITY, debits_must_not_exceed_credits=True) for c in ("alice", "bob")])
        assert (await ledger.post(Transfer("f1", (Leg.debit("bank", 100), Leg.credit("alice", 100)), "fund"))).ok
        assert (await ledger.post(p2p("a1", "alice", "bob", 10))).ok  # the ledger now caches alice at 90

        results, written = await in_one_transaction(db, ledger, [p2p("c1", "alice", "bob", 60),
                                                                 p2p("c2", "alice", "bob", 60)])
        assert results[0].ok and results[1].error is not None and results[1].error.code == "INSUFFICIENT_FUNDS"
        assert [tuple(r) for r in written or ()] == [("caller's row",)]

        # every command refused: nothing for the ledger to write
        results, written = await in_one_transaction(db, ledger, [p2p("c3", "bob", "alice", 1_000)])
        assert results[0].error is not None and written is None

        # a stored id fails the caller's statement: nothing of it is written
        with pytest.raises(asyncpg.UniqueViolationError):
            await in_one_transaction(db, ledger, [p2p("c4", "bob", "alice", 5), p2p("c1", "alice", "bob", 1)])

        # the cached alice (90) is not trusted: she has 30 now, so 40 is refused and 30 is not
        refused = await ledger.post(p2p("a2", "alice", "bob", 40))
        assert refused.error is not None and refused.error.code == "INSUFFICIENT_FUNDS"
        assert (await ledger.post(p2p("a3", "alice", "bob", 30))).ok
        found = await ledger.accounts(["alice", "bob"])
        assert (found["alice"].balance, found["bob"].balance) == (0, 100)
        assert (await ledger.verify()).ok
    finally:
        await ledger.stop()
        await db.dispose()
