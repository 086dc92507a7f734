"""Blind SSRF through merchants' notify URLs, tried as an attacker would: every address
that leads back into the platform's network is refused when it is registered (trade API,
app creation, portal) with NOTIFY_URL_REFUSED, and again at delivery after DNS (a name
that resolves to loopback, a rebinding answer, a row stored before the rules), where the
connection goes to the address that was checked, never follows a redirect, and a refusal
is recorded at once (state ``refused``, not retried) for the merchant and the operator."""

from __future__ import annotations

import ipaddress
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from mobipay.app.bootstrap import Container, build
from mobipay.app.http import create_app
from mobipay.kernel.clock import ManualClock
from mobipay.kernel.urls import DestinationPolicy, IPAddress
from mobipay.merchants.notify import MerchantNotifier
from mobipay.merchants.signing import sign_hmac
from mobipay.merchants.tables import notifications, trades
from mobipay.platform.config import Settings
from tests.e2e.test_merchants_api import application, time_now
from tests.e2e.test_wallet_api import bearer, fund, login_by_sms, signed_up

#: notify URLs that must never be registered, with what they aim at.
UNSAFE = [
    "javascript:alert(1)", "file:///etc/passwd", "gopher://127.0.0.1:6379/_FLUSHALL", "ftp://shop.example/",
    "http://127.0.0.1:8000/v1/ledger/transfers", "http://127.0.0.1/", "http://127.1/", "http://0.0.0.0/",
    "http://localhost:8000/", "http://api.localhost/", "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1/", "http://172.16.0.1/", "http://192.168.1.1/", "http://100.64.0.1/",
    "http://[::1]/", "http://[::ffff:127.0.0.1]/", "http://[::ffff:a9fe:a9fe]/", "http://[fc00::1]/",
    "http://[fe80::1]/", "http://[64:ff9b::a9fe:a9fe]/", "http://2130706433/", "http://0x7f000001/",
    "http://0177.0.0.1/", "http://0x7f.1/", "http://user@shop.example/", "http://shop.example@127.0.0.1/",
    "http://evil.example\\@shop.example/", "http://metadata/computeMetadata/v1/", "http:/shop.example/",
    "http://shop.example./", "http://sh\top.example/",
]


class StandInDns:
    """A stand-in for DNS (the far side no test can run): name -> the addresses to answer,
    and every question asked, to show the client asks once and connects to the answer."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.asked.append(host)
        return [ipaddress.ip_address(a) for a in self.answers[host]]


@pytest.fixture
def live(db_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, Container, ManualClock]]:
    settings = Settings(_env_file=None, database_url=db_url,  # type: ignore[call-arg]
                        merchant_key_file=tmp_path / "platform.pem")
    clock = ManualClock(time_now())
    container = build(settings, clock=clock)
    with TestClient(create_app(settings, container)) as client:
        yield client, container, clock


def _shop(client: TestClient, container: Container) -> tuple[str, str, str]:
    merchant_id = client.post("/v1/merchant-applications", json=application()).json()["id"]
    app_id, key = client.portal.call(lambda: container.merchants.create_app(merchant_id, "HMAC"))  # type: ignore[union-attr]
    return merchant_id, app_id, key or ""


def _signed(app_id: str, key: str, **params: str) -> dict[str, Any]:
    body: dict[str, Any] = {"app_id": app_id, "timestamp": str(int(time.time())), "nonce": secrets.token_hex(8),
                            "sign_type": "HMAC", **params}
    body["sign"] = sign_hmac(body, key.encode())
    return body


def test_unsafe_notify_urls_are_refused_when_registered(live: tuple[TestClient, Container, ManualClock]) -> None:
    client, container, _ = live
    merchant_id, app_id, key = _shop(client, container)
    for n, url in enumerate(UNSAFE):
        r = client.post("/v1/merchant/trades", json=_signed(app_id, key, out_trade_no=f"S-{n}", total_amount="100",
                                                            subject="书", notify_url=url))
        assert r.status_code == 400, (url, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        # a control character is refused at the edge, before any rule of URLs
        expected = "CONTROL_CHARACTER" if any(ord(ch) < 32 for ch in url) else "NOTIFY_URL_REFUSED"
        assert (r.json()["code"], r.json()["errors"][0]["field"]) == (expected, "notify_url"), url
        query = client.post("/v1/merchant/trades/query", json=_signed(app_id, key, out_trade_no=f"S-{n}"))
        assert query.json()["code"] == "TRADE_NOT_FOUND", url  # nothing was created
    from mobipay.kernel.errors import MobipayError

    for url in UNSAFE[:8]:
        with pytest.raises(MobipayError) as info:
            client.portal.call(lambda u=url: container.merchants.create_app(merchant_id, "HMAC", notify_url=u))  # type: ignore[union-attr, misc]
        assert info.value.code == "NOTIFY_URL_REFUSED"
    fine = client.post("/v1/merchant/trades", json=_signed(app_id, key, out_trade_no="OK-1", total_amount="100",
                                                           subject="书", notify_url="HTTPS://Shop.Example/notify"))
    assert fine.status_code == 201, fine.text

    async def stored(c: Container) -> str:
        async with c.db.begin() as conn:
            return str((await conn.execute(trades.select().where(trades.c.out_trade_no == "OK-1"))).one().notify_url)

    assert client.portal.call(lambda: stored(container)) == "https://shop.example/notify"  # type: ignore[union-attr]


def _paid_trade(client: TestClient, container: Container, db_url: str, app_id: str, key: str, no: str,
                notify_url: str) -> str:
    r = client.post("/v1/merchant/trades", json=_signed(app_id, key, out_trade_no=no, total_amount="500",
                                                        subject="书", notify_url=notify_url))
    assert r.status_code == 201, r.text
    if not getattr(client, "_buyer", None):
        signed_up(client, db_url, "13900139000")
        client._buyer = login_by_sms(client, db_url, "13900139000", "b")  # type: ignore[attr-defined]
        fund(client, "13900139000", 10_000)
    paid = client.post(f"/v1/trades/{r.json()['trade_no']}/pay", headers=bearer(client._buyer), json={})  # type: ignore[attr-defined]
    assert paid.status_code == 200, paid.text
    return str(r.json()["trade_no"])


def _notification(client: TestClient, container: Container, trade_id: str) -> Any:
    async def work(c: Container) -> Any:
        async with c.db.begin() as conn:
            return (await conn.execute(notifications.select().where(notifications.c.trade_id == trade_id))).one()

    return client.portal.call(lambda: work(container))  # type: ignore[union-attr]


def test_delivery_checks_the_resolved_address_and_connects_to_it(
        live: tuple[TestClient, Container, ManualClock], db_url: str, merchant_site: str) -> None:
    client, container, clock = live
    merchant_id, app_id, key = _shop(client, container)
    port = httpx.URL(merchant_site).port
    dns = StandInDns({"rebound.example": ["127.0.0.1"], "mixed.example": ["93.184.215.14", "127.0.0.1"],
                      "shop.example": ["127.0.0.1"], "metadata.example": ["169.254.169.254"]})
    strict = MerchantNotifier(container.uow, container.merchants.platform_key, timeout_s=5, resolver=dns)
    test_env = MerchantNotifier(container.uow, container.merchants.platform_key, timeout_s=5, resolver=dns,
                                policy=DestinationPolicy((ipaddress.ip_network("127.0.0.1/32"),)))

    # Names that were public-looking when registered and resolve to loopback, a mix, or the
    # metadata service when delivered: refused at once, nothing reaches the site.
    rebound = _paid_trade(client, container, db_url, app_id, key, "R-1", f"http://rebound.example:{port}/notify")
    mixed = _paid_trade(client, container, db_url, app_id, key, "R-2", f"http://mixed.example:{port}/notify")
    meta = _paid_trade(client, container, db_url, app_id, key, "R-3", "http://metadata.example/latest/meta-data/")
    assert client.portal.call(strict.deliver_due) == 3  # type: ignore[union-attr]
    for trade_id, address in ((rebound, "127.0.0.1"), (mixed, "127.0.0.1"), (meta, "169.254.169.254")):
        row = _notification(client, container, trade_id)
        assert (row.state, row.attempts) == ("refused", 1), row.last_error
        assert address in row.last_error and "not a public internet address" in row.last_error
    assert httpx.get(f"{merchant_site}/sim/received").json() == []

    # A row stored before the rules (straight at the loopback) is refused without DNS.
    before = _paid_trade(client, container, db_url, app_id, key, "R-4", "https://shop.example/notify")

    async def old_row(c: Container) -> None:
        async with c.db.begin() as conn:
            await conn.execute(update(notifications).where(notifications.c.trade_id == before).values(
                url=f"http://127.0.0.1:{port}/notify"))

    client.portal.call(lambda: old_row(container))  # type: ignore[union-attr]
    asked = len(dns.asked)
    assert client.portal.call(strict.deliver_due) == 1  # type: ignore[union-attr]
    assert _notification(client, container, before).state == "refused" and len(dns.asked) == asked

    # In a test environment loopback is allowed: the client connects to the address the
    # stand-in DNS gave for a name no real DNS has, and says that name in Host.
    good = _paid_trade(client, container, db_url, app_id, key, "G-1", f"http://shop.example:{port}/notify")
    assert client.portal.call(test_env.deliver_due) == 1  # type: ignore[union-attr]
    assert _notification(client, container, good).state == "delivered"
    assert [n["trade_no"] for n in httpx.get(f"{merchant_site}/sim/received").json()] == [good]
    assert httpx.get(f"{merchant_site}/sim/hosts").json() == [f"shop.example:{port}"]
    assert dns.asked[-1] == "shop.example"

    # A redirect is not followed (it could point anywhere): the try fails and is retried later.
    moved = _paid_trade(client, container, db_url, app_id, key, "M-1", f"http://shop.example:{port}/moved")
    assert client.portal.call(test_env.deliver_due) == 1  # type: ignore[union-attr]
    row = _notification(client, container, moved)
    assert (row.state, row.attempts) == ("pending", 1) and "redirects are not followed" in row.last_error
    assert len(httpx.get(f"{merchant_site}/sim/received").json()) == 1

    # The merchant and the operator see the refusals, with the reason.
    shown = client.portal.call(lambda: container.merchant_notifier.undelivered(merchant_id))  # type: ignore[union-attr]
    assert {n.trade_id for n in shown} == {rebound, mixed, meta, before}
    assert all(n.state == "refused" and n.last_error.startswith("refused:") for n in shown)
    client.portal.call(lambda: container.merchant_operators.create(  # type: ignore[union-attr]
        merchant_id, "owner", "correct horse battery", "246810", role="owner"))
    token = client.get("/merchant/signin").cookies.get("mp_csrf") or client.cookies["mp_csrf"]
    assert client.post("/merchant/signin", data={"csrf": token, "merchant_id": merchant_id, "name": "owner",
                                                 "password": "correct horse battery"},
                       follow_redirects=False).status_code == 303
    portal = client.get("/merchant/apps")
    assert portal.text.count('data-testid="notification"') == 4 and "169.254.169.254" in portal.text
    clock.advance(24 * 3600)
    assert client.portal.call(test_env.deliver_due) == 1  # type: ignore[union-attr]  # the redirected one only
    assert {n.trade_id for n in client.portal.call(  # type: ignore[union-attr]
        lambda: container.merchant_notifier.undelivered(merchant_id))} == {rebound, mixed, meta, before}
    assert client.portal.call(lambda: container.ledger.verify()).ok  # type: ignore[union-attr]
