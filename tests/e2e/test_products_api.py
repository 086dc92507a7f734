"""Products, insurance and lottery over HTTP against their SIMULATORS (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient

from mobipay.app.bootstrap import build
from mobipay.app.http import create_app
from mobipay.kernel.clock import SHANGHAI, ManualClock
from mobipay.platform.config import Settings
from mobipay.wallet.model import id_card_check_char
from tests.conftest import LOTTERY_SECRET, PROVIDER_SECRET
from tests.e2e.test_wallet_api import balance, bearer, fund, login_by_sms, signed_up
from tests.support import partners

NOON = datetime(2026, 11, 24, 12, 0, tzinfo=SHANGHAI)


@pytest.fixture
def client(db_url: str, providers: dict[str, str], lottery_url: str) -> Iterator[TestClient]:
    settings = Settings(_env_file=None, database_url=db_url, products_url=providers["operator_products"],  # type: ignore[call-arg]
                        insurer_url=providers["insurer"], products_secret=PROVIDER_SECRET,
                        insurer_secret=PROVIDER_SECRET, lottery_url=lottery_url, lottery_secret=LOTTERY_SECRET,
                        partner_timeout_s=1.0)
    with TestClient(create_app(settings, build(settings, clock=ManualClock(NOON)))) as c:
        yield c


def test_products_insurance_and_lottery(client: TestClient, db_url: str) -> None:
    signed_up(client, db_url, "13800138000")
    me = login_by_sms(client, db_url, "13800138000", "a")
    fund(client, "13800138000", 50_000)
    key = iter(f"k{n}" for n in range(100))

    def post(path: str, body: dict[str, object]):  # type: ignore[no-untyped-def]
        return client.post(path, headers={**bearer(me), "Idempotency-Key": next(key)}, json=body)

    assert {p["family"] for p in client.get("/v1/products").json()} == {"music", "info", "fetion"}
    r = post("/v1/product-orders", {"product": "INFO_12580_WEATHER"})
    assert r.status_code == 201 and r.json()["state"] == "succeeded" and r.json()["reference"], r.text
    assert post("/v1/product-orders", {"product": "NOPE"}).json()["code"] == "PRODUCT_NOT_FOUND"

    products = client.get("/v1/insurance/products").json()
    assert {p["kind"] for p in products} == {"accident", "travel"}
    idn = "11010519491231002" + id_card_check_char("11010519491231002")
    policy = post("/v1/policies", {"product": "ACC_1Y_100K", "insured_name": "王小明", "insured_id_number": idn,
                                   "starts_on": (NOON.date() + timedelta(days=1)).isoformat()})
    assert policy.status_code == 201 and policy.json()["insured"] == "**明", policy.text
    bad = post("/v1/policies", {"product": "ACC_1Y_100K", "insured_name": "王小明", "insured_id_number": "1",
                                "starts_on": NOON.date().isoformat()})
    assert bad.json()["code"] == "INVALID_ID_CARD"
    cancel = client.post(f"/v1/policies/{policy.json()['id']}/cancel", headers=bearer(me))
    assert cancel.status_code == 201 and cancel.json()["state"] == "succeeded"
    assert [p["cancellation"] for p in client.get("/v1/policies", headers=bearer(me)).json()] == ["succeeded"]
    assert balance(client, me) == 50_000 - 200  # the weather SMS; the premium came back

    games = {g["code"]: g for g in client.get("/v1/lottery/games").json()}
    assert set(games) == {"ssq", "dlt", "fc3d"} and games["ssq"]["issue"].startswith("2026")
    t = post("/v1/lottery/tickets", {"game": "ssq", "bets": [[[1, 5, 12, 19, 27, 33], [9]]], "quick_picks": 1})
    assert t.status_code == 201 and t.json()["cost"]["amount"] == 400 and t.json()["serial"], t.text
    assert post("/v1/lottery/tickets", {"game": "ssq", "bets": [[[1, 2], [9]]]}).json()["code"] == "INVALID_NUMBERS"
    assert post("/v1/lottery/tickets", {"game": "ssq", "multiplier": 100, "quick_picks": 1}).status_code == 400
    assert [x["prize"] for x in client.get("/v1/lottery/tickets", headers=bearer(me)).json()] == [None]
    assert balance(client, me) == 50_000 - 200 - 400


def test_lottery_idempotency_keys(client: TestClient, db_url: str) -> None:
    """The same Idempotency-Key and body is the first ticket replayed (200, Idempotent-Replayed,
    the same random picks, nothing bought twice); the same key with another body (another
    game, other numbers, another multiplier or number of quick picks) is 409
    IDEMPOTENCY_CONFLICT and buys nothing."""
    signed_up(client, db_url, "13800138000")
    me = login_by_sms(client, db_url, "13800138000", "a")
    fund(client, "13800138000", 50_000)

    def buy(key: str, body: dict[str, object]):  # type: ignore[no-untyped-def]
        return client.post("/v1/lottery/tickets", headers={**bearer(me), "Idempotency-Key": key}, json=body)

    body: dict[str, object] = {"game": "ssq", "bets": [[[1, 5, 12, 19, 27, 33], [9]]], "quick_picks": 1}
    first = buy("same-key", body)
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers, first.text
    again = buy("same-key", body)
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true", again.text
    assert again.json() == first.json()  # the same ticket, the same quick pick
    for other in ({"game": "dlt", "quick_picks": 1}, {**body, "bets": [[[2, 5, 12, 19, 27, 33], [9]]]},
                  {**body, "multiplier": 2}, {**body, "quick_picks": 2}, {"game": "ssq", "quick_picks": 2}):
        conflict = buy("same-key", other)
        assert conflict.status_code == 409 and conflict.json()["code"] == "IDEMPOTENCY_CONFLICT", (other, conflict.text)
        assert conflict.headers["content-type"] == "application/problem+json"
    assert [t["id"] for t in client.get("/v1/lottery/tickets", headers=bearer(me)).json()] == [first.json()["id"]]
    assert balance(client, me) == 50_000 - 400  # one ticket paid


@pytest.fixture
def hall(db_url: str, providers: dict[str, str], lottery_url: str) -> Iterator[tuple[TestClient, ManualClock]]:
    clock = ManualClock(NOON)
    settings = Settings(_env_file=None, database_url=db_url, products_url=providers["operator_products"],  # type: ignore[call-arg]
                        insurer_url=providers["insurer"], products_secret=PROVIDER_SECRET,
                        insurer_secret=PROVIDER_SECRET, lottery_url=lottery_url, lottery_secret=LOTTERY_SECRET,
                        partner_timeout_s=1.0, product_renewal_notice_days=3)
    with TestClient(create_app(settings, build(settings, clock=clock))) as c:
        yield c, clock


def test_subscriptions_orders_and_receipts(hall: tuple[TestClient, ManualClock], db_url: str,
                                           providers: dict[str, str]) -> None:
    """A monthly product is one subscription: bought again it is 409 ALREADY_SUBSCRIBED and
    nothing is charged (the same key still answers the first order); the worker's job renews
    it from the wallet; cancelling keeps the paid period; orders and subscriptions are listed
    with their states; a failed purchase is failed in the history and on its receipt."""
    client, clock = hall
    signed_up(client, db_url, "13800138000")
    me = login_by_sms(client, db_url, "13800138000", "a")
    fund(client, "13800138000", 50_000)

    def buy(key: str, product: str):  # type: ignore[no-untyped-def]
        return client.post("/v1/product-orders", headers={**bearer(me), "Idempotency-Key": key},
                           json={"product": product})

    first = buy("a", "FETION_VIP")
    assert first.status_code == 201 and first.json()["cycle"] == 1 and first.json()["subscription"], first.text
    again = buy("b", "FETION_VIP")
    assert again.status_code == 409 and again.json()["code"] == "ALREADY_SUBSCRIBED", again.text
    assert again.headers["content-type"] == "application/problem+json"
    assert balance(client, me) == 49_000  # charged once
    replay = buy("a", "FETION_VIP")
    assert replay.status_code == 200 and replay.json()["id"] == first.json()["id"]
    assert buy("c", "NOPE").json()["code"] == "PRODUCT_NOT_FOUND" and balance(client, me) == 49_000

    [sub] = client.get("/v1/products/subscriptions", headers=bearer(me)).json()
    assert sub["id"] == first.json()["subscription"] and sub["state"] == "active" and sub["in_service"]
    assert sub["renews_at"] == sub["paid_until"] and sub["price"]["amount"] == 1000
    assert client.get(f"/v1/products/subscriptions/{sub['id']}", headers=bearer(me)).json() == sub
    missing = client.get("/v1/products/subscriptions/ps_nope", headers=bearer(me))
    assert missing.status_code == 404 and missing.json()["code"] == "SUBSCRIPTION_NOT_FOUND"

    container = client.app.state.container  # type: ignore[attr-defined]
    assert client.portal is not None
    clock.set(datetime.fromisoformat(sub["paid_until"]))
    client.portal.call(container.products.renew_due)
    client.portal.call(container.products.renew_due)  # the worker again: nothing twice
    me = login_by_sms(client, db_url, "13800138000", "a")  # a month later: a new session
    orders = client.get("/v1/products/orders", headers=bearer(me)).json()
    assert [(o["cycle"], o["state"]) for o in orders] == [(2, "succeeded"), (1, "succeeded")]
    assert balance(client, me) == 48_000
    one = client.get(f"/v1/products/orders/{orders[0]['id']}", headers=bearer(me))
    assert one.json()["subscription"] == sub["id"] and one.json()["settled_at"]
    assert client.get("/v1/products/orders/po_nope", headers=bearer(me)).json()["code"] == "PRODUCT_ORDER_NOT_FOUND"

    cancelled = client.post(f"/v1/products/subscriptions/{sub['id']}/cancel", headers=bearer(me))
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled", cancelled.text
    assert cancelled.json()["in_service"] and cancelled.json()["renews_at"] is None
    assert client.post(f"/v1/products/subscriptions/{sub['id']}/cancel", headers=bearer(me)).json() == cancelled.json()

    # A purchase the provider refuses: failed in the history (no net debit) and on its receipt.
    httpx.post(f"{providers['operator_products']}/sim/barred", json={"msisdn": "+8613800138000"}).raise_for_status()
    refused = buy("d", "MUSIC_TRACK")
    assert refused.status_code == 422 and refused.json()["code"] == "DELIVERY_FAILED"
    assert balance(client, me) == 48_000
    lines = client.get("/v1/me/transactions", headers=bearer(me)).json()["items"]
    failed = next(e for e in lines if e["transfer_id"] == f"order:{refused.json()['order_id']}")
    assert failed["state"] == "failed" and not failed["pending"] and failed["balance_after"]["amount"] == 48_000
    receipt = client.get(f"/v1/me/transactions/{failed['transfer_id']}", headers=bearer(me)).json()
    assert receipt["state"] == "failed"
    paid = client.get(f"/v1/me/transactions/order:{first.json()['id']}", headers=bearer(me)).json()
    assert paid["state"] == "succeeded"


def test_a_declined_policy_cancellation_is_retried(client: TestClient, db_url: str,
                                                   providers: dict[str, str]) -> None:
    """The insurer declines a cancellation: 422 CANCELLATION_DECLINED, never "the money is
    back" (it is not); asked again within the cooling-off period it is a new attempt."""
    signed_up(client, db_url, "13800138000")
    me = login_by_sms(client, db_url, "13800138000", "a")
    fund(client, "13800138000", 50_000)
    idn = "11010519491231002" + id_card_check_char("11010519491231002")
    policy = client.post("/v1/policies", headers={**bearer(me), "Idempotency-Key": "p"}, json={
        "product": "ACC_1Y_100K", "insured_name": "王小明", "insured_id_number": idn,
        "starts_on": (NOON.date() + timedelta(days=1)).isoformat()})
    assert policy.status_code == 201, policy.text
    partners.behave(f"{providers['insurer']}/sim", decline_rate=1.0)
    declined = client.post(f"/v1/policies/{policy.json()['id']}/cancel", headers=bearer(me))
    assert declined.status_code == 422 and declined.json()["code"] == "CANCELLATION_DECLINED", declined.text
    assert "money is back" not in declined.text and declined.json()["retry_until"]
    assert balance(client, me) == 45_000  # nothing came back
    assert [p["cancellation"] for p in client.get("/v1/policies", headers=bearer(me)).json()] == ["failed"]
    partners.behave(f"{providers['insurer']}/sim", decline_rate=0.0)
    retried = client.post(f"/v1/policies/{policy.json()['id']}/cancel", headers=bearer(me))
    assert retried.status_code == 201 and retried.json()["state"] == "succeeded", retried.text
    assert retried.json()["id"] != declined.json()["order_id"] and balance(client, me) == 50_000
    assert [p["cancellation"] for p in client.get("/v1/policies", headers=bearer(me)).json()] == ["succeeded"]
