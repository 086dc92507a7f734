"""Handset protection rules without a database: the IMEI (Luhn through python-stdnum, TAC),
the pilot's cities, period and window, fee tiers, regions (HK/MO/TW refused), the claim's
state machine, the claim limit, the waiting period and each fraud rule."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

import pytest
from stdnum import luhn

from mobipay.kernel.errors import MobipayError
from mobipay.protection.model import (
    ClaimKind,
    ClaimState,
    PastClaim,
    add_months,
    check_claim,
    check_imei,
    check_move,
    check_region,
    check_second_reviewer,
    city_code,
    deadline,
    fee_transfer_id,
    fraud_flags,
    handset_for,
)
from mobipay.protection.reference_data import halls, handsets, programmes

PILOT = programmes()["hunan-2026"]
NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)
TODAY = date(2026, 11, 20)


def imei(tac: str = "35328111", serial: str = "000001") -> str:
    body = tac + serial
    return body + luhn.calc_check_digit(body)


def code(call: object) -> str:
    with pytest.raises(MobipayError) as info:
        call()  # type: ignore[operator]
    return info.value.code


def test_imei_check_digit_and_tac() -> None:
    good = imei()
    assert check_imei(good) == good
    assert check_imei(f"{good[:2]}-{good[2:8]} {good[8:]}") == good  # as printed on the box
    bad = good[:-1] + str((int(good[-1]) + 1) % 10)
    assert code(lambda: check_imei(bad)) == "IMEI_INVALID"
    assert code(lambda: check_imei(good[:14])) == "IMEI_INVALID"  # no check digit
    assert code(lambda: check_imei("abc")) == "IMEI_INVALID"
    assert handset_for(good, handsets()).name == "Apple iPhone 15"
    assert code(lambda: handset_for(imei("99999999"), handsets())) == "HANDSET_UNKNOWN"


def test_pilot_cities_period_and_window() -> None:
    assert PILOT.cities == {"changsha", "zhuzhou", "hengyang", "changde"}
    assert (PILOT.starts, PILOT.ends) == (date(2026, 9, 1), date(2026, 12, 31))
    assert city_code("长沙市") == "changsha" and city_code("Hengyang") == "hengyang"
    PILOT.check_enrolment(city="常德", today=TODAY, purchased_on=TODAY - timedelta(days=30))
    assert code(lambda: PILOT.check_enrolment(city="beijing", today=TODAY, purchased_on=TODAY)) == \
        "PROTECTION_CITY_NOT_IN_PILOT"
    assert code(lambda: PILOT.check_enrolment(city="changsha", today=date(2026, 8, 31),
                                              purchased_on=date(2026, 8, 30))) == "PROTECTION_OUTSIDE_PERIOD"
    assert code(lambda: PILOT.check_enrolment(city="changsha", today=date(2027, 1, 1),
                                              purchased_on=date(2026, 12, 30))) == "PROTECTION_OUTSIDE_PERIOD"
    PILOT.check_enrolment(city="changsha", today=date(2026, 12, 31), purchased_on=date(2026, 12, 31))
    assert code(lambda: PILOT.check_enrolment(city="changsha", today=TODAY,
                                              purchased_on=TODAY - timedelta(days=31))) == \
        "PROTECTION_ENROLMENT_WINDOW_PASSED"
    assert code(lambda: PILOT.check_enrolment(city="changsha", today=TODAY,
                                              purchased_on=TODAY + timedelta(days=1))) == "PROTECTION_PURCHASE_INVALID"
    assert {h.city for h in halls().values()} == PILOT.cities


def test_fee_tiers_by_price() -> None:
    assert PILOT.tier_for(99_900).monthly_fee == 500
    assert PILOT.tier_for(100_000).monthly_fee == 500  # up to and including
    assert PILOT.tier_for(100_001).monthly_fee == 800
    tier = PILOT.tier_for(599_900)
    assert (tier.handling_fee(ClaimKind.DAMAGE), tier.handling_fee(ClaimKind.THEFT)) == (29_900, 54_900)
    assert code(lambda: PILOT.tier_for(1_000_001)) == "PROTECTION_PRICE_OUT_OF_RANGE"
    assert code(lambda: PILOT.tier_for(0)) == "PROTECTION_PRICE_OUT_OF_RANGE"


def test_regions_mainland_only() -> None:
    assert check_region("cn-hn") == "CN-HN" and check_region("CN") == "CN"
    for place in ("CN-HK", "CN-MO", "CN-TW", "HK", "MO", "TW", "JP"):
        assert code(lambda place=place: check_region(place)) == "PROTECTION_OUTSIDE_MAINLAND"
    assert code(lambda: check_region("Hunan")) == "PROTECTION_REGION_UNKNOWN"


def test_claim_state_machine_and_deadlines() -> None:
    path = [ClaimState.SUBMITTED, ClaimState.APPROVED, ClaimState.FEE_PAID, ClaimState.ALLOCATED,
            ClaimState.READY_FOR_PICKUP, ClaimState.HANDED_OVER]
    for a, b in itertools.pairwise(path):
        check_move(a, b)
    check_move(ClaimState.SUBMITTED, ClaimState.MORE_INFO)
    check_move(ClaimState.MORE_INFO, ClaimState.SUBMITTED)
    check_move(ClaimState.SUBMITTED, ClaimState.SECOND_REVIEW)
    check_move(ClaimState.ALLOCATED, ClaimState.OUT_FOR_DELIVERY)
    assert code(lambda: check_move(ClaimState.SUBMITTED, ClaimState.FEE_PAID)) == "PROTECTION_CLAIM_STATE"
    assert code(lambda: check_move(ClaimState.REJECTED, ClaimState.APPROVED)) == "PROTECTION_CLAIM_STATE"
    assert code(lambda: check_move(ClaimState.HANDED_OVER, ClaimState.ALLOCATED)) == "PROTECTION_CLAIM_STATE"
    assert deadline(ClaimState.SUBMITTED, NOW) == NOW + timedelta(days=2)
    assert deadline(ClaimState.HANDED_OVER, NOW) is None
    assert code(lambda: check_second_reviewer("alice", "alice")) == "PROTECTION_SECOND_REVIEWER"
    check_second_reviewer("alice", "bob")


def claim(**over: object) -> None:
    args: dict[str, object] = dict(kind=ClaimKind.LOSS, occurred_on=TODAY - timedelta(days=1), today=TODAY,
                                   enrolled_on=date(2026, 9, 10), photos=[], police_report=None, enrolment_id="e1",
                                   past=[], now=NOW)
    args.update(over)
    check_claim(PILOT, **args)  # type: ignore[arg-type]


def past(state: ClaimState = ClaimState.HANDED_OVER, days_ago: int = 30, enrolment: str = "e1",
         msisdn: str = "+8613800138000", number: str = "352") -> PastClaim:
    return PastClaim(enrolment, msisdn, number, state, NOW - timedelta(days=days_ago))


def test_claim_rules() -> None:
    claim()
    assert code(lambda: claim(occurred_on=TODAY + timedelta(days=1))) == "PROTECTION_INCIDENT_DATE_INVALID"
    assert code(lambda: claim(enrolled_on=TODAY - timedelta(days=10))) == "PROTECTION_IN_WAITING_PERIOD"
    claim(enrolled_on=TODAY - timedelta(days=31), occurred_on=TODAY - timedelta(days=1))  # day 30: covered
    assert code(lambda: claim(occurred_on=TODAY - timedelta(days=61), enrolled_on=date(2026, 8, 1))) == \
        "PROTECTION_INCIDENT_DATE_INVALID"
    assert code(lambda: claim(kind=ClaimKind.DAMAGE)) == "PROTECTION_EVIDENCE_MISSING"
    claim(kind=ClaimKind.DAMAGE, photos=["p1.jpg"])
    assert code(lambda: claim(kind=ClaimKind.THEFT)) == "PROTECTION_EVIDENCE_MISSING"
    claim(kind=ClaimKind.THEFT, police_report="CS2026110012")
    assert code(lambda: claim(past=[past(ClaimState.APPROVED)])) == "PROTECTION_CLAIM_OPEN"
    claim(past=[past()])  # one in 12 months: the second is allowed
    assert code(lambda: claim(past=[past(), past(days_ago=100)])) == "PROTECTION_CLAIM_LIMIT_REACHED"
    claim(past=[past(), past(ClaimState.REJECTED, 10)])  # a rejected claim does not count
    claim(past=[past(), past(days_ago=400)])  # outside the 12 months
    claim(past=[past(enrolment="e2"), past(enrolment="e2")])  # another enrolment's


def flags(**over: object) -> list[str]:
    args: dict[str, object] = dict(occurred_on=date(2026, 11, 1), enrolled_on=date(2026, 9, 5),
                                   msisdn="+8613800138000", imei="352", enrolment_id="e1", past=[], now=NOW)
    args.update(over)
    return fraud_flags(PILOT, **args)  # type: ignore[arg-type]


def test_each_fraud_rule() -> None:
    assert flags() == []  # 57 days after enrolment, 27 after cover started
    assert flags(occurred_on=date(2026, 10, 15)) == ["enrolled_just_before"]  # day 40
    assert flags(occurred_on=date(2026, 10, 8)) == ["enrolled_just_before", "right_after_waiting"]  # day 33
    assert flags(past=[past(enrolment="e0", number="111")]) == ["repeated_on_number"]  # another phone
    assert flags(past=[past(ClaimState.REJECTED, enrolment="e0", number="999")]) == []
    assert flags(past=[past(enrolment="e0", msisdn="+8613900139000")]) == ["imei_claimed_before"]
    assert flags(past=[past(enrolment="e1", msisdn="+8613900139000")]) == []  # its own earlier claim


def test_fee_ids_and_months() -> None:
    assert fee_transfer_id("e1", 2) == fee_transfer_id("e1", 2) != fee_transfer_id("e1", 3)
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2026, 9, 5), 4) == date(2027, 1, 5)


def test_every_step_has_its_sms() -> None:
    """Each claim state a claim can move to, and each enrolment event, has its words; the
    service's params fill every field of them."""
    from mobipay.channels.sms.texts import TEMPLATES, render

    claim_params = {"id": "1234abcd", "kind": "loss", "kind_zh": "丢失", "model": "iPhone 15", "amount_fen": 34_900,
                    "reason": "照片不清晰", "hall": "长沙五一广场营业厅", "address": "长沙市芙蓉区五一大道 1 号"}
    for state in ClaimState:
        template = f"protection.{state.value}"
        assert template in TEMPLATES, template
        text = render(template, claim_params)
        assert "1234abcd" in text and "新通知" not in text, (template, text)
    enrolled = render("protection.enrolled", {"model": "Apple iPhone 15", "imei": "0011", "amount_fen": 1_200,
                                              "from": "2026-10-05", "damage_fen": 18_900, "loss_fen": 34_900})
    assert "12.00" in enrolled and "189.00" in enrolled and "2026-10-05" in enrolled
    assert "18.00" in render("protection.fee_collected", {"model": "m", "amount_fen": 1_800, "until": "2026-12-05"})
    assert "新通知" not in render("protection.lapsed", {"model": "m", "amount_fen": 1_800,
                                                      "code": "INSUFFICIENT_FUNDS"})
