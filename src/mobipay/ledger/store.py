"""The ledger's repository: reads and writes the tables in ``tables.py``.

The write path is set-based: for a whole batch it takes the account row locks in one
statement (sorted by id, so concurrent batches cannot deadlock), lets
:func:`mobipay.ledger.decide.decide` work in memory, then writes every transfer, every
posting and one netted update per touched account. On PostgreSQL that is one statement
(``unnest`` arrays into data-modifying CTEs); on SQLite, ``executemany`` calls inside the
single ``BEGIN IMMEDIATE`` writer transaction.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy import (
    BigInteger,
    Select,
    String,
    and_,
    bindparam,
    cast,
    func,
    insert,
    literal,
    not_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from mobipay.ledger import errors
from mobipay.ledger.decide import decide
from mobipay.ledger.model import (
    POSTING_COLUMNS,
    AccountSpec,
    AccountState,
    Command,
    HoldState,
    Leg,
    Outcome,
    PostPending,
    Reverse,
    Side,
    StoredTransfer,
    Transfer,
    TransferType,
    VoidPending,
    accounts_named,
    metadata_json,
)
from mobipay.ledger.pg_batch import (
    CACHE_MAX,
    PG_EXISTING,
    PG_LOCK,
    PG_OPTIMISTIC,
    PG_READ_ACCOUNTS,
    PG_WRITE,
    WRITE_NAMES,
    StaleCache,
    int_lit,
    parse_keys,
    posting_keys,
    text_lit,
    write_args,
    write_params,
)
from mobipay.ledger.tables import (
    ACCOUNT_COLS,
    account_state,
    accounts,
    open_holds,
    postings,
    transfers,
    utc,
)
from mobipay.platform.db import dialect_insert

__all__ = ["AccountSpec", "LedgerStore", "StaleCache"]

def _by_id(acc: AccountState) -> int:
    return acc.id


class LedgerStore:
    """Reads and writes the ledger tables on one connection (inside the caller's transaction)."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        #: Account state as of the last batch this process decided on the optimistic path
        #: (committed or still in flight). Never trusted: every write checks it (see
        #: ``_optimistic_sql``) and any failure empties it.
        self.cache: dict[str, AccountState] = {}
        #: Codes of accounts that batches still in flight (not yet committed or refused)
        #: may change: the cache must not be filled from the database for these.
        self.in_flight: dict[str, int] = {}
        self._waiters: list[asyncio.Future[None]] = []
        self._tail: asyncio.Future[None] | None = None  # the last batch sent (or to be)
        self._generation = 0  # counts cache flushes

    def hold_codes(self, codes: Iterable[str]) -> None:
        """Mark accounts as being changed by a batch in flight (see :attr:`in_flight`)."""
        flying = self.in_flight
        for code in codes:
            flying[code] = flying.get(code, 0) + 1

    def release_codes(self, codes: Iterable[str]) -> None:
        flying = self.in_flight
        for code in codes:
            left = flying[code] - 1
            if left:
                flying[code] = left
            else:
                del flying[code]
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def _wait_settled(self, codes: Sequence[str]) -> None:
        while any(c in self.in_flight for c in codes):
            fut = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            await fut

    # ------------------------------------------------------------------ accounts

    async def open_account(self, conn: AsyncConnection, spec: AccountSpec, now: datetime) -> AccountState:
        """Open an account; opening the same code again with the same attributes is a no-op."""
        row = (await conn.execute(select(accounts).where(accounts.c.code == spec.code))).first()
        if row is None:
            await conn.execute(
                insert(accounts).values(
                    code=spec.code, owner=spec.owner, name=spec.name, kind=spec.kind.value,
                    currency=spec.currency,
                    debits_must_not_exceed_credits=spec.debits_must_not_exceed_credits,
                    credits_must_not_exceed_debits=spec.credits_must_not_exceed_debits,
                    credit_limit=spec.credit_limit, created_at=now,
                )
            )
        else:
            same = (
                row.kind == spec.kind.value and row.currency == spec.currency
                and bool(row.debits_must_not_exceed_credits) == spec.debits_must_not_exceed_credits
                and bool(row.credits_must_not_exceed_debits) == spec.credits_must_not_exceed_debits
                and row.credit_limit == spec.credit_limit
            )
            if not same:
                raise errors.AccountExists(f"account {spec.code} exists with other attributes", field="code")
        found = await self.get_accounts(conn, [spec.code])
        return found[spec.code]

    async def open_accounts_bulk(self, conn: AsyncConnection, specs: Sequence[AccountSpec], now: datetime) -> None:
        """Open many accounts in a few statements; codes already open are left as they are
        (bulk loads: one row at a time costs three round trips per account)."""
        if not specs:
            return
        await conn.execute(dialect_insert(self.dialect, accounts).on_conflict_do_nothing(index_elements=["code"]), [
            {"code": s.code, "owner": s.owner, "name": s.name, "kind": s.kind.value, "currency": s.currency,
             "debits_must_not_exceed_credits": s.debits_must_not_exceed_credits,
             "credits_must_not_exceed_debits": s.credits_must_not_exceed_debits,
             "credit_limit": s.credit_limit, "created_at": now} for s in specs])

    async def get_accounts(self, conn: AsyncConnection, codes: Iterable[str]) -> dict[str, AccountState]:
        wanted = sorted(set(codes))
        if not wanted:
            return {}
        rows = await conn.execute(
            text(f"SELECT {ACCOUNT_COLS} FROM ledger_accounts WHERE code IN :codes").bindparams(
                bindparam("codes", expanding=True)
            ),
            {"codes": wanted},
        )
        return {a.code: a for a in map(account_state, rows)}

    async def set_frozen(self, conn: AsyncConnection, code: str, frozen: bool) -> None:
        self.cache.pop(code, None)
        result = await conn.execute(update(accounts).where(accounts.c.code == code).values(frozen=frozen))
        if result.rowcount == 0:
            raise errors.AccountNotFound(f"account {code!r} does not exist")

    # ------------------------------------------------------------------ batch write

    async def post(
        self, conn: AsyncConnection, commands: Sequence[Command], now: datetime, *, validated: bool = False
    ) -> Outcome:
        """Lock, decide and write one batch inside the caller's transaction.

        ``validated=True``: the caller already ran :func:`~mobipay.ledger.model.validate`
        on every command (the service does, to refuse bad input before any I/O).
        """
        pending_ids = {c.pending_id for c in commands if isinstance(c, PostPending | VoidPending)}
        original_ids = {c.original_id for c in commands if isinstance(c, Reverse)}
        holds = await self._holds(conn, pending_ids) if pending_ids else {}
        originals: dict[str, StoredTransfer] = {}
        reversed_ids: set[str] = set()
        if original_ids:
            originals = await self.load_transfers(conn, original_ids)
            rows = await conn.execute(
                select(transfers.c.reversal_of).where(transfers.c.reversal_of.in_(sorted(original_ids)))
            )
            reversed_ids = {r[0] for r in rows}
        codes: set[str] = set()
        for cmd in commands:
            codes |= accounts_named(cmd, holds, originals)
        ids = [c.id for c in commands]
        locked = await self._lock(conn, codes)
        existing_ids = await self._existing_ids(conn, ids)
        existing = await self.load_transfers(conn, existing_ids) if existing_ids else {}
        outcome = decide(
            commands, locked, now=now, existing=existing, holds=holds, originals=originals,
            reversed_ids=reversed_ids, validated=validated,
        )
        if outcome.transfers:
            await self._write(conn, outcome, now)
        for code in locked:  # changed outside the optimistic path: read afresh next time
            self.cache.pop(code, None)
        return outcome

    async def post_optimistic(
        self, drv: Any, commands: Sequence[Command], now: datetime, *, validated: bool = False
    ) -> Outcome:
        """Decide a batch of plain transfers on cached account state and write it in one
        autocommit statement on the asyncpg connection ``drv`` (PostgreSQL only).

        Raises :class:`StaleCache` when the statement was refused (state changed under the
        cache, an id already stored, a lock conflict): nothing was written, the cache is
        emptied and the batch must go to the locking :meth:`post`.
        """
        cache = self.cache
        codes: set[str] = set()
        for cmd in commands:
            if type(cmd) is not Transfer:
                raise StaleCache("holds, posts, voids and reversals take the locking path")
            codes.update(leg.account for leg in cmd.legs)
        absent: set[str] = set()  # codes the last read found no account for
        while missing := [c for c in codes if c not in cache and c not in absent]:
            if len(cache) > CACHE_MAX:
                cache.clear()
            # A committed read is only current once our own batches on these accounts settled.
            await self._wait_settled(missing)
            rows = await drv.fetch(PG_READ_ACCOUNTS, text_lit(sorted(missing)))
            if any(c in self.in_flight for c in missing):
                continue  # another batch took some of them meanwhile: read again after it
            read = [account_state(row) for row in rows]
            for acc in read:  # never overwrite: a cached entry may include in-flight batches
                if acc.code not in cache:
                    cache[acc.code] = acc
            absent = set(missing).difference(acc.code for acc in read)
            # and round again: the cache may have been emptied while we read
        # From here until this batch is queued behind the previous one, no await: batches
        # are decided one at a time, each on the state the previous one leaves.
        named = {c: cache[c] for c in codes if c in cache}
        accs = sorted(named.values(), key=_by_id)
        if any(a.frozen for a in accs):
            raise StaleCache("a frozen account: locking path")
        before = [a.counters() for a in accs]
        try:
            outcome = decide(commands, named, now=now, existing={}, holds={}, originals={},
                             validated=validated)
        except BaseException:
            self._forget()
            raise
        generation = self._generation
        held = list(named)
        self.hold_codes(held)
        prev, done = self._tail, asyncio.get_running_loop().create_future()
        self._tail = done
        ok = False
        try:
            refused = [r.id for r in outcome.results if r.error is not None]
            params = write_params(outcome)
            old = list(zip(*before, strict=True)) if before else [()] * 5
            args = [now, *(params[n] for n in WRITE_NAMES),
                    int_lit([a.id for a in accs]),
                    int_lit([a.debits_posted for a in accs]), int_lit([a.credits_posted for a in accs]),
                    int_lit([a.debits_pending for a in accs]), int_lit([a.credits_pending for a in accs]),
                    int_lit([a.version for a in accs]),
                    *(int_lit(col) for col in old), len(accs), text_lit(refused)]
            # Statements go to the server strictly one after another (on different
            # connections a later one could overtake an earlier one and find the state it
            # builds on not there yet); Python decides the next batch meanwhile.
            if prev is not None:
                await asyncio.shield(prev)
            if self._generation != generation:  # an earlier batch failed: ours built on it
                raise StaleCache("an earlier batch was refused", again=True)
            try:
                await drv.fetchval(PG_OPTIMISTIC, *args)
            except asyncpg.PostgresError as exc:
                raise StaleCache(str(exc)) from exc
            ok = True
        finally:
            if not ok:  # refused, connection lost or cancelled: trust nothing cached
                self._forget()
            done.set_result(None)
            if self._tail is done:
                self._tail = None
            self.release_codes(held)
        return outcome

    def decide_locked(self, commands: Sequence[Transfer], rows: Iterable[Sequence[Any]], now: datetime) -> Outcome:
        """Decide plain transfers on accounts a caller locked in its own statement (``rows``
        of :data:`ACCOUNT_COLS`, as :func:`~mobipay.ledger.pg_batch.lock_sql` selects them)."""
        locked = {a.code: a for a in map(account_state, rows)}
        for code in locked:  # changed outside the optimistic path: read afresh next time
            self.cache.pop(code, None)
        return decide(commands, locked, now=now, existing={}, holds={}, originals={}, validated=True)

    def _forget(self) -> None:
        self.cache.clear()
        self._generation += 1

    async def _lock(self, conn: AsyncConnection, codes: set[str]) -> dict[str, AccountState]:
        if not codes:
            return {}
        if self.dialect == "postgresql":
            rows = await conn.execute(PG_LOCK, {"codes": text_lit(sorted(codes))})
            return {a.code: a for a in map(account_state, rows)}
        return await self.get_accounts(conn, codes)  # SQLite: BEGIN IMMEDIATE already serialises

    async def _existing_ids(self, conn: AsyncConnection, ids: list[str]) -> list[str]:
        if self.dialect == "postgresql":
            return [r[0] for r in await conn.execute(PG_EXISTING, {"ids": text_lit(ids)})]
        rows = await conn.execute(select(transfers.c.id).where(transfers.c.id.in_(ids)))
        return [r[0] for r in rows]

    async def _write(self, conn: AsyncConnection, out: Outcome, now: datetime) -> None:
        new_holds = [t for t in out.transfers if t.type is TransferType.PENDING]
        resolved = [t.pending_id for t in out.transfers if t.pending_id is not None]
        if self.dialect == "postgresql":
            await conn.execute(PG_WRITE, write_args(out, now, resolved))
            return
        # SQLite: postings first, then their transfers; the trigger on the transfer insert
        # checks that the postings already written for it balance.
        if out.postings:
            await conn.execute(insert(postings), [{**dict(zip(POSTING_COLUMNS, row, strict=True)),
                                                   "created_at": now} for row in out.postings])
        await conn.execute(insert(transfers), [
            {"id": t.id, "type": t.type.value, "code": t.code, "reference": t.reference,
             "metadata": metadata_json(t.metadata), "pending_id": t.pending_id,
             "reversal_of": t.reversal_of, "expires_at": t.expires_at, "created_at": t.created_at,
             "posting_keys": keys}
            for t, keys in zip(out.transfers, posting_keys(out), strict=True)
        ])
        if new_holds:
            await conn.execute(insert(open_holds), [
                {"hold_id": t.id, "expires_at": t.expires_at} for t in new_holds
            ])
        if resolved:
            await conn.execute(open_holds.delete().where(open_holds.c.hold_id.in_(resolved)))
        if out.touched:
            await conn.execute(
                update(accounts).where(accounts.c.id == bindparam("a_id")).values(
                    debits_posted=bindparam("dp"), credits_posted=bindparam("cp"),
                    debits_pending=bindparam("dpn"), credits_pending=bindparam("cpn"),
                    version=bindparam("ver"),
                ),
                [{"a_id": a.id, "dp": a.debits_posted, "cp": a.credits_posted,
                  "dpn": a.debits_pending, "cpn": a.credits_pending, "ver": a.version}
                 for a in out.touched.values()],
            )

    # ------------------------------------------------------------------ reads

    async def load_transfers(self, conn: AsyncConnection, ids: Iterable[str]) -> dict[str, StoredTransfer]:
        """Stored transfers with their legs (account codes restored from ids)."""
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        rows = (await conn.execute(select(transfers).where(transfers.c.id.in_(wanted)))).all()
        legs: dict[str, list[tuple[int, Leg]]] = {}
        pairs = [pair for r in rows for pair in parse_keys(r.posting_keys)]
        if pairs:
            prow = await conn.execute(
                select(postings.c.transfer_id, postings.c.leg, postings.c.amount, postings.c.currency,
                       accounts.c.code)
                .join(accounts, accounts.c.id == postings.c.account_id)
                .where(tuple_(postings.c.account_id, postings.c.account_seq).in_(pairs))
            )
            for tid, leg_no, amount, currency, code in prow:
                side = Side.DEBIT if amount > 0 else Side.CREDIT
                legs.setdefault(tid, []).append((leg_no, Leg(code, side, abs(amount), currency)))
        found: dict[str, StoredTransfer] = {}
        for r in rows:
            found[r.id] = StoredTransfer(
                id=r.id, type=TransferType(r.type), code=r.code,
                legs=tuple(leg for _, leg in sorted(legs.get(r.id, []), key=lambda x: x[0])),
                reference=r.reference, metadata=json.loads(r.metadata) if r.metadata else None,
                created_at=utc(r.created_at) or datetime.now(UTC), pending_id=r.pending_id,
                reversal_of=r.reversal_of, expires_at=utc(r.expires_at),
            )
        return found

    async def find_transfer_ids(self, conn: AsyncConnection, *, code: str | None = None,
                                since: datetime | None = None, until: datetime | None = None,
                                limit: int = 50) -> list[str]:
        """Ids of transfers of one code and/or in a time range, newest first (the console's search)."""
        query = select(transfers.c.id)
        if code:
            query = query.where(transfers.c.code == code)
        if since is not None:
            query = query.where(transfers.c.created_at >= since)
        if until is not None:
            query = query.where(transfers.c.created_at < until)
        rows = await conn.execute(query.order_by(transfers.c.created_at.desc(), transfers.c.id.desc()).limit(limit))
        return [r[0] for r in rows]

    def first_legs(self, code: str, since: datetime, until: datetime) -> Select[Any]:
        """A query of every posted transfer of ``code`` with its first leg: ``transfer_id``,
        ``created_at``, ``account_code`` (the account of leg 0) and ``amount`` (leg 0's
        amount, positive for a debit) created in ``[since, until)`` (the ``(code,
        created_at)`` index). For read models (the KPI dashboard's P2P transfers: leg 0 is
        the payer's debit).

        PostgreSQL finds the leg through the transfer's ``posting_keys`` (the postings' primary
        key); SQLite has an index on ``ledger_postings.transfer_id``."""
        if self.dialect == "postgresql":
            first = func.split_part(transfers.c.posting_keys, " ", 1)
            on = and_(postings.c.account_id == cast(func.split_part(first, ":", 1), BigInteger),
                      postings.c.account_seq == cast(func.split_part(first, ":", 2), BigInteger))
        else:
            on = and_(postings.c.transfer_id == transfers.c.id, postings.c.leg == 0)
        return (select(transfers.c.id.label("transfer_id"), transfers.c.created_at,
                       accounts.c.code.label("account_code"), postings.c.amount)
                .select_from(transfers.join(postings, on).join(accounts, accounts.c.id == postings.c.account_id))
                .where(transfers.c.code == code, transfers.c.created_at >= since, transfers.c.created_at < until,
                       transfers.c.type == TransferType.POSTED.value))

    async def debited_between(self, conn: AsyncConnection, codes: Sequence[str], since: datetime, until: datetime,
                              excluding: Sequence[str]) -> set[str]:
        """Which of the accounts ``codes`` a posted debit touched in ``[since, until)`` by a
        transfer whose code is not in ``excluding``: postings are found per account (their
        primary key), each transfer by its id."""
        query = (select(accounts.c.code).distinct()
                 .select_from(accounts.join(postings, postings.c.account_id == accounts.c.id)
                              .join(transfers, transfers.c.id == postings.c.transfer_id))
                 .where(accounts.c.code.in_(list(codes)), postings.c.amount > 0, postings.c.pending.is_(False),
                        postings.c.created_at >= since, postings.c.created_at < until))
        if excluding:
            query = query.where(transfers.c.code.not_in(list(excluding)))
        return {r[0] for r in await conn.execute(query)}

    async def reversed_by(self, conn: AsyncConnection, transfer_id: str) -> str | None:
        row = (await conn.execute(select(transfers.c.id).where(transfers.c.reversal_of == transfer_id))).first()
        return None if row is None else str(row[0])

    async def _holds(self, conn: AsyncConnection, ids: set[str]) -> dict[str, HoldState]:
        found = await self.load_transfers(conn, ids)
        rows = await conn.execute(
            select(transfers.c.pending_id, transfers.c.type).where(transfers.c.pending_id.in_(sorted(ids)))
        )
        resolved = {r[0]: TransferType(r[1]) for r in rows}
        return {tid: HoldState(t, resolved.get(tid)) for tid, t in found.items()}

    async def expired_holds(self, conn: AsyncConnection, now: datetime, limit: int = 1000) -> list[str]:
        rows = await conn.execute(
            select(open_holds.c.hold_id)
            .where(and_(open_holds.c.expires_at.is_not(None), open_holds.c.expires_at <= now))
            .order_by(open_holds.c.expires_at)
            .limit(limit)
        )
        return [r[0] for r in rows]

    async def statement(
        self, conn: AsyncConnection, account_id: int, *, after_seq: int = 0, limit: int = 50,
        codes: Sequence[str] | None = None, side: Side | None = None, since: datetime | None = None,
        until: datetime | None = None, newest_first: bool = False,
    ) -> list[dict[str, Any]]:
        """Postings of one account in order (or newest first), from ``after_seq`` (keyset
        pagination), optionally only some transfer codes, one side (debits are positive
        amounts), a time range."""
        query = (
            select(postings, transfers.c.code, transfers.c.reference, transfers.c.type)
            .join(transfers, transfers.c.id == postings.c.transfer_id)
            .where(postings.c.account_id == account_id, postings.c.account_seq > after_seq)
        )
        if codes:
            query = query.where(transfers.c.code.in_(list(codes)))
        if side is not None:
            query = query.where(postings.c.amount > 0 if side is Side.DEBIT else postings.c.amount < 0)
        if since is not None:
            query = query.where(postings.c.created_at >= since)
        if until is not None:
            query = query.where(postings.c.created_at < until)
        order = postings.c.account_seq.desc() if newest_first else postings.c.account_seq
        rows = await conn.execute(query.order_by(order).limit(limit))
        out = []
        for r in rows:
            item = dict(r._mapping)
            item["created_at"] = utc(item["created_at"])
            item["pending"] = bool(item["pending"])
            out.append(item)
        return out

    async def history(
        self, conn: AsyncConnection, account_id: int, *, after_seq: int = 0, before_seq: int | None = None,
        limit: int = 50, codes: Sequence[str] | None = None, side: Side | None = None,
        since: datetime | None = None, until: datetime | None = None, newest_first: bool = False,
    ) -> list[dict[str, Any]]:
        """One line per payment of an account, the way its owner thinks of them: a hold and the
        posting that settled it are one line (at the hold's place, with the posted amount and
        the balance after it) with a ``state``: ``pending`` (held), ``succeeded`` (posted, and
        every plain transfer) or ``failed`` (voided or expired). Filters and keyset cursors as
        :meth:`statement`, on the line's own sequence; ``before_seq`` pages newest first."""
        resolution = transfers.alias("resolution")
        query = (
            select(postings, transfers.c.code, transfers.c.reference, transfers.c.type,
                   resolution.c.type.label("resolved_type"), resolution.c.posting_keys.label("resolved_keys"),
                   resolution.c.created_at.label("resolved_at"))
            .join(transfers, transfers.c.id == postings.c.transfer_id)
            .outerjoin(resolution, resolution.c.pending_id == transfers.c.id)  # holds only (a unique index)
            .where(postings.c.account_id == account_id, postings.c.account_seq > after_seq,
                   transfers.c.type != TransferType.POST_PENDING.value)  # (shown on its hold's line)
        )
        if before_seq is not None:
            query = query.where(postings.c.account_seq < before_seq)
        if codes:
            query = query.where(transfers.c.code.in_(list(codes)))
        if side is not None:
            query = query.where(postings.c.amount > 0 if side is Side.DEBIT else postings.c.amount < 0)
        if since is not None:
            query = query.where(postings.c.created_at >= since)
        if until is not None:
            query = query.where(postings.c.created_at < until)
        order = postings.c.account_seq.desc() if newest_first else postings.c.account_seq
        rows = list(await conn.execute(query.order_by(order).limit(limit)))
        # The settling postings of this account, found by their keys (no index on transfer ids).
        settled = [pair for r in rows if r.resolved_type == TransferType.POST_PENDING.value
                   for pair in parse_keys(r.resolved_keys) if pair[0] == account_id]
        posted: dict[tuple[int, int], Any] = {}
        if settled:
            for p in await conn.execute(select(postings).where(
                    tuple_(postings.c.account_id, postings.c.account_seq).in_(settled))):
                posted[(p.account_id, p.account_seq)] = p
        out = []
        for r in rows:
            item = dict(r._mapping)
            resolved, keys, resolved_at = item.pop("resolved_type"), item.pop("resolved_keys"), item.pop("resolved_at")
            item["created_at"] = utc(item["created_at"])
            item["settled_at"] = utc(resolved_at) if resolved_at is not None else None
            if item["type"] != TransferType.PENDING.value:
                item["state"] = "succeeded"
            elif resolved is None:
                item["state"] = "pending"
            elif resolved == TransferType.POST_PENDING.value:
                item["state"] = "succeeded"
                post = next((posted[pair] for pair in parse_keys(keys) if pair in posted), None)
                if post is not None:  # what was posted (all of the hold, or less) and the balance after it
                    item["amount"], item["balance_after"] = post.amount, post.balance_after
            else:
                item["state"] = "failed"
            item["pending"] = item["state"] == "pending"
            out.append(item)
        return out

    async def balance_as_of(self, conn: AsyncConnection, account_id: int, when: datetime) -> int:
        """Posted balance (normal side) after the last posted entry at or before ``when``."""
        row = (await conn.execute(
            select(postings.c.balance_after)
            .where(postings.c.account_id == account_id, postings.c.pending.is_(False),
                   postings.c.created_at <= when)
            .order_by(postings.c.account_seq.desc())
            .limit(1)
        )).first()
        return int(row[0]) if row else 0

    async def recomputed(self, conn: AsyncConnection) -> dict[int, tuple[int, int, int, int, int]]:
        """Per account, counters rebuilt from postings: (dp, cp, dpn, cpn, count)."""
        posted = await conn.execute(
            select(
                postings.c.account_id,
                func.coalesce(func.sum(func.abs(postings.c.amount)).filter(postings.c.amount > 0), 0),
                func.coalesce(func.sum(func.abs(postings.c.amount)).filter(postings.c.amount < 0), 0),
                func.count(),
                func.max(postings.c.account_seq),
            )
            .where(postings.c.pending.is_(False))
            .group_by(postings.c.account_id)
        )
        result: dict[int, list[int]] = {}
        for acc_id, dp, cp, n, _mx in posted:
            result[acc_id] = [int(dp), int(cp), 0, 0, int(n)]
        held = await conn.execute(
            select(
                postings.c.account_id,
                func.coalesce(func.sum(func.abs(postings.c.amount)).filter(postings.c.amount > 0), 0),
                func.coalesce(func.sum(func.abs(postings.c.amount)).filter(postings.c.amount < 0), 0),
                func.count(),
                func.sum(
                    func.abs(postings.c.amount)
                ).filter(postings.c.transfer_id.in_(select(open_holds.c.hold_id))),
                func.sum(
                    func.abs(postings.c.amount)
                ).filter(and_(postings.c.transfer_id.in_(select(open_holds.c.hold_id)), postings.c.amount < 0)),
            )
            .where(postings.c.pending.is_(True))
            .group_by(postings.c.account_id)
        )
        for acc_id, _dp, _cp, n, open_total, open_credit in held:
            entry = result.setdefault(acc_id, [0, 0, 0, 0, 0])
            open_total = int(open_total or 0)
            open_credit = int(open_credit or 0)
            entry[2] = open_total - open_credit
            entry[3] = open_credit
            entry[4] += int(n)
        return {k: (v[0], v[1], v[2], v[3], v[4]) for k, v in result.items()}

    async def all_accounts(self, conn: AsyncConnection) -> list[AccountState]:
        rows = await conn.execute(text(f"SELECT {ACCOUNT_COLS} FROM ledger_accounts ORDER BY id"))
        return [account_state(r) for r in rows]

    async def unbalanced_transfers(self, conn: AsyncConnection, limit: int = 20) -> list[tuple[str, str, int]]:
        rows = await conn.execute(
            select(postings.c.transfer_id, postings.c.currency, func.sum(postings.c.amount))
            .group_by(postings.c.transfer_id, postings.c.currency)
            .having(func.sum(postings.c.amount) != 0)
            .limit(limit)
        )
        return [(r[0], r[1], int(r[2])) for r in rows]

    async def orphan_postings(self, conn: AsyncConnection) -> int:
        """Postings naming an account or transfer that does not exist (the hot tables have
        no foreign keys), or that their transfer's ``posting_keys`` do not list."""
        key = (literal(" ") + cast(postings.c.account_id, String) + literal(":")
               + cast(postings.c.account_seq, String) + literal(" "))
        listed = (literal(" ") + transfers.c.posting_keys + literal(" ")).contains(key)
        row = (await conn.execute(
            select(func.count()).select_from(postings)
            .outerjoin(accounts, accounts.c.id == postings.c.account_id)
            .outerjoin(transfers, transfers.c.id == postings.c.transfer_id)
            .where((accounts.c.id.is_(None)) | (transfers.c.id.is_(None)) | not_(listed))
        )).first()
        return int(row[0]) if row else 0
