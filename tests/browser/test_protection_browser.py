"""Handset protection in Chromium: a subscriber enrols a phone on the mobile web page at
390×844 (nothing wider than the screen; a bad IMEI shown in words, the form kept), and the
console's report draws its ECharts chart (enrolments and claims by city, the approval rate)
from the page's figures under the strict Content-Security-Policy.

The programme's period is widened for the test (the live server runs on the wall clock)."""

from __future__ import annotations

import dataclasses
import re
import time
from datetime import date
from typing import Any

from stdnum import luhn

from mobipay.app.bootstrap import Container
from tests.browser.conftest import Live
from tests.browser.test_every_page_on_a_phone import OVERFLOW
from tests.browser.test_wallet_browser import sign_in, subscriber

NUMBER, PIN = "13800138000", "135790"
PASSWORD = "correct horse battery"
IMEI = "35328111000055" + luhn.calc_check_digit("35328111000055")


def always_open(live: Live) -> None:
    async def work(c: Container) -> None:
        p = c.protection.programmes["hunan-2026"]
        c.protection.programmes["hunan-2026"] = dataclasses.replace(p, starts=date(2000, 1, 1), ends=date(2100, 1, 1))

    live.call(work)


def test_enrol_on_a_phone_and_the_report_chart(live: Live, phone: Any, browser: Any) -> None:
    always_open(live)
    subscriber(live, NUMBER, 50_000, PIN)
    sign_in(live, phone, NUMBER)
    phone.get_by_test_id("protection-link").click()
    phone.wait_for_url(re.compile(r"/m/protection$"))
    today = live.call(lambda c: _today(c))
    phone.fill("#imei", IMEI[:-1] + str((int(IMEI[-1]) + 1) % 10))
    phone.fill("#price", "2999")
    phone.fill("#purchased_on", today)
    phone.fill("#receipt", "FP-2026-1")
    phone.select_option("#city", "changsha")
    phone.get_by_role("button", name="办理并支付首月费用").click()
    error = phone.get_by_test_id("error")
    assert "IMEI_INVALID" in error.inner_text() and phone.input_value("#price") == "2999"
    phone.fill("#imei", IMEI)
    phone.get_by_role("button", name="办理并支付首月费用").click()
    phone.get_by_test_id("done").wait_for()
    assert "iPhone 15" in phone.get_by_test_id("enrolments").inner_text()
    found = phone.evaluate(OVERFLOW)
    assert found["scroll"] <= found["inner"] == 390 and not found["out"], found

    live.call(lambda c: c.operators.create("li", PASSWORD, ["support"], actor="test", reason="browser test"))
    ctx = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    desk = ctx.new_page()
    try:
        desk.goto(f"{live.url}/console/protection/report")
        desk.fill("#name", "li")
        desk.fill("#password", PASSWORD)
        desk.get_by_role("button", name="登录").click()
        desk.wait_for_url(re.compile(r"/console/protection/report$"))
        deadline = time.monotonic() + 10
        while desk.locator("#chart-protection canvas").count() == 0:
            assert time.monotonic() < deadline, "the chart was not drawn"
            time.sleep(0.05)
        drawn = desk.evaluate("() => { const o = echarts.getInstanceByDom(document.getElementById("
                              "'chart-protection')).getOption(); return {x: o.xAxis[0].data, "
                              "series: o.series.map(s => [s.name, s.data])}; }")
        assert drawn["x"] == ["长沙"] and drawn["series"][0] == ["办理", [1]], drawn
        assert "长沙" in desk.get_by_test_id("report").inner_text()
    finally:
        ctx.close()


async def _today(c: Container) -> str:
    return c.protection.today().isoformat()
