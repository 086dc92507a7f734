"""Money in and out over HTTP on both databases, against the bank SIMULATOR process, and the
issue's list of bad input: each refusal has its code and leaves every balance as it was."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from mobipay.app.bootstrap import build
from mobipay.app.http import create_app
from mobipay.kernel.clock import ManualClock
from mobipay.platform.config import Settings
from mobipay.wallet.model import id_card_check_char, luhn_complete
from tests.conftest import BANK_SECRET
from tests.e2e.test_wallet_api import balance, bearer, fund, last_code, login_by_sms, signed_up

ID = "44030419900101001"
ID_NUMBER = ID + id_card_check_char(ID)
CARD = luhn_complete("621483" + "000055556666")  # CMB debit


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC))


@pytest.fixture
def client(db_url: str, bank: str, clock: ManualClock) -> Iterator[TestClient]:
    settings = Settings(_env_file=None, database_url=db_url, bank_url=bank,  # type: ignore[call-arg]
                        bank_secret=BANK_SECRET, bank_timeout_s=1.0)
    with TestClient(create_app(settings, build(settings, clock=clock))) as c:
        yield c


def open_account(bank: str, phone: str = "13800138000", name: str = "张明", balance: int = 1_000_000) -> None:
    httpx.post(f"{bank}/sim/accounts", json={"card_number": CARD, "name": name, "id_number": ID_NUMBER,
                                             "phone": phone, "balance": balance}).raise_for_status()


def post(client: TestClient, path: str, tokens: dict[str, str], key: str | None, body: dict[str, Any]) -> Any:
    headers = {**bearer(tokens), **({"Idempotency-Key": key} if key else {})}
    return client.post(path, headers=headers, json=body)


def test_cards_cash_in_and_out(client: TestClient, db_url: str, bank: str) -> None:
    signed_up(client, db_url, "13800138000")
    signed_up(client, db_url, "13900139000")
    me = login_by_sms(client, db_url, "13800138000", "a")
    friend = login_by_sms(client, db_url, "13900139000", "b")
    open_account(bank)
    assert client.get("/v1/recipients/13800138000", headers=bearer(friend)).json() == {
        "msisdn": "138****8000", "registered": True, "name": None}

    bad = client.post("/v1/me/cards", headers=bearer(me), json={"card_number": CARD, "name": "张明",
                                                                 "id_number": "440304199001010010"})
    assert bad.status_code == 400 and bad.json()["code"] == "INVALID_ID_CARD"
    r = client.post("/v1/me/cards", headers=bearer(me), json={"card_number": CARD, "name": "张明",
                                                               "id_number": ID_NUMBER})
    assert r.status_code == 201, r.text
    card = r.json()
    assert card["bank_code"] == "CMB" and CARD not in r.text and ID_NUMBER not in r.text
    assert client.get("/v1/me", headers=bearer(me)).json()["tier"] == 2
    assert client.get("/v1/recipients/+86 138 0013 8000", headers=bearer(friend)).json()["name"] == "*明"
    assert client.get("/v1/recipients/13700137000", headers=bearer(friend)).json()["registered"] is False

    r = post(client, "/v1/cash-ins", me, "in-1", {"card_id": card["id"], "amount": {"amount": 200_000}})
    assert r.status_code == 201 and r.json()["state"] == "succeeded", r.text
    again = post(client, "/v1/cash-ins", me, "in-1", {"card_id": card["id"], "amount": {"amount": 200_000}})
    assert again.status_code == 200 and again.json()["id"] == r.json()["id"]
    assert balance(client, me) == 200_000

    # Tier II: 1,500 CNY in one go is fine (Tier I would stop at 1,000 CNY over the account's life)
    assert client.put("/v1/me/pin", headers=bearer(me), json={"pin": "739154"}).status_code == 204
    sent = post(client, "/v1/transfers", me, "t-1", {"to": "13900139000", "amount": {"amount": 150_000},
                                                     "pin": "739154"})
    assert sent.status_code == 201, sent.text

    out = post(client, "/v1/cash-outs", me, "out-1", {"card_id": card["id"], "amount": {"amount": 10_000},
                                                      "pin": "739154"})
    assert out.status_code == 201 and out.json()["fee"] == {"amount": 10, "currency": "CNY"}, out.text
    assert balance(client, me) == 200_000 - 150_000 - 10_010

    httpx.put(f"{bank}/sim/behaviour", json={"decline_rate": 1.0}).raise_for_status()
    declined = post(client, "/v1/cash-ins", me, "in-2", {"card_id": card["id"], "amount": {"amount": 100}})
    assert declined.status_code == 422 and declined.json()["code"] == "BANK_DECLINED"
    assert declined.json()["order_id"].startswith("bo_")
    httpx.put(f"{bank}/sim/behaviour", json={"processing_rate": 1.0, "settle_after_s": 0.3}).raise_for_status()
    pending = post(client, "/v1/cash-ins", me, "in-3", {"card_id": card["id"], "amount": {"amount": 700}})
    assert pending.status_code == 202 and pending.json()["state"] == "pending"
    time.sleep(0.6)
    settled = client.get(f"/v1/bank-orders/{pending.json()['id']}", headers=bearer(me))
    assert settled.json()["state"] == "succeeded"
    assert client.get(f"/v1/bank-orders/{pending.json()['id']}", headers=bearer(friend)).status_code == 404
    assert [o["state"] for o in client.get("/v1/bank-orders", headers=bearer(me)).json()] == [
        "succeeded", "failed", "succeeded", "succeeded"]
    assert balance(client, me) == 200_000 - 150_000 - 10_010 + 700

    refusals = [
        (post(client, "/v1/cash-outs", me, "out-2", {"card_id": card["id"], "amount": {"amount": 100}}),
         422, "PIN_REQUIRED"),
        (post(client, "/v1/cash-outs", me, None, {"card_id": card["id"], "amount": {"amount": 100}, "pin": "739154"}),
         400, "IDEMPOTENCY_KEY_REQUIRED"),
        (post(client, "/v1/cash-ins", me, "in-1", {"card_id": card["id"], "amount": {"amount": 1}}),
         409, "IDEMPOTENCY_CONFLICT"),
        (post(client, "/v1/cash-ins", friend, "in-9", {"card_id": card["id"], "amount": {"amount": 100}}),
         404, "CARD_NOT_FOUND"),
        (post(client, "/v1/cash-ins", me, "in-10", {"card_id": card["id"], "amount": {"amount": 1.005}}),
         400, "INVALID_AMOUNT"),
    ]
    for response, status, code in refusals:
        assert (response.status_code, response.json()["code"]) == (status, code), response.text
    assert balance(client, me) == 200_000 - 150_000 - 10_010 + 700

    # a real-name wallet's PIN reset asks for the identity card as well
    assert client.post("/v1/otp", json={"msisdn": "13800138000", "purpose": "reset_pin"}).status_code == 202
    code = last_code(db_url)
    r = client.post("/v1/pin-resets", json={"msisdn": "13800138000", "code": code, "pin": "482915"})
    assert r.status_code == 400 and r.json()["code"] == "IDENTITY_REQUIRED"
    r = client.post("/v1/pin-resets", json={"msisdn": "13800138000", "code": code, "pin": "482915",
                                            "id_number": ID_NUMBER})
    assert r.status_code == 204, r.text


def test_bad_input_changes_nothing(client: TestClient, db_url: str, clock: ManualClock) -> None:
    """The issue's list: expired code, frozen wallet, locked PIN, odd amounts, and two devices
    spending one balance at once. Each gets its code; balances stay as they were."""
    assert client.post("/v1/otp", json={"msisdn": "13800138000"}).status_code == 202
    code = last_code(db_url)
    clock.advance(301)
    r = client.post("/v1/users", json={"msisdn": "13800138000", "code": code})
    assert r.status_code == 422 and r.json()["code"] == "OTP_EXPIRED"
    signed_up(client, db_url, "13800138000")
    signed_up(client, db_url, "13900139000")
    fund(client, "13800138000", 10_000)
    phone = login_by_sms(client, db_url, "13800138000", "phone")
    tablet = login_by_sms(client, db_url, "13800138000", "tablet")
    bob = login_by_sms(client, db_url, "13900139000", "b")

    for i, amount in enumerate((12.345, "1e3", 1e3, -5, 0, 2**63, "８８", None, True)):
        r = post(client, "/v1/transfers", phone, f"odd-{i}", {"to": "13900139000", "amount": {"amount": amount}})
        assert (r.status_code, r.json()["code"]) == (400, "INVALID_AMOUNT"), (amount, r.text)
    for number in ("1380013800", "23800138000", "+1 202 555 0100", "138-0013-800a"):
        r = post(client, "/v1/transfers", phone, "n", {"to": number, "amount": {"amount": 100}})
        assert (r.status_code, r.json()["code"]) == (400, "INVALID_MSISDN"), number

    # Two devices spend the same 100 CNY at once: exactly one succeeds.
    def spend(tokens: dict[str, str], key: str) -> Any:
        return post(client, "/v1/transfers", tokens, key, {"to": "13900139000", "amount": {"amount": 8_000}})

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda a: spend(*a), [(phone, "x1"), (tablet, "x2"), (phone, "x3"), (tablet, "x4")]))
    codes = sorted(r.json().get("code", str(r.status_code)) for r in results)
    assert codes == ["201", "INSUFFICIENT_FUNDS", "INSUFFICIENT_FUNDS", "INSUFFICIENT_FUNDS"], codes
    assert (balance(client, phone), balance(client, bob)) == (2_000, 8_000)

    # Locked PIN: five wrong ones, then even the right one is refused for a while.
    assert client.put("/v1/me/pin", headers=bearer(bob), json={"pin": "739154"}).status_code == 204
    fund(client, "13900139000", 100_000)
    for i in range(5):
        r = post(client, "/v1/transfers", bob, f"p{i}", {"to": "13800138000", "amount": {"amount": 30_000},
                                                          "pin": "111112"})
        assert r.json()["code"] == ("PIN_INCORRECT" if i < 4 else "PIN_LOCKED")
    r = post(client, "/v1/transfers", bob, "p9", {"to": "13800138000", "amount": {"amount": 30_000}, "pin": "739154"})
    assert r.status_code == 423 and r.json()["code"] == "PIN_LOCKED" and int(r.headers["Retry-After"]) > 0
    assert (balance(client, phone), balance(client, bob)) == (2_000, 108_000)

    # Frozen wallet: neither pays nor is paid.
    freeze = client.app.state.container.wallet.set_frozen  # type: ignore[attr-defined]
    client.portal.call(lambda: freeze("13800138000", True, actor="ops", reason="test"))  # type: ignore[union-attr]
    r = post(client, "/v1/transfers", phone, "f1", {"to": "13900139000", "amount": {"amount": 100}})
    assert r.status_code == 423 and r.json()["code"] == "USER_FROZEN"
    r = post(client, "/v1/transfers", bob, "f2", {"to": "13800138000", "amount": {"amount": 100}})
    assert r.json()["code"] == "ACCOUNT_FROZEN", r.text
    assert (balance(client, phone), balance(client, bob)) == (2_000, 108_000)
