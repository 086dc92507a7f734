"""The mobile web wallet in Chromium on a phone: sign in by SMS code, send money (the
recipient's masked real name shown first), top up a phone through the operator billing
SIMULATOR, pay a water bill through the billers SIMULATOR, with balances checked in the
books each time; a form without its CSRF token and another subscriber's receipt refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from mobipay.app.bootstrap import Container
from mobipay.ledger.chart import BANK_SETTLEMENT
from mobipay.ledger.model import Leg, Transfer
from tests.browser.conftest import Live
from tests.conftest import BILLER_SECRET, TELCO_SECRET

ALICE, BOB, CAROL = "13800138000", "13900139000", "13700137000"
PIN = "739154"


def subscriber(live: Live, number: str, balance: int = 0, pin: str | None = None) -> None:
    async def work(c: Container) -> None:
        user = await c.wallet.create_user(number, actor="test", reason="browser test")
        if balance:
            await c.ledger.post(Transfer(f"fund-{number}", (Leg.debit(BANK_SETTLEMENT, balance),
                                                             Leg.credit(user.account_code, balance)), "cash_in"))
        if pin:
            await c.wallet.set_pin(number, pin)

    live.call(work)


def balance(live: Live, number: str) -> int:
    async def work(c: Container) -> int:
        return (await c.ledger.account((await c.wallet.user_by_msisdn(number)).account_code)).balance

    return live.call(work)


def sign_in(live: Live, page: Any, number: str) -> None:
    page.goto(f"{live.url}/m")
    assert "/m/signin" in page.url
    page.fill("#msisdn", number)
    page.get_by_role("button", name="获取验证码").click()
    page.fill("#code", live.sms_code("+86" + number))
    page.get_by_role("button", name="登录").click()
    page.get_by_test_id("balance").wait_for()


def test_sign_in_and_transfer(live: Live, phone: Any) -> None:
    subscriber(live, ALICE, 50_000, PIN)
    subscriber(live, BOB)
    sign_in(live, phone, ALICE)
    assert phone.get_by_test_id("balance").inner_text() == "¥500.00"
    phone.get_by_role("link", name="转账").first.click()
    phone.fill("#to", BOB)
    phone.fill("#amount", "250")
    phone.fill("#note", "房租")
    phone.get_by_role("button", name="下一步").click()
    assert phone.get_by_test_id("recipient").inner_text().startswith("139****9000")
    assert phone.get_by_test_id("amount").inner_text() == "¥250.00"
    phone.fill("#pin", PIN)  # above the password-free 200 CNY
    phone.get_by_role("button", name="确认转账").click()
    assert "-¥250.00" in phone.get_by_test_id("receipt").inner_text()
    assert (balance(live, ALICE), balance(live, BOB)) == (25_000, 25_000)
    phone.goto(f"{live.url}/m?lang=en")
    assert phone.get_by_test_id("balance").inner_text() == "¥250.00"
    assert "Balance" in phone.content()


def test_top_up_through_the_operator(live_with: Callable[..., Live], telcos: dict[str, str], phone: Any) -> None:
    live = live_with(operator_billing_url=telcos["operator_billing"], aggregator_url=telcos["topup_aggregator"],
                     operator_billing_secret=TELCO_SECRET, aggregator_secret=TELCO_SECRET, partner_timeout_s=2.0)
    subscriber(live, ALICE, 50_000, PIN)
    price = live.call(lambda c: _price(c, ALICE, 5_000))
    sign_in(live, phone, ALICE)
    phone.goto(f"{live.url}/m/topup")
    assert phone.input_value("#msisdn") == ALICE  # one's own number by default
    phone.fill("#amount", "50")
    phone.get_by_role("button", name="查看价格").click()
    assert phone.get_by_test_id("price").inner_text() == f"¥{price // 100}.{price % 100:02d}"
    phone.get_by_role("button", name="确认支付").dblclick()  # an impatient double tap: one top-up
    assert phone.get_by_test_id("state").inner_text() == "成功"
    assert httpx.get(f"{telcos['operator_billing']}/sim/numbers/+86{ALICE}").json()["balance"] == 5_000
    assert balance(live, ALICE) == 50_000 - price


async def _price(c: Container, number: str, face: int) -> int:
    return c.topup.quote(number, face).price


def test_pay_a_water_bill(live_with: Callable[..., Live], billers_url: str, phone: Any) -> None:
    live = live_with(billers_url=billers_url, billers_secret=BILLER_SECRET, partner_timeout_s=2.0)

    async def billers(c: Container) -> None:
        from mobipay.bills.reference_data import shipped_billers

        await c.bills.import_billers(shipped_billers(), actor="test", reason="browser test")

    live.call(billers)
    subscriber(live, ALICE, 100_000, PIN)
    sign_in(live, phone, ALICE)
    phone.get_by_role("link", name="缴费").first.click()
    phone.select_option("#city", "上海")
    phone.select_option("#category", "water")
    phone.get_by_role("button", name="查找").click()
    phone.get_by_role("link", name="上海城投水务").click()
    phone.fill("#customer_id", "12345678")
    phone.get_by_role("button", name="查询账单").click()
    assert "应缴" in phone.get_by_test_id("bill").inner_text()
    due_text = phone.input_value("#amount")
    due = int(due_text.replace(".", ""))
    phone.fill("#pin", PIN)
    phone.get_by_role("button", name="确认缴费").click()
    assert phone.get_by_test_id("state").inner_text() == "成功"
    assert phone.get_by_test_id("ref").inner_text()  # the biller's receipt number
    assert balance(live, ALICE) == 100_000 - due


def test_a_form_without_its_csrf_token_is_refused(live: Live, phone: Any) -> None:
    subscriber(live, ALICE, 10_000)
    subscriber(live, BOB)
    sign_in(live, phone, ALICE)
    phone.goto(f"{live.url}/m/transfer")
    phone.fill("#to", BOB)
    phone.fill("#amount", "10")
    phone.get_by_role("button", name="下一步").click()
    phone.eval_on_selector("form[action='/m/transfer'] input[name=csrf]", "e => e.remove()")
    phone.get_by_role("button", name="确认转账").click()
    assert "reload" in phone.get_by_test_id("error").inner_text()
    assert (balance(live, ALICE), balance(live, BOB)) == (10_000, 0)


def test_another_subscribers_receipt_is_refused(live: Live, phone: Any) -> None:
    subscriber(live, ALICE, 10_000)
    subscriber(live, BOB)
    subscriber(live, CAROL)
    sign_in(live, phone, ALICE)
    phone.goto(f"{live.url}/m/transfer")
    phone.fill("#to", BOB)
    phone.fill("#amount", "12.34")
    phone.get_by_role("button", name="下一步").click()
    phone.get_by_role("button", name="确认转账").click()
    phone.get_by_test_id("receipt").wait_for()
    receipt_url = phone.url
    phone.goto(f"{live.url}/m")
    phone.get_by_role("button", name="退出登录").click()
    sign_in(live, phone, CAROL)
    response = phone.goto(receipt_url)
    assert response.status == 404
    assert "NOT_FOUND" in phone.get_by_test_id("error").inner_text()
    assert "12.34" not in phone.content()
