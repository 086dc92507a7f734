# ruff: noqa: F811  (the fixtures c and clock are test_transit's, imported)
"""The transit upload's batch paths: an upload sent again with new taps among the stored ones
(on PostgreSQL the duplicate check and the insert are one statement, priced again without
the stored taps) and an upload of several chunks, pipelined (the next chunk checked while the
last one is posted): each tap counts once, the wallets pay exactly the trips' fares."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mobipay.app.bootstrap import Container
from mobipay.kernel.clock import ManualClock
from mobipay.transit import service
from tests.integration.test_transit import START, beijing, c, clock, rider, tap  # noqa: F401
from tests.scenarios.story import books


async def _paid(cont: Container, user_id: str) -> int:
    return sum(x.fare for x in await cont.transit.trips_of(user_id, "2026-12"))


async def test_an_upload_sent_again_with_new_taps_counts_each_once(c: Container, clock: ManualClock) -> None:
    t = c.transit
    bj = await beijing(t)
    r = await rider(c, 10_000)
    first = [tap(c, r, bj.bus_reader, START + timedelta(hours=h)) for h in (0, 2)]
    assert [x.result for x in await t.upload(bj.bus_reader, first)] == ["accepted", "accepted"]
    more = [tap(c, r, bj.bus_reader, START + timedelta(hours=h)) for h in (4, 5)]
    got = await t.upload(bj.bus_reader, [more[0], first[0], more[1], first[1]])
    assert [x.result for x in got] == ["accepted", "duplicate", "accepted", "duplicate"]
    assert len(await t.trips_of(r.me.user_id, "2026-12")) == 4
    fares = await _paid(c, r.me.user_id)
    want = {r.me.account_code: 10_000 - fares, bj.bus.account_code: fares}
    assert fares > 0 and await books(c, want) == want
    assert (await c.ledger.verify()).ok


async def test_an_upload_of_several_chunks_is_pipelined_in_order(
    c: Container,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(service, "CHUNK", 2)
    t = c.transit
    bj = await beijing(t)
    r = await rider(c, 500)  # enough for two bus fares: the later ones become debts, in tap order
    taps = [tap(c, r, bj.bus_reader, START + timedelta(hours=h)) for h in (0, 1, 2, 3, 4)]
    got = await t.upload(bj.bus_reader, [*taps[:4], taps[1], taps[4]])  # a duplicate of chunk 1 in chunk 3
    assert [x.result for x in got] == ["accepted"] * 4 + ["duplicate", "accepted"]
    trips = sorted(await t.trips_of(r.me.user_id, "2026-12"), key=lambda x: x.start_at)
    assert len(trips) == 5
    paid = sum(x.fare for x in trips if x.state == "paid")
    debts = sum(x.fare for x in trips if x.state == "debt")
    assert [x.state for x in trips][:2] == ["paid", "paid"] and "debt" in {x.state for x in trips[2:]}
    assert await t.owed(r.me.user_id) == debts
    want = {r.me.account_code: 500 - paid, bj.bus.account_code: paid + debts}
    assert await books(c, want) == want
    assert (await c.ledger.verify()).ok
