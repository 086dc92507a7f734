"""Wallet use cases of the subscriber's account: one-time codes by SMS, registration, and
the operator's actions on a wallet (open, freeze, Tier III).

A subscriber registers with their number and a code sent to it; registration opens their
wallet account in the ledger in the same transaction, and pays out any money that was
waiting for the number. Codes are stored only as HMACs; the SMS itself leaves through the
outbox (topic ``sms.send``), so no code is sent for a request that did not commit, and
none is lost if the process stops.

Every use case works through the wallet's store (``store.py``) in a :class:`Transaction`:
no SQL here.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Sequence
from datetime import timedelta

from argon2 import PasswordHasher

from mobipay.kernel.clock import SHANGHAI
from mobipay.kernel.errors import MobipayError, ValidationFailed
from mobipay.kernel.events import SmsRequested
from mobipay.kernel.ids import new_id
from mobipay.kernel.lockout import PAYMENT_PIN_LOCKOUT
from mobipay.kernel.msisdn import normalize_msisdn
from mobipay.ledger.chart import wallet_account
from mobipay.ledger.uow import Runner, Transaction
from mobipay.platform.credentials import password_hasher
from mobipay.wallet import errors
from mobipay.wallet.model import (
    Claim,
    KycTier,
    NumberSegments,
    OtpChallenge,
    OtpPolicy,
    OtpPurpose,
    OtpSent,
    PinPolicy,
    Principal,
    Segment,
    User,
    UserRegistered,
    UserStatus,
    WalletLimits,
    check_id_card,
    check_otp,
    check_real_name,
    check_resend,
    claim_settlement,
)
from mobipay.wallet.store import WalletStore, sql_store


class Accounts:
    """The wallet's dependencies, and the use cases of a subscriber's account."""

    def __init__(self, uow: Runner, segments: NumberSegments, secret: bytes, policy: OtpPolicy | None = None, *,
                 pin_hasher: PasswordHasher | None = None, pin_policy: PinPolicy | None = None,
                 limits: WalletLimits | None = None,
                 store: Callable[[Transaction], WalletStore] = sql_store) -> None:
        self.uow = uow
        self.store = store
        self.segments = segments
        self.secret = secret
        self.policy = policy or OtpPolicy()
        self.pin_hasher = pin_hasher or password_hasher()
        self.pin_policy = pin_policy or PAYMENT_PIN_LOCKOUT
        self.limits = limits or WalletLimits()

    def operator_of(self, raw_msisdn: str) -> tuple[str, str, bool]:
        """``(E.164 number, operator, virtual operator)`` from the number-segment table."""
        msisdn = normalize_msisdn(raw_msisdn)
        segment = self.segments.lookup(msisdn)
        return msisdn, segment.operator.value, segment.virtual

    def check_identity(self, name: object, id_number: object) -> tuple[str, str]:
        """A person's name and identity card number, checked (GB 11643) and normalised;
        for products that name someone (an insured person, a beneficiary)."""
        return check_real_name(name), check_id_card(id_number, today=self.uow.clock.now().astimezone(SHANGHAI).date())

    async def check_claimant(self, user_id: str, name: object, id_number: object) -> str:
        """Someone claiming a large prize (or anything paid only to the wallet's owner) must be
        the wallet's verified real name and identity card: a stolen phone is not enough.
        Returns the verified name."""
        real_name, id_card = self.check_identity(name, id_number)

        async def read(tx: Transaction) -> tuple[str | None, str | None]:
            store = self.store(tx)
            return await store.real_name(user_id), await store.id_hmac(user_id)

        known_name, known_id = await self.uow.run("claimant", read)
        if known_name is None or known_id is None:
            raise errors.RealNameRequired("a prize claim needs a real-name wallet: bind a bank card in your own "
                                          "name first, then claim", field="id_number")
        if known_name != real_name or not hmac.compare_digest(known_id, self.id_hmac(id_card)):
            raise errors.IdentityMismatch("the name or identity card number is not this wallet's verified "
                                          "identity", field="id_number")
        return known_name

    def keyed_hash(self, kind: str, value: str) -> str:
        """How a sensitive number (identity card, bank card) is kept: only as this keyed
        hash, enough to compare and never to read back."""
        return hmac.new(self.secret, f"{kind}|{value}".encode(), hashlib.sha256).hexdigest()

    def id_hmac(self, id_number: str) -> str:
        return self.keyed_hash("id", id_number)

    def _hash(self, msisdn: str, purpose: OtpPurpose, code: str) -> str:
        message = f"{msisdn}|{purpose.value}|{code}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()

    # ------------------------------------------------------------------ codes and registration

    async def request_otp(self, raw_msisdn: str, purpose: OtpPurpose) -> OtpSent:
        """Send a fresh code to a number (never saying whether it is registered)."""
        msisdn = normalize_msisdn(raw_msisdn)
        self.segments.lookup(msisdn)  # only numbers of a known operator

        async def work(tx: Transaction) -> OtpSent:
            store = self.store(tx)
            check_resend(await store.latest_otp(msisdn, purpose), tx.now, self.policy)
            code = f"{secrets.randbelow(10**self.policy.length):0{self.policy.length}d}"
            challenge = OtpChallenge(new_id("otp"), msisdn, purpose, self._hash(msisdn, purpose, code), tx.now,
                                     tx.now + timedelta(seconds=self.policy.ttl_s), 0, False)
            await store.add_otp(challenge)
            await tx.emit(SmsRequested(key=challenge.id, to=msisdn, template=f"otp.{purpose.value}",
                                       params={"code": code, "minutes": self.policy.ttl_s // 60}))
            return OtpSent(msisdn, challenge.expires_at, self.policy.resend_after_s)

        return await self.uow.run("request_otp", work)

    async def register(self, raw_msisdn: str, code: str) -> User:
        """Register the owner of a number, proven by the code sent to it; opens the wallet."""
        msisdn = normalize_msisdn(raw_msisdn)
        segment = self.segments.lookup(msisdn)

        async def work(tx: Transaction) -> User | MobipayError:
            refused = await self._consume_otp(tx, msisdn, OtpPurpose.REGISTER, code)
            if refused is not None:
                return refused
            return await self._create_user(tx, msisdn, segment)

        outcome = await self.uow.run("register", work)
        if isinstance(outcome, MobipayError):
            raise outcome
        return outcome

    async def _consume_otp(self, tx: Transaction, msisdn: str, purpose: OtpPurpose, code: str) -> MobipayError | None:
        """Use up the latest code for ``purpose``, or say why not. A wrong try counts, so the
        caller must let this transaction commit: it returns the refusal instead of raising."""
        store = self.store(tx)
        challenge = await store.latest_otp(msisdn, purpose)
        try:
            check_otp(challenge, self._hash(msisdn, purpose, str(code)), tx.now, self.policy)
        except MobipayError as exc:
            if challenge is not None:
                await store.count_otp_try(challenge.id)
            return exc
        assert challenge is not None
        await store.consume_otp(challenge.id, tx.now)
        return None

    async def _create_user(self, tx: Transaction, msisdn: str, segment: Segment) -> User | MobipayError:
        """Insert the subscriber and open their wallet account, in the caller's transaction;
        money sent to the number before it had a wallet is paid into it now."""
        store = self.store(tx)
        if await store.user_by_msisdn(msisdn) is not None:
            return errors.UserExists(f"{msisdn} is already registered; sign in instead", field="msisdn")
        spec = wallet_account(msisdn)
        await tx.open_account(spec)
        user = User(new_id("usr"), msisdn, segment.operator.value, segment.virtual, UserStatus.ACTIVE,
                    KycTier.TIER_1, spec.code, tx.now)
        await store.add_user(user)
        await tx.emit(UserRegistered(key=user.id, user_id=user.id, msisdn=msisdn))
        for claim in await store.waiting_claims(msisdn):
            if claim.expires_at > tx.now:  # (an expired one goes back to its sender, as the SMS said)
                await self._settle_claim(tx, claim, to_account=spec.code, state="claimed")
        return user

    async def _settle_claim(self, tx: Transaction, claim: Claim, *, to_account: str, state: str) -> None:
        """Pay a waiting claim out of suspense (to the new wallet, or back to the sender)."""
        [result] = await tx.post([claim_settlement(claim, to_account=to_account, state=state)])
        if result.error is not None:
            raise result.error
        await self.store(tx).settle_claim(claim.id, state, tx.now)

    # ------------------------------------------------------------------ operator actions

    async def create_user(self, raw_msisdn: str, *, actor: str, reason: str) -> User:
        """Operator (or demo loader) opens a wallet for a number without an SMS code; audited."""
        msisdn = normalize_msisdn(raw_msisdn)
        segment = self.segments.lookup(msisdn)

        async def work(tx: Transaction) -> User:
            outcome = await self._create_user(tx, msisdn, segment)
            if isinstance(outcome, MobipayError):
                raise outcome
            await tx.audit(actor=actor, action="user.create", target=msisdn, reason=reason,
                           after={"id": outcome.id, "tier": int(outcome.tier)})
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
            raise errors.UserFrozen("a closed wallet stays closed")
        balance = (await self.uow.ledger.account(user.account_code)).balance  # for the SMS

        async def work(tx: Transaction) -> None:
            await self.store(tx).set_status(user.id, wanted)
            await tx.set_frozen(user.account_code, frozen)
            await tx.audit(actor=actor, action="user.freeze" if frozen else "user.unfreeze", target=user.msisdn,
                           reason=reason, before={"status": user.status.value}, after={"status": wanted.value})
            if user.status is not wanted:  # (freezing a frozen wallet again tells nobody anything new)
                await tx.emit(SmsRequested(key=new_id("sms"), to=user.msisdn,
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
            raise errors.RealNameRequired(f"Tier III needs a Tier II wallet first (this one is Tier {int(user.tier)})")

        async def work(tx: Transaction) -> None:
            await self.store(tx).set_tier3(user.id, tx.now)
            await tx.audit(actor=actor, action="user.tier3", target=user.msisdn, reason=reason, before={"tier": 2},
                           after={"tier": 3})

        await self.uow.run("verify_tier3", work)
        return await self.user_by_msisdn(user.msisdn)

    # ------------------------------------------------------------------ reads

    async def user_by_msisdn(self, raw_msisdn: str) -> User:
        msisdn = normalize_msisdn(raw_msisdn)

        async def work(tx: Transaction) -> User:
            user = await self.store(tx).user_by_msisdn(msisdn)
            if user is None:
                raise errors.UserNotFound(f"{msisdn} is not registered", field="msisdn")
            return user

        return await self.uow.run("user_by_msisdn", work)

    async def subscribers(self, *, after: str = "", limit: int = 5_000, cities: Sequence[str] = (),
                          tiers: Sequence[int] = ()) -> list[tuple[User, str | None]]:
        """Active subscribers by number after ``after`` (keyset), with their home city, of the
        cities and KYC tiers given (any when empty): what campaign segments select from."""

        async def work(tx: Transaction) -> list[tuple[User, str | None]]:
            return await self.store(tx).subscribers(after=after, limit=limit, cities=cities, tiers=tiers)

        return await self.uow.run("subscribers", work)

    async def principal(self, user_id: str) -> Principal:
        """Act for a subscriber without a session (their standing instructions, e.g. autopay)."""

        async def work(tx: Transaction) -> Principal:
            user = await self.store(tx).user_by_id(user_id)
            if user is None:
                raise errors.UserNotFound(f"no subscriber {user_id}", field="user_id")
            return Principal(user_id, "standing-instruction", user.msisdn, user.account_code)

        return await self.uow.run("principal", work)
