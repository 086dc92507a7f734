"""Money: integer minor units only, allocation never loses or creates a fen."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobipay.kernel.errors import InvalidAmount, InvalidCurrency
from mobipay.kernel.money import Money, allocate, check_amount


@pytest.mark.parametrize("bad", [1.0, 0.5, "100", True, None, 0, -1, 10**16])
def test_check_amount_refuses_non_positive_integers_and_non_integers(bad: object) -> None:
    with pytest.raises(InvalidAmount) as info:
        check_amount(bad)
    assert info.value.code == "INVALID_AMOUNT"


def test_check_amount_accepts_positive_int() -> None:
    assert check_amount(1) == 1
    assert check_amount(0, allow_zero=True) == 0


def test_money_refuses_float_and_unknown_currency() -> None:
    with pytest.raises(InvalidAmount):
        Money(1.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidCurrency):
        Money(100, "XXX")


def test_money_arithmetic_stays_in_one_currency() -> None:
    assert Money(150) + Money(50) == Money(200)
    assert Money(150) - Money(200) == Money(-50)
    with pytest.raises(InvalidCurrency):
        Money(1, "CNY") + Money(1, "USD")


def test_format_for_display() -> None:
    assert Money(12345).format() == "¥123.45"
    assert Money(-5).format() == "-¥0.05"
    assert Money(100, "JPY").format() == "JPY 100"


def test_allocate_spreads_the_remainder() -> None:
    assert allocate(100, [1, 1, 1]) == [34, 33, 33]
    assert allocate(5, [3, 7]) == [2, 3]  # equal remainders: the earlier part gets the fen
    assert allocate(7, [1, 2]) == [2, 5]
    assert Money(10).allocate([1, 3]) == [Money(3), Money(7)]


def test_allocate_refuses_bad_ratios() -> None:
    with pytest.raises(InvalidAmount):
        allocate(10, [])
    with pytest.raises(InvalidAmount):
        allocate(10, [0, 0])
    with pytest.raises(InvalidAmount):
        allocate(10, [1, -1])


@given(st.integers(min_value=0, max_value=10**12), st.lists(st.integers(min_value=0, max_value=1000), min_size=1,
                                                            max_size=12).filter(lambda r: sum(r) > 0))
def test_allocate_is_exact_and_proportional(amount: int, ratios: list[int]) -> None:
    parts = allocate(amount, ratios)
    assert sum(parts) == amount
    total = sum(ratios)
    for part, ratio in zip(parts, ratios, strict=True):
        exact = amount * ratio / total
        assert abs(part - exact) < 1 + 1e-9
        if ratio == 0:
            assert part == 0
