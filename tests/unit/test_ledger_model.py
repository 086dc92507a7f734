"""The ledger's pure decision logic, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mobipay.kernel.errors import MobipayError
from mobipay.ledger.decide import decide
from mobipay.ledger.model import (
    AccountKind,
    AccountState,
    HoldState,
    Leg,
    PostPending,
    Reverse,
    StoredTransfer,
    Transfer,
    TransferType,
    VoidPending,
    validate,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def accounts(**balances: int) -> dict[str, AccountState]:
    """Wallets (no overdraft) with the given credit balances, plus an unconstrained bank."""
    out = {"bank": AccountState(1, "bank", AccountKind.ASSET, "CNY", False, False, 0, False, 0, 0, 0, 0, 0)}
    for i, (code, balance) in enumerate(balances.items(), start=2):
        out[code] = AccountState(i, code, AccountKind.LIABILITY, "CNY", True, False, 0, False, 0, balance, 0, 0, 0)
    return out


def run(commands: list, accs: dict[str, AccountState], **kw):  # type: ignore[no-untyped-def]
    return decide(commands, accs, now=kw.pop("now", NOW), existing=kw.pop("existing", {}),
                  holds=kw.pop("holds", {}), originals=kw.pop("originals", {}), **kw)


def p2p(tid: str, src: str, dst: str, amount: int, **kw: object) -> Transfer:
    return Transfer(tid, (Leg.debit(src, amount), Leg.credit(dst, amount)), "p2p", **kw)  # type: ignore[arg-type]


def test_transfer_moves_money_and_records_running_balances() -> None:
    accs = accounts(alice=1000, bob=0)
    out = run([p2p("t1", "alice", "bob", 300)], accs)
    assert out.results[0].ok and not out.results[0].replayed
    assert accs["alice"].balance == 700 and accs["bob"].balance == 300
    assert out.postings == [("t1", 0, 2, 300, "CNY", False, 1, 700), ("t1", 1, 3, -300, "CNY", False, 1, 300)]


def test_refusal_changes_nothing_and_others_in_the_batch_still_post() -> None:
    accs = accounts(alice=100, bob=0)
    out = run([p2p("t1", "alice", "bob", 500), p2p("t2", "alice", "bob", 60)], accs)
    assert [r.error.code if r.error else None for r in out.results] == ["INSUFFICIENT_FUNDS", None]
    assert "1.00 CNY available" in out.results[0].error.detail  # type: ignore[union-attr]
    assert accs["alice"].balance == 40 and accs["bob"].balance == 60
    assert [t.id for t in out.transfers] == ["t2"]


def test_batch_is_sequential_in_order() -> None:
    accs = accounts(alice=0, bob=100)
    out = run([p2p("t1", "alice", "bob", 50), p2p("t2", "bob", "alice", 100), p2p("t3", "alice", "bob", 50)], accs)
    assert [r.ok for r in out.results] == [False, True, True]


@pytest.mark.parametrize(
    ("legs", "code"),
    [
        ((Leg.debit("a", 100), Leg.credit("b", 99)), "UNBALANCED_TRANSFER"),
        ((Leg.debit("a", 100),), "INVALID_TRANSFER"),
        ((Leg.debit("a", 0), Leg.credit("b", 0)), "INVALID_AMOUNT"),
        ((Leg.debit("a", -5), Leg.credit("b", -5)), "INVALID_AMOUNT"),
        ((Leg("a", "D", 1.5, "CNY"), Leg("b", "C", 1.5, "CNY")), "INVALID_TRANSFER"),  # type: ignore[arg-type]
        ((Leg.debit("a", 100), Leg.credit("b", 100, "USD")), "UNBALANCED_TRANSFER"),
        ((Leg.debit("a", 100, "XYZ"), Leg.credit("b", 100, "XYZ")), "INVALID_CURRENCY"),
    ],
)
def test_malformed_transfers_are_refused_with_specific_codes(legs: tuple[Leg, ...], code: str) -> None:
    with pytest.raises(MobipayError) as info:
        validate(Transfer("t", legs, "p2p"))
    assert info.value.code == code


def test_float_amount_in_a_proper_leg_is_invalid_amount() -> None:
    with pytest.raises(MobipayError) as info:
        validate(Transfer("t", (Leg.debit("a", 1.5), Leg.credit("b", 1.5)), "p2p"))  # type: ignore[arg-type]
    assert info.value.code == "INVALID_AMOUNT"


@pytest.mark.parametrize("bad", [{"id": ""}, {"id": "x" * 129}, {"code": "Bad Code"}, {"reference": "r" * 257},
                                 {"metadata": {"x": object()}}])
def test_bad_fields_are_refused(bad: dict[str, object]) -> None:
    fields: dict[str, object] = {"id": "t", "legs": (Leg.debit("a", 1), Leg.credit("b", 1)), "code": "p2p"}
    fields.update(bad)
    with pytest.raises(MobipayError) as info:
        validate(Transfer(**fields))  # type: ignore[arg-type]
    assert info.value.code == "INVALID_TRANSFER"
    assert info.value.field in {"id", "code", "reference", "metadata"}


def test_unknown_frozen_and_wrong_currency_accounts() -> None:
    accs = accounts(alice=100)
    accs["alice"].frozen = True
    out = run([p2p("t1", "alice", "bank", 10), p2p("t2", "bank", "nobody", 10),
               Transfer("t3", (Leg.debit("bank", 5, "USD"), Leg.credit("bank", 5, "USD")), "fx")], accs)
    assert [r.error.code for r in out.results if r.error] == ["ACCOUNT_FROZEN", "ACCOUNT_NOT_FOUND",
                                                             "CURRENCY_MISMATCH"]
    assert accs["alice"].balance == 100


def test_idempotent_retry_in_the_same_batch_and_conflict() -> None:
    accs = accounts(alice=100, bob=0)
    out = run([p2p("t1", "alice", "bob", 10), p2p("t1", "alice", "bob", 10), p2p("t1", "alice", "bob", 11)], accs)
    assert out.results[0].ok and not out.results[0].replayed
    assert out.results[1].ok and out.results[1].replayed
    assert out.results[2].error and out.results[2].error.code == "IDEMPOTENCY_CONFLICT"
    assert accs["alice"].balance == 90 and len(out.transfers) == 1


def test_retry_of_a_stored_transfer_is_replayed_without_posting() -> None:
    accs = accounts(alice=100, bob=0)
    first = run([p2p("t1", "alice", "bob", 10)], accs).transfers[0]
    again = run([p2p("t1", "alice", "bob", 10)], accs, existing={"t1": first})
    assert again.results[0].replayed and again.results[0].transfer is first
    assert again.transfers == [] and again.postings == [] and accs["alice"].balance == 90


def test_linked_chain_fails_together() -> None:
    accs = accounts(alice=100, bob=0, carol=0)
    out = run([
        p2p("t1", "alice", "bob", 80, linked=True),
        p2p("t2", "bob", "carol", 80, linked=True),
        p2p("t3", "carol", "alice", 500),  # fails: carol has 80
        p2p("t4", "alice", "bob", 1),
    ], accs)
    codes = [r.error.code if r.error else None for r in out.results]
    assert codes == ["LINKED_TRANSFER_FAILED", "LINKED_TRANSFER_FAILED", "INSUFFICIENT_FUNDS", None]
    assert (accs["alice"].balance, accs["bob"].balance, accs["carol"].balance) == (99, 1, 0)
    assert [t.id for t in out.transfers] == ["t4"]
    assert {p[0] for p in out.postings} == {"t4"}


def test_linked_chain_open_at_the_end_of_a_batch() -> None:
    accs = accounts(alice=100, bob=0)
    out = run([p2p("t1", "alice", "bob", 1, linked=True)], accs)
    assert out.results[0].error and out.results[0].error.code == "LINKED_CHAIN_OPEN"
    assert accs["alice"].balance == 100


def _hold(accs: dict[str, AccountState], amount: int = 100, timeout: int | None = 60) -> StoredTransfer:
    out = run([p2p("h1", "alice", "bob", amount, pending=True, timeout_s=timeout)], accs)
    assert out.results[0].ok
    return out.transfers[0]


def test_hold_reserves_then_partial_post_releases_the_rest() -> None:
    accs = accounts(alice=100, bob=0)
    hold = _hold(accs)
    assert accs["alice"].available == 0 and accs["alice"].balance == 100
    refused = run([p2p("t2", "alice", "bob", 1)], accs).results[0]
    assert refused.error is not None and refused.error.code == "INSUFFICIENT_FUNDS"
    out = run([PostPending("p1", "h1", amount=60)], accs, holds={"h1": HoldState(hold, None)})
    assert out.results[0].ok
    assert accs["alice"].balance == 40 and accs["alice"].available == 40 and accs["bob"].balance == 60
    assert accs["alice"].debits_pending == 0 and accs["bob"].credits_pending == 0


def test_post_more_than_held_twice_or_after_expiry() -> None:
    accs = accounts(alice=100, bob=0)
    hold = _hold(accs)
    state = {"h1": HoldState(hold, None)}
    too_much = run([PostPending("p1", "h1", amount=101)], accs, holds=state).results[0]
    assert too_much.error is not None and too_much.error.code == "EXCEEDS_PENDING_AMOUNT"
    out = run([PostPending("p1", "h1"), PostPending("p2", "h1"), VoidPending("v1", "h1")], accs, holds=state)
    assert [r.error.code if r.error else None for r in out.results] == [
        None, "PENDING_TRANSFER_ALREADY_POSTED", "PENDING_TRANSFER_ALREADY_POSTED"]
    posted = {"h1": HoldState(hold, TransferType.POST_PENDING)}
    assert run([VoidPending("v2", "h1")], accs, holds=posted).results[0].error.code == "PENDING_TRANSFER_ALREADY_POSTED"  # type: ignore[union-attr]
    late = NOW + timedelta(seconds=61)
    accs2 = accounts(alice=100, bob=0)
    hold2 = _hold(accs2)
    out = run([PostPending("p3", "h1"), VoidPending("v3", "h1")], accs2, holds={"h1": HoldState(hold2, None)}, now=late)
    assert [r.error.code for r in out.results if r.error] == ["PENDING_TRANSFER_EXPIRED", "PENDING_TRANSFER_EXPIRED"]
    out = run([VoidPending("x", "h1", expire=True)], accs2, holds={"h1": HoldState(hold2, None)}, now=NOW)
    assert out.results[0].error.code == "PENDING_TRANSFER_NOT_EXPIRED"  # type: ignore[union-attr]
    out = run([VoidPending("x", "h1", expire=True)], accs2, holds={"h1": HoldState(hold2, None)}, now=late)
    assert out.results[0].ok and accs2["alice"].available == 100


def test_void_releases_and_unknown_hold_is_refused() -> None:
    accs = accounts(alice=100, bob=0)
    hold = _hold(accs)
    out = run([VoidPending("v1", "h1"), VoidPending("v2", "nope")], accs, holds={"h1": HoldState(hold, None)})
    assert out.results[0].ok and out.results[1].error.code == "PENDING_TRANSFER_NOT_FOUND"  # type: ignore[union-attr]
    assert accs["alice"].available == 100 and accs["alice"].balance == 100


def test_reversal_swaps_legs_once_and_only_for_posted_transfers() -> None:
    accs = accounts(alice=100, bob=0)
    original = run([p2p("t1", "alice", "bob", 30)], accs).transfers[0]
    hold = _hold(accs, amount=10)
    out = run([Reverse("r1", "t1"), Reverse("r2", "t1"), Reverse("r3", "h1"), Reverse("r4", "nope")], accs,
              originals={"t1": original, "h1": hold})
    assert [r.error.code if r.error else None for r in out.results] == [
        None, "ALREADY_REVERSED", "NOT_REVERSIBLE", "TRANSFER_NOT_FOUND"]
    assert accs["alice"].balance == 100 and accs["bob"].balance == 0
    assert out.transfers[0].reversal_of == "t1"
    again = run([Reverse("r5", "t1")], accs, originals={"t1": original}, reversed_ids={"t1"}).results[0]
    assert again.error is not None and again.error.code == "ALREADY_REVERSED"


def test_reversal_is_refused_when_the_money_is_gone() -> None:
    accs = accounts(alice=100, bob=0, carol=0)
    original = run([p2p("t1", "alice", "bob", 30)], accs).transfers[0]
    run([p2p("t2", "bob", "carol", 30)], accs)
    out = run([Reverse("r1", "t1")], accs, originals={"t1": original})
    assert out.results[0].error and out.results[0].error.code == "INSUFFICIENT_FUNDS"
    assert accs["bob"].balance == 0


def test_a_transfer_through_an_account_is_judged_by_its_net_effect() -> None:
    accs = accounts(alice=0, bob=0)
    legs = (Leg.debit("bank", 50), Leg.credit("alice", 50), Leg.debit("alice", 50), Leg.credit("bob", 50))
    out = run([Transfer("t1", legs, "route")], accs)
    assert out.results[0].ok and accs["bob"].balance == 50 and accs["alice"].balance == 0


def test_credit_limit_allows_bounded_overdraft() -> None:
    accs = accounts(alice=0)
    accs["alice"].credit_limit = 500
    out = run([p2p("t1", "alice", "bank", 500), p2p("t2", "alice", "bank", 1)], accs)
    assert [r.ok for r in out.results] == [True, False]
    assert accs["alice"].balance == -500
