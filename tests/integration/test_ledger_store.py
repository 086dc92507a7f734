"""The ledger against a real database (SQLite and PostgreSQL): flows, queries and the
rules the database enforces by itself."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from mobipay.kernel.clock import ManualClock
from mobipay.kernel.errors import MobipayError
from mobipay.ledger.model import AccountKind, Leg, PostPending, Reverse, Transfer, VoidPending
from mobipay.ledger.service import AccountSpec, Ledger
from mobipay.platform.db import Database


async def open_wallets(ledger: Ledger, **funding: int) -> None:
    await ledger.open_accounts([AccountSpec("bank", AccountKind.ASSET)] + [
        AccountSpec(code, AccountKind.LIABILITY, debits_must_not_exceed_credits=True) for code in funding])
    fund = [Transfer(f"fund:{code}", (Leg.debit("bank", amount), Leg.credit(code, amount)), "cash_in")
            for code, amount in funding.items() if amount]
    assert all(r.ok for r in await ledger.post_batch(fund))


def p2p(tid: str, src: str, dst: str, amount: int, **kw: object) -> Transfer:
    return Transfer(tid, (Leg.debit(src, amount), Leg.credit(dst, amount)), "p2p", **kw)  # type: ignore[arg-type]


async def balances(ledger: Ledger, *codes: str) -> list[int]:
    return [(await ledger.account(c)).balance for c in codes]


async def test_transfers_idempotency_and_verify(ledger: Ledger) -> None:
    await open_wallets(ledger, alice=1000, bob=0)
    first = await ledger.post(p2p("t1", "alice", "bob", 250, reference="lunch", metadata={"note": "午饭"}))
    assert first.ok and not first.replayed
    again = await ledger.post(p2p("t1", "alice", "bob", 250, reference="lunch", metadata={"note": "午饭"}))
    assert again.ok and again.replayed and again.transfer is not None
    assert again.transfer.metadata == {"note": "午饭"} and again.transfer.legs == first.transfer.legs  # type: ignore[union-attr]
    conflict = await ledger.post(p2p("t1", "alice", "bob", 251))
    assert conflict.error is not None and conflict.error.code == "IDEMPOTENCY_CONFLICT"
    assert await balances(ledger, "alice", "bob") == [750, 250]
    refused = await ledger.post(p2p("t2", "alice", "bob", 10_000))
    assert refused.error is not None and refused.error.code == "INSUFFICIENT_FUNDS"
    assert await balances(ledger, "alice", "bob") == [750, 250]
    # a refused id is not burnt: the same id can succeed once the money is there
    assert (await ledger.post(p2p("t2", "alice", "bob", 700))).ok
    report = await ledger.verify()
    assert report.ok, report
    assert report.totals == {"CNY": 0}


async def test_malformed_commands_are_refused_before_any_io(ledger: Ledger) -> None:
    await open_wallets(ledger, alice=100, bob=0)
    results = await ledger.post_batch([
        Transfer("bad", (Leg.debit("alice", 5), Leg.credit("bob", 4)), "p2p"),
        p2p("good", "alice", "bob", 5),
        Transfer("float", (Leg.debit("alice", 0.5), Leg.credit("bob", 0.5)), "p2p"),  # type: ignore[arg-type]
    ])
    assert [r.error.code if r.error else None for r in results] == ["UNBALANCED_TRANSFER", None, "INVALID_AMOUNT"]
    assert await balances(ledger, "alice", "bob") == [95, 5]


async def test_a_control_character_fails_its_command_alone_never_its_batch(ledger: Ledger) -> None:
    """One NUL in one command of a batch (PostgreSQL refuses NUL in text: the batch's
    statement failed, and with it all 19-20 valid neighbours) is refused by the model
    before any SQL; the rest of the batch posts."""
    await open_wallets(ledger, alice=10_000, bob=0)
    bad = [p2p("bad:ref", "alice", "bob", 1, reference="a\x00b"),
           p2p("bad:meta", "alice", "bob", 1, metadata={"note": ["ok", "\x00"]}),
           p2p("bad:key", "alice", "bob", 1, metadata={"k\x01": 1}),
           Transfer("bad:acc", (Leg.debit("alice", 1), Leg.credit("bo\x00b", 1)), "p2p")]
    good = [p2p(f"good:{i}", "alice", "bob", 10, reference="第\t行\n") for i in range(18)]
    results = await ledger.post_batch([*good[:9], *bad, *good[9:]])
    by_id = {r.id: r for r in results}
    assert all(by_id[t.id].ok for t in good)
    assert {t.id: by_id[t.id].error.field for t in bad} == {  # type: ignore[union-attr]
        "bad:ref": "reference", "bad:meta": "metadata", "bad:key": "metadata", "bad:acc": "legs[1].account"}
    assert {by_id[t.id].error.code for t in bad} == {"INVALID_TRANSFER"}  # type: ignore[union-attr]
    assert await balances(ledger, "alice", "bob") == [10_000 - 180, 180]
    assert (await ledger.verify()).ok


async def test_holds_post_void_expire(ledger: Ledger, clock: ManualClock) -> None:
    await open_wallets(ledger, alice=1000, bob=0)
    assert (await ledger.post(p2p("h1", "alice", "bob", 400, pending=True, timeout_s=60))).ok
    alice = await ledger.account("alice")
    assert (alice.balance, alice.available) == (1000, 600)
    posted = await ledger.post(PostPending("p1", "h1", amount=150))
    assert posted.ok
    assert await balances(ledger, "alice", "bob") == [850, 150]
    assert (await ledger.account("alice")).available == 850
    twice = await ledger.post(PostPending("p2", "h1"))
    assert twice.error is not None and twice.error.code == "PENDING_TRANSFER_ALREADY_POSTED"
    assert (await ledger.post(p2p("h2", "alice", "bob", 100, pending=True, timeout_s=10))).ok
    assert (await ledger.post(VoidPending("v2", "h2"))).ok
    assert (await ledger.post(VoidPending("v2b", "h2"))).error.code == "PENDING_TRANSFER_ALREADY_VOIDED"  # type: ignore[union-attr]
    assert (await ledger.post(p2p("h3", "alice", "bob", 100, pending=True, timeout_s=10))).ok
    clock.advance(11)
    late = await ledger.post(PostPending("p3", "h3"))
    assert late.error is not None and late.error.code == "PENDING_TRANSFER_EXPIRED"
    assert await ledger.sweep_expired_holds() == 1
    assert await ledger.sweep_expired_holds() == 0
    after = await ledger.post(VoidPending("v3", "h3"))
    assert after.error is not None and after.error.code == "PENDING_TRANSFER_EXPIRED"
    alice = await ledger.account("alice")
    assert (alice.balance, alice.available, alice.debits_pending) == (850, 850, 0)
    assert (await ledger.verify()).ok


async def test_reversal_is_a_new_linked_transfer(ledger: Ledger) -> None:
    await open_wallets(ledger, alice=100, bob=0)
    assert (await ledger.post(p2p("t1", "alice", "bob", 40))).ok
    rev = await ledger.post(Reverse("r1", "t1", reference="refund"))
    assert rev.ok and rev.transfer is not None and rev.transfer.reversal_of == "t1"
    assert await balances(ledger, "alice", "bob") == [100, 0]
    again = await ledger.post(Reverse("r2", "t1"))
    assert again.error is not None and again.error.code == "ALREADY_REVERSED"
    original = await ledger.transfer("t1")
    assert [leg.amount for leg in original.legs] == [40, 40]  # the original is untouched
    items, _ = await ledger.statement("alice")
    assert [(e["transfer_id"], e["amount"]) for e in items] == [("fund:alice", -100), ("t1", 40), ("r1", -40)]


async def test_linked_transfers_succeed_or_fail_together(ledger: Ledger) -> None:
    await open_wallets(ledger, alice=100, bob=0, carol=0)
    results = await ledger.post_batch([p2p("l1", "alice", "bob", 60, linked=True), p2p("l2", "bob", "carol", 90)])
    assert [r.error.code if r.error else None for r in results] == ["LINKED_TRANSFER_FAILED", "INSUFFICIENT_FUNDS"]
    assert await balances(ledger, "alice", "bob", "carol") == [100, 0, 0]
    results = await ledger.post_batch([p2p("l3", "alice", "bob", 60, linked=True), p2p("l4", "bob", "carol", 60)])
    assert all(r.ok for r in results)
    assert await balances(ledger, "alice", "bob", "carol") == [40, 0, 60]


async def test_statement_pagination_and_balance_as_of(ledger: Ledger, clock: ManualClock) -> None:
    await open_wallets(ledger, alice=1000, bob=0)
    t0 = clock.now()
    for i in range(7):
        clock.advance(60)
        assert (await ledger.post(p2p(f"s{i}", "alice", "bob", 10 * (i + 1)))).ok
    seen: list[str] = []
    cursor = 0
    while True:
        items, nxt = await ledger.statement("alice", after=cursor, limit=3)
        seen += [e["transfer_id"] for e in items]
        if nxt is None:
            break
        cursor = nxt
    assert seen == ["fund:alice"] + [f"s{i}" for i in range(7)]
    assert await ledger.balance_as_of("alice", t0) == 1000
    assert await ledger.balance_as_of("alice", t0.replace(second=0) + (clock.now() - t0) / 7 * 2) == 1000 - 10 - 20
    assert await ledger.balance_as_of("alice", clock.now()) == 1000 - sum(10 * (i + 1) for i in range(7))


async def test_frozen_account_refuses_both_directions(ledger: Ledger) -> None:
    await open_wallets(ledger, alice=100, bob=0)
    await ledger.set_frozen("alice", True)
    out = await ledger.post_batch([p2p("f1", "alice", "bob", 1), p2p("f2", "bob", "alice", 1)])
    assert [r.error.code for r in out if r.error] == ["ACCOUNT_FROZEN", "ACCOUNT_FROZEN"]
    await ledger.set_frozen("alice", False)
    assert (await ledger.post(p2p("f1", "alice", "bob", 1))).ok


async def test_open_account_is_idempotent_but_not_redefinable(ledger: Ledger) -> None:
    spec = AccountSpec("w", AccountKind.LIABILITY, debits_must_not_exceed_credits=True)
    a = await ledger.open_account(spec)
    b = await ledger.open_account(spec)
    assert a.id == b.id
    with pytest.raises(MobipayError) as info:
        await ledger.open_account(AccountSpec("w", AccountKind.ASSET))
    assert info.value.code == "ACCOUNT_EXISTS"


async def test_database_refuses_changes_to_postings_and_transfers(ledger: Ledger, db: Database) -> None:
    await open_wallets(ledger, alice=100, bob=0)
    for sql in ("UPDATE ledger_postings SET amount = amount * 2", "DELETE FROM ledger_postings",
                "UPDATE ledger_transfers SET code = 'x'", "DELETE FROM ledger_transfers"):
        with pytest.raises(DBAPIError) as info:
            async with db.begin() as conn:
                await conn.execute(text(sql))
        assert "append-only" in str(info.value)
    assert (await ledger.verify()).ok


async def test_database_refuses_unbalanced_postings(ledger: Ledger, db: Database) -> None:
    await open_wallets(ledger, alice=100, bob=0)
    alice = await ledger.account("alice")
    # PostgreSQL refuses the first INSERT, SQLite the second (its check runs when the
    # transfer row arrives): both statements belong inside the raises block.
    with pytest.raises(DBAPIError) as info:  # noqa: PT012
        async with db.begin() as conn:
            await conn.execute(text(
                "INSERT INTO ledger_postings (transfer_id, leg, account_id, amount, currency, pending, account_seq,"
                " balance_after, created_at) VALUES ('forged', 0, :a, -500, 'CNY', false, 99, 600, CURRENT_TIMESTAMP)"
            ), {"a": alice.id})
            await conn.execute(text(
                "INSERT INTO ledger_transfers (id, type, code, reference, created_at)"
                " VALUES ('forged', 'posted', 'forged', '', CURRENT_TIMESTAMP)"))
    assert "balance" in str(info.value) or "postings" in str(info.value)
    assert (await ledger.verify()).ok


async def test_database_refuses_overdraft_written_directly(ledger: Ledger, db: Database) -> None:
    await open_wallets(ledger, alice=100)
    async with db.engine.connect() as conn:
        with pytest.raises(IntegrityError):
            await conn.execute(text("UPDATE ledger_accounts SET debits_posted = 101 WHERE code = 'alice'"))
    assert (await ledger.account("alice")).balance == 100


async def test_verify_reports_a_tampered_balance(ledger: Ledger, db: Database) -> None:
    await open_wallets(ledger, alice=100, bob=0)
    async with db.begin() as conn:
        await conn.execute(text("UPDATE ledger_accounts SET credits_posted = credits_posted + 1 WHERE code = 'bob'"))
    report = await ledger.verify()
    assert not report.ok
    assert [d["account"] for d in report.differences] == ["bob"]
    assert report.totals == {"CNY": -1}


async def test_verify_reports_postings_their_transfer_does_not_list(sqlite_url: str) -> None:
    """Only a hand edit can do this (transfers are append-only): drop the guard and try."""
    db = Database(sqlite_url)
    ledger = Ledger(db, ManualClock())
    try:
        await open_wallets(ledger, alice=100, bob=0)
        assert (await ledger.verify()).ok
        async with db.begin() as conn:
            await conn.execute(text("DROP TRIGGER ledger_transfers_no_update"))
            await conn.execute(text("UPDATE ledger_transfers SET posting_keys = '' WHERE id = 'fund:alice'"))
        report = await ledger.verify()
        assert not report.ok and report.orphan_postings == 2
    finally:
        await db.dispose()
