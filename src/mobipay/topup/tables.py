"""Top-up tables: internet partners selling top-up through the partner API, and the
nonces their signed requests used (replay protection)."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, Integer, PrimaryKeyConstraint, String, Table

from mobipay.platform.db import metadata

partners = Table(
    "topup_partners",
    metadata,
    Column("id", String(40), primary_key=True),  # the app id partners send
    Column("name", String(64), nullable=False),
    Column("secret", String(64), nullable=False),  # the shared HMAC key (keep the database itself secret)
    Column("commission_bps", Integer, nullable=False),
    Column("status", String(12), nullable=False),  # active | suspended
    Column("account_code", String(128), nullable=False),  # the partner's prepaid deposit in the ledger
    Column("created_at", DateTime(timezone=True), nullable=False),
)

partner_nonces = Table(
    "topup_partner_nonces",
    metadata,
    Column("partner_id", String(40), nullable=False),
    Column("nonce", String(64), nullable=False),
    Column("seen_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("partner_id", "nonce", name="pk_topup_partner_nonces"),
    Index("ix_topup_partner_nonces_seen", "seen_at"),
)
