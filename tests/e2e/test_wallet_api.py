"""The wallet's sign-up over HTTP on both databases: code by SMS (through the outbox),
registration, and the refusals a client meets, each with its code and no side effect."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from mobipay.platform.config import Settings
from mobipay.platform.db import Database
from mobipay.platform.http import create_app


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
                                           "ORDER BY created_at DESC LIMIT 1"))).scalar_one()
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
