"""The village agent's page (/m/agent) in Chromium on a 390×844 phone: a demo agent's staff
member signs in with number and PIN, cashes in to a customer, sees the float drop and the
mini statement show the deposit; a refused cash-in says why in words and changes nothing.
The customer's wallet and the agent's float are asserted through the services, and nothing
on the page is wider than the phone."""

from __future__ import annotations

from typing import Any

from mobipay.app.bootstrap import Container
from mobipay.app.demo_rural import AGENTS, PIN, load_demo_rural
from mobipay.rural.service import float_account
from tests.browser.test_every_page_on_a_phone import OVERFLOW
from tests.browser.test_wallet_browser import balance, subscriber
from tests.support.live import Live

CUSTOMER = "13700137001"
AGENT = AGENTS[0][2].removeprefix("+86")  # 东鹜村便民店, 5,000 CNY of float from its super-agent


async def _demo(c: Container) -> str:
    await load_demo_rural(c)
    _, staff = await c.rural.sign_in(AGENT, PIN)
    return staff.agent_id


async def _float(c: Container, agent_id: str) -> int:
    return (await c.ledger.account(float_account(agent_id))).balance


def test_agent_signs_in_cashes_in_and_sees_float_and_statement(live: Live, phone: Any) -> None:
    subscriber(live, CUSTOMER)
    agent_id = live.call(_demo)
    assert live.call(lambda c: _float(c, agent_id)) == 500_000

    phone.goto(f"{live.url}/m/agent")
    phone.get_by_test_id("msisdn").fill(AGENT)
    phone.get_by_test_id("pin").fill(PIN)
    phone.get_by_test_id("signin").click()
    phone.get_by_test_id("float").filter(has_text="5000.00").wait_for()
    assert phone.get_by_test_id("who").inner_text() == AGENTS[0][0]
    assert phone.get_by_test_id("cash").inner_text() == "0.00"

    phone.get_by_test_id("ci-customer").fill(CUSTOMER)
    phone.get_by_test_id("ci-amount").fill("150")
    phone.get_by_test_id("ci-go").click()
    phone.get_by_test_id("result").filter(has_text="存款成功 Deposited 150.00").wait_for()
    phone.get_by_test_id("float").filter(has_text="4850.00").wait_for()  # the float drops by the deposit
    phone.get_by_test_id("cash").filter(has_text="150.00").wait_for()  # the till holds the customer's cash
    first = phone.get_by_test_id("statement").locator("li").first
    first.filter(has_text="150.00").wait_for()
    assert "cash_in" in first.inner_text() or "存款" in first.inner_text(), first.inner_text()
    assert balance(live, CUSTOMER) == 15_000
    assert live.call(lambda c: _float(c, agent_id)) == 485_000

    # Over the 5,000 CNY an agent may take at once: refused in words, nothing moves.
    phone.get_by_test_id("ci-customer").fill(CUSTOMER)
    phone.get_by_test_id("ci-amount").fill("6000")
    phone.get_by_test_id("ci-go").click()
    phone.get_by_test_id("result").filter(has_text="5000 CNY").wait_for()  # the refusal, said in words
    assert phone.get_by_test_id("float").inner_text() == "4850.00"
    assert phone.get_by_test_id("statement").locator("li").count() == 1  # only the deposit
    assert balance(live, CUSTOMER) == 15_000
    assert live.call(lambda c: _float(c, agent_id)) == 485_000
    assert live.call(lambda c: c.ledger.verify()).ok

    found = phone.evaluate(OVERFLOW)
    assert found["scroll"] <= found["inner"] == 390 and not found["out"], found


def test_a_wrong_pin_is_said_on_the_sign_in_screen(live: Live, phone: Any) -> None:
    live.call(_demo)
    phone.goto(f"{live.url}/m/agent")
    phone.get_by_test_id("msisdn").fill(AGENT)
    phone.get_by_test_id("pin").fill("000000")
    with phone.expect_response("**/v1/rural/agent/sessions") as answer:
        phone.get_by_test_id("signin").click()
    assert answer.value.status == 401
    assert phone.locator("#desk").is_hidden() and phone.get_by_test_id("signin").is_visible()
    phone.get_by_text("PIN is wrong").wait_for(timeout=3_000)  # said in words where the agent looks
