"""Ledger use cases: the only way any context moves money.

Other contexts call :class:`Ledger` (never the store or the tables). Three ways to post:

* :meth:`Ledger.post` / :meth:`Ledger.post_batch` in a transaction of their own, gathered by
  group commit when the committer is running (servers, workers, benchmarks);
* :meth:`Ledger.post_in` inside a caller's unit of work, so a context's own rows, its
  outbox events and the money move commit together or not at all;
* :meth:`Ledger.decide_locked` for a caller that batches its own rows with the money in its
  own statements on PostgreSQL: it locks the accounts with :func:`pg_lock_accounts` and
  writes with :func:`pg_post_with` (the wallet's transfer batches).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncConnection

from mobipay.kernel.clock import Clock
from mobipay.kernel.errors import MobipayError
from mobipay.ledger import errors
from mobipay.ledger.group_commit import GroupCommitter
from mobipay.ledger.model import (
    AccountState,
    Command,
    Result,
    Side,
    StoredTransfer,
    Transfer,
    VoidPending,
    validate,
)
from mobipay.ledger.pg_batch import WRITE_WITH_FIRST, lock_sql, write_args_raw, write_with_sql
from mobipay.ledger.store import AccountSpec, LedgerStore, StaleCache
from mobipay.platform.db import Database
from mobipay.platform.periodic import every

log = structlog.get_logger(__name__)

__all__ = ["PG_POST_WITH_FIRST", "AccountSpec", "Ledger", "LockedPosting", "VerifyReport", "pg_lock_accounts",
           "pg_post_with"]

#: The first parameter number of a caller's part of :func:`pg_post_with` (the ledger's come first).
PG_POST_WITH_FIRST = WRITE_WITH_FIRST


def pg_lock_accounts(codes: str) -> str:
    """SQL (PostgreSQL) locking the accounts whose codes the subquery ``codes`` yields, in id
    order, for :meth:`Ledger.decide_locked`; a caller's CTE body, so its own reads and the
    lock are one round trip."""
    return lock_sql(codes)


def pg_post_with(ctes: str, select: str) -> str:
    """SQL (asyncpg) writing what :meth:`Ledger.decide_locked` decided and, in the same
    statement, a caller's rows: its ``ctes`` (parameters numbered from
    :data:`PG_POST_WITH_FIRST`) and final ``select``. Arguments: the posting's ``args``,
    then the caller's."""
    return write_with_sql(ctes, select)


@dataclass(frozen=True)
class LockedPosting:
    """What :meth:`Ledger.decide_locked` decided: a result per command, and the ledger's
    arguments of :func:`pg_post_with` (None: every command was refused, nothing to write)."""

    results: list[Result]
    args: list[object] | None


@dataclass
class VerifyReport:
    """What ``mobipay ledger verify`` found; ``ok`` only when every check passed."""

    accounts: int = 0
    differences: list[dict[str, Any]] = field(default_factory=list)
    unbalanced: list[tuple[str, str, int]] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)
    orphan_postings: int = 0

    @property
    def ok(self) -> bool:
        return (not self.differences and not self.unbalanced and not self.orphan_postings
                and all(v == 0 for v in self.totals.values()))


class Ledger:
    """Facade over the ledger store: opens transactions, retries conflicts, batches commits."""

    def __init__(self, db: Database, clock: Clock, *, max_batch: int = 2000, writers: int = 2) -> None:
        self.db = db
        self.clock = clock
        self.store = LedgerStore(db.dialect)
        self.max_batch = max_batch
        # SQLite has one writer at a time: more writer tasks would only queue on its lock.
        self.committer = GroupCommitter(
            self._flush, max_batch=max_batch, writers=1 if db.dialect == "sqlite" else writers
        )
        self._group_commit = False

    # ------------------------------------------------------------------ lifecycle

    def start_group_commit(self) -> None:
        """Gather concurrent :meth:`post` calls into shared transactions from now on."""
        self._group_commit = True
        self.committer.start()

    async def stop(self) -> None:
        if self._group_commit:
            self._group_commit = False
            await self.committer.stop()

    # ------------------------------------------------------------------ accounts

    async def open_account(self, spec: AccountSpec) -> AccountState:
        return await self.db.run(lambda conn: self.store.open_account(conn, spec, self.clock.now()))

    async def open_account_in(self, conn: AsyncConnection, spec: AccountSpec) -> AccountState:
        """Open an account inside the caller's transaction (its unit of work)."""
        return await self.store.open_account(conn, spec, self.clock.now())

    async def open_accounts(self, specs: Sequence[AccountSpec]) -> list[AccountState]:
        async def work(conn: AsyncConnection) -> list[AccountState]:
            now = self.clock.now()
            return [await self.store.open_account(conn, s, now) for s in specs]

        return await self.db.run(work)

    async def open_accounts_bulk(self, specs: Sequence[AccountSpec], chunk: int = 5000) -> None:
        """Open many accounts quickly (demo and migration loads), ``chunk`` per transaction.
        Codes already open are skipped without comparing attributes, unlike :meth:`open_accounts`."""
        for start in range(0, len(specs), chunk):
            part = list(specs[start : start + chunk])

            async def work(conn: AsyncConnection, part: list[AccountSpec] = part) -> None:
                await self.store.open_accounts_bulk(conn, part, self.clock.now())

            await self.db.run(work)

    async def account(self, code: str) -> AccountState:
        async with self.db.begin() as conn:
            found = await self.store.get_accounts(conn, [code])
        if code not in found:
            raise errors.AccountNotFound(f"account {code!r} does not exist")
        return found[code]

    async def accounts(self, codes: Sequence[str]) -> dict[str, AccountState]:
        """Several accounts in one read (unknown codes are simply absent)."""
        async with self.db.begin() as conn:
            return await self.store.get_accounts(conn, codes)

    async def set_frozen_in(self, conn: AsyncConnection, code: str, frozen: bool) -> None:
        """Freeze or unfreeze inside the caller's transaction."""
        await self.store.set_frozen(conn, code, frozen)

    async def set_frozen(self, code: str, frozen: bool) -> None:
        async with self.db.begin() as conn:
            await self.store.set_frozen(conn, code, frozen)

    # ------------------------------------------------------------------ posting

    async def post(self, command: Command) -> Result:
        """Post one command and wait for its durable commit."""
        return (await self.post_batch([command]))[0]

    async def post_batch(self, commands: Sequence[Command]) -> list[Result]:
        """A result per command, in order; one refusal does not fail the others
        (except inside a linked chain, which succeeds or fails as a whole)."""
        if self._group_commit:
            return await self.committer.submit(list(commands))
        results: list[Result] = []
        for start in range(0, len(commands), self.max_batch):
            chunk = list(commands[start : start + self.max_batch])
            results.extend(await self._flush(chunk))
        return results

    async def post_in(self, conn: AsyncConnection, commands: Sequence[Command]) -> list[Result]:
        """Post inside the caller's transaction (its unit of work commits or rolls back)."""
        outcome = await self.store.post(conn, list(commands), self.clock.now())
        return outcome.results

    def decide_locked(self, commands: Sequence[Transfer], locked: Iterable[Sequence[Any]]) -> LockedPosting:
        """Decide plain transfers on the accounts a caller locked inside its transaction
        (``locked``: the rows its :func:`pg_lock_accounts` selected, which must hold every
        account of every command): a result per command, refusals included, and the
        ledger's arguments of the caller's :func:`pg_post_with` statement.

        No stored transfer is read: a command whose id is already stored (a replay) fails
        that statement with a unique violation (SQLSTATE 23505, nothing written); the caller
        rolls back and posts by the ordinary path, which answers a replay.
        """
        for cmd in commands:
            validate(cmd)
        now = self.clock.now()
        outcome = self.store.decide_locked(commands, locked, now)
        return LockedPosting(outcome.results, write_args_raw(outcome, now, []) if outcome.transfers else None)

    async def _flush(self, commands: list[Command]) -> list[Result]:
        # Refuse malformed commands before touching the database, so a bad one costs nothing.
        early: dict[int, Result] = {}
        good: list[Command] = []
        for i, cmd in enumerate(commands):
            try:
                validate(cmd)
            except MobipayError as exc:
                early[i] = Result(cmd.id, error=exc)
                continue
            good.append(cmd)
        validated = True
        if early and any(c.linked for c in commands):
            # A bad member breaks its chain: let decide() report the chain together.
            good, early, validated = list(commands), {}, False
        if not good:
            return [early[i] for i in range(len(commands))]

        decided = iter(await self._decide_and_write(good, validated))
        return [early[i] if i in early else next(decided) for i in range(len(commands))]

    async def _decide_and_write(self, commands: list[Command], validated: bool) -> list[Result]:
        held: list[str] = []
        if self.db.dialect == "postgresql" and all(type(c) is Transfer for c in commands):
            # Optimistic path: one autocommit statement on cached account state. Any
            # refusal by the database (stale state, a stored id) falls through to the
            # locking path below, which decides the batch afresh.
            for _ in range(3):
                try:
                    async with self.db.engine.connect() as sa_conn:
                        raw = await sa_conn.get_raw_connection()
                        outcome = await self.store.post_optimistic(
                            raw.driver_connection, commands, self.clock.now(), validated=validated,
                        )
                    return outcome.results
                except StaleCache as exc:
                    log.debug("ledger.optimistic_refused", reason=str(exc))
                    if not exc.again:
                        break
            # Until the locking path commits, the cache must not be refilled for these.
            held = list({leg.account for c in commands if type(c) is Transfer for leg in c.legs})

        async def work(conn: AsyncConnection) -> list[Result]:
            outcome = await self.store.post(conn, commands, self.clock.now(), validated=validated)
            return outcome.results

        self.store.hold_codes(held)
        try:
            return await self.db.run(work)
        finally:
            for code in held:
                self.store.cache.pop(code, None)
            self.store.release_codes(held)

    # ------------------------------------------------------------------ holds

    async def sweep_expired_holds(self, limit: int = 1000) -> int:
        """Void every hold past its timeout; returns how many were voided."""
        async with self.db.begin() as conn:
            ids = await self.store.expired_holds(conn, self.clock.now(), limit)
        if not ids:
            return 0
        results = await self.post_batch(
            [VoidPending(id=f"expire:{hid}", pending_id=hid, code="hold.expire", expire=True) for hid in ids]
        )
        done = sum(1 for r in results if r.ok and not r.replayed)
        log.info("ledger.holds_expired", count=done)
        return done

    async def run_hold_sweeper(self, interval_s: float, stop: asyncio.Event) -> None:
        await every(interval_s, stop, self.sweep_expired_holds, "ledger.sweep_holds")

    # ------------------------------------------------------------------ queries

    async def transfer(self, transfer_id: str) -> StoredTransfer:
        async with self.db.begin() as conn:
            found = await self.store.load_transfers(conn, [transfer_id])
        if transfer_id not in found:
            raise errors.TransferNotFound(f"no transfer with id {transfer_id!r}")
        return found[transfer_id]

    async def find_transfers(self, *, code: str | None = None, since: datetime | None = None,
                             until: datetime | None = None, limit: int = 50) -> list[StoredTransfer]:
        """Transfers of one code (kind) and/or created in ``[since, until)``, newest first."""
        async with self.db.begin() as conn:
            ids = await self.store.find_transfer_ids(conn, code=code, since=since, until=until, limit=limit)
            found = await self.store.load_transfers(conn, ids)
        return [found[i] for i in ids if i in found]

    def first_legs(self, code: str, since: datetime, until: datetime) -> Select[Any]:
        """Posted transfers of ``code`` created in ``[since, until)`` with their first leg, as a
        query (columns ``transfer_id``, ``created_at``, ``account_code``, ``amount``): how read
        models such as the KPI dashboard count P2P transfers without naming ledger tables."""
        return self.store.first_legs(code, since, until)

    async def debited_between(self, codes: Sequence[str], since: datetime, until: datetime, *,
                              excluding: Sequence[str] = (), chunk: int = 2_000) -> set[str]:
        """Which accounts of ``codes`` paid something (a posted debit) in ``[since, until)``,
        transfers of the codes ``excluding`` not counted: the activity of campaign segments."""
        found: set[str] = set()
        for i in range(0, len(codes), chunk):
            async with self.db.begin() as conn:
                found |= await self.store.debited_between(conn, codes[i:i + chunk], since, until, excluding)
        return found

    async def reversed_by(self, transfer_id: str) -> str | None:
        """The id of the transfer that reversed ``transfer_id``, or None."""
        async with self.db.begin() as conn:
            return await self.store.reversed_by(conn, transfer_id)

    async def balance_as_of(self, code: str, when: datetime) -> int:
        acc = await self.account(code)
        async with self.db.begin() as conn:
            return await self.store.balance_as_of(conn, acc.id, when)

    async def statement(self, code: str, *, after: int = 0, limit: int = 50, codes: Sequence[str] | None = None,
                        side: Side | None = None, since: datetime | None = None, until: datetime | None = None,
                        newest_first: bool = False) -> tuple[list[dict[str, Any]], int | None]:
        """Entries after cursor ``after`` (optionally filtered) and the next cursor (None at the end).
        ``newest_first`` gives the latest ``limit`` entries, newest first, without a cursor."""
        acc = await self.account(code)
        async with self.db.begin() as conn:
            items = await self.store.statement(conn, acc.id, after_seq=after, limit=limit + 1, codes=codes, side=side,
                                               since=since, until=until, newest_first=newest_first)
        more = len(items) > limit and not newest_first
        items = items[:limit]
        return items, (items[-1]["account_seq"] if more and items else None)

    async def history(self, code: str, *, after: int = 0, before: int | None = None, limit: int = 50,
                      codes: Sequence[str] | None = None, side: Side | None = None, since: datetime | None = None,
                      until: datetime | None = None, newest_first: bool = False
                      ) -> tuple[list[dict[str, Any]], int | None]:
        """One line per payment (a hold and its settlement together, with its state) and the
        next cursor (None at the end): ``after`` for oldest first, ``before`` for newest first.
        Every channel's history is this (``WalletService.history``); ``statement`` is the raw
        postings for the books."""
        acc = await self.account(code)
        async with self.db.begin() as conn:
            items = await self.store.history(conn, acc.id, after_seq=after, before_seq=before, limit=limit + 1,
                                             codes=codes, side=side, since=since, until=until,
                                             newest_first=newest_first)
        more = len(items) > limit
        items = items[:limit]
        return items, (items[-1]["account_seq"] if more and items else None)

    async def verify(self) -> VerifyReport:
        """Recompute every balance from postings and check that the books balance."""
        report = VerifyReport()
        async with self.db.snapshot() as conn:  # counters and postings from the same instant
            accounts = await self.store.all_accounts(conn)
            rebuilt = await self.store.recomputed(conn)
            report.unbalanced = await self.store.unbalanced_transfers(conn)
            report.orphan_postings = await self.store.orphan_postings(conn)
        report.accounts = len(accounts)
        for acc in accounts:
            expected = rebuilt.pop(acc.id, (0, 0, 0, 0, 0))
            if acc.counters() != expected:
                report.differences.append({
                    "account": acc.code,
                    "stored": dict(zip(_COUNTERS, acc.counters(), strict=True)),
                    "from_postings": dict(zip(_COUNTERS, expected, strict=True)),
                })
            report.totals[acc.currency] = (
                report.totals.get(acc.currency, 0) + acc.debits_posted - acc.credits_posted
            )
        for acc_id, expected in rebuilt.items():
            report.differences.append({"account_id": acc_id, "stored": None,
                                       "from_postings": dict(zip(_COUNTERS, expected, strict=True))})
        return report


_COUNTERS = ("debits_posted", "credits_posted", "debits_pending", "credits_pending", "postings")
