"""The README's tour, replayed: the client app's sign-in (SMS code → session → a bearer
token that works) with the very bodies the README shows, so the steps a newcomer copies
keep working."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mobipay.app.http import create_app
from mobipay.platform.config import Settings
from tests.e2e.test_wallet_api import last_code, signed_up

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


@pytest.fixture
def client(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(_env_file=None, database_url=db_url, merchant_key_file=tmp_path / "p.pem")  # type: ignore[call-arg]
    with TestClient(create_app(settings)) as c:
        yield c


def test_the_readme_gets_a_session_token(client: TestClient, db_url: str) -> None:
    otp = json.loads(re.search(r"localhost:8000/v1/otp .*-d '(\{[^']*\})'", README).group(1))  # type: ignore[union-attr]
    head, tail = re.search(r"""-d '(\{"msisdn"[^']*"code":")'\$CODE'("[^']*\})'""", README).groups()  # type: ignore[union-attr]
    assert "/v1/sessions" in README and 'A=\'Authorization: Bearer <access_token>\'' in README
    signed_up(client, db_url, otp["msisdn"].removeprefix("+86"))  # a demo subscriber has a wallet already

    assert client.post("/v1/otp", json=otp).status_code == 202
    session = client.post("/v1/sessions", json=json.loads(head + last_code(db_url) + tail))
    assert session.status_code == 201, session.text
    me = client.get("/v1/me", headers={"Authorization": f"Bearer {session.json()['access_token']}"})
    assert me.status_code == 200 and me.json()["msisdn"] == "+86" + otp["msisdn"].removeprefix("+86")

    new = re.search(r'POST /v1/otp (\{"msisdn":"(\d+)"\}) \(purpose\s+#?\s*register', README)
    assert new, "the README shows how a new number signs up"
    assert client.post("/v1/otp", json=json.loads(new.group(1))).status_code == 202
    signup = client.post("/v1/users", json={"msisdn": new.group(2), "code": last_code(db_url)})
    assert signup.status_code == 201, signup.text
