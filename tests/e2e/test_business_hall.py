"""The online business hall at ``/`` over HTTP on both databases: the front page links the
other doors; anyone tops up a number or pays a bill, signing in as the payer by SMS code
and paying from the wallet through the top-up and bill services (telco and billers
SIMULATORS); refusals in words with balances unchanged; CSRF, sign-in and ownership."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest
from fastapi.testclient import TestClient

from mobipay.app.bootstrap import build
from mobipay.app.http import create_app
from mobipay.kernel.clock import SHANGHAI, ManualClock
from mobipay.platform.config import Settings
from tests.conftest import BILLER_SECRET, TELCO_SECRET
from tests.e2e.test_wallet_api import fund, last_code, signed_up
from tests.e2e.test_web_wallet import balance, csrf, hidden

ALICE, BOB, CAROL = "13800138000", "13900139000", "13700137000"
PIN = "739154"


@pytest.fixture
def client(db_url: str, telcos: dict[str, str], billers_url: str, tmp_path: object) -> Iterator[TestClient]:
    settings = Settings(_env_file=None, database_url=db_url, operator_billing_url=telcos["operator_billing"],  # type: ignore[call-arg]
                        aggregator_url=telcos["topup_aggregator"], operator_billing_secret=TELCO_SECRET,
                        aggregator_secret=TELCO_SECRET, billers_url=billers_url, billers_secret=BILLER_SECRET,
                        partner_timeout_s=2.0, merchant_key_file=f"{tmp_path}/platform.pem")
    clock = ManualClock(datetime.now(SHANGHAI).replace(hour=12, minute=0))  # billers are open at noon
    container = build(settings, clock=clock)
    with TestClient(create_app(settings, container)) as c:
        from mobipay.bills.reference_data import shipped_billers

        c.portal.call(lambda: container.bills.import_billers(shipped_billers(), actor="t", reason="t"))  # type: ignore[union-attr]
        yield c


def hall_sign_in(client: TestClient, db_url: str, number: str, next_url: str) -> None:
    """The payer signs in from a hall page: number, code, back to ``next_url``."""
    token = csrf(client.get("/hall/signin", params={"next": next_url}).text)
    sent = client.post("/hall/otp", data={"csrf": token, "msisdn": number, "next": next_url})
    assert sent.status_code == 200 and 'name="code"' in sent.text, sent.text
    done = client.post("/hall/signin", data={"csrf": token, "msisdn": number, "code": last_code(db_url),
                                             "next": next_url}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == next_url, done.text
    cookie = [v.lower() for k, v in done.headers.multi_items() if k == "set-cookie" and v.startswith("mp_hall=")]
    assert cookie and "httponly" in cookie[0] and "samesite=lax" in cookie[0]


def test_the_front_page_is_the_business_hall(client: TestClient) -> None:
    home = client.get("/")
    assert home.status_code == 200 and home.headers["content-type"].startswith("text/html")
    assert "网上营业厅" in home.text and "话费充值" in home.text and "生活缴费" in home.text
    for door in ('href="/m"', 'href="/merchant"', 'href="/console"', 'href="/docs"'):
        assert door in home.text
    assert "default-src 'self'" in home.headers["content-security-policy"]
    for category in ("水费", "电费", "燃气", "医保"):
        assert category in home.text
    assert "Online business hall" in client.get("/?lang=en").text


def test_top_up_any_number_paying_from_the_wallet(client: TestClient, db_url: str, telcos: dict[str, str]) -> None:
    for number in (ALICE, BOB):
        signed_up(client, db_url, number)
    fund(client, ALICE, 50_000)
    quote_url = f"/hall/topup?msisdn={BOB}&amount=50"
    quote = client.get(quote_url)
    assert quote.status_code == 200 and "139****9000" in quote.text and "中国移动" in quote.text
    price = int(re.sub(r"\D", "", re.search(r'data-testid="price">¥([\d.]+)<', quote.text).group(1)))  # type: ignore[union-attr]
    assert 0 < price <= 5_000
    assert 'data-testid="signin-first"' in quote.text and "/hall/topup\" method" not in quote.text

    signed_out = client.post("/hall/topup", data={"csrf": csrf(quote.text), "msisdn": BOB, "amount": "50",
                                                  "key": "k0"})
    assert signed_out.status_code == 400 and "VALIDATION_FAILED" in signed_out.text
    assert balance(client, ALICE) == 50_000

    hall_sign_in(client, db_url, ALICE, quote_url)
    page = client.get(quote_url)
    assert 'data-testid="payer"' in page.text and "138****8000" in page.text and "¥500.00" in page.text
    form = {"csrf": csrf(page.text), "msisdn": BOB, "amount": hidden(page.text, "amount"),
            "key": hidden(page.text, "key")}
    first = client.post("/hall/topup", data=form, follow_redirects=False)
    again = client.post("/hall/topup", data=form, follow_redirects=False)  # a double click
    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == again.headers["location"]
    assert first.headers["location"].startswith("/hall/topups/")
    order = client.get(first.headers["location"])
    assert order.status_code == 200 and 'data-testid="state">成功<' in order.text and "139****9000" in order.text
    assert "话费充值" in order.text and "topup" not in re.sub(r"<[^>]+>", "", order.text)
    assert httpx.get(f"{telcos['operator_billing']}/sim/numbers/+86{BOB}").json()["balance"] == 5_000
    assert balance(client, ALICE) == 50_000 - price  # once

    refusals = [
        ({"msisdn": "12345", "amount": "50"}, 400, "INVALID_MSISDN"),
        ({"msisdn": BOB, "amount": "10.5"}, 422, "INVALID_FACE_VALUE"),
        ({"msisdn": BOB, "amount": "1e3"}, 400, "INVALID_AMOUNT"),
        ({"msisdn": BOB, "amount": "300"}, 422, "PIN_REQUIRED"),  # above the password-free amount
    ]
    for i, (fields, status, code) in enumerate(refusals):
        r = client.post("/hall/topup", data={**form, **fields, "key": f"bad-{i}"})
        assert (r.status_code, code in r.text) == (status, True), (fields, r.text[:400])
    assert client.get("/hall/topup?msisdn=12345&amount=50").status_code == 400  # the quote refuses it too
    forged = client.post("/hall/topup", data={**form, "csrf": "forged", "key": "other"})
    assert forged.status_code == 400 and "reload" in forged.text
    assert balance(client, ALICE) == 50_000 - price

    client.post("/hall/signout", data={"csrf": form["csrf"]})
    assert client.get(first.headers["location"], follow_redirects=False).status_code == 303  # sign in again
    signed_up(client, db_url, CAROL)
    hall_sign_in(client, db_url, CAROL, "/")
    assert client.get(first.headers["location"]).status_code == 404  # not Carol's order


def test_pay_a_water_bill_after_signing_in(client: TestClient, db_url: str) -> None:
    signed_up(client, db_url, ALICE)
    fund(client, ALICE, 100_000)
    c = client.app.state.container  # type: ignore[attr-defined]
    client.portal.call(lambda: c.wallet.set_pin(ALICE, PIN))  # type: ignore[union-attr]
    found = client.get("/hall/bills", params={"city": "上海", "category": "water"})
    assert found.status_code == 200 and "/hall/bills/billers/WATER_SH" in found.text and "上海城投水务" in found.text
    assert client.get("/hall/bills", params={"category": "lottery"}).status_code == 400
    biller_url = "/hall/bills/billers/WATER_SH"
    anonymous = client.get(biller_url)
    assert anonymous.status_code == 200 and 'data-testid="signin-first"' in anonymous.text
    hall_sign_in(client, db_url, ALICE, biller_url)
    page = client.get(biller_url)
    token = csrf(page.text)
    bill = client.post(f"{biller_url}/fetch", data={"csrf": token, "customer_id": "12345678"})
    assert bill.status_code == 200 and "应缴" in bill.text, bill.text[:500]
    amount = re.search(r'id="amount" name="amount"[^>]* value="([\d.]+)"', bill.text).group(1)  # type: ignore[union-attr]
    due = int(amount.replace(".", ""))
    form = {"csrf": token, "customer_id": "12345678", "amount": amount,
            "bill_id": hidden(bill.text, "bill_id"), "key": hidden(bill.text, "key"), "pin": PIN}
    paid = client.post(f"{biller_url}/pay", data=form, follow_redirects=False)
    assert paid.status_code == 303 and paid.headers["location"].startswith("/hall/bills/payments/"), paid.text
    receipt = client.get(paid.headers["location"])
    assert receipt.status_code == 200 and 'data-testid="state">成功<' in receipt.text
    assert 'data-testid="ref"' in receipt.text and "生活缴费" in receipt.text
    assert balance(client, ALICE) == 100_000 - due

    bad = client.post(f"{biller_url}/pay", data={**form, "amount": "0", "key": "k-zero"})
    assert bad.status_code == 400 and "INVALID_AMOUNT" in bad.text
    bad_id = client.post(f"{biller_url}/fetch", data={"csrf": token, "customer_id": "12x"})
    assert bad_id.status_code == 400 and "INVALID_CUSTOMER_ID" in bad_id.text
    assert client.get("/hall/bills/billers/NOPE").status_code == 404
    assert balance(client, ALICE) == 100_000 - due


def test_sign_in_goes_back_only_to_hall_pages(client: TestClient, db_url: str) -> None:
    signed_up(client, db_url, ALICE)
    token = csrf(client.get("/hall/signin").text)
    client.post("/hall/otp", data={"csrf": token, "msisdn": ALICE})
    wrong = client.post("/hall/signin", data={"csrf": token, "msisdn": ALICE, "code": "000000"},
                        follow_redirects=False)
    assert wrong.status_code in (400, 401, 422) and "mp_hall=" not in wrong.headers.get("set-cookie", "")
    evil = client.post("/hall/signin", data={"csrf": token, "msisdn": ALICE, "code": last_code(db_url),
                                             "next": "//evil.example/x"}, follow_redirects=False)
    assert evil.status_code == 303 and evil.headers["location"] == "/"
    for sneaky in ("/hall/..//evil.example/x", "https://evil.example/hall/", "/hall\\..\\x", "//evil.example"):
        page = client.get("/hall/signin", params={"next": sneaky}).text
        assert 'name="next" value="/"' in page and "evil" not in page  # sign-in would go back to / only
    unknown = client.post("/hall/otp", data={"csrf": token, "msisdn": "1234"})
    assert unknown.status_code == 400 and "INVALID_MSISDN" in unknown.text
