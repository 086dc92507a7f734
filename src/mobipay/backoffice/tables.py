"""Back-office tables: console operator accounts and their sessions (the staff mechanism
of platform/staff_sessions.py), and maker-checker reversal requests."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
    text,
)

from mobipay.platform.db import metadata

operators = Table(
    "operators",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("password_hash", String(200), nullable=False),  # argon2id, with its parameters and salt
    Column("roles", Text, nullable=False),  # comma-separated, from ROLES
    Column("disabled", Boolean, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("sign_in_failures", Integer, nullable=False, server_default="0"),  # wrong passwords in the window
    Column("sign_in_failed_at", DateTime(timezone=True), nullable=True),
    Column("sign_in_locked_until", DateTime(timezone=True), nullable=True),
)


operator_sessions = Table(
    "operator_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),  # SHA-256 of the cookie's random token
    Column("operator_id", String(40), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True), nullable=True),
    Index("ix_operator_sessions_operator", "operator_id"),
)


reversal_requests = Table(
    "reversal_requests",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("transfer_id", String(160), nullable=False),
    Column("state", String(12), nullable=False),  # pending | approved | rejected
    Column("requested_by", String(64), nullable=False),
    Column("request_reason", Text, nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("decided_by", String(64), nullable=True),
    Column("decision_reason", Text, nullable=True),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    Column("reversal_id", String(160), nullable=True),  # the ledger transfer that undid it
    Index("ix_reversal_requests_state", "state", "requested_at"),
    Index("ix_reversal_requests_transfer", "transfer_id"),
    Index("uq_reversal_requests_pending", "transfer_id", unique=True,
          postgresql_where=text("state = 'pending'"), sqlite_where=text("state = 'pending'")),
)
