"""The ledger's batch decision: apply commands in order to locked account state.

:func:`decide` is the heart of the ledger. Given a batch of commands and the *locked*
current state of every account they touch (plus any holds, originals and already-stored
transfers they name), it applies the commands one after another, in order, against
in-memory balances, and returns a result per command and the rows to write. It does no
I/O, so the same rules run on PostgreSQL and SQLite, and in property tests.

Why in Python and sequentially: a batch must give each transfer the answer it would get if
it ran alone at its place in the order (TigerBeetle's semantics). The store then writes the
outcome set-based: all transfers, all postings, one netted balance update per account.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from mobipay.kernel.errors import IdempotencyConflict, MobipayError
from mobipay.kernel.money import CURRENCIES
from mobipay.ledger import errors
from mobipay.ledger.model import (
    AccountState,
    Command,
    HoldState,
    Leg,
    Outcome,
    PostingRow,
    PostPending,
    Result,
    Reverse,
    Side,
    StoredTransfer,
    Transfer,
    TransferType,
    VoidPending,
    metadata_json,
    validate,
)

_DEBIT = Side.DEBIT


def decide(
    commands: Sequence[Command],
    accounts: Mapping[str, AccountState],
    *,
    now: datetime,
    existing: Mapping[str, StoredTransfer],
    holds: Mapping[str, HoldState],
    originals: Mapping[str, StoredTransfer],
    reversed_ids: frozenset[str] | set[str] = frozenset(),
    validated: bool = False,
) -> Outcome:
    """Apply ``commands`` in order to the locked ``accounts``; see the module docstring.

    ``existing`` holds stored transfers whose ids appear in the batch (idempotent retries),
    ``holds`` the pending transfers named by post/void commands, ``originals`` the
    transfers named by reversals and ``reversed_ids`` those already reversed.
    ``validated=True`` skips :func:`validate` when the caller already ran it.
    """
    return _Decision(accounts, now, existing, holds, originals, reversed_ids, validated).run(commands)


class _Decision:
    """The state of one :func:`decide` call: the accounts, the stored and held transfers it
    may name, and what the batch has created, resolved and reversed so far."""

    def __init__(
        self,
        accounts: Mapping[str, AccountState],
        now: datetime,
        existing: Mapping[str, StoredTransfer],
        holds: Mapping[str, HoldState],
        originals: Mapping[str, StoredTransfer],
        reversed_ids: frozenset[str] | set[str],
        validated: bool,
    ) -> None:
        self.accounts = accounts
        self.now = now
        self.existing = existing
        self.holds = holds
        self.originals = originals
        self.reversed_ids = reversed_ids
        self.validated = validated
        self.out = Outcome(results=[])
        self.created: dict[str, StoredTransfer] = {}
        self.resolved_here: dict[str, TransferType] = {}
        self.reversed_here: set[str] = set()

    def run(self, commands: Sequence[Command]) -> Outcome:
        results = self.out.results
        n = len(commands)
        i = 0
        while i < n:
            cmd = commands[i]
            if not cmd.linked:  # the common case: a chain of one
                results.append(self._apply_one(cmd))
                i += 1
                continue
            # A chain is a run of linked commands closed by the first unlinked one.
            j = i
            while j < n and commands[j].linked:
                j += 1
            if j == n:  # the last command is linked: the chain never closes
                results.extend(Result(c.id, error=errors.LinkedChainOpen()) for c in commands[i:])
                break
            self._apply_chain(commands[i : j + 1])
            i = j + 1
        return self.out

    def _apply_chain(self, chain: Sequence[Command]) -> None:
        """All or nothing: on the first failure undo the chain's effects and fail every member."""
        out = self.out
        saved = {code: acc.counters() for code, acc in self.accounts.items()}
        touched_before = set(out.touched)
        n_transfers, n_postings = len(out.transfers), len(out.postings)
        created, resolved, reversed_ = dict(self.created), dict(self.resolved_here), set(self.reversed_here)
        results: list[Result] = []
        for cmd in chain:
            result = self._apply_one(cmd)
            results.append(result)
            if not result.ok:
                break
        if results[-1].ok:
            out.results.extend(results)
            return
        for code, acc in self.accounts.items():
            acc.restore(saved[code])
        for acc_id in set(out.touched) - touched_before:
            del out.touched[acc_id]
        del out.transfers[n_transfers:]
        del out.postings[n_postings:]
        self.created, self.resolved_here, self.reversed_here = created, resolved, reversed_
        failed = results[-1]
        for cmd in chain:
            if cmd.id == failed.id and cmd is chain[len(results) - 1]:
                out.results.append(failed)
            else:
                out.results.append(Result(cmd.id, error=errors.LinkedTransferFailed(
                    f"transfer {failed.id} in the chain failed: {failed.error}")))

    def _apply_one(self, cmd: Command) -> Result:
        try:
            if not self.validated:
                validate(cmd)
            prior = self.existing.get(cmd.id) or self.created.get(cmd.id)
            if prior is not None:
                if _same_content(cmd, prior, self.holds, self.originals):
                    return Result(cmd.id, transfer=prior, replayed=True)
                raise IdempotencyConflict(
                    f"transfer id {cmd.id!r} was already used for a different transfer", field="id"
                )
            if type(cmd) is Transfer:
                stored = _posted_simple(cmd, self.accounts, self.now, self.out) or _transfer(
                    cmd, self.accounts, self.now, self.out)
            elif isinstance(cmd, PostPending):
                stored = _post_pending(cmd, self.accounts, self.now, self.holds, self.resolved_here, self.out)
            elif isinstance(cmd, VoidPending):
                stored = _void_pending(cmd, self.accounts, self.now, self.holds, self.resolved_here, self.out)
            else:
                assert isinstance(cmd, Reverse)
                stored = _reverse(cmd, self.accounts, self.now, self.originals, self.reversed_ids,
                                  self.reversed_here, self.out)
        except MobipayError as exc:
            return Result(cmd.id, error=exc)
        self.created[cmd.id] = stored
        self.out.transfers.append(stored)
        return Result(cmd.id, transfer=stored)


def _account(accounts: Mapping[str, AccountState], leg: Leg) -> AccountState:
    acc = accounts.get(leg.account)
    if acc is None:
        raise errors.AccountNotFound(f"account {leg.account!r} does not exist", field="legs")
    if acc.currency != leg.currency:
        raise errors.CurrencyMismatch(
            f"account {acc.code} holds {acc.currency}, the leg is in {leg.currency}", field="legs"
        )
    if acc.frozen:
        raise errors.AccountFrozen(f"account {acc.code} is frozen", field="legs")
    return acc


def over_limit(acc: AccountState, side: Side, extra: int = 0) -> bool:
    """The ledger's one overdraft rule: would ``extra`` more on ``side`` (0: as the account
    stands) take ``acc`` past its limit? Pending amounts count against it; a credit never
    breaks a debit limit, nor a debit a credit limit."""
    if side is _DEBIT:
        return acc.debits_must_not_exceed_credits and (
            acc.debits_posted + acc.debits_pending + extra > acc.credits_posted + acc.credit_limit)
    return acc.credits_must_not_exceed_debits and (
        acc.credits_posted + acc.credits_pending + extra > acc.debits_posted + acc.credit_limit)


def _limit_refusal(acc: AccountState, side: Side, extra: int = 0) -> MobipayError:
    """The refusal :func:`over_limit` calls for, naming what is available."""
    if side is _DEBIT:
        needs = f", needs {_fmt(extra, acc.currency)}" if extra else ""
        return errors.InsufficientFunds(
            f"account {acc.code} has {_fmt(acc.available + acc.credit_limit, acc.currency)} available{needs}",
            account=acc.code,
        )
    return errors.CreditsExceedDebits(f"account {acc.code} would have more credits than debits", account=acc.code)


def _limit_error(acc: AccountState, side: Side) -> MobipayError | None:
    """The refusal if ``acc`` is now past its limit on ``side`` (legs already applied)."""
    return _limit_refusal(acc, side) if over_limit(acc, side) else None


def book(acc: AccountState, leg: Leg, pending: bool) -> None:
    """The ledger's one way a leg changes an account's counters (posted or pending)."""
    if pending:
        if leg.side is _DEBIT:
            acc.debits_pending += leg.amount
        else:
            acc.credits_pending += leg.amount
    elif leg.side is _DEBIT:
        acc.debits_posted += leg.amount
    else:
        acc.credits_posted += leg.amount


def release_hold(acc: AccountState, leg: Leg) -> None:
    """A hold's leg no longer pending on the account (posted or voided)."""
    if leg.side is _DEBIT:
        acc.debits_pending -= leg.amount
    else:
        acc.credits_pending -= leg.amount


def _record(transfer_id: str, n: int, leg: Leg, acc: AccountState, pending: bool, out: Outcome) -> None:
    """The posting row of a booked leg: the account's next version and its balance after it."""
    acc.version += 1
    out.touched[acc.id] = acc
    net = acc.debits_posted - acc.credits_posted
    out.postings.append(PostingRow(transfer_id, n, acc.id, leg.amount if leg.side is _DEBIT else -leg.amount,
                                   leg.currency, pending, acc.version, net if acc.debit_normal else -net))


def _fmt(amount: int, currency: str) -> str:
    exp = CURRENCIES.get(currency, 2)
    return f"{amount / 10**exp:.{exp}f} {currency}" if exp else f"{amount} {currency}"


def _write_legs(
    transfer_id: str,
    legs: Sequence[Leg],
    accounts: Mapping[str, AccountState],
    now: datetime,
    *,
    pending: bool,
    release: Sequence[Leg] = (),
    out: Outcome,
) -> None:
    """Apply legs to the accounts (posted or pending), checking limits, and record postings.

    ``release`` are hold legs whose pending amounts go away in the same step (post/void).
    All legs are applied before limits are checked, so a transfer that moves money through
    an account and out again in one go is judged by its net effect; on a refusal every
    counter is put back. This is the hot path of the ledger: keep it lean.
    """
    accs = [_account(accounts, leg) for leg in legs]
    n_legs = len(legs)
    if not release and (
        (n_legs == 2 and accs[0] is not accs[1])
        or (n_legs == 3 and accs[0] is not accs[1] and accs[0] is not accs[2] and accs[1] is not accs[2])
    ):
        # Fast path, most transfers (a payment, or a payment with a fee leg): distinct
        # accounts, one leg each, so each leg can be judged before anything changes (the
        # same answer as judging the net effect) and there is nothing to undo on a refusal.
        for leg, acc in zip(legs, accs, strict=True):
            error = _limit_error_if(acc, leg, pending)
            if error is not None:
                raise error
        _apply(legs, accs, pending)
    else:
        saved = [(acc, acc.counters()) for acc in accs]
        for leg in release:
            acc = accounts[leg.account]
            saved.append((acc, acc.counters()))
            release_hold(acc, leg)
        _apply(legs, accs, pending)
        for leg, acc in zip(legs, accs, strict=True):
            error = _limit_error(acc, leg.side)
            if error is not None:
                for saved_acc, counters in reversed(saved):
                    saved_acc.restore(counters)
                raise error
        for leg in release:
            acc = accounts[leg.account]
            out.touched[acc.id] = acc
    for n, (leg, acc) in enumerate(zip(legs, accs, strict=True)):
        _record(transfer_id, n, leg, acc, pending, out)


def _apply(legs: Sequence[Leg], accs: Sequence[AccountState], pending: bool) -> None:
    for leg, acc in zip(legs, accs, strict=True):
        book(acc, leg, pending)


def _limit_error_if(acc: AccountState, leg: Leg, pending: bool) -> MobipayError | None:
    """Would applying ``leg`` alone take ``acc`` past its limit? (checked before applying)"""
    return _limit_refusal(acc, leg.side, leg.amount) if over_limit(acc, leg.side, leg.amount) else None


def _posted_simple(
    cmd: Transfer, accounts: Mapping[str, AccountState], now: datetime, out: Outcome
) -> StoredTransfer | None:
    """The commonest commands, inlined: post legs on distinct, open accounts, each within
    its limit (a payment, or a payment with a fee leg). With one leg per account, judging
    each leg before applying gives the net-effect answer. Returns None, having changed
    nothing, for anything else and for every refusal, so :func:`_transfer` answers those."""
    if cmd.pending:
        return None
    legs = cmd.legs
    get = accounts.get
    accs = []
    for leg in legs:
        acc = get(leg.account)
        if acc is None or acc.frozen or acc.currency != leg.currency or over_limit(acc, leg.side, leg.amount):
            return None
        accs.append(acc)
    n_legs = len(accs)
    if n_legs == 2:
        if accs[0] is accs[1]:
            return None
    elif len({id(acc) for acc in accs}) != n_legs:
        return None
    tid = cmd.id
    for n, (leg, acc) in enumerate(zip(legs, accs, strict=True)):
        book(acc, leg, False)
        _record(tid, n, leg, acc, False, out)
    return StoredTransfer(tid, TransferType.POSTED, cmd.code, legs, cmd.reference, cmd.metadata or None, now)


def _transfer(cmd: Transfer, accounts: Mapping[str, AccountState], now: datetime, out: Outcome) -> StoredTransfer:
    expires_at = None
    if cmd.pending and cmd.timeout_s:
        expires_at = now + timedelta(seconds=cmd.timeout_s)
    _write_legs(cmd.id, cmd.legs, accounts, now, pending=cmd.pending, out=out)
    return StoredTransfer(
        id=cmd.id,
        type=TransferType.PENDING if cmd.pending else TransferType.POSTED,
        code=cmd.code,
        legs=cmd.legs,
        reference=cmd.reference,
        metadata=cmd.metadata or None,
        created_at=now,
        expires_at=expires_at,
    )


def _open_hold(
    pending_id: str,
    holds: Mapping[str, HoldState],
    resolved_here: Mapping[str, TransferType],
    now: datetime,
    *,
    expiring: bool = False,
) -> StoredTransfer:
    hold = holds.get(pending_id)
    if hold is None or hold.transfer.type is not TransferType.PENDING:
        raise errors.PendingTransferNotFound(f"no hold with id {pending_id!r}", field="pending_id")
    resolved = resolved_here.get(pending_id) or hold.resolved_by
    if resolved is TransferType.POST_PENDING:
        raise errors.PendingTransferAlreadyPosted(f"hold {pending_id} was already posted", field="pending_id")
    if resolved is TransferType.VOID_PENDING:
        expired = hold.transfer.expires_at is not None and hold.transfer.expires_at <= now
        if expired:
            raise errors.PendingTransferExpired(f"hold {pending_id} expired and was released", field="pending_id")
        raise errors.PendingTransferAlreadyVoided(f"hold {pending_id} was already voided", field="pending_id")
    expires_at = hold.transfer.expires_at
    is_expired = expires_at is not None and expires_at <= now
    if expiring and not is_expired:
        raise errors.PendingTransferNotExpired(f"hold {pending_id} expires at {expires_at}", field="pending_id")
    if not expiring and is_expired:
        raise errors.PendingTransferExpired(f"hold {pending_id} expired at {expires_at}", field="pending_id")
    return hold.transfer


def post_legs(cmd: PostPending, hold: StoredTransfer) -> tuple[Leg, ...]:
    """The legs a post command books, derived from the hold (full, by amount, or as given)."""
    if cmd.legs is not None:
        return cmd.legs
    if cmd.amount is None:
        return hold.legs
    if len(hold.legs) != 2:
        raise errors.InvalidTransfer(
            "posting part of a hold by amount needs a two-leg hold; give legs instead", field="amount"
        )
    if cmd.amount > hold.legs[0].amount:
        raise errors.ExceedsPendingAmount(
            f"posting {cmd.amount} fen but the hold is {hold.legs[0].amount} fen", field="amount"
        )
    return tuple(Leg(leg.account, leg.side, cmd.amount, leg.currency) for leg in hold.legs)


def _post_pending(
    cmd: PostPending,
    accounts: Mapping[str, AccountState],
    now: datetime,
    holds: Mapping[str, HoldState],
    resolved_here: dict[str, TransferType],
    out: Outcome,
) -> StoredTransfer:
    hold = _open_hold(cmd.pending_id, holds, resolved_here, now)
    legs = post_legs(cmd, hold)
    held: dict[tuple[str, Side, str], int] = {}
    for leg in hold.legs:
        key = (leg.account, leg.side, leg.currency)
        held[key] = held.get(key, 0) + leg.amount
    for leg in legs:
        key = (leg.account, leg.side, leg.currency)
        if key not in held:
            raise errors.InvalidTransfer(f"hold {hold.id} has no {leg.side} leg on {leg.account}", field="legs")
        held[key] -= leg.amount
        if held[key] < 0:
            raise errors.ExceedsPendingAmount(f"posting more than held on {leg.account}", field="legs")
    _write_legs(cmd.id, legs, accounts, now, pending=False, release=hold.legs, out=out)
    resolved_here[cmd.pending_id] = TransferType.POST_PENDING
    return StoredTransfer(
        id=cmd.id, type=TransferType.POST_PENDING, code=cmd.code, legs=legs, reference=cmd.reference,
        metadata=cmd.metadata or None, created_at=now, pending_id=cmd.pending_id,
    )


def _void_pending(
    cmd: VoidPending,
    accounts: Mapping[str, AccountState],
    now: datetime,
    holds: Mapping[str, HoldState],
    resolved_here: dict[str, TransferType],
    out: Outcome,
) -> StoredTransfer:
    hold = _open_hold(cmd.pending_id, holds, resolved_here, now, expiring=cmd.expire)
    for leg in hold.legs:
        acc = accounts[leg.account]
        release_hold(acc, leg)
        out.touched[acc.id] = acc
    resolved_here[cmd.pending_id] = TransferType.VOID_PENDING
    return StoredTransfer(
        id=cmd.id, type=TransferType.VOID_PENDING, code=cmd.code, legs=(), reference=cmd.reference,
        metadata=cmd.metadata or None, created_at=now, pending_id=cmd.pending_id,
    )


def reversal_legs(original: StoredTransfer) -> tuple[Leg, ...]:
    flip = {Side.DEBIT: Side.CREDIT, Side.CREDIT: Side.DEBIT}
    return tuple(Leg(leg.account, flip[leg.side], leg.amount, leg.currency) for leg in original.legs)


def _reverse(
    cmd: Reverse,
    accounts: Mapping[str, AccountState],
    now: datetime,
    originals: Mapping[str, StoredTransfer],
    reversed_ids: frozenset[str] | set[str],
    reversed_here: set[str],
    out: Outcome,
) -> StoredTransfer:
    original = originals.get(cmd.original_id)
    if original is None:
        raise errors.TransferNotFound(f"no transfer with id {cmd.original_id!r}", field="original_id")
    if original.type not in (TransferType.POSTED, TransferType.POST_PENDING):
        raise errors.NotReversible(f"a {original.type} transfer cannot be reversed", field="original_id")
    if cmd.original_id in reversed_ids or cmd.original_id in reversed_here:
        raise errors.AlreadyReversed(f"transfer {cmd.original_id} was already reversed", field="original_id")
    legs = reversal_legs(original)
    _write_legs(cmd.id, legs, accounts, now, pending=False, out=out)
    reversed_here.add(cmd.original_id)
    return StoredTransfer(
        id=cmd.id, type=TransferType.REVERSAL, code=cmd.code, legs=legs, reference=cmd.reference,
        metadata=cmd.metadata or None, created_at=now, reversal_of=cmd.original_id,
    )


def _same_content(
    cmd: Command,
    prior: StoredTransfer,
    holds: Mapping[str, HoldState],
    originals: Mapping[str, StoredTransfer],
) -> bool:
    """Is a retried command the same as the stored transfer with its id?"""
    if cmd.code != prior.code or cmd.reference != prior.reference:
        return False
    if metadata_json(cmd.metadata) != metadata_json(prior.metadata):
        return False
    if isinstance(cmd, Transfer):
        wanted = TransferType.PENDING if cmd.pending else TransferType.POSTED
        return prior.type is wanted and tuple(cmd.legs) == tuple(prior.legs)
    if isinstance(cmd, PostPending):
        if prior.type is not TransferType.POST_PENDING or prior.pending_id != cmd.pending_id:
            return False
        hold = holds.get(cmd.pending_id)
        if hold is None:
            return False
        try:
            return post_legs(cmd, hold.transfer) == prior.legs
        except MobipayError:
            return False
    if isinstance(cmd, VoidPending):
        return prior.type is TransferType.VOID_PENDING and prior.pending_id == cmd.pending_id
    return prior.type is TransferType.REVERSAL and prior.reversal_of == cmd.original_id
