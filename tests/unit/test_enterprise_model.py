"""The enterprise one-card's pure rules: meal windows at their edges, per-meal and per-day
caps inside one payment, the month-end rule, CSV rows, attendance days, reader signatures."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from mobipay.enterprise.model import (
    DEFAULT_RULES,
    MonthEnd,
    attendance_days,
    attendance_line,
    csv_rows,
    month_bounds,
    month_end_split,
    new_reader_key,
    old_money_left,
    previous_month,
    reader_sign,
    reader_signing_string,
    reader_verifies,
    rules_from,
    split_payment,
)
from mobipay.kernel.clock import SHANGHAI
from mobipay.kernel.errors import MobipayError

RULES = rules_from({"windows": [{"name": "lunch", "start": "11:00", "end": "13:30"},
                                {"name": "dinner", "start": "17:00", "end": "19:00"}],
                    "weekdays": [1, 2, 3, 4, 5], "per_meal": 2_500, "per_day": 4_000})


def bj(h: int, m: int, s: int = 0, day: int = 7) -> datetime:  # 2026-12-07 is a Monday
    return datetime(2026, 12, day, h, m, s, tzinfo=SHANGHAI)


@pytest.mark.parametrize(("at", "window"), [
    (bj(10, 59, 59), None), (bj(11, 0, 0), "lunch"), (bj(13, 29, 59), "lunch"), (bj(13, 30, 0), None),
    (bj(17, 0), "dinner"), (bj(19, 0), None), (bj(12, 0, day=12), None),  # a Saturday: no allowance
])
def test_meal_window_edges(at: datetime, window: str | None) -> None:
    found = RULES.window_at(at)
    assert (found.name if found else None) == window


def test_split_at_the_window_edges() -> None:
    inside = split_payment(RULES, 1_800, bj(11, 0), balance=50_000, spent_today=0, spent_this_meal=0)
    assert (inside.allowance, inside.wallet, inside.window, inside.reason) == (1_800, 0, "lunch", "")
    last = split_payment(RULES, 1_800, bj(13, 29, 59), balance=50_000, spent_today=0, spent_this_meal=0)
    assert (last.allowance, last.wallet) == (1_800, 0)
    after = split_payment(RULES, 1_800, bj(13, 30), balance=50_000, spent_today=0, spent_this_meal=0)
    assert (after.allowance, after.wallet, after.window, after.reason) == (0, 1_800, "", "outside the meal windows")


def test_caps_and_balance_inside_one_payment() -> None:
    meal = split_payment(RULES, 3_000, bj(12, 0), balance=50_000, spent_today=0, spent_this_meal=0)
    assert (meal.allowance, meal.wallet, meal.reason) == (2_500, 500, "the lunch cap is reached")
    second = split_payment(RULES, 1_000, bj(12, 30), balance=50_000, spent_today=2_000, spent_this_meal=2_000)
    assert (second.allowance, second.wallet) == (500, 500)
    day = split_payment(RULES, 2_500, bj(18, 0), balance=50_000, spent_today=2_500, spent_this_meal=0)
    assert (day.allowance, day.wallet, day.reason) == (1_500, 1_000, "the day's cap is reached")
    poor = split_payment(RULES, 2_000, bj(18, 0), balance=700, spent_today=0, spent_this_meal=0)
    assert (poor.allowance, poor.wallet, poor.reason) == (700, 1_300, "the allowance is used up")
    none = split_payment(RULES, 2_000, bj(18, 0), balance=0, spent_today=0, spent_this_meal=0)
    assert (none.allowance, none.wallet) == (0, 2_000)


def test_no_windows_means_any_time_and_the_day_cap_alone() -> None:
    rules = rules_from({"per_day": 1_000})
    s = split_payment(rules, 1_500, bj(3, 0), balance=5_000, spent_today=0, spent_this_meal=0)
    assert (s.allowance, s.wallet, s.window) == (1_000, 500, "")


def test_month_end_rules() -> None:
    assert month_end_split(DEFAULT_RULES, 1_234) == (0, 1_234)
    roll = rules_from({"month_end": "rollover"})
    assert roll.month_end is MonthEnd.ROLLOVER and month_end_split(roll, 1_234) == (1_234, 0)
    capped = rules_from({"month_end": "rollover", "rollover_cap": 1_000})
    assert month_end_split(capped, 1_234) == (1_000, 234)
    assert month_end_split(capped, -5) == (0, 0)
    # a late month close: December's 30 CNY left, then January's 300 funded and 50 spent
    assert old_money_left(balance=3_000 + 30_000 - 5_000, funded_since=30_000) == 0
    assert old_money_left(balance=3_000 + 30_000 - 1_000, funded_since=30_000) == 2_000


def test_months() -> None:
    start, end = month_bounds("2026-12")
    assert start == datetime(2026, 11, 30, 16, tzinfo=UTC) and end == datetime(2026, 12, 31, 16, tzinfo=UTC)
    assert previous_month(datetime(2026, 12, 31, 16, 0, tzinfo=UTC)) == "2026-12"  # 00:00 Jan 1 Beijing
    assert previous_month(datetime(2026, 12, 31, 15, 59, tzinfo=UTC)) == "2026-11"
    for bad in ("2026-13", "2026-1", "26-12", "2026/12", "２０２６-12"):
        with pytest.raises(MobipayError) as info:
            month_bounds(bad)
        assert info.value.code == "MONTH_INVALID", bad


@pytest.mark.parametrize(("rules", "words"), [
    ({"windows": [{"name": "a", "start": "12:00", "end": "11:00"}]}, "ends before"),
    ({"windows": [{"name": "a", "start": "11:00", "end": "13:00"}, {"name": "b", "start": "12:30", "end": "14:00"}]},
     "overlap"),
    ({"weekdays": [0]}, "weekdays"), ({"per_meal": -1}, "per_meal"), ({"per_meal": 5_000, "per_day": 100}, "more"),
    ({"month_end": "keep"}, "month_end"), ({"colour": "red"}, "unknown"), ({"windows": [{"start": "1:00"}]}, "name"),
])
def test_rules_refused(rules: dict[str, object], words: str) -> None:
    with pytest.raises(MobipayError) as info:
        rules_from(rules)
    assert info.value.code == "ALLOWANCE_RULES_INVALID" and words in info.value.detail


def test_rules_round_trip() -> None:
    assert rules_from(RULES.to_json()) == RULES
    assert rules_from('{"per_day": 100}').per_day == 100


def test_csv_rows() -> None:
    rows = csv_rows("\ufeffphone,name,employee_no\n13800138000,张三,E001\n\n# a comment\n139 0013 9000\n")
    assert [(r.line, r.phone, r.name, r.employee_no) for r in rows] == [
        (2, "13800138000", "张三", "E001"), (5, "139 0013 9000", "", "")]
    with pytest.raises(MobipayError) as info:
        csv_rows("phone\n")
    assert info.value.code == "ENROLMENT_FILE_INVALID"


def test_attendance_days_and_lateness() -> None:
    taps = [bj(8, 55), bj(12, 0), bj(18, 5), bj(9, 1, day=8), bj(17, 31, day=8), bj(9, 0, day=9)]
    days = attendance_days(taps, RULES)
    assert [(d.day.day, d.taps, d.late, d.minutes) for d in days] == [(7, 3, False, 550), (8, 2, True, 510),
                                                                       (9, 1, False, 0)]
    line = attendance_line("emp", "张三", "+8613800138000", days)
    assert (line.days, line.late, line.minutes) == (3, 1, 1_060)
    assert RULES.work_start == time(9, 0)


def test_reader_signatures() -> None:
    seed, public = new_reader_key()
    text = reader_signing_string("rdr_1", "1765000000", "nonce-123", b'{"taps":[]}')
    assert text.splitlines()[0] == "MOBIPAY-READER-V1"
    signature = reader_sign(seed, text)
    assert reader_verifies(public, text, signature)
    assert not reader_verifies(public, text.replace("rdr_1", "rdr_2"), signature)
    assert not reader_verifies(public, text, "not base64!")
