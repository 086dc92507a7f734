"""Application-generated ids: UUIDv7 (time-ordered) with a short type prefix (``tr_…``).

Ids come from the application, not from database sequences, so rows can be written to
any shard and sort by creation time.
"""

from __future__ import annotations

import os
import time
import uuid

from mobipay.kernel.errors import IdempotencyKeyMissing


def _uuid7_int() -> int:
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80 | rand & ((1 << 80) - 1)
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    return (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant


def uuid7() -> uuid.UUID:
    """A version-7 UUID (RFC 9562): 48-bit Unix milliseconds, then random bits."""
    return uuid.UUID(int=_uuid7_int())


def check_idempotency_key(key: object) -> str:
    """A client's Idempotency-Key: 1 to 64 printable characters."""
    if not isinstance(key, str) or not 0 < len(key) <= 64 or not key.isprintable():
        raise IdempotencyKeyMissing("send an Idempotency-Key header of 1 to 64 printable characters")
    return key


def new_id(prefix: str) -> str:
    """A new opaque id such as ``tr_0192f3c4…``; the prefix names the resource type."""
    return f"{prefix}_{_uuid7_int():032x}"  # uuid7().hex, without building the UUID (a hot path)
