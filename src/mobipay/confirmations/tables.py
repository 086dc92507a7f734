"""Secondary confirmations waiting for the subscriber's reply."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, Integer, String, Table, Text

from mobipay.platform.db import metadata

confirmations = Table(
    "confirmations",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("msisdn", String(16), nullable=False),
    Column("purpose", String(32), nullable=False),  # sms.transfer, sms.topup, sp.subscribe, …
    Column("payload", Text, nullable=False),  # JSON: what to do once confirmed
    Column("code_hash", String(64), nullable=False),  # HMAC: the code itself is never stored
    Column("state", String(8), nullable=False),  # pending | used | void
    Column("wrong", Integer, nullable=False, server_default="0"),
    Column("used_by", String(64), nullable=True),  # the reply that confirmed it: a re-processed reply finds it again
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index("ix_confirmations_latest", "msisdn", "created_at"),
)
