"""The bill zone over HTTP on both databases against the billers SIMULATOR: browse, search,
fetch, pay, receipts, and the refusals a client meets, each with its code."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from fastapi.testclient import TestClient

from mobipay.app.bootstrap import build
from mobipay.app.http import create_app
from mobipay.kernel.clock import SHANGHAI, ManualClock
from mobipay.platform.config import Settings
from tests.conftest import BILLER_SECRET
from tests.e2e.test_wallet_api import balance, bearer, fund, login_by_sms, signed_up


@pytest.fixture
def client(db_url: str, billers_url: str) -> Iterator[TestClient]:
    settings = Settings(_env_file=None, database_url=db_url, billers_url=billers_url,  # type: ignore[call-arg]
                        billers_secret=BILLER_SECRET, partner_timeout_s=1.0)
    clock = ManualClock(datetime.now(SHANGHAI).replace(hour=12, minute=0))
    container = build(settings, clock=clock)
    with TestClient(create_app(settings, container)) as c:
        from mobipay.bills.reference_data import shipped_billers

        c.portal.call(lambda: container.bills.import_billers(shipped_billers(), actor="t", reason="t"))  # type: ignore[union-attr]
        yield c


def test_bill_zone_over_http(client: TestClient, db_url: str) -> None:
    cities = client.get("/v1/billers/cities").json()
    assert len(cities) == 50 and {"city": "北京", "province": "北京", "billers": 8} in cities
    water = client.get("/v1/billers", params={"city": "上海", "category": "water"}).json()
    assert [b["code"] for b in water] == ["WATER_SH"] and water[0]["fetch"] == "mandatory"
    assert [b["code"] for b in client.get("/v1/billers", params={"q": "深圳通"}).json()] == ["BUS_SZ"]
    assert client.get("/v1/billers", params={"category": "lottery"}).status_code == 400
    assert client.get("/v1/billers/NOPE").json()["code"] == "BILLER_NOT_FOUND"

    signed_up(client, db_url, "13800138000")
    me = login_by_sms(client, db_url, "13800138000", "a")
    fund(client, "13800138000", 100_000)
    assert client.put("/v1/me/pin", headers=bearer(me), json={"pin": "739154"}).status_code == 204
    bill = client.post("/v1/bills/fetch", headers=bearer(me), json={"biller": "WATER_SH", "customer_id": "12345678"})
    assert bill.status_code == 200, bill.text
    due = bill.json()["amount_due"]["amount"]
    assert bill.json()["customer_name"].startswith("**")

    def pay(key: str | None, **body: object):  # type: ignore[no-untyped-def]
        headers = {**bearer(me), **({"Idempotency-Key": key} if key else {})}
        return client.post("/v1/bill-payments", headers=headers, json=body)

    r = pay("p1", biller="WATER_SH", customer_id="12345678", amount={"amount": due}, bill_id=bill.json()["id"],
            pin="739154")
    assert r.status_code == 201 and r.json()["state"] == "succeeded" and r.json()["biller_ref"], r.text
    assert pay("p1", biller="WATER_SH", customer_id="12345678", amount={"amount": due}, bill_id=bill.json()["id"],
               pin="739154").status_code == 200
    refusals = [
        (pay("p2", biller="WATER_SH", customer_id="12345678", amount={"amount": due}), 422, "BILL_FETCH_REQUIRED"),
        (pay("p3", biller="WATER_SH", customer_id="12x", amount={"amount": 100}), 400, "INVALID_CUSTOMER_ID"),
        (pay("p4", biller="BUS_SH", customer_id="12345678", amount={"amount": 10}), 422, "AMOUNT_NOT_ALLOWED"),
        (pay("p5", biller="BUS_SH", customer_id="99991234", amount={"amount": 2_000}), 422, "BILL_PAYMENT_FAILED"),
        (pay("p6", biller="BUS_SH", customer_id="12345678", amount={"amount": 1e3}), 400, "INVALID_AMOUNT"),
        (pay(None, biller="BUS_SH", customer_id="12345678", amount={"amount": 1_000}), 400,
         "IDEMPOTENCY_KEY_REQUIRED"),
    ]
    for response, status, code in refusals:
        assert (response.status_code, response.json()["code"]) == (status, code), response.text
    assert balance(client, me) == 100_000 - due
    receipts = client.get("/v1/bill-payments", headers=bearer(me)).json()
    assert [(p["biller"], p["state"]) for p in receipts] == [("BUS_SH", "failed"), ("WATER_SH", "succeeded")]
    one = client.get(f"/v1/bill-payments/{r.json()['id']}", headers=bearer(me)).json()
    assert one["biller_name"] == "上海城投水务" and one["biller_ref"] == r.json()["biller_ref"]


def test_saved_bills_and_complaints_over_http(client: TestClient, db_url: str) -> None:
    signed_up(client, db_url, "13800138000")
    me = login_by_sms(client, db_url, "13800138000", "a")
    fund(client, "13800138000", 20_000)
    r = client.put("/v1/saved-bills", headers=bearer(me), json={
        "biller": "POWER_SH", "customer_id": "1234567890", "nickname": "家里的电费",
        "autopay_limit": {"amount": 30_000}})
    assert r.status_code == 200 and r.json()["autopay_limit"] == {"amount": 30_000, "currency": "CNY"}, r.text
    assert client.put("/v1/saved-bills", headers=bearer(me), json={
        "biller": "POWER_SH", "customer_id": "12"}).json()["code"] == "INVALID_CUSTOMER_ID"
    assert [s["nickname"] for s in client.get("/v1/saved-bills", headers=bearer(me)).json()] == ["家里的电费"]

    paid = client.post("/v1/bill-payments", headers={**bearer(me), "Idempotency-Key": "k"},
                       json={"biller": "BUS_SH", "customer_id": "12345678", "amount": {"amount": 1_000}}).json()
    r = client.post("/v1/complaints", headers=bearer(me), json={"payment_id": paid["id"], "reason": "not_credited"})
    assert r.status_code == 201 and r.json()["assignee"] == "biller" and r.json()["state"] == "open", r.text
    again = client.post("/v1/complaints", headers=bearer(me), json={"payment_id": paid["id"], "reason": "other"})
    assert again.status_code == 409 and again.json()["code"] == "COMPLAINT_EXISTS"
    bad = client.post("/v1/complaints", headers=bearer(me), json={"payment_id": paid["id"], "reason": "angry"})
    assert bad.status_code == 400
    assert client.get(f"/v1/complaints/{r.json()['id']}", headers=bearer(me)).json()["reason"] == "not_credited"
    saved_id = client.get("/v1/saved-bills", headers=bearer(me)).json()[0]["id"]
    assert client.delete(f"/v1/saved-bills/{saved_id}", headers=bearer(me)).status_code == 204
    assert client.delete(f"/v1/saved-bills/{saved_id}", headers=bearer(me)).status_code == 404
