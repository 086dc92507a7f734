"""Pure rural rules: tiers as data, the commission split, limits at their edges, the fraud
rules, the marketplace fee and escrow states, and the agents' SMS grammar (which clashes
with no other SMS command)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mobipay.channels.sms.grammar import KEYWORDS
from mobipay.kernel.errors import MobipayError
from mobipay.rural.model import (
    MAX_AMOUNT,
    SMS_WORDS,
    AgentLimits,
    Flag,
    Location,
    OrderState,
    TxKind,
    check_cash_in_limits,
    check_cash_out_limits,
    check_dispute,
    check_pin,
    fraud_flags,
    is_split_deposit,
    parse_sms,
    platform_fee,
    split,
    tier_of,
    tiers,
)

NOW = datetime(2026, 11, 10, 2, 0, tzinfo=UTC)


def test_tiers_are_data_and_cover_every_amount() -> None:
    assert {t.kind for t in tiers()} == {"cash_in", "cash_out"}
    assert tier_of(TxKind.CASH_OUT, 10_000).fee == 100 and tier_of(TxKind.CASH_OUT, 10_001).fee == 300
    assert tier_of(TxKind.CASH_IN, MAX_AMOUNT).commission == 600
    for bad in (99, MAX_AMOUNT + 1, 0, -5):
        with pytest.raises(MobipayError):
            tier_of(TxKind.CASH_IN, bad)


def test_commission_split() -> None:
    assert split(300, 20, True) == (240, 60)
    assert split(30, 20, True) == (24, 6)
    assert split(31, 20, False) == (31, 0)
    assert sum(split(7, 33, True)) == 7  # nothing lost to rounding


def test_cash_out_limits_at_their_edges() -> None:
    lim = AgentLimits(max_float=1_000, daily_cash_out=800, customer_daily_cash_out=500, customer_daily_cash_in=400)
    check_cash_out_limits(lim, 500, float_now=500, agent_today=300, customer_today=0)  # each exactly at its limit
    for kw, code in ((dict(float_now=501, agent_today=0, customer_today=0), "AGENT_LIMIT_EXCEEDED"),
                     (dict(float_now=0, agent_today=301, customer_today=0), "AGENT_LIMIT_EXCEEDED"),
                     (dict(float_now=0, agent_today=0, customer_today=1), "RURAL_CUSTOMER_LIMIT_EXCEEDED")):
        with pytest.raises(MobipayError) as info:
            check_cash_out_limits(lim, 500, **kw)
        assert info.value.code == code
    check_cash_in_limits(lim, 400, customer_today=0)
    with pytest.raises(MobipayError):
        check_cash_in_limits(lim, 401, customer_today=0)


def test_split_deposits_farm_commission_only_when_apart_earns_more() -> None:
    assert not is_split_deposit([100_000], 100_000)  # two: not yet a pattern
    assert is_split_deposit([100_000, 100_000], 100_000)  # 3 x 3.00 > 6.00 for 3,000 CNY
    assert not is_split_deposit([400_000, 400_000], 400_000)  # big deposits: 3 x 6.00, no more than together
    assert not is_split_deposit([10_000, 10_000], 10_000)  # 3 x 0.30 < 1.00 for 300 CNY at once: no gain
    assert is_split_deposit([50_000, 50_000, 50_000], 50_000)  # 4 x 1.00 > 3.00 for 2,000 CNY


def test_fraud_rules() -> None:
    assert fraud_flags(TxKind.CASH_IN, customer="+8613600136001", agent_numbers=["+8613600136001"],
                       earlier_deposits=[], amount=1_000, registered_here_at=None, now=NOW) == [Flag.SELF_DEPOSIT]
    assert fraud_flags(TxKind.CASH_OUT, customer="+8613700137001", agent_numbers=[], earlier_deposits=[],
                       amount=1_000, registered_here_at=NOW - timedelta(days=2), now=NOW) == \
        [Flag.NEW_NUMBER_SAME_AGENT]
    assert fraud_flags(TxKind.CASH_OUT, customer="+8613700137001", agent_numbers=[], earlier_deposits=[],
                       amount=1_000, registered_here_at=NOW - timedelta(days=3), now=NOW) == []
    assert fraud_flags(TxKind.CASH_IN, customer="+8613700137001", agent_numbers=["+8613600136001"],
                       earlier_deposits=[], amount=1_000, registered_here_at=None, now=NOW) == []


def test_marketplace_fee_and_disputes() -> None:
    assert platform_fee(13_600, 300) == 408 and platform_fee(50, 300) == 2 and platform_fee(1, 300) == 0
    check_dispute(OrderState.SHIPPED, NOW + timedelta(seconds=1), NOW)
    for state, release in ((OrderState.RELEASED, NOW + timedelta(days=1)), (OrderState.PAID, NOW)):
        with pytest.raises(MobipayError):
            check_dispute(state, release, NOW)


def test_pin_and_location_checks() -> None:
    assert check_pin("135790") == "135790"
    for bad in ("111111", "123456", "12345", "abcdef"):
        with pytest.raises(MobipayError):
            check_pin(bad)
    with pytest.raises(MobipayError):
        Location("湖南省", "长沙市", "宁乡县", "灰汤镇", " ").check()


def test_sms_grammar() -> None:
    assert parse_sms("YE") is None and parse_sms("ZZ 13800138000 5") is None  # the channel's own
    c = parse_sms("ck 13700137001 150.5")
    assert c is not None and (c.action, c.msisdn, c.amount) == ("cash_in", "+8613700137001", 15_050)
    c = parse_sms("DQ 123456")
    assert c is not None and (c.action, c.code, c.words) == ("confirm_cash_out", "123456", ("agent_cash_out",))
    c = parse_sms("取款 13600136001 200")
    assert c is not None and c.action == "customer_cash_out"
    c = parse_sms("QH rmo_abc 654321")
    assert c is not None and (c.action, c.words, c.code) == ("pickup", ("rmo_abc",), "654321")
    for bad in ("CK 13700137001", "CK 1370013700 5", "CK 13700137001 ５", "DLYE 1", "QH x 12"):
        with pytest.raises(MobipayError):
            parse_sms(bad)


def test_rural_sms_words_clash_with_no_channel_command() -> None:
    channel = {w for words in KEYWORDS.values() for w in words}
    assert not channel & set(SMS_WORDS), channel & set(SMS_WORDS)
    assert not {"0000", "00000", "QX", "TS", "是", "投诉"} & set(SMS_WORDS)  # SP commands to the platform number
