"""The edge over HTTP (platform/edge.py): on both databases the inputs that gave 500s on
PostgreSQL (NUL in a path, a search, an application) are refused with CONTROL_CHARACTER
and change nothing; deep JSON is a problem+json 400 through the transfer lane and the
merchant API; and against a live server a 100 MB body, declared or chunked, is refused
with 413 before it is read."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mobipay.app.http import create_app
from mobipay.platform.config import Settings
from tests.e2e.test_merchants_api import application
from tests.e2e.test_wallet_api import balance, bearer, fund, login_by_sms, signed_up
from tests.support.live import live_server

ADMIN = {"Authorization": "Bearer demo-admin-token"}


@pytest.fixture
def client(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(_env_file=None, database_url=db_url,  # type: ignore[call-arg]
                        merchant_key_file=tmp_path / "platform.pem")
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def _refused(r: object, field: str) -> None:
    response = r  # an httpx.Response
    assert response.status_code == 400, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert body["code"] == "CONTROL_CHARACTER" and body["errors"] == [{"field": field, "code": "CONTROL_CHARACTER"}]


def test_nul_bytes_are_refused_at_the_edge(client: TestClient, db_url: str) -> None:
    _refused(client.get("/v1/billers/a%00b"), "path")
    _refused(client.get("/v1/billers?q=a%00b"), "q")
    _refused(client.post("/v1/merchant-applications", json=application(name="书\u0000店")), "name")
    _refused(client.get("/v1/ledger/accounts/a%00b", headers=ADMIN), "path")
    _refused(client.post("/v1/otp", json={"msisdn": "138\u00000138000"}), "msisdn")
    _refused(client.get("/v1/billers", headers={"X-Request-Id": "r\x01"}), "X-Request-Id")
    assert client.post("/v1/merchant-applications", json=application()).status_code == 201  # nothing was stored
    signed_up(client, db_url, "13800138000")
    signed_up(client, db_url, "13900139000")
    alice = login_by_sms(client, db_url, "13800138000", "a")
    fund(client, "13800138000", 10_000)
    for body in ({"to": "13900139000\u0000", "amount": {"amount": 100}},
                 {"to": "13900139000", "amount": {"amount": 100}, "note": "茶\u0000"},
                 {"to": "13900139000\n", "amount": {"amount": 100}}):
        r = client.post("/v1/transfers", json=body, headers={**bearer(alice), "Idempotency-Key": "k1"})
        _refused(r, "note" if "note" in body else "to")
    ok = client.post("/v1/transfers", json={"to": "13900139000", "amount": {"amount": 100}, "note": "午饭\n谢谢"},
                     headers={**bearer(alice), "Idempotency-Key": "k1"})
    assert ok.status_code == 201, ok.text  # a line break in a note is fine, and the key was never used
    assert balance(client, alice) == 9_900


def test_deep_json_is_a_problem_not_a_500(client: TestClient, db_url: str) -> None:
    signed_up(client, db_url, "13800138000")
    alice = login_by_sms(client, db_url, "13800138000", "a")
    deep = b"[" * 5_000 + b"]" * 5_000  # 10 KB: within the limit, so it reaches the parsers without the edge
    for path, headers in (("/v1/transfers", {**bearer(alice), "Idempotency-Key": "k"}), ("/v1/merchant/trades", {}),
                          ("/v1/ledger/transfers", {**ADMIN, "Idempotency-Key": "k"})):
        r = client.post(path, content=deep, headers={**headers, "Content-Type": "application/json"})
        assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json", (path, r.text)
        assert r.json()["code"] == "VALIDATION_FAILED" and "nested" in r.json()["detail"]


def _raw(url: str, head: bytes, body: bytes = b"", *, chunks: int = 0) -> tuple[bytes, int]:
    """Send a request on a raw socket; (the answer, bytes of body the server let us send)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(head + body)
        sent = len(body)
        s.setblocking(False)
        answer = b""
        for _ in range(chunks):
            try:
                answer += s.recv(65536)
                break  # the server answered: stop sending
            except BlockingIOError:
                pass
            try:
                s.sendall(b"%x\r\n" % 65536 + b"x" * 65536 + b"\r\n")
                sent += 65536
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                break
        s.setblocking(True)
        deadline = time.monotonic() + 30

        def whole(answer: bytes) -> bool:  # the headers and as much body as they announce
            head, sep, body = answer.partition(b"\r\n\r\n")
            if not sep:
                return False
            length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            return length is None or len(body) >= int(length.group(1))

        while not whole(answer) and time.monotonic() < deadline:
            try:
                more = s.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not more:
                break
            answer += more
        return answer, sent


def test_a_live_server_refuses_100_mb_before_reading_it(sqlite_url: str, tmp_path: Path) -> None:
    with live_server(sqlite_url, tmp_path / "server.log") as url:
        head = (b"POST /v1/merchant-applications HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 104857600\r\n\r\n")
        started = time.monotonic()
        answer, _ = _raw(url, head, b'{"name": "')
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
        assert b"application/problem+json" in answer and b"PAYLOAD_TOO_LARGE" in answer
        assert time.monotonic() - started < 5  # answered at once: it never waited for the 100 MB
        chunked = (b"POST /v1/transfers HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n")
        answer, sent = _raw(url, chunked, chunks=1_600)  # up to 100 MB, if the server kept reading
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
        assert sent < 8 * 1024 * 1024  # it stopped us near the 16 KiB limit (plus the socket buffers)
