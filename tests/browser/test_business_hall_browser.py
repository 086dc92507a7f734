"""The online business hall in Chromium on a desktop: from the front page, top
up a friend's number (the telco SIMULATOR credits it) signing in as the payer by SMS code
on the way, then pay a water bill (the billers SIMULATOR); balances checked in the books."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from mobipay.app.bootstrap import Container
from tests.browser.conftest import Live
from tests.browser.test_wallet_browser import ALICE, BOB, PIN, balance, subscriber
from tests.conftest import BILLER_SECRET, TELCO_SECRET


@pytest.fixture
def hall(live_with: Callable[..., Live], telcos: dict[str, str], billers_url: str) -> Live:
    live = live_with(operator_billing_url=telcos["operator_billing"], aggregator_url=telcos["topup_aggregator"],
                     operator_billing_secret=TELCO_SECRET, aggregator_secret=TELCO_SECRET, billers_url=billers_url,
                     billers_secret=BILLER_SECRET, partner_timeout_s=2.0)

    async def billers(c: Container) -> None:
        from mobipay.bills.reference_data import shipped_billers

        await c.bills.import_billers(shipped_billers(), actor="test", reason="browser test")

    live.call(billers)
    return live


def test_top_up_a_friend_then_pay_a_water_bill(hall: Live, telcos: dict[str, str], desk: Any) -> None:
    live, page = hall, desk
    subscriber(live, ALICE, 100_000, PIN)
    subscriber(live, BOB)
    page.goto(live.url + "/")
    assert page.get_by_role("link", name="手机钱包").first.get_attribute("href") == "/m"
    for name, href in (("商户平台", "/merchant"), ("运营后台", "/console"), ("API 文档", "/docs")):
        assert page.get_by_role("link", name=name).first.get_attribute("href") == href
    page.fill("#msisdn", BOB)
    page.select_option("#amount", "50")
    page.get_by_role("button", name="查看价格").click()
    price_text = page.get_by_test_id("price").inner_text()
    price = int(price_text.removeprefix("¥").replace(".", ""))
    assert page.get_by_test_id("number").inner_text() == "139****9000" and 0 < price <= 5_000

    page.fill("#payer_msisdn", ALICE)  # not signed in: the payer signs in here
    page.get_by_role("button", name="获取验证码").click()
    page.fill("#code", live.sms_code("+86" + ALICE))
    page.get_by_role("button", name="登录并继续").click()
    assert page.get_by_test_id("price").inner_text() == price_text  # back on the same price
    assert "138****8000" in page.get_by_test_id("payer").inner_text()
    page.get_by_role("button", name=f"确认支付 {price_text}").dblclick()  # an impatient double click: one top-up
    assert page.get_by_test_id("state").inner_text() == "成功"
    assert "/hall/topups/" in page.url
    assert httpx.get(f"{telcos['operator_billing']}/sim/numbers/+86{BOB}").json()["balance"] == 5_000
    assert balance(live, ALICE) == 100_000 - price

    page.get_by_role("link", name="生活缴费").first.click()
    page.select_option("#city", "上海")
    page.select_option("#category", "water")
    page.get_by_role("button", name="查找").click()
    page.get_by_role("link", name="上海城投水务").click()
    page.fill("#customer_id", "12345678")
    page.get_by_role("button", name="查询账单").click()
    assert "应缴" in page.get_by_test_id("bill").inner_text()
    due = int(page.input_value("#amount").replace(".", ""))
    page.fill("#pin", PIN)
    page.get_by_role("button", name="确认缴费").click()
    assert page.get_by_test_id("state").inner_text() == "成功"
    assert page.get_by_test_id("ref").inner_text()  # the biller's receipt number
    assert balance(live, ALICE) == 100_000 - price - due
    assert f"¥{(100_000 - price - due) // 100}." in page.get_by_test_id("available").inner_text()
