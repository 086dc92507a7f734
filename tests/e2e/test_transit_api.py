"""The transit one-card over HTTP (SQLite and PostgreSQL): a bus reader signs its upload of
offline taps made by a phone's NFC token (the device SIMULATOR), sends it again (duplicates
count once), replays a nonce or signs badly (refused as problem+json, nothing moves),
downloads the deny list; the rider reads the month's trips, the statement and disputes a tap."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mobipay.app.bootstrap import Container, build
from mobipay.app.http import create_app
from mobipay.instore.signature import new_key, sign, signing_string
from mobipay.kernel.clock import ManualClock
from mobipay.platform.config import Settings
from mobipay.simulators.nfc_device import NfcDevice
from tests.e2e.test_instore_qr_api import payer
from tests.e2e.test_protection_api import problem
from tests.e2e.test_wallet_api import balance, bearer
from tests.e2e.test_web_wallet import sign_in

NOW = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)


@pytest.fixture
def live(db_url: str) -> Iterator[tuple[TestClient, Container, ManualClock]]:
    settings = Settings(_env_file=None, database_url=db_url)
    clock = ManualClock(NOW)
    container = build(settings, clock=clock)
    with TestClient(create_app(settings, container)) as c:
        yield c, container, clock


async def _bus(c: Container) -> tuple[str, str, str]:
    await c.ensure_system_accounts()
    op = await c.transit.add_operator("北京", "北京公交", "bus", "6222020000111100002")
    line = await c.transit.add_line(op.id, "1路")
    v, seed = await c.transit.register_validator(op.id, line.id, "flat", "1路 京A12345")
    assert seed is not None
    return op.account_code, v.id, seed


def signed(client: TestClient, clock: ManualClock, vid: str, seed: str, method: str, path: str,
           body: Any = None, nonce: str | None = None, key: str | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else b""
    ts = str(int(clock.now().timestamp()))
    nonce = nonce or secrets.token_hex(8)
    sig = sign(key or seed, signing_string(vid, method, path, ts, nonce, data))
    headers = {"Validator-Id": vid, "Timestamp": ts, "Nonce": nonce, "Signature": sig,
               "Content-Type": "application/json"}
    return client.request(method, path, content=data, headers=headers)


def test_validator_upload_deny_list_and_the_riders_trips(live: tuple[TestClient, Container, ManualClock],
                                                         db_url: str) -> None:
    client, c, clock = live
    operator_account, vid, seed = client.portal.call(_bus, c)  # type: ignore[union-attr]
    rider = payer(client, db_url, "13800138000", 10_000, pin=False, device="phone-1")
    r = client.post("/v1/me/nfc/tokens", headers={**bearer(rider), "Idempotency-Key": "prov-1"}, json={"kind": "hce"})
    assert r.status_code == 201, r.text
    device = NfcDevice.provisioned(r.json())
    at = NOW + timedelta(minutes=1)
    clock.set(at + timedelta(minutes=2))  # uploaded a little later
    t = device.tap(terminal_id=vid, amount=0, unpredictable_number="1A2B3C4D", at=at)
    body = {"taps": [{k: t[k] for k in ("token_id", "key_seq", "atc", "tapped_at", "unpredictable_number", "cvm",
                                        "cryptogram")}]}
    first = signed(client, clock, vid, seed, "POST", "/v1/transit/validator/uploads", body, nonce="nonce-0001")
    assert first.status_code == 200, first.text
    assert (first.json()["accepted"], first.json()["results"][0]["result"]) == (1, "accepted")
    assert balance(client, rider) == 10_000 - 200
    again = signed(client, clock, vid, seed, "POST", "/v1/transit/validator/uploads", body)
    assert again.json()["duplicates"] == 1 and balance(client, rider) == 9_800
    paid = client.portal.call(c.ledger.accounts, [operator_account])  # type: ignore[union-attr]
    assert paid[operator_account].balance == 200  # the operator's fares, once
    problem(signed(client, clock, vid, seed, "POST", "/v1/transit/validator/uploads", body, nonce="nonce-0001"),
            401, "VALIDATOR_NONCE_REPLAYED")
    problem(signed(client, clock, vid, seed, "POST", "/v1/transit/validator/uploads", body, key=new_key()[0]),
            401, "VALIDATOR_BAD_SIGNATURE")
    problem(client.post("/v1/transit/validator/uploads", json=body), 401, "VALIDATOR_NOT_SIGNED")
    assert balance(client, rider) == 9_800

    deny = signed(client, clock, vid, seed, "GET", "/v1/transit/validator/deny-list")
    assert deny.status_code == 200, deny.text
    assert deny.json()["entries"] == [] and "." in deny.json()["version"]
    assert vid not in [v.id for v in client.portal.call(c.transit.stale_validators)]  # type: ignore[union-attr]
    clock.set(clock.now() + timedelta(hours=25))  # a day without a download: it must fetch the list again
    assert vid in [v.id for v in client.portal.call(c.transit.stale_validators)]  # type: ignore[union-attr]
    clock.set(clock.now() - timedelta(hours=25))
    problem(signed(client, clock, vid, seed, "GET", "/v1/transit/validator/deny-list?since=x"), 400,
            "TRANSIT_INVALID")

    trips = client.get("/v1/transit/trips", headers=bearer(rider), params={"month": "2026-12"})
    assert trips.status_code == 200, trips.text
    assert (trips.json()["fares"], [x["fare"] for x in trips.json()["trips"]]) == (200, [200])
    csv_text = client.get("/v1/transit/statement", headers=bearer(rider), params={"month": "2026-12"})
    assert csv_text.status_code == 200 and csv_text.headers["content-type"].startswith("text/csv")
    assert csv_text.text.splitlines()[-1].startswith("total,")
    tap_id = first.json()["results"][0]["tap_id"]
    d = client.post("/v1/transit/disputes", headers=bearer(rider), json={"tap_id": tap_id, "reason": "刷了两次"})
    assert d.status_code == 201 and d.json()["state"] == "open", d.text
    problem(client.post("/v1/transit/disputes", headers=bearer(rider), json={"tap_id": "ttp_x", "reason": "x"}),
            404, "TRANSIT_TAP_NOT_FOUND")

    # the mobile web page shows the same trip; the statement downloads
    sign_in(client, db_url, "13800138000")
    page = client.get("/m/transit", params={"month": "2026-12"})
    assert page.status_code == 200 and page.text.count('data-testid="trip"') == 1 and "¥2.00" in page.text
    assert 'data-testid="owed"' not in page.text
    assert client.get("/m/transit/statement?month=2026-12").text.startswith("start,end,city")
    assert 'data-testid="none"' in client.get("/m/transit", params={"month": "2026-11"}).text
