"""The console's dashboard in Chromium: ECharts draws the trend, the map of China by
province, the cities, the products and the actives from the page's figures (canvas
present, series not empty, Chinese titles); the 7 / 30 / 90-day selector fetches the
JSON and redraws with other figures; a province opens on its cities."""

from __future__ import annotations

import re
import time
from typing import Any

from mobipay.app.bootstrap import Container
from mobipay.app.demo_big import load_demo_history
from mobipay.bills.reference_data import shipped_billers
from tests.browser.conftest import Live

PASSWORD = "correct horse battery"
CHARTS = ("chart-trend", "chart-map", "chart-city", "chart-product", "chart-actives")


def history(live: Live) -> None:
    async def work(c: Container) -> None:
        await c.bills.import_billers(shipped_billers(), actor="test", reason="registry")
        await load_demo_history(c.db, c.ledger, c.clock, users_count=300, payments=3000)
        await c.operators.create("olga", PASSWORD, ["operations"], actor="test", reason="browser test")

    live.call(work)


def option(page: Any, chart: str) -> dict[str, Any]:
    """What ECharts is drawing in one chart (its resolved option)."""
    found: dict[str, Any] = page.evaluate(
        "id => { const c = window.mobipayDashboard.charts[id]; const o = c.getOption();"
        " return {title: o.title.map(t => t.text), series: o.series.map(s => ({type: s.type, map: s.map,"
        " name: s.name, n: (s.data || []).length, sum: (s.data || []).reduce((a, d) =>"
        " a + (typeof d === 'number' ? d : (d && d.value) || 0), 0)})),"
        " x: o.xAxis && o.xAxis.length ? o.xAxis[0].data || [] : []}; }", chart)
    return found


def wait_until(check: Any, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_dashboard_draws_its_charts_and_map_and_the_window_selector_changes_them(live: Live, desk: Any) -> None:
    history(live)
    desk.goto(f"{live.url}/console")
    desk.fill("#name", "olga")
    desk.fill("#password", PASSWORD)
    desk.get_by_role("button", name="登录").click()
    desk.wait_for_url(re.compile(r"/console$"))
    desk.wait_for_selector("body[data-charts=drawn]")
    for chart in CHARTS:  # each chart drew itself on a canvas
        assert desk.locator(f"#{chart} canvas").count() >= 1, chart
    trend = option(desk, "chart-trend")
    assert trend["title"] == ["支付趋势（按日）"] and len(trend["x"]) == 30
    assert {s["name"] for s in trend["series"]} >= {"转账", "话费充值", "生活缴费", "商户消费", "支付笔数"}
    assert all(s["n"] == 30 for s in trend["series"]) and sum(s["sum"] for s in trend["series"]) > 0
    china = option(desk, "chart-map")
    assert china["title"] == ["各省支付金额"] and china["series"][0]["map"] == "china"
    assert china["series"][0]["n"] >= 10 and china["series"][0]["sum"] > 0  # provinces with payments
    cities = option(desk, "chart-city")
    assert cities["title"] == ["城市支付金额（前15）"] and cities["series"][0]["n"] == 15
    products = option(desk, "chart-product")
    assert products["title"] == ["各产品支付金额与交易额"] and products["series"][0]["n"] >= 4
    assert option(desk, "chart-actives")["series"][0]["n"] == 30
    month_count = int(desk.get_by_test_id("count").inner_text())
    assert month_count > 0 and desk.get_by_role("link", name="近30天").get_attribute("aria-current") == "true"

    desk.get_by_role("link", name="近7天").click()  # fetched as JSON, drawn again: no page load
    desk.wait_for_selector("body[data-days='7']")
    assert desk.url.endswith("/console?days=7")
    week = option(desk, "chart-trend")
    assert len(week["x"]) == 7 and all(s["n"] == 7 for s in week["series"])
    assert week["x"] == trend["x"][-7:]
    week_count = int(desk.get_by_test_id("count").inner_text())
    assert 0 < week_count < month_count
    assert option(desk, "chart-actives")["series"][0]["n"] == 7

    desk.get_by_role("link", name="近90天").click()
    desk.wait_for_selector("body[data-days='90']")
    assert len(option(desk, "chart-trend")["x"]) == 90
    assert int(desk.get_by_test_id("count").inner_text()) > month_count

    desk.evaluate("name => window.mobipayDashboard.open(name)", "广东")  # as a click on the province does
    wait_until(lambda: option(desk, "chart-map")["series"][0]["map"] == "广东", "the province map opened")
    opened = option(desk, "chart-map")
    assert opened["title"] == ["广东各城市支付金额"] and opened["series"][0]["n"] >= 1
    assert option(desk, "chart-city")["title"] == ["广东各城市支付金额"]
    desk.reload()  # the window is in the address: the page opens on it again
    desk.wait_for_selector("body[data-charts=drawn]")
    assert len(option(desk, "chart-trend")["x"]) == 90
    assert desk.get_by_role("link", name="近90天").get_attribute("aria-current") == "true"
