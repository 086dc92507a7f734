"""Lottery tables: tickets (their sale is a partner order, in platform), imported draws and
the issues whose sales the centre closed before the game's own cut-off."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Index, Integer, PrimaryKeyConstraint, String, Table, Text

from mobipay.platform.db import metadata

tickets = Table(
    "lottery_tickets",
    metadata,
    Column("order_id", String(40), primary_key=True),
    Column("user_id", String(40), nullable=False),
    Column("game", String(8), nullable=False),
    Column("issue", String(8), nullable=False),
    Column("bets", Text, nullable=False),  # JSON
    Column("multiplier", Integer, nullable=False),
    Column("cost", BigInteger, nullable=False),
    Column("prize", BigInteger, nullable=True),  # gross, None until the draw is settled
    Column("tax", BigInteger, nullable=False, server_default="0"),  # withheld from the prize
    Column("claim_required", Boolean, nullable=False, server_default="0"),  # a large prize: claimed, not paid
    Column("claimed_at", DateTime(timezone=True), nullable=True),  # a claimed prize: when it was paid
    Column("tier", Integer, nullable=True),  # best tier won (0: none)
    Column("settled_at", DateTime(timezone=True), nullable=True),
    Index("ix_lottery_tickets_issue", "game", "issue"),
    Index("ix_lottery_tickets_user", "user_id"),
)

draws = Table(
    "lottery_draws",
    metadata,
    Column("game", String(8), nullable=False),
    Column("issue", String(8), nullable=False),
    Column("numbers", Text, nullable=False),  # JSON
    Column("prizes", Text, nullable=False),  # JSON: floating tier -> fen
    Column("imported_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("game", "issue", name="pk_lottery_draws"),
)

closed_issues = Table(
    "lottery_closed_issues",
    metadata,
    Column("game", String(8), nullable=False),
    Column("issue", String(8), nullable=False),
    Column("closed_at", DateTime(timezone=True), nullable=False),
    Column("reason", String(64), nullable=False),
    PrimaryKeyConstraint("game", "issue", name="pk_lottery_closed_issues"),
)
