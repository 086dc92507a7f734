"""Merchant applications over HTTP on both databases (issue 29): the applicant's token reads
the status, every decision is an SMS to the contact number (through the outbox), an
application sent back for more information is resubmitted into the review queue, and a
merchant not approved gets no API app, store or portal account (MERCHANT_NOT_APPROVED)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from mobipay.app.bootstrap import Container, build
from mobipay.app.http import create_app
from mobipay.kernel.errors import MobipayError
from mobipay.merchants.model import MerchantState
from mobipay.merchants.signing import sign_hmac
from mobipay.platform.config import Settings
from mobipay.platform.db import Database
from tests.e2e.test_merchants_api import application

CONTACT = "+8613800138000"


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, Container]]:
    settings = Settings(_env_file=None, database_url=db_url, operators="rev:merchant_review;risk:risk",  # type: ignore[call-arg]
                        merchant_key_file=tmp_path / "platform.pem")
    container = build(settings)
    with TestClient(create_app(settings, container)) as client:
        yield client, container


def told(db_url: str) -> list[tuple[str, str]]:
    """(template, reason) of the application SMS to the contact number, oldest first."""

    async def read() -> list[dict[str, Any]]:
        db = Database(db_url)
        async with db.begin() as conn:
            rows = (await conn.execute(text("SELECT payload FROM outbox_messages WHERE topic = 'sms.send' "
                                            "ORDER BY created_at, id"))).scalars().all()
        await db.dispose()
        return [json.loads(r) for r in rows]

    return [(p["template"], p["params"]["reason"]) for p in asyncio.run(read())
            if p["to"] == CONTACT and p["template"].startswith("merchant_application.")]


def refusal(client: TestClient, call: Any) -> str:
    with pytest.raises(MobipayError) as info:
        client.portal.call(call)  # type: ignore[union-attr]
    return info.value.code


def test_status_decisions_and_resubmission(world: tuple[TestClient, Container], db_url: str) -> None:
    client, c = world
    sent = client.post("/v1/merchant-applications", json=application(mcc="5732"))  # electronics: reviewed
    assert sent.status_code == 201, sent.text
    mid, token = sent.json()["id"], sent.json()["application_token"]
    status = f"/v1/merchant-applications/{mid}"
    mine = {"Authorization": f"Bearer {token}"}

    assert client.get(status).json()["code"] == "UNAUTHORIZED"
    for url, auth in ((status, "Bearer mat_guess"), ("/v1/merchant-applications/mch_nope", mine["Authorization"])):
        r = client.get(url, headers={"Authorization": auth})  # a wrong token and an unknown id look the same
        assert r.status_code == 404 and r.json()["code"] == "APPLICATION_NOT_FOUND"
    seen = client.get(status, headers=mine).json()
    assert (seen["state"], seen["resubmittable"]) == ("submitted", False)
    assert told(db_url) == [("merchant_application.submitted", "")]

    client.portal.call(lambda: c.merchants.review(mid, MerchantState.MORE_INFO, actor="rev",  # type: ignore[union-attr]
                                                  reason="upload the business licence"))
    seen = client.get(status, headers=mine).json()
    assert (seen["state"], seen["reason"], seen["resubmittable"]) == ("more_info", "upload the business licence", True)
    assert told(db_url)[-1] == ("merchant_application.more_info", "upload the business licence")
    assert mid not in [m.id for m in client.portal.call(c.merchants.review_queue)]  # type: ignore[union-attr]

    resubmission = f"/v1/merchant-applications/{mid}/resubmission"
    bad = client.post(resubmission, headers=mine, json={"note": "new number", "contact_msisdn": "12345"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "contact_msisdn", bad.text
    assert client.post(resubmission, json={"note": "x"}).json()["code"] == "UNAUTHORIZED"
    assert client.get(status, headers=mine).json()["state"] == "more_info"  # refused: nothing changed
    again = client.post(resubmission, headers=mine, json={"note": "licence on the website",
                                                           "website": "https://book.example/licence"})
    assert again.status_code == 200, again.text
    assert (again.json()["state"], again.json()["applicant_note"]) == ("submitted", "licence on the website")
    assert [m.id for m in client.portal.call(c.merchants.review_queue)] == [mid]  # type: ignore[union-attr]
    twice = client.post(resubmission, headers=mine, json={"note": "again"})
    assert twice.status_code == 409 and twice.json()["code"] == "MERCHANT_STATE_INVALID"

    assert refusal(client, lambda: c.merchants.create_app(mid, "HMAC")) == "MERCHANT_NOT_APPROVED"
    assert refusal(client, lambda: c.merchant_operators.create(mid, "owner", "a-long-password-1", "246810",
                                                               role="owner")) == "MERCHANT_NOT_APPROVED"
    client.portal.call(lambda: c.merchants.review(mid, MerchantState.REJECTED, actor="rev",  # type: ignore[union-attr]
                                                  reason="licence expired"))
    assert told(db_url)[-1] == ("merchant_application.rejected", "licence expired")
    assert client.get(status, headers=mine).json()["state"] == "rejected"
    assert refusal(client, lambda: c.merchants.create_app(mid, "HMAC")) == "MERCHANT_NOT_APPROVED"
    merchant = client.portal.call(lambda: c.merchants.merchant(mid))  # type: ignore[union-attr]
    assert refusal(client, lambda: c.merchants.add_store(merchant, "旗舰店")) == "MERCHANT_NOT_APPROVED"

    async def counts() -> tuple[int, int, int]:
        async with c.db.begin() as conn:
            return tuple([int((await conn.execute(text(f"SELECT count(*) FROM {t} WHERE merchant_id = :m"),  # type: ignore[return-value]
                                                   {"m": mid})).scalar_one())
                          for t in ("merchant_apps", "merchant_stores", "merchant_operators")])

    assert client.portal.call(counts) == (0, 0, 0)


def test_a_terminated_merchant_cannot_add_stores_over_the_api(world: tuple[TestClient, Container]) -> None:
    client, c = world
    sent = client.post("/v1/merchant-applications", json=application()).json()  # book store: approved by rule
    mid = sent["id"]
    assert sent["state"] == "approved"
    app_id, key = client.portal.call(lambda: c.merchants.create_app(mid, "HMAC"))  # type: ignore[union-attr]

    def add_store(nonce: str) -> Any:
        body: dict[str, Any] = {"app_id": app_id, "timestamp": str(int(time.time())), "nonce": nonce,
                                "sign_type": "HMAC", "name": "旗舰店"}
        body["sign"] = sign_hmac(body, key.encode())
        return client.post("/v1/merchant/stores", json=body)

    assert add_store("n-00000001").status_code == 201
    client.portal.call(lambda: c.merchants.review(mid, MerchantState.TERMINATED, actor="risk",  # type: ignore[union-attr]
                                                  reason="contract ended"))
    refused = add_store("n-00000002")
    assert refused.status_code == 403 and refused.json()["code"] == "MERCHANT_NOT_APPROVED", refused.text
