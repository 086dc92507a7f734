"""Two ledger processes on one database: what one posts, the other must see at once.

On PostgreSQL each Ledger decides batches on account state cached from its own writes
and checks it in the write itself; these tests make that cache stale on purpose (another
Ledger, standing in for another process, changes the accounts) and require the same
answers as if there were no cache at all."""

from __future__ import annotations

from mobipay.kernel.clock import ManualClock
from mobipay.ledger.model import AccountKind, Leg, Transfer
from mobipay.ledger.service import AccountSpec, Ledger
from mobipay.platform.db import Database


def p2p(tid: str, src: str, dst: str, amount: int) -> Transfer:
    return Transfer(tid, (Leg.debit(src, amount), Leg.credit(dst, amount)), "p2p")


async def test_a_stale_cache_never_decides(db_url: str) -> None:
    clock = ManualClock()
    db_a, db_b = Database(db_url), Database(db_url)
    a, b = Ledger(db_a, clock), Ledger(db_b, clock)
    try:
        await a.open_accounts([AccountSpec("bank", AccountKind.ASSET)] + [
            AccountSpec(c, AccountKind.LIABILITY, debits_must_not_exceed_credits=True) for c in ("alice", "bob")])
        assert (await a.post(Transfer("f1", (Leg.debit("bank", 100), Leg.credit("alice", 100)), "fund"))).ok
        assert (await a.post(p2p("a1", "alice", "bob", 10))).ok  # a now caches alice at 90

        assert (await b.post(p2p("b1", "alice", "bob", 90))).ok  # behind a's back: alice at 0
        r = await a.post(p2p("a2", "alice", "bob", 50))
        assert r.error is not None and r.error.code == "INSUFFICIENT_FUNDS"

        assert (await b.post(p2p("b2", "bob", "alice", 70))).ok  # alice back at 70
        assert (await a.post(p2p("a3", "alice", "bob", 60))).ok  # a must not refuse on old state

        await b.set_frozen("alice", True)
        r = await a.post(p2p("a4", "alice", "bob", 1))
        assert r.error is not None and r.error.code == "ACCOUNT_FROZEN"
        await b.set_frozen("alice", False)
        assert (await a.post(p2p("a5", "alice", "bob", 1))).ok

        # the same id sent to both "processes": stored once, replayed by the other
        first, second = await b.post(p2p("dup", "bob", "alice", 5)), await a.post(p2p("dup", "bob", "alice", 5))
        assert first.ok and not first.replayed and second.ok and second.replayed

        found = await a.accounts(["alice", "bob"])
        alice, bob = found["alice"], found["bob"]
        assert (alice.balance, bob.balance) == (100 - 10 - 90 + 70 - 60 - 1 + 5, 10 + 90 - 70 + 60 + 1 - 5)
        assert (await a.verify()).ok
    finally:
        await a.stop()
        await b.stop()
        await db_a.dispose()
        await db_b.dispose()
