"""The cinema's pure rules: seat maps from their layout, the price floor at 30%, refund tiers
at each edge with the fee rounded down, the change rule, code strings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mobipay.cinema.model import (
    ShowState,
    check_change,
    check_on_sale,
    check_price,
    check_seats,
    code_hash,
    discount_percent,
    grouped,
    min_price,
    normalise_code,
    parse_layout,
    refund_percent,
    refund_quote,
    ticket_code,
)
from mobipay.kernel.errors import MobipayError

SHOW = datetime(2026, 12, 24, 12, 0, tzinfo=UTC)


def code_of(call: object, *args: object, **kwargs: object) -> str:
    with pytest.raises(MobipayError) as info:
        call(*args, **kwargs)  # type: ignore[operator]
    return info.value.code


def test_layout_numbers_seats_per_row_skipping_aisles() -> None:
    seats = parse_layout("SS.SS\n.....\nSXS.S\n")
    assert [c.label if c else None for c in seats.rows[0]] == ["1-1", "1-2", None, "1-3", "1-4"]
    assert all(c is None for c in seats.rows[1])  # a cross aisle takes no row number
    assert [(c.label, c.available) for c in seats.rows[2] if c] == [("2-1", True), ("2-2", False), ("2-3", True),
                                                                    ("2-4", True)]
    assert seats.capacity == 7 and seats.seats["2-2"].chinese == "2排2座"
    assert code_of(parse_layout, "SSZ") == "HALL_INVALID"
    assert code_of(parse_layout, "XX\n..") == "HALL_INVALID"  # nothing to sell
    assert code_of(parse_layout, "") == "HALL_INVALID"


def test_seats_asked_for() -> None:
    hall = parse_layout("SSSSSSSS\nSXSSSSSS")
    assert [s.label for s in check_seats(hall, ["2-3", "1-8", "1-1"])] == ["1-1", "1-8", "2-3"]  # in map order
    assert code_of(check_seats, hall, []) == "SEATS_INVALID"
    assert code_of(check_seats, hall, ["1-1", "1-1"]) == "SEATS_INVALID"
    assert code_of(check_seats, hall, ["2-2"]) == "SEATS_INVALID"  # not sold
    assert code_of(check_seats, hall, ["3-1"]) == "SEATS_INVALID"
    assert code_of(check_seats, hall, [f"1-{n}" for n in range(1, 8)]) == "SEATS_INVALID"  # 7 > 6


def test_price_down_to_30_percent() -> None:
    assert min_price(4_000) == 1_200 and min_price(3_333) == 1_000  # 999.9 rounds up to 1,000 fen
    check_price(4_000, 1_200)
    check_price(4_000, 4_000)
    assert code_of(check_price, 4_000, 1_199) == "SHOW_INVALID"
    assert code_of(check_price, 4_000, 4_001) == "SHOW_INVALID"
    assert code_of(check_price, 0, 0) == "SHOW_INVALID"
    assert discount_percent(4_000, 1_200) == 70 and discount_percent(3_000, 2_999) == 0


@pytest.mark.parametrize(("left", "percent"), [
    (timedelta(days=3), 0),
    (timedelta(hours=24, microseconds=1), 0),
    (timedelta(hours=24), 10),  # "more than 24 h" is strict
    (timedelta(hours=2), 10),  # a tier is "at least so long left"
    (timedelta(hours=2) - timedelta(microseconds=1), 20),
    (timedelta(hours=1), 20),
    (timedelta(hours=1) - timedelta(microseconds=1), 30),
    (timedelta(minutes=30), 30),
])
def test_refund_tiers(left: timedelta, percent: int) -> None:
    assert refund_percent(left) == percent


@pytest.mark.parametrize("left", [timedelta(minutes=30) - timedelta(microseconds=1), timedelta(0),
                                  timedelta(minutes=-10)])
def test_no_refund_within_30_minutes_or_after_the_start(left: timedelta) -> None:
    assert code_of(refund_percent, left) == "TICKET_REFUND_NOT_ALLOWED"


def test_refund_fee_rounds_down_and_cancelled_is_full() -> None:
    q = refund_quote(3_999, SHOW, SHOW - timedelta(hours=5))  # 10% of 39.99 is 399.9 fen
    assert (q.percent, q.fee, q.back) == (10, 399, 3_600)
    q = refund_quote(3_999, SHOW, SHOW - timedelta(minutes=45))  # 30%: 1,199.7 fen
    assert (q.fee, q.back) == (1_199, 2_800)
    assert refund_quote(3_999, SHOW, SHOW + timedelta(hours=1), cancelled=True).back == 3_999
    assert refund_quote(3_999, SHOW, SHOW - timedelta(days=2)).full
    assert code_of(refund_quote, 3_999, SHOW, SHOW - timedelta(days=2), collected=True) == (
        "TICKET_REFUND_NOT_ALLOWED")


def test_change_rule() -> None:
    check_change(0, SHOW, SHOW - timedelta(minutes=30), collected=False)
    assert code_of(check_change, 0, SHOW, SHOW - timedelta(minutes=29, seconds=59), collected=False) == (
        "TICKET_CHANGE_NOT_ALLOWED")
    assert code_of(check_change, 1, SHOW, SHOW - timedelta(days=1), collected=False) == "TICKET_CHANGE_NOT_ALLOWED"
    assert code_of(check_change, 0, SHOW, SHOW - timedelta(days=1), collected=True) == "TICKET_CHANGE_NOT_ALLOWED"


def test_on_sale_until_the_start() -> None:
    check_on_sale(ShowState.ON_SALE, SHOW, SHOW - timedelta(seconds=1))
    assert code_of(check_on_sale, ShowState.ON_SALE, SHOW, SHOW) == "SHOW_NOT_ON_SALE"
    assert code_of(check_on_sale, ShowState.CANCELLED, SHOW, SHOW - timedelta(days=1)) == "SHOW_NOT_ON_SALE"


def test_code_strings() -> None:
    key = b"k" * 32
    code = ticket_code(key, "cno_1")
    assert len(code) == 12 and code.isdigit() and code == ticket_code(key, "cno_1")
    assert ticket_code(key, "cno_1", 1) != code and ticket_code(b"j" * 32, "cno_1") != code
    assert code_hash(key, code) != code_hash(b"j" * 32, code) and code not in code_hash(key, code)
    assert normalise_code(grouped(code)) == code and normalise_code(f" {code[:6]}-{code[6:]} ") == code
    assert grouped("123456789012") == "1234 5678 9012"
    assert code_of(normalise_code, "12345678901") == "TICKET_CODE_INVALID"
    assert code_of(normalise_code, "１２３４５６７８９０１２") == "TICKET_CODE_INVALID"  # full-width digits
