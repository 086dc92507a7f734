"""The API while its PostgreSQL server is down: every request is answered 503
``SERVICE_UNAVAILABLE`` problem+json with ``Retry-After`` (a dependency is down: try again
with the same Idempotency-Key), not a 500 "bug" with a traceback logged per request; and
the API answers again as soon as the server is back. Found by the kill -9 suite (80
requests answered 500 during one restart). The server is this test's own
(tests/support/postgres.py): the shared one is never stopped."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mobipay.app.http import create_app
from mobipay.app.migrate import upgrade
from mobipay.platform.config import Settings
from tests.conftest import free_port
from tests.support.load import pin_for
from tests.support.postgres import BIN, OwnPostgres, own_postgres
from tests.support.waiting import wait_for

pytestmark = pytest.mark.skipif(not (BIN / "initdb").exists(), reason=f"PostgreSQL server binaries not in {BIN} "
                                "(apt-get install -y postgresql); CI has them")

ALICE, BOB = "+8613800138000", "+8613900139000"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[TestClient, OwnPostgres, dict[str, str]]]:
    with own_postgres(free_port()) as pg:
        url = asyncio.run(pg.create_database("mobipay"))
        upgrade(url)
        settings = Settings(_env_file=None, database_url=url, env="test",  # type: ignore[call-arg]
                            merchant_key_file=tmp_path / "platform.pem")
        with TestClient(create_app(settings)) as client:  # a re-raised error would fail the test
            wallet = client.app.state.container.wallet  # type: ignore[attr-defined]

            async def sign_up() -> str:
                for number in (ALICE, BOB):
                    await wallet.create_user(number, actor="test", reason="outage test")
                await wallet.set_pin(ALICE, pin_for(ALICE))
                tokens = await wallet.login(ALICE, device_id="d", pin=pin_for(ALICE))
                return str(tokens.access_token)

            token = client.portal.call(sign_up)  # type: ignore[union-attr]
            yield client, pg, {"Authorization": f"Bearer {token}"}


def _requests(client: TestClient, auth: dict[str, str], n: int) -> list[Any]:
    key = {**auth, "Idempotency-Key": f"outage-{n}"}
    return [client.get("/v1/me", headers=auth),  # a route
            client.post("/v1/transfers", headers=key,  # the transfer lane
                        json={"to": "13900139000", "amount": {"amount": 10, "currency": "CNY"}}),
            client.post("/v1/topups", headers=key, json={"msisdn": "13800138000", "amount": {"amount": 1000}})]


def test_the_database_down_is_503_with_retry_after_then_the_api_is_back(
        served: tuple[TestClient, OwnPostgres, dict[str, str]]) -> None:
    client, pg, auth = served
    assert client.get("/v1/me", headers=auth).status_code == 200
    pg.crash()  # every pooled connection is cut; new ones are refused
    for n in range(2):  # the pool's dead connections first, then refused new ones
        for r in _requests(client, auth, n):
            assert r.status_code == 503, (r.request.url, r.status_code, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json()["code"] == "SERVICE_UNAVAILABLE" and r.headers["Retry-After"] == "1", r.text
    assert client.get("/readyz").status_code == 503
    pg.start()
    wait_for(lambda: client.get("/v1/me", headers=auth).status_code == 200, 60, "the API answering again")
    moved = client.post("/v1/transfers", headers={**auth, "Idempotency-Key": "outage-after"},
                        json={"to": "13900139000", "amount": {"amount": 10, "currency": "CNY"}})
    assert moved.status_code == 422 and moved.json()["code"] == "INSUFFICIENT_FUNDS", moved.text  # answered, not 5xx
