"""The merchant portal in Chromium on a desktop: the shop's owner signs in, finds the
order, refunds part of it with the refund PIN (a wrong PIN first refused), balances
checked in the books; another merchant's order by URL refused."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import Live
from tests.e2e.test_merchant_portal import PASSWORD, REFUND_PIN, balance, seed_shop
from tests.e2e.test_merchants_api import _other_code


def sign_in(live: Live, desk: Any, merchant_id: str) -> None:
    desk.goto(f"{live.url}/merchant")
    assert "/merchant/signin" in desk.url
    desk.fill("#merchant_id", merchant_id)
    desk.fill("#name", "owner")
    desk.fill("#password", PASSWORD)
    desk.get_by_role("button", name="登录").click()
    desk.get_by_test_id("orders").wait_for()


def test_merchant_refund_with_the_operator_pin(live: Live, desk: Any) -> None:
    merchant_id, _ = seed_shop(live.call)
    merchant_account = live.call(lambda c: c.merchants.merchant(merchant_id)).account_code
    sign_in(live, desk, merchant_id)
    desk.fill("#q", "B-1")
    desk.get_by_role("button", name="查询").click()
    desk.get_by_role("link", name="B-1").click()
    assert desk.get_by_test_id("state").inner_text() == "TRADE_SUCCESS"
    desk.fill("#amount", "15.50")
    desk.fill("#refund_pin", "135790")
    desk.get_by_role("button", name="确认退款").click()
    assert "REFUND_PIN_INCORRECT" in desk.get_by_test_id("error").inner_text()
    assert balance(live.call) == 4_000
    desk.fill("#refund_pin", REFUND_PIN)
    desk.get_by_role("button", name="确认退款").click()
    assert "15.50" in desk.get_by_test_id("done").inner_text()
    assert desk.get_by_test_id("refunded").inner_text() == "¥15.50"
    assert balance(live.call) == 4_000 + 1_550
    assert balance(live.call, merchant_account) == 6_000 - 1_550


def test_another_merchants_order_is_refused(live: Live, desk: Any) -> None:
    mine, _ = seed_shop(live.call)
    _, theirs = seed_shop(live.call, credit_code=_other_code(), out_trade_no="D-9", amount=3_000)
    sign_in(live, desk, mine)
    response = desk.goto(f"{live.url}/merchant/orders/{theirs}")
    assert response.status == 404
    assert "TRADE_NOT_FOUND" in desk.get_by_test_id("error").inner_text()
    assert "D-9" not in desk.content()
