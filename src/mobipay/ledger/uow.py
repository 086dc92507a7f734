"""Unit of work: one transaction per use case, with its money moves and its events.

A context's service runs each command as ``await uow_runner.run("pay_bill", work)``;
``work`` receives a :class:`UnitOfWork` and does everything through it: its own rows on
``uow.conn``, money through ``uow.post(...)`` (the ledger, in the same transaction) and
events through ``uow.emit(...)`` (the outbox, in the same transaction). It all commits
once, or not at all; a transient conflict reruns the whole use case.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from mobipay.kernel.clock import Clock
from mobipay.kernel.errors import MobipayError
from mobipay.kernel.events import Event
from mobipay.ledger.model import AccountState, Command, Result
from mobipay.ledger.service import AccountSpec, Ledger
from mobipay.platform.db import Database
from mobipay.platform.observability import USE_CASES
from mobipay.platform.outbox import emit

T = TypeVar("T")


@dataclass
class UnitOfWork:
    """What a use case may touch inside its transaction."""

    conn: AsyncConnection
    now: datetime
    ledger: Ledger

    async def post(self, commands: Sequence[Command]) -> list[Result]:
        """Move money in this transaction (refusals come back as results, not exceptions)."""
        return await self.ledger.post_in(self.conn, commands)

    async def open_account(self, spec: AccountSpec) -> AccountState:
        """Open a ledger account in this transaction (idempotent for the same attributes)."""
        return await self.ledger.open_account_in(self.conn, spec)

    async def set_frozen(self, code: str, frozen: bool) -> None:
        """Freeze (no debits or credits) or unfreeze a ledger account in this transaction."""
        await self.ledger.set_frozen_in(self.conn, code, frozen)

    async def emit(self, event: Event) -> str:
        """Record an event for the outbox worker; it exists only if this transaction commits."""
        return await emit(self.conn, event, self.now)


class UnitOfWorkRunner:
    """Runs use cases in units of work and counts their outcomes for /metrics."""

    def __init__(self, db: Database, clock: Clock, ledger: Ledger) -> None:
        self.db = db
        self.clock = clock
        self.ledger = ledger

    async def run(self, use_case: str, work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
        async def attempt(conn: AsyncConnection) -> T:
            return await work(UnitOfWork(conn, self.clock.now(), self.ledger))

        try:
            result = await self.db.run(attempt)
        except MobipayError as exc:
            USE_CASES.labels(use_case, exc.code).inc()
            raise
        except Exception:
            USE_CASES.labels(use_case, "error").inc()
            raise
        USE_CASES.labels(use_case, "ok").inc()
        return result
