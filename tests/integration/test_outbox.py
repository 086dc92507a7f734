"""The outbox: events commit with the state change, are delivered at least once, retried
with backoff, dead-lettered after N tries, and deduplicated by consumers."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from mobipay.kernel.clock import ManualClock
from mobipay.platform.db import Database
from mobipay.platform.outbox import Message, OutboxWorker, backoff, emit_raw, first_delivery


async def _emit(db: Database, clock: ManualClock, key: str, *, fail: bool = False) -> None:
    async with db.begin() as conn:
        await emit_raw(conn, "sms.send", key, {"to": "+8613800138000", "text": "您好"}, clock.now())
        if fail:
            raise RuntimeError("the use case failed after emitting")


async def test_event_is_written_only_if_the_transaction_commits(db: Database, clock: ManualClock) -> None:
    with pytest.raises(RuntimeError):
        await _emit(db, clock, "k-rolled-back", fail=True)
    await _emit(db, clock, "k-committed")
    async with db.begin() as conn:
        keys = [r[0] for r in await conn.execute(text("SELECT key FROM outbox_messages"))]
    assert keys == ["k-committed"]


async def test_delivery_retry_backoff_and_dead_letter(db: Database, clock: ManualClock) -> None:
    calls: list[Message] = []
    failures = {"left": 2}

    async def flaky(message: Message) -> None:
        calls.append(message)
        if failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("gateway down")

    worker = OutboxWorker(db, clock, {"sms.send": [flaky]}, max_attempts=3, backoff_base_s=10, backoff_max_s=60)
    await _emit(db, clock, "k1")
    assert await worker.run_once() == 1  # first try fails
    assert await worker.run_once() == 0  # not due yet: backing off
    clock.advance(10)
    assert await worker.run_once() == 1  # second try fails
    clock.advance(20)
    assert await worker.run_once() == 1  # third try succeeds
    assert [m.payload["text"] for m in calls] == ["您好"] * 3
    assert [m.attempts for m in calls] == [0, 1, 2]
    assert await worker.counts() == {"delivered": 1}

    async def broken(message: Message) -> None:
        raise ValueError("bad payload")

    dead_worker = OutboxWorker(db, clock, {"sms.send": [broken]}, max_attempts=2, backoff_base_s=1, backoff_max_s=1)
    await _emit(db, clock, "k2")
    assert await dead_worker.run_once() == 1
    clock.advance(5)
    assert await dead_worker.run_once() == 1
    clock.advance(5)
    assert await dead_worker.run_once() == 0
    assert await dead_worker.counts() == {"delivered": 1, "dead": 1}
    async with db.begin() as conn:
        row = (await conn.execute(text("SELECT attempts, last_error FROM outbox_messages WHERE key='k2'"))).one()
    assert row[0] == 2 and "ValueError: bad payload" in row[1]
    assert await dead_worker.requeue_dead() == 1
    assert await worker.run_once() == 1
    assert await worker.counts() == {"delivered": 2}


async def test_unknown_topic_is_retried_not_lost(db: Database, clock: ManualClock) -> None:
    worker = OutboxWorker(db, clock, {}, max_attempts=5, backoff_base_s=1, backoff_max_s=1)
    await _emit(db, clock, "k1")
    assert await worker.run_once() == 1
    assert await worker.counts() == {"pending": 1}


async def test_claimed_message_is_not_delivered_twice_concurrently(db: Database, clock: ManualClock) -> None:
    seen: list[str] = []

    async def handler(message: Message) -> None:
        seen.append(message.key)

    a = OutboxWorker(db, clock, {"sms.send": [handler]})
    b = OutboxWorker(db, clock, {"sms.send": [handler]})
    for i in range(5):
        await _emit(db, clock, f"k{i}")
    claimed = await a._claim()
    assert len(claimed) == 5
    assert await b._claim() == []  # leased to a
    clock.advance(61)  # a died: the lease runs out and b takes over (at least once)
    assert len(await b._claim()) == 5


async def test_consumer_dedupe_key(db: Database, clock: ManualClock) -> None:
    async with db.begin() as conn:
        assert await first_delivery(conn, "sms-sender", "k1", clock.now())
    async with db.begin() as conn:
        assert not await first_delivery(conn, "sms-sender", "k1", clock.now())
        assert await first_delivery(conn, "other-consumer", "k1", clock.now())


def test_backoff_grows_and_is_capped() -> None:
    assert 1 <= backoff(1, 2, 100) <= 2
    assert 4 <= backoff(3, 2, 100) <= 8
    assert 50 <= backoff(30, 2, 100) <= 100
