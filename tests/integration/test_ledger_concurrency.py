"""Concurrency on PostgreSQL: 16 workers moving random amounts among 100 no-overdraft
accounts, resending some transfers with the same ids, half through group commit and half
with a transaction each. No balance may go below zero, the total must not change,
``verify`` must be clean, and no deadlock or serialization error may reach a caller."""

from __future__ import annotations

import asyncio
import random

import pytest

from mobipay.kernel.clock import SystemClock
from mobipay.ledger.model import AccountKind, Leg, Result, Transfer
from mobipay.ledger.service import AccountSpec, Ledger
from mobipay.platform.db import Database

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ACCOUNTS = 100
START = 10_000
WORKERS = 16
ROUNDS = 60


def _transfer(rng: random.Random, tid: str) -> Transfer:
    a, b = rng.sample(range(ACCOUNTS), 2)
    if rng.random() < 0.2:  # a multi-leg transfer: one payer, two payees
        c = rng.choice([x for x in range(ACCOUNTS) if x not in (a, b)])
        x, y = rng.randrange(1, 2_000), rng.randrange(1, 2_000)
        legs = (Leg.debit(f"c:{a}", x + y), Leg.credit(f"c:{b}", x), Leg.credit(f"c:{c}", y))
    else:
        amount = rng.randrange(1, 4_000)
        legs = (Leg.debit(f"c:{a}", amount), Leg.credit(f"c:{b}", amount))
    return Transfer(tid, legs, "p2p")


async def test_concurrent_workers_keep_the_books_exact(pg_url: str) -> None:
    db = Database(pg_url, pool_size=WORKERS)
    direct = Ledger(db, SystemClock())
    grouped = Ledger(db, SystemClock(), writers=4)
    grouped.start_group_commit()
    try:
        await direct.open_accounts([AccountSpec("c:source", AccountKind.EQUITY)] + [
            AccountSpec(f"c:{i}", AccountKind.LIABILITY, debits_must_not_exceed_credits=True)
            for i in range(ACCOUNTS)])
        funding = [Transfer(f"fund:{i}", (Leg.debit("c:source", START), Leg.credit(f"c:{i}", START)), "fund")
                   for i in range(ACCOUNTS)]
        assert all(r.ok for r in await direct.post_batch(funding))

        sent: dict[str, Transfer] = {}
        first: dict[str, Result] = {}
        outcomes: list[Result] = []

        async def worker(n: int) -> None:
            rng = random.Random(n)
            ledger = grouped if n % 2 else direct
            for r in range(ROUNDS):
                batch: list[Transfer] = []
                for k in range(rng.randrange(1, 6)):
                    if sent and rng.random() < 0.25:  # a client retrying an earlier request
                        batch.append(sent[rng.choice(list(sent))])
                    else:
                        t = _transfer(rng, f"w{n}-{r}-{k}")
                        sent[t.id] = t
                        batch.append(t)
                results = await ledger.post_batch(batch)
                for t, res in zip(batch, results, strict=True):
                    outcomes.append(res)
                    if res.ok and not res.replayed:
                        assert t.id not in first, f"{t.id} posted twice"
                        first[t.id] = res
                await asyncio.sleep(0)

        await asyncio.gather(*(worker(n) for n in range(WORKERS)))

        codes = {r.error.code for r in outcomes if r.error}
        assert codes <= {"INSUFFICIENT_FUNDS"}, codes
        assert sum(r.ok and not r.replayed for r in outcomes) > 300
        assert any(r.replayed for r in outcomes)
        found = await direct.accounts([f"c:{i}" for i in range(ACCOUNTS)])
        assert all(acc.balance >= 0 for acc in found.values())
        assert sum(acc.balance for acc in found.values()) == ACCOUNTS * START
        # every posted id is stored exactly once, with the content that was sent
        for tid in first:
            stored = await direct.transfer(tid)
            assert stored.legs == sent[tid].legs
        report = await direct.verify()
        assert report.ok, report
    finally:
        await grouped.stop()
        await db.dispose()
