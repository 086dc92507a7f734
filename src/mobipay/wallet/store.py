"""The wallet's store: every row the wallet's use cases read or write, behind one Protocol.

The use cases (accounts, pins, sessions, payments, requests) never write SQL; they ask
:class:`WalletStore`, inside their transaction. :class:`SqlWalletStore` is the store on the
database (SQLite and PostgreSQL through SQLAlchemy Core), run on the unit of work's
connection; the test suite's in-memory store (``tests/support/memory.py``) is the other,
so the use cases' rules are tested in milliseconds without a database. The batched P2P
path (``transfer_batch``) keeps its own two PostgreSQL statements: it is the measured hot
path, and its rules are the same functions of ``model.py``.

``for_update`` reads lock the row until the transaction ends (PostgreSQL ``FOR UPDATE``;
SQLite serialises writers anyway).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from mobipay.kernel.clock import as_utc
from mobipay.ledger.uow import Transaction, UnitOfWork
from mobipay.platform.bulk import SQLITE_CHUNK, array_literal, insert_many, select_by_keys
from mobipay.wallet.model import (
    Claim,
    KycTier,
    OtpChallenge,
    OtpPurpose,
    Payer,
    PinState,
    Recipient,
    Session,
    SessionInfo,
    SignedIn,
    StoredPin,
    StoredRequest,
    Usage,
    User,
    UserStatus,
)
from mobipay.wallet.tables import claims, identities, money_requests, otps, pins, sessions, usage, users


class WalletStore(Protocol):
    """What the wallet keeps, read and written inside one transaction."""

    # subscribers
    async def user_by_msisdn(self, msisdn: str) -> User | None: ...
    async def user_by_id(self, user_id: str) -> User | None: ...
    async def payers(self, msisdns: Sequence[str]) -> dict[str, Payer]: ...
    async def add_user(self, user: User) -> None: ...
    async def set_status(self, user_id: str, status: UserStatus) -> None: ...
    async def set_tier3(self, user_id: str, at: datetime) -> None: ...
    async def id_hmac(self, user_id: str) -> str | None: ...
    async def real_name(self, user_id: str) -> str | None: ...
    async def subscribers(self, *, after: str, limit: int, cities: Sequence[str],
                          tiers: Sequence[int]) -> list[tuple[User, str | None]]: ...
    async def recipients(self, msisdns: Sequence[str]) -> dict[str, Recipient]: ...

    # one-time codes
    async def latest_otp(self, msisdn: str, purpose: OtpPurpose) -> OtpChallenge | None: ...
    async def add_otp(self, challenge: OtpChallenge) -> None: ...
    async def count_otp_try(self, otp_id: str) -> None: ...
    async def consume_otp(self, otp_id: str, at: datetime) -> None: ...

    # sessions
    async def add_session(self, session: Session) -> None: ...
    async def signed_in(self, access_hash: str) -> SignedIn | None: ...
    async def session_by_refresh(self, refresh_hash: str) -> Session | None: ...
    async def revoke_reused(self, previous_refresh_hash: str, at: datetime) -> int: ...
    async def rotate(self, session_id: str, *, access_hash: str, access_expires_at: datetime, refresh_hash: str,
                     previous_refresh_hash: str, refresh_expires_at: datetime, at: datetime) -> None: ...
    async def live_sessions(self, user_id: str, now: datetime) -> list[SessionInfo]: ...
    async def revoke(self, user_id: str, session_id: str | None, at: datetime) -> int: ...

    # the payment PIN
    async def pin(self, user_id: str, *, for_update: bool = False) -> StoredPin | None: ...
    async def add_pin(self, user_id: str, pin_hash: str, at: datetime) -> None: ...
    async def put_pin(self, user_id: str, pin_hash: str, state: PinState, at: datetime) -> None: ...
    async def set_pin_state(self, user_id: str, state: PinState) -> None: ...

    # usage against the limits
    async def usage(self, user_id: str) -> Usage | None: ...
    async def put_usage(self, user_id: str, used: Usage, *, new: bool) -> None: ...

    # money waiting for a number without a wallet
    async def add_claim(self, claim: Claim) -> None: ...
    async def claim(self, claim_id: str) -> Claim | None: ...
    async def claim_of_transfer(self, transfer_id: str) -> Claim | None: ...
    async def waiting_claims(self, recipient_msisdn: str) -> list[Claim]: ...
    async def claims_due(self, now: datetime, limit: int) -> list[str]: ...
    async def settle_claim(self, claim_id: str, state: str, at: datetime) -> None: ...
    async def add_claims(self, many: Sequence[Claim]) -> None: ...
    async def claim_states(self, transfer_ids: Sequence[str]) -> dict[str, str]: ...

    # money requests
    async def money_request(self, request_id: str, *, for_update: bool = False) -> StoredRequest | None: ...
    async def add_money_request(self, request: StoredRequest) -> None: ...
    async def requests_of_payer(self, msisdn: str, limit: int) -> list[StoredRequest]: ...
    async def requests_by(self, user_id: str, limit: int) -> list[StoredRequest]: ...
    async def settle_request(self, request_id: str, state: str, at: datetime,
                             transfer_id: str | None = None) -> None: ...
    async def requests_due(self, now: datetime, limit: int) -> list[StoredRequest]: ...
    async def expire_request(self, request_id: str, now: datetime) -> bool: ...


def sql_store(tx: Transaction) -> WalletStore:
    """The store of a database unit of work (the only transaction the SQL store runs in)."""
    return SqlWalletStore(cast(UnitOfWork, tx).conn)


class SqlWalletStore:
    """:class:`WalletStore` on the unit of work's connection."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def _first(self, query: Any) -> Any:
        return (await self.conn.execute(query)).first()

    async def _set(self, table: Any, where: Any, **values: Any) -> int:
        return int((await self.conn.execute(update(table).where(where).values(**values))).rowcount)

    # ------------------------------------------------------------------ subscribers

    async def user_by_msisdn(self, msisdn: str) -> User | None:
        row = await self._first(select(users).where(users.c.msisdn == msisdn))
        return None if row is None else _user(row)

    async def user_by_id(self, user_id: str) -> User | None:
        row = await self._first(select(users).where(users.c.id == user_id))
        return None if row is None else _user(row)

    async def payers(self, msisdns: Sequence[str]) -> dict[str, Payer]:
        rows = await self.conn.execute(select(users, pins.c.locked_until).outerjoin(pins, pins.c.user_id == users.c.id)
                                       .where(users.c.msisdn.in_(list(msisdns))))
        return {r.msisdn: Payer(_user(r), as_utc(r.locked_until) if r.locked_until else None) for r in rows}

    async def subscribers(self, *, after: str, limit: int, cities: Sequence[str],
                          tiers: Sequence[int]) -> list[tuple[User, str | None]]:
        query = select(users).where(users.c.msisdn > after, users.c.status == UserStatus.ACTIVE.value)
        if cities:
            query = query.where(users.c.home_city.in_(list(cities)))
        if tiers:
            query = query.where(users.c.tier.in_(list(tiers)))
        rows = await self.conn.execute(query.order_by(users.c.msisdn).limit(limit))
        return [(_user(r), r.home_city) for r in rows]

    async def add_user(self, user: User) -> None:
        await self.conn.execute(insert(users).values(
            id=user.id, msisdn=user.msisdn, operator=user.operator, virtual_operator=user.virtual_operator,
            status=user.status.value, tier=int(user.tier), account_code=user.account_code, created_at=user.created_at))

    async def set_status(self, user_id: str, status: UserStatus) -> None:
        await self._set(users, users.c.id == user_id, status=status.value)

    async def set_tier3(self, user_id: str, at: datetime) -> None:
        await self._set(users, users.c.id == user_id, tier=int(KycTier.TIER_3))
        await self._set(identities, identities.c.user_id == user_id, tier3_at=at)

    async def id_hmac(self, user_id: str) -> str | None:
        found = (await self.conn.execute(select(identities.c.id_hmac).where(identities.c.user_id == user_id)))
        return cast(str | None, found.scalar_one_or_none())

    async def real_name(self, user_id: str) -> str | None:
        found = (await self.conn.execute(select(identities.c.name).where(identities.c.user_id == user_id)))
        return cast(str | None, found.scalar_one_or_none())

    async def recipients(self, msisdns: Sequence[str]) -> dict[str, Recipient]:
        """Many numbers' wallets with their verified real names (None when unverified), in one
        set-based read (a bulk payment's sub-batch asks thousands): on PostgreSQL one join of
        the unnested numbers, on SQLite ``IN`` lists."""
        if not msisdns:
            return {}
        if self.conn.dialect.name == "postgresql":
            rows: Any = await self.conn.exec_driver_sql(
                "SELECT u.msisdn, u.id, u.account_code, u.status, i.name "
                "FROM unnest(CAST(CAST($1 AS text) AS text[])) AS m(msisdn) JOIN wallet_users u ON u.msisdn = m.msisdn "
                "LEFT JOIN wallet_identities i ON i.user_id = u.id",
                (array_literal(list(msisdns)),))
            return {r[0]: Recipient(r[1], r[2], r[3], r[4]) for r in rows}
        found: dict[str, Recipient] = {}
        for start in range(0, len(msisdns), SQLITE_CHUNK):
            part = list(msisdns[start:start + SQLITE_CHUNK])
            for r in await self.conn.execute(
                    select(users.c.msisdn, users.c.id, users.c.account_code, users.c.status, identities.c.name)
                    .outerjoin(identities, identities.c.user_id == users.c.id).where(users.c.msisdn.in_(part))):
                found[r.msisdn] = Recipient(r.id, r.account_code, r.status, r.name)
        return found

    # ------------------------------------------------------------------ one-time codes

    async def latest_otp(self, msisdn: str, purpose: OtpPurpose) -> OtpChallenge | None:
        row = await self._first(select(otps).where(otps.c.msisdn == msisdn, otps.c.purpose == purpose.value)
                                .order_by(otps.c.sent_at.desc()).limit(1))
        if row is None:
            return None
        return OtpChallenge(row.id, row.msisdn, OtpPurpose(row.purpose), row.code_hash, as_utc(row.sent_at),
                            as_utc(row.expires_at), row.attempts, row.consumed_at is not None)

    async def add_otp(self, challenge: OtpChallenge) -> None:
        await self.conn.execute(insert(otps).values(
            id=challenge.id, msisdn=challenge.msisdn, purpose=challenge.purpose.value, code_hash=challenge.code_hash,
            sent_at=challenge.sent_at, expires_at=challenge.expires_at, attempts=challenge.attempts))

    async def count_otp_try(self, otp_id: str) -> None:
        await self._set(otps, otps.c.id == otp_id, attempts=otps.c.attempts + 1)

    async def consume_otp(self, otp_id: str, at: datetime) -> None:
        await self._set(otps, otps.c.id == otp_id, consumed_at=at)

    # ------------------------------------------------------------------ sessions

    async def add_session(self, session: Session) -> None:
        await self.conn.execute(insert(sessions).values(
            id=session.id, user_id=session.user_id, device_id=session.device_id, device_name=session.device_name,
            access_hash=session.access_hash, access_expires_at=session.access_expires_at,
            refresh_hash=session.refresh_hash, refresh_expires_at=session.refresh_expires_at,
            created_at=session.created_at, last_used_at=session.last_used_at, proven_by=session.proven_by))

    async def signed_in(self, access_hash: str) -> SignedIn | None:
        row = await self._first(
            select(sessions.c.id, sessions.c.user_id, sessions.c.access_expires_at, sessions.c.revoked_at,
                   users.c.msisdn, users.c.account_code)
            .join(users, users.c.id == sessions.c.user_id).where(sessions.c.access_hash == access_hash))
        if row is None:
            return None
        return SignedIn(row.id, row.user_id, row.msisdn, row.account_code, as_utc(row.access_expires_at),
                        as_utc(row.revoked_at) if row.revoked_at else None)

    async def session_by_refresh(self, refresh_hash: str) -> Session | None:
        row = await self._first(select(sessions).where(sessions.c.refresh_hash == refresh_hash).with_for_update())
        return None if row is None else _session(row)

    async def revoke_reused(self, previous_refresh_hash: str, at: datetime) -> int:
        return await self._set(sessions, (sessions.c.previous_refresh_hash == previous_refresh_hash)
                               & sessions.c.revoked_at.is_(None), revoked_at=at)

    async def rotate(self, session_id: str, *, access_hash: str, access_expires_at: datetime, refresh_hash: str,
                     previous_refresh_hash: str, refresh_expires_at: datetime, at: datetime) -> None:
        await self._set(sessions, sessions.c.id == session_id, access_hash=access_hash,
                        access_expires_at=access_expires_at, refresh_hash=refresh_hash,
                        previous_refresh_hash=previous_refresh_hash, refresh_expires_at=refresh_expires_at,
                        last_used_at=at)

    async def live_sessions(self, user_id: str, now: datetime) -> list[SessionInfo]:
        rows = await self.conn.execute(
            select(sessions).where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None),
                                   sessions.c.refresh_expires_at > now).order_by(sessions.c.created_at))
        return [SessionInfo(r.id, r.device_id, r.device_name, as_utc(r.created_at), as_utc(r.last_used_at),
                            r.proven_by) for r in rows]

    async def revoke(self, user_id: str, session_id: str | None, at: datetime) -> int:
        cond = (sessions.c.user_id == user_id) & sessions.c.revoked_at.is_(None)
        if session_id is not None:
            cond = cond & (sessions.c.id == session_id)
        return await self._set(sessions, cond, revoked_at=at)

    # ------------------------------------------------------------------ the payment PIN

    async def pin(self, user_id: str, *, for_update: bool = False) -> StoredPin | None:
        query = select(pins).where(pins.c.user_id == user_id)
        row = await self._first(query.with_for_update() if for_update else query)
        if row is None:
            return None
        return StoredPin(row.pin_hash, PinState(row.failures, row.lockouts,
                                                as_utc(row.locked_until) if row.locked_until else None))

    async def add_pin(self, user_id: str, pin_hash: str, at: datetime) -> None:
        await self.conn.execute(insert(pins).values(user_id=user_id, pin_hash=pin_hash, updated_at=at))

    async def put_pin(self, user_id: str, pin_hash: str, state: PinState, at: datetime) -> None:
        values = {"pin_hash": pin_hash, "failures": state.failures, "lockouts": state.lockouts,
                  "locked_until": state.locked_until, "updated_at": at}
        if await self._set(pins, pins.c.user_id == user_id, **values) == 0:
            await self.conn.execute(insert(pins).values(user_id=user_id, **values))

    async def set_pin_state(self, user_id: str, state: PinState) -> None:
        await self._set(pins, pins.c.user_id == user_id, failures=state.failures, lockouts=state.lockouts,
                        locked_until=state.locked_until)

    # ------------------------------------------------------------------ usage

    async def usage(self, user_id: str) -> Usage | None:
        row = await self._first(select(usage).where(usage.c.user_id == user_id).with_for_update())
        return None if row is None else Usage(row.lifetime, row.year, row.year_total, row.day, row.day_total)

    async def put_usage(self, user_id: str, used: Usage, *, new: bool) -> None:
        values = {"lifetime": used.lifetime, "year": used.year, "year_total": used.year_total, "day": used.day,
                  "day_total": used.day_total}
        if new:
            await self.conn.execute(insert(usage).values(user_id=user_id, **values))
        else:
            await self._set(usage, usage.c.user_id == user_id, **values)

    # ------------------------------------------------------------------ claims

    async def add_claim(self, claim: Claim) -> None:
        await self.conn.execute(insert(claims).values(
            id=claim.id, transfer_id=claim.transfer_id, sender_id=claim.sender_id, sender_msisdn=claim.sender_msisdn,
            recipient_msisdn=claim.recipient_msisdn, amount=claim.amount, state=claim.state,
            created_at=claim.created_at, expires_at=claim.expires_at))

    async def claim(self, claim_id: str) -> Claim | None:
        row = await self._first(select(claims).where(claims.c.id == claim_id).with_for_update())
        return None if row is None else _claim(row)

    async def claim_of_transfer(self, transfer_id: str) -> Claim | None:
        row = await self._first(select(claims).where(claims.c.transfer_id == transfer_id))
        return None if row is None else _claim(row)

    async def waiting_claims(self, recipient_msisdn: str) -> list[Claim]:
        rows = await self.conn.execute(select(claims).where(claims.c.recipient_msisdn == recipient_msisdn,
                                                            claims.c.state == "waiting"))
        return [_claim(r) for r in rows]

    async def claims_due(self, now: datetime, limit: int) -> list[str]:
        rows = await self.conn.execute(select(claims.c.id).where(claims.c.state == "waiting",
                                                                 claims.c.expires_at <= now).limit(limit))
        return [r.id for r in rows]

    async def settle_claim(self, claim_id: str, state: str, at: datetime) -> None:
        await self._set(claims, (claims.c.id == claim_id) & (claims.c.state == "waiting"), state=state, settled_at=at)

    async def add_claims(self, many: Sequence[Claim]) -> None:
        await insert_many(self.conn, claims, [
            {"id": c.id, "transfer_id": c.transfer_id, "sender_id": c.sender_id, "sender_msisdn": c.sender_msisdn,
             "recipient_msisdn": c.recipient_msisdn, "amount": c.amount, "state": c.state,
             "created_at": c.created_at, "expires_at": c.expires_at} for c in many])

    async def claim_states(self, transfer_ids: Sequence[str]) -> dict[str, str]:
        rows = await select_by_keys(self.conn, claims, ("transfer_id",), [(t,) for t in transfer_ids])
        return {r.transfer_id: r.state for r in rows}

    # ------------------------------------------------------------------ money requests

    async def money_request(self, request_id: str, *, for_update: bool = False) -> StoredRequest | None:
        query = select(money_requests).where(money_requests.c.id == request_id)
        row = await self._first(query.with_for_update() if for_update else query)
        return None if row is None else _request(row)

    async def add_money_request(self, request: StoredRequest) -> None:
        await self.conn.execute(insert(money_requests).values(
            id=request.id, requester_id=request.requester_id, requester_msisdn=request.requester_msisdn,
            payer_msisdn=request.payer_msisdn, amount=request.amount, note=request.note, state=request.state,
            created_at=request.created_at, expires_at=request.expires_at))

    async def requests_of_payer(self, msisdn: str, limit: int) -> list[StoredRequest]:
        rows = await self.conn.execute(select(money_requests).where(money_requests.c.payer_msisdn == msisdn)
                                       .order_by(money_requests.c.created_at.desc()).limit(limit))
        return [_request(r) for r in rows]

    async def requests_by(self, user_id: str, limit: int) -> list[StoredRequest]:
        rows = await self.conn.execute(select(money_requests).where(money_requests.c.requester_id == user_id)
                                       .order_by(money_requests.c.created_at.desc()).limit(limit))
        return [_request(r) for r in rows]

    async def settle_request(self, request_id: str, state: str, at: datetime,
                             transfer_id: str | None = None) -> None:
        values: dict[str, Any] = {"state": state, "settled_at": at}
        if transfer_id is not None:
            values["transfer_id"] = transfer_id
        await self._set(money_requests, money_requests.c.id == request_id, **values)

    async def requests_due(self, now: datetime, limit: int) -> list[StoredRequest]:
        rows = await self.conn.execute(select(money_requests).where(money_requests.c.state == "open",
                                                                    money_requests.c.expires_at <= now)
                                       .order_by(money_requests.c.expires_at).limit(limit))
        return [_request(r) for r in rows]

    async def expire_request(self, request_id: str, now: datetime) -> bool:
        """Expire one open request that is due; False when it was paid, declined or expired
        meanwhile. The condition is in the UPDATE itself, so of two workers (or a worker and
        a payer) racing for a row only one moves it: PostgreSQL re-checks the WHERE on the
        row it waited for."""
        return await self._set(money_requests, (money_requests.c.id == request_id)
                               & (money_requests.c.state == "open") & (money_requests.c.expires_at <= now),
                               state="expired", settled_at=now) == 1


def _user(row: Any) -> User:
    return User(row.id, row.msisdn, row.operator, bool(row.virtual_operator), UserStatus(row.status),
                KycTier(row.tier), row.account_code, as_utc(row.created_at))


def _session(row: Any) -> Session:
    return Session(row.id, row.user_id, row.device_id, row.device_name, row.access_hash, as_utc(row.access_expires_at),
                   row.refresh_hash, as_utc(row.refresh_expires_at), as_utc(row.created_at), as_utc(row.last_used_at),
                   as_utc(row.revoked_at) if row.revoked_at else None, row.previous_refresh_hash, row.proven_by)


def _claim(row: Any) -> Claim:
    return Claim(row.id, row.transfer_id, row.sender_id, row.sender_msisdn, row.recipient_msisdn, row.amount,
                 row.state, as_utc(row.created_at), as_utc(row.expires_at))


def _request(row: Any) -> StoredRequest:
    return StoredRequest(row.id, row.requester_id, row.requester_msisdn, row.payer_msisdn, row.amount, row.note,
                         row.state, as_utc(row.created_at), as_utc(row.expires_at), row.transfer_id)
