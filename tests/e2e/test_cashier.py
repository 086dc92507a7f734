"""The hosted cashier over HTTP on both databases: sign in by SMS code, pay with a red
envelope, back to the shop; CSRF, CSP, cookies and the return URL checked."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mobipay.app.http import create_app
from mobipay.merchants.signing import sign_hmac
from mobipay.platform.config import Settings
from tests.e2e.test_merchants_api import application
from tests.e2e.test_wallet_api import last_code, signed_up


@pytest.fixture
def client(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(_env_file=None, database_url=db_url,  # type: ignore[call-arg]
                        merchant_key_file=tmp_path / "platform.pem")
    with TestClient(create_app(settings)) as c:
        yield c


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def test_cashier_pays_and_returns(client: TestClient, db_url: str) -> None:
    c = client.app.state.container  # type: ignore[attr-defined]
    merchant_id = client.post("/v1/merchant-applications", json=application()).json()["id"]
    app_id, key = client.portal.call(lambda: c.merchants.create_app(merchant_id, "HMAC"))  # type: ignore[union-attr]
    body: dict[str, Any] = {"app_id": app_id, "timestamp": str(int(time.time())), "nonce": secrets.token_hex(8),
                            "sign_type": "HMAC", "out_trade_no": "W-1", "total_amount": "6000", "subject": "三体"}
    body["sign"] = sign_hmac(body, key.encode())  # type: ignore[union-attr]
    trade_id = client.post("/v1/merchant/trades", json=body).json()["trade_no"]
    signed_up(client, db_url, "13900139000")
    from mobipay.ledger.model import Leg, Transfer

    wallet = "wallet:+8613900139000"
    client.portal.call(lambda: c.ledger.post(Transfer("fund", (Leg.debit("asset:bank:settlement", 10_000),  # type: ignore[union-attr]
                                                               Leg.credit(wallet, 10_000)), "cash_in")))
    merchant = client.portal.call(lambda: c.merchants.merchant(merchant_id))  # type: ignore[union-attr]
    client.portal.call(lambda: c.ledger.post(Transfer("seed", (Leg.debit("asset:bank:settlement", 5_000),  # type: ignore[union-attr]
                                                               Leg.credit(merchant.account_code, 5_000)), "seed")))
    campaign = client.portal.call(lambda: c.red_envelopes.create_campaign(  # type: ignore[union-attr]
        merchant, name="满50减10", rule="threshold", face=1_000, min_spend=5_000, budget=1_000, actor="shop"))

    url = f"/cashier/{trade_id}?return_url=https://book.example/return"
    assert client.get(f"/cashier/{trade_id}?return_url=https://evil.example/x").status_code == 400
    assert client.get(f"/cashier/{trade_id}?return_url=javascript:alert(1)").status_code == 400
    page = client.get(url)
    assert page.status_code == 200 and "¥60.00" in page.text and "三体" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    token = csrf(page.text)
    refused = client.post(f"/cashier/{trade_id}/otp?return_url=https://book.example/return",
                          data={"csrf": "forged", "msisdn": "13900139000"})
    assert refused.status_code == 400 and "CSRF" not in refused.text and "reload" in refused.text
    sent = client.post(f"/cashier/{trade_id}/otp?return_url=https://book.example/return",
                       data={"csrf": token, "msisdn": "13900139000"})
    assert sent.status_code == 200 and 'name="code"' in sent.text
    signed = client.post(f"/cashier/{trade_id}/signin?return_url=https://book.example/return",
                         data={"csrf": token, "msisdn": "13900139000", "code": last_code(db_url)},
                         follow_redirects=False)
    assert signed.status_code == 303
    assert "httponly" in signed.headers["set-cookie"].lower()
    user = client.portal.call(lambda: c.wallet.user_by_msisdn("13900139000"))  # type: ignore[union-attr]
    me = client.portal.call(lambda: c.wallet.principal(user.id))  # type: ignore[union-attr]
    coupon = client.portal.call(lambda: c.red_envelopes.claim(me, campaign.id))  # type: ignore[union-attr]
    page = client.get(url)
    assert "确认支付" in page.text and coupon.id in page.text
    done = client.post(f"/cashier/{trade_id}/pay?return_url=https://book.example/return",
                       data={"csrf": csrf(page.text), "coupon_id": coupon.id})
    assert done.status_code == 200 and "支付成功" in done.text, done.text
    assert "https://book.example/return?out_trade_no=W-1&amp;trade_status=TRADE_SUCCESS" in done.text
    balance = client.portal.call(lambda: c.ledger.account(wallet)).balance  # type: ignore[union-attr]
    assert balance == 10_000 - 5_000  # 60 CNY less the 10 CNY red envelope
    again = client.get(url)
    assert "无法支付" in again.text  # paid: the page says so, nothing can be paid twice


#: Return URLs that pass a check reading them with Python's urllib but send a browser
#: elsewhere (or run script), for a shop whose registered website is https://book.example.
RETURN_BYPASSES = [
    "https://evil.example\\@book.example/return",  # the reported one: urllib's host is book.example
    "https://evil.example\\.book.example/", "https://book.example\\evil.example/",
    "https://evil.example%5C@book.example/", "https://book.example@evil.example/",
    "https://evil.example@book.example/", "https://evil.example:443@book.example/",
    "https://evil.example#@book.example/", "https://evil.example?@book.example/",
    "https:evil.example", "https:/evil.example", "https:///evil.example", "https:\\\\evil.example",
    "//evil.example/", "/\\evil.example", "\\\\evil.example",
    "https://evil.example/\thttps://book.example/", "https://evil\t.example/", "https://book.example\n.evil.example/",
    "\x01https://evil.example/", "javascript://book.example/%0aalert(1)", "JAVASCRIPT:alert(1)",
    "data:text/html,<script>alert(1)</script>", "https://book.example.evil.example/", "https://evil-book.example/",
    "https://book.example%2eevil.example/", "https://book%2eexample/", "https://book.example./",
    "https://xn--book.example/", "https://book。example.evil.example/", "https://2130706433/", "https://0x7f.1/",
    "https://evil.example\u202e@book.example/", "http://[::1]/", "ftp://book.example/",
]


def test_the_return_url_is_compared_as_a_browser_reads_it(client: TestClient, db_url: str) -> None:
    """Every known way of writing an address that a browser reads as another host is
    refused (RETURN_URL_REFUSED, or CONTROL_CHARACTER from the edge for a tab, a line break
    or another control character) before anything is shown or paid; spellings that a browser
    reads as the shop (case, IDNA, a port) are accepted and sent on as a browser writes them."""
    c = client.app.state.container  # type: ignore[attr-defined]
    merchant_id = client.post("/v1/merchant-applications", json=application()).json()["id"]
    app_id, key = client.portal.call(lambda: c.merchants.create_app(merchant_id, "HMAC"))  # type: ignore[union-attr]
    body: dict[str, Any] = {"app_id": app_id, "timestamp": str(int(time.time())), "nonce": secrets.token_hex(8),
                            "sign_type": "HMAC", "out_trade_no": "W-2", "total_amount": "100", "subject": "书"}
    body["sign"] = sign_hmac(body, key.encode())  # type: ignore[union-attr]
    trade_id = client.post("/v1/merchant/trades", json=body).json()["trade_no"]
    for bad in RETURN_BYPASSES:
        expected = "CONTROL_CHARACTER" if any(ord(ch) < 32 or 0x7F <= ord(ch) < 0xA0 for ch in bad) else \
            "RETURN_URL_REFUSED"
        r = client.get(f"/cashier/{trade_id}", params={"return_url": bad})
        assert r.status_code == 400 and r.json()["code"] == expected, (bad, r.text)
        token = "t" * 32
        client.cookies.set("mp_csrf", token)
        pay = client.post(f"/cashier/{trade_id}/pay", params={"return_url": bad}, data={"csrf": token})
        assert pay.status_code == 400 and pay.json()["code"] == expected, bad
    for good, sent in (("HTTPS://BOOK.example/r?a=1", "https://book.example/r?a=1"),
                       ("https://book.example:8443/r#x", "https://book.example:8443/r#x")):
        page = client.get(f"/cashier/{trade_id}", params={"return_url": good})
        assert page.status_code == 200, (good, page.text)
        assert "return_url=" + sent.replace(":", "%3A").replace("/", "%2F").replace("?", "%3F").replace(
            "=", "%3D").replace("#", "%23") in page.text
    # a merchant without a valid website has nowhere the cashier may send buyers back to
    assert client.post("/v1/merchant-applications", json=application(
        credit_code="91110105MA01234565", website="https://evil.example\\@book.example/")).json()[
        "code"] == "INVALID_MERCHANT_FIELD"
