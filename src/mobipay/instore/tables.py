"""In-store tables: the POS terminals of merchants' stores, the nonces of their signed
requests, and what each payer paid by merchant QR codes per Beijing day (the limits of PBoC
notice 2017/296 are checked against that row in the paying transaction)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Date, DateTime, Index, PrimaryKeyConstraint, String, Table

from mobipay.platform.db import metadata

#: A till's POS terminal. Only the public half of its Ed25519 key is kept (what verification
#: needs): whoever reads this table cannot sign as a terminal (docs/instore.md).
terminals = Table(
    "instore_terminals",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("merchant_id", String(40), nullable=False),
    Column("store_id", String(40), nullable=False),
    Column("label", String(25), nullable=False),  # EMV template 62's terminal label is at most 25
    Column("public_key", String(64), nullable=False),  # Ed25519, base64 of the raw 32 bytes
    Column("state", String(12), nullable=False),  # active | disabled
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("key_rotated_at", DateTime(timezone=True), nullable=True),
    Column("disabled_at", DateTime(timezone=True), nullable=True),
    Column("last_seen_at", DateTime(timezone=True), nullable=True),
    Index("ix_instore_terminals_store", "merchant_id", "store_id"),
)

#: Nonces of accepted terminal requests, kept twice the timestamp window so that no request
#: can be accepted twice; older ones are pruned by the terminal's next request.
terminal_nonces = Table(
    "instore_terminal_nonces",
    metadata,
    Column("terminal_id", String(40), nullable=False),
    Column("nonce", String(64), nullable=False),
    Column("seen_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("terminal_id", "nonce", name="pk_instore_terminal_nonces"),
    Index("ix_instore_terminal_nonces_seen", "terminal_id", "seen_at"),
)

qr_daily_usage = Table(
    "instore_daily_usage",
    metadata,
    Column("payer_id", String(40), nullable=False),
    Column("day", Date, nullable=False),  # Asia/Shanghai
    Column("static_fen", BigInteger, nullable=False, server_default="0"),
    Column("dynamic_fen", BigInteger, nullable=False, server_default="0"),  # every dynamic-code payment
    Column("dynamic_weak_fen", BigInteger, nullable=False, server_default="0"),  # those with fewer than two factors
    PrimaryKeyConstraint("payer_id", "day"),
)
