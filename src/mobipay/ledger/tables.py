"""Ledger tables (SQLAlchemy Core) and how their rows map to the domain's types.

Schema changes go through Alembic migrations (``mobipay.app.migrations``); these
definitions are what the code reads and writes with.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    text,
)

from mobipay.kernel.clock import as_utc
from mobipay.ledger.model import AccountKind, AccountState
from mobipay.platform.db import metadata

#: Ids and codes compare byte-wise on PostgreSQL (COLLATE "C"): they are identifiers, not
#: words, and memcmp is much cheaper than a locale's collation in the hot indexes.
Key = String(128).with_variant(String(128, collation="C"), "postgresql")

accounts = Table(
    "ledger_accounts",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("code", Key, nullable=False, unique=True),
    Column("owner", String(128), nullable=True),
    Column("name", String(256), nullable=False, server_default=""),
    Column("kind", String(16), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("debits_must_not_exceed_credits", Boolean, nullable=False, server_default="0"),
    Column("credits_must_not_exceed_debits", Boolean, nullable=False, server_default="0"),
    Column("credit_limit", BigInteger, nullable=False, server_default="0"),
    Column("frozen", Boolean, nullable=False, server_default="0"),
    Column("debits_posted", BigInteger, nullable=False, server_default="0"),
    Column("credits_posted", BigInteger, nullable=False, server_default="0"),
    Column("debits_pending", BigInteger, nullable=False, server_default="0"),
    Column("credits_pending", BigInteger, nullable=False, server_default="0"),
    Column("version", BigInteger, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("kind IN ('asset','liability','income','expense','equity')", name="kind"),
    CheckConstraint(
        "debits_posted >= 0 AND credits_posted >= 0 AND debits_pending >= 0 "
        "AND credits_pending >= 0 AND credit_limit >= 0",
        name="counters_non_negative",
    ),
    CheckConstraint(
        "NOT debits_must_not_exceed_credits "
        "OR debits_posted + debits_pending <= credits_posted + credit_limit",
        name="debits_within_credits",
    ),
    CheckConstraint(
        "NOT credits_must_not_exceed_debits "
        "OR credits_posted + credits_pending <= debits_posted + credit_limit",
        name="credits_within_debits",
    ),
)

transfers = Table(
    "ledger_transfers",
    metadata,
    Column("id", Key, primary_key=True),
    Column("type", String(16), nullable=False),
    Column("code", String(64), nullable=False),
    Column("reference", String(256), nullable=False, server_default=""),
    Column("metadata", Text, nullable=True),
    Column("pending_id", Key, nullable=True),
    Column("reversal_of", Key, nullable=True),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Where this transfer's postings are: "account_id:account_seq" per leg, in leg order.
    # Postings are keyed by account (what statements read); this pointer list finds a
    # transfer's legs without a second index on every posting (see decision 0002).
    Column("posting_keys", Text, nullable=False, server_default=""),
    CheckConstraint(
        "type IN ('posted','pending','post_pending','void_pending','reversal')", name="type"
    ),
    # A hold is resolved (posted or voided) once, a transfer reversed once: the database
    # enforces it even between racing processes. Partial, so the many NULLs cost nothing.
    Index("uq_ledger_transfers_pending_id", "pending_id", unique=True,
          postgresql_where=text("pending_id IS NOT NULL"), sqlite_where=text("pending_id IS NOT NULL")),
    Index("uq_ledger_transfers_reversal_of", "reversal_of", unique=True,
          postgresql_where=text("reversal_of IS NOT NULL"), sqlite_where=text("reversal_of IS NOT NULL")),
    # The console's transaction search: newest first, optionally of one kind or one day.
    Index("ix_ledger_transfers_created", "created_at", "id"),
    Index("ix_ledger_transfers_code_created", "code", "created_at", "id"),
)

postings = Table(
    "ledger_postings",
    metadata,
    Column("transfer_id", Key, nullable=False),
    Column("leg", SmallInteger, nullable=False),
    Column("account_id", BigInteger, primary_key=True),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("pending", Boolean, nullable=False),
    Column("account_seq", BigInteger, primary_key=True),
    Column("balance_after", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("amount <> 0", name="amount_not_zero"),
    # SQLite looks postings up by transfer in its balance trigger; PostgreSQL never needs to.
    Index("ix_ledger_postings_transfer_id", "transfer_id").ddl_if(dialect="sqlite"),
)

#: Holds not yet posted or voided: the expiry sweeper reads this, never the whole history.
open_holds = Table(
    "ledger_open_holds",
    metadata,
    Column("hold_id", Key, primary_key=True),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Index("ix_ledger_open_holds_expires_at", "expires_at"),
)


ACCOUNT_COLS = (
    "id, code, kind, currency, debits_must_not_exceed_credits, credits_must_not_exceed_debits, "
    "credit_limit, frozen, debits_posted, credits_posted, debits_pending, credits_pending, version"
)

def utc(value: datetime | str | None) -> datetime | None:
    """SQLite hands back naive datetimes; every time in mobipay is aware UTC."""
    return None if value is None else as_utc(value)


def account_state(row: Any) -> AccountState:
    """An account from a row of :data:`ACCOUNT_COLS` (SQLAlchemy or asyncpg), in that order:
    read by position once, here, on the ledger's hottest read."""
    return AccountState(
        id=row[0], code=row[1], kind=AccountKind(row[2]), currency=row[3],
        debits_must_not_exceed_credits=bool(row[4]), credits_must_not_exceed_debits=bool(row[5]),
        credit_limit=row[6], frozen=bool(row[7]), debits_posted=row[8], credits_posted=row[9],
        debits_pending=row[10], credits_pending=row[11], version=row[12],
    )
