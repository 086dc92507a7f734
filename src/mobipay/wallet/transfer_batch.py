"""Group commit for password-free P2P transfers on PostgreSQL: the API's hot path.

One transfer done alone costs its own transaction: the access token, both wallets, the
sender's usage row, the ledger posting, the recipient's SMS, and a commit (an fsync) of
its own. Transfers that arrive together are instead gathered, and a batch of any size is
done in one transaction of two statements on asyncpg:

1. read and lock (:data:`READ`): every access token's session, wallet, usage and PIN lock, every
   recipient's wallet, and the ledger accounts of them all (with the suspense account when
   a recipient has no wallet) locked in id order (:func:`~mobipay.ledger.service.pg_lock_accounts`);
   then Python decides, by the wallet's rules and the ledger's (:meth:`Ledger.decide_locked`);
2. write (:data:`WRITE`, built by :func:`~mobipay.ledger.service.pg_post_with`): the
   ledger's transfers, postings and balances, then the senders' usage counters added to
   (their rows locked in id order, after the accounts, as every one-by-one payment locks
   them), the claims of money waiting for unregistered recipients and the outbox rows of
   the SMS; the counters it returns are checked against every limit again;

then one commit. Each caller gets its own answer only after that commit: nothing is
acknowledged that is not durable.

The rules are the one-by-one path's (:func:`~mobipay.wallet.model.p2p_command` and
:func:`~mobipay.wallet.model.check_limits`). What the batch does not decide itself goes to
the one-by-one path (:meth:`WalletService.transfer`), which is exact for every case: a
transfer past a limit (so a replay is answered as a replay, not refused), a replayed
idempotency key (the same key twice in a batch, or a stored one: the write fails on the
transfer's primary key), a sender whose PIN is locked (password-free payments are suspended
then, and a replay must still be answered as one), usage that changed between the first
read and the write, and any database error. The batch only ever takes the common case faster.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, NamedTuple, Protocol

import asyncpg
import structlog

from mobipay.kernel.clock import SHANGHAI
from mobipay.kernel.errors import MobipayError
from mobipay.kernel.ids import new_id
from mobipay.ledger.chart import SUSPENSE
from mobipay.ledger.model import Transfer
from mobipay.ledger.service import PG_POST_WITH_FIRST, pg_lock_accounts, pg_post_with
from mobipay.ledger.uow import UnitOfWorkRunner
from mobipay.platform.batch_queue import BatchQueue
from mobipay.platform.credentials import token_hash
from mobipay.platform.db import Params
from mobipay.platform.observability import USE_CASES
from mobipay.platform.outbox import pg_insert_many, pg_rows
from mobipay.wallet.model import (
    CLAIM_WINDOW,
    KycTier,
    Principal,
    TransferDone,
    Usage,
    User,
    UserStatus,
    WalletLimits,
    check_limits,
    check_not_self,
    check_session,
    p2p_command,
    p2p_sms,
    within_limits,
)

log = structlog.get_logger(__name__)

_USER = "u.id, u.msisdn, u.operator, u.virtual_operator, u.status, u.tier, u.account_code, u.created_at"
_R = Params(1, "token_hashes", "numbers", "suspense")
# One row: the sessions of the token hashes with their wallets, usage and PIN lock, the
# recipients' wallets by number, and the locked ledger accounts of both (with the suspense
# account when some recipient has none). The lock covers every account a transfer of the
# batch can touch.
READ = f"""
WITH signed_in AS (
  SELECT ses.access_hash, ses.access_expires_at, ses.revoked_at, {_USER},
         w.user_id, w.lifetime, w.year, w.year_total, w.day, w.day_total, p.locked_until
    FROM wallet_sessions ses JOIN wallet_users u ON u.id = ses.user_id
         LEFT JOIN wallet_usage w ON w.user_id = u.id LEFT JOIN wallet_pins p ON p.user_id = u.id
   WHERE ses.access_hash IN (SELECT unnest(CAST({_R["token_hashes"]} AS text[])))
), recipients AS (
  SELECT {_USER} FROM wallet_users u WHERE u.msisdn IN (SELECT unnest(CAST({_R["numbers"]} AS text[])))
), locked AS (
""" + pg_lock_accounts(
    "SELECT account_code FROM signed_in UNION ALL SELECT account_code FROM recipients "
    f"UNION ALL SELECT CAST({_R['suspense']} AS text) "
    f"WHERE (SELECT count(*) FROM recipients) < cardinality(CAST({_R['numbers']} AS text[]))") + """
)
SELECT (SELECT array_agg(signed_in) FROM signed_in), (SELECT array_agg(recipients) FROM recipients),
       (SELECT array_agg(locked) FROM locked)
"""

# After the ledger's part (pg_post_with), in the same statement: usage, claims and SMS. Usage
# rows are created when missing and updated in the order given, sorted by user id (two
# batches never wait on each other in a cycle); a new day or year starts its counter from
# zero, as Usage.rolled does. The new counters come back to be checked against the limits:
# what the first read saw may have changed since.
_W = Params(PG_POST_WITH_FIRST, "senders", "paid", "year", "day", "now", "claims_expire", "claim_ids",
            "claim_transfers", "claim_senders", "claim_sender_msisdns", "claim_recipients", "claim_amounts")
WRITE = pg_post_with(f"""usage_after AS (
  INSERT INTO wallet_usage AS w (user_id, lifetime, year, year_total, day, day_total)
  SELECT id, paid, {_W["year"]}, paid, {_W["day"]}, paid
    FROM unnest(CAST({_W["senders"]} AS text[]), CAST({_W["paid"]} AS bigint[])) AS v(id, paid)
      ON CONFLICT (user_id) DO UPDATE SET
         lifetime = w.lifetime + EXCLUDED.lifetime,
         year_total = CASE WHEN w.year = EXCLUDED.year THEN w.year_total ELSE 0 END + EXCLUDED.year_total,
         year = EXCLUDED.year,
         day_total = CASE WHEN w.day = EXCLUDED.day THEN w.day_total ELSE 0 END + EXCLUDED.day_total,
         day = EXCLUDED.day
  RETURNING w.user_id, w.lifetime, w.year, w.year_total, w.day, w.day_total
), new_claims AS (
  INSERT INTO wallet_claims
    (id, transfer_id, sender_id, sender_msisdn, recipient_msisdn, amount, state, created_at, expires_at)
  SELECT i, t, s, sm, rm, a, 'waiting', {_W["now"]}, {_W["claims_expire"]}
    FROM unnest(CAST({_W["claim_ids"]} AS text[]), CAST({_W["claim_transfers"]} AS text[]),
                CAST({_W["claim_senders"]} AS text[]), CAST({_W["claim_sender_msisdns"]} AS text[]),
                CAST({_W["claim_recipients"]} AS text[]), CAST({_W["claim_amounts"]} AS bigint[]))
      AS x(i, t, s, sm, rm, a)
), new_sms AS (
{pg_insert_many(_W.next)}
)""", "SELECT * FROM usage_after")


@dataclass(slots=True)
class QueuedTransfer:
    """One caller's transfer, waiting for its batch."""

    token: str
    to: str
    amount: int
    key: str
    note: str
    future: asyncio.Future[TransferDone] = field(repr=False)


class OneByOne(Protocol):
    """The wallet's one-by-one path, exact for every case the batch leaves to it."""

    @property
    def limits(self) -> WalletLimits: ...
    async def authenticate(self, access_token: str) -> Principal: ...
    async def transfer(self, me: Principal, raw_to: str, amount: object, *, idempotency_key: str,
                       note: str = "") -> TransferDone: ...


class TransferBatcher:
    """Queue of password-free transfers drained by ``writers`` tasks, each doing a batch of
    up to ``max_batch`` in one transaction (see the module docstring)."""

    def __init__(self, wallet: OneByOne, runner: UnitOfWorkRunner, *, writers: int = 2, max_batch: int = 200
                 ) -> None:
        self.wallet = wallet
        self.runner = runner
        self._writers = writers
        self._queue: BatchQueue[QueuedTransfer] = BatchQueue(lambda _: 1, max_batch)

    async def submit(self, token: str, to: str, amount: int, key: str, note: str) -> TransferDone:
        """Transfer ``amount`` (checked, at most the password-free amount) from the bearer of
        ``token`` to ``to`` (E.164); returns after the commit, or raises the refusal."""
        self._queue.start(self._writer, self._writers, "transfer-batch")
        future: asyncio.Future[TransferDone] = asyncio.get_running_loop().create_future()
        self._queue.put(QueuedTransfer(token, to, amount, key, note, future))
        return await future

    async def stop(self) -> None:
        """Finish what is queued, then stop the writers."""
        await self._queue.stop()

    async def _writer(self) -> None:
        while (asks := await self._queue.take()) is not None:
            try:
                alone = await self._batch(asks)
            except Exception as exc:  # a database error: every transfer of the batch, one by one
                log.warning("transfer_batch.failed", error=str(exc), transfers=len(asks))
                alone = asks
            await asyncio.gather(*(self._one_by_one(ask) for ask in alone if not ask.future.done()))

    async def _one_by_one(self, ask: QueuedTransfer) -> None:
        """The one-by-one path, exact for every case."""
        wallet = self.wallet
        try:
            me = await wallet.authenticate(ask.token)
            done = await wallet.transfer(me, ask.to, ask.amount, idempotency_key=ask.key, note=ask.note)
        except BaseException as exc:
            if not ask.future.done():
                ask.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        if not ask.future.done():
            ask.future.set_result(done)

    async def _batch(self, asks: list[QueuedTransfer]) -> list[QueuedTransfer]:
        """Do ``asks`` in one transaction; answer each after the commit. Returns the asks left
        to the one-by-one path (none answered yet)."""
        now = self.runner.clock.now()
        today = now.astimezone(SHANGHAI).date()
        async with self.runner.db.engine.connect() as sa_conn:
            pg = (await sa_conn.get_raw_connection()).driver_connection
            assert pg is not None
            tx = pg.transaction()
            await tx.start()
            try:
                answers = await self._decide_and_write(pg, asks, now, today)
                await tx.commit()
            except BaseException as exc:
                await _rollback(tx)
                if isinstance(exc, _RedoOneByOne | asyncpg.UniqueViolationError):  # (a stored id: a replay)
                    return asks
                raise
        refused, done, alone = answers
        for ask, refusal in refused:
            USE_CASES.labels("transfer", refusal.code).inc()
            if not ask.future.done():  # (done: its caller went away)
                ask.future.set_exception(refusal)
        for ask, answer in done:
            USE_CASES.labels("transfer", "ok").inc()
            if not ask.future.done():
                ask.future.set_result(answer)
        return alone

    async def _decide_and_write(self, pg: Any, asks: list[QueuedTransfer], now: datetime, today: date) -> tuple[
            list[tuple[QueuedTransfer, MobipayError]], list[tuple[QueuedTransfer, TransferDone]], list[QueuedTransfer]]:
        """Statements 1 and 2 of the module docstring; raises :class:`_RedoOneByOne` to roll back and
        leave the whole batch to the one-by-one path."""
        limits = self.wallet.limits
        refused: list[tuple[QueuedTransfer, MobipayError]] = []
        alone: list[QueuedTransfer] = []
        hashes = {ask.token: token_hash(ask.token) for ask in asks}
        read = await pg.fetchrow(READ, *_R.values(token_hashes=list(set(hashes.values())),
                                                  numbers=list({ask.to for ask in asks}), suspense=SUSPENSE))
        sessions = {r.access_hash: r for r in map(_SignedIn._make, read[0] or ())}
        wallets = {r.msisdn: _user(r) for r in map(_Wallet._make, read[1] or ())}
        wallets.update((r.msisdn, _user(r)) for r in sessions.values())
        # who may pay whom, and within which limits (usage as last committed; added to in SQL below)
        used = {r.id: _usage(r, today) for r in sessions.values()}
        candidates: list[tuple[QueuedTransfer, User, Transfer, bool]] = []
        ids: set[str] = set()
        for ask in asks:
            s = sessions.get(hashes[ask.token])
            try:
                check_session(s.access_expires_at if s else None, s.revoked_at if s else None, now)
                assert s is not None
                sender = wallets[s.msisdn]
                check_not_self(sender.msisdn, ask.to)
                recipient = wallets.get(ask.to)
                command, waiting = p2p_command(
                    sender, ask.to, recipient.status.value if recipient else None,
                    recipient.account_code if recipient else None, ask.amount, ask.key,
                    {"note": ask.note} if ask.note else {})
            except MobipayError as exc:
                refused.append((ask, exc))
                continue
            if command.id in ids:  # the same key twice at once: the second is a replay of the first
                alone.append(ask)
                continue
            if s.locked_until is not None and now < s.locked_until:
                # A locked PIN suspends password-free payments: the one-by-one path answers, key
                # first (a replay as a replay, anything new PIN_LOCKED). Rare, so never batched.
                alone.append(ask)
                continue
            try:
                check_limits(sender.tier, ask.amount, used[sender.id], limits)
            except MobipayError:
                alone.append(ask)  # maybe a replay: the one-by-one path tells
                continue
            ids.add(command.id)
            used[sender.id] = used[sender.id].plus(ask.amount)
            candidates.append((ask, sender, command, waiting))
        if not candidates:
            return refused, [], alone
        # the money, decided on the accounts locked by the read
        posting = self.runner.ledger.decide_locked([c for _, _, c, _ in candidates], read[2] or ())
        done: list[tuple[QueuedTransfer, TransferDone]] = []
        accepted: list[tuple[QueuedTransfer, User, Transfer, bool]] = []
        for item, result in zip(candidates, posting.results, strict=True):
            if result.error is not None:
                refused.append((item[0], result.error))
            else:
                assert result.transfer is not None and not result.replayed
                accepted.append(item)
                ask, sender, command, waiting = item
                done.append((ask, TransferDone(command.id, sender.msisdn, ask.to, ask.amount,
                                               result.transfer.created_at, False,
                                               "waiting_for_recipient" if waiting else "succeeded")))
        if not accepted:
            return refused, done, alone
        assert posting.args is not None
        # usage, claims, SMS; the counters as they now stand, within every limit? (amounts
        # are positive: each payment fits if the total of them all does)
        paid: dict[str, int] = {}
        for ask, sender, _, _ in accepted:
            paid[sender.id] = paid.get(sender.id, 0) + ask.amount
        senders = sorted(paid)
        tiers = {sender.id: sender.tier for _, sender, _, _ in accepted}
        claims = [(new_id("clm"), command.id, sender, ask.to, ask.amount)
                  for ask, sender, command, waiting in accepted if waiting]
        events = [p2p_sms(command.id, sender.msisdn, ask.to, ask.amount, waiting)
                  for ask, sender, command, waiting in accepted]
        counters = await self._write(pg, *posting.args, *_W.values(
            senders=senders, paid=[paid[u] for u in senders], year=today.year, day=today, now=now,
            claims_expire=now + CLAIM_WINDOW, claim_ids=[c[0] for c in claims], claim_transfers=[c[1] for c in claims],
            claim_senders=[c[2].id for c in claims], claim_sender_msisdns=[c[2].msisdn for c in claims],
            claim_recipients=[c[3] for c in claims], claim_amounts=[c[4] for c in claims]), *pg_rows(events, now))
        for c in map(_Counters._make, counters):
            if not within_limits(tiers[c.user_id], Usage(c.lifetime, c.year, c.year_total, c.day, c.day_total),
                                 limits):
                raise _RedoOneByOne  # another payment of theirs committed since the first read
        return refused, done, alone

    async def _write(self, pg: Any, *args: object) -> list[Any]:
        """Statement 2: the money, usage, claims and SMS; the senders' counters as they now stand."""
        rows: list[Any] = await pg.fetch(WRITE, *args)
        return rows


class _RedoOneByOne(Exception):
    """A replay among the batch, or a sender's counters past a limit since the first read:
    roll back and redo its transfers one by one."""


async def _rollback(tx: Any) -> None:
    try:
        await tx.rollback()
    except Exception as exc:  # the connection is gone: the server rolled back
        log.debug("transfer_batch.rollback_failed", error=str(exc))


class _Wallet(NamedTuple):
    """A row of :data:`READ`'s ``r``: the ``_USER`` columns."""

    id: str
    msisdn: str
    operator: str
    virtual_operator: bool
    status: str
    tier: int
    account_code: str
    created_at: datetime


class _SignedIn(NamedTuple):
    """A row of :data:`READ`'s ``s``: a session, its wallet, usage (None: no row yet) and PIN lock."""

    access_hash: str
    access_expires_at: datetime
    revoked_at: datetime | None
    id: str
    msisdn: str
    operator: str
    virtual_operator: bool
    status: str
    tier: int
    account_code: str
    created_at: datetime
    usage_user_id: str | None
    lifetime: int | None
    year: int | None
    year_total: int | None
    day: date | None
    day_total: int | None
    locked_until: datetime | None


class _Counters(NamedTuple):
    """A row :data:`WRITE` returns: a sender's usage as it now stands."""

    user_id: str
    lifetime: int
    year: int
    year_total: int
    day: date
    day_total: int


def _usage(row: _SignedIn, today: date) -> Usage:
    """The usage of a session row (none yet: all zero), as of ``today``."""
    if row.usage_user_id is None:
        return Usage().rolled(today)
    return Usage(row.lifetime or 0, row.year or 0, row.year_total or 0, row.day, row.day_total or 0).rolled(today)


def _user(row: _Wallet | _SignedIn) -> User:
    """A wallet from its ``_USER`` columns."""
    return User(row.id, row.msisdn, row.operator, row.virtual_operator, UserStatus(row.status), KycTier(row.tier),
                row.account_code, row.created_at)
