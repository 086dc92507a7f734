"""The mobile web wallet's payment code (/m/paycode) over HTTP on both databases: the page
and its vendored scripts, the session's device secret handed to the page once (CSRF, the
idempotency key, a replay answering the same device, never again in a page or a poll), its
codes charged by a signed terminal, re-issue and sign-out stopping them, a session opened with
the PIN alone refused with what to do; the orders a till waits on (USERPAYING) polled,
confirmed with the PIN or declined from the page. Balances before and after every refusal.
ManualClock only (the codes are made by the applet SIMULATOR, as the page's script makes them;
the browser test checks the script itself)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mobipay.app.bootstrap import build
from mobipay.app.http import create_app
from mobipay.kernel.clock import ManualClock
from mobipay.platform.config import Settings
from mobipay.simulators.paycode_device import PaycodeApplet
from tests.e2e.test_instore_micropay import START, Till, shop_balance
from tests.e2e.test_instore_qr_api import PIN, payer
from tests.e2e.test_instore_terminals import Shop
from tests.e2e.test_wallet_api import balance
from tests.e2e.test_web_wallet import sign_in

ALICE, BOB = "13900139000", "13800138000"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def client(db_url: str, tmp_path: Path, clock: ManualClock) -> Iterator[TestClient]:
    settings = Settings(_env_file=None, database_url=db_url,  # type: ignore[call-arg]
                        merchant_key_file=tmp_path / "platform.pem")
    with TestClient(create_app(settings, build(settings, clock=clock))) as c:
        wallet = c.app.state.container.wallet  # type: ignore[attr-defined]
        wallet.limits = replace(wallet.limits, tier1_lifetime=10_000_000)  # the in-store rules are under test
        yield c


def data(html: str, name: str) -> str:
    found = re.search(rf'data-{name}="([^"]*)"', html)
    assert found, html
    return found.group(1)


def provision(client: TestClient, csrf: str, key: str) -> Any:
    return client.post("/m/paycode/device", data={"csrf": csrf, "key": key})


def refused(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status and r.headers["content-type"].startswith("application/json"), r.text
    body: dict[str, Any] = r.json()
    assert body["code"] == code and body["message"], body
    return body


def test_the_page_provisions_once_and_its_codes_pay(client: TestClient, db_url: str, clock: ManualClock) -> None:
    shop = Shop(client, clock)
    till = Till(shop)
    api = payer(client, db_url, ALICE, 100_000)
    client.cookies.clear()
    r = client.get("/m/paycode", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/m/signin?next=/m/paycode"
    assert client.get("/m/paycode/pending").status_code == 401  # a script gets JSON, not the sign-in page
    csrf = sign_in(client, db_url, ALICE)
    assert 'href="/m/paycode"' in client.get("/m").text  # linked from the wallet's home

    page = client.get("/m/paycode")
    assert page.status_code == 200 and "付款码" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert data(page.text, "bound") == "1" and data(page.text, "csrf") == csrf
    key = data(page.text, "key")
    for script in ("/static/vendor/jsbarcode/JsBarcode.code128.min.js", "/static/vendor/qrcode-generator/qrcode.js",
                   "/static/paycode.js"):
        assert f'src="{script}"' in page.text
        assert client.get(script).status_code == 200
    worker = client.get("/m/paycode-sw.js")
    assert worker.status_code == 200 and worker.headers["content-type"].startswith("text/javascript")
    assert "/m/paycode" in worker.text

    state = client.get("/m/paycode/pending").json()
    assert state == {"server_time": int(START.timestamp()), "device": None, "orders": []}
    refused(client.post("/m/paycode/device", data={"csrf": "forged", "key": key}), 400, "VALIDATION_FAILED")
    refused(provision(client, csrf, ""), 400, "IDEMPOTENCY_KEY_REQUIRED")
    assert client.get("/m/paycode/pending").json()["device"] is None  # refused: nothing made

    made = provision(client, csrf, key)
    assert made.status_code == 201, made.text
    answer = made.json()
    assert (answer["prefix"], answer["digits"], answer["period"]) == ("78", 8, 30)
    assert len(answer["secret"]) == 32 and answer["server_time"] == int(START.timestamp())
    assert answer["next_key"] and answer["next_key"] != key
    again = provision(client, csrf, key)  # the answer was lost: the same device and secret
    assert again.status_code == 200 and (again.json()["device_id"], again.json()["secret"]) == (
        answer["device_id"], answer["secret"])
    assert answer["secret"] not in client.get("/m/paycode").text  # never again in the page…
    state = client.get("/m/paycode/pending").json()
    assert state["device"] == {"device_id": answer["device_id"], "state": "active"}
    assert answer["secret"] not in str(state)  # …nor in what it polls

    phone = PaycodeApplet.provisioned(answer, clock=clock.now)
    before = balance(client, api)
    paid = till.charge("W-1", phone.code(), 4_200)
    assert paid.status_code == 200 and paid.json()["state"] == "SUCCESS", paid.text
    assert balance(client, api) == before - 4_200 and shop_balance(shop) == 4_200

    clock.advance(30)
    reissued = provision(client, csrf, answer["next_key"])  # the page's "turn it on again"
    assert reissued.status_code == 201 and reissued.json()["device_no"] != answer["device_no"]
    assert client.get("/m/paycode/pending").json()["device"]["device_id"] == reissued.json()["device_id"]
    old = till.charge("W-2", phone.code(), 1_000)
    assert old.status_code == 422 and old.json()["code"] == "PAYCODE_DEVICE_REVOKED"
    assert balance(client, api) == before - 4_200 and shop_balance(shop) == 4_200

    new = PaycodeApplet.provisioned(reissued.json(), clock=clock.now)
    assert client.post("/m/signout", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    gone = till.charge("W-3", new.code(), 1_000)  # signed out: the browser's codes stop
    assert gone.status_code == 422 and gone.json()["code"] == "PAYCODE_DEVICE_REVOKED"
    assert balance(client, api) == before - 4_200 and shop_balance(shop) == 4_200
    assert client.get("/m/paycode/pending").status_code == 401
    refused(provision(client, csrf, "another"), 401, "SESSION_INVALID")


def test_a_session_opened_with_the_pin_alone_is_told_what_to_do(client: TestClient, db_url: str) -> None:
    payer(client, db_url, ALICE, 10_000)
    by_pin = client.post("/v1/sessions", json={"msisdn": ALICE, "pin": PIN, "device_id": "tablet"}).json()
    client.cookies.clear()
    client.cookies.set("mp_wallet", by_pin["access_token"])
    page = client.get("/m/paycode")
    assert page.status_code == 200 and data(page.text, "bound") == "0"
    assert "请退出登录，再用发到本机号码的短信验证码登录" in page.text
    csrf = data(page.text, "csrf")
    client.cookies.set("mp_csrf", csrf)
    body = refused(provision(client, csrf, data(page.text, "key")), 403, "PAYCODE_DEVICE_NOT_BOUND")
    assert body["message"].startswith("付款码只发给用短信验证码登录的设备")
    client.cookies.set("mp_lang", "en")
    body = refused(provision(client, csrf, "k-2"), 403, "PAYCODE_DEVICE_NOT_BOUND")
    assert body["message"].startswith("A payment code is issued only to a device signed in with an SMS code")
    assert client.get("/m/paycode/pending").json()["device"] is None


def test_a_waiting_order_is_confirmed_with_the_pin_or_declined(client: TestClient, db_url: str,
                                                              clock: ManualClock) -> None:
    shop = Shop(client, clock)
    till = Till(shop)
    api = payer(client, db_url, ALICE, 100_000)
    other_api = payer(client, db_url, BOB, 100_000)
    csrf = sign_in(client, db_url, ALICE)
    made = provision(client, csrf, data(client.get("/m/paycode").text, "key")).json()
    phone = PaycodeApplet.provisioned(made, clock=clock.now)

    waiting = till.charge("U-1", phone.code(), 30_000)  # above the password-free 200 CNY
    assert waiting.status_code == 202 and waiting.json()["state"] == "USERPAYING", waiting.text
    [order] = client.get("/m/paycode/pending").json()["orders"]
    assert (order["merchant"], order["store"], order["amount"], order["amount_text"], order["subject"]) == (
        "华新便利店", "南京路店", 30_000, "300.00", "便利店购物")
    url = f"/m/paycode/orders/{order['order_id']}"
    before = balance(client, api)
    refused(client.post(f"{url}/confirm", data={"csrf": "forged", "pin": PIN}), 400, "VALIDATION_FAILED")
    refused(client.post(f"{url}/confirm", data={"csrf": csrf, "pin": ""}), 400, "VALIDATION_FAILED")
    wrong = refused(client.post(f"{url}/confirm", data={"csrf": csrf, "pin": "000000"}), 422, "PIN_INCORRECT")
    assert "支付密码错误" in wrong["message"]
    assert balance(client, api) == before and shop_balance(shop) == 0
    assert till.query("U-1").json()["state"] == "USERPAYING"

    clock.advance(3)
    paid = client.post(f"{url}/confirm", data={"csrf": csrf, "pin": PIN})
    assert paid.status_code == 200 and paid.json()["state"] == "SUCCESS", paid.text
    assert paid.json()["paid_text"] == "300.00"
    assert balance(client, api) == before - 30_000 and shop_balance(shop) == 30_000
    assert till.query("U-1").json()["state"] == "SUCCESS"
    assert client.get("/m/paycode/pending").json()["orders"] == []
    refused(client.post(f"{url}/decline", data={"csrf": csrf}), 409, "MICROPAY_ORDER_PAID")

    clock.advance(30)
    second = till.charge("U-2", phone.code(), 25_000)
    assert second.status_code == 202, second.text
    [order] = client.get("/m/paycode/pending").json()["orders"]
    url = f"/m/paycode/orders/{order['order_id']}"

    csrf_bob = sign_in(client, db_url, BOB)  # another subscriber cannot see, pay or decline it
    assert client.get("/m/paycode/pending").json()["orders"] == []
    refused(client.post(f"{url}/confirm", data={"csrf": csrf_bob, "pin": PIN}), 404, "MICROPAY_ORDER_NOT_FOUND")
    refused(client.post(f"{url}/decline", data={"csrf": csrf_bob}), 404, "MICROPAY_ORDER_NOT_FOUND")
    assert balance(client, other_api) == 100_000 and till.query("U-2").json()["state"] == "USERPAYING"

    csrf = sign_in(client, db_url, ALICE)  # a new session: the order is the wallet's, not the device's
    no = client.post(f"{url}/decline", data={"csrf": csrf})
    assert no.status_code == 200 and no.json()["state"] == "CLOSED", no.text
    assert till.query("U-2").json()["state"] == "CLOSED"
    assert balance(client, api) == before - 30_000 and shop_balance(shop) == 30_000
    refused(client.post(f"{url}/confirm", data={"csrf": csrf, "pin": PIN}), 409, "MICROPAY_ORDER_CLOSED")
    assert balance(client, api) == before - 30_000 and shop_balance(shop) == 30_000
