"""Payment rules over HTTP on both databases (PostgreSQL through the transfer lane and its
batches): a locked PIN suspends payments without the PIN too and the subscriber is told by
SMS; an Idempotency-Key is checked before anything else. Balances after every step."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from mobipay.app.bootstrap import Container, build
from mobipay.app.http import create_app
from mobipay.kernel.clock import ManualClock
from mobipay.kernel.errors import MobipayError
from mobipay.platform.config import Settings
from mobipay.platform.db import Database
from tests.e2e.test_wallet_api import balance, bearer, fund, login_by_sms, signed_up

ALICE, BOB = "13800138000", "13900139000"
PIN = "739154"


@pytest.fixture
def world(db_url: str) -> Iterator[tuple[TestClient, Container, ManualClock]]:
    settings = Settings(_env_file=None, database_url=db_url)  # type: ignore[call-arg]
    clock = ManualClock(datetime.now(UTC))
    container = build(settings, clock=clock)
    with TestClient(create_app(settings, container)) as client:
        yield client, container, clock


def sms(db_url: str, number: str) -> list[dict[str, object]]:
    async def read() -> list[dict[str, object]]:
        db = Database(db_url)
        async with db.begin() as conn:
            rows = (await conn.execute(text("SELECT payload FROM outbox_messages WHERE topic = 'sms.send' "
                                            "ORDER BY created_at, id"))).scalars().all()
        await db.dispose()
        return [p for p in (json.loads(r) for r in rows) if p["to"] == f"+86{number}"]

    return asyncio.run(read())


def send(client: TestClient, who: dict[str, str], key: str, amount: int, pin: str | None = None) -> object:
    body: dict[str, object] = {"to": BOB, "amount": {"amount": amount}}
    if pin is not None:
        body["pin"] = pin
    return client.post("/v1/transfers", headers={**bearer(who), "Idempotency-Key": key}, json=body)


def test_a_locked_pin_suspends_payments_without_it(world: tuple[TestClient, Container, ManualClock],
                                                   db_url: str) -> None:
    client, container, clock = world
    signed_up(client, db_url, ALICE)
    signed_up(client, db_url, BOB)
    alice = login_by_sms(client, db_url, ALICE, "a")
    bob = login_by_sms(client, db_url, BOB, "b")
    fund(client, ALICE, 100_000)
    assert client.put("/v1/me/pin", headers=bearer(alice), json={"pin": PIN}).status_code == 204
    early = send(client, alice, "t-0", 100)
    assert early.status_code == 201, early.text  # type: ignore[attr-defined]

    codes = [send(client, alice, f"w-{n}", 30_000, pin="111113").json()["code"]  # type: ignore[attr-defined]
             for n in range(5)]
    assert codes == ["PIN_INCORRECT"] * 4 + ["PIN_LOCKED"]
    told = [m for m in sms(db_url, ALICE) if m["template"] == "pin.locked"]
    assert [m["params"] for m in told] == [{"minutes": 15}]  # once, at the lockout
    from mobipay.channels.sms.texts import render

    assert "15分钟" in render("pin.locked", {"minutes": 15})

    before = (balance(client, alice), balance(client, bob))
    small = send(client, alice, "t-1", 100)  # 1.00 CNY, password-free: suspended too
    assert small.status_code == 423 and small.json()["code"] == "PIN_LOCKED", small.text  # type: ignore[attr-defined]
    assert "without the PIN" in small.json()["detail"]  # type: ignore[attr-defined]
    me = client.portal.call(lambda: container.wallet.authenticate(alice["access_token"]))  # type: ignore[union-attr]

    def refused(work: object) -> str:
        with pytest.raises(MobipayError) as info:
            client.portal.call(work)  # type: ignore[union-attr, arg-type]
        return info.value.code

    # an SMS secondary confirmation and a product's password-free payment (autopay, top-up…)
    assert refused(lambda: container.wallet.transfer(me, BOB, 100, idempotency_key="sms-1", consent=True)) == (
        "PIN_LOCKED")
    assert refused(lambda: container.wallet.authorize_payment(me, 100, None, consent=True)) == "PIN_LOCKED"
    assert refused(lambda: container.wallet.authorize_payment(me, 30_000, PIN)) == "PIN_LOCKED"
    assert (balance(client, alice), balance(client, bob)) == before  # nothing moved
    replay = send(client, alice, "t-0", 100)  # the key first: a replay is still answered as one
    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"  # type: ignore[attr-defined]
    money_in = client.post("/v1/transfers", headers={**bearer(bob), "Idempotency-Key": "to-alice"},
                           json={"to": ALICE, "amount": {"amount": 50}})
    assert money_in.status_code == 201  # money still comes in

    clock.advance(15 * 60)  # the lock ends: password-free payments again
    alice, bob = login_by_sms(client, db_url, ALICE, "a2"), login_by_sms(client, db_url, BOB, "b2")
    assert send(client, alice, "t-2", 100).status_code == 201  # type: ignore[attr-defined]
    assert (balance(client, alice), balance(client, bob)) == (before[0] - 100 + 50, before[1] + 100 - 50)
    assert client.portal.call(container.ledger.verify).ok  # type: ignore[union-attr]


def test_the_idempotency_key_comes_first(world: tuple[TestClient, Container, ManualClock], db_url: str) -> None:
    client, container, _ = world
    signed_up(client, db_url, ALICE)
    signed_up(client, db_url, BOB)
    alice = login_by_sms(client, db_url, ALICE, "a")
    fund(client, ALICE, 100_000)
    assert client.put("/v1/me/pin", headers=bearer(alice), json={"pin": PIN}).status_code == 204
    assert send(client, alice, "k-1", 1_000).status_code == 201  # type: ignore[attr-defined]
    assert send(client, alice, "k-2", 30_000, pin=PIN).status_code == 201  # type: ignore[attr-defined]
    before = balance(client, alice)
    for key, amount, pin in (("k-1", 30_000, None),  # larger, over the password-free amount: not PIN_REQUIRED
                             ("k-1", 2_000, None),  # another password-free amount (PostgreSQL: the batch lane)
                             ("k-2", 40_000, None), ("k-2", 40_000, "111113")):  # no wrong-PIN try counted
        r = send(client, alice, key, amount, pin=pin)
        assert r.status_code == 409 and r.json()["code"] == "IDEMPOTENCY_CONFLICT", r.text  # type: ignore[attr-defined]
    again = send(client, alice, "k-2", 30_000)  # the same body without its PIN: the first answer, nothing paid
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"  # type: ignore[attr-defined]
    assert balance(client, alice) == before == 100_000 - 31_000
    status = client.portal.call(lambda: container.wallet.pin_status(ALICE))  # type: ignore[union-attr]
    assert status is not None and status.failures == 0
    assert client.portal.call(container.ledger.verify).ok  # type: ignore[union-attr]


def test_the_pay_answer_shows_the_red_envelope_share(world: tuple[TestClient, Container, ManualClock],
                                                     db_url: str) -> None:
    from tests.e2e.test_merchants_api import application
    from tests.e2e.test_wallet_api import ADMIN

    client, container, _ = world
    merchant_id = client.post("/v1/merchant-applications", json=application()).json()["id"]
    merchant = client.portal.call(lambda: container.merchants.merchant(merchant_id))  # type: ignore[union-attr]
    signed_up(client, db_url, ALICE)
    alice = login_by_sms(client, db_url, ALICE, "a")
    fund(client, ALICE, 10_000)  # (opens the reserve account) then the shop's payable funds the campaign
    assert client.post("/v1/ledger/transfers", headers={**ADMIN, "Idempotency-Key": "shop"}, json={
        "code": "seed", "legs": [
            {"account": "asset:bank:settlement", "side": "debit", "amount": {"amount": 5_000}},
            {"account": merchant.account_code, "side": "credit", "amount": {"amount": 5_000}}]}).status_code == 201
    campaign = client.portal.call(lambda: container.red_envelopes.create_campaign(  # type: ignore[union-attr]
        merchant, name="满50减10", rule="threshold", face=1_000, min_spend=5_000, budget=3_000, actor="shop"))
    coupon = client.post(f"/v1/red-envelopes/{campaign.id}/claim", headers=bearer(alice)).json()
    trade = client.portal.call(lambda: container.merchants.create_trade(merchant, "RE-1", 6_000, "书"))  # type: ignore[union-attr]
    paid = client.post(f"/v1/trades/{trade.id}/pay", headers=bearer(alice), json={"coupon_id": coupon["id"]})
    assert paid.status_code == 200, paid.text
    body = paid.json()
    assert (body["amount"]["amount"], body["red_envelope"]["amount"], body["wallet_paid"]["amount"]) == (
        6_000, 1_000, 5_000)
    assert balance(client, alice) == 10_000 - 5_000
    again = client.get(f"/v1/trades/{trade.id}", headers=bearer(alice)).json()
    assert again["red_envelope"]["amount"] == 1_000
    assert client.portal.call(container.ledger.verify).ok  # type: ignore[union-attr]
