"""Wallet rules and records without I/O: phone numbers, their operators, PINs, identity and
card checks, limits, and the values the use cases keep in the wallet's store.

A subscriber *is* a mainland mobile number, stored in E.164 (``+8613800138000``). Which
operator issued it comes from a data file of number segments (``data/number_segments.csv``),
never from code, so a new MIIT segment is a one-line change.
"""

from __future__ import annotations

import csv
import enum
import hmac
import itertools
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from stdnum import luhn
from stdnum.cn import ric

from mobipay.kernel.clock import as_utc
from mobipay.kernel.events import Event, SmsRequested
from mobipay.kernel.lockout import PAYMENT_PIN_LOCKOUT, LockoutPolicy
from mobipay.kernel.msisdn import mask_msisdn, national_number
from mobipay.ledger.chart import SUSPENSE
from mobipay.ledger.model import Leg, Transfer
from mobipay.wallet import errors


class Operator(enum.StrEnum):
    CHINA_MOBILE = "china_mobile"
    CHINA_UNICOM = "china_unicom"
    CHINA_TELECOM = "china_telecom"
    CHINA_BROADNET = "china_broadnet"


@dataclass(frozen=True, slots=True)
class Segment:
    prefix: str
    operator: Operator
    virtual: bool


class NumberSegments:
    """Longest-prefix lookup of the operator that issued a number."""

    def __init__(self, segments: list[Segment]) -> None:
        self._by_prefix = {s.prefix: s for s in segments}
        self._lengths = sorted({len(s.prefix) for s in segments}, reverse=True)

    @classmethod
    def from_csv(cls, text: str) -> NumberSegments:
        """Parse the data file's text (lines starting with ``#`` are comments)."""
        rows = csv.DictReader(line for line in text.splitlines() if line.strip() and not line.startswith("#"))
        segments = []
        for row in rows:
            prefix = row["prefix"].strip()
            if not (prefix.isdigit() and prefix.startswith("1") and 3 <= len(prefix) <= 7):
                raise ValueError(f"bad number segment prefix {prefix!r}")
            segments.append(Segment(prefix, Operator(row["operator"].strip()), row["virtual"].strip() == "1"))
        return cls(segments)

    def lookup(self, msisdn: str) -> Segment:
        national = national_number(msisdn)
        for length in self._lengths:
            found = self._by_prefix.get(national[:length])
            if found is not None:
                return found
        raise errors.UnknownNumberSegment(f"no operator known for numbers starting {national[:4]}", field="msisdn")

    def __len__(self) -> int:
        return len(self._by_prefix)


def check_pin(pin: object, msisdn: str | None = None) -> str:
    """A payment PIN: exactly six ASCII digits, and not one a thief would try first."""
    if not isinstance(pin, str) or len(pin) != 6 or not pin.isascii() or not pin.isdigit():
        raise errors.InvalidPin("a payment PIN is exactly 6 digits", field="pin")
    digits = [int(c) for c in pin]
    steps = {b - a for a, b in itertools.pairwise(digits)}
    if steps in ({1}, {-1}):
        raise errors.WeakPin("digits in sequence (like 123456) are too easy to guess", field="pin")
    if len(set(digits)) == 1:
        raise errors.WeakPin("a PIN of one repeated digit is too easy to guess", field="pin")
    if pin[:2] * 3 == pin or pin[:3] * 2 == pin:
        raise errors.WeakPin("a repeated pattern (like 121212 or 123123) is too easy to guess", field="pin")
    if msisdn is not None and national_number(msisdn)[-6:] == pin:
        raise errors.WeakPin("the last six digits of your phone number are too easy to guess", field="pin")
    return pin


def check_id_card(number: object, *, today: date | None = None) -> str:
    """An 18-character resident identity card number (GB 11643-1999): region, birth date
    and the ISO 7064 MOD 11-2 check character. Returns it upper-cased."""
    if not isinstance(number, str):
        raise errors.InvalidIdCard("an identity card number is text", field="id_card")
    value = number.strip().upper()
    if len(value) != 18 or not value.isascii() or not value[:17].isdigit() or not (value[17].isdigit()
                                                                                   or value[17] == "X"):
        raise errors.InvalidIdCard("an identity card number has 17 digits and a check digit or X", field="id_card")
    if value[0] not in "12345678":
        raise errors.InvalidIdCard("the region code is not a mainland region", field="id_card")
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        raise errors.InvalidIdCard("the birth date in the number is not a date", field="id_card") from None
    if born.year < 1900 or born > (today or date.today()):
        raise errors.InvalidIdCard("the birth date in the number is out of range", field="id_card")
    if ric.calc_check_digit(value) != value[17]:  # ISO 7064 MOD 11-2, python-stdnum
        raise errors.InvalidIdCard("the check digit does not match (a typo?)", field="id_card")
    return value


def id_card_check_char(first17: str) -> str:
    """The check character for the first 17 digits (for test data and demo users)."""
    return ric.calc_check_digit(first17 + "0")  # stdnum takes the number with a check place


def check_card_number(number: object) -> str:
    """A bank card number: 12 to 19 digits passing the Luhn check; spaces are ignored."""
    if not isinstance(number, str):
        raise errors.InvalidCardNumber("a card number is text", field="card_number")
    digits = number.replace(" ", "")
    if not (12 <= len(digits) <= 19 and digits.isascii() and digits.isdigit()):
        raise errors.InvalidCardNumber("a card number has 12 to 19 digits", field="card_number")
    if not luhn.is_valid(digits):
        raise errors.InvalidCardNumber("the card number's check digit does not match (a typo?)", field="card_number")
    return digits


class OtpPurpose(enum.StrEnum):
    REGISTER = "register"
    LOGIN = "login"
    RESET_PIN = "reset_pin"


@dataclass(frozen=True, slots=True)
class OtpPolicy:
    """How one-time codes behave; values come from settings."""

    length: int = 6
    ttl_s: int = 300
    max_attempts: int = 5
    resend_after_s: int = 60


@dataclass(frozen=True, slots=True)
class OtpChallenge:
    """A code sent to a number for a purpose, as stored (the code itself only as a hash)."""

    id: str
    msisdn: str
    purpose: OtpPurpose
    code_hash: str
    sent_at: datetime
    expires_at: datetime
    attempts: int
    consumed: bool


def check_resend(last: OtpChallenge | None, now: datetime, policy: OtpPolicy) -> None:
    """Refuse a new code while the last one for the same number and purpose is fresh."""
    if last is not None and not last.consumed and (now - last.sent_at).total_seconds() < policy.resend_after_s:
        wait = policy.resend_after_s - int((now - last.sent_at).total_seconds())
        raise errors.OtpResendTooSoon(f"try again in {wait} s", retry_after_s=wait)


def check_otp(challenge: OtpChallenge | None, code_hash: str, now: datetime, policy: OtpPolicy) -> None:
    """Judge one attempt at a challenge; the caller counts the attempt whatever the answer.

    Codes are compared as hashes in constant time. A used, expired or exhausted challenge
    refuses even the right code.
    """
    if challenge is None or challenge.consumed:
        raise errors.OtpInvalid("no code is waiting for this number; ask for one", field="code")
    if challenge.attempts >= policy.max_attempts:
        raise errors.OtpAttemptsExceeded(f"{policy.max_attempts} wrong codes; ask for a new one", field="code")
    if now >= challenge.expires_at:
        raise errors.OtpExpired("the code has expired; ask for a new one", field="code")
    if not hmac.compare_digest(challenge.code_hash, code_hash):
        left = policy.max_attempts - challenge.attempts - 1
        raise errors.OtpInvalid(f"wrong code, {left} tries left", field="code", tries_left=left)


class UserStatus(enum.StrEnum):
    ACTIVE = "active"
    FROZEN = "frozen"
    CLOSING = "closing"  # an operator closed it; the balance is on its way to the bank card
    CLOSED = "closed"


class KycTier(enum.IntEnum):
    """Real-name tiers after the PBoC payment-account classes (I: number only)."""

    TIER_1 = 1
    TIER_2 = 2
    TIER_3 = 3


#: The payment PIN's lockout: the kernel's one rule, with growing locks (PAYMENT_PIN_LOCKOUT).
PinPolicy = LockoutPolicy


@dataclass(frozen=True, slots=True)
class PinState:
    failures: int
    lockouts: int
    locked_until: datetime | None


def check_not_locked(state: PinState, now: datetime) -> None:
    if state.locked_until is not None and now < state.locked_until:
        minutes = max(1, int((state.locked_until - now).total_seconds() + 59) // 60)
        raise errors.PinLocked(f"try again in {minutes} min, or reset the PIN with an SMS code",
                               retry_after_s=int((state.locked_until - now).total_seconds()))


def check_no_pin_allowed(locked_until: datetime | None, now: datetime) -> None:
    """The PIN-lock rule for payments made without the PIN (password-free amounts, an SMS
    secondary confirmation, autopay): a locked PIN suspends them too until the lock ends or
    is lifted. Five wrong PINs mean someone may hold the phone who should not; consent given
    without the PIN is exactly what they could still use (docs/decisions/0005)."""
    if locked_until is not None and now < locked_until:
        seconds = int((locked_until - now).total_seconds())
        raise errors.PinLocked(f"the payment PIN is locked after too many wrong tries, so payments without the PIN are "
                               f"suspended too for {max(1, (seconds + 59) // 60)} min; reset the PIN with an SMS code "
                               "to pay now", retry_after_s=seconds)


def after_failure(state: PinState, now: datetime, policy: PinPolicy = PAYMENT_PIN_LOCKOUT) -> PinState:
    """The state after one more wrong PIN: locked (for longer each time) at the limit."""
    failures, until = policy.after_failure(state.failures, None, now, previous_locks=state.lockouts)
    if until is None:
        return PinState(failures, state.lockouts, None)
    return PinState(0, state.lockouts + 1, until)


@dataclass(frozen=True, slots=True)
class WalletLimits:
    """Payment limits in fen; from settings. Modelled on the PBoC payment-account classes:
    Tier I (number only) has a lifetime cap on balance payments, Tiers II and III yearly caps."""

    password_free: int = 20_000
    per_transaction: int = 5_000_000
    daily: int = 5_000_000
    tier1_lifetime: int = 100_000
    tier2_yearly: int = 10_000_000
    tier3_yearly: int = 20_000_000


@dataclass(frozen=True, slots=True)
class Usage:
    """What a subscriber has paid out: over the account's life, this year, today (Shanghai)."""

    lifetime: int = 0
    year: int = 0
    year_total: int = 0
    day: date | None = None
    day_total: int = 0

    def rolled(self, today: date) -> Usage:
        """The counters as of ``today``: a new year or day starts from zero."""
        year_total = self.year_total if self.year == today.year else 0
        day_total = self.day_total if self.day == today else 0
        return Usage(self.lifetime, today.year, year_total, today, day_total)

    def plus(self, amount: int) -> Usage:
        return Usage(self.lifetime + amount, self.year, self.year_total + amount, self.day, self.day_total + amount)

    def minus(self, amount: int, paid_on: date) -> Usage:
        """A counted payment given back (it did not happen): off the lifetime, and off the
        year and day it was counted in, if those counters are still that year and day."""
        return Usage(max(0, self.lifetime - amount), self.year,
                     max(0, self.year_total - amount) if self.year == paid_on.year else self.year_total,
                     self.day, max(0, self.day_total - amount) if self.day == paid_on else self.day_total)


def _caps(tier: KycTier, usage: Usage, limits: WalletLimits) -> list[tuple[str, int, int]]:
    """Every limit on a payment of ``tier``: its name, its amount, and what ``usage`` took of it."""
    checks = [("per-transaction limit", limits.per_transaction, 0), ("daily limit", limits.daily, usage.day_total)]
    if tier is KycTier.TIER_1:
        checks.append(("Tier I lifetime limit (verify your real name to raise it)", limits.tier1_lifetime,
                       usage.lifetime))
    elif tier is KycTier.TIER_2:
        checks.append(("Tier II yearly limit", limits.tier2_yearly, usage.year_total))
    else:
        checks.append(("Tier III yearly limit", limits.tier3_yearly, usage.year_total))
    return checks


def within_limits(tier: KycTier, usage: Usage, limits: WalletLimits) -> bool:
    """Whether counters that already include some payments stay within every limit."""
    return all(used <= limit for _, limit, used in _caps(tier, usage, limits))


def check_limits(tier: KycTier, amount: int, usage: Usage, limits: WalletLimits) -> None:
    """Refuse a payment past any limit, naming the limit and what is left of it."""
    for name, limit, used in _caps(tier, usage, limits):
        left = max(0, limit - used)
        if amount > left:
            raise errors.LimitExceeded(f"{name}: {left / 100:.2f} CNY left of {limit / 100:.2f} CNY", field="amount",
                                       limit=name, remaining=left)


def luhn_complete(partial: str) -> str:
    """``partial`` with the Luhn check digit appended (for test data and demo cards)."""
    return check_card_number(partial + luhn.calc_check_digit(partial))


def mask_card(number: str) -> str:
    """``6222021234567890123`` → ``622202******0123``."""
    return f"{number[:6]}{'*' * (len(number) - 10)}{number[-4:]}"


def mask_id_card(number: str) -> str:
    """``11010519491231002X`` → ``1*************002X``: the first and last four stay."""
    return f"{number[0]}{'*' * 13}{number[-4:]}"


def check_real_name(name: object) -> str:
    """A person's name as on the identity card: 2 to 30 letters, Chinese or Latin, with the
    middle dot of minority and foreign names (``阿依古丽·买买提``); spaces trimmed."""
    if not isinstance(name, str):
        raise errors.InvalidRealName("a name is text", field="name")
    value = unicodedata.normalize("NFKC", name).strip().replace("•", "·").replace("・", "·")
    letters = value.replace("·", "").replace(" ", "")
    if not (2 <= len(value) <= 30 and letters and all(c.isalpha() for c in letters)):
        raise errors.InvalidRealName("give the name exactly as on the identity card (letters only)", field="name")
    return value


class CardType(enum.StrEnum):
    DEBIT = "debit"
    CREDIT = "credit"


@dataclass(frozen=True, slots=True)
class CardBin:
    bin: str
    bank_code: str
    bank_name: str
    bank_name_en: str
    card_type: CardType


class CardBins:
    """Which bank issued a card, from the BIN data file (first six digits)."""

    def __init__(self, bins: list[CardBin]) -> None:
        self._by_bin = {b.bin: b for b in bins}

    @classmethod
    def from_csv(cls, text: str) -> CardBins:
        rows = csv.DictReader(line for line in text.splitlines() if line.strip() and not line.startswith("#"))
        bins = []
        for row in rows:
            if not (len(row["bin"]) == 6 and row["bin"].isdigit()):
                raise ValueError(f"bad BIN {row['bin']!r}")
            bins.append(CardBin(row["bin"], row["bank_code"], row["bank_name"], row["bank_name_en"],
                                CardType(row["card_type"])))
        return cls(bins)

    def lookup(self, card_number: str) -> CardBin:
        found = self._by_bin.get(card_number[:6])
        if found is None:
            raise errors.CardNotSupported(f"cards starting {card_number[:6]} are from a bank we do not work with yet",
                                          field="card_number")
        return found

    def __len__(self) -> int:
        return len(self._by_bin)


@dataclass(frozen=True, slots=True)
class CashOutFee:
    """The cash-out fee: basis points of the amount, at least ``minimum`` fen, rounded up to
    the fen (the operator never undercharges by rounding). From settings."""

    bps: int = 10
    minimum: int = 10

    def of(self, amount: int) -> int:
        return max(self.minimum, -(-amount * self.bps // 10_000))


# ---------------------------------------------------------------------- the wallet's records
# What the use cases (accounts, pins, sessions, payments, requests) read and write through
# the wallet's store (wallet/store.py): plain values, no rows.

ACCESS_TTL = timedelta(minutes=15)
REFRESH_TTL = timedelta(days=30)
CLAIM_WINDOW = timedelta(days=3)  # money sent to a number without a wallet waits this long
#: How long a money request stays open when the platform does not say (MOBIPAY_MONEY_REQUEST_DAYS).
REQUEST_TTL_DEFAULT = timedelta(days=3)


@dataclass(frozen=True, kw_only=True)
class UserRegistered(Event):
    topic = "wallet.user_registered"
    user_id: str
    msisdn: str


@dataclass(frozen=True, kw_only=True)
class WalletCredited(Event):
    """Money came into a wallet from outside (a top-up from the bank card, ``source``
    ``cash_in``): contexts above the wallet that wait for money (in-store NFC debts) consume
    it, so the wallet never needs to know them."""

    topic = "wallet.credited"
    user_id: str
    msisdn: str
    account_code: str
    amount: int
    source: str


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


@dataclass(frozen=True, slots=True)
class Principal:
    """The subscriber behind a request."""

    user_id: str
    session_id: str
    msisdn: str
    account_code: str


@dataclass(frozen=True, slots=True)
class OtpSent:
    msisdn: str
    expires_at: datetime
    resend_after_s: int


@dataclass(frozen=True, slots=True)
class Tokens:
    session_id: str
    access_token: str
    expires_in: int
    refresh_token: str


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in device, as stored (its tokens only as hashes)."""

    id: str
    user_id: str
    device_id: str
    device_name: str
    access_hash: str
    access_expires_at: datetime
    refresh_hash: str
    refresh_expires_at: datetime
    created_at: datetime
    last_used_at: datetime
    revoked_at: datetime | None = None
    previous_refresh_hash: str | None = None
    proven_by: str = ""  # "sms": opened with a code sent to the number (a bound device); "pin"; "" (unknown)


@dataclass(frozen=True, slots=True)
class SessionInfo:
    id: str
    device_id: str
    device_name: str
    created_at: datetime
    last_used_at: datetime
    proven_by: str = ""


@dataclass(frozen=True, slots=True)
class SignedIn:
    """Who an access token names, with its session's expiry and revocation."""

    session_id: str
    user_id: str
    msisdn: str
    account_code: str
    access_expires_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class StoredPin:
    pin_hash: str
    state: PinState


class Recipient(NamedTuple):
    """A wallet about to receive a bulk payment: what a campaign's sub-batch needs of each of
    thousands (a named tuple: cheap to make by the thousand)."""

    user_id: str
    account_code: str
    status: str
    real_name: str | None  # the verified real name (Tier II and up), None when unverified


@dataclass(frozen=True, slots=True)
class Payer:
    """A wallet about to pay, with its PIN's lock (password-free payments stop while locked)."""

    user: User
    pin_locked_until: datetime | None


@dataclass(frozen=True, slots=True)
class TransferDone:
    id: str
    sender: str
    recipient: str
    amount: int
    created_at: datetime
    replayed: bool
    status: str = "succeeded"  # or "waiting_for_recipient" (no wallet yet: held in suspense)


@dataclass(frozen=True, slots=True)
class Claim:
    """Money sent to a number without a wallet, waiting in suspense for it to register."""

    id: str
    transfer_id: str
    sender_id: str
    sender_msisdn: str
    recipient_msisdn: str
    amount: int
    state: str  # waiting | claimed | returned
    created_at: datetime
    expires_at: datetime


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


@dataclass(frozen=True, slots=True)
class StoredRequest:
    """A money request as stored; :meth:`seen_at` is how it looks at a moment (expired?)."""

    id: str
    requester_id: str
    requester_msisdn: str
    payer_msisdn: str
    amount: int
    note: str
    state: str  # open | paid | declined | expired (stored by the worker's expiry job)
    created_at: datetime
    expires_at: datetime
    transfer_id: str | None = None

    def seen_at(self, now: datetime) -> MoneyRequest:
        """Open past ``expires_at`` reads as expired even before the worker stores it, so a
        request is never paid late because the job has not run yet."""
        state = "expired" if self.state == "open" and self.expires_at <= now else self.state
        return MoneyRequest(self.id, self.requester_msisdn, self.payer_msisdn, self.amount, self.note, state,
                            self.created_at, self.expires_at)


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
    prize_tax: int = 0  # a lottery prize: the income tax withheld from it (amount is after tax)
    #: A transfer to a number without a wallet: waiting | claimed | returned, and until when
    #: the money waits for the recipient to register before it comes back.
    claim_state: str | None = None
    claim_expires_at: datetime | None = None
    #: pending (a partner order's hold, awaiting the partner), succeeded, or failed (the hold
    #: was released: nothing was paid, the money is back in the wallet).
    state: str = "succeeded"


def check_session(access_expires_at: datetime | None, revoked_at: datetime | None, now: datetime) -> None:
    """Refuse an access token whose session is unknown (no expiry given), revoked or expired."""
    if access_expires_at is None or revoked_at is not None or as_utc(access_expires_at) <= now:
        raise errors.SessionInvalid("the access token is unknown, expired or revoked; refresh or sign in")


def check_not_self(sender_msisdn: str, to: str) -> None:
    """Refuse a payment to the payer's own number."""
    if to == sender_msisdn:
        raise errors.SelfTransfer("choose another recipient", field="to")


def p2p_command(sender: User, to: str, recipient_status: str | None, recipient_account: str | None, amount: int,
                key: str, metadata: dict[str, Any]) -> tuple[Transfer, bool]:
    """The ledger transfer for a P2P payment, and whether it waits for an unregistered
    recipient in suspense; refused when either wallet may not take part. One rule for the
    one-by-one path and the batched one (``transfer_batch``)."""
    if sender.status is not UserStatus.ACTIVE:
        raise errors.UserFrozen(f"this wallet cannot pay while it is {sender.status.value}")
    if recipient_status in (UserStatus.CLOSING.value, UserStatus.CLOSED.value):
        raise errors.UserClosed("the recipient's wallet is closed and cannot receive money", field="to")
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


def claim_settlement(claim: Claim, *, to_account: str, state: str) -> Transfer:
    """The ledger transfer that pays a waiting claim out of suspense: to the new wallet
    (``claimed``) or back to the sender (``returned``)."""
    return Transfer(f"{state}:{claim.id}", (Leg.debit(SUSPENSE, claim.amount), Leg.credit(to_account, claim.amount)),
                    "p2p.claim" if state == "claimed" else "p2p.return", reference=claim.transfer_id)
