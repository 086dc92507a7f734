"""Money requests over HTTP on both databases (issue 29): paying needs no Idempotency-Key
(the request id is the key) and a retry with any key or none returns the one payment; a
malformed key is refused and moves nothing; the worker's expiry job stores ``expired`` once
and SMSes both sides once, even with two workers at the same moment. The platform runs on a
ManualClock: no wall-clock sleeping."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from mobipay.app.bootstrap import Container, build
from mobipay.app.http import create_app
from mobipay.kernel.clock import ManualClock
from mobipay.platform.config import Settings
from mobipay.platform.db import Database
from tests.e2e.test_wallet_api import balance, bearer, fund, login_by_sms, signed_up

ALICE, BOB = "13800138000", "13900139000"

World = tuple[TestClient, Container, ManualClock]


@pytest.fixture
def world(db_url: str) -> Iterator[World]:
    settings = Settings(_env_file=None, database_url=db_url, money_request_days=2)  # type: ignore[call-arg]
    clock = ManualClock(datetime.now(UTC))
    container = build(settings, clock=clock)
    with TestClient(create_app(settings, container)) as client:
        yield client, container, clock


def sms(db_url: str, template: str) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        db = Database(db_url)
        async with db.begin() as conn:
            rows = (await conn.execute(text("SELECT payload FROM outbox_messages WHERE topic = 'sms.send' "
                                            "ORDER BY created_at, id"))).scalars().all()
        await db.dispose()
        return [p for p in (json.loads(r) for r in rows) if p["template"] == template]

    return asyncio.run(read())


def ask(client: TestClient, who: dict[str, str], key: str, amount: int) -> str:
    r = client.post("/v1/money-requests", headers={**bearer(who), "Idempotency-Key": key},
                    json={"from": BOB, "amount": {"amount": amount}})
    assert r.status_code == 201, r.text
    request_id: str = r.json()["id"]
    return request_id


def test_paying_a_request_needs_no_key_and_replays(world: World, db_url: str) -> None:
    client, _, _ = world
    signed_up(client, db_url, ALICE)
    signed_up(client, db_url, BOB)
    alice, bob = login_by_sms(client, db_url, ALICE, "a"), login_by_sms(client, db_url, BOB, "b")
    fund(client, BOB, 10_000)
    rid = ask(client, alice, "r1", 3_000)
    pay = f"/v1/money-requests/{rid}/pay"

    for bad in ("x" * 65, ""):  # sent but not a key: refused before anything moves
        refused = client.post(pay, headers={**bearer(bob), "Idempotency-Key": bad}, json={})
        assert refused.status_code == 400 and refused.json()["code"] == "IDEMPOTENCY_KEY_INVALID", refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
    assert (balance(client, alice), balance(client, bob)) == (0, 10_000)
    assert client.get("/v1/money-requests", headers=bearer(bob)).json()["incoming"][0]["state"] == "open"

    first = client.post(pay, headers=bearer(bob), json={})  # no key at all: the request id is the key
    assert first.status_code == 201, first.text
    with_key = client.post(pay, headers={**bearer(bob), "Idempotency-Key": "retry-1"}, json={})
    again = client.post(pay, headers=bearer(bob), json={})
    for replay in (with_key, again):
        assert replay.status_code == 200 and replay.json()["id"] == first.json()["id"]
        assert replay.headers.get("Idempotent-Replayed") == "true"
    assert (balance(client, alice), balance(client, bob)) == (3_000, 7_000)  # paid once

    spec = client.get("/openapi.json").json()["paths"]["/v1/money-requests/{request_id}/pay"]["post"]
    header = next(p for p in spec["parameters"] if p["name"] == "Idempotency-Key")
    assert header["required"] is False and "Optional" in header["description"]


def test_the_worker_expires_requests_once_and_tells_both_sides(world: World, db_url: str) -> None:
    client, container, clock = world
    signed_up(client, db_url, ALICE)
    signed_up(client, db_url, BOB)
    alice = login_by_sms(client, db_url, ALICE, "a")
    fund(client, BOB, 10_000)
    rids = [ask(client, alice, f"r{n}", 1_000 + n) for n in range(3)]
    listed = client.get("/v1/money-requests", headers=bearer(alice)).json()["outgoing"]
    waits = {datetime.fromisoformat(r["expires_at"]) - datetime.fromisoformat(r["created_at"]) for r in listed}
    assert {w.days for w in waits} == {2}  # MOBIPAY_MONEY_REQUEST_DAYS=2

    clock.advance(2 * 86_400 + 1)

    async def two_workers() -> list[int]:  # two worker processes' rounds at the same moment
        return list(await asyncio.gather(container.wallet.expire_due_requests(),
                                         container.wallet.expire_due_requests()))

    assert sum(client.portal.call(two_workers)) == 3
    assert client.portal.call(container.wallet.expire_due_requests) == 0
    to_alice, to_bob = sms(db_url, "request.expired"), sms(db_url, "request.expired_payer")
    assert len(to_alice) == len(to_bob) == 3  # each side told once per request
    assert {m["to"] for m in to_alice} == {f"+86{ALICE}"} and {m["to"] for m in to_bob} == {f"+86{BOB}"}

    alice, bob = login_by_sms(client, db_url, ALICE, "a2"), login_by_sms(client, db_url, BOB, "b2")
    states = {r["id"]: r["state"] for r in client.get("/v1/money-requests", headers=bearer(alice)).json()["outgoing"]}
    assert states == dict.fromkeys(rids, "expired")
    late = client.post(f"/v1/money-requests/{rids[0]}/pay", headers=bearer(bob), json={})
    assert late.status_code == 409 and late.json()["code"] == "REQUEST_NOT_OPEN"
    assert (balance(client, alice), balance(client, bob)) == (0, 10_000)
