"""The URL Kannel calls for inbound SMS, over HTTP on both databases: deduplicated on
Kannel's message id (``%I``), and a message without one refused rather than taken as a
duplicate of the first message that had none (which silenced every later one)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from mobipay.app.http import create_app
from mobipay.channels.sms.tables import sms_inbound
from mobipay.platform.config import Settings

TOKEN = "test-sms-token"


@pytest.fixture
def client(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(_env_file=None, database_url=db_url, sms_inbound_token=TOKEN,  # type: ignore[call-arg]
                        merchant_key_file=tmp_path / "platform.pem")
    with TestClient(create_app(settings)) as c:
        yield c


def _stored(client: TestClient) -> int:
    async def work() -> int:
        async with client.app.state.container.db.begin() as conn:  # type: ignore[attr-defined]
            return int((await conn.execute(select(func.count()).select_from(sms_inbound))).scalar_one())

    return int(client.portal.call(work))  # type: ignore[union-attr]


def test_inbound_is_deduplicated_on_kannels_message_id(client: TestClient) -> None:
    def text(body: str, **extra: str):  # type: ignore[no-untyped-def]
        return client.get("/sms/inbound", params={"token": TOKEN, "from": "13800138000", "to": "10658888",
                                                  "text": body, **extra})

    for body in ("YE", "CX", "YE"):  # without an id: refused, never "already received"
        r = text(body)
        assert r.status_code == 400 and r.json()["code"] == "VALIDATION_FAILED", r.text
        assert r.json()["errors"][0]["field"] == "id" and "%I" in r.json()["detail"]
    assert text("YE", id="").status_code == 400
    assert _stored(client) == 0
    first = text("YE", id="5d2f1c1e-0001")
    assert first.status_code == 200 and first.headers["x-mobipay-duplicate"] == "0"
    other = text("YE", id="5d2f1c1e-0002")  # the same words again: a new message
    assert other.headers["x-mobipay-duplicate"] == "0"
    retried = text("YE", id="5d2f1c1e-0001")  # Kannel retrying the first one
    assert retried.status_code == 200 and retried.headers["x-mobipay-duplicate"] == "1"
    assert _stored(client) == 2
    refused = text("YE", id="x", token="wrong")
    assert refused.status_code == 401 and "bearer" not in refused.json()["title"].lower()
    assert refused.json()["title"] == "The SMS gateway's shared token is wrong or missing"
