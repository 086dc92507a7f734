"""Top-up over HTTP on both databases against the telco SIMULATORS: quote, pay, replay,
refusals with their codes and unchanged balances."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from fastapi.testclient import TestClient

from mobipay.app.bootstrap import build
from mobipay.app.http import create_app
from mobipay.kernel.clock import ManualClock
from mobipay.platform.config import Settings
from tests.conftest import TELCO_SECRET
from tests.e2e.test_wallet_api import balance, bearer, fund, login_by_sms, signed_up
from tests.support import partners


@pytest.fixture
def client(db_url: str, telcos: dict[str, str]) -> Iterator[TestClient]:
    settings = Settings(_env_file=None, database_url=db_url, operator_billing_url=telcos["operator_billing"],  # type: ignore[call-arg]
                        aggregator_url=telcos["topup_aggregator"], operator_billing_secret=TELCO_SECRET,
                        aggregator_secret=TELCO_SECRET, partner_timeout_s=1.0)
    clock = ManualClock(datetime(2026, 12, 1, 4, 0, tzinfo=UTC))
    with TestClient(create_app(settings, build(settings, clock=clock))) as c:
        yield c


def test_topup_over_http(client: TestClient, db_url: str, telcos: dict[str, str]) -> None:
    signed_up(client, db_url, "13800138000")
    me = login_by_sms(client, db_url, "13800138000", "a")
    fund(client, "13800138000", 50_000)
    quote = client.get("/v1/topup/quote?msisdn=18600186000&amount=10000", headers=bearer(me)).json()
    assert quote == {"msisdn": "186****6000", "operator": "china_unicom", "route": "topup_aggregator",
                     "face": {"amount": 10_000, "currency": "CNY"}, "price": {"amount": 9_900, "currency": "CNY"},
                     "discount": {"amount": 100, "currency": "CNY"}, "rule": "China Unicom 100+ CNY: 1% off"}

    def topup(key: str | None, **body: object) -> httpx.Response:
        headers = {**bearer(me), **({"Idempotency-Key": key} if key else {})}
        return client.post("/v1/topups", headers=headers, json=body)

    r = topup("k1", msisdn="18600186000", amount={"amount": 10_000})
    assert r.status_code == 201 and r.json()["state"] == "succeeded" and r.json()["price"]["amount"] == 9_900
    again = topup("k1", msisdn="18600186000", amount={"amount": 10_000})
    assert again.status_code == 200 and again.json()["id"] == r.json()["id"]
    assert httpx.get(f"{telcos['topup_aggregator']}/sim/numbers/+8618600186000").json()["balance"] == 10_000
    assert balance(client, me) == 50_000 - 9_900

    httpx.post(f"{telcos['operator_billing']}/sim/numbers", json={"msisdn": "+8613900139000", "state": "cancelled"})
    failed = topup("k2", msisdn="13900139000", amount={"amount": 2_000})
    assert failed.status_code == 422 and failed.json()["code"] == "TOPUP_FAILED" and failed.json()["order_id"]
    httpx.put(f"{telcos['operator_billing']}/sim/behaviour", json={"processing_rate": 1.0, "settle_after_s": None})
    pending = topup("k3", msisdn="13800138000", amount={"amount": 3_000})
    assert pending.status_code == 202 and pending.json()["state"] == "pending"
    refusals = [
        (topup("k4", msisdn="13800138000", amount={"amount": 1_050}), 422, "INVALID_FACE_VALUE"),
        (topup("k5", msisdn="13800138000", amount={"amount": 100_000}), 422, "INVALID_FACE_VALUE"),
        (topup("k6", msisdn="13800138000", amount={"amount": 10.5}), 400, "INVALID_AMOUNT"),
        (topup("k7", msisdn="12345", amount={"amount": 1_000}), 400, "INVALID_MSISDN"),
        (topup(None, msisdn="13800138000", amount={"amount": 1_000}), 400, "IDEMPOTENCY_KEY_REQUIRED"),
        (topup("k1", msisdn="13800138000", amount={"amount": 1_000}), 409, "IDEMPOTENCY_CONFLICT"),
        (topup("k8", msisdn="13800138000", amount={"amount": 30_000}), 422, "PIN_REQUIRED"),
        (topup("k9", msisdn="13800138000", amount={"amount": 50_000}, pin="135790"), 409, "PIN_NOT_SET"),
    ]
    for response, status, code in refusals:
        assert (response.status_code, response.json()["code"]) == (status, code), response.text
    assert balance(client, me) == 50_000 - 9_900  # the pending 30 CNY is held, not taken
    assert partners.release(f"{telcos['operator_billing']}/sim") == 1  # the operator finishes it now
    settled = client.get(f"/v1/topups/{pending.json()['id']}", headers=bearer(me)).json()
    assert settled["state"] == "succeeded"
    assert [t["state"] for t in client.get("/v1/topups", headers=bearer(me)).json()] == [
        "succeeded", "failed", "succeeded"]
    assert balance(client, me) == 50_000 - 9_900 - 3_000


def test_partner_api(client: TestClient, telcos: dict[str, str]) -> None:
    """An internet partner sells top-up with its own key and commission, from its deposit."""
    import hashlib
    import hmac
    import json
    import secrets
    import time

    container = client.app.state.container  # type: ignore[attr-defined]
    partner, key = client.portal.call(lambda: container.topup_partners.create(  # type: ignore[union-attr]
        "Example Shop", 150, actor="ops", reason="test"))
    client.portal.call(lambda: container.topup_partners.fund(partner.id, 15_000, reference="B1",  # type: ignore[union-attr]
                                                             actor="ops"))

    def signed(method: str, path: str, body: dict[str, object] | None = None, *, nonce: str | None = None,
               secret: str = key, ts: int | None = None) -> httpx.Response:
        raw = json.dumps(body).encode() if body is not None else b""
        ts_s, n = str(ts or int(time.time())), nonce or secrets.token_hex(8)
        sig = hmac.new(secret.encode(), f"{ts_s}\n{n}\n{method}\n{path}\n".encode() + raw, hashlib.sha256).hexdigest()
        headers = {"X-Partner-Id": partner.id, "X-Timestamp": ts_s, "X-Nonce": n, "X-Signature": sig,
                   "content-type": "application/json"}
        return client.request(method, path, content=raw, headers=headers)

    body = {"partner_order_id": "shop-1", "msisdn": "13800138000", "amount": {"amount": 10_000}}
    r = signed("POST", "/v1/partner/topups", body, nonce="nonce-0001")
    assert r.status_code == 201, r.text
    assert (r.json()["charged"]["amount"], r.json()["commission"]["amount"]) == (9_850, 150)
    assert signed("POST", "/v1/partner/topups", body).status_code == 200  # same order number: same top-up
    replay = signed("POST", "/v1/partner/topups", body, nonce="nonce-0001")
    assert replay.status_code == 401 and "replayed" in replay.json()["detail"]
    assert signed("POST", "/v1/partner/topups", body, secret="wrong").status_code == 401
    latin = client.post("/v1/partner/topups", content=json.dumps(body).encode(), headers={
        "X-Partner-Id": partner.id, "X-Timestamp": str(int(time.time())), "X-Nonce": "nonce-latin1",
        "X-Signature": ("\u00e9" * 64).encode("latin-1"), "content-type": "application/json"})
    assert latin.status_code == 401  # a signature that is not ASCII does not verify (was a 500)
    assert signed("POST", "/v1/partner/topups", body, ts=int(time.time()) - 900).status_code == 401
    assert client.post("/v1/partner/topups", json=body).status_code == 401  # unsigned
    poor = signed("POST", "/v1/partner/topups", {**body, "partner_order_id": "shop-2", "amount": {"amount": 10_000}})
    assert poor.status_code == 422 and poor.json()["code"] == "INSUFFICIENT_FUNDS"  # 51.50 CNY left
    assert signed("GET", "/v1/partner/topups/shop-1").json()["state"] == "succeeded"
    assert signed("GET", "/v1/partner/topups/nope").status_code == 404
    deposit = client.portal.call(lambda: container.ledger.account(partner.account_code))  # type: ignore[union-attr]
    assert deposit.balance == 15_000 - 9_850
    client.portal.call(lambda: container.topup_partners.set_status(  # type: ignore[union-attr]
        partner.id, "suspended", actor="ops", reason="test"))
    assert signed("POST", "/v1/partner/topups", {**body, "partner_order_id": "shop-3"}).json()["code"] == (
        "PARTNER_SUSPENDED")
