"""The funders' bulk API over HTTP on both databases: signed requests (a bad signature, a
replayed nonce), the CSV upload with its SHA-256 and Idempotency-Key (replayed, conflicting,
tampered), maker-checker, the worker's run, status and the result file."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mobipay.app.bootstrap import Container, build
from mobipay.app.http import create_app
from mobipay.campaigns.bulk_model import sign
from mobipay.platform.config import Settings
from tests.e2e.test_console import operator, sign_in

FILE = ("row_id,msisdn,name,amount_yuan,note\n"
        "S0001,13800138000,王小明,500.00,2026助学金\n"
        "S0002,13800138001,李华,500,2026助学金\n"
        "S0003,12345,张三,500,2026助学金\n").encode()


@pytest.fixture
def live(db_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, Container]]:
    settings = Settings(_env_file=None, database_url=db_url, merchant_key_file=tmp_path / "platform.pem",
                        report_dir=tmp_path / "reports", campaign_dir=tmp_path / "campaigns")
    container = build(settings)
    with TestClient(create_app(settings, container)) as c:
        yield c, container


def signed(client: TestClient, method: str, path: str, key_id: str, secret: str, body: bytes = b"",
           headers: dict[str, str] | None = None, params: dict[str, Any] | None = None,
           nonce: str | None = None) -> Any:
    stamp, nonce = str(int(time.time())), nonce or secrets.token_hex(8)
    head = {"X-Funder-Key": key_id, "X-Timestamp": stamp, "X-Nonce": nonce,
            "X-Signature": sign(secret, stamp, nonce, method, path, body), **(headers or {})}
    return client.request(method, path, content=body, headers=head, params=params)


def test_upload_approve_run_and_results_over_http(live: tuple[TestClient, Container]) -> None:
    client, c = live
    portal: Any = client.portal

    async def setup() -> tuple[Any, str, Any, str, Any]:
        await c.ensure_system_accounts()
        await c.wallet.create_user("13800138000", actor="t", reason="t")
        funder = await c.bulk.create_funder("邵阳一中", "13800138099", actor="ops", reason="t")
        maker, maker_key = await c.bulk.add_member(funder.id, "刘会计", ["maker"], actor="ops", reason="t")
        checker, checker_key = await c.bulk.add_member(funder.id, "陈主任", ["checker"], actor="ops", reason="t")
        await c.bulk.deposit(funder.id, 100_000, reference="B1", actor="ops")
        campaign = await c.bulk.create_campaign(funder.id, "助学金", actor="ops")
        await c.bulk.fund_campaign(campaign.id, 100_000, idempotency_key="f1", actor="ops")
        return maker, maker_key, checker, checker_key, campaign

    maker, maker_key, checker, checker_key, campaign = portal.call(setup)
    path = "/v1/campaigns/bulk/batches"
    digest = hashlib.sha256(FILE).hexdigest()
    upload: dict[str, Any] = {"headers": {"Content-Type": "text/csv", "X-File-SHA256": digest, "Idempotency-Key": "u1"},
              "params": {"campaign_id": campaign.id, "file_name": "grant.csv", "max_invalid_pct": 50}}

    r = signed(client, "POST", path, maker.id, "0" * 64, FILE, **upload)
    assert r.status_code == 401 and r.json()["code"] == "UNAUTHORIZED"
    tampered: dict[str, Any] = {**upload, "headers": {**upload["headers"],
                                                      "X-File-SHA256": hashlib.sha256(b"x").hexdigest()}}
    r = signed(client, "POST", path, maker.id, maker_key, FILE, **tampered)
    assert r.status_code == 422 and r.json()["code"] == "BULK_FILE_HASH_MISMATCH"
    r = signed(client, "POST", path, maker.id, maker_key, FILE, **upload, nonce="nonce-0001")
    assert r.status_code == 201, r.text
    batch = r.json()
    assert batch["state"] == "awaiting_approval" and batch["summary"]["rows_valid"] == 2
    r = signed(client, "POST", path, maker.id, maker_key, FILE, **upload, nonce="nonce-0001")
    assert r.status_code == 401 and "replayed" in r.json()["detail"]
    r = signed(client, "POST", path, maker.id, maker_key, FILE, **upload)
    assert r.status_code == 200 and r.headers["Idempotent-Replayed"] == "true" and r.json()["id"] == batch["id"]
    other = FILE.replace(b"500,", b"400,")
    conflict: dict[str, Any] = {**upload, "headers": {**upload["headers"],
                                                      "X-File-SHA256": hashlib.sha256(other).hexdigest()}}
    r = signed(client, "POST", path, maker.id, maker_key, other, **conflict)
    assert r.status_code == 409 and r.json()["code"] == "IDEMPOTENCY_CONFLICT"

    approval = f"{path}/{batch['id']}/approval"
    r = signed(client, "POST", approval, maker.id, maker_key)
    assert r.status_code == 403 and r.json()["code"] == "BULK_ROLE_REQUIRED"
    r = signed(client, "POST", approval, checker.id, checker_key)
    assert r.status_code == 200 and r.json()["state"] == "approved" and r.json()["approved_by"] == checker.id

    async def worker() -> None:  # the outbox worker's round: the approval's event runs the batch
        await c.outbox_worker().run_once()

    portal.call(worker)
    r = signed(client, "GET", f"{path}/{batch['id']}", checker.id, checker_key)
    s = r.json()["summary"]
    assert r.json()["state"] == "completed" and (s["paid_rows"], s["waiting_for_registration_rows"]) == (1, 1)
    assert s["paid"] == {"amount": 50_000, "currency": "CNY"} and s["rows_invalid"] == 1
    r = signed(client, "GET", f"{path}/{batch['id']}/results", maker.id, maker_key)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    lines = r.text.splitlines()
    assert lines[0] == "row_id,msisdn,name,amount_fen,note,status,error_code,transfer_id"
    assert lines[1].startswith("S0001,+8613800138000,王小明,50000,2026助学金,paid,,bulk:")
    assert ",waiting_for_registration,," in lines[2]
    assert lines[3].startswith("S0003,12345,张三,0,2026助学金,invalid,INVALID_MSISDN")
    r = signed(client, "GET", f"{path}/{batch['id']}/rows", maker.id, maker_key, params={"limit": 2})
    assert [i["status"] for i in r.json()["items"]] == ["paid", "waiting_for_registration"] and r.json()["next"] == "2"
    balances = portal.call(c.ledger.accounts, [campaign.account_code, "wallet:+8613800138000"])
    assert [balances[campaign.account_code].balance, balances["wallet:+8613800138000"].balance] == [0, 50_000]

    # the operator's console shows the batch, its figures and the row not paid
    operator(client, "ops-bulk", "operations")
    sign_in(client, "ops-bulk")
    page = client.get("/console/bulk")
    assert page.status_code == 200 and batch["id"][:16] in page.text and "邵阳一中" in page.text
    detail = client.get(f"/console/bulk/{batch['id']}")
    assert detail.status_code == 200 and "INVALID_MSISDN" in detail.text and "grant.csv" in detail.text
    assert client.get("/console/bulk/bdb_nothing").status_code == 404
    operator(client, "support-bulk", "support")
    sign_in(client, "support-bulk")
    assert client.get("/console/bulk").status_code == 403
