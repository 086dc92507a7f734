"""The operator console in Chromium: a reversal by maker-checker between two operators in
two browsers (the maker cannot approve their own request; the checker approves and the
money goes back), an operator without the role gets the 403 page, and a form without its
CSRF token is refused."""

from __future__ import annotations

import re
from typing import Any

from mobipay.app.bootstrap import Container
from mobipay.ledger.chart import BANK_SETTLEMENT
from mobipay.ledger.model import Leg, Transfer
from tests.browser.conftest import SHOTS, Live

PASSWORD = "correct horse battery"
A, B = "13800138000", "13900139000"


def operator(live: Live, name: str, *roles: str) -> None:
    live.call(lambda c: c.operators.create(name, PASSWORD, roles, actor="test", reason="browser test"))


def wallets_and_a_mistake(live: Live) -> None:
    async def work(c: Container) -> None:
        a = await c.wallet.create_user(A, actor="test", reason="browser test")
        b = await c.wallet.create_user(B, actor="test", reason="browser test")
        await c.ledger.post(Transfer("fund", (Leg.debit(BANK_SETTLEMENT, 10_000), Leg.credit(a.account_code, 10_000)),
                                     "cash_in"))
        await c.ledger.post(Transfer("tr-wrong-number", (Leg.debit(a.account_code, 4_200),
                                                         Leg.credit(b.account_code, 4_200)), "p2p"))

    live.call(work)


def balance(live: Live, number: str) -> int:
    async def work(c: Container) -> int:
        return (await c.ledger.account((await c.wallet.user_by_msisdn(number)).account_code)).balance

    return live.call(work)


def sign_in(page: Any, live: Live, name: str, target: str) -> None:
    page.goto(f"{live.url}{target}")
    assert "/console/signin" in page.url  # not signed in yet: sent to sign in, then back
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(re.compile(re.escape(target.split("?")[0])))
    assert page.get_by_test_id("operator").inner_text().startswith(name)


def test_console_reversal_with_maker_checker(live: Live, desk: Any, browser: Any) -> None:
    wallets_and_a_mistake(live)
    operator(live, "olga", "operations", "finance")
    operator(live, "fred", "finance")

    maker = desk
    sign_in(maker, live, "olga", "/console/transactions")
    maker.fill("#msisdn", A)
    maker.get_by_role("button", name="查询").click()
    maker.get_by_role("link", name="tr-wrong-number").click()
    assert maker.get_by_test_id("amount").inner_text() == "¥42.00"
    assert "wallet:+86" + A in maker.get_by_test_id("postings").inner_text()
    form = maker.get_by_test_id("request-reversal")
    form.get_by_placeholder("原因（必填，记入审计）").fill("转错号码，客户来电")
    form.get_by_role("button", name="申请冲正").click()
    assert "等待另一位操作员审批" in maker.get_by_test_id("notice").inner_text()
    assert maker.get_by_test_id("request-state").inner_text() == "pending"

    maker.get_by_role("link", name="冲正审批").click()
    row = maker.locator("tr", has_text="tr-wrong-number").first
    row.get_by_test_id("approve").get_by_placeholder("原因（必填，记入审计）").fill("我自己批")
    row.get_by_test_id("approve").get_by_role("button", name="批准").click()
    assert "MAKER_CHECKER" in maker.get_by_test_id("error").inner_text()
    assert balance(live, A) == 5_800 and balance(live, B) == 4_200  # nothing moved

    checker_ctx = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    checker_ctx.set_default_timeout(10_000)
    checker = checker_ctx.new_page()
    try:
        sign_in(checker, live, "fred", "/console/reversals")
        row = checker.locator("tr", has_text="tr-wrong-number").first
        assert "转错号码，客户来电" in row.inner_text() and "olga" in row.inner_text()
        row.get_by_test_id("approve").get_by_placeholder("原因（必填，记入审计）").fill("核对聊天记录")
        row.get_by_test_id("approve").get_by_role("button", name="批准").click()
        assert "已批准" in checker.get_by_test_id("notice").inner_text()
        assert balance(live, A) == 10_000 and balance(live, B) == 0
        checker.get_by_role("link", name="tr-wrong-number").first.click()
        assert checker.get_by_test_id("request-state").inner_text() == "approved"
        assert "reversal:" in checker.get_by_test_id("reversed-by").inner_text()
        SHOTS.mkdir(parents=True, exist_ok=True)
        checker.screenshot(path=str(SHOTS / "test_console_reversal_with_maker_checker-checker.png"), full_page=True)
    finally:
        checker_ctx.close()
    maker.goto(f"{live.url}/console/transactions/tr-wrong-number")
    assert maker.get_by_test_id("request-state").inner_text() == "approved"
    assert maker.get_by_test_id("request-reversal").count() == 0  # reversed: nothing more to ask


def test_operator_without_the_role_cannot_reach_the_page(live: Live, desk: Any) -> None:
    wallets_and_a_mistake(live)
    operator(live, "sue", "support")
    sign_in(desk, live, "sue", f"/console/users/{A}")
    assert desk.get_by_test_id("status").inner_text() == "active"
    response = desk.goto(f"{live.url}/console/reversals")
    assert response.status == 403
    assert "无权访问" in desk.get_by_test_id("forbidden").inner_text()
    response = desk.goto(f"{live.url}/console/recon?lang=en")
    assert response.status == 403 and "Finance" in desk.content()
    desk.goto(f"{live.url}/console/users/{A}")
    assert desk.get_by_test_id("freeze").count() == 1  # the form is shown, but posting it is refused…
    desk.get_by_test_id("freeze").get_by_role("textbox").fill("try anyway")
    desk.get_by_test_id("freeze").get_by_role("button").click()
    assert "Not allowed" in desk.get_by_test_id("forbidden").inner_text()
    desk.goto(f"{live.url}/console/users/{A}")
    assert desk.get_by_test_id("status").inner_text() == "active"  # …and changes nothing


def test_console_form_without_csrf_token_is_refused(live: Live, desk: Any) -> None:
    wallets_and_a_mistake(live)
    operator(live, "rita", "risk")
    sign_in(desk, live, "rita", f"/console/users/{A}")
    form = desk.get_by_test_id("freeze")
    desk.eval_on_selector("[data-testid=freeze] input[name=csrf]", "e => e.remove()")  # as if posted from elsewhere
    form.get_by_role("textbox").fill("fraud report")
    form.get_by_role("button").click()
    assert "reload" in desk.get_by_test_id("error").inner_text() or "刷新" in desk.get_by_test_id("error").inner_text()
    assert desk.get_by_test_id("status").inner_text() == "active"
    desk.get_by_test_id("freeze").get_by_role("textbox").fill("fraud report")
    desk.get_by_test_id("freeze").get_by_role("button").click()  # the page's own form, with its token, works
    assert desk.get_by_test_id("status").inner_text() == "frozen"
