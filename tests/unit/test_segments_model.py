"""Segment criteria and prize delivery states, pure: what a saved query may say, the activity
windows in Shanghai days, alliance admission, and the moves a prize won may make."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mobipay.campaigns.errors import AwardState as AwardStateError
from mobipay.campaigns.errors import DeliveryProofRequired, SegmentInvalid
from mobipay.campaigns.prize_model import AwardState, check_item_code, check_proof, move
from mobipay.campaigns.segment_model import Criteria, activity_window, admits, parse_criteria
from mobipay.kernel.clock import SHANGHAI


def test_criteria_parse_and_describe() -> None:
    c = parse_criteria({"brands": ["MZone", "mzone"], "cities": "邵阳, 长沙", "tiers": ["2", 1],
                        "active": "this_month"})
    assert c == Criteria(("mzone",), ("邵阳", "长沙"), (1, 2), 0, "", "this_month")
    assert parse_criteria(c.to_dict()) == c
    assert c.describe() == "brand mzone, city 邵阳/长沙, tier 1/2, paid at least once this month"
    assert parse_criteria({}).describe() == "every active subscriber" and not parse_criteria({}).needs_brand
    assert parse_criteria({"alliance": "vip"}).needs_brand


@pytest.mark.parametrize("bad", [{"brands": ["vodafone"]}, {"brands": "x" * 40}, {"tiers": [4]}, {"tiers": [True]},
                                 {"tiers": ["one"]}, {"tiers": [[1]]}, {"min_level": 1.5}, {"min_level": 10},
                                 {"active": "yesterday"}, {"colour": "red"}, {"cities": [1]}, {"alliance": 5}])
def test_criteria_refused(bad: dict[str, object]) -> None:
    with pytest.raises(SegmentInvalid):
        parse_criteria(bad)


def test_activity_windows_are_shanghai_days() -> None:
    now = datetime(2026, 11, 30, 17, 0, tzinfo=UTC)  # 01:00 on 1 December in Shanghai
    since, until = activity_window("this_month", now)
    assert (since, until) == (datetime(2026, 12, 1, tzinfo=SHANGHAI), datetime(2026, 12, 2, tzinfo=SHANGHAI))
    assert activity_window("last_7_days", now)[0] == datetime(2026, 11, 25, tzinfo=SHANGHAI)
    assert activity_window("last_30_days", now)[0] == datetime(2026, 11, 2, tzinfo=SHANGHAI)


def test_alliance_admission() -> None:
    rules = (("gotone", 2), ("mzone", 0))
    assert admits(rules, "gotone", 3) and admits(rules, "mzone", 0)
    assert not admits(rules, "gotone", 1) and not admits(rules, "easyown", 4)


def test_award_moves() -> None:
    assert move(AwardState.WON, AwardState.SCHEDULED) is AwardState.SCHEDULED
    assert move(AwardState.FAILED, AwardState.SCHEDULED) is AwardState.SCHEDULED  # re-delivery
    assert move(AwardState.FAILED, AwardState.UNCLAIMED) is AwardState.UNCLAIMED
    for state, to in [(AwardState.WON, AwardState.DELIVERED), (AwardState.DELIVERED, AwardState.FAILED),
                      (AwardState.UNCLAIMED, AwardState.SCHEDULED), (AwardState.OUT, AwardState.UNCLAIMED),
                      (AwardState.SCHEDULED, AwardState.DELIVERED)]:
        with pytest.raises(AwardStateError):
            move(state, to)


def test_proofs_and_item_codes() -> None:
    assert check_proof("photo", "a" * 64)[1] == "a" * 64
    for kind, sha in [("stamp", "a" * 64), ("photo", "A" * 64), ("photo", "a" * 63), ("signature", None)]:
        with pytest.raises(DeliveryProofRequired):
            check_proof(kind, sha)
    assert check_item_code(" iPad ") == "ipad"
