"""SP services over HTTP (SQLite and PostgreSQL) against the operator-billing SIMULATOR: the
SP's signed API (a good signature, a bad one, a replayed nonce, a stale timestamp, each
refusal a problem that changes nothing), its record and its one appeal; the subscriber's
mobile web: order, list, cancel inside 72 hours, complain."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mobipay.app.bootstrap import Container, build
from mobipay.app.http import create_app
from mobipay.kernel.clock import ManualClock
from mobipay.platform.config import Settings
from mobipay.sp.model import Cycle, signing_string
from tests.e2e.test_wallet_api import bearer, login_by_sms, signed_up
from tests.integration.test_sp import SECRET, SP, billing_url, sp_billing_sim  # noqa: F401 - fixtures

START = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)


@pytest.fixture
def live(db_url: str, billing_url: str) -> Iterator[tuple[TestClient, Container, ManualClock]]:  # noqa: F811
    settings = Settings(_env_file=None, database_url=db_url, sp_billing_url=billing_url,  # type: ignore[call-arg]
                        sp_billing_secret=SECRET, partner_timeout_s=5.0, operators="alice:sp_governance")
    clock = ManualClock(START)
    container = build(settings, clock=clock)
    with TestClient(create_app(settings, container)) as c:
        portal: Any = c.portal
        portal.call(container.ensure_system_accounts)
        portal.call(lambda: container.sp.register_sp(SP, "天气通", licence="B2-20060001", hotline="4008101234",
                                                     share_bp=8500, actor="alice"))
        portal.call(lambda: container.sp.add_service(SP, "TQ", "天气预报", price=500, cycle=Cycle.MONTHLY,
                                                     actor="alice"))
        yield c, container, clock


def signed(key: str, clock: ManualClock, nonce: str, **params: Any) -> dict[str, Any]:
    body = {"sp_code": SP, "timestamp": str(int(clock.now().timestamp())), "nonce": nonce, **params}
    body["sign"] = hmac.new(key.encode(), signing_string(body).encode(), hashlib.sha256).hexdigest()
    return body


def test_sp_api_signatures(live: tuple[TestClient, Container, ManualClock]) -> None:
    client, container, clock = live
    portal: Any = client.portal
    key = portal.call(container.sp.api_key, SP)
    ok = client.post("/v1/sp/subscriptions", json=signed(key, clock, "n-00000001", msisdn="13800138000",
                                                         keyword="TQ"))
    assert ok.status_code == 201, ok.text
    assert (ok.json()["state"], ok.json()["asked"], ok.json()["rule"]) == ("awaiting_confirmation", True, "new_sp")
    bad = signed(key, clock, "n-00000002", msisdn="13900139000", keyword="TQ")
    bad["sign"] = "0" * 64
    tampered = signed(key, clock, "n-00000003", msisdn="13900139000", keyword="TQ")
    tampered["msisdn"] = "13700137000"  # signed for another number
    replay = signed(key, clock, "n-00000001", msisdn="13900139000", keyword="TQ")
    stale = signed(key, clock, "n-00000004", msisdn="13900139000", keyword="TQ")
    stale["timestamp"] = str(int(clock.now().timestamp()) - 301)
    stale["sign"] = hmac.new(key.encode(), signing_string(stale).encode(), hashlib.sha256).hexdigest()
    unsigned = {"sp_code": SP, "msisdn": "13900139000", "keyword": "TQ"}
    for body, field in ((bad, "sign"), (tampered, "sign"), (replay, "nonce"), (stale, "timestamp"),
                        (unsigned, "sign")):
        r = client.post("/v1/sp/subscriptions", json=body)
        assert (r.status_code, r.json()["code"]) == (401, "SP_BAD_SIGNATURE"), r.text
        assert field in r.text  # the problem names what is wrong
        assert r.headers["content-type"].startswith("application/problem+json")
    for n in ("+8613900139000", "+8613700137000"):
        assert portal.call(container.sp.subscriptions, n) == []
    assert client.post("/v1/sp/subscriptions", json=[1]).json()["code"] == "VALIDATION_FAILED"
    portal.call(lambda: container.sp.add_service(SP, "XW", "新闻快讯", price=10, cycle=Cycle.PER_MESSAGE,
                                                 actor="alice"))
    portal.call(lambda: container.sp.subscribe("+8613900139000", SP, "XW"))
    portal.call(container.sp.reply, "+8613900139000")
    free = client.post("/v1/sp/messages", json=signed(key, clock, "n-00000010", msisdn="13900139000",
                                                      keyword="XW", message_id="msg-1"))
    assert free.status_code == 200 and free.json() == {"charged": False, "charge_id": None, "amount": 0,
                                                        "state": None}
    clock.advance(72 * 3600 + 1)
    paid = client.post("/v1/sp/messages", json=signed(key, clock, "n-00000011", msisdn="13900139000",
                                                      keyword="XW", message_id="msg-2")).json()
    assert (paid["charged"], paid["amount"], paid["state"]) == (True, 10, "billed"), paid

    gov = container.sp_governance
    d = portal.call(lambda: gov.record_violation(SP, "pricing", "minor", reason="price unclear", evidence="ad.png",
                                                 actor="alice"))
    record = client.post("/v1/sp/record", json=signed(key, clock, "n-00000005")).json()
    assert record["points"] == 90 and record["decisions"][0]["id"] == d.id
    first = client.post("/v1/sp/appeals", json=signed(key, clock, "n-00000006", decision_id=d.id,
                                                      text="the price was on the page"))
    assert first.status_code == 200 and first.json()["appeal"] == "the price was on the page"
    again = client.post("/v1/sp/appeals", json=signed(key, clock, "n-00000007", decision_id=d.id, text="again"))
    assert (again.status_code, again.json()["code"]) == (409, "SP_DECISION_REFUSED")


def test_subscriber_web_order_list_cancel_complain(live: tuple[TestClient, Container, ManualClock],
                                                   db_url: str) -> None:
    client, container, _ = live
    signed_up(client, db_url, "13800138000")
    me = login_by_sms(client, db_url, "13800138000", "a")
    r = client.post("/v1/me/sp-subscriptions", headers=bearer(me), json={"sp_code": SP, "keyword": "TQ"})
    assert r.status_code == 201 and r.json()["state"] == "awaiting_confirmation", r.text
    portal: Any = client.portal
    portal.call(container.sp.reply, "+8613800138000")
    [mine] = client.get("/v1/me/sp-subscriptions", headers=bearer(me)).json()
    assert (mine["service"], mine["price"], mine["cycle"]) == ("天气预报", 500, "monthly")
    gone = client.delete(f"/v1/me/sp-subscriptions/{mine['id']}", headers=bearer(me)).json()
    assert gone["waived"] is True and gone["charged"] == 0
    again = client.delete(f"/v1/me/sp-subscriptions/{mine['id']}", headers=bearer(me))
    assert (again.status_code, again.json()["code"]) == (404, "SP_SUBSCRIPTION_NOT_FOUND")
    assert client.post("/v1/me/sp-subscriptions", headers=bearer(me),
                       json={"sp_code": SP, "keyword": "NO"}).json()["code"] == "SP_SERVICE_NOT_FOUND"
    c = client.post("/v1/me/sp-complaints", headers=bearer(me), json={"sp_code": SP, "text": "spam"})
    assert c.status_code == 201
    assert client.get("/v1/me/sp-subscriptions").status_code == 401
