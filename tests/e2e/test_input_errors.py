"""Input that used to give 500s or vague answers, on both databases: a merchant's timestamp,
amounts and expiry in other digits or too many of them, a credit limit past 64 bits, made-up
and unsupported currencies; every amount error is INVALID_AMOUNT saying "integer fen", and
every field error names what the request sent. Nothing moves on any of them."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mobipay.app.http import create_app
from mobipay.merchants.signing import sign_hmac
from mobipay.platform.config import Settings
from tests.e2e.test_merchants_api import application
from tests.e2e.test_wallet_api import balance, bearer, fund, login_by_sms, signed_up

ADMIN = {"Authorization": "Bearer demo-admin-token"}


@pytest.fixture
def client(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(_env_file=None, database_url=db_url,  # type: ignore[call-arg]
                        merchant_key_file=tmp_path / "platform.pem")
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def _problem(r: Any, status: int, code: str, field: str | None = None) -> dict[str, Any]:
    assert (r.status_code, r.headers["content-type"]) == (status, "application/problem+json"), r.text
    body: dict[str, Any] = r.json()
    assert body["code"] == code, body
    if field is not None:
        assert [e["field"] for e in body["errors"]] == [field], body
    return body


def test_merchant_inputs_are_refused_not_crashed_on(client: TestClient) -> None:
    merchant_id = client.post("/v1/merchant-applications", json=application()).json()["id"]
    service = client.app.state.container.merchants  # type: ignore[attr-defined]
    app_id, key = client.portal.call(lambda: service.create_app(merchant_id, "HMAC"))  # type: ignore[union-attr]

    def call(path: str, *, timestamp: str | None = None, **params: object) -> Any:
        body: dict[str, Any] = {"app_id": app_id, "timestamp": timestamp or str(int(time.time())),
                                "nonce": secrets.token_hex(8), "sign_type": "HMAC", **params}
        body["sign"] = sign_hmac(body, key.encode())  # type: ignore[union-attr]
        return client.post(path, json=body)

    for timestamp in ("²", "1" * 5_000, "１７００００００００"):  # before the signature check: 500s
        _problem(call("/v1/merchant/trades", timestamp=timestamp, out_trade_no="A", total_amount="100",
                      subject="书"), 401, "UNAUTHORIZED")
    for amount in ("²", "１００", "1" * 5_000, "88.5", "-5", " 100", 1.5):
        body = _problem(call("/v1/merchant/trades", out_trade_no="A", total_amount=amount, subject="书"),
                        400, "INVALID_AMOUNT", "total_amount")
        assert "integer fen" in body["detail"]
    for minutes in ("²", "9" * 5_000, "abc", "0", "1441"):
        _problem(call("/v1/merchant/trades", out_trade_no="A", total_amount="100", subject="书",
                      expire_minutes=minutes), 400, "VALIDATION_FAILED", "expire_minutes")
    ok = call("/v1/merchant/trades", out_trade_no="A", total_amount="100", subject="书", expire_minutes="15")
    assert ok.status_code == 201, ok.text
    _problem(call("/v1/merchant/refunds", out_trade_no="A", out_request_no="R1", refund_amount="１"), 400,
             "INVALID_AMOUNT", "refund_amount")


def test_ledger_limits_and_currencies(client: TestClient) -> None:
    _problem(client.post("/v1/ledger/accounts", headers=ADMIN, json={"code": "big", "kind": "asset",
                                                                     "credit_limit": 2**64}),
             400, "VALIDATION_FAILED", "credit_limit")
    _problem(client.post("/v1/ledger/accounts", headers=ADMIN, json={"code": "x", "kind": "asset", "currency": "XYZ"}),
             400, "INVALID_CURRENCY", "currency")
    usd = client.post("/v1/ledger/accounts", headers=ADMIN, json={"code": "usd", "kind": "asset", "currency": "USD"})
    assert usd.status_code == 201 and usd.json()["currency"] == "USD"  # the ledger keeps any ISO 4217 currency
    for code in ("XYZ", "ABC"):
        assert client.get(f"/v1/ledger/accounts/{code.lower()}", headers=ADMIN).status_code == 404  # none opened


def test_wallet_amounts_currencies_and_field_names(client: TestClient, db_url: str) -> None:
    signed_up(client, db_url, "13800138000")
    signed_up(client, db_url, "13900139000")
    alice = login_by_sms(client, db_url, "13800138000", "a")
    fund(client, "13800138000", 10_000)
    headers = {**bearer(alice), "Idempotency-Key": "k"}

    def send(**body: object) -> Any:
        return client.post("/v1/transfers", json={"to": "13900139000", "amount": {"amount": 100}, **body},
                           headers=headers)

    for amount in (1.5, "100", "１００", 0, -1, 10**16, True):
        problem = _problem(send(amount={"amount": amount}), 400, "INVALID_AMOUNT", "amount.amount")
        assert "integer fen" in problem["detail"]
    _problem(send(amount={"amount": 100, "currency": "USD"}), 422, "UNSUPPORTED_CURRENCY", "amount.currency")
    _problem(send(amount={"amount": 100, "currency": "XYZ"}), 400, "INVALID_CURRENCY", "amount.currency")
    _problem(send(to="12345"), 400, "INVALID_MSISDN", "to")  # the services call it msisdn; the request, to
    r = client.post("/v1/money-requests", json={"from": "12345", "amount": {"amount": 100}}, headers=headers)
    _problem(r, 400, "INVALID_MSISDN", "from")
    _problem(client.get("/v1/recipients/12345", headers=bearer(alice)), 400, "INVALID_MSISDN", "number")
    card = {"card_number": "6222020000111122222", "name": "王小明", "id_number": "110105194912310021"}
    _problem(client.post("/v1/me/cards", json=card, headers=bearer(alice)), 400, "INVALID_ID_CARD", "id_number")
    reset = {"msisdn": "13800138000", "code": "123456", "pin": "739154",
             "id_number": "１１０１０５１９４９１２３１００２X"}
    r = client.post("/v1/pin-resets", json=reset)
    assert r.status_code in (400, 422) and all(e["field"] in reset for e in r.json().get("errors", [])), r.text
    _problem(client.post("/v1/merchant-applications", json=application(contact_msisdn="12345")), 400,
             "INVALID_MSISDN", "contact_msisdn")
    assert balance(client, alice) == 10_000
