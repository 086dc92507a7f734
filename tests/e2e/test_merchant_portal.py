"""The merchant portal over HTTP on both databases: operator accounts, sign-in, orders,
a partial refund with the refund PIN (wrong PINs refused, then locked; a double submit
refunds once), statements, apps and notify URL; another merchant's ids refused."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mobipay.app.bootstrap import Container
from mobipay.app.http import create_app
from mobipay.ledger.chart import BANK_SETTLEMENT
from mobipay.ledger.model import Leg, Transfer
from mobipay.platform.config import Settings
from tests.e2e.test_merchants_api import _other_code, application

BUYER = "13900139000"
PASSWORD, REFUND_PIN = "correct horse battery", "246810"


@pytest.fixture
def client(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(_env_file=None, database_url=db_url,  # type: ignore[call-arg]
                        merchant_key_file=tmp_path / "platform.pem")
    with TestClient(create_app(settings)) as c:
        yield c


def seed_shop(call: Callable[[Callable[[Container], Any]], Any], *, credit_code: str | None = None,
              out_trade_no: str = "B-1", amount: int = 6_000, buyer_balance: int = 10_000) -> tuple[str, str]:
    """An approved shop with an owner account, a buyer and one paid trade: (merchant id, trade id)."""

    async def work(c: Container) -> tuple[str, str]:
        fields = application(**({"credit_code": credit_code, "name": "当当书店"} if credit_code else {}))
        merchant = await c.merchants.apply(name=fields["name"], credit_code=fields["credit_code"],
                                           legal_person=fields["legal_person"], contact=fields["contact_msisdn"],
                                           mcc=fields["mcc"], website=fields["website"],
                                           settlement_account=fields["settlement_account"])
        await c.merchant_operators.create(merchant.id, "owner", PASSWORD, REFUND_PIN, role="owner")
        try:
            user = await c.wallet.user_by_msisdn(BUYER)
        except Exception:
            user = await c.wallet.create_user(BUYER, actor="test", reason="portal test")
        await c.ledger.post(Transfer(f"fund-{merchant.id}", (Leg.debit(BANK_SETTLEMENT, buyer_balance),
                                                              Leg.credit(user.account_code, buyer_balance)), "cash_in"))
        trade = await c.merchants.create_trade(merchant, out_trade_no, amount, "三体")
        await c.merchants.pay(await c.wallet.principal(user.id), trade.id)
        return merchant.id, trade.id

    result: tuple[str, str] = call(work)
    return result


def balance(call: Callable[[Callable[[Container], Any]], Any], account: str | None = None) -> int:
    async def work(c: Container) -> int:
        code = account or (await c.wallet.user_by_msisdn(BUYER)).account_code
        return (await c.ledger.account(code)).balance

    amount: int = call(work)
    return amount


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def sign_in(client: TestClient, merchant_id: str, password: str = PASSWORD) -> Any:
    client.cookies.clear()
    token = csrf(client.get("/merchant/signin").text)
    return client.post("/merchant/signin", data={"csrf": token, "merchant_id": merchant_id, "name": "owner",
                                                  "password": password}, follow_redirects=False)


def test_refund_with_the_operator_pin(client: TestClient) -> None:
    c = client.app.state.container  # type: ignore[attr-defined]

    def call(work: Callable[[Container], Any]) -> Any:
        return client.portal.call(work, c)  # type: ignore[union-attr]

    merchant_id, trade_id = seed_shop(call)
    merchant_account = call(lambda c: c.merchants.merchant(merchant_id)).account_code
    assert client.get("/merchant", follow_redirects=False).status_code == 303
    bad = sign_in(client, merchant_id, "wrong password!")
    assert bad.status_code == 401 and "MERCHANT_SIGN_IN_FAILED" in bad.text
    ok = sign_in(client, merchant_id)
    assert ok.status_code == 303 and "httponly" in ok.headers["set-cookie"].lower()
    orders = client.get("/merchant")
    assert orders.status_code == 200 and "B-1" in orders.text and "default-src 'self'" in orders.headers[
        "content-security-policy"]
    assert "B-1" in client.get("/merchant?q=B-").text and "B-1" not in client.get("/merchant?q=nothing").text

    detail = client.get(f"/merchant/orders/{trade_id}")
    token, request_no = csrf(detail.text), re.search(r'name="request_no" value="([^"]+)"', detail.text)
    assert request_no
    form = {"csrf": token, "amount": "20.00", "refund_pin": "000000", "request_no": request_no.group(1)}
    wrong = client.post(f"/merchant/orders/{trade_id}/refund", data=form)
    assert wrong.status_code == 403 and "REFUND_PIN_INCORRECT" in wrong.text
    for bad_amount in ("1e3", "20.001", "-20", "0"):
        r = client.post(f"/merchant/orders/{trade_id}/refund", data={**form, "amount": bad_amount,
                                                                      "refund_pin": REFUND_PIN})
        assert r.status_code == 400 and "INVALID_AMOUNT" in r.text
    assert balance(call) == 10_000 - 6_000
    form["refund_pin"] = REFUND_PIN
    first = client.post(f"/merchant/orders/{trade_id}/refund", data=form)
    again = client.post(f"/merchant/orders/{trade_id}/refund", data=form)  # a double submit
    assert first.status_code == again.status_code == 200 and 'data-testid="done"' in first.text
    assert balance(call) == 10_000 - 6_000 + 2_000
    assert balance(call, merchant_account) == 6_000 - 2_000
    too_much = client.post(f"/merchant/orders/{trade_id}/refund", data={**form, "amount": "50", "request_no": "r2"})
    assert too_much.status_code == 422 and "REFUND_EXCEEDS_PAID" in too_much.text
    forged = client.post(f"/merchant/orders/{trade_id}/refund", data={**form, "csrf": "x", "request_no": "r3"})
    assert forged.status_code == 400 and balance(call) == 6_000

    day = call(lambda c: _today(c))
    csv = client.get(f"/merchant/statements/{day}.csv")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert "payment" in csv.text and "refund" in csv.text and "B-1" in csv.text
    assert client.get("/merchant/statements/2026-13-01.csv").status_code == 400
    assert client.get("/merchant/statements").status_code == 200

    created = client.post("/merchant/apps", data={"csrf": token, "sign_type": "HMAC",
                                                  "notify_url": "https://book.example/notify"})
    assert created.status_code == 200 and 'data-testid="key"' in created.text
    app_id = re.search(r"<b>(app_[0-9a-f]+)</b>", created.text)
    assert app_id
    bad_url = client.post(f"/merchant/apps/{app_id.group(1)}/notify-url", data={"csrf": token, "url": "ftp://x"})
    assert bad_url.status_code == 400
    for inside in ("http://127.0.0.1:8000/v1/ledger/transfers", "http://169.254.169.254/latest/meta-data/",
                   "http://[::1]/", "http://2130706433/", "http://localhost/", "http://10.0.0.8/"):
        refused = client.post(f"/merchant/apps/{app_id.group(1)}/notify-url", data={"csrf": token, "url": inside})
        assert refused.status_code == 400 and "NOTIFY_URL_REFUSED" in refused.text, inside  # no SSRF
    loopback_app = client.post("/merchant/apps", data={"csrf": token, "sign_type": "HMAC",
                                                       "notify_url": "http://127.0.0.1/notify"})
    assert loopback_app.status_code == 400 and "NOTIFY_URL_REFUSED" in loopback_app.text
    saved = client.post(f"/merchant/apps/{app_id.group(1)}/notify-url",
                        data={"csrf": token, "url": "https://book.example/n2"})
    assert saved.status_code == 200 and "https://book.example/n2" in saved.text

    for _ in range(5):  # five wrong PINs in a row lock refunds by this operator, even with the right PIN after
        client.post(f"/merchant/orders/{trade_id}/refund", data={**form, "refund_pin": "111111", "request_no": "x"})
    locked = client.post(f"/merchant/orders/{trade_id}/refund", data={**form, "request_no": "r4", "amount": "1"})
    assert locked.status_code == 423 and "REFUND_PIN_LOCKED" in locked.text
    assert balance(call) == 6_000


async def _today(c: Container) -> str:
    from mobipay.kernel.clock import SHANGHAI

    return c.clock.now().astimezone(SHANGHAI).date().isoformat()


def test_another_merchants_ids_are_refused(client: TestClient) -> None:
    c = client.app.state.container  # type: ignore[attr-defined]

    def call(work: Callable[[Container], Any]) -> Any:
        return client.portal.call(work, c)  # type: ignore[union-attr]

    mine, _ = seed_shop(call)
    _, theirs = seed_shop(call, credit_code=_other_code(), out_trade_no="D-9", amount=3_000)
    other_app = call(lambda c: _app_of(c, theirs))
    assert sign_in(client, mine).status_code == 303
    token = csrf(client.get("/merchant").text)
    assert "D-9" not in client.get("/merchant").text
    assert "暂无订单" in client.get("/merchant?q=D-9").text  # the search box echoes it; no order found
    r = client.get(f"/merchant/orders/{theirs}")
    assert r.status_code == 404 and "D-9" not in r.text
    r = client.post(f"/merchant/orders/{theirs}/refund", data={"csrf": token, "amount": "10", "refund_pin": REFUND_PIN,
                                                               "request_no": "steal"})
    assert r.status_code == 404
    assert balance(call) == 20_000 - 6_000 - 3_000  # nothing came back from the other shop
    day = call(lambda c: _today(c))
    assert "D-9" not in client.get(f"/merchant/statements/{day}.csv").text
    r = client.post(f"/merchant/apps/{other_app}/notify-url", data={"csrf": token, "url": "https://evil.example/"})
    assert r.status_code == 404


async def _app_of(c: Container, trade_id: str) -> str:
    trade = await c.merchants.trade(trade_id)
    app_id, _ = await c.merchants.create_app(trade.merchant_id, "HMAC")
    return app_id


def test_portal_sign_in_locks_after_wrong_passwords_and_renews_csrf(db_url: str, tmp_path: Path) -> None:
    """The console's lockout policy on the portal: 5 wrong passwords within 15 minutes lock the
    account for 15 minutes (the right password too), whatever the address; the lock and every
    failure are audited; the platform can unlock it. Sign-in renews the CSRF token."""
    from mobipay.app.bootstrap import build
    from mobipay.kernel.clock import ManualClock
    from mobipay.platform import audit

    settings = Settings(_env_file=None, database_url=db_url, rate_limit_pin="1000/minute",  # type: ignore[call-arg]
                        merchant_key_file=tmp_path / "platform.pem")
    clock = ManualClock()
    container = build(settings, clock=clock)
    with TestClient(create_app(settings, container)) as client:
        def call(work: Callable[[Container], Any]) -> Any:
            return client.portal.call(work, container)  # type: ignore[union-attr]

        merchant_id, _ = seed_shop(call)
        for n in range(4):
            assert sign_in(client, merchant_id, f"wrong password {n}").status_code == 401
        locked = sign_in(client, merchant_id, "wrong password 4")
        assert locked.status_code == 423 and "MERCHANT_SIGN_IN_LOCKED" in locked.text
        for n in range(30):
            assert sign_in(client, merchant_id, f"again {n}").status_code == 423
        assert sign_in(client, merchant_id).status_code == 423  # the right password, after 35 wrong ones

        async def trail(c: Container) -> list[str]:
            async with c.db.begin() as conn:
                return [e["action"] for e in await audit.entries(conn, f"{merchant_id}/owner")]

        actions = call(trail)
        assert actions.count("merchant_operator.sign_in_failed") == 4 and actions.count(
            "merchant_operator.locked") == 1 and actions.count("merchant_operator.sign_in_locked") == 31
        clock.advance(15 * 60 + 1)
        planted = "planted-before-sign-in-0123456789"
        client.cookies.clear()
        client.cookies.set("mp_csrf", planted, domain="testserver.local")
        ok = client.post("/merchant/signin", data={"csrf": planted, "merchant_id": merchant_id, "name": "owner",
                                                   "password": PASSWORD}, follow_redirects=False)
        assert ok.status_code == 303 and client.cookies["mp_csrf"] != planted
        assert client.post("/merchant/signout", data={"csrf": planted}).status_code == 400
        for n in range(5):
            sign_in(client, merchant_id, f"burst {n}")
        assert sign_in(client, merchant_id).status_code == 423
        call(lambda c: c.merchant_operators.unlock(merchant_id, "owner", actor="operator", reason="owner called"))
        assert sign_in(client, merchant_id).status_code == 303
