"""The logistics partner's SIMULATOR as a real process, talked to by the marketplace's real
client (``rural/logistics_http.py``): ``make run`` starts it where mobipay's settings look for
it; a villager's order goes picked up → in transit at the county hub → at the village point,
each event texted and the pick-up code paying the seller (balances asserted, SQLite and
PostgreSQL); with ``--step-s`` the carrier moves by itself and stamps each step with the time
it happened. Waits are on conditions with a deadline, never a fixed time."""

from __future__ import annotations

import asyncio
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from mobipay.kernel.clock import ManualClock
from mobipay.kernel.errors import MobipayError
from mobipay.platform.config import Settings
from mobipay.rural.logistics_http import CarrierEvent, HttpLogistics
from mobipay.rural.market import ESCROW, MARKET_FEES
from mobipay.rural.service import float_account
from mobipay.simulators.logistics import STEPS, create_logistics_app
from tests.conftest import _simulator, free_port
from tests.integration.test_rural_agents import VILLAGER, Rig, agent_with_float, funded, money, texts_to
from tests.integration.test_rural_agents import c as c  # the rural services' fixture
from tests.integration.test_rural_agents import clock as clock
from tests.integration.test_rural_market import COOP, rice
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
KEY = "k-logistics"


@pytest.fixture
def carrier() -> Iterator[str]:
    """The SIMULATOR in its own process on a free port (moved only through ``/sim``)."""
    url, proc = _simulator("logistics", "--secret", KEY)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def events_until(client: HttpLogistics, tracking: str, count: int, deadline_s: float = 60) -> list[CarrierEvent]:
    """The shipment's events once there are ``count`` of them (the carrier moves by itself)."""
    deadline = time.monotonic() + deadline_s
    while len(found := await client.events(tracking)) < count:
        assert time.monotonic() < deadline, f"{len(found)} carrier events after {deadline_s:.0f} s, not {count}"
        await asyncio.sleep(0.05)
    return found


def _make_run(**variables: str) -> str:
    """What ``make run`` would do, printed (``make -n``), with these variables."""
    out = subprocess.run(
        ["make", "-n", "run", *(f"{k}={v}" for k, v in variables.items())],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout


def test_make_run_starts_the_carrier_where_mobipay_looks_for_it() -> None:
    defaults = Settings(_env_file=None)
    plan = _make_run()
    assert f"MOBIPAY_LOGISTICS_URL={defaults.logistics_url} " in plan, plan  # 8120, as the settings say
    port = free_port()
    plan = _make_run(LOGISTICS_PORT=str(port))
    assert f"MOBIPAY_LOGISTICS_URL=http://127.0.0.1:{port} " in plan
    [line] = [ln for ln in plan.splitlines() if "mobipay.simulators.logistics" in ln]
    assert re.search(r"& (\w+)=\$!; \\$", line) and "$logistics" in plan.split("trap ", 1)[1].split("\n", 1)[0]
    argv = shlex.split(line.split("&", 1)[0])
    assert argv[1:5] == ["-m", "mobipay.simulators.logistics", "--port", str(port)], argv
    # Started as make run starts it (the demo's key is the settings' default), it answers the real client.
    proc = subprocess.Popen([sys.executable, *argv[1:]])
    try:
        tracking = wait_for(lambda: _try_create(port), 30, "the carrier make run starts")
        assert tracking is not None
        asyncio.run(_picked_up(f"http://127.0.0.1:{port}", defaults.logistics_key.get_secret_value(), tracking))
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def _picked_up(url: str, key: str, tracking: str) -> None:
    client = HttpLogistics(url, key)
    try:
        [picked] = await client.events(tracking)
        assert (picked.status, picked.place) == ("picked_up", "发货仓")
        assert await client.create("mo_make_run", "宁乡县", "东鹜村便民店") == tracking  # the order id: same parcel
    finally:
        await client.close()


def _try_create(port: int) -> str | None:
    """A shipment once the carrier answers (None while it is starting)."""
    try:
        r = httpx.post(
            f"http://127.0.0.1:{port}/v1/shipments",
            headers={"X-Logistics-Key": "demo-logistics-key"},
            json={"order_id": "mo_make_run", "county": "宁乡县", "address": "东鹜村便民店"},
            timeout=2,
        )
    except httpx.HTTPError:
        return None
    return str(r.json()["tracking_no"]) if r.status_code == 200 else None


async def test_a_village_order_goes_through_the_running_carrier(c: Rig, carrier: str) -> None:
    client = HttpLogistics(carrier, KEY)
    c.rural_market.logistics = client
    try:
        seller, p = await rice(c)
        me = await agent_with_float(c)
        await funded(c, VILLAGER, 0)
        o = await c.rural_market.agent_order(me, VILLAGER, p.id, 2, paid_by="cash", idempotency_key="carrier-1")
        assert await money(c, float_account(me.agent_id), ESCROW) == [100_000 - 13_600, 13_600]
        shipped = await c.rural_market.ship(seller, o.id)
        assert shipped.state == "shipped" and shipped.tracking_no is not None
        assert (await c.rural_market.ship(seller, o.id)).tracking_no == shipped.tracking_no  # once per order
        assert await c.rural_market.track() == 1
        assert "已揽收（发货仓）" in (await texts_to(c, VILLAGER))[-1]
        async with httpx.AsyncClient(base_url=carrier) as sim:
            (await sim.post(f"/sim/shipments/{shipped.tracking_no}/advance")).raise_for_status()
            assert await c.rural_market.track() == 1
            assert "运输中（宁乡县分拣中心）" in (await texts_to(c, VILLAGER))[-1]
            assert await money(c, ESCROW) == [13_600]  # in transit: still held
            (await sim.post(f"/sim/shipments/{shipped.tracking_no}/advance")).raise_for_status()
        assert await c.rural_market.track() == 1
        assert await c.rural_market.track() == 0  # each event texted once
        notice = (await texts_to(c, VILLAGER))[-1]
        assert "已到村服务点" in notice and "取货码" in notice
        steps = await c.rural_market.shipment(o.id)
        assert [s for s, _, _ in steps] == list(STEPS[:3])
        assert [at for _, _, at in steps] == sorted(at for _, _, at in steps)
        assert (await c.rural_market.pick_up(me, o.id, notice.split("取货码")[1][:6])).state == "released"
        coop = (await c.wallet.user_by_msisdn(COOP)).account_code
        assert await money(c, ESCROW, coop, MARKET_FEES, float_account(me.agent_id)) == [
            0,
            13_600 - 408,
            408,
            100_000 - 13_600,
        ]
        assert (await c.ledger.verify()).ok
    finally:
        await client.close()


async def test_with_step_s_the_carrier_moves_by_itself() -> None:
    url, proc = _simulator("logistics", "--secret", KEY, "--step-s", "0.2")
    client = HttpLogistics(url, KEY)
    try:
        tracking = await client.create("mo_auto", "宁乡县", "灰汤村小卖部")
        found = await events_until(client, tracking, len(STEPS))
        assert [e.status for e in found] == list(STEPS)
        assert [e.place for e in found] == ["发货仓", "宁乡县分拣中心", "灰汤村小卖部", "灰汤村小卖部"]
        assert [e.at - found[0].at for e in found] == [timedelta(seconds=0.2 * k) for k in range(4)]
        assert len(await client.events(tracking)) == len(STEPS)  # delivered is the last
    finally:
        await client.close()
        proc.terminate()
        proc.wait(timeout=10)


async def test_the_carrier_stamps_each_step_with_its_own_time() -> None:
    """In process on a test's clock: a shipment read late shows when the parcel moved."""
    clock = ManualClock()
    app = create_logistics_app(KEY, step_s=3_600, now=clock.now)
    client = HttpLogistics("http://carrier", KEY, transport=httpx.ASGITransport(app=app))
    stranger = HttpLogistics("http://carrier", "wrong", transport=httpx.ASGITransport(app=app))
    try:
        start = clock.now()
        tracking = await client.create("mo_1", "宁乡县", "东鹜村便民店")
        clock.advance(3_599)
        assert [e.status for e in await client.events(tracking)] == ["picked_up"]
        clock.advance(1 + 3 * 3_600)  # read a day late
        found = await client.events(tracking)
        assert [(e.status, e.at - start) for e in found] == [(s, timedelta(hours=k)) for k, s in enumerate(STEPS)]
        for call in (client.events("SF0000000099"), stranger.events(tracking), stranger.create("mo_2", "x", "y")):
            with pytest.raises(MobipayError) as info:
                await call
            assert info.value.code == "LOGISTICS_UNAVAILABLE"
    finally:
        await client.close()
        await stranger.close()
