"""The rural marketplace on SQLite and PostgreSQL, with the logistics partner's SIMULATOR:
escrow released by the buyer's confirmation, by time, refunded by a staff decision on a
dispute (and at an undecided dispute's deadline); an order placed by an agent for a villager,
paid in cash, delivered to the village point and picked up with the SMS code; shipment SMS
at each step; price notices by subscription. Every balance and the escrow asserted."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from mobipay.app.bootstrap import Container
from mobipay.rural.logistics_http import HttpLogistics
from mobipay.rural.market import ESCROW, MARKET_FEES, Product
from mobipay.rural.service import float_account
from mobipay.simulators.logistics import create_logistics_app
from mobipay.wallet.service import Principal
from tests.integration.test_rural_agents import (
    VILLAGER,
    Rig,
    agent_with_float,
    funded,
    money,
    refused,
    texts_to,
)
from tests.integration.test_rural_agents import c as c  # the rural services' fixture
from tests.integration.test_rural_agents import clock as clock
from tests.integration.test_rural_agents import full as full
from tests.integration.test_sms_channel import texted

COOP, BUYER = "+8613500135001", "+8613900139001"


@pytest.fixture
async def carrier(c: Rig) -> AsyncIterator[httpx.AsyncClient]:
    """The logistics SIMULATOR in process; the marketplace's real client talks to it."""
    app = create_logistics_app("k")
    c.rural_market.logistics = HttpLogistics("http://logistics", "k", transport=httpx.ASGITransport(app=app))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://logistics") as sim:
        yield sim


async def rice(c: Rig, stock: int = 10) -> tuple[str, Product]:
    await funded(c, COOP, 0)
    seller = await c.rural_market.add_seller(COOP, "东鹜村水稻合作社", "coop", "宁乡县")
    p = await c.rural_market.list_product(seller, title="灰汤贡米 5kg", price=6_800, unit="袋", stock=stock,
                                          origin="湖南宁乡灰汤镇", photos=["/static/rice.jpg"],
                                          delivery=["宁乡县", "长沙市区"])
    return seller, p


async def advance(sim: httpx.AsyncClient, tracking: str, times: int = 1) -> None:
    for _ in range(times):
        (await sim.post(f"/sim/shipments/{tracking}/advance")).raise_for_status()


async def test_escrow_released_by_the_buyers_confirmation(c: Rig, carrier: httpx.AsyncClient) -> None:
    seller, p = await rice(c)
    buyer: Principal = await funded(c, BUYER, 50_000)
    assert await refused(c.rural_market.order(buyer, p.id, 2, county="北京", address="朝阳区",
                                              idempotency_key="o0")) == "RURAL_NOT_DELIVERABLE"
    assert await refused(c.rural_market.order(buyer, p.id, 11, county="长沙市区", address="x",
                                              idempotency_key="o0")) == "RURAL_OUT_OF_STOCK"
    o = await c.rural_market.order(buyer, p.id, 2, county="长沙市区", address="岳麓区 1 号", idempotency_key="o1")
    assert (o.amount, o.fee, o.state) == (13_600, 408, "paid")  # 3% fee, taken at release
    assert (await c.rural_market.order(buyer, p.id, 2, county="长沙市区", address="岳麓区 1 号",
                                       idempotency_key="o1")).replayed
    coop = (await c.wallet.user_by_msisdn(COOP)).account_code
    assert await money(c, buyer.account_code, ESCROW, coop) == [50_000 - 13_600, 13_600, 0]
    assert (await c.rural_market.product(p.id)).stock == 8
    shipped = await c.rural_market.ship(seller, o.id)
    assert shipped.state == "shipped" and shipped.tracking_no
    assert await c.rural_market.track() == 1  # picked up
    await advance(carrier, shipped.tracking_no, 3)
    assert await c.rural_market.track() == 3
    assert await c.rural_market.track() == 0  # each event texted once
    texts = await texts_to(c, BUYER)
    assert [t for t in texts if "已揽收" in t or "运输中" in t or "已送达" in t].__len__() == 3
    assert [s for s, _, _ in await c.rural_market.shipment(o.id)] == ["picked_up", "in_transit", "at_village_point",
                                                                      "delivered"]
    done = await c.rural_market.confirm_receipt(buyer, o.id)
    assert done.state == "released"
    assert await money(c, ESCROW, coop, MARKET_FEES) == [0, 13_600 - 408, 408]
    assert await refused(c.rural_market.dispute(buyer, o.id, "坏了")) == "RURAL_ORDER_STATE"
    assert (await c.ledger.verify()).ok


async def test_escrow_released_by_time_and_refunded_by_dispute(c: Rig, carrier: httpx.AsyncClient) -> None:
    _, p = await rice(c)
    buyer = await funded(c, BUYER, 50_000)
    coop = (await c.wallet.user_by_msisdn(COOP)).account_code
    timed = await c.rural_market.order(buyer, p.id, 1, county="宁乡县", address="a", idempotency_key="t")
    disputed = await c.rural_market.order(buyer, p.id, 1, county="宁乡县", address="a", idempotency_key="d")
    lapsed = await c.rural_market.order(buyer, p.id, 1, county="宁乡县", address="a", idempotency_key="l")
    assert await c.rural_market.release_due() == 0
    await c.rural_market.dispute(buyer, disputed.id, "米发霉了")
    await c.rural_market.dispute(buyer, lapsed.id, "没收到")
    assert await refused(c.rural_market.decide_dispute(disputed.id, actor="rita", refund=True)) == "ROLE_REQUIRED"
    back = await c.rural_market.decide_dispute(disputed.id, actor="olga", refund=True, note="照片为证")
    assert back.state == "refunded"
    assert await money(c, buyer.account_code, ESCROW) == [50_000 - 2 * 6_800, 2 * 6_800]
    c.clock.advance(5 * 86_400)  # type: ignore[attr-defined]  # the undecided dispute's deadline
    assert await c.rural_market.release_due() == 1
    assert (await c.rural_market.get(lapsed.id)).state == "refunded"
    assert await money(c, buyer.account_code, ESCROW) == [50_000 - 6_800, 6_800]
    c.clock.advance(5 * 86_400)  # type: ignore[attr-defined]  # 10 days after payment: released by time
    assert await c.rural_market.release_due() == 1
    assert (await c.rural_market.get(timed.id)).state == "released"
    assert await money(c, ESCROW, coop, MARKET_FEES) == [0, 6_800 - 204, 204]
    assert await refused(c.rural_market.dispute(buyer, timed.id, "late")) == "RURAL_ORDER_STATE"
    assert (await c.rural_market.product(p.id)).stock == 10 - 1  # refunded orders' stock is back
    assert (await c.ledger.verify()).ok


async def test_agent_order_paid_in_cash_picked_up_with_the_code(c: Rig, carrier: httpx.AsyncClient) -> None:
    seller, p = await rice(c)
    me = await agent_with_float(c)
    await funded(c, VILLAGER, 0)
    o = await c.rural_market.agent_order(me, VILLAGER, p.id, 3, paid_by="cash", idempotency_key="ao1")
    assert (o.paid_by, o.agent_id, o.amount) == ("cash", me.agent_id, 20_400)
    assert await money(c, float_account(me.agent_id), ESCROW) == [100_000 - 20_400, 20_400]
    assert "已为您订购灰汤贡米" in (await texts_to(c, VILLAGER))[-1]
    shipped = await c.rural_market.ship(seller, o.id)
    assert shipped.tracking_no is not None
    await advance(carrier, shipped.tracking_no, 2)  # in transit, at the village point
    assert await c.rural_market.track() == 3
    notice = next(t for t in await texts_to(c, VILLAGER) if "请到服务点出示" in t)
    code = notice.split("取货码")[1][:6]
    wrong = "000000" if code != "000000" else "111111"
    assert await refused(c.rural_market.pick_up(me, o.id, wrong)) == "RURAL_CODE_WRONG"
    other = await agent_with_float(c, "+8613600136002", fen=0)
    assert await refused(c.rural_market.pick_up(other, o.id, code)) == "RURAL_ORDER_NOT_FOUND"
    assert await money(c, ESCROW) == [20_400]  # not picked up: still held
    assert (await c.rural_market.pick_up(me, o.id, code)).state == "released"
    assert (await c.rural_market.pick_up(me, o.id, code)).replayed  # typed twice: paid once
    coop = (await c.wallet.user_by_msisdn(COOP)).account_code
    assert await money(c, ESCROW, coop, MARKET_FEES) == [0, 20_400 - 612, 612]
    assert (await c.rural_market.get(o.id)).state == "released"
    assert (await c.ledger.verify()).ok


async def test_agent_order_paid_by_the_villagers_wallet_needs_their_pin(c: Rig) -> None:
    _, p = await rice(c)
    me = await agent_with_float(c)
    villager = await funded(c, VILLAGER, 30_000)
    await c.wallet.set_pin(VILLAGER, "258013")
    assert await refused(c.rural_market.agent_order(me, VILLAGER, p.id, 1, paid_by="wallet", pin="999999",
                                                    idempotency_key="w1")) == "PIN_INCORRECT"
    assert await money(c, villager.account_code, ESCROW) == [30_000, 0]
    o = await c.rural_market.agent_order(me, VILLAGER, p.id, 1, paid_by="wallet", pin="258013",
                                         idempotency_key="w1")
    assert o.paid_by == "wallet"
    assert await money(c, villager.account_code, ESCROW, float_account(me.agent_id)) == [30_000 - 6_800, 6_800,
                                                                                         100_000]


async def test_price_notices_by_subscription(full: Container) -> None:
    c = full
    await funded(c, VILLAGER, 0)
    [reply] = await texted(c, VILLAGER, "JG 玉米 宁乡县")
    assert "已订阅宁乡县玉米价格通知" in reply
    await texted(c, VILLAGER, "JG 玉米 宁乡县")  # twice: one subscription
    assert await refused(c.rural_market.publish_price("玉米", "宁乡县", 260, "斤", actor="rita")) == "ROLE_REQUIRED"
    assert await c.rural_market.publish_price("玉米", "宁乡县", 260, "斤", actor="olga") == 1
    assert await c.rural_market.publish_price("玉米", "浏阳市", 250, "斤", actor="olga") == 0
    assert "宁乡县玉米今日价格2.60元/斤" in (await texts_to(c, VILLAGER))[-1]
