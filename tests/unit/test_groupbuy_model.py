"""Group-buy rules without I/O: a deal's terms, voucher codes and their hashes, group
thresholds, refund promises, the consumption window and the lock on guessed codes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mobipay.groupbuy import model
from mobipay.groupbuy.model import DealTerms, GroupState
from mobipay.kernel.errors import MobipayError

NOW = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)
CATS = frozenset(model.CATEGORIES)
CITIES = frozenset({"北京", "上海"})


def deal(**over: object) -> DealTerms:
    base = DealTerms("  双人套餐 ", "北京", "food", 9_900, 16_800, 100, NOW, NOW + timedelta(days=7), 2,
                     NOW, NOW + timedelta(days=30))
    return replace(base, **over)  # type: ignore[arg-type]


def code_of(exc: pytest.ExceptionInfo[MobipayError]) -> str:
    return exc.value.code


def test_terms_are_checked_and_tidied() -> None:
    assert model.check_terms(deal(), CATS, CITIES).title == "双人套餐"
    cases: list[tuple[dict[str, Any], str]] = [
                        ({"city": "纽约"}, "city"), ({"category": "cars"}, "category"), ({"price": 0}, "price"),
                        ({"market_price": 100}, "market_price"), ({"stock": 0}, "stock"),
                        ({"sale_end": NOW}, "sale_end"), ({"per_user_limit": 0}, "per_user_limit"),
                        ({"valid_until": NOW + timedelta(days=1)}, "valid_until"),
                        ({"group_min": 3}, "group_deadline"), ({"group_min": 101}, "group_min"),
                        ({"lat": 39.9}, "lat"), ({"lat": 91.0, "lon": 1.0}, "lat"), ({"title": " "}, "title")]
    for over, field in cases:
        with pytest.raises(MobipayError) as info:
            model.check_terms(deal(**over), CATS, CITIES)
        assert (info.value.code, info.value.field) == ("DEAL_INVALID", field), over
    ok = deal(group_min=3, group_deadline=NOW + timedelta(days=1), lat=39.9, lon=116.4)
    assert model.check_terms(ok, CATS, CITIES).group_min == 3


def test_codes_are_digits_keyed_and_stable() -> None:
    key, other = b"k" * 32, b"o" * 32
    for length in (10, 11, 12):
        code = model.voucher_code(key, "vch_1", 0, length)
        assert len(code) == length and code.isdigit()
    a = model.voucher_code(key, "vch_1")
    assert a == model.voucher_code(key, "vch_1")  # shown again in the wallet: derived, not stored
    assert a != model.voucher_code(key, "vch_1", 1) and a != model.voucher_code(other, "vch_1")
    assert a != model.voucher_code(key, "vch_2")
    assert len({model.voucher_code(key, f"vch_{n}") for n in range(2_000)}) == 2_000
    assert model.code_hash(key, a) != model.code_hash(other, a) and a not in model.code_hash(key, a)
    with pytest.raises(ValueError, match="10 to 12"):
        model.voucher_code(key, "vch_1", 0, 9)


def test_typed_codes() -> None:
    assert model.normalise_code(" 0332 8085 12 ") == "0332808512"
    assert model.normalise_code("0135-4145-0619") == "013541450619"
    for bad in ("12345", "1234567890123", "03328O8512", "", None, "１２３４５６７８９０"):
        with pytest.raises(MobipayError) as info:
            model.normalise_code(bad)
        assert code_of(info) == "VOUCHER_CODE_INVALID"
    assert model.masked("013541450619") == "********0619"


def test_group_threshold() -> None:
    deadline = NOW + timedelta(hours=1)
    assert model.group_outcome(GroupState.OPEN, 2, 3, deadline, NOW) is GroupState.OPEN
    assert model.group_outcome(GroupState.OPEN, 3, 3, deadline, NOW) is GroupState.FORMED
    assert model.group_outcome(GroupState.OPEN, 2, 3, deadline, deadline) is GroupState.FAILED
    assert model.group_outcome(GroupState.FORMED, 0, 3, deadline, deadline) is GroupState.FORMED
    assert model.group_outcome(GroupState.NONE, 0, 0, None, NOW) is GroupState.NONE


def test_sale_usability_refund_and_reversal() -> None:
    with pytest.raises(MobipayError) as info:
        model.check_on_sale(NOW + timedelta(minutes=1), NOW + timedelta(days=1), GroupState.NONE, NOW)
    assert code_of(info) == "DEAL_NOT_ON_SALE"
    with pytest.raises(MobipayError):
        model.check_on_sale(NOW - timedelta(days=1), NOW, GroupState.NONE, NOW)  # the end is exclusive
    model.check_on_sale(NOW, NOW + timedelta(days=1), GroupState.OPEN, NOW)
    with pytest.raises(MobipayError) as info:
        model.check_quantity(2, 1, 2)
    assert code_of(info) == "DEAL_PER_USER_LIMIT" and "1 more" in info.value.detail
    model.check_quantity(1, 1, 2)
    until = NOW + timedelta(days=1)
    for group, at in [(GroupState.OPEN, NOW), (GroupState.FAILED, NOW), (GroupState.FORMED, until),
                      (GroupState.NONE, NOW - timedelta(seconds=1))]:
        with pytest.raises(MobipayError) as info:
            model.check_usable(group, NOW, until, at)
        assert code_of(info) == "VOUCHER_NOT_USABLE"
    model.check_usable(GroupState.FORMED, NOW, until, NOW)
    with pytest.raises(MobipayError) as info:
        model.check_refundable(False, GroupState.NONE, until, NOW)
    assert code_of(info) == "VOUCHER_REFUND_NOT_ALLOWED"
    model.check_refundable(True, GroupState.NONE, until, until + timedelta(days=9))
    model.check_reversible("consumed", NOW, NOW + model.REVERSE_WINDOW)  # the last minute still counts
    for state, at in [("consumed", NOW + model.REVERSE_WINDOW + timedelta(seconds=1)), ("settled", NOW)]:
        with pytest.raises(MobipayError) as info:
            model.check_reversible(state, NOW, at)
        assert code_of(info) == "CONSUMPTION_NOT_REVERSIBLE"


def test_guess_lockout_and_distance() -> None:
    failures, locked = 0, None
    for _ in range(model.GUESS_LOCKOUT.tries - 1):
        failures, locked = model.GUESS_LOCKOUT.after_failure(failures, NOW, NOW)
        assert locked is None
    failures, locked = model.GUESS_LOCKOUT.after_failure(failures, NOW, NOW)
    assert locked == NOW + timedelta(minutes=30)
    assert model.distance_km(39.90, 116.40, 39.90, 116.40) == 0
    assert 1_060 < model.distance_km(39.90, 116.40, 31.23, 121.47) < 1_080  # Beijing–Shanghai
