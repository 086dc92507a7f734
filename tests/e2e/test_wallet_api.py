"""The wallet's sign-up over HTTP on both databases: code by SMS (through the outbox),
registration, and the refusals a client meets, each with its code and no side effect."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from mobipay.app.http import create_app
from mobipay.platform.config import Settings
from mobipay.platform.db import Database


@pytest.fixture
def client(db_url: str) -> Iterator[TestClient]:
    settings = Settings(_env_file=None, database_url=db_url)  # type: ignore[call-arg]
    with TestClient(create_app(settings)) as c:
        yield c


def last_code(db_url: str) -> str:
    """The code in the last SMS the outbox holds (where a handset would read it)."""

    async def read() -> str:
        db = Database(db_url)
        async with db.begin() as conn:
            row = (await conn.execute(text("SELECT payload FROM outbox_messages WHERE topic = 'sms.send' "
                                           "AND payload LIKE '%\"template\": \"otp.%' "
                                           "ORDER BY created_at DESC, id DESC LIMIT 1"))).scalar_one()
        await db.dispose()
        return str(json.loads(row)["params"]["code"])

    return asyncio.run(read())


def test_sign_up(client: TestClient, db_url: str) -> None:
    r = client.post("/v1/otp", json={"msisdn": "+86 138 0013 8000"})
    assert r.status_code == 202, r.text
    assert r.json()["msisdn"] == "138****8000" and "code" not in r.text
    again = client.post("/v1/otp", json={"msisdn": "13800138000"})
    assert again.status_code == 429 and again.json()["code"] == "OTP_RESEND_TOO_SOON"
    assert int(again.headers["Retry-After"]) > 0
    code = last_code(db_url)
    wrong = client.post("/v1/users", json={"msisdn": "13800138000", "code": "000000" if code != "000000" else "1"})
    assert wrong.status_code == 422 and wrong.json()["code"] == "OTP_INVALID"
    r = client.post("/v1/users", json={"msisdn": "13800138000", "code": code})
    assert r.status_code == 201, r.text
    assert r.json()["msisdn"] == "+8613800138000" and r.json()["operator"] == "china_mobile"
    auth = {"Authorization": "Bearer demo-admin-token"}
    account = client.get("/v1/ledger/accounts/wallet:%2B8613800138000", headers=auth).json()
    assert account["balance"] == {"amount": 0, "currency": "CNY"}


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"msisdn": "12345"}, 400, "INVALID_MSISDN"),
    ({"msisdn": "14000140000"}, 422, "UNKNOWN_NUMBER_SEGMENT"),
    ({"msisdn": "13800138000", "purpose": "nonsense"}, 400, "VALIDATION_FAILED"),
    ({"msisdn": 13800138000}, 400, "VALIDATION_FAILED"),
    ({"msisdn": "13800138000", "extra": 1}, 400, "VALIDATION_FAILED"),
])
def test_bad_otp_requests(client: TestClient, body: dict[str, object], status: int, code: str) -> None:
    r = client.post("/v1/otp", json=body)
    assert r.status_code == status and r.json()["code"] == code
    assert r.headers["content-type"] == "application/problem+json"


def signed_up(client: TestClient, db_url: str, number: str = "13900139000") -> None:
    assert client.post("/v1/otp", json={"msisdn": number}).status_code == 202
    assert client.post("/v1/users", json={"msisdn": number, "code": last_code(db_url)}).status_code == 201


def login_by_sms(client: TestClient, db_url: str, number: str, device: str) -> dict[str, str]:
    assert client.post("/v1/otp", json={"msisdn": number, "purpose": "login"}).status_code == 202
    r = client.post("/v1/sessions", json={"msisdn": number, "code": last_code(db_url), "device_id": device,
                                          "device_name": f"phone {device}"})
    assert r.status_code == 201, r.text
    body: dict[str, str] = r.json()
    return body


def bearer(tokens: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def test_sessions_pin_and_devices(client: TestClient, db_url: str) -> None:
    signed_up(client, db_url)
    phone = login_by_sms(client, db_url, "13900139000", "d1")
    me = client.get("/v1/me", headers=bearer(phone))
    assert me.status_code == 200 and me.json()["balance"] == {"amount": 0, "currency": "CNY"}
    assert me.json()["state"] == "active"
    wallet = client.app.state.container.wallet  # type: ignore[attr-defined]
    assert client.portal is not None
    client.portal.call(lambda: wallet.set_frozen("13900139000", True, actor="risk", reason="test"))
    assert client.get("/v1/me", headers=bearer(phone)).json()["state"] == "frozen"  # the app can say why
    client.portal.call(lambda: wallet.set_frozen("13900139000", False, actor="risk", reason="test"))
    assert client.get("/v1/me", headers=bearer(phone)).json()["state"] == "active"
    assert client.get("/v1/me").json()["code"] == "SESSION_INVALID"
    assert client.get("/v1/me", headers={"Authorization": "Bearer forged"}).status_code == 401

    r = client.put("/v1/me/pin", headers=bearer(phone), json={"pin": "123456"})
    assert r.status_code == 422 and r.json()["code"] == "WEAK_PIN"
    assert client.put("/v1/me/pin", headers=bearer(phone), json={"pin": "739154"}).status_code == 204
    r = client.put("/v1/me/pin", headers=bearer(phone), json={"pin": "482915"})
    assert r.status_code == 409 and r.json()["code"] == "PIN_ALREADY_SET"

    tablet = client.post("/v1/sessions", json={"msisdn": "13900139000", "pin": "739154", "device_id": "d2"})
    assert tablet.status_code == 201
    tablet_tokens = tablet.json()
    both = client.get("/v1/sessions", headers=bearer(phone)).json()
    assert [(d["device_id"], d["current"]) for d in both] == [("d1", True), ("d2", False)]
    r = client.post("/v1/sessions", json={"msisdn": "13900139000", "pin": "111112", "device_id": "d3"})
    assert r.status_code == 422 and r.json()["code"] == "PIN_INCORRECT"
    r = client.post("/v1/sessions", json={"msisdn": "13900139000", "device_id": "d3"})
    assert r.status_code == 400 and r.json()["code"] == "LOGIN_METHOD_REQUIRED"

    # refresh rotates; the old refresh token used again revokes the session (it was copied)
    rotated = client.post("/v1/sessions/refresh", json={"refresh_token": tablet_tokens["refresh_token"]})
    assert rotated.status_code == 200 and rotated.json()["access_token"] != tablet_tokens["access_token"]
    assert client.get("/v1/me", headers=bearer(tablet_tokens)).status_code == 401  # old access token
    assert client.get("/v1/me", headers=bearer(rotated.json())).status_code == 200
    stolen = client.post("/v1/sessions/refresh", json={"refresh_token": tablet_tokens["refresh_token"]})
    assert stolen.status_code == 401 and "revoked" in stolen.json()["detail"]
    assert client.get("/v1/me", headers=bearer(rotated.json())).status_code == 401

    assert client.delete("/v1/sessions", headers=bearer(phone)).status_code == 204  # everywhere
    assert client.get("/v1/me", headers=bearer(phone)).status_code == 401


ADMIN = {"Authorization": "Bearer demo-admin-token"}


def fund(client: TestClient, number: str, amount: int) -> None:
    for spec in ({"code": "asset:bank:settlement", "kind": "asset"},):
        assert client.post("/v1/ledger/accounts", headers=ADMIN, json=spec).status_code == 201
    r = client.post("/v1/ledger/transfers", headers={**ADMIN, "Idempotency-Key": f"fund-{number}"}, json={
        "code": "cash_in", "legs": [
            {"account": "asset:bank:settlement", "side": "debit", "amount": {"amount": amount}},
            {"account": f"wallet:+86{number}", "side": "credit", "amount": {"amount": amount}}]})
    assert r.status_code == 201, r.text


def balance(client: TestClient, tokens: dict[str, str]) -> int:
    amount: int = client.get("/v1/me", headers=bearer(tokens)).json()["balance"]["amount"]
    return amount


def test_transfers_between_subscribers(client: TestClient, db_url: str) -> None:
    signed_up(client, db_url, "13800138000")
    signed_up(client, db_url, "13900139000")
    alice = login_by_sms(client, db_url, "13800138000", "a1")
    bob = login_by_sms(client, db_url, "13900139000", "b1")
    fund(client, "13800138000", 150_000)

    def send(key: str | None, **body: object):  # type: ignore[no-untyped-def]
        headers = {**bearer(alice), **({"Idempotency-Key": key} if key else {})}
        return client.post("/v1/transfers", headers=headers, json={"to": "13900139000", **body})

    r = send("k1", amount={"amount": 5_000}, note="午饭")
    assert r.status_code == 201 and r.json()["to"] == "139****9000"
    again = send("k1", amount={"amount": 5_000}, note="午饭")
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == r.json()["id"]
    assert (balance(client, alice), balance(client, bob)) == (145_000, 5_000)

    refusals = [
        (send("k1", amount={"amount": 5_001}), 409, "IDEMPOTENCY_CONFLICT"),
        (send(None, amount={"amount": 100}), 400, "IDEMPOTENCY_KEY_REQUIRED"),
        (send("k2", amount={"amount": 30_000}), 422, "PIN_REQUIRED"),
        (send("k3", amount={"amount": 12.5}), 400, "INVALID_AMOUNT"),
        (send("k4", amount={"amount": 0}), 400, "INVALID_AMOUNT"),
        (send("k5", amount={"amount": "100"}), 400, "INVALID_AMOUNT"),
        (send("k6", amount={"amount": 1e2}), 400, "INVALID_AMOUNT"),
        (send("k7", amount={"amount": 10**20}), 400, "INVALID_AMOUNT"),
        (send("k8", amount={"amount": 100, "currency": "USD"}), 422, "UNSUPPORTED_CURRENCY"),  # ISO 4217, not ours
        (send("k8b", amount={"amount": 100, "currency": "XYZ"}), 400, "INVALID_CURRENCY"),  # not a currency
        (client.post("/v1/transfers", headers={**bearer(alice), "Idempotency-Key": "k9"},
                     json={"to": "13800138000", "amount": {"amount": 100}}), 422, "SELF_TRANSFER"),
        (client.post("/v1/transfers", headers={**bearer(alice), "Idempotency-Key": "k11"},
                     json={"to": "12345", "amount": {"amount": 100}}), 400, "INVALID_MSISDN"),
        (client.post("/v1/transfers", headers={**bearer(bob), "Idempotency-Key": "k12"},
                     json={"to": "13800138000", "amount": {"amount": 9_000}}), 422, "INSUFFICIENT_FUNDS"),
    ]
    for response, status, code in refusals:
        assert (response.status_code, response.json()["code"]) == (status, code), response.text
    assert (balance(client, alice), balance(client, bob)) == (145_000, 5_000)

    assert client.put("/v1/me/pin", headers=bearer(alice), json={"pin": "739154"}).status_code == 204
    wrong = send("k13", amount={"amount": 30_000}, pin="111112")
    assert wrong.status_code == 422 and wrong.json()["code"] == "PIN_INCORRECT"
    assert send("k14", amount={"amount": 30_000}, pin="739154").status_code == 201
    # Tier I: 1,000 CNY of payments over the account's life; 350 CNY used so far
    over = send("k15", amount={"amount": 65_001}, pin="739154")
    assert over.status_code == 422 and over.json()["code"] == "LIMIT_EXCEEDED"
    assert "650.00 CNY left" in over.json()["detail"]
    assert send("k16", amount={"amount": 65_000}, pin="739154").status_code == 201
    assert (balance(client, alice), balance(client, bob)) == (50_000, 100_000)
    r = send("k17", amount={"amount": 1}, pin="739154")
    assert r.status_code == 422 and r.json()["code"] == "LIMIT_EXCEEDED"


def test_double_spend_from_two_devices_at_once(client: TestClient, db_url: str) -> None:
    """One subscriber's phone and tablet spend the same balance at the same moment over HTTP
    (on PostgreSQL through the transfer lane and its batches): one wins, the other is told
    INSUFFICIENT_FUNDS, and no fen is made or lost."""
    signed_up(client, db_url, "13800138000")
    signed_up(client, db_url, "13900139000")
    phone = login_by_sms(client, db_url, "13800138000", "phone")
    assert client.put("/v1/me/pin", headers=bearer(phone), json={"pin": "739154"}).status_code == 204
    r = client.post("/v1/sessions", json={"msisdn": "13800138000", "pin": "739154", "device_id": "tablet"})
    assert r.status_code == 201, r.text
    tablet, bob = r.json(), login_by_sms(client, db_url, "13900139000", "b1")
    fund(client, "13800138000", 10_000)
    start = threading.Barrier(2)

    def spend(tokens: dict[str, str], key: str) -> tuple[int, str]:
        start.wait()
        r = client.post("/v1/transfers", headers={**bearer(tokens), "Idempotency-Key": key},
                        json={"to": "13900139000", "amount": {"amount": 8_000}})
        return r.status_code, r.json().get("code", "")

    with ThreadPoolExecutor(2) as pool:
        got = sorted(pool.map(spend, (phone, tablet), ("from-phone", "from-tablet")))
    assert got == [(201, ""), (422, "INSUFFICIENT_FUNDS")], got
    assert (balance(client, phone), balance(client, bob)) == (2_000, 8_000)


def test_history_and_receipts_are_private(client: TestClient, db_url: str) -> None:
    signed_up(client, db_url, "13800138000")
    signed_up(client, db_url, "13900139000")
    signed_up(client, db_url, "18600186000")
    alice = login_by_sms(client, db_url, "13800138000", "a1")
    carol = login_by_sms(client, db_url, "18600186000", "c1")
    fund(client, "13800138000", 10_000)
    for i, amount in enumerate((1_000, 2_000, 3_000)):
        r = client.post("/v1/transfers", headers={**bearer(alice), "Idempotency-Key": f"h{i}"},
                        json={"to": "13900139000", "amount": {"amount": amount}})
        assert r.status_code == 201
    page = client.get("/v1/me/transactions?limit=2", headers=bearer(alice)).json()
    assert [(e["kind"], e["direction"], e["amount"]["amount"]) for e in page["items"]] == [
        ("cash_in", "in", 10_000), ("p2p", "out", 1_000)]
    rest = client.get(f"/v1/me/transactions?after={page['next']}", headers=bearer(alice)).json()
    assert [e["balance_after"]["amount"] for e in rest["items"]] == [7_000, 4_000] and rest["next"] is None
    tid = rest["items"][-1]["transfer_id"]
    mine = client.get(f"/v1/me/transactions/{tid}", headers=bearer(alice)).json()
    assert (mine["direction"], mine["amount"]["amount"], mine["counterparty"]) == ("out", 3_000, "139****9000")
    theirs = client.get(f"/v1/me/transactions/{tid}", headers=bearer(carol))  # not carol's
    assert theirs.status_code == 404 and theirs.json()["code"] == "NOT_FOUND"
    assert client.get("/v1/me/transactions/nope", headers=bearer(carol)).status_code == 404

    def kinds(query: str) -> list[tuple[str, int]]:
        r = client.get(f"/v1/me/transactions?{query}", headers=bearer(alice))
        assert r.status_code == 200, r.text
        return [(e["kind"], e["amount"]["amount"]) for e in r.json()["items"]]

    assert kinds("direction=in") == [("cash_in", 10_000)]
    assert kinds("kind=p2p&direction=out&limit=2") == [("p2p", 1_000), ("p2p", 2_000)]
    assert kinds("kind=p2p&kind=cash_in") == kinds("") and len(kinds("")) == 4
    assert kinds("from=2000-01-01T00:00:00Z&to=2001-01-01T00:00:00Z") == []
    assert len(kinds("from=2000-01-01T00:00:00%2B08:00")) == 4
    bad = client.get("/v1/me/transactions?from=2026-01-01T00:00:00", headers=bearer(alice))
    assert bad.status_code == 400 and bad.json()["code"] == "VALIDATION_FAILED"
    assert client.get("/v1/me/transactions?direction=sideways", headers=bearer(alice)).status_code == 400


def test_money_for_a_number_without_a_wallet_waits_for_it(client: TestClient, db_url: str) -> None:
    signed_up(client, db_url, "13800138000")
    alice = login_by_sms(client, db_url, "13800138000", "a1")
    fund(client, "13800138000", 10_000)
    r = client.post("/v1/transfers", headers={**bearer(alice), "Idempotency-Key": "gift"},
                    json={"to": "18600186000", "amount": {"amount": 1_234}, "note": "生日快乐"})
    assert r.status_code == 202 and r.json()["status"] == "waiting_for_recipient", r.text
    again = client.post("/v1/transfers", headers={**bearer(alice), "Idempotency-Key": "gift"},
                        json={"to": "18600186000", "amount": {"amount": 1_234}, "note": "生日快乐"})
    assert again.status_code == 200 and again.json()["status"] == "waiting_for_recipient"
    assert balance(client, alice) == 10_000 - 1_234
    receipt = client.get(f"/v1/me/transactions/{r.json()['id']}", headers=bearer(alice)).json()
    assert receipt["waiting_for_recipient"] is True and receipt["recipient_state"] == "waiting"
    assert receipt["counterparty"] == "186****6000" and receipt["note"] == "生日快乐"
    waits = datetime.fromisoformat(receipt["recipient_expires_at"]) - datetime.fromisoformat(receipt["created_at"])
    assert abs(waits - timedelta(days=3)) < timedelta(minutes=1)
    signed_up(client, db_url, "18600186000")  # the invited number registers: the money is there
    carol = login_by_sms(client, db_url, "18600186000", "c1")
    assert balance(client, carol) == 1_234
    claimed = client.get(f"/v1/me/transactions/{r.json()['id']}", headers=bearer(alice)).json()
    assert (claimed["waiting_for_recipient"], claimed["recipient_state"]) == (False, "claimed")
    suspense = client.get("/v1/ledger/accounts/liability:suspense", headers=ADMIN).json()
    assert suspense["balance"]["amount"] == 0


def test_request_money_pay_decline(client: TestClient, db_url: str) -> None:
    signed_up(client, db_url, "13800138000")
    signed_up(client, db_url, "13900139000")
    alice = login_by_sms(client, db_url, "13800138000", "a1")
    bob = login_by_sms(client, db_url, "13900139000", "b1")
    fund(client, "13900139000", 10_000)

    def ask(key: str, amount: object, payer: str = "13900139000"):  # type: ignore[no-untyped-def]
        return client.post("/v1/money-requests", headers={**bearer(alice), "Idempotency-Key": key},
                           json={"from": payer, "amount": {"amount": amount}, "note": "电影票"})

    first = ask("r1", 3_000)
    assert first.status_code == 201 and first.json()["state"] == "open"
    assert ask("r1", 3_000).json()["id"] == first.json()["id"]  # replay
    assert ask("r1", 3_001).json()["code"] == "IDEMPOTENCY_CONFLICT"
    assert ask("r2", 100, payer="13800138000").json()["code"] == "SELF_REQUEST"
    assert ask("r3", -5).json()["code"] == "INVALID_AMOUNT"
    second = ask("r4", 500)
    rid, rid2 = first.json()["id"], second.json()["id"]

    listed = client.get("/v1/money-requests", headers=bearer(bob)).json()
    assert {r["id"] for r in listed["incoming"]} == {rid, rid2} and listed["outgoing"] == []
    # alice cannot pay her own request: to her it does not exist as something to pay
    assert client.post(f"/v1/money-requests/{rid}/pay", headers={**bearer(alice), "Idempotency-Key": "p"},
                       json={}).status_code == 404
    paid = client.post(f"/v1/money-requests/{rid}/pay", headers={**bearer(bob), "Idempotency-Key": "p1"}, json={})
    assert paid.status_code == 201, paid.text
    again = client.post(f"/v1/money-requests/{rid}/pay", headers={**bearer(bob), "Idempotency-Key": "p2"}, json={})
    assert again.status_code == 200 and again.json()["id"] == paid.json()["id"]  # paid once only
    assert (balance(client, alice), balance(client, bob)) == (3_000, 7_000)

    declined = client.post(f"/v1/money-requests/{rid2}/decline", headers=bearer(bob))
    assert declined.status_code == 200 and declined.json()["state"] == "declined"
    late = client.post(f"/v1/money-requests/{rid2}/pay", headers={**bearer(bob), "Idempotency-Key": "p3"}, json={})
    assert late.status_code == 409 and late.json()["code"] == "REQUEST_NOT_OPEN"
    assert (balance(client, alice), balance(client, bob)) == (3_000, 7_000)
    states = {r["id"]: r["state"] for r in client.get("/v1/money-requests", headers=bearer(alice)).json()["outgoing"]}
    assert states == {rid: "paid", rid2: "declined"}


def test_rate_limits_per_address(sqlite_url: str) -> None:
    """One address asking codes for many numbers, or guessing sign-ins, is slowed down with
    429 RATE_LIMITED and Retry-After; refused requests send no SMS."""
    settings = Settings(_env_file=None, database_url=sqlite_url, rate_limit_otp="3/minute",  # type: ignore[call-arg]
                        rate_limit_pin="2/minute")
    with TestClient(create_app(settings)) as c:
        numbers = ["13800138001", "13800138002", "13800138003", "13800138004"]
        statuses = [c.post("/v1/otp", json={"msisdn": n}).status_code for n in numbers]
        assert statuses == [202, 202, 202, 429]
        refused = c.post("/v1/otp", json={"msisdn": "13800138005"})
        assert refused.json()["code"] == "RATE_LIMITED" and int(refused.headers["Retry-After"]) > 0
        login = {"msisdn": "13800138001", "pin": "135792", "device_id": "d"}
        assert [c.post("/v1/sessions", json=login).json()["code"] for _ in range(3)] == [
            "USER_NOT_FOUND", "USER_NOT_FOUND", "RATE_LIMITED"]

    async def sms_count() -> int:
        db = Database(sqlite_url)
        async with db.begin() as conn:
            n = (await conn.execute(text("SELECT count(*) FROM outbox_messages WHERE topic = 'sms.send'"))).scalar_one()
        await db.dispose()
        return int(n)

    assert asyncio.run(sms_count()) == 3


def test_the_transfer_lane_answers_as_the_route(client: TestClient, db_url: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """``POST /v1/transfers`` takes the lane (wallet.api.TransferLane) when the route would
    accept it, and the route otherwise: both give the same answers. ``bearer`` (lower case)
    is valid HTTP and goes to the route, so each case is sent both ways and compared."""
    from mobipay.wallet import api as wallet_api

    routed: list[int] = []
    real = wallet_api._transfer_out
    monkeypatch.setattr(wallet_api, "_transfer_out", lambda done, response: (routed.append(1), real(done,
                                                                                                    response))[1])
    signed_up(client, db_url, "13800138000")
    signed_up(client, db_url, "13900139000")
    alice = login_by_sms(client, db_url, "13800138000", "a1")
    fund(client, "13800138000", 100_000)

    def both(key: str, body: dict[str, object], *, route_key: str | None = None) -> tuple[Any, Any]:
        token = alice["access_token"]
        lane = client.post("/v1/transfers", json=body, headers={"Authorization": f"Bearer {token}",
                                                                "Idempotency-Key": key})
        route = client.post("/v1/transfers", json=body, headers={"Authorization": f"bearer {token}",
                                                                 "Idempotency-Key": route_key or key + "r"})
        return lane, route

    def same(lane: Any, route: Any) -> dict[str, Any]:
        a, b = lane.json(), route.json()
        assert lane.status_code < 400 or a["request_id"] == lane.headers["x-request-id"]
        for varying in ("id", "created_at", "request_id", "detail"):
            a.pop(varying, None), b.pop(varying, None)
        assert (lane.status_code, a) == (route.status_code, b)
        assert lane.headers.get("Idempotent-Replayed") == route.headers.get("Idempotent-Replayed")
        assert lane.headers["content-type"] == route.headers["content-type"]
        assert "x-request-id" in lane.headers
        body: dict[str, Any] = a
        return body

    assert same(*both("t1", {"to": "13900139000", "amount": {"amount": 100}, "note": "茶"}))["status"] == "succeeded"
    assert routed == [1]  # only the lower-case one went through the route
    assert same(*both("t2", {"to": "18600186000", "amount": {"amount": 200}}))["status"] == "waiting_for_recipient"
    lane, route = both("t1", {"to": "13900139000", "amount": {"amount": 100}, "note": "茶"}, route_key="t1r")
    assert lane.status_code == 200 and lane.json()["id"].endswith(":t1")
    same(lane, route)  # replays
    assert same(*both("t3", {"to": "13800138000", "amount": {"amount": 1}}))["code"] == "SELF_TRANSFER"
    assert same(*both("t1", {"to": "13900139000", "amount": {"amount": 101}}, route_key="t1r")
                )["code"] == "IDEMPOTENCY_CONFLICT"
    assert same(*both("t4", {"to": "13900139000", "amount": {"amount": 30_000}}))["code"] == "PIN_REQUIRED"
    assert same(*both("t5", {"to": "139", "amount": {"amount": 1}}))["code"] == "INVALID_MSISDN"
    # what the lane leaves to the route: the route's own validation answers
    calls = len(routed)
    for body in ({"to": "13900139000", "amount": {"amount": 1.5}}, {"to": "13900139000"},
                 {"to": "13900139000", "amount": {"amount": 1}, "note": "x" * 65}):
        r = client.post("/v1/transfers", json=body, headers={**bearer(alice), "Idempotency-Key": "v"})
        assert r.status_code == 400 and r.json()["code"] in ("INVALID_AMOUNT", "FIELD_REQUIRED", "VALIDATION_FAILED")
    r = client.post("/v1/transfers", json={"to": "13900139000", "amount": {"amount": 1}, "note": "x" * 20_000},
                    headers={**bearer(alice), "Idempotency-Key": "v"})
    assert r.status_code == 413 and r.json()["code"] == "PAYLOAD_TOO_LARGE"  # the edge's limit, before the lane
    r = client.post("/v1/transfers", content=b"{not json", headers={**bearer(alice), "Idempotency-Key": "v",
                                                                     "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["code"] == "VALIDATION_FAILED"
    r = client.post("/v1/transfers", json={"to": "13900139000", "amount": {"amount": 1}}, headers=bearer(alice))
    assert r.json()["code"] == "IDEMPOTENCY_KEY_REQUIRED"
    r = client.post("/v1/transfers", json={"to": "13900139000", "amount": {"amount": 1}},
                    headers={"Authorization": "Bearer forged", "Idempotency-Key": "f"})
    assert r.status_code == 401 and r.json()["code"] == "SESSION_INVALID"
    assert len(routed) == calls  # refusals never reach _transfer_out
    assert balance(client, alice) == 100_000 - 2 * 100 - 2 * 200


def test_a_bug_behind_the_lane_is_answered_as_the_app_answers_one(sqlite_url: str) -> None:
    """The lane sits outside FastAPI's error middleware: it answers a failure itself, as a
    500 problem with the request id (here: no lifespan, so no services were built)."""
    app = create_app(Settings(_env_file=None, database_url=sqlite_url))  # type: ignore[call-arg]
    client = TestClient(app, raise_server_exceptions=False)  # no "with": the lifespan never runs
    r = client.post("/v1/transfers", json={"to": "13900139000", "amount": {"amount": 1}},
                    headers={"Authorization": "Bearer x", "Idempotency-Key": "k"})
    assert r.status_code == 500 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "INTERNAL_ERROR" and r.json()["request_id"] == r.headers["x-request-id"]
