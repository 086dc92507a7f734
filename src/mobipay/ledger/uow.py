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
from typing import Any, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from mobipay.kernel.clock import Clock
from mobipay.kernel.errors import MobipayError
from mobipay.kernel.events import Event
from mobipay.ledger.model import AccountState, Command, Result, Side, StoredTransfer
from mobipay.ledger.service import AccountSpec, Ledger
from mobipay.platform import audit
from mobipay.platform.db import Database
from mobipay.platform.observability import USE_CASES
from mobipay.platform.outbox import emit

T = TypeVar("T")


class Transaction(Protocol):
    """What a use case converted to a store may touch inside its transaction: money, events,
    the audit trail; its rows through its context's store (built from this transaction).
    :class:`UnitOfWork` is the one on the database; tests have one in memory."""

    now: datetime

    async def post(self, commands: Sequence[Command]) -> list[Result]: ...
    async def open_account(self, spec: AccountSpec) -> AccountState: ...
    async def set_frozen(self, code: str, frozen: bool) -> None: ...
    async def emit(self, event: Event) -> str: ...
    async def audit(self, *, actor: str, action: str, target: str, reason: str,
                    before: dict[str, Any] | None = None, after: dict[str, Any] | None = None) -> str: ...


class LedgerReads(Protocol):
    """The ledger's reads a use case makes outside its transaction."""

    async def account(self, code: str) -> AccountState: ...
    async def transfer(self, transfer_id: str) -> StoredTransfer: ...
    async def history(self, code: str, *, after: int = 0, before: int | None = None, limit: int = 50,
                      codes: Sequence[str] | None = None, side: Side | None = None, since: datetime | None = None,
                      until: datetime | None = None, newest_first: bool = False
                      ) -> tuple[list[dict[str, Any]], int | None]: ...


class Runner(Protocol):
    """Runs a use case in a transaction: :class:`UnitOfWorkRunner`, or the tests' in memory."""

    @property
    def clock(self) -> Clock: ...
    @property
    def ledger(self) -> LedgerReads: ...
    async def run(self, use_case: str, work: Callable[[Any], Awaitable[T]]) -> T: ...


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

    async def audit(self, *, actor: str, action: str, target: str, reason: str,
                    before: dict[str, Any] | None = None, after: dict[str, Any] | None = None) -> str:
        """Write the audit entry of an operator's action in this transaction (with the change)."""
        return await audit.record(self.conn, at=self.now, actor=actor, action=action, target=target, reason=reason,
                                  before=before, after=after)


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
