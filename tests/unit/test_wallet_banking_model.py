"""Pure rules for real names, cards, fees, tiers and bank orders."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobipay.kernel.errors import MobipayError
from mobipay.kernel.msisdn import mask_name
from mobipay.orders.model import OrderState, PartnerStatus, check_settle, next_check_s
from mobipay.orders.signed_http import parse_statement
from mobipay.wallet.model import (
    CardType,
    CashOutFee,
    KycTier,
    Usage,
    WalletLimits,
    check_card_number,
    check_limits,
    check_real_name,
    luhn_complete,
    mask_card,
    mask_id_card,
)
from mobipay.wallet.reference_data import card_bins


def code(fn: object, *args: object) -> str:
    with pytest.raises(MobipayError) as info:
        fn(*args)  # type: ignore[operator]
    return info.value.code


def test_real_names() -> None:
    assert check_real_name(" 王小明 ") == "王小明"
    assert check_real_name("阿依古丽•买买提") == "阿依古丽·买买提"
    assert check_real_name("John Smith") == "John Smith"
    for bad in ("王", "", "王1明", "<script>", 42, "x" * 31):
        assert code(check_real_name, bad) == "INVALID_REAL_NAME"
    assert (mask_name("王小明"), mask_name("李明"), mask_name("明")) == ("**明", "*明", "*")


def test_card_bins_and_masks() -> None:
    bins = card_bins()
    assert len(bins) >= 20
    icbc = luhn_complete("622202" + "123456789012")
    assert bins.lookup(icbc).bank_code == "ICBC" and bins.lookup(icbc).card_type is CardType.DEBIT
    assert bins.lookup(luhn_complete("439225" + "1234567890")).card_type is CardType.CREDIT
    assert code(bins.lookup, "9999990000000000") == "CARD_NOT_SUPPORTED"
    assert mask_card(icbc) == f"622202*********{icbc[-4:]}"
    assert mask_id_card("11010519491231002X") == "1*************002X"


@given(st.text(alphabet="0123456789", min_size=11, max_size=18))
def test_luhn_complete_always_checks(partial: str) -> None:
    assert check_card_number(luhn_complete(partial)).startswith(partial)


def test_cash_out_fee_rounds_up_and_has_a_minimum() -> None:
    fee = CashOutFee(bps=10, minimum=10)
    assert [fee.of(a) for a in (1, 10_000, 10_001, 50_000, 1_000_000)] == [10, 10, 11, 50, 1_000]
    assert CashOutFee(0, 0).of(5_000) == 0


@given(st.integers(min_value=1, max_value=10**12), st.integers(min_value=0, max_value=10_000))
def test_fee_is_never_under_the_rate(amount: int, bps: int) -> None:
    fee = CashOutFee(bps=bps, minimum=0).of(amount)
    assert fee * 10_000 >= amount * bps > (fee - 1) * 10_000


def test_tier_limits() -> None:
    limits = WalletLimits()
    used = Usage(lifetime=90_000, year=2026, year_total=9_990_000, day=date(2026, 5, 1), day_total=0)
    assert code(check_limits, KycTier.TIER_1, 10_001, used, limits) == "LIMIT_EXCEEDED"
    check_limits(KycTier.TIER_1, 10_000, used, limits)
    assert code(check_limits, KycTier.TIER_2, 10_001, used, limits) == "LIMIT_EXCEEDED"
    check_limits(KycTier.TIER_2, 10_000, used, limits)
    check_limits(KycTier.TIER_3, 5_000_000, used, limits)  # 200,000 CNY a year
    assert code(check_limits, KycTier.TIER_3, 5_000_001, used, limits) == "LIMIT_EXCEEDED"  # per transaction


def test_bank_orders_settle_once() -> None:
    P, S, F = OrderState.PENDING, OrderState.SUCCEEDED, OrderState.FAILED
    assert check_settle(P, S) and check_settle(P, F)
    assert not check_settle(S, S) and not check_settle(F, F)  # the same answer again: nothing to do
    assert code(check_settle, S, F) == "ORDER_CONFLICT"
    assert code(check_settle, F, S) == "ORDER_CONFLICT"
    assert [next_check_s(n) for n in (0, 1, 2, 10, 40)] == [5, 10, 20, 3600, 3600]


def test_statement_parsing() -> None:
    text = "order_id,ref,type,amount_fen,status,completed_at\nbo_1,B1,debit,100,succeeded,2026-11-25T01:00:00\n"
    [line] = parse_statement(text)
    assert (line.order_id, line.amount, line.status) == ("bo_1", 100, PartnerStatus.SUCCEEDED)
