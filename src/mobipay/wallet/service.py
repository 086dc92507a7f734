"""Wallet use cases, so far: one-time codes by SMS, registration, sessions, the payment PIN,
and transfers between subscribers by number.

A subscriber registers with their number and a code sent to it; registration opens their
wallet account in the ledger in the same transaction. Codes are stored only as HMACs; the
SMS itself leaves through the outbox (topic ``sms.send``), so no code is sent for a request
that did not commit, and none is lost if the process stops.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from sqlalchemy import insert, select, update

from mobipay.kernel.clock import SHANGHAI, as_utc
from mobipay.kernel.errors import IdempotencyConflict, MobipayError, NotFound, ValidationFailed
from mobipay.kernel.events import Event, SmsRequested
from mobipay.kernel.ids import check_idempotency_key, new_id
from mobipay.kernel.money import check_amount
from mobipay.kernel.msisdn import mask_msisdn, normalize_msisdn
from mobipay.ledger import errors as LE
from mobipay.ledger.chart import SUSPENSE, wallet_account
from mobipay.ledger.model import Leg, Side, Transfer
from mobipay.ledger.uow import UnitOfWork, UnitOfWorkRunner
from mobipay.platform import audit
from mobipay.wallet import errors as E
from mobipay.wallet.model import (
    KycTier,
    NumberSegments,
    OtpChallenge,
    OtpPolicy,
    OtpPurpose,
    PinPolicy,
    PinState,
    Segment,
    Usage,
    UserStatus,
    WalletLimits,
    after_failure,
    check_id_card,
    check_limits,
    check_no_pin_allowed,
    check_not_locked,
    check_otp,
    check_pin,
    check_real_name,
    check_resend,
)
from mobipay.wallet.tables import claims, identities, money_requests, otps, pins, sessions, usage, users

if TYPE_CHECKING:
    from mobipay.wallet.transfer_batch import TransferBatcher

log = structlog.get_logger(__name__)


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


ACCESS_TTL = timedelta(minutes=15)
REFRESH_TTL = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class Tokens:
    session_id: str
    access_token: str
    expires_in: int
    refresh_token: str


@dataclass(frozen=True, slots=True)
class Principal:
    """The subscriber behind a request."""

    user_id: str
    session_id: str
    msisdn: str
    account_code: str


@dataclass(frozen=True, slots=True)
class SessionInfo:
    id: str
    device_id: str
    device_name: str
    created_at: datetime
    last_used_at: datetime


@dataclass(frozen=True, slots=True)
class TransferDone:
    id: str
    sender: str
    recipient: str
    amount: int
    created_at: datetime
    replayed: bool
    status: str = "succeeded"  # or "waiting_for_recipient" (no wallet yet: held in suspense)


CLAIM_WINDOW = timedelta(days=3)
REQUEST_TTL = timedelta(days=3)


@dataclass(frozen=True, slots=True)
class MoneyRequest:
    id: str
    requester: str
    payer: str
    amount: int
    note: str
    state: str  # open | paid | declined | expired
    created_at: datetime
    expires_at: datetime


def _money_request(row: Any, now: datetime) -> MoneyRequest:
    state = row.state
    if state == "open" and as_utc(row.expires_at) <= now:
        state = "expired"
    return MoneyRequest(row.id, row.requester_msisdn, row.payer_msisdn, row.amount, row.note, state,
                        as_utc(row.created_at), as_utc(row.expires_at))




@dataclass(frozen=True, slots=True)
class Receipt:
    transfer_id: str
    kind: str
    amount: int
    currency: str
    direction: str  # in | out
    counterparty: str | None  # the other wallet, masked
    reference: str
    created_at: datetime
    note: str = ""  # what the sender wrote with a transfer
    #: A transfer to a number without a wallet: waiting | claimed | returned, and until when
    #: the money waits for the recipient to register before it comes back.
    claim_state: str | None = None
    claim_expires_at: datetime | None = None


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
                 policy: OtpPolicy | None = None, *, pin_hasher: PasswordHasher | None = None,
                 pin_policy: PinPolicy | None = None, limits: WalletLimits | None = None) -> None:
        self.uow = uow
        self.segments = segments
        self.secret = secret
        self.policy = policy or OtpPolicy()
        # argon2id at OWASP's minimum (19 MiB, 2 passes): ~40 ms here, run off the event loop.
        self.pin_hasher = pin_hasher or PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
        self.pin_policy = pin_policy or PinPolicy()
        self.limits = limits or WalletLimits()
        #: PostgreSQL: gathers concurrent password-free transfers (set by the bootstrap).
        self.batcher: TransferBatcher | None = None

    def operator_of(self, raw_msisdn: str) -> tuple[str, str, bool]:
        """``(E.164 number, operator, virtual operator)`` from the number-segment table."""
        msisdn = normalize_msisdn(raw_msisdn)
        segment = self.segments.lookup(msisdn)
        return msisdn, segment.operator.value, segment.virtual

    def check_identity(self, name: object, id_number: object) -> tuple[str, str]:
        """A person's name and identity card number, checked (GB 11643) and normalised;
        for products that name someone (an insured person, a beneficiary)."""
        return check_real_name(name), check_id_card(id_number, today=self.uow.clock.now().astimezone(SHANGHAI).date())

    def keyed_hash(self, kind: str, value: str) -> str:
        """How a sensitive number (identity card, bank card) is kept: only as this keyed
        hash, enough to compare and never to read back."""
        return hmac.new(self.secret, f"{kind}|{value}".encode(), hashlib.sha256).hexdigest()

    def id_hmac(self, id_number: str) -> str:
        return self.keyed_hash("id", id_number)

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
            refused = await self._consume_otp(uow, msisdn, OtpPurpose.REGISTER, code)
            if refused is not None:
                return refused
            return await _create_user(uow, msisdn, segment)

        outcome = await self.uow.run("register", work)
        if isinstance(outcome, MobipayError):
            raise outcome
        return outcome

    # ------------------------------------------------------------------ operator actions

    async def create_user(self, raw_msisdn: str, *, actor: str, reason: str) -> User:
        """Operator (or demo loader) opens a wallet for a number without an SMS code; audited."""
        msisdn = normalize_msisdn(raw_msisdn)
        segment = self.segments.lookup(msisdn)

        async def work(uow: UnitOfWork) -> User:
            outcome = await _create_user(uow, msisdn, segment)
            if isinstance(outcome, MobipayError):
                raise outcome
            await audit.record(uow.conn, at=uow.now, actor=actor, action="user.create", target=msisdn,
                               reason=reason, after={"id": outcome.id, "tier": int(outcome.tier)})
            return outcome

        return await self.uow.run("create_user", work)

    async def set_frozen(self, raw_msisdn: str, frozen: bool, *, actor: str, reason: str) -> User:
        """Freeze a wallet (no payments in or out) or unfreeze it; audited with the reason, and
        the subscriber told by SMS in the same transaction (they did not do it themselves)."""
        if not reason.strip():
            raise ValidationFailed("give the reason for the audit trail", field="reason")
        user = await self.user_by_msisdn(raw_msisdn)
        wanted = UserStatus.FROZEN if frozen else UserStatus.ACTIVE
        if user.status is UserStatus.CLOSED:
            raise E.UserFrozen("a closed wallet stays closed")
        balance = (await self.uow.ledger.account(user.account_code)).balance  # for the SMS

        async def work(uow: UnitOfWork) -> None:
            await uow.conn.execute(update(users).where(users.c.id == user.id).values(status=wanted.value))
            await uow.set_frozen(user.account_code, frozen)
            await audit.record(uow.conn, at=uow.now, actor=actor, action="user.freeze" if frozen else "user.unfreeze",
                               target=user.msisdn, reason=reason, before={"status": user.status.value},
                               after={"status": wanted.value})
            if user.status is not wanted:  # (freezing a frozen wallet again tells nobody anything new)
                await uow.emit(SmsRequested(key=new_id("sms"), to=user.msisdn,
                                            template="wallet.frozen" if frozen else "wallet.unfrozen",
                                            params={"balance_fen": balance}))

        await self.uow.run("set_frozen", work)
        return await self.user_by_msisdn(user.msisdn)

    async def verify_tier3(self, raw_msisdn: str, *, actor: str, reason: str) -> User:
        """Raise a real-name (Tier II) wallet to Tier III after an operator's further check
        (face to face at a service hall, or more identity sources); audited."""
        if not reason.strip():
            raise ValidationFailed("say how the identity was checked, for the audit trail", field="reason")
        user = await self.user_by_msisdn(raw_msisdn)
        if user.tier is not KycTier.TIER_2:
            raise E.RealNameRequired(f"Tier III needs a Tier II wallet first (this one is Tier {int(user.tier)})")

        async def work(uow: UnitOfWork) -> None:
            await uow.conn.execute(update(users).where(users.c.id == user.id).values(tier=int(KycTier.TIER_3)))
            await uow.conn.execute(update(identities).where(identities.c.user_id == user.id).values(tier3_at=uow.now))
            await audit.record(uow.conn, at=uow.now, actor=actor, action="user.tier3", target=user.msisdn,
                               reason=reason, before={"tier": 2}, after={"tier": 3})

        await self.uow.run("verify_tier3", work)
        return await self.user_by_msisdn(user.msisdn)

    async def _consume_otp(self, uow: UnitOfWork, msisdn: str, purpose: OtpPurpose,
                           code: str) -> MobipayError | None:
        """Use up the latest code for ``purpose``, or say why not. A wrong try counts, so the
        caller must let this transaction commit: it returns the refusal instead of raising."""
        challenge = await _latest(uow, msisdn, purpose)
        try:
            check_otp(challenge, self._hash(msisdn, purpose, str(code)), uow.now, self.policy)
        except MobipayError as exc:
            if challenge is not None:
                await uow.conn.execute(update(otps).where(otps.c.id == challenge.id)
                                       .values(attempts=otps.c.attempts + 1))
            return exc
        assert challenge is not None
        await uow.conn.execute(update(otps).where(otps.c.id == challenge.id).values(consumed_at=uow.now))
        return None

    # ------------------------------------------------------------------ sessions

    async def login(self, raw_msisdn: str, *, device_id: str, device_name: str = "", code: str | None = None,
                    pin: str | None = None) -> Tokens:
        """Open a session on a device, proven by an SMS code (purpose login) or the PIN."""
        if (code is None) == (pin is None):
            raise E.LoginMethodRequired("send either code or pin", field="code")
        user = await self.user_by_msisdn(raw_msisdn)
        if pin is not None:
            await self.verify_pin(user.msisdn, pin)
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)

        async def work(uow: UnitOfWork) -> Tokens | MobipayError:
            if code is not None:
                refused = await self._consume_otp(uow, user.msisdn, OtpPurpose.LOGIN, code)
                if refused is not None:
                    return refused
            session_id = new_id("ses")
            await uow.conn.execute(insert(sessions).values(
                id=session_id, user_id=user.id, device_id=device_id[:128], device_name=device_name[:128],
                access_hash=sha(access), access_expires_at=uow.now + ACCESS_TTL,
                refresh_hash=sha(refresh), refresh_expires_at=uow.now + REFRESH_TTL,
                created_at=uow.now, last_used_at=uow.now,
            ))
            return Tokens(session_id, access, int(ACCESS_TTL.total_seconds()), refresh)

        outcome = await self.uow.run("login", work)
        if isinstance(outcome, MobipayError):
            raise outcome
        return outcome

    async def authenticate(self, access_token: str) -> Principal:
        """Who is behind an access token; refused once expired or its session revoked."""

        async def work(uow: UnitOfWork) -> Principal:
            row = (await uow.conn.execute(
                select(sessions.c.id, sessions.c.user_id, sessions.c.access_expires_at, sessions.c.revoked_at,
                       users.c.msisdn, users.c.account_code)
                .join(users, users.c.id == sessions.c.user_id)
                .where(sessions.c.access_hash == sha(access_token))
            )).first()
            check_session(row and row.access_expires_at, row and row.revoked_at, uow.now)
            assert row is not None
            return Principal(row.user_id, row.id, row.msisdn, row.account_code)

        return await self.uow.run("authenticate", work)

    async def refresh(self, refresh_token: str) -> Tokens:
        """Rotate a session's tokens. A refresh token works once: presenting an old one again
        means it was copied, and the whole session is revoked."""
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        presented = sha(refresh_token)

        async def work(uow: UnitOfWork) -> Tokens | MobipayError:
            row = (await uow.conn.execute(select(sessions).where(sessions.c.refresh_hash == presented)
                                          .with_for_update())).first()
            if row is None:
                reused = (await uow.conn.execute(
                    update(sessions).where(sessions.c.previous_refresh_hash == presented,
                                           sessions.c.revoked_at.is_(None)).values(revoked_at=uow.now))).rowcount
                detail = "this refresh token was already used: the session is revoked" if reused else (
                    "unknown refresh token")
                return E.SessionInvalid(detail)
            if row.revoked_at is not None or as_utc(row.refresh_expires_at) <= uow.now:
                return E.SessionInvalid("the session has ended; sign in again")
            await uow.conn.execute(update(sessions).where(sessions.c.id == row.id).values(
                access_hash=sha(access), access_expires_at=uow.now + ACCESS_TTL, refresh_hash=sha(refresh),
                previous_refresh_hash=presented, refresh_expires_at=uow.now + REFRESH_TTL, last_used_at=uow.now))
            return Tokens(row.id, access, int(ACCESS_TTL.total_seconds()), refresh)

        outcome = await self.uow.run("refresh", work)
        if isinstance(outcome, MobipayError):
            raise outcome
        return outcome

    async def devices(self, user_id: str) -> list[SessionInfo]:
        async def work(uow: UnitOfWork) -> list[SessionInfo]:
            rows = await uow.conn.execute(
                select(sessions).where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None),
                                       sessions.c.refresh_expires_at > uow.now)
                .order_by(sessions.c.created_at))
            return [SessionInfo(r.id, r.device_id, r.device_name, as_utc(r.created_at), as_utc(r.last_used_at))
                    for r in rows]

        return await self.uow.run("devices", work)

    async def logout(self, user_id: str, session_id: str | None = None) -> int:
        """End one session of the user, or all of them (``session_id=None``): returns how many."""

        async def work(uow: UnitOfWork) -> int:
            cond = (sessions.c.user_id == user_id) & sessions.c.revoked_at.is_(None)
            if session_id is not None:
                cond = cond & (sessions.c.id == session_id)
            return int((await uow.conn.execute(update(sessions).where(cond).values(revoked_at=uow.now))).rowcount)

        return await self.uow.run("logout", work)

    # ------------------------------------------------------------------ transfers

    async def transfer(self, me: Principal, raw_to: str, amount: object, *, idempotency_key: str,
                       pin: str | None = None, note: str = "", consent: bool = False,
                       then: Callable[[UnitOfWork, TransferDone], Awaitable[None]] | None = None) -> TransferDone:
        """Send money to another subscriber by number. Up to the password-free amount no PIN
        is asked; above it the PIN is, unless the channel proved intent another way (``consent``:
        an SMS secondary confirmation); while the PIN is locked, neither goes without it. The
        idempotency key comes first: the same key and body returns the first result
        (``replayed``), another body with that key is refused (IDEMPOTENCY_CONFLICT), before
        any PIN is asked. ``then`` runs in the same transaction after the posting (first time
        or replay): raising there undoes it."""
        amount = check_amount(amount)
        to = normalize_msisdn(raw_to)
        check_idempotency_key(idempotency_key)
        check_not_self(me.msisdn, to)
        pin_asked = amount > self.limits.password_free and not consent
        if pin_asked and not await self._stored(p2p_id(me.user_id, idempotency_key)):
            await self.authorize_payment(me, amount, pin)  # the PIN (costly by design), outside the txn
        metadata: dict[str, Any] = {"note": note} if note else {}

        async def work(uow: UnitOfWork) -> TransferDone:
            # Sender (with their PIN's lock) and recipient in one read, in the same transaction
            # as the posting: one commit per transfer.
            rows = {r.msisdn: r for r in await uow.conn.execute(
                select(users, pins.c.locked_until).outerjoin(pins, pins.c.user_id == users.c.id)
                .where(users.c.msisdn.in_([me.msisdn, to])))}
            if me.msisdn not in rows:
                raise E.UserNotFound(f"{me.msisdn} is not registered", field="msisdn")
            sender = _user(rows[me.msisdn])
            recipient = rows.get(to)
            command, waiting = p2p_command(sender, to, recipient.status if recipient else None,
                                           recipient.account_code if recipient else None, amount,
                                           idempotency_key, metadata)
            [result] = await uow.post([command])
            if result.error is not None:
                raise result.error
            assert result.transfer is not None
            done = TransferDone(result.transfer.id, sender.msisdn, to, amount, result.transfer.created_at,
                                result.replayed, "waiting_for_recipient" if waiting else "succeeded")
            if result.replayed:
                if then is not None:
                    await then(uow, done)
                return done
            if not pin_asked:  # a new payment without the PIN: not while it is locked (raising undoes it)
                locked = rows[me.msisdn].locked_until
                check_no_pin_allowed(as_utc(locked) if locked else None, uow.now)
            await self.count_payment(uow, sender, amount)  # raising undoes the posting too
            if waiting:
                await uow.conn.execute(insert(claims).values(
                    id=new_id("clm"), transfer_id=command.id, sender_id=sender.id, sender_msisdn=sender.msisdn,
                    recipient_msisdn=to, amount=amount, state="waiting", created_at=uow.now,
                    expires_at=uow.now + CLAIM_WINDOW))
            await uow.emit(p2p_sms(command.id, sender.msisdn, to, amount, waiting))
            if then is not None:
                await then(uow, done)
            return done

        return await self.uow.run("transfer", work)

    async def transfer_as(self, access_token: str, raw_to: str, amount: object, *, idempotency_key: str,
                          pin: str | None = None, note: str = "") -> TransferDone:
        """:meth:`transfer` for the bearer of ``access_token`` (the API). A password-free
        transfer goes to the batcher when there is one: its sign-in check, posting and
        commit are shared with the transfers arriving alongside (wallet/transfer_batch.py)."""
        if self.batcher is not None:
            try:
                fen = check_amount(amount)
                to = normalize_msisdn(raw_to)
                check_idempotency_key(idempotency_key)
            except MobipayError:
                await self.authenticate(access_token)  # who is asking comes first, as below
                raise
            if fen <= self.limits.password_free:
                return await self.batcher.submit(access_token, to, fen, idempotency_key, note)
        me = await self.authenticate(access_token)
        return await self.transfer(me, raw_to, amount, idempotency_key=idempotency_key, pin=pin, note=note)

    async def authorize_payment(self, me: Principal, amount: int, pin: str | None, *,
                                standing_consent: bool = False) -> User:
        """The payer's wallet, fit to pay ``amount`` from its balance: active, and proven by
        the PIN above the password-free amount, unless the payer gave standing consent for
        this payment (autopay up to their own limit, an SMS confirmation). A locked PIN
        suspends payments without the PIN too. Every product paid from the wallet asks this,
        after its idempotency key (a replay needs no new proof)."""

        async def work(uow: UnitOfWork) -> tuple[User, datetime | None]:
            row = (await uow.conn.execute(select(users, pins.c.locked_until).outerjoin(
                pins, pins.c.user_id == users.c.id).where(users.c.msisdn == me.msisdn))).first()
            if row is None:
                raise E.UserNotFound(f"{me.msisdn} is not registered", field="msisdn")
            return _user(row), as_utc(row.locked_until) if row.locked_until else None

        payer, locked_until = await self.uow.run("payer", work)
        if payer.status is not UserStatus.ACTIVE:
            raise E.UserFrozen(f"this wallet cannot pay while it is {payer.status.value}")
        if amount > self.limits.password_free and not standing_consent:
            if pin is None:
                raise E.PinRequired(f"amounts over {self.limits.password_free / 100:.2f} CNY need the PIN",
                                    field="pin")
            await self.verify_pin(payer.msisdn, pin)
        else:
            check_no_pin_allowed(locked_until, self.uow.clock.now())
        return payer

    async def _stored(self, transfer_id: str) -> bool:
        """Whether the ledger holds ``transfer_id`` (an idempotency key used before)."""
        try:
            await self.uow.ledger.transfer(transfer_id)
        except LE.TransferNotFound:
            return False
        return True

    async def count_payment(self, uow: UnitOfWork, payer: User, amount: int) -> None:
        """In the caller's unit of work: add a balance payment to the payer's usage (lifetime,
        year, Shanghai day) under a row lock, refusing it past any limit of their tier."""
        today = uow.now.astimezone(SHANGHAI).date()
        row = (await uow.conn.execute(select(usage).where(usage.c.user_id == payer.id).with_for_update())).first()
        used = (Usage(row.lifetime, row.year, row.year_total, row.day, row.day_total) if row
                else Usage()).rolled(today)
        check_limits(payer.tier, amount, used, self.limits)
        after = used.plus(amount)
        values = {"lifetime": after.lifetime, "year": after.year, "year_total": after.year_total,
                  "day": after.day, "day_total": after.day_total}
        if row is None:
            await uow.conn.execute(insert(usage).values(user_id=payer.id, **values))
        else:
            await uow.conn.execute(update(usage).where(usage.c.user_id == payer.id).values(**values))

    async def uncount_payment(self, uow: UnitOfWork, payer_id: str, amount: int, paid_at: datetime) -> None:
        """In the caller's unit of work: give back a counted payment that did not happen (a
        failed top-up or bill): off the lifetime, and off the year and day it was counted in."""
        row = (await uow.conn.execute(select(usage).where(usage.c.user_id == payer_id).with_for_update())).first()
        if row is None:
            return
        paid_day = paid_at.astimezone(SHANGHAI).date()
        values = {"lifetime": max(0, row.lifetime - amount)}
        if row.year == paid_day.year:
            values["year_total"] = max(0, row.year_total - amount)
        if row.day == paid_day:
            values["day_total"] = max(0, row.day_total - amount)
        await uow.conn.execute(update(usage).where(usage.c.user_id == payer_id).values(**values))

    # ------------------------------------------------------------------ money requests

    async def request_money(self, me: Principal, raw_payer: str, amount: object, *, idempotency_key: str,
                            note: str = "") -> MoneyRequest:
        """Ask a number for an amount; the payer is told by SMS and pays or declines in the app."""
        amount = check_amount(amount)
        payer = normalize_msisdn(raw_payer)
        if payer == me.msisdn:
            raise E.SelfRequest("ask another number", field="from")
        check_idempotency_key(idempotency_key)
        request_id = "mrq_" + sha(f"{me.user_id}|{idempotency_key}")[:32]

        async def work(uow: UnitOfWork) -> MoneyRequest:
            row = (await uow.conn.execute(select(money_requests).where(money_requests.c.id == request_id))).first()
            if row is not None:
                if (row.payer_msisdn, row.amount, row.note) != (payer, amount, note):
                    raise IdempotencyConflict("this Idempotency-Key was used for another request", field="id")
                return _money_request(row, uow.now)
            await uow.conn.execute(insert(money_requests).values(
                id=request_id, requester_id=me.user_id, requester_msisdn=me.msisdn, payer_msisdn=payer,
                amount=amount, note=note, state="open", created_at=uow.now, expires_at=uow.now + REQUEST_TTL))
            await uow.emit(SmsRequested(key=request_id, to=payer, template="request.received",
                                        params={"from": mask_msisdn(me.msisdn), "amount_fen": amount}))
            stored = (await uow.conn.execute(select(money_requests).where(money_requests.c.id == request_id))).one()
            return _money_request(stored, uow.now)

        return await self.uow.run("request_money", work)

    async def money_requests(self, me: Principal) -> tuple[list[MoneyRequest], list[MoneyRequest]]:
        """(asked of me, asked by me), newest first."""

        async def work(uow: UnitOfWork) -> tuple[list[MoneyRequest], list[MoneyRequest]]:
            order = money_requests.c.created_at.desc()
            incoming = await uow.conn.execute(select(money_requests).where(
                money_requests.c.payer_msisdn == me.msisdn).order_by(order).limit(100))
            outgoing = await uow.conn.execute(select(money_requests).where(
                money_requests.c.requester_id == me.user_id).order_by(order).limit(100))
            return ([_money_request(r, uow.now) for r in incoming], [_money_request(r, uow.now) for r in outgoing])

        return await self.uow.run("money_requests", work)

    async def pay_request(self, me: Principal, request_id: str, *, pin: str | None = None) -> TransferDone:
        """Pay a request asked of me: one transfer per request, however often this is called."""

        async def load(uow: UnitOfWork) -> Any:
            row = (await uow.conn.execute(select(money_requests).where(money_requests.c.id == request_id))).first()
            if row is None or row.payer_msisdn != me.msisdn:
                raise NotFound("no such money request for you", field="request_id")
            state = _money_request(row, uow.now).state
            if state not in ("open", "paid"):  # paid: let a retry replay the payment it made
                raise E.RequestNotOpen(f"the request is {state}", field="request_id")
            return row

        request = await self.uow.run("load_request", load)

        async def settle(uow: UnitOfWork, done: TransferDone) -> None:
            row = (await uow.conn.execute(select(money_requests).where(money_requests.c.id == request_id)
                                          .with_for_update())).one()
            if row.state == "paid" and row.transfer_id == done.id:
                return  # a retry of the payment that settled it
            if (state := _money_request(row, uow.now).state) != "open":
                raise E.RequestNotOpen(f"the request is {state}", field="request_id")
            await uow.conn.execute(update(money_requests).where(money_requests.c.id == request_id).values(
                state="paid", settled_at=uow.now, transfer_id=done.id))

        return await self.transfer(me, request.requester_msisdn, request.amount,
                                   idempotency_key=f"request-{request_id}", pin=pin, note=request.note, then=settle)

    async def decline_request(self, me: Principal, request_id: str) -> MoneyRequest:
        async def work(uow: UnitOfWork) -> MoneyRequest:
            row = (await uow.conn.execute(select(money_requests).where(money_requests.c.id == request_id)
                                          .with_for_update())).first()
            if row is None or row.payer_msisdn != me.msisdn:
                raise NotFound("no such money request for you", field="request_id")
            if (state := _money_request(row, uow.now).state) != "open":
                raise E.RequestNotOpen(f"the request is {state}", field="request_id")
            await uow.conn.execute(update(money_requests).where(money_requests.c.id == request_id).values(
                state="declined", settled_at=uow.now))
            await uow.emit(SmsRequested(key=f"declined:{request_id}", to=row.requester_msisdn,
                                        template="request.declined", params={"by": mask_msisdn(me.msisdn)}))
            return _money_request((await uow.conn.execute(
                select(money_requests).where(money_requests.c.id == request_id))).one(), uow.now)

        return await self.uow.run("decline_request", work)

    async def return_expired_claims(self, limit: int = 100) -> int:
        """Send back money nobody claimed within the window; returns how many claims."""

        async def due(uow: UnitOfWork) -> list[str]:
            rows = await uow.conn.execute(select(claims.c.id).where(claims.c.state == "waiting",
                                                                    claims.c.expires_at <= uow.now).limit(limit))
            return [r[0] for r in rows]

        returned = 0
        for claim_id in await self.uow.run("claims_due", due):
            async def back(uow: UnitOfWork, claim_id: str = claim_id) -> bool:
                claim = (await uow.conn.execute(select(claims).where(claims.c.id == claim_id).with_for_update())).one()
                if claim.state != "waiting":  # claimed meanwhile
                    return False
                sender = (await uow.conn.execute(select(users.c.account_code).where(users.c.id == claim.sender_id)
                                                 )).scalar_one()
                await _settle_claim(uow, claim, to_account=sender, state="returned")
                params = {"to": mask_msisdn(claim.recipient_msisdn), "amount_fen": claim.amount}
                await uow.emit(SmsRequested(key=f"returned:{claim.id}", to=claim.sender_msisdn,
                                            template="p2p.returned", params=params))
                return True

            returned += await self.uow.run("return_claim", back)
        return returned


    # ------------------------------------------------------------------ PIN

    async def set_pin(self, raw_msisdn: str, pin: str) -> None:
        """Set the first payment PIN (later changes need the current PIN or an SMS code)."""
        user = await self.user_by_msisdn(raw_msisdn)
        check_pin(pin, user.msisdn)
        pin_hash = await asyncio.to_thread(self.pin_hasher.hash, pin)

        async def work(uow: UnitOfWork) -> None:
            if (await uow.conn.execute(select(pins.c.user_id).where(pins.c.user_id == user.id))).first():
                raise E.PinAlreadySet("change it with the current PIN, or reset it with an SMS code", field="pin")
            await uow.conn.execute(insert(pins).values(user_id=user.id, pin_hash=pin_hash, updated_at=uow.now))

        await self.uow.run("set_pin", work)

    async def change_pin(self, raw_msisdn: str, current: str, new: str) -> None:
        user = await self.user_by_msisdn(raw_msisdn)
        check_pin(new, user.msisdn)
        await self.verify_pin(user.msisdn, current)
        pin_hash = await asyncio.to_thread(self.pin_hasher.hash, new)

        async def work(uow: UnitOfWork) -> None:
            await uow.conn.execute(update(pins).where(pins.c.user_id == user.id).values(
                pin_hash=pin_hash, failures=0, updated_at=uow.now))

        await self.uow.run("change_pin", work)

    async def reset_pin(self, raw_msisdn: str, code: str, new_pin: str, id_number: str | None = None) -> None:
        """Forgotten or locked PIN: a new one with an SMS code (purpose reset_pin) and, once
        the real name is verified, the identity card number too (a stolen phone is not
        enough). Clears the failure count and any lockout."""
        user = await self.user_by_msisdn(raw_msisdn)
        check_pin(new_pin, user.msisdn)
        id_hmac = self.id_hmac(check_id_card(id_number)) if id_number is not None else None
        pin_hash = await asyncio.to_thread(self.pin_hasher.hash, new_pin)

        async def work(uow: UnitOfWork) -> MobipayError | None:
            verified = (await uow.conn.execute(select(identities.c.id_hmac).where(
                identities.c.user_id == user.id))).scalar_one_or_none()
            if verified is not None and id_number is None:
                raise E.IdentityRequired("this wallet is real-name verified: send id_number as well", field="id_number")
            refused = await self._consume_otp(uow, user.msisdn, OtpPurpose.RESET_PIN, code)
            if refused is not None:
                return refused
            if verified is not None and not hmac.compare_digest(verified, id_hmac or ""):
                return E.IdentityMismatch("the identity card number does not match this wallet", field="id_number")
            values = {"pin_hash": pin_hash, "failures": 0, "lockouts": 0, "locked_until": None, "updated_at": uow.now}
            if (await uow.conn.execute(update(pins).where(pins.c.user_id == user.id).values(**values))).rowcount == 0:
                await uow.conn.execute(insert(pins).values(user_id=user.id, **values))
            await uow.emit(SmsRequested(key=new_id("sms"), to=user.msisdn, template="pin.reset", params={}))
            return None

        error = await self.uow.run("reset_pin", work)
        if error is not None:
            raise error

    async def pin_status(self, raw_msisdn: str) -> PinState | None:
        """The PIN's failure count and lockout (None when no PIN is set), for support."""
        user = await self.user_by_msisdn(raw_msisdn)

        async def work(uow: UnitOfWork) -> PinState | None:
            row = (await uow.conn.execute(select(pins).where(pins.c.user_id == user.id))).first()
            return None if row is None else _pin_state(row)

        return await self.uow.run("pin_status", work)

    async def unlock_pin(self, raw_msisdn: str, *, actor: str, reason: str) -> None:
        """An operator lifts a PIN lockout after checking who calls (the PIN itself stays):
        failures and the lockout are cleared, the growing lockout starts over. Audited."""
        if not reason.strip():
            raise ValidationFailed("give the reason for the audit trail", field="reason")
        user = await self.user_by_msisdn(raw_msisdn)

        async def work(uow: UnitOfWork) -> None:
            row = (await uow.conn.execute(select(pins).where(pins.c.user_id == user.id).with_for_update())).first()
            if row is None:
                raise E.PinNotSet("this wallet has no payment PIN to unlock", field="msisdn")
            await uow.conn.execute(update(pins).where(pins.c.user_id == user.id).values(
                failures=0, lockouts=0, locked_until=None))
            await audit.record(uow.conn, at=uow.now, actor=actor, action="user.pin_unlock", target=user.msisdn,
                               reason=reason, before={"failures": row.failures, "lockouts": row.lockouts,
                                                      "locked_until": row.locked_until},
                               after={"failures": 0, "lockouts": 0, "locked_until": None})

        await self.uow.run("unlock_pin", work)

    async def verify_pin(self, raw_msisdn: str, pin: object) -> None:
        """Check the payment PIN; wrong ones count, and the limit locks payments for a while
        that doubles with each lockout. A locked PIN refuses even the right one."""
        user = await self.user_by_msisdn(raw_msisdn)
        if not (isinstance(pin, str) and len(pin) == 6 and pin.isascii() and pin.isdigit()):
            raise E.InvalidPin("a payment PIN is exactly 6 digits", field="pin")  # malformed: not a try

        async def load(uow: UnitOfWork) -> tuple[str, PinState]:
            row = (await uow.conn.execute(select(pins).where(pins.c.user_id == user.id))).first()
            if row is None:
                raise E.PinNotSet("set a payment PIN first", field="pin")
            state = _pin_state(row)
            check_not_locked(state, uow.now)
            return row.pin_hash, state

        pin_hash, _ = await self.uow.run("verify_pin", load)
        ok: bool
        try:
            ok = await asyncio.to_thread(self.pin_hasher.verify, pin_hash, pin)
        except (VerifyMismatchError, InvalidHashError):
            ok = False

        async def record(uow: UnitOfWork) -> MobipayError | None:
            # Read again under this transaction: concurrent wrong tries must all count.
            row = (await uow.conn.execute(select(pins).where(pins.c.user_id == user.id)
                                          .with_for_update())).one()
            state = _pin_state(row)
            try:
                check_not_locked(state, uow.now)
            except MobipayError as exc:
                return exc
            if ok:
                if state.failures:
                    await uow.conn.execute(update(pins).where(pins.c.user_id == user.id).values(failures=0))
                return None
            after = after_failure(state, uow.now, self.pin_policy)
            await uow.conn.execute(update(pins).where(pins.c.user_id == user.id).values(
                failures=after.failures, lockouts=after.lockouts, locked_until=after.locked_until))
            if after.locked_until is not None:
                minutes = self.pin_policy.lockout_s(state.lockouts) // 60
                # The subscriber hears of it at once: it may be someone else trying their PIN.
                await uow.emit(SmsRequested(key=f"pin-locked:{user.id}:{after.lockouts}", to=user.msisdn,
                                            template="pin.locked", params={"minutes": minutes}))
                return E.PinLocked(f"too many wrong PINs: payments are locked for {minutes} min", field="pin")
            left = self.pin_policy.max_failures - after.failures
            return E.PinIncorrect(f"wrong PIN, {left} tries left before payments lock", field="pin",
                                  tries_left=left)

        error = await self.uow.run("verify_pin", record)
        if error is not None:
            raise error

    async def principal(self, user_id: str) -> Principal:
        """Act for a subscriber without a session (their standing instructions, e.g. autopay)."""

        async def work(uow: UnitOfWork) -> Principal:
            row = (await uow.conn.execute(select(users.c.msisdn, users.c.account_code).where(users.c.id == user_id))
                   ).first()
            if row is None:
                raise E.UserNotFound(f"no subscriber {user_id}", field="user_id")
            return Principal(user_id, "standing-instruction", row.msisdn, row.account_code)

        return await self.uow.run("principal", work)

    async def receipt(self, me: Principal, transfer_id: str) -> Receipt:
        """One transaction of my wallet as a receipt. Another subscriber's transaction looks
        exactly like a missing one, so a changed id in a URL reveals nothing."""
        try:
            t = await self.uow.ledger.transfer(transfer_id)
        except MobipayError:
            t = None
        mine = [leg for leg in t.legs if leg.account == me.account_code] if t else []
        if t is None or not mine:
            raise NotFound("no such transaction in your wallet", field="transfer_id")
        others = [leg.account for leg in t.legs if leg.account != me.account_code and leg.account.startswith("wallet:")]
        leg = mine[0]
        counterparty = mask_msisdn(others[0].removeprefix("wallet:")) if others else None
        claim = None
        if t.code == "p2p" and not others:  # sent to a number without a wallet: it waits there

            async def read(uow: UnitOfWork) -> Any:
                return (await uow.conn.execute(select(claims).where(claims.c.transfer_id == t.id))).first()

            claim = await self.uow.run("receipt_claim", read)
        if claim is not None:
            counterparty = mask_msisdn(claim.recipient_msisdn)
        return Receipt(t.id, t.code, leg.amount, leg.currency, "out" if leg.side.value == "D" else "in",
                       counterparty, t.reference, t.created_at, note=str((t.metadata or {}).get("note", "")),
                       claim_state=claim.state if claim is not None else None,
                       claim_expires_at=as_utc(claim.expires_at) if claim is not None else None)

    async def history(self, account_code: str, *, after: int = 0, before: int | None = None, limit: int = 20,
                      codes: Sequence[str] | None = None, side: Side | None = None, since: datetime | None = None,
                      until: datetime | None = None, newest_first: bool = False
                      ) -> tuple[list[dict[str, Any]], int | None]:
        """A wallet's history as every channel shows it (the API, the mobile web, SMS MX, voice,
        the CLI statement): one line per payment with its state — an order's hold and its
        settlement are one line, never two of the same amount — and the next cursor."""
        return await self.uow.ledger.history(account_code, after=after, before=before, limit=limit, codes=codes,
                                             side=side, since=since, until=until, newest_first=newest_first)

    async def user_by_msisdn(self, raw_msisdn: str) -> User:
        msisdn = normalize_msisdn(raw_msisdn)

        async def work(uow: UnitOfWork) -> User:
            row = (await uow.conn.execute(select(users).where(users.c.msisdn == msisdn))).first()
            if row is None:
                raise E.UserNotFound(f"{msisdn} is not registered", field="msisdn")
            return _user(row)

        return await self.uow.run("user_by_msisdn", work)


async def _latest(uow: UnitOfWork, msisdn: str, purpose: OtpPurpose) -> OtpChallenge | None:
    row = (await uow.conn.execute(
        select(otps).where(otps.c.msisdn == msisdn, otps.c.purpose == purpose.value)
        .order_by(otps.c.sent_at.desc()).limit(1)
    )).first()
    if row is None:
        return None
    return OtpChallenge(row.id, row.msisdn, OtpPurpose(row.purpose), row.code_hash, as_utc(row.sent_at),
                        as_utc(row.expires_at), row.attempts, row.consumed_at is not None)


async def _create_user(uow: UnitOfWork, msisdn: str, segment: Segment) -> User | MobipayError:
    """Insert the subscriber and open their wallet account, in the caller's transaction."""
    existing = (await uow.conn.execute(select(users.c.id).where(users.c.msisdn == msisdn))).first()
    if existing is not None:
        return E.UserExists(f"{msisdn} is already registered; sign in instead", field="msisdn")
    spec = wallet_account(msisdn)
    await uow.open_account(spec)
    user = User(new_id("usr"), msisdn, segment.operator.value, segment.virtual, UserStatus.ACTIVE,
                KycTier.TIER_1, spec.code, uow.now)
    await uow.conn.execute(insert(users).values(
        id=user.id, msisdn=msisdn, operator=user.operator, virtual_operator=user.virtual_operator,
        status=user.status.value, tier=int(user.tier), account_code=user.account_code, created_at=user.created_at,
    ))
    await uow.emit(UserRegistered(key=user.id, user_id=user.id, msisdn=msisdn))
    waiting = (await uow.conn.execute(select(claims).where(claims.c.recipient_msisdn == msisdn,
                                                           claims.c.state == "waiting"))).all()
    for claim in waiting:  # money sent before this number had a wallet
        await _settle_claim(uow, claim, to_account=spec.code, state="claimed")
    return user


def _user(row: Any) -> User:
    return User(row.id, row.msisdn, row.operator, bool(row.virtual_operator), UserStatus(row.status),
                KycTier(row.tier), row.account_code, as_utc(row.created_at))


def _pin_state(row: Any) -> PinState:
    return PinState(row.failures, row.lockouts, as_utc(row.locked_until) if row.locked_until else None)


async def _settle_claim(uow: UnitOfWork, claim: Any, *, to_account: str, state: str) -> None:
    """Pay a waiting claim out of suspense (to the new wallet, or back to the sender)."""
    [result] = await uow.post([Transfer(f"{state}:{claim.id}", (Leg.debit(SUSPENSE, claim.amount),
                                                               Leg.credit(to_account, claim.amount)),
                                        "p2p.claim" if state == "claimed" else "p2p.return",
                                        reference=claim.transfer_id)])
    if result.error is not None:
        raise result.error
    await uow.conn.execute(update(claims).where(claims.c.id == claim.id, claims.c.state == "waiting")
                           .values(state=state, settled_at=uow.now))


def sha(token: str) -> str:
    """How a token is stored and looked up: its SHA-256 (tokens are random, no salt needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def check_session(access_expires_at: datetime | None, revoked_at: datetime | None, now: datetime) -> None:
    """Refuse an access token whose session is unknown (no expiry given), revoked or expired."""
    if access_expires_at is None or revoked_at is not None or as_utc(access_expires_at) <= now:
        raise E.SessionInvalid("the access token is unknown, expired or revoked; refresh or sign in")


def check_not_self(sender_msisdn: str, to: str) -> None:
    """Refuse a payment to the payer's own number."""
    if to == sender_msisdn:
        raise E.SelfTransfer("choose another recipient", field="to")


def p2p_command(sender: User, to: str, recipient_status: str | None, recipient_account: str | None, amount: int,
                key: str, metadata: dict[str, Any]) -> tuple[Transfer, bool]:
    """The ledger transfer for a P2P payment, and whether it waits for an unregistered
    recipient in suspense; refused when either wallet may not take part. One rule for the
    one-by-one path and the batched one (``transfer_batch``)."""
    if sender.status is not UserStatus.ACTIVE:
        raise E.UserFrozen(f"this wallet cannot pay while it is {sender.status.value}")
    if recipient_status in (UserStatus.CLOSING.value, UserStatus.CLOSED.value):
        raise E.UserClosed("the recipient's wallet is closed and cannot receive money", field="to")
    waiting = recipient_account is None  # no wallet yet: the money waits in suspense for CLAIM_WINDOW
    command = Transfer(p2p_id(sender.id, key),
                       (Leg.debit(sender.account_code, amount), Leg.credit(recipient_account or SUSPENSE, amount)),
                       "p2p", reference=f"{mask_msisdn(sender.msisdn)}->{mask_msisdn(to)}",
                       metadata={**metadata, "for": to} if waiting else (metadata or None))
    return command, waiting


def p2p_id(sender_id: str, key: str) -> str:
    """The ledger id of a P2P transfer: the sender's idempotency key, made unique per sender."""
    return f"p2p:{sender_id}:{key}"


def p2p_sms(transfer_id: str, sender_msisdn: str, to: str, amount: int, waiting: bool) -> SmsRequested:
    """The text that tells the recipient: money received, or an invitation to claim it."""
    return SmsRequested(key=f"{transfer_id}:to", to=to, template="p2p.invite" if waiting else "p2p.received",
                        params={"from": mask_msisdn(sender_msisdn), "amount_fen": amount})
