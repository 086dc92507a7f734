"""The edge: what every HTTP request must be before any route, or the transfer lane, sees it.

One plain ASGI layer, in front of the app (and of :class:`~mobipay.wallet.api.TransferLane`,
which so needs no limit of its own), so that no route can forget a check:

- **A body within the limit of its route class** (:data:`LIMITS`): a ``Content-Length``
  over the limit is answered ``413 PAYLOAD_TOO_LARGE`` before a byte of the body is read;
  a chunked body is counted as it arrives and refused the moment it passes the limit. The
  body (bounded) is then handed on whole, so an unauthenticated client can no longer make
  the server hold 100 MB.
- **No control characters** (Unicode ``Cc``: U+0000-U+001F, U+007F-U+009F) in the path,
  the query, the headers the platform reads as values, JSON strings and keys, or form
  fields: ``400 CONTROL_CHARACTER`` naming the field. PostgreSQL refuses a NUL in text
  (it gave 500s on 20+ endpoints), and no identifier, number or name needs one. Tab, line
  feed and carriage return are allowed only in the values of free-text fields
  (:data:`FREE_TEXT`: a note, a description, an SMS text, a PEM key, a ledger reference…)
  and in headers other than those read as values (HTTP allows a tab there).
- **JSON nested at most** :data:`MAX_JSON_DEPTH` levels (deeper bodies made the parsers
  raise ``RecursionError``: 500s, and a plain-text one through the lane).

The common request (a small JSON body without escapes) costs a few regular-expression
scans in C: the hot path (``POST /v1/transfers``) keeps its throughput (docs/hardening.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mobipay.kernel.errors import ControlCharacter, MobipayError, PayloadTooLarge, ValidationFailed

KIB = 1024

#: Body limits per route class, by path prefix (the longest matching prefix wins). The one
#: file upload is a funder's batch file (CSV); the largest other bodies are a 64-leg ledger
#: transfer with 4 KiB of metadata and a merchant's PEM public key.
LIMITS: tuple[tuple[str, int, str], ...] = (
    ("/v1/ledger/", 64 * KIB, "ledger API"),
    ("/v1/merchant/", 32 * KIB, "merchant API"),
    ("/v1/merchant-applications", 16 * KIB, "merchant API"),
    ("/gateway", 32 * KIB, "Alipay-compatible gateway"),
    ("/v3/", 32 * KIB, "WeChat Pay-compatible API"),
    ("/v1/partner/", 16 * KIB, "partner API"),
    ("/v1/campaigns/bulk/", 16 * KIB * KIB, "bulk payment files"),  # a funder's batch file (CSV), not JSON
    # a claim photo (raw JPEG or PNG): the route refuses one over 5 MiB with its own code
    ("/v1/protection/photos", 5 * KIB * KIB + 4 * KIB, "claim photo"),
    # a tourism officer's evidence (a raw photo or recording): the route refuses one over 20 MiB with its own code
    ("/v1/tourism/evidence/", 20 * KIB * KIB + 4 * KIB, "evidence file"),
    ("/v1/", 16 * KIB, "JSON API"),
    ("/m/protection/claims", 16 * KIB * KIB, "claim form with photos"),  # multipart: a few photos of 5 MiB
    ("/m", 32 * KIB, "forms"),
    ("/merchant", 32 * KIB, "forms"),
    ("/console", 32 * KIB, "forms"),
    ("/cashier", 32 * KIB, "forms"),
    ("/sms/", 8 * KIB, "SMS callbacks"),
    ("/voice/", 8 * KIB, "voice callbacks"),
    ("", 16 * KIB, "other"),
)
_BY_LENGTH = tuple(sorted(LIMITS, key=lambda entry: -len(entry[0])))

#: Fields whose values are free text, where a tab or a line break is legitimate.
FREE_TEXT = frozenset({"note", "description", "text", "reference", "public_key", "address", "subject", "body",
                       "reason", "resolution", "metadata"})

#: Headers whose values the platform reads (ids, keys, tokens, signatures): no tab either.
VALUE_HEADERS = frozenset({b"authorization", b"idempotency-key", b"x-request-id", b"x-partner-id", b"x-timestamp",
                           b"x-nonce", b"x-signature", b"x-ivr-token", b"cookie"})

MAX_JSON_DEPTH = 32

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_NOT_WHITESPACE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_HEADER_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_TAB = re.compile(rb"\t")
#: Percent-escapes of a control character (C0, DEL, or C1 as UTF-8 ``C2 80``-``C2 9F``).
_ESCAPED_CONTROL = re.compile(rb"%[01][0-9a-fA-F]|%7[fF]|%[cC]2%[89][0-9a-fA-F]")
#: What can put a control character into a JSON string: an escape, DEL or C1 as is, or a
#: raw control byte (invalid inside a string; between tokens only tab, LF and CR may stand).
_JSON_SUSPECT = re.compile(rb"\\[ubfnrt]|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\xc2[\x80-\x9f]")
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")

Refusal = Callable[[Request, MobipayError], Awaitable[Response]]


def limit_for(path: str) -> tuple[int, str]:
    """The body limit of the route class ``path`` belongs to, and the class's name."""
    for prefix, limit, name in _BY_LENGTH:
        if path.startswith(prefix):
            return limit, name
    return LIMITS[-1][1], LIMITS[-1][2]  # pragma: no cover - the "" prefix matches every path


def _text_fault(value: str, field: str, free_text: bool) -> ControlCharacter | None:
    found = (_CONTROL_NOT_WHITESPACE if free_text else _CONTROL).search(value)
    if found is None:
        return None
    return ControlCharacter(f"{field} contains the control character U+{ord(found.group()):04X}; send text without "
                            "control characters" + (" (tab and line breaks are fine here)" if free_text else ""),
                            field=field)


def form_fault(fields: Iterable[tuple[str, Any]]) -> ControlCharacter | None:
    """The edge's control-character rule for a multipart form's text fields, which the edge
    does not parse (its files are binary): a route that takes uploads calls it."""
    for name, value in fields:
        if isinstance(value, str) and (fault := _text_fault(name, name or "body", False)
                                       or _text_fault(value, name, name in FREE_TEXT)):
            return fault
    return None


def _head_fault(scope: Scope) -> MobipayError | None:
    """A control character in the path, the query or a header, as a refusal."""
    if _CONTROL.search(scope["path"]):
        return _text_fault(scope["path"], "path", False)
    query: bytes = scope.get("query_string", b"")
    if query and (_ESCAPED_CONTROL.search(query) or _HEADER_CONTROL.search(query)):
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True, encoding="utf-8",
                                     errors="replace"):
            if fault := _text_fault(name, name or "query", False) or _text_fault(value, name, name in FREE_TEXT):
                return fault
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    joined = b" ".join(value for _, value in headers)
    if _HEADER_CONTROL.search(joined) or _TAB.search(joined):
        for header, raw in headers:
            if _HEADER_CONTROL.search(raw) or (header in VALUE_HEADERS and _TAB.search(raw)):
                shown = header.decode("latin-1").title()
                return ControlCharacter(f"the {shown} header contains a control character", field=shown)
    return None


def _json_depth_fault(body: bytes) -> MobipayError | None:
    if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:
        return None
    depth = 0
    for bracket in _BRACKET.findall(_JSON_STRING.sub(b'""', body)):
        depth += 1 if bracket in (b"[", b"{") else -1
        if depth > MAX_JSON_DEPTH:
            return ValidationFailed(f"the JSON body is nested more than {MAX_JSON_DEPTH} levels deep", field="body")
    return None


def _walk(value: Any, path: str, free_text: bool) -> Iterator[tuple[str, str, bool]]:
    """Every string of a JSON value (keys too) with its field path and whether it is free text."""
    if isinstance(value, str):
        yield value, path, free_text
    elif isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            yield str(key), child, False
            yield from _walk(item, child, free_text or key in FREE_TEXT)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _walk(item, f"{path}[{i}]", free_text)


def _body_fault(body: bytes, content_type: bytes) -> MobipayError | None:
    """A body too deep or carrying a control character, as a refusal (else None: the route
    decides, including on a body that is not valid JSON)."""
    if not body:
        return None
    if content_type.startswith(b"application/x-www-form-urlencoded"):
        if _ESCAPED_CONTROL.search(body) or _HEADER_CONTROL.search(body):
            for name, value in parse_qsl(body.decode("latin-1"), keep_blank_values=True, encoding="utf-8",
                                         errors="replace"):
                if fault := _text_fault(name, name or "body", False) or _text_fault(value, name, name in FREE_TEXT):
                    return fault
        return None
    if content_type.startswith(b"multipart/"):
        return None  # uploads (claim photos): the limit bounds it; the route checks its text (form_fault)
    if content_type.startswith((b"image/", b"audio/")):
        return None  # a raw photo or recording is binary: the route checks its magic bytes
    if depth := _json_depth_fault(body):
        return depth
    if not _JSON_SUSPECT.search(body):
        return None
    try:
        parsed = json.loads(body)
    except ValueError:  # not JSON: a raw control byte is refused, the rest left to the route
        text = body.decode("utf-8", errors="replace")
        return _text_fault(text, "body", True)
    for text, field, free_text in _walk(parsed, "", False):
        if fault := _text_fault(text, field or "body", free_text):
            return fault
    return None


class Edge:
    """The ASGI layer described in the module docstring; ``refusal`` renders a refusal as
    the app renders any (problem+json with the request id)."""

    def __init__(self, app: ASGIApp, refusal: Refusal) -> None:
        self.app = app
        self.refusal = refusal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if fault := _head_fault(scope):
            await self._refuse(scope, receive, send, fault)
            return
        limit, kind = limit_for(scope["path"])
        too_large = PayloadTooLarge(f"a {kind} request body is at most {limit} bytes", limit_bytes=limit)
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._refuse(scope, receive, send, too_large if declared.isdigit() else ValidationFailed(
                "Content-Length is a number of bytes", field="Content-Length"))
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._refuse(scope, receive, send, too_large)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if fault := _body_fault(body, _header(scope, b"content-type") or b""):
            await self._refuse(scope, receive, send, fault)
            return
        given = False

        async def replay() -> Message:  # the body read, whole; then whatever the client still sends
            nonlocal given
            if not given:
                given = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, exc: MobipayError) -> None:
        response = await self.refusal(Request(scope), exc)
        if isinstance(exc, PayloadTooLarge):
            response.headers["Connection"] = "close"  # the rest of the body is never read
        await response(scope, receive, send)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None
