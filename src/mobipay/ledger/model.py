"""The ledger's pure domain: accounts, transfer commands, results, and their validation.

Value types and rules only, no I/O. The batch decision that applies commands to accounts
lives beside it in :mod:`mobipay.ledger.decide`.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from mobipay.kernel.errors import MobipayError
from mobipay.kernel.money import CURRENCIES, MAX_AMOUNT, check_amount, check_currency
from mobipay.ledger import errors


class AccountKind(enum.StrEnum):
    """Accounting kind; decides the normal side and so the sign of the balance."""

    ASSET = "asset"
    LIABILITY = "liability"
    INCOME = "income"
    EXPENSE = "expense"
    EQUITY = "equity"

    @property
    def debit_normal(self) -> bool:
        return self in (AccountKind.ASSET, AccountKind.EXPENSE)


class Side(enum.StrEnum):
    DEBIT = "D"
    CREDIT = "C"


class TransferType(enum.StrEnum):
    """What a stored transfer did. Every type is append-only."""

    POSTED = "posted"  # moved money at once
    PENDING = "pending"  # a hold: reserved money, resolved later by POST or VOID
    POST_PENDING = "post_pending"  # posted (part of) a hold
    VOID_PENDING = "void_pending"  # released a hold (by request or by expiry)
    REVERSAL = "reversal"  # undid a posted transfer with opposite legs


_DEBIT = Side.DEBIT
_CREDIT = Side.CREDIT
_CODE_RE = re.compile(r"^[a-z][a-z0-9_.:-]{0,63}$")
#: Control characters (Unicode Cc) a stored text must not hold: PostgreSQL refuses NUL in
#: text, which failed the whole batch's statement, so every neighbour of the bad command.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_ID_MAX = 128
MAX_LEGS = 64
MAX_TIMEOUT_S = 90 * 24 * 3600


class Leg(NamedTuple):
    """One side of a transfer: ``amount`` fen debited or credited to ``account``.

    A named tuple rather than a dataclass: a batch creates thousands, and tuple
    construction is several times cheaper in CPython.
    """

    account: str
    side: Side
    amount: int
    currency: str = "CNY"

    @property
    def signed(self) -> int:
        """Debits positive, credits negative: a balanced transfer's legs sum to zero."""
        return self.amount if self.side is Side.DEBIT else -self.amount

    @classmethod
    def debit(cls, account: str, amount: int, currency: str = "CNY") -> Leg:
        return cls(account, Side.DEBIT, amount, currency)

    @classmethod
    def credit(cls, account: str, amount: int, currency: str = "CNY") -> Leg:
        return cls(account, Side.CREDIT, amount, currency)


@dataclass(slots=True)
class Transfer:
    """Move money now (or hold it, with ``pending=True``). ``id`` is the idempotency key."""

    id: str
    legs: tuple[Leg, ...]
    code: str
    reference: str = ""
    metadata: Mapping[str, Any] | None = None
    pending: bool = False
    timeout_s: int | None = None  # holds only: seconds until the sweeper voids it
    linked: bool = False  # succeeds or fails together with the next command


@dataclass(slots=True)
class PostPending:
    """Post a hold in full (no amount/legs), by ``amount`` (two-leg holds) or by ``legs``."""

    id: str
    pending_id: str
    code: str = "hold.post"
    amount: int | None = None
    legs: tuple[Leg, ...] | None = None
    reference: str = ""
    metadata: Mapping[str, Any] | None = None
    linked: bool = False


@dataclass(slots=True)
class VoidPending:
    """Release a hold. ``expire=True`` is the sweeper's void, valid only after the timeout."""

    id: str
    pending_id: str
    code: str = "hold.void"
    reference: str = ""
    metadata: Mapping[str, Any] | None = None
    linked: bool = False
    expire: bool = False


@dataclass(slots=True)
class Reverse:
    """Undo a posted transfer with a new one whose legs are the original's, sides swapped."""

    id: str
    original_id: str
    code: str = "reversal"
    reference: str = ""
    metadata: Mapping[str, Any] | None = None
    linked: bool = False


Command = Transfer | PostPending | VoidPending | Reverse


@dataclass(frozen=True, slots=True)
class AccountSpec:
    """What an account is opened with."""

    code: str
    kind: AccountKind
    currency: str = "CNY"
    owner: str | None = None
    name: str = ""
    debits_must_not_exceed_credits: bool = False
    credits_must_not_exceed_debits: bool = False
    credit_limit: int = 0


@dataclass(slots=True)
class AccountState:
    """An account row as locked for a batch; ``decide`` mutates the counters."""

    id: int
    code: str
    kind: AccountKind
    currency: str
    debits_must_not_exceed_credits: bool
    credits_must_not_exceed_debits: bool
    credit_limit: int
    frozen: bool
    debits_posted: int
    credits_posted: int
    debits_pending: int
    credits_pending: int
    version: int  # number of postings on the account; the next one gets version + 1
    debit_normal: bool = False  # derived from kind in __post_init__; cached for the hot path

    def __post_init__(self) -> None:
        self.debit_normal = self.kind.debit_normal

    @property
    def balance(self) -> int:
        """Posted balance on the account's normal side."""
        net = self.debits_posted - self.credits_posted
        return net if self.debit_normal else -net

    @property
    def available(self) -> int:
        """What may still leave the account: posted balance less pending outflows."""
        if self.debit_normal:
            return self.debits_posted - self.credits_posted - self.credits_pending
        return self.credits_posted - self.debits_posted - self.debits_pending

    def counters(self) -> tuple[int, int, int, int, int]:
        return (
            self.debits_posted,
            self.credits_posted,
            self.debits_pending,
            self.credits_pending,
            self.version,
        )

    def restore(self, saved: tuple[int, int, int, int, int]) -> None:
        (
            self.debits_posted,
            self.credits_posted,
            self.debits_pending,
            self.credits_pending,
            self.version,
        ) = saved


@dataclass(slots=True)
class StoredTransfer:
    """A transfer as stored: what a caller gets back, first time or on a retry."""

    id: str
    type: TransferType
    code: str
    legs: tuple[Leg, ...]
    reference: str
    metadata: Mapping[str, Any] | None
    created_at: datetime
    pending_id: str | None = None
    reversal_of: str | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class HoldState:
    """A pending transfer and how (if at all) it was resolved."""

    transfer: StoredTransfer
    resolved_by: TransferType | None  # POST_PENDING, VOID_PENDING or None (still open)


@dataclass(slots=True)
class Result:
    """The outcome of one command: the stored transfer, or the refusal."""

    id: str
    transfer: StoredTransfer | None = None
    error: MobipayError | None = None
    replayed: bool = False  # True when the id already existed with the same content

    @property
    def ok(self) -> bool:
        return self.error is None


class PostingRow(NamedTuple):
    """A new posting, as :func:`~mobipay.ledger.decide.decide` records it for the store to
    write (all postings of a batch share the batch's time, so ``created_at`` is not here)."""

    transfer_id: str
    leg: int
    account_id: int
    amount: int  # signed: debit +, credit -
    currency: str
    pending: bool
    account_seq: int
    balance_after: int


#: Columns of a new posting row, in :class:`PostingRow`'s order.
POSTING_COLUMNS = PostingRow._fields


@dataclass(slots=True)
class Outcome:
    """What :func:`decide` concluded: a result per command, rows to write, accounts to update."""

    results: list[Result]
    transfers: list[StoredTransfer] = field(default_factory=list)
    postings: list[PostingRow] = field(default_factory=list)
    touched: dict[int, AccountState] = field(default_factory=dict)


# --------------------------------------------------------------------------- validation


def validate(cmd: Command) -> None:
    """Check a command's shape before any I/O; raise a specific refusal."""
    _check_id(cmd.id, "id")
    if cmd.code not in _GOOD_CODES:
        if not isinstance(cmd.code, str) or not _CODE_RE.match(cmd.code):
            raise errors.InvalidTransfer(
                f"code {cmd.code!r} must be lower-case letters, digits and _.:- (at most 64)",
                field="code",
            )
        if len(_GOOD_CODES) < 10_000:  # codes repeat: remember the good ones, within bounds
            _GOOD_CODES.add(cmd.code)
    if type(cmd.reference) is not str or len(cmd.reference) > 256:
        raise errors.InvalidTransfer("reference must be a string of at most 256 characters", field="reference")
    if cmd.reference and _CONTROL.search(cmd.reference):
        raise errors.InvalidTransfer("reference must not contain control characters (tab and line breaks are fine)",
                                     field="reference")
    if cmd.metadata is not None:
        if not isinstance(cmd.metadata, Mapping):
            raise errors.InvalidTransfer("metadata must be an object", field="metadata")
        if _holds_control(cmd.metadata):
            raise errors.InvalidTransfer("metadata must not contain control characters (tab and line breaks are fine)",
                                         field="metadata")
        try:
            encoded = json.dumps(cmd.metadata, separators=(",", ":"), sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise errors.InvalidTransfer(f"metadata is not JSON: {exc}", field="metadata") from None
        if len(encoded) > 4096:
            raise errors.InvalidTransfer("metadata is larger than 4 KiB", field="metadata")
    if isinstance(cmd, Transfer):
        _check_legs(cmd.legs)
        if cmd.pending:
            if cmd.timeout_s is not None and (
                type(cmd.timeout_s) is not int or not 0 < cmd.timeout_s <= MAX_TIMEOUT_S
            ):
                raise errors.InvalidTransfer(
                    f"timeout_s must be an integer from 1 to {MAX_TIMEOUT_S}", field="timeout_s"
                )
        elif cmd.timeout_s is not None:
            raise errors.InvalidTransfer("timeout_s is only for holds (pending=True)", field="timeout_s")
    elif isinstance(cmd, PostPending):
        _check_id(cmd.pending_id, "pending_id")
        if cmd.amount is not None and cmd.legs is not None:
            raise errors.InvalidTransfer("give amount or legs, not both", field="amount")
        if cmd.amount is not None:
            check_amount(cmd.amount)
        if cmd.legs is not None:
            _check_legs(cmd.legs)
    elif isinstance(cmd, VoidPending):
        _check_id(cmd.pending_id, "pending_id")
    elif isinstance(cmd, Reverse):
        _check_id(cmd.original_id, "original_id")
    else:  # pragma: no cover - the type union is closed
        raise errors.InvalidTransfer(f"unknown command {type(cmd).__name__}")


_GOOD_CODES: set[str] = set()


def _check_id(value: object, field_name: str) -> None:
    if type(value) is not str or not 0 < len(value) <= _ID_MAX or not value.isprintable():
        raise errors.InvalidTransfer(
            f"{field_name} must be a printable string of 1 to {_ID_MAX} characters", field=field_name
        )


def _holds_control(value: object) -> bool:
    """Whether a JSON-like value has a control character in a key or a string."""
    if isinstance(value, str):
        return _CONTROL.search(value) is not None
    if isinstance(value, Mapping):
        return any(_holds_control(k) or _holds_control(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_holds_control(item) for item in value)
    return False


def _check_legs(legs: Sequence[Leg]) -> None:
    """Legs are well formed and balance per currency. A fast pass for the usual case
    (well-formed legs in one currency) falls back to the thorough one to name the fault."""
    if type(legs) is not tuple or not 2 <= len(legs) <= MAX_LEGS:
        raise errors.InvalidTransfer(f"a transfer needs 2 to {MAX_LEGS} legs", field="legs")
    first = legs[0].currency if type(legs[0]) is Leg else None
    total = 0
    for leg in legs:
        if type(leg) is not Leg:
            return _check_legs_thoroughly(legs)
        account, side, amount, currency = leg
        if (
            type(amount) is not int or not 0 < amount <= MAX_AMOUNT or currency != first
            or type(account) is not str or not account or not account.isprintable()
            or (side is not _DEBIT and side is not _CREDIT)
        ):
            return _check_legs_thoroughly(legs)
        total += amount if side is _DEBIT else -amount
    if first not in CURRENCIES or total:
        _check_legs_thoroughly(legs)


def _check_legs_thoroughly(legs: Sequence[Leg]) -> None:
    sums: dict[str, int] = {}
    for i, leg in enumerate(legs):
        if not isinstance(leg, Leg) or not isinstance(leg.side, Side):
            raise errors.InvalidTransfer(f"leg {i} is not a Leg with a side D or C", field=f"legs[{i}]")
        if not isinstance(leg.account, str) or not leg.account:
            raise errors.InvalidTransfer(f"leg {i} has no account", field=f"legs[{i}].account")
        if not leg.account.isprintable() or len(leg.account) > _ID_MAX:
            raise errors.InvalidTransfer(f"leg {i}'s account must be a printable code of at most {_ID_MAX} characters",
                                         field=f"legs[{i}].account")
        check_amount(leg.amount, field=f"legs[{i}].amount")
        check_currency(leg.currency)
        sums[leg.currency] = sums.get(leg.currency, 0) + leg.signed
    unbalanced = {c: s for c, s in sums.items() if s}
    if unbalanced:
        raise errors.UnbalancedTransfer(
            "debits minus credits must be 0 per currency, got "
            + ", ".join(f"{c} {s:+d}" for c, s in sorted(unbalanced.items())),
            field="legs",
        )


def metadata_json(metadata: Mapping[str, Any] | None) -> str | None:
    """Canonical JSON for storage and comparison (``None`` for no metadata)."""
    if not metadata:
        return None
    return json.dumps(metadata, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def accounts_named(cmd: Command, holds: Mapping[str, HoldState], originals: Mapping[str, StoredTransfer]) -> set[str]:
    """Account codes a command touches, so the store can lock them all up front."""
    if isinstance(cmd, Transfer):
        return {leg.account for leg in cmd.legs}
    if isinstance(cmd, PostPending | VoidPending):
        hold = holds.get(cmd.pending_id)
        codes = {leg.account for leg in hold.transfer.legs} if hold else set()
        if isinstance(cmd, PostPending) and cmd.legs:
            codes |= {leg.account for leg in cmd.legs}
        return codes
    original = originals.get(cmd.original_id)
    return {leg.account for leg in original.legs} if original else set()
