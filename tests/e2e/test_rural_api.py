"""Village agents over HTTP (SQLite and PostgreSQL): staff sign-in with the PIN, the fee shown
before confirming, cash-in and a cash-out confirmed with the customer's code (balances and
the float asserted; no code, no cash), the customer's own cash-out in the app with the PIN,
problem+json refusals that change nothing, the locator, and the agent page at /m/agent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import text

from mobipay.app.bootstrap import Container, build
from mobipay.app.http import create_app
from mobipay.kernel.clock import ManualClock
from mobipay.ledger.chart import BANK_SETTLEMENT
from mobipay.ledger.model import Leg, Transfer
from mobipay.platform.config import Settings
from mobipay.platform.db import Database
from mobipay.rural.model import Location
from mobipay.rural.service import float_account
from tests.e2e.test_protection_api import problem
from tests.e2e.test_wallet_api import balance, bearer, login_by_sms, signed_up

NOW = datetime(2026, 11, 10, 2, 0, tzinfo=UTC)
AGENT, CUSTOMER = "13600136001", "13700137001"


@pytest.fixture
def live(db_url: str) -> Iterator[tuple[TestClient, Container]]:
    settings = Settings(_env_file=None, database_url=db_url)
    container = build(settings, clock=ManualClock(NOW))
    container.rural.hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    with TestClient(create_app(settings, container)) as c:
        yield c, container


async def _agent(c: Container) -> str:
    await c.ensure_system_accounts()
    a = await c.rural.onboard(name="东鹜村便民店", licence="LIC0001", msisdn=AGENT, owner_pin="135790",
                              location=Location("湖南省", "长沙市", "宁乡县", "灰汤镇", "东鹜村"))
    assert (await c.ledger.post(Transfer("float", (Leg.debit(BANK_SETTLEMENT, 100_000),
                                                   Leg.credit(float_account(a.id), 100_000)), "t"))).ok
    return a.id


def last_text(db_url: str, to: str) -> str:
    async def read() -> str:
        db = Database(db_url)
        async with db.begin() as conn:
            rows = (await conn.execute(text("SELECT payload FROM outbox_messages WHERE topic = 'sms.send' "
                                            "ORDER BY created_at, id"))).scalars().all()
        await db.dispose()
        return [p["params"].get("text", "") for p in map(json.loads, rows) if p["to"] == to][-1]

    import asyncio

    return asyncio.run(read())


def test_cash_in_and_out_over_http(live: tuple[TestClient, Container], db_url: str) -> None:
    client, c = live
    agent_id = client.portal.call(_agent, c)  # type: ignore[union-attr]
    signed_up(client, db_url, CUSTOMER)
    me = login_by_sms(client, db_url, CUSTOMER, "a")
    problem(client.post("/v1/rural/agent/sessions", json={"msisdn": AGENT, "pin": "000000"}), 401,
            "AGENT_STAFF_PIN_WRONG")
    r = client.post("/v1/rural/agent/sessions", json={"msisdn": AGENT, "pin": "135790"})
    assert r.status_code == 201, r.text
    staff = {"Authorization": f"Bearer {r.json()['token']}"}
    problem(client.get("/v1/rural/agent"), 401, "AGENT_SESSION_INVALID")
    assert client.get("/v1/rural/agent", headers=staff).json()["float_balance"]["amount"] == 100_000

    r = client.post("/v1/rural/agent/cash-ins", headers={**staff, "Idempotency-Key": "ci"},
                    json={"customer": CUSTOMER, "amount": 30_000})
    c.clock.advance(60)  # type: ignore[attr-defined]
    assert r.status_code == 201 and r.json()["float_after"]["amount"] == 70_000, r.text
    again = client.post("/v1/rural/agent/cash-ins", headers={**staff, "Idempotency-Key": "ci"},
                        json={"customer": CUSTOMER, "amount": 30_000})
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    problem(client.post("/v1/rural/agent/cash-ins", headers=staff, json={"customer": CUSTOMER, "amount": 100}),
            400, "IDEMPOTENCY_KEY_REQUIRED")
    problem(client.post("/v1/rural/agent/cash-ins", headers={**staff, "Idempotency-Key": "big"},
                        json={"customer": CUSTOMER, "amount": 80_000}), 422, "AGENT_FLOAT_INSUFFICIENT")
    assert balance(client, me) == 30_000

    q = client.get("/v1/rural/quote", params={"kind": "cash_out", "amount": 20_000}).json()
    assert (q["fee"]["amount"], q["total"]["amount"]) == (300, 20_300)  # shown before confirming
    ask = client.post("/v1/rural/agent/cash-outs", headers={**staff, "Idempotency-Key": "co"},
                      json={"customer": CUSTOMER, "amount": 20_000})
    assert ask.status_code == 201 and ask.json()["state"] == "pending", ask.text
    assert balance(client, me) == 30_000  # not without the customer's code
    code = last_text(db_url, "+86" + CUSTOMER).split("验证码")[1][:6]
    problem(client.post(f"/v1/rural/agent/cash-outs/{ask.json()['id']}/confirm", headers=staff,
                        json={"code": "12345"}), 400, "VALIDATION_FAILED")
    done = client.post(f"/v1/rural/agent/cash-outs/{ask.json()['id']}/confirm", headers=staff, json={"code": code})
    assert done.status_code == 200 and done.json()["float_after"]["amount"] == 90_000, done.text
    assert balance(client, me) == 30_000 - 20_300
    c.clock.advance(60)  # type: ignore[attr-defined]  # the statement is newest first
    problem(client.post("/v1/rural/cash-outs", headers={**bearer(me), "Idempotency-Key": "app"},
                        json={"agent": AGENT, "amount": 5_000, "pin": "258013"}), 409, "PIN_NOT_SET")
    client.portal.call(c.wallet.set_pin, "+86" + CUSTOMER, "258013")  # type: ignore[union-attr]
    r = client.post("/v1/rural/cash-outs", headers={**bearer(me), "Idempotency-Key": "app"},
                    json={"agent": AGENT, "amount": 5_000, "pin": "258013"})
    assert r.status_code == 201 and r.json()["fee"]["amount"] == 100, r.text
    assert balance(client, me) == 30_000 - 20_300 - 5_100
    lines = client.get("/v1/rural/agent/statement", headers=staff).json()
    assert [t["kind"] for t in lines] == ["cash_out", "cash_out", "cash_in"]
    month = client.get("/v1/rural/agent/commissions", headers=staff, params={"month": "2026-11"}).json()
    assert month["accrued"]["amount"] == 100 + 180 + 60

    [found] = client.get("/v1/rural/agents", params={"village": "东鹜村"}).json()
    assert found["id"] == agent_id and found["township"] == "灰汤镇"
    problem(client.get("/v1/rural/agents"), 400, "RURAL_INVALID")
    page = client.get("/m/agent")
    assert page.status_code == 200 and "/static/rural-agent.js" in page.text
    assert client.get("/static/rural-agent.js").status_code == 200


def test_console_shows_activity_by_county_and_risk_decides(live: tuple[TestClient, Container]) -> None:
    from tests.e2e.test_console import PASSWORD, csrf, sign_in

    client, c = live

    async def setup(c: Container) -> str:
        await _agent(c)
        _, me = await c.rural.sign_in(AGENT, "135790")
        await c.wallet.create_user(AGENT, actor="t", reason="t")
        await c.rural.cash_in(me, AGENT, 1_000, idempotency_key="self")  # the agent to itself: flagged
        for name, roles in (("rita", ("risk",)), ("olga", ("operations",))):
            await c.operators.create(name, PASSWORD, roles, actor="test", reason="test operator")
        [flag] = await c.rural.flagged()
        return flag.id

    flag_id = client.portal.call(setup, c)  # type: ignore[union-attr]
    sign_in(client, "olga")
    r = client.get("/console/rural")
    assert r.status_code == 200 and "宁乡县" in r.text and "self_deposit" in r.text, r.text
    assert "确认欺诈" not in r.text  # operations sees, only risk decides
    sign_in(client, "rita")
    r = client.get("/console/rural")
    r = client.post(f"/console/rural/flags/{flag_id}", data={"csrf": csrf(r.text), "decision": "fraud",
                                                             "note": "own number"})
    assert r.status_code == 200 and "self_deposit: confirmed" in r.text, r.text
    assert client.portal.call(c.rural.flagged) == []  # type: ignore[union-attr]
