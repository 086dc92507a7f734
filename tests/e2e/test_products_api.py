"""Products, insurance and lottery over HTTP against their SIMULATORS (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from mobipay.app.bootstrap import build
from mobipay.app.http import create_app
from mobipay.kernel.clock import SHANGHAI, ManualClock
from mobipay.platform.config import Settings
from mobipay.wallet.model import id_card_check_char
from tests.conftest import LOTTERY_SECRET, PROVIDER_SECRET
from tests.e2e.test_wallet_api import balance, bearer, fund, login_by_sms, signed_up

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
