"""The hosted cashier in Chromium, as a buyer on a phone: sign in by SMS code, pick a red
envelope, pay, land back at the shop; and a forged form (no CSRF token) refused."""

from __future__ import annotations

import secrets
import time
from typing import Any
from urllib.parse import urlencode

import httpx

from mobipay.app.bootstrap import Container
from mobipay.ledger.chart import BANK_SETTLEMENT
from mobipay.ledger.model import Leg, Transfer
from mobipay.merchants.signing import sign_hmac
from tests.browser.conftest import Live
from tests.e2e.test_merchants_api import application

BUYER = "13900139000"


def shop_with_trade(live: Live, amount_fen: int) -> tuple[str, Any]:
    """An approved book shop, a trade of ``amount_fen`` and a red-envelope campaign of 10 CNY."""
    merchant_id = httpx.post(f"{live.url}/v1/merchant-applications", json=application()).json()["id"]
    app_id, key = live.call(lambda c: c.merchants.create_app(merchant_id, "HMAC"))
    body: dict[str, Any] = {"app_id": app_id, "timestamp": str(int(time.time())), "nonce": secrets.token_hex(8),
                            "sign_type": "HMAC", "out_trade_no": "B-1", "total_amount": str(amount_fen),
                            "subject": "三体"}
    body["sign"] = sign_hmac(body, key.encode())  # type: ignore[union-attr]
    trade_id = httpx.post(f"{live.url}/v1/merchant/trades", json=body).json()["trade_no"]

    async def campaign(c: Container) -> Any:
        merchant = await c.merchants.merchant(merchant_id)
        await c.ledger.post(Transfer("seed", (Leg.debit(BANK_SETTLEMENT, 5_000), Leg.credit(merchant.account_code,
                                                                                            5_000)), "seed"))
        return await c.red_envelopes.create_campaign(merchant, name="满50减10", rule="threshold", face=1_000,
                                                     min_spend=5_000, budget=1_000, actor="shop")

    return trade_id, live.call(campaign)


def buyer(live: Live, balance: int) -> None:
    async def work(c: Container) -> None:
        user = await c.wallet.create_user(BUYER, actor="test", reason="browser test")
        await c.ledger.post(Transfer("fund", (Leg.debit(BANK_SETTLEMENT, balance),
                                              Leg.credit(user.account_code, balance)), "cash_in"))

    live.call(work)


def balance(live: Live) -> int:
    async def work(c: Container) -> int:
        return (await c.ledger.account((await c.wallet.user_by_msisdn(BUYER)).account_code)).balance

    return live.call(work)


def test_cashier_payment_in_a_browser(live: Live, phone: Any) -> None:
    trade_id, campaign = shop_with_trade(live, 6_000)
    buyer(live, 10_000)
    url = f"{live.url}/cashier/{trade_id}?return_url=https://book.example/return"
    phone.goto(url)
    assert phone.get_by_test_id("amount").inner_text() == "¥60.00"
    phone.fill("#msisdn", BUYER)
    phone.get_by_role("button", name="获取验证码 Send code").click()
    phone.fill("#code", live.sms_code("+86" + BUYER))
    phone.get_by_role("button", name="登录 Sign in").click()

    async def claim(c: Container) -> None:
        me = await c.wallet.principal((await c.wallet.user_by_msisdn(BUYER)).id)
        await c.red_envelopes.claim(me, campaign.id)

    live.call(claim)
    phone.goto(url)
    phone.select_option("#coupon", index=1)
    phone.get_by_role("button", name="确认支付 Pay").click()
    assert "支付成功" in phone.content()
    assert balance(live) == 10_000 - 5_000  # 60 CNY less the 10 CNY red envelope
    back = phone.get_by_role("link").first.get_attribute("href")
    assert back == "https://book.example/return?out_trade_no=B-1&trade_status=TRADE_SUCCESS"


def test_a_form_without_its_csrf_token_is_refused(live: Live, phone: Any) -> None:
    trade_id, _ = shop_with_trade(live, 6_000)
    buyer(live, 10_000)
    phone.goto(f"{live.url}/cashier/{trade_id}?return_url=https://book.example/return")
    phone.eval_on_selector("input[name=csrf]", "e => e.remove()")  # a form posted from elsewhere has no token
    phone.fill("#msisdn", BUYER)
    phone.get_by_role("button", name="获取验证码 Send code").click()
    assert "reload" in phone.get_by_test_id("error").inner_text()
    assert balance(live) == 10_000


#: Return URLs: bypass vectors mixed with honest spellings of the shop https://book.example.
VECTORS = [
    "https://evil.example\\@book.example/return", "https://evil.example\\.book.example/",
    "https://book.example\\evil.example/", "https:\\\\evil.example/", "/\\evil.example/", "https:evil.example/",
    "https:/evil.example/", "https:///evil.example/", "https://evil.example%5C@book.example/",
    "https://book.example@evil.example/", "https://evil.example@book.example/", "https://evil\t.example/",
    "https://book.example\n.evil.example/", "https://book.example%2eevil.example/", "https://book%2eexample/",
    "https://book。example.evil.example/", "https://BOOK.EXAMPLE./x", "https://book.example./",
    "javascript://book.example/%0aalert(1)", "https://2130706433/", "https://0x7f.1/",
    "https://book.example/return", "HTTPS://Book.Example/Return?x=1", "https://book。example/return",
    "https://ｂｏｏｋ.example/return", "https://book.example:8443/return#top",
]


def _browser_reads(phone: Any, raw: str) -> Any:
    """What Chromium's own URL parser makes of ``raw`` (relative to our page), or None."""
    return phone.evaluate("v => { try { const u = new URL(v, location.href);"
                          " return {protocol: u.protocol, host: u.hostname, user: u.username, href: u.href} }"
                          " catch (e) { return null } }", raw)


def test_what_we_accept_is_what_chromium_reads_as_the_shop(live: Live, phone: Any) -> None:
    """Chromium is the oracle: for every vector the cashier accepts, the browser's own URL
    parser lands on the shop's host (no user information, http(s)); every vector the
    browser would take elsewhere is refused by the cashier."""
    from mobipay.kernel.errors import MobipayError
    from mobipay.merchants.model import check_return_url

    phone.goto(f"{live.url}/healthz")
    for raw in VECTORS:
        seen = _browser_reads(phone, raw)
        try:
            sent = str(check_return_url(raw, "https://book.example"))
        except MobipayError:
            continue  # refused: whatever the browser reads, it never gets there
        assert seen is not None and seen["protocol"] in ("http:", "https:") and not seen["user"], raw
        assert seen["host"] == "book.example", (raw, seen)
        assert _browser_reads(phone, sent)["href"] == sent, raw  # we send exactly what the browser would write
    refused_elsewhere = [raw for raw in VECTORS if (_browser_reads(phone, raw) or {}).get("host") not in (
        "book.example", None)]
    assert len(refused_elsewhere) >= 10  # the vectors do aim elsewhere in a real browser


def test_the_done_page_sends_the_browser_to_the_shop_only(live: Live, phone: Any) -> None:
    """Pay in Chromium and follow the done page (its refresh and its link): the browser's
    next request goes to the shop's return URL; the reported bypass never gets a page, so
    the browser never leaves our origin."""
    trade_id, _ = shop_with_trade(live, 6_000)
    buyer(live, 10_000)
    elsewhere: list[str] = []

    def outside(route: Any) -> None:  # every request that leaves our server, recorded and answered
        elsewhere.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body="<title>shop</title>the shop")

    phone.route(lambda url: not url.startswith(live.url), outside)
    attack = phone.goto(f"{live.url}/cashier/{trade_id}?" + urlencode(
        {"return_url": "https://evil.example\\@book.example/return"}))
    assert attack is not None and attack.status == 400 and "RETURN_URL_REFUSED" in phone.content()
    assert elsewhere == []

    url = f"{live.url}/cashier/{trade_id}?return_url=https://book.example/return"
    phone.goto(url)
    phone.fill("#msisdn", BUYER)
    phone.get_by_role("button", name="获取验证码 Send code").click()
    phone.fill("#code", live.sms_code("+86" + BUYER))
    phone.get_by_role("button", name="登录 Sign in").click()
    phone.get_by_role("button", name="确认支付 Pay").click()
    phone.wait_for_url("https://book.example/**", timeout=15_000)  # the done page's refresh, polled
    assert elsewhere == ["https://book.example/return?out_trade_no=B-1&trade_status=TRADE_SUCCESS"]
    assert balance(live) == 10_000 - 6_000
