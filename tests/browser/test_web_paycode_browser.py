"""The mobile web wallet's payment code in Chromium on a phone: signed in by SMS code, the
subscriber opens 付款码 from the home page and turns it on; the page keeps the secret as a
non-extractable WebCrypto key in IndexedDB and shows the 18 digits it made (with the Code 128
barcode and the QR code); a signed terminal charges those digits and the books move. Offline
(the service worker) the page still shows a code. Above the password-free amount the till's
order waits (USERPAYING): the page shows the merchant and the amount and takes the PIN (on a
phone whose clock is five minutes fast: the page keeps the offset to the platform's clock)."""

from __future__ import annotations

import io
import json
import re
import secrets
import time
from typing import Any

import httpx
import zxingcpp
from PIL import Image

from mobipay.app.bootstrap import Container
from mobipay.instore.signature import sign, signing_string
from tests.browser.test_every_page_on_a_phone import check
from tests.browser.test_wallet_browser import ALICE, PIN, balance, sign_in, subscriber
from tests.e2e.test_merchants_api import application
from tests.support.live import Live

SHOWN = re.compile(r"78\d{2} \d{4} \d{4} \d{4} \d{2}")


class Till:
    """A terminal of a fresh approved shop, sending signed requests to the live server."""

    def __init__(self, live: Live) -> None:
        self.live = live

        async def setup(c: Container) -> tuple[str, str, str]:
            f = application(name="华新便利店")
            m = await c.merchants.apply(name=f["name"], credit_code=f["credit_code"], legal_person=f["legal_person"],
                                        contact=f["contact_msisdn"], mcc=f["mcc"], website=f["website"],
                                        settlement_account=f["settlement_account"])
            store = await c.merchants.add_store(m, "南京路店", "上海市南京东路1号")
            terminal, private = await c.terminals.register(m.id, store, "POS-01", actor="test")
            assert private is not None
            return m.id, terminal.id, private

        self.merchant_id, self.id, self.seed = live.call(setup)

    def charge(self, out_trade_no: str, code: str, amount: int) -> Any:
        path = "/v1/terminal/micropay"
        sent = json.dumps({"out_trade_no": out_trade_no, "auth_code": code, "amount": amount,
                           "subject": "便利店购物"}, ensure_ascii=False).encode()
        stamp, nonce = str(int(time.time())), secrets.token_hex(12)
        signature = sign(self.seed, signing_string(self.id, "POST", path, stamp, nonce, sent))
        return httpx.post(self.live.url + path, content=sent, timeout=10, headers={
            "Terminal-Id": self.id, "Timestamp": stamp, "Nonce": nonce, "Signature": signature,
            "Content-Type": "application/json"})

    def takings(self) -> int:
        async def work(c: Container) -> int:
            return (await c.ledger.account(f"liability:merchant:{self.merchant_id}")).balance

        return self.live.call(work)


def open_paycode(live: Live, phone: Any) -> str:
    """Sign in, open the page from the home page, turn the code on: the digits shown."""
    sign_in(live, phone, ALICE)
    phone.get_by_test_id("paycode-link").click()
    phone.get_by_role("button", name="开通付款码").click()
    digits = phone.get_by_test_id("paycode-digits")
    digits.wait_for()
    phone.wait_for_function("() => /^78\\d{2} \\d{4} \\d{4} \\d{4} \\d{2}$/.test("
                            "document.querySelector('[data-testid=paycode-digits]').textContent)")
    shown: str = digits.inner_text()
    assert SHOWN.fullmatch(shown), shown
    return shown.replace(" ", "")


def test_the_code_the_browser_shows_pays_at_a_till(live: Live, phone: Any) -> None:
    subscriber(live, ALICE, 100_000, PIN)
    till = Till(live)
    code = open_paycode(live, phone)
    for _ in range(2):  # the barcode and the QR code say the digits shown (read as a till's scanner does)
        shown = phone.get_by_test_id("paycode-digits").inner_text().replace(" ", "")
        read = {(r.format, r.text) for part in ("paycode-barcode", "paycode-qr") for r in zxingcpp.read_barcodes(
            Image.open(io.BytesIO(phone.get_by_test_id(part).screenshot())))}
        if phone.get_by_test_id("paycode-digits").inner_text().replace(" ", "") == shown:  # not redrawn meanwhile
            break
    assert read == {(zxingcpp.BarcodeFormat.Code128, shown), (zxingcpp.BarcodeFormat.QRCode, shown)}, read
    countdown = int(phone.get_by_test_id("paycode-countdown").inner_text())
    assert 1 <= countdown <= 30
    kept = phone.evaluate("""() => new Promise((ok, fail) => {
      const open = indexedDB.open('mobipay-paycode');
      open.onsuccess = () => {
        const get = open.result.transaction('device').objectStore('device').get('current');
        get.onsuccess = () => ok({fields: Object.keys(get.result).sort(), extractable: get.result.key.extractable,
                                  type: get.result.key.type, device_no: get.result.device_no});
        get.onerror = () => fail(get.error);
      };
    })""")
    assert kept["fields"] == ["device_id", "device_no", "key", "offset"]  # no secret in clear
    assert (kept["extractable"], kept["type"]) == (False, "secret") and code[2:10] == kept["device_no"]

    assert balance(live, ALICE) == 100_000 and till.takings() == 0
    paid = till.charge("B-1", code, 4_200)
    assert paid.status_code == 200 and paid.json()["state"] == "SUCCESS", paid.text
    assert balance(live, ALICE) == 95_800 and till.takings() == 4_200
    again = till.charge("B-2", code, 4_200)  # a code pays once
    assert again.status_code == 409 and again.json()["code"] == "PAYCODE_USED", again.text
    assert balance(live, ALICE) == 95_800 and till.takings() == 4_200

    # Offline: the service worker serves the page and its scripts, the key makes the code.
    phone.evaluate("() => navigator.serviceWorker.ready.then(() => true)")
    phone.reload()  # once under the worker's control
    phone.get_by_test_id("paycode-digits").wait_for()
    phone.context.set_offline(True)
    try:
        phone.reload()
        phone.wait_for_function("() => /^78\\d{2} \\d{4}/.test("
                                "document.querySelector('[data-testid=paycode-digits]').textContent)")
        assert phone.get_by_test_id("paycode-digits").inner_text().replace(" ", "")[:10] == code[:10]
    finally:
        phone.context.set_offline(False)


def test_a_waiting_order_is_confirmed_with_the_pin(live: Live, phone: Any) -> None:
    """…on a phone whose clock is five minutes fast: the page's offset to server_time covers it."""
    subscriber(live, ALICE, 100_000, PIN)
    till = Till(live)
    phone.add_init_script("(() => { const now = Date.now; Date.now = () => now() + 300000; })()")
    code = open_paycode(live, phone)
    assert phone.evaluate("() => Date.now()") - time.time() * 1000 > 290_000  # the phone's clock is fast
    waiting = till.charge("U-1", code, 30_000)  # above the password-free 200 CNY
    assert waiting.status_code == 202 and waiting.json()["state"] == "USERPAYING", waiting.text
    order = phone.get_by_test_id("paycode-order")
    order.wait_for()  # the page polls every 3 s
    assert phone.get_by_test_id("paycode-order-merchant").inner_text() == "华新便利店 · 南京路店"
    assert phone.get_by_test_id("paycode-order-amount").inner_text() == "¥300.00"
    problems: list[str] = []
    check(phone, "", problems, go=False)  # the code and the order fit the phone
    assert not problems, problems
    order.locator("input[name=pin]").fill("000000")
    order.get_by_role("button", name="确认付款").click()
    phone.wait_for_function("() => document.querySelector('[data-testid=paycode-order-outcome]').textContent")
    assert "PIN_INCORRECT" in phone.get_by_test_id("paycode-order-outcome").inner_text()
    assert balance(live, ALICE) == 100_000 and till.takings() == 0
    order.locator("input[name=pin]").fill(PIN)
    order.get_by_role("button", name="确认付款").click()
    phone.wait_for_function("() => document.querySelector('[data-testid=paycode-order-outcome]')"
                            ".textContent.startsWith('已付款')")
    assert phone.get_by_test_id("paycode-order-outcome").inner_text() == "已付款 ¥300.00"
    assert balance(live, ALICE) == 70_000 and till.takings() == 30_000
