"""The transactional outbox: events commit with the state change, a worker delivers them.

A use case writes its events with :func:`emit` on the same connection (so in the same
transaction) as its state change: no event without the change, no change without its
event. ``mobipay worker`` claims due messages with a lease, hands each to the handlers of
its topic and marks it delivered; a failure is retried with exponential backoff and
jitter, and after ``max_attempts`` the message is dead-lettered for an operator.

Delivery is at least once: a worker that dies after delivering but before marking will
deliver again when the lease runs out. Consumers therefore dedupe on the message ``key``
with :func:`first_delivery` (a unique row per consumer and key, written in the consumer's
own transaction).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from prometheus_client import Counter
from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
    and_,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from mobipay.kernel.clock import Clock
from mobipay.kernel.events import Event
from mobipay.kernel.ids import new_id
from mobipay.platform.db import Database, dialect_insert, metadata

log = structlog.get_logger(__name__)

DELIVERED = Counter("mobipay_outbox_delivered_total", "Outbox messages delivered", ["topic"])
FAILED = Counter("mobipay_outbox_failed_total", "Outbox delivery attempts that failed", ["topic"])
DEAD = Counter("mobipay_outbox_dead_total", "Outbox messages dead-lettered", ["topic"])

outbox = Table(
    "outbox_messages",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("topic", String(128), nullable=False),
    Column("key", String(256), nullable=False),
    Column("payload", Text, nullable=False),
    Column("headers", Text, nullable=False, server_default="{}"),
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("available_at", DateTime(timezone=True), nullable=False),
    Column("claimed_until", DateTime(timezone=True), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
    Index("ix_outbox_messages_due", "status", "available_at"),
)

consumed = Table(
    "outbox_consumed",
    metadata,
    Column("consumer", String(128), primary_key=True),
    Column("key", String(256), primary_key=True),
    Column("consumed_at", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True, slots=True)
class Message:
    """An outbox message as a handler sees it."""

    id: str
    topic: str
    key: str
    payload: dict[str, Any]
    headers: dict[str, str]
    attempts: int


Handler = Callable[[Message], Awaitable[None]]


async def emit(conn: AsyncConnection, event: Event, now: datetime) -> str:
    """Write ``event`` to the outbox in the caller's transaction; returns the message id."""
    return await emit_raw(conn, event.topic, event.key, event.payload(), now, event.headers)


async def emit_raw(
    conn: AsyncConnection,
    topic: str,
    key: str,
    payload: Mapping[str, Any],
    now: datetime,
    headers: Mapping[str, str] | None = None,
) -> str:
    msg_id = new_id("msg")
    body, head = _encoded(payload, headers)
    await conn.execute(
        insert(outbox).values(id=msg_id, topic=topic, key=key, payload=body, headers=head, available_at=now,
                              created_at=now)
    )
    return msg_id


def _encoded(payload: Mapping[str, Any], headers: Mapping[str, str] | None) -> tuple[str, str]:
    """A message's payload and headers as stored: JSON, UTF-8 as is."""
    return json.dumps(payload, default=str, ensure_ascii=False), json.dumps(dict(headers or {}))


#: PostgreSQL (asyncpg), for a caller's batch statement: a data-modifying CTE body writing
#: outbox rows from parallel text[] arguments (see :func:`pg_rows`); ``{n}`` is the number of
#: the first of its six parameters (ids, topics, keys, payloads, headers, now).
PG_INSERT_MANY = (
    "INSERT INTO outbox_messages (id, topic, key, payload, headers, available_at, created_at) "
    "SELECT i, t, k, p, h, ${n5}, ${n5} FROM unnest(CAST(${n0} AS text[]), CAST(${n1} AS text[]), "
    "CAST(${n2} AS text[]), CAST(${n3} AS text[]), CAST(${n4} AS text[])) AS x(i, t, k, p, h)"
)


def pg_insert_many(first: int) -> str:
    """:data:`PG_INSERT_MANY` with its parameters numbered from ``first``."""
    return PG_INSERT_MANY.format(**{f"n{i}": first + i for i in range(6)})


def pg_rows(events: Sequence[Event], now: datetime) -> list[Any]:
    """The six arguments of :func:`pg_insert_many` for ``events`` (written as :func:`emit` would)."""
    encoded = [_encoded(e.payload(), e.headers) for e in events]
    return [[new_id("msg") for _ in events], [e.topic for e in events], [e.key for e in events],
            [body for body, _ in encoded], [head for _, head in encoded], now]


async def first_delivery(conn: AsyncConnection, consumer: str, key: str, now: datetime) -> bool:
    """Record that ``consumer`` handled ``key``; False if it already had (skip the effect)."""
    stmt = dialect_insert(conn.dialect.name, consumed).values(consumer=consumer, key=key, consumed_at=now)
    stmt = stmt.on_conflict_do_nothing()
    result = await conn.execute(stmt)
    return bool(result.rowcount)


def backoff(attempt: int, base_s: float, max_s: float) -> float:
    """Seconds before try ``attempt + 1``: exponential, capped, with full jitter."""
    ceiling = min(max_s, base_s * (2 ** max(0, attempt - 1)))
    return random.uniform(ceiling / 2, ceiling)


class OutboxWorker:
    """Claims due messages, runs their handlers, records the outcome."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        handlers: Mapping[str, list[Handler]],
        *,
        max_attempts: int = 8,
        backoff_base_s: float = 2.0,
        backoff_max_s: float = 3600.0,
        lease_s: float = 60.0,
        batch: int = 100,
    ) -> None:
        self.db = db
        self.clock = clock
        self.handlers = handlers
        self.max_attempts = max_attempts
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.lease = timedelta(seconds=lease_s)
        self.batch = batch

    async def _claim(self) -> list[Message]:
        async with self.db.begin() as conn:
            now = self.clock.now()
            due = and_(
                outbox.c.status == "pending",
                outbox.c.available_at <= now,
                or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until <= now),
            )
            query = select(outbox).where(due).order_by(outbox.c.available_at).limit(self.batch)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = (await conn.execute(query)).all()
            if not rows:
                return []
            await conn.execute(
                update(outbox).where(outbox.c.id.in_([r.id for r in rows]))
                .values(claimed_until=now + self.lease)
            )
        return [
            Message(r.id, r.topic, r.key, json.loads(r.payload), json.loads(r.headers), r.attempts)
            for r in rows
        ]

    async def run_once(self) -> int:
        """Deliver what is due now; returns how many messages were handled (either way)."""
        messages = await self._claim()
        for msg in messages:
            await self._deliver(msg)
        return len(messages)

    async def _deliver(self, msg: Message) -> None:
        handlers = self.handlers.get(msg.topic, [])
        error: str | None = None
        if not handlers:
            error = f"no handler for topic {msg.topic!r}"
        for handler in handlers:
            try:
                await handler(msg)
            except Exception as exc:  # a handler failure is recorded and retried, never lost
                error = f"{type(exc).__name__}: {exc}"
                break
        now = self.clock.now()
        async with self.db.begin() as conn:
            if error is None:
                DELIVERED.labels(msg.topic).inc()
                await conn.execute(update(outbox).where(outbox.c.id == msg.id).values(
                    status="delivered", delivered_at=now, attempts=msg.attempts + 1,
                    claimed_until=None, last_error=None))
                return
            attempts = msg.attempts + 1
            FAILED.labels(msg.topic).inc()
            if attempts >= self.max_attempts:
                DEAD.labels(msg.topic).inc()
                log.warning("outbox.dead_letter", message_id=msg.id, topic=msg.topic, error=error)
                values: dict[str, Any] = {"status": "dead"}
            else:
                delay = backoff(attempts, self.backoff_base_s, self.backoff_max_s)
                values = {"available_at": now + timedelta(seconds=delay)}
                log.info("outbox.retry", message_id=msg.id, topic=msg.topic, attempt=attempts,
                         retry_in_s=round(delay, 1), error=error)
            await conn.execute(update(outbox).where(outbox.c.id == msg.id).values(
                attempts=attempts, last_error=error[:2000], claimed_until=None, **values))

    async def run(self, stop: asyncio.Event, idle_s: float = 0.5) -> None:
        """Deliver until ``stop`` is set, sleeping ``idle_s`` when nothing is due."""
        log.info("outbox.worker_started", topics=sorted(self.handlers))
        while not stop.is_set():
            try:
                handled = await self.run_once()
            except Exception:
                log.exception("outbox.worker_error")
                handled = 0
            if not handled:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=idle_s)

    async def requeue_dead(self, message_id: str | None = None) -> int:
        """Operator action: give dead-lettered messages a fresh set of tries."""
        async with self.db.begin() as conn:
            cond = outbox.c.status == "dead"
            if message_id:
                cond = and_(cond, outbox.c.id == message_id)
            result = await conn.execute(update(outbox).where(cond).values(
                status="pending", attempts=0, available_at=self.clock.now()))
            return int(result.rowcount)

    async def counts(self) -> dict[str, int]:
        async with self.db.begin() as conn:
            rows = await conn.execute(select(outbox.c.status, func.count()).group_by(outbox.c.status))
            return {r[0]: int(r[1]) for r in rows}
