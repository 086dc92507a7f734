"""Every page on a 390×844 phone in Chromium (mobile wallet, hosted cashier, merchant
portal, operator console, business hall), with real data behind it (a transfer with a
note, a top-up through the telco SIMULATOR, a water bill through the billers SIMULATOR,
a shop's paid trade and an unpaid one, red envelopes, an operator product, a policy and
a lottery ticket from their SIMULATORS): nothing is wider than the screen
(the page does not scroll sideways, no element reaches past its edge) and no raw
transaction kind code (``p2p``, ``bill``…) shows in the Chinese UI."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from mobipay.app.bootstrap import Container
from mobipay.app.demo_sp import load_demo_sp
from mobipay.channels.words import KIND_WORDS
from mobipay.kernel.clock import SHANGHAI
from mobipay.ledger.chart import BANK_SETTLEMENT
from mobipay.ledger.model import Leg, Transfer
from mobipay.wallet.model import id_card_check_char
from tests.browser.conftest import SHOTS, Live
from tests.browser.test_wallet_browser import ALICE, BOB, PIN, sign_in, subscriber
from tests.conftest import BILLER_SECRET, LOTTERY_SECRET, PROVIDER_SECRET, TELCO_SECRET
from tests.e2e.test_merchant_portal import PASSWORD, seed_shop

OPERATOR_PASSWORD = "correct horse battery"
ID_NUMBER = "11010519491231002" + id_card_check_char("11010519491231002")
#: A kind code as a template prints it: at the start of a piece of text (a cell, a link, an
#: option), not inside an id such as ``p2p:usr_…``, a word such as ``billing`` or a sentence.
RAW_KIND = re.compile(r"^(?:" + "|".join(re.escape(k) for k in sorted(
    {*KIND_WORDS, "bill_payment"}, key=len, reverse=True)) + r")(?![\w.:/-])")
TEXTS = """() => {
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT), out = [];
  while (walk.nextNode()) {
    const el = walk.currentNode.parentElement, text = walk.currentNode.textContent.trim();
    if (text && el && el.offsetParent !== null && el.tagName !== 'SCRIPT') out.push(text);
  }
  for (const option of document.querySelectorAll('option')) out.push(option.textContent.trim());
  return out;
}"""

#: What sticks out: the page's own scroll width and every element whose box reaches past the
#: viewport's edges (hidden elements have an empty box).
OVERFLOW = """() => {
  const w = Math.min(window.innerWidth, window.screen.width), out = [];  // the phone, not a zoomed-out layout
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    if (r.right > w + 0.5 || r.left < -0.5 || r.width > w + 0.5) {
      const name = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
        (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\\s+/).join('.') : '');
      out.push(`${name} [${Math.round(r.left)}, ${Math.round(r.right)}] ${(el.innerText || '').trim().slice(0, 40)}`);
    }
  }
  return {inner: window.innerWidth, scroll: document.scrollingElement.scrollWidth, out: out.slice(0, 8)};
}"""


#: The done page's way back to the shop (``<meta http-equiv="refresh" content="3;url=…">``).
REFRESH = re.compile(r'<meta http-equiv="refresh"[^>]*>')


def check(page: Any, url: str, problems: list[str], *, go: bool = True) -> None:
    """Open ``url`` (or, ``go=False``, look at the page a form led to) and note what sticks
    out or shows a raw kind code (a screenshot of each)."""
    if go:
        response = page.goto(url)
        assert response is not None and response.status < 500, (url, response and response.status)
    page.wait_for_load_state()  # a form's answer: measured once it has loaded, not while it arrives
    url = page.url
    found = page.evaluate(OVERFLOW)
    if found["inner"] != 390 or found["scroll"] > found["inner"] or found["out"]:
        problems.append(f"{url}: page {found['scroll']} px wide on a {found['inner']} px screen; {found['out']}")
    raw = sorted({m.group(0) for text in page.evaluate(TEXTS) if (m := RAW_KIND.match(text))})
    if raw:
        problems.append(f"{url}: raw kind codes {raw}")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / ("phone" + re.sub(r"[^\w]+", "_", url.split("//", 1)[1].split("/", 1)[1])
                                      [:80] + ".png")), full_page=True, timeout=60_000)


def seed(live: Live) -> dict[str, str]:
    """A subscriber with a transfer (with a note), a top-up, a bill payment and a red
    envelope; a shop with a paid trade and an unpaid one; an operator with every role."""
    subscriber(live, ALICE, 100_000, PIN)
    subscriber(live, BOB)
    merchant_id, paid_trade = seed_shop(live.call)

    async def work(c: Container) -> dict[str, str]:
        from mobipay.bills.reference_data import shipped_billers

        await c.bills.import_billers(shipped_billers(), actor="test", reason="browser test")
        alice = await c.wallet.user_by_msisdn(ALICE)
        me = await c.wallet.principal(alice.id)
        sent = await c.wallet.transfer(me, BOB, 1_234, idempotency_key="t-note", note="房租 十二月")
        topup = await c.topup.topup(me, BOB, 5_000, idempotency_key="t-topup")
        bill = await c.bills.fetch(me, "WATER_SH", "12345678")
        paid = await c.bills.pay(me, "WATER_SH", "12345678", bill.bill.amount_due, idempotency_key="t-bill",
                                 bill_id=bill.id, pin=PIN)
        merchant = await c.merchants.merchant(merchant_id)
        await c.ledger.post(Transfer("seed-shop", (Leg.debit(BANK_SETTLEMENT, 5_000),
                                                   Leg.credit(merchant.account_code, 5_000)), "cash_in"))
        await c.red_envelopes.create_campaign(merchant, name="满50减10", rule="threshold", face=1_000,
                                              min_spend=5_000, budget=2_000, actor="shop")
        unpaid = await c.merchants.create_trade(merchant, "B-2", 8_800, "球状闪电")
        product = await c.products.buy_product(me, "MUSIC_TRACK", idempotency_key="t-product")
        starts = c.clock.now().astimezone(SHANGHAI).date() + timedelta(days=1)
        policy = await c.products.buy_policy(me, "ACC_1Y_100K", insured_name="王小明", insured_id=ID_NUMBER,
                                             starts_on=starts, idempotency_key="t-policy", pin=PIN)
        ticket = await c.lottery.buy(me, "ssq", bets=[[[1, 5, 12, 19, 27, 33], [9]]], quick_picks=1,
                                     idempotency_key="t-ticket")
        await c.operators.create("olga", OPERATOR_PASSWORD, ("admin", "operations", "finance", "risk", "support",
                                                             "merchant_review", "sp_governance"),
                                 actor="test", reason="browser test")
        await load_demo_sp(c)  # SPs with services; ALICE subscribes to one, another order waits for 是
        return {"transfer": sent.id, "topup": topup.id, "bill": paid.id, "merchant": merchant_id,
                "paid_trade": paid_trade, "unpaid_trade": unpaid.id, "product": product.id,
                "policy": policy.id, "ticket": ticket.order.id}

    ids: dict[str, str] = live.call(work)
    return ids


def sign_in_everywhere(live: Live, page: Any, merchant_id: str) -> None:
    sign_in(live, page, ALICE)  # the mobile wallet
    page.goto(f"{live.url}/hall/signin")
    page.fill("#msisdn", ALICE)
    page.click("form[action='/hall/otp'] button")
    page.fill("#code", live.sms_code("+86" + ALICE))
    page.click("form[action='/hall/signin'] button")
    page.goto(f"{live.url}/console/signin")
    page.fill("#name", "olga")
    page.fill("#password", OPERATOR_PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_url(re.compile(r"/console$"))
    page.goto(f"{live.url}/merchant/signin")
    page.fill("#merchant_id", merchant_id)
    page.fill("#name", "owner")
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.get_by_test_id("orders").wait_for()


@pytest.fixture
def world(live_with: Callable[..., Live], telcos: dict[str, str], billers_url: str, providers: dict[str, str],
          lottery_url: str) -> Live:
    return live_with(operator_billing_url=telcos["operator_billing"], aggregator_url=telcos["topup_aggregator"],
                     operator_billing_secret=TELCO_SECRET, aggregator_secret=TELCO_SECRET, billers_url=billers_url,
                     billers_secret=BILLER_SECRET, partner_timeout_s=2.0, products_url=providers["operator_products"],
                     insurer_url=providers["insurer"], products_secret=PROVIDER_SECRET,
                     insurer_secret=PROVIDER_SECRET, lottery_url=lottery_url, lottery_secret=LOTTERY_SECRET)


def test_every_page_fits_a_phone_and_names_kinds_in_words(world: Live, phone: Any, browser: Any) -> None:
    live = world
    ids = seed(live)
    u = live.url
    problems: list[str] = []
    phone.set_default_timeout(30_000)  # some fifty pages, on a machine the other tests share

    anonymous = browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 844}, is_mobile=True,
                                    has_touch=True)
    try:
        stranger = anonymous.new_page()
        for path in ("/", "/hall/signin", f"/hall/topup?msisdn={BOB}&amount=50", "/hall/bills?category=water",
                     "/hall/bills/billers/WATER_SH", "/m/signin", "/merchant/signin", "/console/signin",
                     "/tourism/app", "/tourism/agency", "/tourism/guide",  # signed-in views: test_tourism_app_browser
                     "/m/agent",  # the village agent's page; signed in: test_rural_agent_browser
                     f"/cashier/{ids['unpaid_trade']}?return_url=https://book.example/done"):
            check(stranger, u + path, problems)
    finally:
        anonymous.close()

    sign_in_everywhere(live, phone, ids["merchant"])
    wallet = ["/m", "/m/transfer", "/m/requests", "/m/topup", f"/m/topups/{ids['topup']}", "/m/bills",
              "/m/bills?city=上海&category=water", "/m/bills/billers/WATER_SH", f"/m/bills/payments/{ids['bill']}",
              "/m/history", "/m/history?kind=bill", f"/m/receipts/{ids['transfer']}", "/m/envelopes", "/m/cards",
              "/m/pin", "/m/products", "/m/products/MUSIC_CLUB_VIP", f"/m/product-orders/{ids['product']}",
              "/m/insurance", f"/m/policies/{ids['policy']}", "/m/lottery", f"/m/lottery/tickets/{ids['ticket']}",
              "/m/paycode", "/m/sp"]
    hall = ["/", f"/hall/topup?msisdn={BOB}&amount=50", "/hall/bills?city=上海", "/hall/bills/billers/WATER_SH",
            f"/hall/topups/{ids['topup']}", f"/hall/bills/payments/{ids['bill']}"]
    portal = ["/merchant", f"/merchant/orders/{ids['paid_trade']}", "/merchant/statements", "/merchant/apps"]
    console = ["/console", "/console/users", f"/console/users/{ALICE}", "/console/transactions",
               f"/console/transactions?msisdn={ALICE}", f"/console/transactions/{ids['transfer']}",
               "/console/reversals", "/console/billers", "/console/merchants",
               f"/console/merchants?id={ids['merchant']}", "/console/recon", "/console/complaints",
               "/console/operators", "/console/campaigns", "/console/sp", "/console/sp/10661234",
               "/console/tourism", "/console/tourism/agencies"]
    missing = ["/m/receipts/p2p:nope", "/m/topups/tu_nope", "/m/product-orders/po_nope", "/m/policies/ip_nope",
               "/m/lottery/tickets/lt_nope", "/m/products/NOPE", "/hall/topups/tu_nope", "/merchant/orders/nope",
               "/console/transactions/nope", "/hall/bills/billers/NOPE"]
    for path in wallet + hall + portal + console + missing:
        check(phone, u + path, problems)
    # Pages a form leads to: the transfer and top-up confirmations, a refusal, the PIN form's answer.
    phone.goto(f"{u}/m/transfer")
    phone.fill("#to", BOB)
    phone.fill("#amount", "300")
    phone.fill("#note", "一个很长的留言" * 4)
    phone.get_by_role("button", name="下一步").click()
    check(phone, "", problems, go=False)
    phone.get_by_role("button", name="确认转账").click()  # no PIN: refused in words, the form again
    check(phone, "", problems, go=False)
    phone.goto(f"{u}/m/topup")
    phone.fill("#amount", "50")
    phone.get_by_role("button", name="查看价格").click()
    check(phone, "", problems, go=False)
    # The lottery's confirmation and a refusal in words; an insurance form refused in words.
    phone.goto(f"{u}/m/lottery")
    phone.fill("#numbers-ssq", "01 05 12 19 27 33 + 09; 02 06 13 20 28 32 + 16")
    phone.locator("[data-testid=game-ssq] button").click()
    check(phone, "", problems, go=False)
    phone.goto(f"{u}/m/lottery")
    phone.fill("#numbers-ssq", "1 2 + 99")
    phone.locator("[data-testid=game-ssq] button").click()
    check(phone, "", problems, go=False)
    phone.goto(f"{u}/m/insurance")
    phone.select_option("#product", "TRAVEL_7D_CN")
    phone.fill("#insured_name", "李雷")
    phone.fill("#insured_id_number", "110105194912310000")
    phone.get_by_role("button", name="确认投保").click()
    check(phone, "", problems, go=False)
    phone.goto(f"{u}/cashier/{ids['unpaid_trade']}?return_url=https://book.example/done")
    phone.fill("#msisdn", ALICE)
    phone.get_by_role("button", name="获取验证码 Send code").click()
    phone.fill("#code", live.sms_code("+86" + ALICE))
    phone.get_by_role("button", name="登录 Sign in").click()
    check(phone, f"{u}/cashier/{ids['unpaid_trade']}?return_url=https://book.example/done", problems)
    phone.fill("#pin", PIN)
    # The done page goes back to the shop after 3 s (a meta refresh); a loaded machine can
    # take longer than that to measure it, so the page is measured without the refresh, and
    # the refresh itself is asserted on the page as served.
    served: list[str] = []

    def without_refresh(route: Any) -> None:
        response = route.fetch()
        served.append(response.text())
        route.fulfill(response=response, body=REFRESH.sub("", served[-1]))

    phone.route(re.compile(r".*/cashier/[^/]+/pay.*"), without_refresh)
    phone.get_by_role("button", name="确认支付 Pay").click()  # the done page, back to the shop
    phone.get_by_test_id("status").wait_for()
    check(phone, "", problems, go=False)
    phone.unroute(re.compile(r".*/cashier/[^/]+/pay.*"))
    assert served and REFRESH.search(served[0]) and "https://book.example/done" in served[0], served
    assert not problems, "\n".join(problems)


def test_the_receipt_on_a_phone(world: Live, phone: Any) -> None:
    """The receipt fits, names the kind, shows the note and the time in Beijing."""
    live = world
    ids = seed(live)
    sign_in(live, phone, ALICE)
    problems: list[str] = []
    check(phone, f"{live.url}/m/receipts/{ids['transfer']}", problems)
    assert not problems, problems
    assert phone.get_by_test_id("kind").inner_text() == "转账"
    assert phone.get_by_test_id("note").inner_text() == "房租 十二月"
    made = live.call(lambda c: c.ledger.transfer(ids["transfer"])).created_at
    assert phone.get_by_test_id("time").inner_text().startswith(
        made.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S"))
    label = phone.locator("[data-testid=receipt] th").first.bounding_box()
    assert label is not None and label["height"] < 40  # "类型" on one line, not a character a line
    phone.goto(f"{live.url}/m/history?kind=bill")
    assert phone.get_by_test_id("history").inner_text().count("生活缴费") == len(
        phone.locator("[data-testid=history] tr").all())  # the filter finds bills, and only bills
    assert phone.locator("[data-testid=history] tr").count() >= 1
