"""The group-buy community over HTTP (SQLite and PostgreSQL): browsing a city's deals nearest
first, buying with an Idempotency-Key (replayed, refused as problem+json), the voucher's QR
code, 随时退, and shop staff signed in as merchant portal operators preparing, consuming
part of an order with a request id, reversing, the day's history and a guessed code."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mobipay.app.bootstrap import Container, build
from mobipay.app.http import create_app
from mobipay.groupbuy.model import DealTerms
from mobipay.kernel.clock import SHANGHAI, ManualClock
from mobipay.merchants.model import credit_code_check_char
from mobipay.platform.config import Settings
from tests.e2e.test_merchant_portal import PASSWORD, csrf, sign_in
from tests.e2e.test_protection_api import problem
from tests.e2e.test_wallet_api import balance, bearer, fund, login_by_sms, signed_up

NOW = datetime(2026, 12, 4, 3, 0, tzinfo=UTC)


@pytest.fixture
def live(db_url: str) -> Iterator[tuple[TestClient, Container, ManualClock]]:
    settings = Settings(_env_file=None, database_url=db_url)
    clock = ManualClock(NOW)
    container = build(settings, clock=clock)
    with TestClient(create_app(settings, container)) as c:
        yield c, container, clock


async def _setup_coro(c: Container) -> tuple[str, str, str, str]:
    """An approved deal merchant with a store, a staff account and two deals (on the app's loop)."""
    await c.ensure_system_accounts()
    body = "91310000MA1GB0B42"
    m = await c.merchants.apply(name="小龙坎火锅", credit_code=body + credit_code_check_char(body),
                                legal_person="李四", contact="13700137000", mcc="5812", website="",
                                settlement_account="6222020000111122222")
    store = await c.merchants.add_store(m, "小龙坎 徐家汇店", "漕溪北路 1 号", "上海")
    await c.merchant_operators.create(m.id, "cashier1", "correct horse battery", "135792", role="staff")
    await c.merchant_operators.create(m.id, "owner", PASSWORD, "135792", role="owner")
    common: dict[str, Any] = dict(city="上海", category="food", market_price=32_800, stock=5,
                                  sale_start=NOW - timedelta(hours=1), sale_end=NOW + timedelta(days=3),
                                  per_user_limit=4, valid_from=NOW - timedelta(hours=1),
                                  valid_until=NOW + timedelta(days=30))
    near = await c.groupbuy.open_deal(m.id, DealTerms(title="单人午市套餐", price=4_900, lat=31.19, lon=121.44,
                                                      **common), [store])
    far = await c.groupbuy.open_deal(m.id, DealTerms(title="四人套餐", price=19_900, lat=31.30, lon=121.50,
                                                     **common), [store])
    return m.id, store, near.id, far.id


def test_buy_consume_reverse_refund_over_http(live: tuple[TestClient, Container, ManualClock], db_url: str) -> None:
    client, c, clock = live
    merchant_id, store, near, far = client.portal.call(_setup_coro, c)  # type: ignore[union-attr]
    signed_up(client, db_url, "13800138000")
    me = login_by_sms(client, db_url, "13800138000", "a")
    fund(client, "13800138000", 50_000)

    r = client.get("/v1/groupbuy/deals", params={"city": "上海", "lat": 31.19, "lon": 121.43})
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [d["id"] for d in items] == [near, far] and items[0]["distance_km"] < items[1]["distance_km"]
    assert len(client.get("/v1/groupbuy/cities").json()) > 250
    problem(client.get("/v1/groupbuy/deals", params={"city": "纽约"}), 400, "VALIDATION_FAILED")

    headers = {**bearer(me), "Idempotency-Key": "buy-1"}
    problem(client.post("/v1/groupbuy/orders", headers=bearer(me), json={"deal_id": near, "quantity": 3}), 400,
            "IDEMPOTENCY_KEY_REQUIRED")
    r = client.post("/v1/groupbuy/orders", headers=headers, json={"deal_id": near, "quantity": 3})
    assert r.status_code == 201, r.text
    order = r.json()
    again = client.post("/v1/groupbuy/orders", headers=headers, json={"deal_id": near, "quantity": 3})
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == order["id"]
    problem(client.post("/v1/groupbuy/orders", headers={**bearer(me), "Idempotency-Key": "buy-2"},
                        json={"deal_id": near, "quantity": 3}), 409, "SOLD_OUT")  # 2 left of 5
    problem(client.post("/v1/groupbuy/orders", headers={**bearer(me), "Idempotency-Key": "buy-3"},
                        json={"deal_id": near, "quantity": 2.5}), 400, "VALIDATION_FAILED")
    assert balance(client, me) == 50_000 - 3 * 4_900
    codes = [v["code"] for v in order["vouchers"]]
    qr = client.get(order["vouchers"][0]["qr"], headers=bearer(me))
    assert qr.status_code == 200 and qr.headers["content-type"].startswith("image/svg+xml")

    problem(client.post("/v1/groupbuy/shop/sessions", json={"merchant_id": merchant_id, "name": "cashier1",
                                                            "password": "wrong"}), 401, "MERCHANT_SIGN_IN_FAILED")
    r = client.post("/v1/groupbuy/shop/sessions", json={"merchant_id": merchant_id, "name": "cashier1",
                                                        "password": "correct horse battery"})
    assert r.status_code == 201, r.text
    staff = {"Authorization": f"Bearer {r.json()['token']}"}
    problem(client.post("/v1/groupbuy/shop/prepare", json={"store_id": store, "receipt_code": codes[0]}), 401,
            "MERCHANT_SESSION_EXPIRED")
    r = client.post("/v1/groupbuy/shop/prepare", headers=staff, json={"store_id": store, "receipt_code": codes[0]})
    assert r.status_code == 200, r.text
    assert (r.json()["count"], r.json()["deal_price"]["amount"], r.json()["mobile"]) == (3, 4_900, "+86138****8000")
    consume = {"store_id": store, "receipt_code": codes[0], "count": 2, "request_id": "pos-1"}
    r = client.post("/v1/groupbuy/shop/consumptions", headers=staff, json=consume)
    assert r.status_code == 201, r.text
    used = r.json()
    assert (used["count"], used["left"], used["state"]) == (2, 1, "consumed")
    assert client.post("/v1/groupbuy/shop/consumptions", headers=staff, json=consume).status_code == 200
    problem(client.post("/v1/groupbuy/shop/consumptions", headers=staff, json={**consume, "request_id": "pos-2"}),
            422, "VOUCHER_NOT_USABLE")  # the same code twice
    r = client.post(f"/v1/groupbuy/shop/consumptions/{used['id']}/reversal", headers=staff)
    assert r.status_code == 200 and r.json()["state"] == "reversed"
    problem(client.post("/v1/groupbuy/shop/prepare", headers=staff,
                        json={"store_id": store, "receipt_code": "000000000000"}), 404, "VOUCHER_CODE_UNKNOWN")
    r = client.post("/v1/groupbuy/orders/" + order["id"] + "/refunds", headers={**bearer(me), "Idempotency-Key": "r"},
                    json={"count": 1})
    assert r.status_code == 201 and r.json()["amount"]["amount"] == 4_900, r.text
    assert balance(client, me) == 50_000 - 2 * 4_900
    day = clock.now().astimezone(SHANGHAI).date().isoformat()
    r = client.get("/v1/groupbuy/shop/consumptions", headers=staff, params={"day": day})
    assert [h["state"] for h in r.json()] == ["reversed"]
    mine = client.get("/v1/groupbuy/orders", headers=bearer(me)).json()
    assert [v["state"] for v in mine[0]["vouchers"]].count("refunded") == 1

    # the same at the shop's counter, in the merchant portal's page
    assert sign_in(client, merchant_id).status_code == 303
    page = client.get("/merchant/groupbuy")
    assert page.status_code == 200 and "团购验券" in page.text
    seen = client.post("/merchant/groupbuy/prepare", data={"csrf": csrf(page.text), "store_id": store,
                                                           "receipt_code": codes[2]})
    assert seen.status_code == 200 and 'data-testid="prepared"' in seen.text, seen.text[-2000:]
    request_id = re.search(r'name="request_id" value="([^"]+)"', seen.text)
    assert request_id
    form = {"csrf": csrf(seen.text), "store_id": store, "receipt_code": codes[2], "count": "1",
            "request_id": request_id.group(1)}
    done = client.post("/merchant/groupbuy/consume", data=form)
    assert done.status_code == 200 and 'data-testid="done"' in done.text
    assert client.post("/merchant/groupbuy/consume", data=form).status_code == 200  # a double submit: once
    assert done.text.count('data-testid="consumption"') == 2
    wrong = client.post("/merchant/groupbuy/prepare", data={"csrf": csrf(done.text), "store_id": store,
                                                            "receipt_code": "1234567890"})
    assert wrong.status_code == 404 and 'data-testid="error"' in wrong.text
    assert len([v for v in client.get("/v1/groupbuy/orders", headers=bearer(me)).json()[0]["vouchers"]
                if v["state"] == "consumed"]) == 1
