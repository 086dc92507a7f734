"""Every fare rule of transit/model.py with a worked trip, from the fares shipped in
transit/data/fares.json (Beijing, Shanghai, Guangzhou) and from tables made here."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from mobipay.kernel.errors import MobipayError
from mobipay.transit.model import (
    BUS,
    METRO,
    FareTable,
    Network,
    Priced,
    RiderState,
    Stop,
    distance_fare,
    price,
    tiered,
)

FARES = FareTable.load()
BEIJING = FARES.rules("北京", date(2026, 12, 7))
SHANGHAI_RULES = FARES.rules("上海", date(2026, 12, 7))
T0 = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)  # 09:00 in Beijing


def km(x: float) -> int:
    return round(x * 1000)


@pytest.mark.parametrize(("meters", "fen"), [
    (km(0.5), 300), (km(6), 300), (km(6) + 1, 400), (km(12), 400), (km(12.1), 500), (km(22), 500),
    (km(22.001), 600), (km(32), 600), (km(32.001), 700), (km(52), 700), (km(52.001), 800), (km(72), 800),
    (km(92.5), 1000),
])
def test_beijing_distance_bands_since_2014_12_28(meters: int, fen: int) -> None:
    assert BEIJING.metro is not None
    assert distance_fare(BEIJING.metro, meters) == fen


def test_fare_versions_by_date() -> None:
    with pytest.raises(MobipayError) as info:
        FARES.rules("北京", date(2014, 12, 27))  # before the distance fares: no version in the data
    assert info.value.code == "TRANSIT_FARES_NOT_DEFINED"
    assert FARES.rules("广州", date(2025, 12, 31)).daily_cap is None
    assert FARES.rules("广州", date(2026, 1, 1)).daily_cap == 1500  # the 2026 version adds a cap
    with pytest.raises(MobipayError):
        FARES.rules("拉萨", date(2026, 1, 1))
    assert sorted(FARES.cities) == sorted(["北京", "上海", "广州"])


def test_flat_bus_fare() -> None:
    p, after = price(BEIJING, BUS, BEIJING.bus_flat, T0, T0, RiderState())
    assert p == Priced(200, 0, 0, 0) and p.fare == 200
    assert after.month_spent == 0 and after.day_spent == 200  # Beijing's tiers count the metro only


def test_monthly_tier_crossing_inside_one_trip() -> None:
    # 98 CNY paid this month, a 5 CNY trip: 2 CNY at full price, 3 CNY at 80 % = 2.40 CNY
    state = RiderState(month="2026-12", month_spent=9_800)
    p, after = price(BEIJING, METRO, 500, T0, T0 + timedelta(minutes=30), state)
    assert (p.base, p.tier_discount, p.fare) == (500, 60, 440)
    assert after.month_spent == 10_240
    # 148 CNY: 2 CNY at 80 % (2.50 CNY of base), 2.50 CNY left at 50 % = 1.25 CNY: 3.25 CNY
    p, _ = price(BEIJING, METRO, 500, T0, T0, replace(state, month_spent=14_800))
    assert p.fare == 325
    # 399 CNY paid: 1 CNY at 50 % (2 CNY of base), then full price again for 3 CNY: 4 CNY
    p, after = price(BEIJING, METRO, 500, T0, T0, replace(state, month_spent=39_900))
    assert p.fare == 400 and after.month_spent == 40_300
    # past 400 CNY: full price
    assert price(BEIJING, METRO, 500, T0, T0, replace(state, month_spent=40_300))[0].fare == 500
    # between the thresholds, no crossing: 20 % off, 50 % off
    assert price(BEIJING, METRO, 500, T0, T0, replace(state, month_spent=12_000))[0].fare == 400
    assert price(BEIJING, METRO, 500, T0, T0, replace(state, month_spent=20_000))[0].fare == 250


def test_tiers_restart_each_month() -> None:
    state = RiderState(month="2026-11", month_spent=20_000)  # last month's spending does not count
    p, after = price(BEIJING, METRO, 500, T0, T0, state)
    assert p.fare == 500 and (after.month, after.month_spent) == ("2026-12", 500)


def test_tiered_directly() -> None:
    tiers = ((0, 100), (10_000, 80), (15_000, 50), (40_000, 100))
    assert tiered(500, 0, tiers) == 500
    assert tiered(500, 9_800, tiers) == 440
    # 1,000 CNY of base from nothing: 100 paid at full (100 of base), 50 at 80 % (62.50 of base),
    # 250 at 50 % (500 of base), the 337.50 CNY of base left at full: 737.50 CNY
    assert tiered(100_000, 0, tiers) == 10_000 + 5_000 + 25_000 + 33_750
    assert tiered(0, 9_999, tiers) == 0


def test_transfer_window_edges() -> None:
    r = SHANGHAI_RULES  # 1 CNY off a trip starting within 120 minutes of the last one's end
    end = T0
    state = RiderState(last_end=end, last_mode=METRO)
    at_edge, _ = price(r, BUS, 200, end + timedelta(minutes=120), end + timedelta(minutes=120), state)
    past, _ = price(r, BUS, 200, end + timedelta(minutes=120, seconds=1), end + timedelta(minutes=121), state)
    assert (at_edge.transfer_discount, at_edge.fare) == (100, 100)
    assert (past.transfer_discount, past.fare) == (0, 200)
    # Beijing has no transfer discount
    assert price(BEIJING, BUS, 200, end + timedelta(minutes=5), end, state)[0].fare == 200
    # the discount never makes a fare negative
    cheap = replace(r, bus_flat=50)
    assert price(cheap, BUS, 50, end, end, state)[0].fare == 0


def test_shanghai_metro_steps_and_tier() -> None:
    assert SHANGHAI_RULES.metro is not None
    assert [distance_fare(SHANGHAI_RULES.metro, km(x)) for x in (6, 6.1, 16, 16.1, 26, 26.1)] == [
        300, 400, 400, 500, 500, 600]
    p, _ = price(SHANGHAI_RULES, METRO, 500, T0, T0, RiderState(month="2026-12", month_spent=7_000))
    assert p.fare == 450  # after 70 CNY of metro in a month, 10 % off


def test_guangzhou_daily_cap() -> None:
    gz = FARES.rules("广州", date(2026, 12, 7))
    assert gz.metro is not None
    assert [distance_fare(gz.metro, km(x)) for x in (4, 4.1, 24, 24.1, 32, 32.1)] == [200, 300, 600, 700, 700, 800]
    state = RiderState(day=date(2026, 12, 7), day_spent=1_300)
    p, after = price(gz, METRO, 600, T0, T0, state)
    assert (p.cap_discount, p.fare, after.day_spent) == (400, 200, 1_500)
    assert price(gz, BUS, 200, T0, T0, after)[0].fare == 0  # capped for the rest of the day
    next_day = T0 + timedelta(days=1)
    assert price(gz, BUS, 200, next_day, next_day, after)[0].fare == 200


def test_missing_exit_fare_is_data() -> None:
    assert BEIJING.metro is not None and BEIJING.metro.missing_exit_fare == 1000
    p, _ = price(BEIJING, METRO, BEIJING.metro.missing_exit_fare, T0, T0, RiderState())
    assert p.fare == 1000


def test_network_distance_with_an_interchange() -> None:
    net = Network([Stop("a1", "L1", "苹果园", 0), Stop("a2", "L1", "西单", 14_000), Stop("a3", "L1", "国贸", 22_000),
                   Stop("b1", "L2", "西单", 0), Stop("b2", "L2", "积水潭", 5_500)])
    assert net.distance("a1", "a3") == 22_000
    assert net.distance("a1", "b2") == 19_500  # 14 km on line 1, change at 西单, 5.5 km on line 2
    assert net.distance("b2", "a1") == 19_500
    with pytest.raises(MobipayError) as info:
        Network([Stop("x", "L", "x", 0), Stop("y", "M", "y", 0)]).distance("x", "y")
    assert info.value.code == "TRANSIT_NO_ROUTE"


def test_a_broken_table_is_refused() -> None:
    with pytest.raises(MobipayError) as info:
        FareTable.parse({"X": [{"from": "2020-01-01", "bus_flat": 100, "metro": None,
                                "monthly_tiers": [[100, 80]]}]})
    assert info.value.code == "TRANSIT_FARES_INVALID"


def test_the_cli_prints_the_fares_in_force() -> None:
    from typer.testing import CliRunner

    from mobipay.transit.cli import app

    runner = CliRunner()
    out = runner.invoke(app, ["fares", "北京", "--date", "2026-12-07"])
    assert out.exit_code == 0, out.output
    assert "<= 6 km 3.00" in out.output and "+1.00 per 20 km" in out.output and "from 100.00 pay 80%" in out.output
    bad = runner.invoke(app, ["fares", "北京", "--date", "2014-12-27"])
    assert bad.exit_code == 1 and "no fares for 北京" in bad.output
    assert runner.invoke(app, ["fares", "北京", "--date", "soon"]).exit_code == 2  # a usage error, no traceback
