"""The edge (platform/edge.py) as a plain ASGI layer: limits per route class checked before
the body is read, chunked bodies counted, control characters and deep JSON refused, and a
good request handed on with its body whole."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mobipay.kernel.errors import MobipayError
from mobipay.platform.edge import LIMITS, MAX_JSON_DEPTH, Edge, limit_for


async def _refusal(request: Request, exc: MobipayError) -> Response:
    return JSONResponse({"code": exc.code, "field": exc.field, "detail": exc.detail}, status_code=exc.status,
                        media_type="application/problem+json")


class _App:
    """The app behind the edge: records what reached it."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        message = await receive()
        assert message["more_body"] is False  # the edge hands the body on whole
        self.bodies.append(message["body"])
        await JSONResponse({"ok": True})(scope, receive, send)


def _scope(path: str, *, query: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None,
           method: str = "POST") -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "query_string": query, "headers": headers or [],
            "state": {}, "raw_path": path.encode()}


async def _call(scope: dict[str, Any], chunks: list[bytes], *, endless: bool = False
                ) -> tuple[int, dict[str, Any], int, _App]:
    """Run the edge; (status, JSON answer, receive() calls, the app)."""
    app, sent, calls = _App(), [], 0

    async def receive() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if endless:
            return {"type": "http.request", "body": b"x" * 4096, "more_body": True}
        if calls > len(chunks):
            raise AssertionError("the edge read past the end of the body")
        return {"type": "http.request", "body": chunks[calls - 1], "more_body": calls < len(chunks)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await Edge(app, _refusal)(scope, receive, send)
    status = sent[0]["status"]
    body = json.loads(b"".join(m.get("body", b"") for m in sent[1:]))
    return status, body, calls, app


def test_every_path_has_a_limit_by_its_class() -> None:
    assert limit_for("/v1/transfers") == (16 * 1024, "JSON API")
    assert limit_for("/v1/ledger/transfers") == (64 * 1024, "ledger API")
    assert limit_for("/v1/merchant/trades") == (32 * 1024, "merchant API")
    assert limit_for("/merchant/apps") == (32 * 1024, "forms")
    assert limit_for("/sms/inbound") == (8 * 1024, "SMS callbacks")
    assert limit_for("/voice/vxml/next") == (8 * 1024, "voice callbacks")
    assert limit_for("/healthz")[0] == LIMITS[-1][1]


async def test_a_declared_length_over_the_limit_is_refused_before_reading() -> None:
    scope = _scope("/v1/transfers", headers=[(b"content-length", b"104857600")])
    status, body, calls, app = await _call(scope, [])
    assert (status, body["code"], calls, app.bodies) == (413, "PAYLOAD_TOO_LARGE", 0, [])
    status, body, calls, _ = await _call(_scope("/v1/transfers", headers=[(b"content-length", b"12x")]), [])
    assert (status, body["code"], calls) == (400, "VALIDATION_FAILED", 0)


async def test_a_chunked_body_is_counted_and_cut_at_the_limit() -> None:
    status, body, calls, app = await _call(_scope("/v1/transfers"), [], endless=True)
    assert (status, body["code"], app.bodies) == (413, "PAYLOAD_TOO_LARGE", [])
    assert calls == 16 * 1024 // 4096 + 1  # it stopped reading at the first chunk past 16 KiB


async def test_a_body_within_the_limit_reaches_the_app_whole() -> None:
    chunks = [b'{"legs": [', b"1," * 10_000, b"1]}"]  # 20 KiB: over the JSON API's limit, within the ledger's
    status, _, _, app = await _call(_scope("/v1/ledger/transfers"), chunks)
    assert status == 200 and app.bodies == [b"".join(chunks)]
    status, body, _, _ = await _call(_scope("/v1/transfers"), chunks)
    assert (status, body["code"]) == (413, "PAYLOAD_TOO_LARGE")


@pytest.mark.parametrize(("scope", "chunks", "field"), [
    (_scope("/v1/billers/a\x00b", method="GET"), [b""], "path"),
    (_scope("/v1/billers", query=b"q=a%00b", method="GET"), [b""], "q"),
    (_scope("/v1/billers", query=b"q=a%C2%85b", method="GET"), [b""], "q"),  # C1: NEXT LINE
    (_scope("/v1/billers", query=b"city=%0A", method="GET"), [b""], "city"),
    (_scope("/v1/transfers", headers=[(b"idempotency-key", b"k\x01")]), [b"{}"], "Idempotency-Key"),
    (_scope("/v1/transfers", headers=[(b"idempotency-key", b"k\tx")]), [b"{}"], "Idempotency-Key"),
    (_scope("/v1/transfers"), [b'{"to": "139\\u00000139000"}'], "to"),
    (_scope("/v1/transfers"), [b'{"to": "139\\n"}'], "to"),
    (_scope("/v1/transfers"), [b'{"amount": {"cur\\u0001": 1}}'], "amount.cur\x01"),
    (_scope("/v1/ledger/transfers"), [b'{"legs": [{"account": "a\\u001fb"}]}'], "legs[0].account"),
    (_scope("/v1/ledger/transfers"), [b'{"metadata": {"k": "\\u0000"}}'], "metadata.k"),
    (_scope("/v1/merchant/trades"), [b'{"subject": "\x7f"}'], "subject"),
    (_scope("/v1/transfers"), [b'{"to": "1\x00"}'], "body"),  # a raw NUL: not even JSON
    (_scope("/m/transfer", headers=[(b"content-type", b"application/x-www-form-urlencoded")]),
     [b"to=139%00&amount=1"], "to"),
])
async def test_control_characters_are_refused_naming_the_field(scope: dict[str, Any], chunks: list[bytes],
                                                                field: str) -> None:
    status, body, _, app = await _call(scope, chunks)
    assert (status, body["code"], body["field"], app.bodies) == (400, "CONTROL_CHARACTER", field, [])


@pytest.mark.parametrize(("scope", "chunks"), [
    (_scope("/v1/transfers"), [b'{"to": "13900139000", "note": "line one\\nline two\\t\\r"}']),
    (_scope("/v1/ledger/transfers"), [b'{"metadata": {"lines": ["a\\nb"]}, "reference": "x\\ty"}']),
    (_scope("/v1/transfers"), [b'{\n\t"to": "13900139000",\r\n "note": "\\u8336 \\"\\\\u0000\\""}']),
    (_scope("/sms/inbound", query=b"from=%2B8613800138000&text=ZZ%0A139", method="GET"), [b""]),
    (_scope("/m/transfer", headers=[(b"content-type", b"application/x-www-form-urlencoded")]),
     [b"to=13900139000&note=a%0D%0Ab"]),
    (_scope("/v1/transfers", headers=[(b"user-agent", b"curl\t8")]), [b"{}"]),
    (_scope("/v1/transfers"), [b"not json at all"]),  # the route answers that
])
async def test_what_is_legitimate_passes(scope: dict[str, Any], chunks: list[bytes]) -> None:
    status, _, _, app = await _call(scope, chunks)
    assert status == 200 and app.bodies == [b"".join(chunks)]


async def test_deep_json_is_refused_shallow_json_passes() -> None:
    deep = b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1)
    status, body, _, _ = await _call(_scope("/v1/transfers"), [deep])
    assert (status, body["code"]) == (400, "VALIDATION_FAILED") and "nested" in body["detail"]
    many = b'{"bets": [' + b",".join([b"[[1,2],[3]]"] * 200) + b'], "s": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}'
    status, _, _, app = await _call(_scope("/v1/lottery/tickets"), [many])
    assert status == 200 and app.bodies == [many]  # many brackets, little depth; brackets in strings do not count
