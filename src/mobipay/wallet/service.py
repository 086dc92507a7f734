"""Wallet use cases, so far: one-time codes by SMS and registration of a subscriber.

A subscriber registers with their number and a code sent to it; registration opens their
wallet account in the ledger in the same transaction. Codes are stored only as HMACs; the
SMS itself leaves through the outbox (topic ``sms.send``), so no code is sent for a request
that did not commit, and none is lost if the process stops.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update

from mobipay.kernel.errors import MobipayError
from mobipay.kernel.events import Event
from mobipay.kernel.ids import new_id
from mobipay.ledger.chart import wallet_account
from mobipay.platform.uow import UnitOfWork, UnitOfWorkRunner
from mobipay.wallet import errors as E
from mobipay.wallet.model import (
    KycTier,
    NumberSegments,
    OtpChallenge,
    OtpPolicy,
    OtpPurpose,
    UserStatus,
    check_otp,
    check_resend,
    normalize_msisdn,
)
from mobipay.wallet.tables import otps, users


@dataclass(frozen=True, kw_only=True)
class SmsRequested(Event):
    """An SMS to send; the SMS adapter renders ``template`` with ``params`` (may hold a code)."""

    topic = "sms.send"
    to: str
    template: str
    params: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class UserRegistered(Event):
    topic = "wallet.user_registered"
    user_id: str
    msisdn: str


@dataclass(frozen=True, slots=True)
class OtpSent:
    msisdn: str
    expires_at: datetime
    resend_after_s: int


@dataclass(frozen=True, slots=True)
class User:
    id: str
    msisdn: str
    operator: str
    virtual_operator: bool
    status: UserStatus
    tier: KycTier
    account_code: str
    created_at: datetime


class WalletService:
    """The wallet's commands; each runs in one unit of work."""

    def __init__(self, uow: UnitOfWorkRunner, segments: NumberSegments, secret: bytes,
                 policy: OtpPolicy | None = None) -> None:
        self.uow = uow
        self.segments = segments
        self.secret = secret
        self.policy = policy or OtpPolicy()

    def _hash(self, msisdn: str, purpose: OtpPurpose, code: str) -> str:
        message = f"{msisdn}|{purpose.value}|{code}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()

    async def request_otp(self, raw_msisdn: str, purpose: OtpPurpose) -> OtpSent:
        """Send a fresh code to a number (never saying whether it is registered)."""
        msisdn = normalize_msisdn(raw_msisdn)
        self.segments.lookup(msisdn)  # only numbers of a known operator

        async def work(uow: UnitOfWork) -> OtpSent:
            check_resend(await _latest(uow, msisdn, purpose), uow.now, self.policy)
            code = f"{secrets.randbelow(10**self.policy.length):0{self.policy.length}d}"
            challenge_id = new_id("otp")
            expires_at = uow.now + timedelta(seconds=self.policy.ttl_s)
            await uow.conn.execute(insert(otps).values(
                id=challenge_id, msisdn=msisdn, purpose=purpose.value, code_hash=self._hash(msisdn, purpose, code),
                sent_at=uow.now, expires_at=expires_at, attempts=0,
            ))
            await uow.emit(SmsRequested(key=challenge_id, to=msisdn, template=f"otp.{purpose.value}",
                                        params={"code": code, "minutes": self.policy.ttl_s // 60}))
            return OtpSent(msisdn, expires_at, self.policy.resend_after_s)

        return await self.uow.run("request_otp", work)

    async def register(self, raw_msisdn: str, code: str) -> User:
        """Register the owner of a number, proven by the code sent to it; opens the wallet."""
        msisdn = normalize_msisdn(raw_msisdn)
        segment = self.segments.lookup(msisdn)

        async def work(uow: UnitOfWork) -> User | MobipayError:
            challenge = await _latest(uow, msisdn, OtpPurpose.REGISTER)
            try:
                check_otp(challenge, self._hash(msisdn, OtpPurpose.REGISTER, str(code)), uow.now, self.policy)
            except MobipayError as exc:
                if challenge is not None:  # the wrong try counts, so it must commit: return, not raise
                    await uow.conn.execute(update(otps).where(otps.c.id == challenge.id)
                                           .values(attempts=otps.c.attempts + 1))
                return exc
            assert challenge is not None
            await uow.conn.execute(update(otps).where(otps.c.id == challenge.id).values(consumed_at=uow.now))
            existing = (await uow.conn.execute(select(users.c.id).where(users.c.msisdn == msisdn))).first()
            if existing is not None:
                return E.UserExists(f"{msisdn} is already registered; sign in instead", field="msisdn")
            spec = wallet_account(msisdn)
            await uow.open_account(spec)
            user = User(new_id("usr"), msisdn, segment.operator.value, segment.virtual, UserStatus.ACTIVE,
                        KycTier.TIER_1, spec.code, uow.now)
            await uow.conn.execute(insert(users).values(
                id=user.id, msisdn=msisdn, operator=user.operator, virtual_operator=user.virtual_operator,
                status=user.status.value, tier=int(user.tier), account_code=user.account_code,
                created_at=user.created_at,
            ))
            await uow.emit(UserRegistered(key=user.id, user_id=user.id, msisdn=msisdn))
            return user

        outcome = await self.uow.run("register", work)
        if isinstance(outcome, MobipayError):
            raise outcome
        return outcome

    async def user_by_msisdn(self, raw_msisdn: str) -> User:
        msisdn = normalize_msisdn(raw_msisdn)

        async def work(uow: UnitOfWork) -> User:
            row = (await uow.conn.execute(select(users).where(users.c.msisdn == msisdn))).first()
            if row is None:
                raise E.UserNotFound(f"{msisdn} is not registered", field="msisdn")
            return User(row.id, row.msisdn, row.operator, bool(row.virtual_operator), UserStatus(row.status),
                        KycTier(row.tier), row.account_code, _aware(row.created_at))

        return await self.uow.run("user_by_msisdn", work)


async def _latest(uow: UnitOfWork, msisdn: str, purpose: OtpPurpose) -> OtpChallenge | None:
    row = (await uow.conn.execute(
        select(otps).where(otps.c.msisdn == msisdn, otps.c.purpose == purpose.value)
        .order_by(otps.c.sent_at.desc()).limit(1)
    )).first()
    if row is None:
        return None
    return OtpChallenge(row.id, row.msisdn, OtpPurpose(row.purpose), row.code_hash, _aware(row.sent_at),
                        _aware(row.expires_at), row.attempts, row.consumed_at is not None)


def _aware(value: datetime) -> datetime:
    """SQLite returns naive datetimes; mobipay's are aware UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
