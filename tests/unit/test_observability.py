"""Log lines and ids: what every request writes, so they must never fail."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from mobipay.kernel.ids import new_id
from mobipay.platform.observability import _json


def test_a_log_line_is_json_whatever_it_carries() -> None:
    when = datetime(2026, 11, 26, 1, 2, 3, tzinfo=UTC)
    line = _json({"event": "http.request", "path": "/v1/转账", "at": when, "error": ValueError("bad"),
                  "by_code": {404: 1}})
    assert json.loads(line) == {"event": "http.request", "path": "/v1/转账", "at": "2026-11-26T01:02:03+00:00",
                                "error": "bad", "by_code": {"404": 1}}
    assert "转账" in line  # UTF-8 as is, not \\u escapes
    assert json.loads(_json({"big": 2**70}))["big"] == 2**70  # past orjson's 64 bits: the stdlib writes it


def test_ids_are_prefixed_uuid7() -> None:
    ids = [new_id("req") for _ in range(1000)]
    assert len(set(ids)) == 1000
    for i in ids[:50]:
        prefix, hexpart = i.split("_")
        u = uuid.UUID(hex=hexpart)
        assert prefix == "req" and u.version == 7 and u.variant == uuid.RFC_4122 and u.hex == hexpart
    assert ids[0][:12] <= ids[-1][:12]  # time-ordered to the millisecond
