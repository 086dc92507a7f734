"""Tourism rules, pure: working days over the holiday calendar (National Day 2026, the Spring
Festival, adjusted Saturdays), the 2010 rules' deadlines and refusals, group complaints, the
work order's steps, stay-point detection at its edges, verdicts, evidence magic bytes and hash."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta

import pytest

from mobipay.kernel.clock import SHANGHAI
from mobipay.kernel.errors import MobipayError
from mobipay.tourism.model import (
    Deadlines,
    Fix,
    GroupCandidate,
    OrderState,
    RefusalGround,
    Spot,
    accept_deadline,
    after_acceptance,
    check_sha256,
    check_step,
    distance_m,
    evidence_type,
    group_members,
    holiday_calendar,
    overdue_step,
    parse_calendar,
    refusal_grounds,
    stay_points,
    verdicts,
)

CAL = holiday_calendar()
T0 = datetime(2026, 10, 3, 8, 0, tzinfo=UTC)
LAT, LON = 26.5812, 110.1556


def north(metres: float) -> float:
    """A latitude ``metres`` north of LAT."""
    return LAT + metres / 111_195.0


def track(*spec: tuple[float, float]) -> list[Fix]:
    """Fixes from (minutes after T0, metres north of the anchor)."""
    return [Fix(T0 + timedelta(minutes=m), north(d), LON) for m, d in spec]


# ---------------------------------------------------------------------------- working days

@pytest.mark.parametrize(("start", "n", "due"), [
    (date(2026, 9, 30), 5, date(2026, 10, 13)),  # Wed before National Day: 8, 9, 10 (Saturday worked), 12, 13
    (date(2026, 10, 3), 5, date(2026, 10, 13)),  # inside the holiday: the same
    (date(2026, 9, 18), 5, date(2026, 9, 24)),  # a Friday: Sunday 20 Sept is worked, then Mon-Thu
    (date(2026, 2, 13), 1, date(2026, 2, 14)),  # Spring Festival: Saturday 14 Feb is worked
    (date(2026, 2, 14), 1, date(2026, 2, 24)),  # 15-23 off
    (date(2026, 12, 4), 5, date(2026, 12, 11)),  # an ordinary Friday: Mon-Fri of the next week
    (date(2027, 1, 1), 1, date(2027, 1, 4)),  # a year not in the calendar: weekends only
    (date(2026, 10, 3), 0, date(2026, 10, 3)),
])
def test_working_days_over_the_holiday_calendar(start: date, n: int, due: date) -> None:
    assert CAL.add_working_days(start, n) == due


def test_sunday_20_september_2026_is_a_working_day() -> None:
    assert CAL.is_working_day(date(2026, 9, 20)) and not CAL.is_working_day(date(2026, 10, 5))
    assert CAL.is_working_day(date(2026, 10, 10)) and not CAL.is_working_day(date(2026, 10, 11))
    assert CAL.working_days_between(date(2026, 9, 30), date(2026, 10, 13)) == 5


def test_a_malformed_calendar_is_refused() -> None:
    with pytest.raises(ValueError, match="line 2"):
        parse_calendar("date,kind,name\n2026-10-01,holiday,x\n")


def test_deadlines_end_at_midnight_beijing_time() -> None:
    received = datetime(2026, 9, 30, 17, 0, tzinfo=SHANGHAI)
    by = accept_deadline(received, CAL)
    assert by.astimezone(SHANGHAI) == datetime(2026, 10, 13, 23, 59, 59, 999999, tzinfo=SHANGHAI)
    reply, mediate = after_acceptance(datetime(2026, 10, 12, 1, 0, tzinfo=SHANGHAI))
    assert reply.astimezone(SHANGHAI).date() == date(2026, 10, 22)
    assert mediate.astimezone(SHANGHAI).date() == date(2026, 12, 11)
    d = Deadlines(by, reply, mediate)
    assert overdue_step(OrderState.RECEIVED, by, d) is None
    assert overdue_step(OrderState.RECEIVED, by + timedelta(seconds=1), d) == "accept"
    assert overdue_step(OrderState.ACCEPTED, reply + timedelta(seconds=1), d) == "reply"
    assert overdue_step(OrderState.REPLIED, reply + timedelta(days=1), d) is None
    assert overdue_step(OrderState.REPLIED, mediate + timedelta(seconds=1), d) == "mediate"
    assert overdue_step(OrderState.MEDIATED, mediate + timedelta(days=9), d) is None


def test_refusal_grounds() -> None:
    ok = {"before_court": False, "already_handled": False, "in_jurisdiction": True}
    assert refusal_grounds(tour_ended=date(2026, 7, 5), received_on=date(2026, 10, 3), **ok) == []  # day 90
    assert refusal_grounds(tour_ended=date(2026, 7, 4), received_on=date(2026, 10, 3),
                           **ok) == [RefusalGround.TIME_BARRED]  # day 91
    assert refusal_grounds(tour_ended=date(2026, 10, 3), received_on=date(2026, 10, 3), before_court=True,
                           already_handled=False, in_jurisdiction=False) == [RefusalGround.BEFORE_COURT,
                                                                             RefusalGround.NO_JURISDICTION]


def test_steps_of_a_work_order() -> None:
    check_step(OrderState.RECEIVED, OrderState.ACCEPTED)
    check_step(OrderState.ACCEPTED, OrderState.MEDIATED)  # no reply came: mediation goes on
    for now, to in [(OrderState.RECEIVED, OrderState.MEDIATED), (OrderState.REFUSED, OrderState.ACCEPTED),
                    (OrderState.MEDIATED, OrderState.TERMINATED)]:
        with pytest.raises(MobipayError) as info:
            check_step(now, to)
        assert info.value.code == "WORK_ORDER_STATE_CONFLICT"


def test_group_complaints_need_four_complainants_with_one_cause() -> None:
    three = [GroupCandidate(f"o{i}", "a", "itinerary_skipped", 1) for i in range(3)]
    assert group_members(three) == {}
    assert group_members([*three, GroupCandidate("o9", "a", "forced_shopping", 1)]) == {}
    assert group_members([*three, GroupCandidate("o9", "b", "itinerary_skipped", 1)]) == {}
    assert group_members([*three, GroupCandidate("o3", "a", "itinerary_skipped", 1)]) == {
        ("a", "itinerary_skipped"): ["o0", "o1", "o2", "o3"]}
    assert group_members([GroupCandidate("o", "a", "safety", 4)]) == {("a", "safety"): ["o"]}


# ---------------------------------------------------------------------------- stay points

def test_no_fixes_and_one_fix_make_no_stop() -> None:
    assert stay_points([]) == []
    assert stay_points(track((0, 0))) == []


def test_a_stay_of_exactly_the_duration_counts_and_a_minute_less_does_not() -> None:
    exact = stay_points(track(*[(m, 0) for m in range(0, 21)]))
    assert len(exact) == 1 and exact[0].minutes == 20 and exact[0].fixes == 21
    assert stay_points(track(*[(m, 0) for m in range(0, 20)])) == []


def test_the_distance_threshold_is_inclusive() -> None:
    inside = stay_points(track((0, 0), (10, 199.0), (20, 0)))
    assert len(inside) == 1
    outside = stay_points(track((0, 0), (10, 201.0), (20, 0), (30, 0)))
    assert len(outside) == 0  # the anchor's run breaks at 10 min; from 20 min only 10 minutes remain


def test_a_stay_at_the_end_of_the_track_is_kept() -> None:
    drive = [(m, m * 800.0) for m in range(0, 10)]  # 48 km/h away from the anchor
    stay = [(m, 8_000.0) for m in range(10, 45)]
    stops = stay_points(track(*drive, *stay))
    assert len(stops) == 1 and stops[0].arrived == T0 + timedelta(minutes=10)
    assert stops[0].left == T0 + timedelta(minutes=44)


def test_two_stays_and_the_drive_between() -> None:
    spec = [(m, 0.0) for m in range(0, 31)] + [(30 + k, k * 700.0) for k in range(1, 10)]
    spec += [(40 + m, 6_300.0) for m in range(0, 25)]
    stops = stay_points(track(*spec))
    assert [round(s.minutes) for s in stops] == [30, 25]  # the second from the last drive fix


def test_a_gap_in_the_track_ends_a_stay() -> None:
    stops = stay_points(track((0, 0), (10, 0), (40, 0), (45, 0)))  # 30 minutes unknown in between
    assert stops == []
    assert len(stay_points(track((0, 0), (10, 0), (40, 0)), max_gap=timedelta(hours=1))) == 1


def test_gps_jitter_inside_the_radius_is_one_stop_and_thresholds_are_configurable() -> None:
    jitter = [(m, (m * 37 % 11 - 5) * 15.0) for m in range(0, 40)]  # ±75 m
    assert len(stay_points(track(*jitter))) == 1
    assert stay_points(track(*jitter), distance_m_=50) == []
    assert stay_points(track(*jitter), duration=timedelta(minutes=45)) == []
    with pytest.raises(ValueError, match="positive"):
        stay_points([], distance_m_=0)


def test_fixes_out_of_order_are_sorted() -> None:
    fixes = track(*[(m, 0) for m in range(0, 25)])
    assert stay_points(list(reversed(fixes))) == stay_points(fixes)


def test_verdicts_visited_with_arrival_or_not_with_the_closest_approach() -> None:
    fixes = track(*[(m, 0) for m in range(0, 30)], *[(30 + k, k * 500.0) for k in range(1, 6)])
    stops = stay_points(fixes)
    here = Spot("s1", "here", north(50), LON, 300)
    far = Spot("s2", "far", north(5_000), LON, 300)
    v1, v2 = verdicts([here, far], fixes, stops)
    assert v1.visited and v1.arrived == T0 and v1.left == T0 + timedelta(minutes=29)
    assert not v2.visited and v2.arrived is None and v2.closest_at == T0 + timedelta(minutes=35)
    assert v2.closest_m == pytest.approx(2_500, abs=5)
    assert distance_m(LAT, LON, north(1000), LON) == pytest.approx(1000, abs=1)


# ---------------------------------------------------------------------------- evidence

def test_evidence_known_by_its_magic_bytes() -> None:
    assert evidence_type(b"\xff\xd8\xff\xe0" + bytes(20))[:2] == ("photo", "image/jpeg")
    assert evidence_type(b"\x89PNG\r\n\x1a\n" + bytes(20))[1] == "image/png"
    assert evidence_type(b"\x00\x00\x00\x18ftypM4A " + bytes(20))[:2] == ("audio", "audio/mp4")
    assert evidence_type(b"\x1a\x45\xdf\xa3" + bytes(20))[1] == "audio/webm"
    assert evidence_type(b"RIFF\x00\x00\x00\x00WAVEfmt " + bytes(8))[1] == "audio/wav"
    for bad in (b"%PDF-1.7 not a photo", b"\xff\xd8\xff", b""):
        with pytest.raises(MobipayError) as info:
            evidence_type(bad)
        assert info.value.code == "EVIDENCE_NOT_MEDIA"
    with pytest.raises(MobipayError) as big:
        evidence_type(b"\xff\xd8\xff" + bytes(21 * 1024 * 1024))
    assert big.value.code == "EVIDENCE_TOO_LARGE"


def test_a_changed_file_does_not_match_its_capture_hash() -> None:
    data = b"\xff\xd8\xff\xe0photo"
    sha = hashlib.sha256(data).hexdigest()
    assert check_sha256(data, sha.upper()) == sha
    with pytest.raises(MobipayError) as info:
        check_sha256(data + b"!", sha)
    assert info.value.code == "EVIDENCE_HASH_MISMATCH"
