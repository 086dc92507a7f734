"""The audit trail: who did what to whom, when, why, and what it was before and after.

Every operator action writes one row in the same transaction as the change it records,
so there is no change without its audit entry and no entry for a change that failed.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime, Index, String, Table, Text, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from mobipay.kernel.ids import new_id
from mobipay.platform.db import metadata

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(128), nullable=False),
    Column("reason", Text, nullable=False),
    Column("before", Text, nullable=True),
    Column("after", Text, nullable=True),
    Index("ix_audit_log_target", "target", "at"),
)


async def record(conn: AsyncConnection, *, at: datetime, actor: str, action: str, target: str, reason: str,
                 before: dict[str, Any] | None = None, after: dict[str, Any] | None = None) -> str:
    """Write one audit entry in the caller's transaction."""
    entry_id = new_id("aud")
    await conn.execute(insert(audit_log).values(
        id=entry_id, at=at, actor=actor, action=action, target=target, reason=reason,
        before=json.dumps(before, ensure_ascii=False, default=str) if before is not None else None,
        after=json.dumps(after, ensure_ascii=False, default=str) if after is not None else None,
    ))
    return entry_id


async def entries(conn: AsyncConnection, target: str) -> list[dict[str, Any]]:
    rows = await conn.execute(select(audit_log).where(audit_log.c.target == target).order_by(audit_log.c.at))
    return [dict(r._mapping) for r in rows]
