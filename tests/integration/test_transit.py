"""The transit one-card through its service on SQLite and PostgreSQL: bus and metro taps
uploaded by validators, priced as they arrive and posted through the ledger's batch path;
duplicates and late, out-of-order uploads; a missing exit; the transfer window; a monthly
tier crossed inside one trip; a fare that cannot be paid becoming a debt, the token on the
deny list (and a lost phone on it at once), the debt recovered at the next top-up; the daily
clearing file summed against the ledger, paid through the bank and reconciled against the
operator's back office (its SIMULATOR, in process); a dispute on one tap. Balances asserted."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from mobipay.app.bootstrap import Container
from mobipay.instore import nfc
from mobipay.kernel.clock import SHANGHAI, ManualClock
from mobipay.ledger.chart import BANK_SETTLEMENT
from mobipay.ledger.model import Leg, Transfer
from mobipay.platform.outbox import Message
from mobipay.simulators.transit_operator import create_transit_operator_app
from mobipay.transit.backoffice_http import HttpOperatorBackOffice
from mobipay.transit.service import FARES_RECEIVABLE, Operator, Station, TapIn, Transit, Validator
from mobipay.wallet.service import Principal
from tests.scenarios.story import books, person, platform, refused, sign_up

START = datetime(2026, 12, 7, 0, 0, tzinfo=UTC)  # 08:00 in Beijing
SECRET = "test-transit-operator-secret"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START + timedelta(hours=6))  # the taps of a test were made before now


@pytest.fixture
async def c(db_url: str, tmp_path: Path, clock: ManualClock, bank: str) -> AsyncIterator[Container]:
    container = await platform(db_url, tmp_path, clock, bank_url=bank)
    office = HttpOperatorBackOffice("http://operator", SECRET.encode(),
                                    transport=httpx.ASGITransport(app=create_transit_operator_app(SECRET)))
    container.transit.back_office = office
    yield container
    await office.close()
    await container.close()


@dataclass
class Rider:
    me: Principal
    token_id: str
    atc: int = 0


RIDERS = iter(range(10, 99))


async def rider(c: Container, balance: int) -> Rider:
    n = next(RIDERS)
    who = person(f"乘客{n}", f"139001390{n:02d}", "19900101", 200 + n)
    clock = c.clock
    assert isinstance(clock, ManualClock)
    now = clock.now()
    clock.set(START - timedelta(days=2, hours=12))  # its key lives 3 days: over every tap of a test
    me = await sign_up(c, who)
    token, _ = await c.nfc_tokens.provision(me, "hce", idempotency_key=f"t{n}")
    clock.set(now)
    if balance:
        assert (await c.ledger.post(Transfer(f"fund-{n}", (Leg.debit(BANK_SETTLEMENT, balance),
                                                            Leg.credit(me.account_code, balance)), "cash_in"))).ok
    return Rider(me, token.id)


def tap(c: Container, r: Rider, v: Validator, at: datetime) -> TapIn:
    """What the phone makes at the gate (the device SIMULATOR's work: the LUK's cryptogram)."""
    r.atc += 1
    un = secrets.token_hex(4).upper()
    data = nfc.tap_data(amount=0, currency=nfc.CURRENCY_CNY, day=at.astimezone(SHANGHAI).date(),
                        unpredictable_number=un, atc=r.atc, cvm=1, terminal_id=v.id)
    return TapIn(r.token_id, 1, r.atc, at, un, 1, nfc.cryptogram(c.nfc_tokens.luk(r.token_id, 1), data))


@dataclass
class Beijing:
    metro: Operator
    bus: Operator
    stations: dict[str, Station]
    gates: dict[str, Validator]  # "<station> in|out"
    bus_reader: Validator


async def beijing(t: Transit) -> Beijing:
    metro = await t.add_operator("北京", "北京地铁", "metro", "6222020000111100001")
    bus = await t.add_operator("北京", "北京公交", "bus", "6222020000111100002")
    line1 = await t.add_line(metro.id, "1号线")
    line2 = await t.add_line(metro.id, "2号线")
    st = {}
    for name, pos in (("苹果园", 0), ("西单", 14_000), ("国贸", 22_000), ("四惠东", 31_000)):
        st[name] = await t.add_station(line1.id, name, pos)
    st["积水潭"] = await t.add_station(line2.id, "积水潭", 5_500)
    st["西单2"] = await t.add_station(line2.id, "西单", 0)  # the interchange with line 1
    gates = {}
    for key, s in st.items():
        if key == "西单2":
            continue
        line = line2.id if key == "积水潭" else line1.id
        gates[f"{key} in"] = (await t.register_validator(metro.id, line, "entry", f"{key} 进站", station_id=s.id))[0]
        gates[f"{key} out"] = (await t.register_validator(metro.id, line, "exit", f"{key} 出站", station_id=s.id))[0]
    route = await t.add_line(bus.id, "1路")
    reader, _ = await t.register_validator(bus.id, route.id, "flat", "1路 京A12345")
    return Beijing(metro, bus, st, gates, reader)


async def test_bus_and_metro_fares_duplicates_and_out_of_order_uploads(c: Container, clock: ManualClock) -> None:
    t = c.transit
    bj = await beijing(t)
    r = await rider(c, 10_000)
    bus_tap = tap(c, r, bj.bus_reader, START)
    got = await t.upload(bj.bus_reader, [bus_tap, bus_tap])  # a duplicate inside the upload
    assert [x.result for x in got] == ["accepted", "duplicate"]
    again = await t.upload(bj.bus_reader, [bus_tap])  # the same upload sent again
    assert [x.result for x in again] == ["duplicate"]
    # metro: 苹果园 → 国贸 22 km = 5 CNY; the exit gate uploads first, the entry gate later
    entry = tap(c, r, bj.gates["苹果园 in"], START + timedelta(minutes=30))
    exit_ = tap(c, r, bj.gates["国贸 out"], START + timedelta(minutes=70))
    assert [x.result for x in await t.upload(bj.gates["国贸 out"], [exit_])] == ["accepted"]
    assert await books(c, [r.me.account_code]) == {r.me.account_code: 10_000 - 200}  # the exit waits for its entry
    assert [x.result for x in await t.upload(bj.gates["苹果园 in"], [entry])] == ["accepted"]
    # 积水潭 → 苹果园 through the 西单 interchange: 5.5 + 14 = 19.5 km = 5 CNY
    e2 = tap(c, r, bj.gates["积水潭 in"], START + timedelta(hours=2))
    x2 = tap(c, r, bj.gates["苹果园 out"], START + timedelta(hours=2, minutes=40))
    await t.upload(bj.gates["积水潭 in"], [e2])
    await t.upload(bj.gates["苹果园 out"], [x2, x2])
    want = {r.me.account_code: 10_000 - 200 - 500 - 500, bj.bus.account_code: 200, bj.metro.account_code: 1_000,
            FARES_RECEIVABLE.code: 0}
    assert await books(c, want) == want
    trips = await t.trips_of(r.me.user_id, "2026-12")
    assert sorted((x.mode, x.meters, x.fare, x.state) for x in trips) == [
        ("bus", 0, 200, "paid"), ("metro", 19_500, 500, "paid"), ("metro", 22_000, 500, "paid")]
    # refused taps: another gate's cryptogram, an unknown token, a tap from the future; nothing moves
    forged = tap(c, r, bj.gates["西单 in"], START + timedelta(minutes=10))
    unknown = TapIn("nft_nobody", 1, 1, START, "00000000", 1, "0" * 16)
    future = tap(c, r, bj.bus_reader, START + timedelta(hours=1))
    clock.set(START + timedelta(minutes=20))
    got = await t.upload(bj.bus_reader, [forged, unknown, future])
    assert [(x.result, x.code) for x in got] == [("refused", "TRANSIT_TAP_CRYPTOGRAM_INVALID"),
                                                 ("refused", "TRANSIT_TAP_UNKNOWN_TOKEN"),
                                                 ("refused", "TRANSIT_TAP_IN_FUTURE")]
    assert await books(c, want) == want
    assert (await c.ledger.verify()).ok


async def test_a_missing_exit_is_charged_the_maximum_after_the_grace(c: Container, clock: ManualClock) -> None:
    t = c.transit
    bj = await beijing(t)
    r = await rider(c, 5_000)
    await t.upload(bj.gates["西单 in"], [tap(c, r, bj.gates["西单 in"], START)])
    clock.set(START + timedelta(hours=4))
    assert await t.close_open() == 0  # within the journey limit and the grace: it may still come
    clock.set(START + timedelta(hours=16, seconds=1))
    assert await t.close_open() == 1
    [trip] = await t.trips_of(r.me.user_id, "2026-12")
    assert (trip.missing, trip.base, trip.fare, trip.state) == ("exit", 1_000, 1_000, "paid")
    assert await books(c, [r.me.account_code, bj.metro.account_code]) == {r.me.account_code: 4_000,
                                                                         bj.metro.account_code: 1_000}
    assert await t.close_open() == 0  # once


async def test_a_late_exit_after_the_missing_exit_fare_reprices_the_trip(c: Container, clock: ManualClock) -> None:
    """The exit tap made 25 minutes after the entry reaches the platform after the missing-exit
    fare was charged (the gate was offline all day): it completes that trip at its distance
    fare and gives the difference back; it opens no new trip, so nothing is charged twice."""
    t = c.transit
    bj = await beijing(t)
    r = await rider(c, 5_000)
    poor = await rider(c, 500)  # cannot pay the missing fare: it becomes a debt
    for who in (r, poor):
        await t.upload(bj.gates["西单 in"], [tap(c, who, bj.gates["西单 in"], START)])
    clock.set(START + timedelta(hours=16, seconds=1))
    assert await t.close_open() == 2
    assert await t.owed(poor.me.user_id) == 1_000
    exits = {who.token_id: tap(c, who, bj.gates["国贸 out"], START + timedelta(minutes=25)) for who in (r, poor)}
    clock.set(START + timedelta(hours=20))
    got = await t.upload(bj.gates["国贸 out"], list(exits.values()))
    assert [x.result for x in got] == ["accepted", "accepted"]
    [trip] = await t.trips_of(r.me.user_id, "2026-12")
    assert (trip.missing, trip.meters, trip.base, trip.fare, trip.state) == ("", 8_000, 400, 400, "paid")
    assert await t.owed(poor.me.user_id) == 400  # the debt is the trip's real fare
    assert await books(c, [r.me.account_code, poor.me.account_code, bj.metro.account_code,
                           FARES_RECEIVABLE.code]) == {r.me.account_code: 4_600, poor.me.account_code: 500,
                                                       bj.metro.account_code: 800, FARES_RECEIVABLE.code: 400}
    again = await t.upload(bj.gates["国贸 out"], list(exits.values()))  # the gate sends it again
    assert [x.result for x in again] == ["duplicate", "duplicate"]
    clock.set(START + timedelta(hours=40))
    assert await t.close_open() == 0  # no open trip was made of the late exit
    assert await books(c, [r.me.account_code, bj.metro.account_code]) == {r.me.account_code: 4_600,
                                                                         bj.metro.account_code: 800}
    assert (await c.ledger.verify()).ok


async def test_monthly_tier_crossed_inside_one_trip(c: Container, clock: ManualClock) -> None:
    t = c.transit
    bj = await beijing(t)
    r = await rider(c, 20_000)
    entries, exits = [], []
    at = START - timedelta(days=2)
    # 19 trips 苹果园 → 国贸 (22 km, 5 CNY) and one 西单 → 国贸 (8 km, 4 CNY): 99 CNY paid
    legs = [("苹果园", "国贸")] * 19 + [("西单", "国贸")]
    for a, b in legs:
        entries.append((a, tap(c, r, bj.gates[f"{a} in"], at)))
        exits.append((b, tap(c, r, bj.gates[f"{b} out"], at + timedelta(minutes=40))))
        at += timedelta(minutes=90)
    for name in ("苹果园", "西单"):
        await t.upload(bj.gates[f"{name} in"], [x for n, x in entries if n == name])
    await t.upload(bj.gates["国贸 out"], [x for _, x in exits])
    assert await books(c, [r.me.account_code]) == {r.me.account_code: 20_000 - 19 * 500 - 400}
    # the next 5 CNY trip: 1 CNY at full price to reach 100, 4 CNY at 80 % = 3.20: 4.20 CNY
    e = tap(c, r, bj.gates["苹果园 in"], at)
    x = tap(c, r, bj.gates["国贸 out"], at + timedelta(minutes=45))
    await t.upload(bj.gates["苹果园 in"], [e])
    await t.upload(bj.gates["国贸 out"], [x])
    newest = (await t.trips_of(r.me.user_id, "2026-12"))[0]
    assert (newest.base, newest.tier_discount, newest.fare) == (500, 80, 420)
    assert await books(c, [r.me.account_code]) == {r.me.account_code: 20_000 - 9_900 - 420}
    csv_text, totals = await t.statement(r.me.user_id, "2026-12")
    assert totals == {"trips": 21, "base": 10_400, "discounts": 80, "fares": 10_320, "refunded": 0, "owed": 0}
    assert csv_text.count("\n") == 23 and "国贸" in csv_text


async def test_transfer_window_edges_in_shanghai(c: Container) -> None:
    t = c.transit
    bus = await t.add_operator("上海", "上海巴士", "bus", "6222020000111100003")
    route = await t.add_line(bus.id, "49路")
    reader, _ = await t.register_validator(bus.id, route.id, "flat", "49路 沪B001")
    r = await rider(c, 5_000)
    first = START - timedelta(hours=6)
    edge = first + timedelta(minutes=120)  # at the edge: discounted
    past = edge + timedelta(minutes=120, seconds=1)  # a second past the next window: full fare
    await t.upload(reader, [tap(c, r, reader, first), tap(c, r, reader, edge), tap(c, r, reader, past)])
    fares = sorted((x.start_at, x.transfer_discount, x.fare) for x in await t.trips_of(r.me.user_id, "2026-12"))
    assert [(d, f) for _, d, f in fares] == [(0, 200), (100, 100), (0, 200)]
    assert await books(c, [r.me.account_code, bus.account_code]) == {r.me.account_code: 4_500,
                                                                     bus.account_code: 500}


async def test_debt_deny_list_lost_phone_and_recovery(c: Container, clock: ManualClock) -> None:
    t = c.transit
    bj = await beijing(t)
    r = await rider(c, 100)  # 1 CNY: not enough for the bus
    other = await rider(c, 1_000)
    version, listed = await t.deny_list()
    assert listed == []
    await t.upload(bj.bus_reader, [tap(c, r, bj.bus_reader, START)])
    [trip] = await t.trips_of(r.me.user_id, "2026-12")
    assert (trip.fare, trip.state) == (200, "debt")
    want = {r.me.account_code: 100, bj.bus.account_code: 200, FARES_RECEIVABLE.code: 200}
    assert await books(c, want) == want  # the operator is paid; the wallet owes it
    assert await t.owed(r.me.user_id) == 200
    v1, changed = await t.deny_list(version)
    assert [(x.token_id, x.listed, x.reason) for x in changed] == [(r.token_id, True, "transit_debt")]
    # a lost phone: the NFC token suspended is on the list at once
    await c.nfc_tokens.suspend_mine(other.me, other.token_id)
    v2, changed = await t.deny_list(v1)
    assert [(x.token_id, x.listed, x.reason) for x in changed] == [(other.token_id, True, "suspended")]
    full = {x.token_id for x in (await t.deny_list())[1]}
    assert full == {r.token_id, other.token_id}
    # a top-up of 5 CNY: the wallet.credited handler recovers the 2 CNY, the token leaves the list
    assert (await c.ledger.post(Transfer("topup-r", (Leg.debit(BANK_SETTLEMENT, 500),
                                                     Leg.credit(r.me.account_code, 500)), "cash_in"))).ok
    await t.on_wallet_credited(Message("m1", "wallet.credited", "k", {"user_id": r.me.user_id}, {}, 1))
    want |= {r.me.account_code: 100 + 500 - 200, FARES_RECEIVABLE.code: 0}
    assert await books(c, want) == want
    assert await t.owed(r.me.user_id) == 0
    _, changed = await t.deny_list(v2)
    assert [(x.token_id, x.listed) for x in changed] == [(r.token_id, False)]
    assert await t.recover(r.me.user_id) == (0, 0)  # once
    assert (await c.ledger.verify()).ok


async def test_clearing_file_sums_against_the_ledger_pays_and_reconciles(c: Container, clock: ManualClock,
                                                                         bank: str) -> None:
    t = c.transit
    bj = await beijing(t)
    rich, poor = await rider(c, 10_000), await rider(c, 150)
    day = date(2026, 12, 7)
    taps = [tap(c, rich, bj.bus_reader, START), tap(c, poor, bj.bus_reader, START + timedelta(minutes=1)),
            tap(c, rich, bj.bus_reader, START + timedelta(hours=5))]
    await t.upload(bj.bus_reader, taps)
    office = t.back_office
    assert isinstance(office, HttpOperatorBackOffice)
    await office.report_taps(bj.bus.id, [{"token_id": x.token_id, "validator_id": bj.bus_reader.id,
                                          "tapped_at": x.tapped_at.isoformat()} for x in [*taps, taps[0]]])
    # a dispute on one tap before the clearing: upheld, refunded from the operator
    tap_id = (await t.upload(bj.bus_reader, [taps[2]]))[0].tap_id
    d = await t.dispute(rich.me.user_id, tap_id, "两次扣费")
    assert await refused(t.dispute(poor.me.user_id, tap_id, "not mine")) == "TRANSIT_TAP_NOT_FOUND"
    upheld = await t.decide_dispute(d.id, True, actor="staff:li")
    assert (upheld.state, upheld.refund) == ("upheld", 200)
    assert await books(c, [rich.me.account_code, bj.bus.account_code]) == {rich.me.account_code: 10_000 - 200,
                                                                         bj.bus.account_code: 400}
    assert await refused(t.clear(bj.bus.id, day)) == "TRANSIT_CLEARING_NOT_DUE"
    clock.set(START + timedelta(hours=31))
    cl = await t.clear(bj.bus.id, day)
    assert (cl.taps, cl.trips, cl.base, cl.fares, cl.debts, cl.refunds, cl.net) == (3, 3, 600, 600, 200, 200, 400)
    assert cl.state in ("paying", "paid")
    lines = cl.file.strip().splitlines()
    assert len(lines) == 5 and lines[-1].startswith("TOTAL,taps=3,trips=3")
    await c.orders.resolve_pending()
    assert (await t.clearing(cl.id)).state == "paid"
    # the ledger agrees: the operator's account is empty, the receivable holds the debt
    assert await books(c, [bj.bus.account_code, FARES_RECEIVABLE.code]) == {bj.bus.account_code: 0,
                                                                           FARES_RECEIVABLE.code: 200}
    assert (await t.clear(bj.bus.id, day)).id == cl.id  # once
    poor_tap = (await t.upload(bj.bus_reader, [taps[1]]))[0].tap_id
    assert await refused(t.dispute(poor.me.user_id, poor_tap, "not mine")) == "TRANSIT_DISPUTE_INVALID"
    rec = await t.reconcile(bj.bus.id, day)  # the operator counted the duplicate once too
    assert (rec.reconciled, rec.operator_taps) == ("match", 3)
    (await office.http.client.post("/sim/drop", json={"operator_id": bj.bus.id, "day": "2026-12-07",
                                                      "taps": 1})).raise_for_status()
    rec = await t.reconcile(bj.bus.id, day)  # an upload the operator lost: a mismatch, both counts kept
    assert (rec.reconciled, rec.operator_taps, rec.taps) == ("mismatch", 2, 3)
    metro = await t.clear(bj.metro.id, day)
    assert (metro.trips, metro.net, metro.state) == (0, 0, "nothing")
    assert (await c.ledger.verify()).ok


async def test_demo_data_is_small_and_loads_once(c: Container) -> None:
    from mobipay.app.demo_transit import load_demo_transit

    first = await load_demo_transit(c)
    assert (first.operators, first.validators) == (3, 2 * 11 + 2)
    assert (await load_demo_transit(c)).operators == 0
    assert sorted({op.city for op in await c.transit.operators()}) == ["上海", "北京", "广州"]
    [bj] = await c.transit.operators("北京")
    net = await c.transit.network(bj.id)
    ids = {s.name: s.id for s in net.stops.values() if s.line_id != ""}
    assert net.distance(ids["苹果园"], ids["积水潭"]) == 19_500  # through 西单
