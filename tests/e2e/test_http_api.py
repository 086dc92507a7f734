"""The HTTP API end to end (real app, real database, lifespan included): health, metrics,
OpenAPI, the ledger endpoints, idempotency and problem+json errors."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from mobipay.app.http import create_app, create_served_app
from mobipay.platform.config import Settings

AUTH = {"Authorization": "Bearer demo-admin-token"}


@pytest.fixture
def client(db_url: str) -> Iterator[TestClient]:
    settings = Settings(_env_file=None, database_url=db_url, log_json=True)  # type: ignore[call-arg]
    with TestClient(create_app(settings)) as c:
        for code, kind, flag in (("bank", "asset", False), ("alice", "liability", True), ("bob", "liability", True)):
            r = c.post("/v1/ledger/accounts", headers=AUTH,
                       json={"code": code, "kind": kind, "debits_must_not_exceed_credits": flag})
            assert r.status_code == 201, r.text
        yield c


def test_a_served_app_freezes_what_start_up_built(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``mobipay serve``'s app moves start-up's objects out of the collector's sight (a full
    collection walked them all, pausing every request 100+ ms); apps built for tests do not."""
    monkeypatch.setenv("MOBIPAY_DATABASE_URL", db_url)
    gc.unfreeze()
    try:
        with TestClient(create_app(Settings(_env_file=None, database_url=db_url))):  # type: ignore[call-arg]
            assert gc.get_freeze_count() == 0
        with TestClient(create_served_app()) as c:
            assert gc.get_freeze_count() > 10_000
            assert c.get("/readyz").status_code == 200
    finally:
        gc.unfreeze()


def transfer(src: str, dst: str, amount: object, **extra: object) -> dict[str, object]:
    return {"code": "p2p", "legs": [{"account": src, "side": "debit", "amount": {"amount": amount}},
                                    {"account": dst, "side": "credit", "amount": {"amount": amount}}], **extra}


def post(c: TestClient, key: str | None, body: dict[str, object], path: str = "/v1/ledger/transfers"):  # type: ignore[no-untyped-def]
    headers = {**AUTH, **({"Idempotency-Key": key} if key else {})}
    return c.post(path, headers=headers, json=body)


def balance(c: TestClient, code: str) -> int:
    r = c.get(f"/v1/ledger/accounts/{code}", headers=AUTH)
    assert r.status_code == 200
    amount: int = r.json()["balance"]["amount"]
    return amount


def test_health_readiness_metrics_docs(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    r = client.get("/healthz", headers={"X-Request-Id": "req-abc"})
    assert r.headers["X-Request-Id"] == "req-abc"
    assert "mobipay_http_requests_total" in client.get("/metrics").text
    spec = client.get("/openapi.json").json()
    assert "/v1/ledger/transfers" in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_transfer_replay_conflict_and_statement(client: TestClient) -> None:
    assert post(client, "fund-1", transfer("bank", "alice", 1000)).status_code == 201
    r = post(client, "t-1", transfer("alice", "bob", 250, reference="午饭"))
    assert r.status_code == 201 and r.json()["legs"][0]["amount"] == {"amount": 250, "currency": "CNY"}
    again = post(client, "t-1", transfer("alice", "bob", 250, reference="午饭"))
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == r.json()
    conflict = post(client, "t-1", transfer("alice", "bob", 251))
    assert conflict.status_code == 409 and conflict.json()["code"] == "IDEMPOTENCY_CONFLICT"
    assert conflict.headers["content-type"] == "application/problem+json"
    assert (balance(client, "alice"), balance(client, "bob")) == (750, 250)
    page = client.get("/v1/ledger/accounts/alice/entries?limit=1", headers=AUTH).json()
    assert [e["transfer_id"] for e in page["items"]] == ["fund-1"] and page["next"] == "1"
    rest = client.get(f"/v1/ledger/accounts/alice/entries?after={page['next']}", headers=AUTH).json()
    assert [(e["transfer_id"], e["side"], e["balance_after"]["amount"]) for e in rest["items"]] == [
        ("t-1", "debit", 750)]
    assert rest["next"] is None


@pytest.mark.parametrize(("amount", "code"), [(1.5, "INVALID_AMOUNT"), ("100", "INVALID_AMOUNT"),
                                              (0, "INVALID_AMOUNT"), (-3, "INVALID_AMOUNT"), (1e3, "INVALID_AMOUNT")])
def test_bad_amounts_are_refused_and_change_nothing(client: TestClient, amount: object, code: str) -> None:
    assert post(client, "fund-1", transfer("bank", "alice", 1000)).status_code == 201
    r = post(client, "bad", transfer("alice", "bob", amount))
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["code"] == code and body["status"] == 400 and body["errors"][0]["code"] == code
    assert body["request_id"]
    assert (balance(client, "alice"), balance(client, "bob")) == (1000, 0)


def test_business_refusals_are_specific(client: TestClient) -> None:
    r = post(client, "t-x", transfer("alice", "bob", 10))
    assert r.status_code == 422 and r.json()["code"] == "INSUFFICIENT_FUNDS"
    unbalanced = {"code": "p2p", "legs": [{"account": "bank", "side": "debit", "amount": {"amount": 10}},
                                          {"account": "bob", "side": "credit", "amount": {"amount": 9}}]}
    r = post(client, "t-y", unbalanced)
    assert r.status_code == 400 and r.json()["code"] == "UNBALANCED_TRANSFER"
    r = post(client, "t-z", transfer("bank", "nobody", 10))
    assert r.status_code == 404 and r.json()["code"] == "ACCOUNT_NOT_FOUND"
    r = post(client, None, transfer("bank", "bob", 10))
    assert r.status_code == 400 and r.json()["code"] == "IDEMPOTENCY_KEY_REQUIRED"
    r = client.post("/v1/ledger/transfers", headers={"Idempotency-Key": "k"}, json=transfer("bank", "bob", 10))
    assert r.status_code == 401 and r.json()["code"] == "UNAUTHORIZED"
    r = client.post("/v1/ledger/transfers", headers={**AUTH, "Idempotency-Key": "k"}, content=b"{not json")
    assert r.status_code == 400 and r.json()["code"] == "VALIDATION_FAILED"
    assert client.get("/v1/ledger/transfers/nope", headers=AUTH).json()["code"] == "TRANSFER_NOT_FOUND"
    assert (balance(client, "alice"), balance(client, "bob")) == (0, 0)


def test_hold_post_void_and_reversal(client: TestClient) -> None:
    assert post(client, "fund-1", transfer("bank", "alice", 1000)).status_code == 201
    hold = post(client, "h-1", transfer("alice", "bob", 400, pending=True, timeout_s=300))
    assert hold.status_code == 201 and hold.json()["type"] == "pending" and hold.json()["expires_at"]
    acc = client.get("/v1/ledger/accounts/alice", headers=AUTH).json()
    assert acc["available"]["amount"] == 600 and acc["balance"]["amount"] == 1000
    r = post(client, "p-1", {"amount": {"amount": 150}}, "/v1/ledger/transfers/h-1/post")
    assert r.status_code == 201 and r.json()["pending_id"] == "h-1"
    r = post(client, "v-1", {}, "/v1/ledger/transfers/h-1/void")
    assert r.status_code == 409 and r.json()["code"] == "PENDING_TRANSFER_ALREADY_POSTED"
    r = post(client, "r-1", {"reference": "refund"}, "/v1/ledger/transfers/p-1/reversals")
    assert r.status_code == 201 and r.json()["reversal_of"] == "p-1"
    assert (balance(client, "alice"), balance(client, "bob")) == (1000, 0)
    r = client.post("/v1/ledger/accounts/alice/freeze", headers=AUTH)
    assert r.json()["frozen"] is True
    assert post(client, "t-f", transfer("alice", "bob", 1)).json()["code"] == "ACCOUNT_FROZEN"


def test_openapi_declares_each_operations_problems_as_problem_json(client: TestClient) -> None:
    """Every operation lists the problem answers it can give (401 when signed in, 404 for an
    object in its path, 409 with an Idempotency-Key, 429 when rate limited, 413 for a body)
    as application/problem+json with the Problem schema (the WeChat Pay and Alipay edges also
    their protocol's own refusal, marked x-own-shape); FastAPI's 422 HTTPValidationError,
    which the platform never sends, is gone."""
    spec = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    assert spec["components"]["schemas"]["Problem"]["required"] == ["type", "title", "status", "code", "detail"]
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            responses = op["responses"]
            for status, answer in responses.items():
                if int(status) >= 400:
                    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
                    if answer.get("x-own-shape"):  # a foreign protocol's refusal, and the edge's problems
                        assert path.startswith(("/v3/", "/gateway.do")), (method, path, status)
                        assert answer["content"].items() >= problem.items(), (method, path, status)
                        continue
                    assert answer["content"] == problem, (method, path, status)
            assert "400" in responses, (method, path)
            names = {(p["in"], p["name"].lower()) for p in op.get("parameters", [])}
            if op.get("security"):
                assert "401" in responses, (method, path)
            if any(where == "path" for where, _ in names):
                assert "404" in responses, (method, path)
            if ("header", "idempotency-key") in names:
                assert "409" in responses, (method, path)
            if "requestBody" in op:
                assert "413" in responses, (method, path)
    assert "429" in spec["paths"]["/v1/otp"]["post"]["responses"]
    assert "429" in spec["paths"]["/v1/transfers"]["post"]["responses"]
    assert "422" in spec["paths"]["/v1/transfers"]["post"]["responses"]  # INSUFFICIENT_FUNDS and the like
