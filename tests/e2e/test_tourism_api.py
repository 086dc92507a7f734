"""旅游通 over HTTP on both databases, the location platform as its SIMULATOR (in process
through the real adapter): an officer signs in on their own terminal (another phone refused),
searches the directory, enters the seed's complaint (the Idempotency-Key replayed, refusals as
problem+json), uploads a photo (a wrong hash refused), accepts, replays the route (上堡侗寨
not visited), mediates and refunds into the tourist's wallet (balances asserted); the officer
of another county gets 404; the console's pages show the order, the map's data, the printable
summary, and find a tampered evidence file; its views are in the chain of custody."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from mobipay.app.bootstrap import Container, build
from mobipay.app.http import create_app
from mobipay.kernel.clock import SHANGHAI, ManualClock
from mobipay.platform.config import Settings
from mobipay.simulators.location_platform import create_location_app
from mobipay.tourism.location_http import HttpLocationPlatform
from mobipay.tourism.service import agency_account
from tests.e2e.test_console import csrf, operator, run, sign_in
from tests.e2e.test_protection_api import problem
from tests.support.images import png

QINGSHAN = "tag_" + hashlib.sha256(b"L-HUN-CJ00527").hexdigest()[:20]


@pytest.fixture
def live(db_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, Container, ManualClock]]:
    settings = Settings(_env_file=None, database_url=db_url,
                        merchant_key_file=tmp_path / "platform.pem", report_dir=tmp_path / "reports",
                        tourism_evidence_dir=tmp_path / "evidence")
    clock = ManualClock(datetime(2026, 10, 3, 14, 0, tzinfo=SHANGHAI))
    container = build(settings, clock=clock)
    container.tourism.location = HttpLocationPlatform(
        "http://location", b"demo-location-secret", transport=httpx.ASGITransport(app=create_location_app()))
    with TestClient(create_app(settings, container)) as c:
        yield c, container, clock


async def _setup(c: Container) -> None:
    from mobipay.app.demo_tourism import load_demo_tourism

    await c.ensure_system_accounts()
    made = await load_demo_tourism(c)  # the demo's bureau, officers and the seed's contract
    assert made.officers == 10 and made.contract


def officer(client: TestClient, badge: str, device: str) -> dict[str, str]:
    r = client.post("/v1/tourism/sessions", json={"badge": badge, "password": "tourism-demo-1", "device_id": device})
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def test_the_seeds_story_over_http_and_the_console(live: tuple[TestClient, Container, ManualClock]) -> None:
    client, c, _ = live
    run(client, _setup)
    problem(client.post("/v1/tourism/sessions", json={"badge": "SN0001", "password": "tourism-demo-1",
                                                      "device_id": "SN-TERM-02"}), 403, "OFFICER_DEVICE_NOT_BOUND")
    me = officer(client, "SN0001", "SN-TERM-01")
    other = officer(client, "CB0001", "CB-TERM-01")
    problem(client.get("/v1/tourism/directory"), 401, "OFFICER_SESSION_INVALID")

    guides = client.get("/v1/tourism/directory", params={"q": "D-4305-001234"}, headers=me).json()
    assert [(g["name"], g["detail"]["agency"]) for g in guides] == [("李芳", "绥宁县青山国际旅行社有限公司")]
    kinds = {e["kind"] for e in client.get("/v1/tourism/directory", headers=me).json()}
    assert {"agency", "guide", "driver", "hotel", "spot", "bureau", "contact", "brigade"} <= kinds
    assert client.get("/v1/tourism/directory", headers=other).json() == []  # 城步's directory: not 绥宁's
    assert any("32号" in p["title"] for p in client.get("/v1/tourism/news", params={"kind": "policy"},
                                                         headers=me).json())
    [contract] = client.get("/v1/tourism/contracts", params={"tourist_phone": "13800138000"}, headers=me).json()
    assert contract["itinerary"] == ["spot_huangsang", "spot_shangbao"]
    base = client.get("/v1/tourism/map/430527.geojson")
    assert base.status_code == 200
    assert any(f["properties"].get("id") == "spot_shangbao" for f in base.json()["features"])

    body: dict[str, Any] = {"complainant_name": "张伟", "complainant_phone": "13800138000",
                            "cause": "itinerary_skipped", "facts": "未去上堡侗寨，改去购物店。",
                            "demands": "退款 300 元",
                            "location_consent": True, "contract_id": contract["id"]}
    problem(client.post("/v1/tourism/work-orders", json=body, headers=me), 400, "IDEMPOTENCY_KEY_REQUIRED")
    problem(client.post("/v1/tourism/work-orders", json={**body, "cause": "rain"},
                        headers={**me, "Idempotency-Key": "bad"}), 400, "COMPLAINT_INVALID")
    r = client.post("/v1/tourism/work-orders", json=body, headers={**me, "Idempotency-Key": "q-1"})
    assert r.status_code == 201, r.text
    order = r.json()
    assert client.post("/v1/tourism/work-orders", json=body,
                       headers={**me, "Idempotency-Key": "q-1"}).status_code == 200  # the queue resent it
    assert order["accept_by"].startswith("2026-10-13T15:59:59")  # end of 13 Oct, Beijing time
    problem(client.get(f"/v1/tourism/work-orders/{order['id']}", headers=other), 404, "TOURISM_OTHER_COUNTY")

    photo = png(3)
    sha = hashlib.sha256(photo).hexdigest()
    up: dict[str, str] = {**me, "Content-Type": "image/png", "X-Device-Id": "SN-TERM-01",
                          "X-Captured-At": (c.clock.now() - timedelta(minutes=1)).isoformat(), "X-Capture-Id": "p-1",
                          "X-Lat": "26.42", "X-Lon": "110.02"}
    problem(client.post(f"/v1/tourism/evidence/{order['id']}", content=photo,
                        headers={**up, "X-Evidence-SHA256": "a" * 64}), 422, "EVIDENCE_HASH_MISMATCH")
    r = client.post(f"/v1/tourism/evidence/{order['id']}", content=photo,
                    headers={**up, "X-Evidence-SHA256": sha})
    assert r.status_code == 201, r.text
    evidence = r.json()
    assert client.post(f"/v1/tourism/evidence/{order['id']}", content=photo,
                       headers={**up, "X-Evidence-SHA256": sha}).status_code == 200

    oid = order["id"]
    assert client.post(f"/v1/tourism/work-orders/{oid}/accept", headers=me).json()["state"] == "accepted"
    replay = client.post(f"/v1/tourism/work-orders/{oid}/route-replay", json={"subject": "guide"}, headers=me).json()
    assert [(v["spot"], v["visited"]) for v in replay["verdicts"]] == [("黄桑国家级自然保护区", True),
                                                                       ("上堡侗寨", False)]
    agency = client.get(f"/v1/tourism/agencies/{order['agency_id']}", headers=me).json()
    assert agency["detail"]["manager"] == "陈志强"
    client.post(f"/v1/tourism/work-orders/{oid}/mediate", json={"outcome": "upheld", "record": "退 300 元"},
                headers=me).raise_for_status()
    problem(client.post(f"/v1/tourism/work-orders/{oid}/refunds", json={"amount": 30_000}, headers=me), 400,
            "IDEMPOTENCY_KEY_REQUIRED")
    r = client.post(f"/v1/tourism/work-orders/{oid}/refunds", json={"amount": 30_000},
                    headers={**me, "Idempotency-Key": "rf-1"})
    assert r.status_code == 201, r.text

    async def balances(c: Container) -> tuple[int, int]:
        user = await c.wallet.user_by_msisdn("+8613800138000")
        return ((await c.ledger.account(agency_account(QINGSHAN))).balance,
                (await c.ledger.account(user.account_code)).balance)

    assert run(client, balances) == (470_000, 30_000)

    # the back office
    operator(client, "ops1", "operations")
    operator(client, "fin1", "finance")
    sign_in(client, "fin1")
    assert client.get("/console/tourism").status_code == 403
    sign_in(client, "ops1")
    page = client.get("/console/tourism")
    assert page.status_code == 200 and "张伟" in page.text
    detail = client.get(f"/console/tourism/orders/{oid}")
    assert detail.status_code == 200 and "上堡侗寨" in detail.text and "陈志强" in detail.text
    assert 'id="route-map"' in detail.text
    data = client.get(f"/console/tourism/orders/{oid}/map.json").json()
    assert data["base"]["type"] == "FeatureCollection" and data["replay"]["verdicts"][1]["visited"] is False
    assert "打印" in detail.text and client.get(f"/console/tourism/orders/{oid}/print").status_code == 200
    shown = client.get(f"/console/tourism/evidence/{evidence['id']}")
    assert shown.status_code == 200 and shown.content == photo
    token = csrf(detail.text)
    ok = client.post(f"/console/tourism/evidence/{evidence['id']}/verify", data={"csrf": token, "order_id": oid})
    assert 'data-testid="intact"' in ok.text
    kept = c.settings.tourism_evidence_dir / f"{sha}.png"
    kept.write_bytes(photo + b"tampered")
    bad = client.post(f"/console/tourism/evidence/{evidence['id']}/verify", data={"csrf": token, "order_id": oid})
    assert 'data-testid="tampered"' in bad.text
    trail = client.get(f"/console/tourism/evidence/{evidence['id']}/custody").text
    for action in ("captured", "uploaded", "viewed", "verified"):
        assert action in trail
    assert "console:ops1" in trail

    # the back office works a second complaint through its steps, to the refund
    second = client.post("/v1/tourism/work-orders", json={**body, "facts": "导游强迫购物"},
                         headers={**me, "Idempotency-Key": "q-2"}).json()["id"]
    page = client.get(f"/console/tourism/orders/{second}").text
    assert 'data-testid="step-accept"' in page and 'data-testid="step-refund"' not in page
    token = csrf(page)
    too_early = client.post(f"/console/tourism/orders/{second}/mediate", data={"csrf": token, "outcome": "upheld",
                                                                               "text": "x"})
    assert too_early.status_code == 409 and "WORK_ORDER_STATE_CONFLICT" in too_early.text
    assert client.post(f"/console/tourism/orders/{second}/accept", data={"csrf": token}).status_code == 200
    page = client.post(f"/console/tourism/orders/{second}/mediate",
                       data={"csrf": token, "outcome": "upheld", "text": "退 50 元"}).text
    assert 'data-testid="step-refund"' in page
    found = re.search(r'name="key" value="([^"]+)"', page)
    assert found
    key = found.group(1)
    for _ in range(2):  # the same form sent twice pays once
        done = client.post(f"/console/tourism/orders/{second}/refund",
                           data={"csrf": token, "key": key, "amount": "50.00", "method": "wallet"})
        assert done.status_code == 200, done.text
    assert run(client, balances) == (465_000, 35_000)
    assert client.post(f"/console/tourism/orders/{second}/refund", data={
        "csrf": "forged", "key": "k2", "amount": "1"}).status_code == 400
    assert run(client, balances) == (465_000, 35_000)

    app = client.get("/tourism/app")
    assert app.status_code == 200 and "manifest.webmanifest" in app.text
    assert client.get("/tourism/app/manifest.webmanifest").json()["start_url"] == "/tourism/app"
    assert "workbox" in client.get("/tourism/app/sw.js").text
