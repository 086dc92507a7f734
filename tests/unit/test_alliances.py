"""The alliance model without I/O: discounts in integer fen (percent rounded down, capped,
never the whole amount), points as multiplier × 1 point per whole yuan paid, the choice of the
best privilege (money before points, deterministic ties), validity, and the rule checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mobipay.instore.alliances import (
    Brand,
    Kind,
    Programme,
    Rule,
    base_points,
    best,
    check_level,
    check_rule,
    describe,
    discount_of,
    parse_brand,
    points_of,
)
from mobipay.kernel.errors import MobipayError

NOW = datetime(2026, 12, 3, 4, 0, tzinfo=UTC)
G, M, E = Brand.GOTONE, Brand.MZONE, Brand.EASYOWN


def programme(pid: str, *rules: Rule, start: datetime = NOW - timedelta(days=1),
              end: datetime = NOW + timedelta(days=1), state: str = "active") -> Programme:
    return Programme(pid, pid, f"{pid} 联盟", "", start, end, state, rules)


@pytest.mark.parametrize(("rule", "amount", "off"), [
    (Rule(G, 0, Kind.PERCENT, 800), 8_800, 704),  # exact
    (Rule(G, 0, Kind.PERCENT, 800), 8_801, 704),  # 704.08 → 704: rounded down
    (Rule(G, 0, Kind.PERCENT, 800), 12, 0),  # 0.96 fen → nothing
    (Rule(G, 0, Kind.PERCENT, 1_250), 999, 124),  # 124.875 → 124
    (Rule(G, 0, Kind.PERCENT, 800, 0, 5_000), 100_000, 5_000),  # capped
    (Rule(G, 0, Kind.PERCENT, 9_000), 2, 1),  # 90 % of 2 fen = 1.8 → 1
    (Rule(G, 0, Kind.FIXED, 500, 5_000), 5_000, 500),
    (Rule(G, 0, Kind.FIXED, 500, 5_000), 4_999, None),  # below the least spend: does not apply
    (Rule(G, 0, Kind.POINTS, 20), 4_599, 0),
    (Rule(G, 0, Kind.PERCENT, 800, 1_000), 999, None),
])
def test_discounts_in_integer_fen(rule: Rule, amount: int, off: int | None) -> None:
    assert discount_of(check_rule(rule), amount) == off


def test_a_discount_never_takes_the_whole_amount() -> None:
    assert discount_of(Rule(G, 0, Kind.FIXED, 500, 501), 501) == 500  # 1 fen still paid
    assert discount_of(Rule(G, 0, Kind.PERCENT, 9_000), 1) == 0


def test_points_are_the_multiplier_times_whole_yuan_paid() -> None:
    assert base_points(4_599) == 45 and base_points(99) == 0
    assert points_of(Rule(G, 0, Kind.POINTS, 20), 4_599) == 90
    assert points_of(Rule(E, 0, Kind.POINTS, 15), 3_300) == 49  # 49.5 → 49
    assert points_of(Rule(G, 0, Kind.PERCENT, 800), 10_000) == 0  # a discount earns no points


def test_best_privilege_money_before_points_then_the_oldest_programme() -> None:
    pts = programme("aln_1", Rule(G, 0, Kind.POINTS, 100))
    pct = programme("aln_2", Rule(G, 0, Kind.PERCENT, 500), Rule(G, 2, Kind.PERCENT, 800))
    fixed = programme("aln_3", Rule(G, 0, Kind.FIXED, 400, 5_000))
    chosen = best([pts, pct, fixed], G, 0, 8_000, NOW)
    assert chosen is not None and (chosen.programme_id, chosen.discount, chosen.paid) == ("aln_2", 400, 7_600)
    # a tie at 400 fen: the older programme (smaller id) and its first rule
    assert chosen.rule == Rule(G, 0, Kind.PERCENT, 500)
    gold = best([pts, pct, fixed], G, 2, 8_000, NOW)
    assert gold is not None and (gold.discount, gold.level) == (640, 2)  # the level's better rule
    small = best([pts, pct, fixed], G, 0, 1_000, NOW)
    assert small is not None and small.discount == 50  # 5 % of 10.00; the fixed rule needs 50.00
    only_points = best([pts], G, 0, 1_000, NOW)
    assert only_points is not None and (only_points.discount, only_points.points) == (0, 100)
    assert best([pts, pct], M, 0, 8_000, NOW) is None  # no rule for M-Zone
    assert best([pts, pct], None, 0, 8_000, NOW) is None  # no brand on record
    assert best([programme("aln_4", Rule(G, 0, Kind.PERCENT, 100))], G, 0, 50, NOW) is None  # 0 fen, 0 points


def test_validity_and_state() -> None:
    future = programme("aln_1", Rule(G, 0, Kind.PERCENT, 5_000), start=NOW + timedelta(seconds=1))
    past = programme("aln_2", Rule(G, 0, Kind.PERCENT, 5_000), end=NOW)  # valid_until excluded
    ended = programme("aln_3", Rule(G, 0, Kind.PERCENT, 5_000), state="ended")
    now = programme("aln_4", Rule(G, 0, Kind.PERCENT, 100), start=NOW)  # valid_from included
    chosen = best([future, past, ended, now], G, 0, 10_000, NOW)
    assert chosen is not None and chosen.programme_id == "aln_4"


@pytest.mark.parametrize(("rule", "field"), [
    (Rule(G, 5, Kind.PERCENT, 500), "min_level"),
    (Rule(M, 1, Kind.PERCENT, 500), "min_level"),  # VIP levels are GoTone's
    (Rule(G, 0, Kind.PERCENT, 0), "value"),
    (Rule(G, 0, Kind.PERCENT, 9_001), "value"),
    (Rule(G, 0, Kind.FIXED, 500, 500), "min_spend"),
    (Rule(G, 0, Kind.FIXED, 0, 500), "min_spend"),
    (Rule(G, 0, Kind.POINTS, 9), "value"),
    (Rule(G, 0, Kind.POINTS, 101), "value"),
    (Rule(G, 0, Kind.POINTS, 20, 0, 100), "cap"),
    (Rule(G, 0, Kind.PERCENT, 500, -1), "min_spend"),
])
def test_bad_rules_are_refused_naming_the_field(rule: Rule, field: str) -> None:
    with pytest.raises(MobipayError) as info:
        check_rule(rule)
    assert (info.value.code, info.value.field) == ("ALLIANCE_INVALID", field)


def test_brands_levels_and_words() -> None:
    assert parse_brand(" GoTone ") is G
    with pytest.raises(MobipayError):
        parse_brand("vodafone")
    assert check_level(G, 4) == 4
    for brand, level in ((G, 5), (E, 1), (G, True)):
        with pytest.raises(MobipayError):
            check_level(brand, level)
    assert describe(Rule(G, 2, Kind.PERCENT, 800, 0, 5_000)) == "立减8%，最高50.00元（金卡及以上）"
    assert describe(Rule(G, 2, Kind.PERCENT, 1_250), english=True) == "12.5% off (gold and above)"
    assert describe(Rule(M, 0, Kind.FIXED, 300, 2_000)) == "满20.00元立减3.00元"
    assert describe(Rule(E, 0, Kind.POINTS, 15), english=True) == "1.5× points"


def test_the_merchants_notification_says_what_the_buyer_paid() -> None:
    from mobipay.merchants.model import TradeRecord, TradeState, trade_notification

    paid = TradeRecord("trd_1", "mch_1", "HX-1", 8_800, "日用品", TradeState.TRADE_SUCCESS, "app_1", "", NOW,
                       NOW + timedelta(minutes=15), "sto_1", paid_at=NOW, privilege_amount=704)
    note = trade_notification(paid, TradeState.TRADE_SUCCESS, 0, notify_id="ntf_1", now=NOW)
    assert (note["total_amount"], note["buyer_pay_amount"], note["privilege_amount"]) == (8_800, 8_096, 704)
    assert paid.refundable == 8_096 and paid.seen_at(NOW).privilege == 704
