"""Wallet transfer batches on PostgreSQL (wallet/transfer_batch.py): concurrent password-free
transfers share one transaction, and every answer is the one the one-by-one path gives.

Each test fires transfers at once through ``WalletService.transfer_as`` (what the API calls)
and checks what each caller was told, the balances, the usage counters, the SMS in the
outbox and ``Ledger.verify``; the batches really formed (their sizes are recorded).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from argon2 import PasswordHasher
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text, update

from mobipay.app.bootstrap import Container, build
from mobipay.kernel.clock import ManualClock
from mobipay.kernel.errors import IdempotencyConflict, MobipayError
from mobipay.ledger.chart import BANK_SETTLEMENT, SUSPENSE
from mobipay.ledger.model import Leg, Transfer
from mobipay.platform.config import Settings
from mobipay.wallet import errors
from mobipay.wallet.service import TransferDone
from mobipay.wallet.tables import claims, usage, users
from mobipay.wallet.transfer_batch import QueuedTransfer, TransferBatcher

pytestmark = pytest.mark.postgres

NUMBERS = [f"+8613800{i:06d}" for i in range(1, 7)]


@dataclass
class World:
    c: Container
    tokens: dict[str, str]
    batches: list[int]

    async def send(self, sender: str, to: str, amount: int, key: str, note: str = "") -> TransferDone:
        return await self.c.wallet.transfer_as(self.tokens[sender], to, amount, idempotency_key=key, note=note)

    async def balances(self) -> dict[str, int]:
        accounts = await self.c.ledger.accounts([f"wallet:{n}" for n in NUMBERS] + [SUSPENSE])
        return {code: acc.balance for code, acc in accounts.items()}

    async def lifetime(self, number: str) -> int:
        async with self.c.db.begin() as conn:
            row = (await conn.execute(select(usage.c.lifetime).join(users, users.c.id == usage.c.user_id)
                                      .where(users.c.msisdn == number))).first()
        return 0 if row is None else int(row[0])


@pytest.fixture
async def world(pg_url: str) -> AsyncIterator[World]:
    c = build(Settings(_env_file=None, database_url=pg_url),  # type: ignore[call-arg]
              clock=ManualClock(datetime.now(UTC)))
    assert c.wallet.batcher is not None, "PostgreSQL gets a transfer batcher by default"
    c.wallet.pin_hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)  # tests only: fast
    await c.ensure_system_accounts()
    tokens = {}
    for i, number in enumerate(NUMBERS):
        await c.wallet.create_user(number, actor="test", reason="batch test")
        await c.wallet.set_pin(number, f"{739154 + i * 11:06d}")
        tokens[number] = (await c.wallet.login(number, device_id="d", pin=f"{739154 + i * 11:06d}")).access_token
    funded = await c.ledger.post_batch([
        Transfer(f"fund:{n}", (Leg.debit(BANK_SETTLEMENT, 50_000), Leg.credit(f"wallet:{n}", 50_000)), "cash_in")
        for n in NUMBERS[:5]])  # the last one has nothing
    assert all(r.ok for r in funded)
    batches: list[int] = []
    batcher = c.wallet.batcher
    real = batcher._batch

    async def counted(asks: list[QueuedTransfer]) -> list[QueuedTransfer]:
        batches.append(len(asks))
        return await real(asks)

    batcher._batch = counted  # type: ignore[method-assign]
    yield World(c, tokens, batches)
    await c.close()


async def outcome(call: Awaitable[TransferDone]) -> TransferDone | MobipayError:
    try:
        return await call
    except MobipayError as exc:
        return exc


async def sms_to(c: Container, number: str) -> list[dict[str, Any]]:
    async with c.db.begin() as conn:
        rows = await conn.execute(text("SELECT payload FROM outbox_messages WHERE topic = 'sms.send'"))
    return [p for p in (json.loads(r[0]) for r in rows) if p["to"] == number and p["template"].startswith("p2p.")]


async def test_a_batch_answers_each_caller_as_alone(world: World) -> None:
    a, b, c_, d, e, poor = NUMBERS
    before = await world.balances()
    await world.c.wallet.set_frozen(e, True, actor="test", reason="batch test")
    calls: list[Callable[[], Awaitable[TransferDone]]] = [
        lambda: world.send(a, b, 100, "k1", note="lunch"),
        lambda: world.send(b, c_, 250, "k2"),
        lambda: world.send(c_, a, 19_999, "k3"),
        lambda: world.send(a, "+8613912345678", 300, "k4"),  # no wallet yet: waits in suspense
        lambda: world.send(poor, a, 10, "k5"),  # nothing to pay with
        lambda: world.send(d, d, 10, "k6"),  # to themself
        lambda: world.send(e, a, 10, "k7"),  # frozen
        lambda: world.c.wallet.transfer_as("forged", a, 10, idempotency_key="k8"),
        lambda: world.send(d, b, 400, "k9"),
    ]
    got = await asyncio.gather(*(outcome(call()) for call in calls))
    assert max(world.batches) > 1, f"no batch formed: {world.batches}"
    ok = [g for g in got if isinstance(g, TransferDone)]
    assert [g.id.rsplit(":", 1)[1] for g in ok] == ["k1", "k2", "k3", "k4", "k9"]
    assert all(not g.replayed for g in ok)
    assert got[3].status == "waiting_for_recipient" and got[0].status == "succeeded"  # type: ignore[union-attr]
    assert [type(g).__name__ for g in got[4:8]] == ["InsufficientFunds", "SelfTransfer", "UserFrozen",
                                                      "SessionInvalid"]
    after = await world.balances()
    assert after[f"wallet:{a}"] == before[f"wallet:{a}"] - 100 - 300 + 19_999
    assert after[f"wallet:{b}"] == before[f"wallet:{b}"] + 100 - 250 + 400
    assert after[SUSPENSE] == before[SUSPENSE] + 300
    assert sum(after.values()) == sum(before.values())
    assert await world.lifetime(a) == 400 and await world.lifetime(poor) == 0 and await world.lifetime(d) == 400
    assert [m["template"] for m in await sms_to(world.c, "+8613912345678")] == ["p2p.invite"]
    assert [m["params"]["amount_fen"] for m in await sms_to(world.c, a)] == [19_999]
    async with world.c.db.begin() as conn:
        waiting = (await conn.execute(select(claims.c.amount, claims.c.state))).all()
        note = (await conn.execute(text("SELECT metadata FROM ledger_transfers WHERE id = :i"),
                                   {"i": got[0].id})).scalar_one()  # type: ignore[union-attr]
    assert [tuple(w) for w in waiting] == [(300, "waiting")]
    assert json.loads(note) == {"note": "lunch"}
    assert (await world.c.ledger.verify()).ok


async def test_replays_and_limits_are_answered_exactly(world: World) -> None:
    a, b, c_, *_ = NUMBERS
    first = await world.send(a, b, 500, "same")
    # the same key again, alone and twice inside one batch, plus another body under it
    got = await asyncio.gather(outcome(world.send(a, b, 500, "same")), outcome(world.send(a, b, 500, "same")),
                               outcome(world.send(a, b, 501, "same")), outcome(world.send(b, c_, 7, "other")))
    assert got[0] == got[1] == TransferDone(first.id, a, b, 500, first.created_at, True)
    assert isinstance(got[2], IdempotencyConflict)
    assert isinstance(got[3], TransferDone) and not got[3].replayed
    assert await world.lifetime(a) == 500

    # two payments at once where only the first fits the Tier I lifetime cap (1,000 CNY)
    async with world.c.db.begin() as conn:
        await conn.execute(update(usage).where(usage.c.user_id == select(users.c.id).where(users.c.msisdn == a)
                                               .scalar_subquery()).values(lifetime=100_000 - 800))
    got = await asyncio.gather(outcome(world.send(a, b, 600, "l1")), outcome(world.send(a, c_, 600, "l2")))
    assert isinstance(got[0], TransferDone)
    assert isinstance(got[1], errors.LimitExceeded) and got[1].extra["remaining"] == 200
    assert await world.lifetime(a) == 100_000 - 200
    assert (await world.c.ledger.verify()).ok


async def test_a_locked_pin_suspends_password_free_transfers_in_the_batch(world: World) -> None:
    """The PIN-lock rule on the batch path: the lock is read with the sessions (no statement
    more); a locked sender's new transfer is refused PIN_LOCKED by the one-by-one path, their
    replay still answered as a replay (the key first), everyone else batched as usual."""
    a, b, c_, d, *_ = NUMBERS
    first = await world.send(a, b, 100, "before-lock")
    for _ in range(5):
        await outcome(world.c.wallet.verify_pin(a, "111113"))
    status = await world.c.wallet.pin_status(a)
    assert status is not None and status.locked_until is not None
    before = await world.balances()
    world.batches.clear()
    got = await asyncio.gather(outcome(world.send(a, b, 100, "locked-1")), outcome(world.send(a, c_, 50, "locked-2")),
                               outcome(world.send(b, c_, 10, "free-1")), outcome(world.send(d, c_, 10, "free-2")))
    assert [type(g).__name__ for g in got] == ["PinLocked", "PinLocked", "TransferDone", "TransferDone"], got
    assert max(world.batches) > 1, f"no batch formed: {world.batches}"
    # (a replay alone: inside a batch its stored id would send the whole batch one by one)
    assert await world.send(a, b, 100, "before-lock") == TransferDone(first.id, a, b, 100, first.created_at, True)
    after = await world.balances()
    assert after[f"wallet:{a}"] == before[f"wallet:{a}"]  # nothing left the locked wallet
    assert after[f"wallet:{c_}"] == before[f"wallet:{c_}"] + 20
    assert await world.lifetime(a) == 100
    assert (await world.c.ledger.verify()).ok


async def test_many_callers_at_once_keep_the_books(world: World) -> None:
    before = await world.balances()
    senders = NUMBERS[:5]
    calls = [world.send(senders[i % 5], NUMBERS[(i * 7 + 1) % 6], 1 + i % 97, f"m{i}") for i in range(300)]
    got = await asyncio.gather(*(outcome(call) for call in calls))
    refused = [g for g in got if not isinstance(g, TransferDone)]
    assert all(isinstance(g, errors.SelfTransfer) for g in refused)
    assert max(world.batches) >= 10 and sum(world.batches) >= 300
    after = await world.balances()
    assert sum(after.values()) == sum(before.values())
    for n in senders:
        sent = sum(g.amount for g in got if isinstance(g, TransferDone) and g.sender == n)
        received = sum(g.amount for g in got if isinstance(g, TransferDone) and g.recipient == n)
        assert after[f"wallet:{n}"] == before[f"wallet:{n}"] - sent + received
        assert await world.lifetime(n) == sent
    assert (await world.c.ledger.verify()).ok


async def test_a_database_refusal_leaves_the_batch_to_the_one_by_one_path(world: World) -> None:
    a, b, c_, *_ = NUMBERS
    await world.c.ledger.set_frozen(f"wallet:{c_}", True)  # the ledger account only: the wallet looks active
    batcher = world.c.wallet.batcher
    assert isinstance(batcher, TransferBatcher)
    got = await asyncio.gather(outcome(world.send(a, b, 10, "f1")), outcome(world.send(b, c_, 10, "f2")))
    assert isinstance(got[0], TransferDone)
    assert isinstance(got[1], MobipayError) and got[1].code == "ACCOUNT_FROZEN"
    assert (await world.c.ledger.verify()).ok


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 6), st.integers(1, 30_000), st.integers(0, 40)),
                min_size=1, max_size=40))
async def test_property_money_is_conserved_and_counted_once(world: World,
                                                            plan: list[tuple[int, int, int, int]]) -> None:
    """Any mix of senders, recipients (one unregistered), amounts over and under the
    password-free amount and reused keys, all at once: no fen made or lost, each key paid
    at most once, each sender's usage the sum of what they paid."""
    numbers = [*NUMBERS, "+8613700000001"]
    before = await world.balances()
    lifetimes = {n: await world.lifetime(n) for n in NUMBERS}
    run = f"r{len(world.batches)}-"
    got = await asyncio.gather(*(outcome(world.send(NUMBERS[s], numbers[r], amount, run + str(k)))
                                 for s, r, amount, k in plan))
    paid: dict[str, TransferDone] = {}
    for (s, _, _, k), g in zip(plan, got, strict=True):
        if isinstance(g, TransferDone):
            key = f"{NUMBERS[s]}:{k}"
            assert paid.setdefault(key, g).id == g.id  # one transfer per sender and key
    after = await world.balances()
    assert sum(after.values()) == sum(before.values())
    for n in NUMBERS:
        out = sum(g.amount for g in paid.values() if g.sender == n)
        back = sum(g.amount for g in paid.values() if g.recipient == n)
        assert after[f"wallet:{n}"] == before[f"wallet:{n}"] - out + back
        assert await world.lifetime(n) == lifetimes[n] + out
    assert (await world.c.ledger.verify()).ok


async def test_usage_changed_after_the_first_read_is_checked_again(world: World,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Another payment of the sender commits between the batch's first read and its write:
    the batch sees the new counters, rolls back and the one-by-one path refuses."""
    a, b, *_ = NUMBERS
    batcher = world.c.wallet.batcher
    assert isinstance(batcher, TransferBatcher)
    real = batcher._write

    async def meanwhile(drv: Any, *args: object) -> list[Any]:
        async with world.c.db.begin() as conn:  # as if a top-up of theirs committed just now
            await conn.execute(update(usage).where(
                usage.c.user_id == select(users.c.id).where(users.c.msisdn == a).scalar_subquery()
            ).values(lifetime=100_000 - 50))
        return await real(drv, *args)

    await world.send(a, b, 1, "first")  # their usage row exists from here
    before = await world.balances()
    monkeypatch.setattr(batcher, "_write", meanwhile)
    got = await outcome(world.send(a, b, 60, "late"))
    monkeypatch.undo()
    assert isinstance(got, errors.LimitExceeded) and got.extra["remaining"] == 50
    assert await world.balances() == before and await world.lifetime(a) == 100_000 - 50
    assert (await world.c.ledger.verify()).ok


async def test_a_replay_racing_its_first_answer_is_paid_once(world: World,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The same key in batches in flight at once: a later batch waits on the first's locks,
    fails on the stored id, rolls back, and the one-by-one path answers its transfers (the
    replay as a replay)."""
    a, b, *_ = NUMBERS
    batcher = world.c.wallet.batcher
    assert isinstance(batcher, TransferBatcher)
    monkeypatch.setattr(batcher._queue, "_limit", 2)  # batches of two: many in flight
    real, failed = batcher._write, []

    async def write(drv: Any, *args: object) -> list[Any]:
        try:
            return await real(drv, *args)
        except asyncpg.UniqueViolationError:
            failed.append(args)
            raise

    monkeypatch.setattr(batcher, "_write", write)
    before = await world.balances()
    got = await asyncio.gather(*(outcome(world.send(a, b, 77, f"race{i % 3}")) for i in range(30)))
    assert failed, "no batch met a stored id"
    assert all(isinstance(g, TransferDone) for g in got), got
    firsts = {g.id for g in got if isinstance(g, TransferDone) and not g.replayed}
    assert len(firsts) == 3 and all(isinstance(g, TransferDone) and g.id in firsts for g in got)
    after = await world.balances()
    assert after[f"wallet:{a}"] == before[f"wallet:{a}"] - 3 * 77 and await world.lifetime(a) == 3 * 77
    assert (await world.c.ledger.verify()).ok
