"""Lottery games: bets, quick picks, prize tiers and the draw calendar."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobipay.kernel.clock import SHANGHAI
from mobipay.kernel.errors import MobipayError
from mobipay.lottery.model import DLT, FC3D, SSQ, game, ticket_cost


def code(fn: object, *args: object) -> str:
    with pytest.raises(MobipayError) as info:
        fn(*args)  # type: ignore[operator]
    return info.value.code


def test_bets_are_checked() -> None:
    assert SSQ.check_bet([[33, 1, 5, 12, 19, 27], [9]]) == ((1, 5, 12, 19, 27, 33), (9,))
    for bad in ([[1, 2, 3, 4, 5], [9]], [[1, 2, 3, 4, 5, 34], [9]], [[1, 1, 2, 3, 4, 5], [9]], [[1, 2, 3, 4, 5, 6]],
                [[1, 2, 3, 4, 5, "6"], [9]], [[1, 2, 3, 4, 5, 6.0], [9]], "123456"):
        assert code(SSQ.check_bet, bad) == "INVALID_NUMBERS", bad
    assert FC3D.check_bet([[7, 7, 0]]) == ((7, 7, 0),)  # 3D: repeats allowed, order kept
    assert code(game, "keno") == "UNKNOWN_GAME"
    assert ticket_cost(3, 2) == 1_200
    assert code(ticket_cost, 6, 1) == "INVALID_NUMBERS" and code(ticket_cost, 1, 100) == "INVALID_NUMBERS"


@given(st.sampled_from([SSQ, DLT, FC3D]))
def test_quick_picks_are_valid_bets(g: object) -> None:
    bet = g.quick_pick()  # type: ignore[attr-defined]
    assert g.check_bet([list(p) for p in bet]) == bet  # type: ignore[attr-defined]


def test_prizes() -> None:
    drawn = ((1, 5, 12, 19, 27, 33), (9,))
    floating = {1: 500_000_000, 2: 15_000_000}
    assert SSQ.prize(drawn, drawn, floating) == (1, 500_000_000)
    assert SSQ.prize(((1, 5, 12, 19, 27, 33), (8,)), drawn, floating) == (2, 15_000_000)
    assert SSQ.prize(((1, 5, 12, 19, 27, 32), (9,)), drawn, floating) == (3, 300_000)
    assert SSQ.prize(((2, 3, 4, 6, 7, 8), (9,)), drawn, floating) == (6, 500)  # the blue ball alone
    assert SSQ.prize(((2, 3, 4, 6, 7, 8), (10,)), drawn, floating) == (0, 0)
    assert FC3D.prize(((1, 2, 3),), ((1, 2, 3),), {}) == (1, 104_000)
    assert FC3D.prize(((3, 2, 1),), ((1, 2, 3),), {}) == (0, 0)  # direct play: the order counts


def test_draw_calendar_and_sales_cutoff() -> None:
    tue = datetime(2026, 11, 24, 19, 59, tzinfo=SHANGHAI)  # a Tuesday: 双色球 draws tonight
    issue, close, draw_at = SSQ.next_draw(tue)
    assert (close.hour, draw_at.hour, draw_at.minute, draw_at.date()) == (20, 21, 15, tue.date())
    late = datetime(2026, 11, 24, 20, 0, tzinfo=SHANGHAI)
    next_issue, next_close, _ = SSQ.next_draw(late)  # sales closed: the next draw, on Thursday
    assert next_close.date().isoformat() == "2026-11-26" and int(next_issue) == int(issue) + 1
    assert SSQ.next_draw(datetime(2026, 1, 1, 8, tzinfo=SHANGHAI))[0] == "2026001"  # a Thursday


def test_a_retry_is_recognised_by_its_request_not_its_random_picks() -> None:
    from mobipay.lottery.model import same_ticket_request

    mine = [[1, 5, 12, 19, 27, 33], [9]]
    details = {"game": "ssq", "bets": [mine, [[2, 8, 23, 25, 27, 32], [3]]], "multiplier": 1, "quick_picks": 1}
    assert same_ticket_request(details, "ssq", [mine], 1, 1)
    assert not same_ticket_request(details, "ssq", [], 2, 1)  # two bets as well, but asked for otherwise
    assert not same_ticket_request(details, "dlt", [mine], 1, 1)
    assert not same_ticket_request(details, "ssq", [mine], 1, 2)
    assert not same_ticket_request(details, "ssq", [[[2, 5, 12, 19, 27, 33], [9]]], 1, 1)
    legacy = {k: v for k, v in details.items() if k != "quick_picks"}  # bought before quick_picks was kept
    assert same_ticket_request(legacy, "ssq", [mine], 1, 1) and not same_ticket_request(legacy, "ssq", [mine], 0, 1)


def test_prize_tax_is_per_bet_above_ten_thousand_yuan() -> None:
    from mobipay.lottery.model import prize_tax

    assert prize_tax(1_000_000) == 0  # exactly 10,000 CNY: tax-free
    assert prize_tax(1_000_001) == 200_000  # one fen above: 20% of the whole prize
    assert prize_tax(15_000_000) == 3_000_000
    assert prize_tax(0) == 0
    # 10,000 CNY a bet is tax-free however many multiples: each multiple is a bet of its own
    won = DLT.winnings([DLT.check_bet([[1, 2, 3, 4, 5], [1, 2]])], DLT.check_bet([[1, 2, 3, 4, 5], [3, 4]]), {}, 5)
    assert (won.gross, won.tax, won.net, won.tier) == (5_000_000, 0, 5_000_000, 3)
    taxed = SSQ.winnings([SSQ.check_bet([[1, 2, 3, 4, 5, 6], [7]]), SSQ.check_bet([[1, 2, 3, 4, 5, 9], [7]])],
                         SSQ.check_bet([[1, 2, 3, 4, 5, 6], [8]]), {1: 500_000_000, 2: 15_000_000}, 2)
    assert (taxed.gross, taxed.tax, taxed.tier) == ((15_000_000 + 20_000) * 2, 3_000_000 * 2, 2)


def test_every_issue_maps_back_to_its_draw_and_nonsense_is_refused() -> None:
    from datetime import timedelta

    from mobipay.lottery.errors import UnknownIssue

    now = datetime(2026, 1, 1, 0, 0, tzinfo=SHANGHAI)
    for g in (SSQ, DLT, FC3D):
        for issue, close, draw_at in list(g.draws_between(now, now + timedelta(days=365)))[:200]:
            assert g.draw_of(issue, SHANGHAI) == (close, draw_at)
            assert g.next_draw(close - timedelta(minutes=1))[0] == issue
    for bad in ("", "2026", "20261x1", "2026000", "1999001", "2026999", "２０２６００１"):
        with pytest.raises(UnknownIssue):
            SSQ.draw_of(bad, SHANGHAI)
