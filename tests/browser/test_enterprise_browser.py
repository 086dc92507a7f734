"""The employer page in Chromium: the demo employer's HR signs in to the merchant portal, the
page lists the employees and draws its ECharts chart (what the allowance and the wallets paid
per day) from the page's figures under the strict Content-Security-Policy; on a 390×844 phone
nothing is wider than the screen. The live server runs on the wall clock, so the payment is
made now and the chart is checked by its sum (the split depends on the meal window)."""

from __future__ import annotations

import re
import time
from typing import Any

from mobipay.app.bootstrap import Container
from mobipay.app.demo_enterprise import EMPLOYEES, OWNER, PASSWORD, load_demo_enterprise
from mobipay.wallet.service import Principal
from tests.browser.conftest import Live
from tests.browser.test_every_page_on_a_phone import OVERFLOW
from tests.browser.test_wallet_browser import subscriber

NEWCOMER = "13600136000"


async def _setup(c: Container) -> tuple[str, float]:
    for number, _, _ in EMPLOYEES:  # the demo subscribers it enrols (mobipay demo makes them first)
        await c.wallet.create_user(number, actor="test", reason="demo employees")
    demo = await load_demo_enterprise(c)
    user = await c.wallet.user_by_msisdn(NEWCOMER)
    await c.enterprise.enrol(demo.employer_id, NEWCOMER, name="新同事")
    canteen = next(m for m, _, label in await c.enterprise.closed_loop_merchants(demo.employer_id)
                   if label == "canteen")
    store = (await c.merchants.stores(canteen))[0].id
    me = Principal(user.id, "browser", user.msisdn, user.account_code)
    await c.enterprise.pay(me, canteen, store, 1_800, idempotency_key="browser-lunch")
    return demo.employer_id, 18.0 + (0 if demo.lunch else 18.0)  # the demo's own lunch, when its wallet could pay


def test_employer_page_chart_and_phone_width(live: Live, desk: Any, phone: Any) -> None:
    subscriber(live, NEWCOMER, 10_000)
    employer_id, paid = live.call(_setup)
    for page in (desk, phone):
        page.goto(f"{live.url}/merchant/enterprise")
        assert "/merchant/signin" in page.url
        page.fill("#merchant_id", employer_id)
        page.fill("#name", OWNER)
        page.fill("#password", PASSWORD)
        page.get_by_role("button", name="登录").click()
        page.wait_for_url(re.compile(r"/merchant/enterprise$"))
        assert page.get_by_test_id("headcount").inner_text() == "6"
        deadline = time.monotonic() + 10
        while page.locator("#chart-enterprise canvas").count() == 0:
            assert time.monotonic() < deadline, "the chart was not drawn"
            time.sleep(0.05)
        drawn = page.evaluate("() => { const o = echarts.getInstanceByDom(document.getElementById("
                              "'chart-enterprise')).getOption(); return {x: o.xAxis[0].data, "
                              "series: o.series.map(s => [s.name, s.data])}; }")
        assert [s[0] for s in drawn["series"]] == ["企业补贴", "个人钱包"], drawn
        assert round(sum(sum(s[1]) for s in drawn["series"]), 2) == paid, drawn
        assert "新同事" in page.get_by_test_id("spending").inner_text()
    found = phone.evaluate(OVERFLOW)
    assert found["scroll"] <= found["inner"] == 390 and not found["out"], found
