"""SP governance rules: confirmation asked or skipped by each rule with its reason, the 24 h
reply window, the 72 h waiver at its edge, the double refund, the complaint rate, every
step of the penalty ladder, card escalation and expiry."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest

from mobipay.kernel.clock import SHANGHAI
from mobipay.sp.model import (
    CATALOGUE,
    CLASSES,
    LEVELS,
    RULES,
    ConfirmationPolicy,
    Cycle,
    Measure,
    OrderFacts,
    Penalty,
    Record,
    ReplyOutcome,
    Service,
    Sp,
    SpState,
    Step,
    SubState,
    complaint_rate,
    complaint_violation,
    confirmation_text,
    decide_confirmation,
    describe,
    double_refund,
    expiry,
    fee_deduction,
    first_charge_due,
    is_yes,
    next_month_start,
    reply_outcome,
    rule,
    split_fees,
    waived,
)

NOW = datetime(2026, 12, 4, 6, 0, tzinfo=UTC)  # 14:00 in Shanghai
OLD_SP = Sp("10661234", "天气通", "B2-20060001", "4008101234", 8500, NOW - timedelta(days=400))
SERVICE = Service("10661234", "TQ", "天气预报", 500, Cycle.MONTHLY)
POLICY = ConfirmationPolicy()


def facts(sp: Sp = OLD_SP, service: Service = SERVICE, at: datetime = NOW, recent: int = 1, used: bool = True,
          night: int = 0) -> OrderFacts:
    return OrderFacts(sp, service, at, recent, used, night)


def test_confirmation_sms_names_sp_service_price_cycle_hotline() -> None:
    text = confirmation_text(OLD_SP, SERVICE)
    for part in ("天气通", "天气预报", "5.00元/月", "4008101234", "是", "24小时"):
        assert part in text
    per_message = dataclasses.replace(SERVICE, cycle=Cycle.PER_MESSAGE, price=10)
    assert "0.10元/条" in confirmation_text(OLD_SP, per_message)
    assert is_yes("是") and is_yes(" y ") and is_yes("Y。") and is_yes("yes") and not is_yes("否") and not is_yes("N")


def test_no_rule_fires_then_the_policy_decides() -> None:
    d = decide_confirmation(facts(), POLICY)
    assert (d.ask, d.rule) == (False, "policy")
    d = decide_confirmation(facts(), dataclasses.replace(POLICY, ask_by_default=True))
    assert (d.ask, d.rule) == (True, "policy") and "every order" in d.reason


@pytest.mark.parametrize(("name", "case"), [
    ("forced", facts(sp=dataclasses.replace(OLD_SP, forced_confirmation=True))),
    ("new_sp", facts(sp=dataclasses.replace(OLD_SP, registered_at=NOW - timedelta(days=89)))),
    ("yellow_card", facts(sp=dataclasses.replace(OLD_SP, yellow_level=1))),
    ("burst", facts(recent=3)),
    ("first_use", facts(used=False)),
    ("night_bulk", facts(at=datetime(2026, 12, 4, 3, 0, tzinfo=SHANGHAI), night=50)),
    ("price", facts(service=dataclasses.replace(SERVICE, price=1000))),
])
def test_each_rule_asks_with_its_reason(name: str, case: OrderFacts) -> None:
    d = decide_confirmation(case, POLICY)
    assert d.ask and d.rule == name
    assert d.reason == next(r.reason for r in RULES if r.name == name)


def test_rules_at_their_edges_do_not_fire() -> None:
    assert not decide_confirmation(facts(sp=dataclasses.replace(OLD_SP, registered_at=NOW - timedelta(days=90))),
                                   POLICY).ask
    assert not decide_confirmation(facts(recent=2), POLICY).ask
    assert not decide_confirmation(facts(at=datetime(2026, 12, 4, 6, 0, tzinfo=SHANGHAI), night=500), POLICY).ask
    assert not decide_confirmation(facts(at=datetime(2026, 12, 4, 3, 0, tzinfo=SHANGHAI), night=49), POLICY).ask
    assert not decide_confirmation(facts(service=dataclasses.replace(SERVICE, price=999)), POLICY).ask


def test_the_first_rule_that_fires_is_the_recorded_reason() -> None:
    d = decide_confirmation(facts(sp=dataclasses.replace(OLD_SP, forced_confirmation=True), used=False), POLICY)
    assert d.rule == "forced"


def test_reply_window_is_24_hours_half_open() -> None:
    assert reply_outcome(SubState.AWAITING, NOW, NOW + timedelta(hours=23, minutes=59)) is ReplyOutcome.CONFIRMED
    assert reply_outcome(SubState.AWAITING, NOW, NOW + timedelta(hours=24)) is ReplyOutcome.LATE
    assert reply_outcome(SubState.LAPSED, NOW, NOW) is ReplyOutcome.LATE
    assert reply_outcome(SubState.ACTIVE, NOW, NOW) is ReplyOutcome.ALREADY
    assert reply_outcome(SubState.CANCELLED, NOW, NOW) is ReplyOutcome.NOTHING


def test_72_hour_waiver_at_its_edge() -> None:
    assert waived(NOW, NOW + timedelta(hours=72))
    assert not waived(NOW, NOW + timedelta(hours=72, seconds=1))
    assert first_charge_due(NOW) == NOW + timedelta(hours=72)


def test_months_and_refunds() -> None:
    assert next_month_start(datetime(2026, 12, 31, 17, 0, tzinfo=UTC)) == datetime(2027, 2, 1, tzinfo=SHANGHAI)
    assert next_month_start(datetime(2026, 12, 4, tzinfo=UTC)) == datetime(2027, 1, 1, tzinfo=SHANGHAI)
    assert double_refund(500) == 1000
    assert split_fees(1001, 8500) == (850, 151)
    assert fee_deduction(999, 30) == 299


def test_sp_state_is_the_worst_measure() -> None:
    assert OLD_SP.state is SpState.ACTIVE and OLD_SP.takes_orders
    assert dataclasses.replace(OLD_SP, settlement_suspended=True).state is SpState.SETTLEMENT_SUSPENDED
    shielded = dataclasses.replace(OLD_SP, settlement_suspended=True, port_shielded=True)
    assert shielded.state is SpState.PORT_SHIELDED and not shielded.takes_orders
    assert dataclasses.replace(shielded, exited=True).state is SpState.EXITED


def test_complaint_rate_per_10000_and_thresholds() -> None:
    assert complaint_rate(3, 2_000) == 15
    assert complaint_rate(1, 3) == Fraction(10_000, 3)
    assert complaint_violation(Fraction(999, 100)) is None
    assert complaint_violation(Fraction(10)) == ("complaints", "minor")
    assert complaint_violation(Fraction(20)) == ("complaints", "serious")
    assert complaint_violation(Fraction(50)) == ("complaints", "grave")


def test_catalogue_is_five_classes_by_three_levels_each_with_a_ladder() -> None:
    assert len(CLASSES) == 5 and len(LEVELS) == 3 and len(CATALOGUE) == 15
    for (cls, _), ladder in CATALOGUE.items():
        assert len(ladder) == 3
        for rung in ladder:
            for s in rung:
                if s.measure is Measure.DEDUCT_FEES:
                    assert 10 <= s.value <= 30
                if s.measure is Measure.YELLOW_CARD:
                    assert 1 <= s.value <= 3
        if cls in ("unconfirmed", "complaints"):
            assert all(Step(Measure.FORCE_CONFIRMATION) in rung for rung in ladder)


def offences(cls: str, n: int, at: datetime = NOW) -> Record:
    return Record(violations=[(cls, at - timedelta(days=i + 1)) for i in range(n)])


def test_every_step_of_the_minor_ladder() -> None:
    r1 = rule("pricing", "minor", Record(), NOW)
    assert r1.rung == 1 and r1.steps == (Step(Measure.DEDUCT_POINTS, 10), Step(Measure.DEDUCT_FEES, 10))
    r2 = rule("pricing", "minor", offences("pricing", 1), NOW)
    assert r2.rung == 2 and Step(Measure.YELLOW_CARD, 1) in r2.steps and not r2.needs_checker
    r3 = rule("pricing", "minor", offences("pricing", 2), NOW)
    assert r3.rung == 3 and Step(Measure.YELLOW_CARD, 2) in r3.steps and Step(Measure.FORCE_CONFIRMATION) in r3.steps
    assert rule("pricing", "minor", offences("pricing", 7), NOW).rung == 3  # the last rung repeats
    # another class's offences do not climb this ladder; offences older than a year do not count
    assert rule("pricing", "minor", offences("spam", 2), NOW).rung == 1
    assert rule("pricing", "minor", offences("pricing", 2, NOW - timedelta(days=365)), NOW).rung == 1


def test_every_step_of_the_serious_and_grave_ladders() -> None:
    s = [rule("spam", "serious", offences("spam", n), NOW) for n in range(3)]
    assert Step(Measure.YELLOW_CARD, 1) in s[0].steps and Step(Measure.FORCE_CONFIRMATION) in s[0].steps
    assert Step(Measure.SUSPEND_SETTLEMENT) in s[1].steps and Step(Measure.DEDUCT_POINTS, 45) in s[1].steps
    assert {Step(Measure.YELLOW_CARD, 3), Step(Measure.SHIELD_PORT)} <= set(s[2].steps)
    g = [rule("billing", "grave", offences("billing", n), NOW) for n in range(3)]
    assert Step(Measure.SERVICE_OFFLINE) in g[0].steps and not g[0].needs_checker
    assert Step(Measure.RED_CARD) in g[1].steps and g[1].needs_checker
    assert g[2].steps == (Step(Measure.EXIT),) and g[2].needs_checker
    assert "exit" in describe(g[2].steps) and "red card" in describe(g[1].steps)


def card(level: int, at: datetime = NOW - timedelta(days=1)) -> Penalty:
    return Penalty(Measure.YELLOW_CARD, level, at, expiry(Step(Measure.YELLOW_CARD, level), at))


def test_a_yellow_card_while_holding_one_goes_higher_then_red_then_exit() -> None:
    r = rule("pricing", "minor", Record([("pricing", NOW - timedelta(days=2))], [card(1)]), NOW)
    assert Step(Measure.YELLOW_CARD, 2) in r.steps and r.escalated
    r = rule("pricing", "minor", Record([("pricing", NOW - timedelta(days=2))], [card(3)]), NOW)
    assert Step(Measure.RED_CARD) in r.steps and Step(Measure.SHIELD_PORT) in r.steps and r.needs_checker
    red = Penalty(Measure.RED_CARD, 0, NOW - timedelta(days=1), NOW + timedelta(days=300))
    r = rule("billing", "grave", Record([("billing", NOW - timedelta(days=2))], [red]), NOW)
    assert r.steps == (Step(Measure.EXIT),) and "exit" in r.escalated[0]


def test_points_and_cards_expire() -> None:
    at = NOW - timedelta(days=100)
    record = Record(penalties=[card(1, at), card(2, at),
                               Penalty(Measure.DEDUCT_POINTS, 30, at, expiry(Step(Measure.DEDUCT_POINTS, 30), at))])
    assert record.yellow_level(NOW) == 2  # the level-1 card (90 days) has expired, the level-2 (180) not
    assert record.yellow_level(at + timedelta(days=180)) == 0
    assert record.points(NOW) == 70 and record.points(at + timedelta(days=365)) == 100
    assert expiry(Step(Measure.SHIELD_PORT), NOW) is None  # until a decision lifts it
    with pytest.raises(KeyError):
        rule("fraud", "minor", Record(), NOW)
