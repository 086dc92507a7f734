"""Enterprise tables: employers (a merchant account with its rules), employees, the
employer's closed-loop merchants, funding runs and their lines, allowance payments (one
receipt, two funding legs), month closes, readers, their nonces and attendance taps.

Money is in the ledger; these rows say who, where and why. An allowance payment's
``allowance``/``wallet`` columns are the two debit legs of its one ledger transfer.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from mobipay.platform.db import metadata

employers = Table(
    "enterprise_employers",
    metadata,
    Column("id", String(40), primary_key=True),  # the merchant id (mch_…): an employer is a merchant account
    Column("name", String(128), nullable=False),
    Column("funds_account", String(80), nullable=False),  # liability:enterprise:funds:<id>
    Column("rules", JSON, nullable=False),  # model.SpendingRules.to_json()
    Column("created_at", DateTime(timezone=True), nullable=False),
)

employees = Table(
    "enterprise_employees",
    metadata,
    Column("id", String(40), primary_key=True),  # emp_…
    Column("employer_id", String(40), nullable=False),
    Column("msisdn", String(16), nullable=False),
    Column("user_id", String(40), nullable=False),
    Column("name", String(64), nullable=False, server_default=""),
    Column("employee_no", String(32), nullable=False, server_default=""),
    Column("allowance_account", String(80), nullable=False),  # liability:enterprise:allowance:<id>
    Column("state", String(8), nullable=False),  # active | left
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("left_at", DateTime(timezone=True), nullable=True),
    # one one-card per phone: a number is enrolled with one employer at a time; NULL once it has
    # left (rows of those who left keep the history, and NULLs never collide)
    Column("active_msisdn", String(16), nullable=True),
    Index("ix_enterprise_employees_employer", "employer_id", "state"),
    Index("ix_enterprise_employees_user", "user_id", "state"),
    Index("ux_enterprise_employees_active_msisdn", "active_msisdn", unique=True),
)

#: The merchants (optionally one store) where the employer's allowance is accepted.
closed_loop = Table(
    "enterprise_closed_loop",
    metadata,
    Column("employer_id", String(40), nullable=False),
    Column("merchant_id", String(40), nullable=False),
    Column("label", String(32), nullable=False),  # canteen | shop | …
    Column("created_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("employer_id", "merchant_id", name="pk_enterprise_closed_loop"),
)

#: Enrolment imports, kept with their per-row outcome so the same Idempotency-Key answers again.
imports = Table(
    "enterprise_imports",
    metadata,
    Column("id", String(40), primary_key=True),  # derived from the employer and the key
    Column("employer_id", String(40), nullable=False),
    Column("digest", String(64), nullable=False),  # SHA-256 of the file
    Column("result", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

funding_runs = Table(
    "enterprise_funding_runs",
    metadata,
    Column("id", String(40), primary_key=True),  # derived from the employer and the key
    Column("employer_id", String(40), nullable=False),
    Column("month", String(7), nullable=False),  # YYYY-MM the allowance is for
    Column("purpose", String(32), nullable=False),
    Column("employees", Integer, nullable=False),
    Column("total", BigInteger, nullable=False),
    Column("actor", String(80), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_enterprise_funding_runs_employer", "employer_id", "created_at"),
)

funding_lines = Table(
    "enterprise_funding_lines",
    metadata,
    Column("run_id", String(40), nullable=False),
    Column("employee_id", String(40), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("transfer_id", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("run_id", "employee_id", name="pk_enterprise_funding_lines"),
    Index("ix_enterprise_funding_lines_employee", "employee_id", "created_at"),
)

payments = Table(
    "enterprise_payments",
    metadata,
    Column("id", String(40), primary_key=True),  # derived from the payer and the Idempotency-Key
    Column("employer_id", String(40), nullable=False),
    Column("employee_id", String(40), nullable=False),
    Column("merchant_id", String(40), nullable=False),
    Column("store_id", String(40), nullable=True),
    Column("trade_id", String(40), nullable=False),
    Column("transfer_id", String(128), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("allowance", BigInteger, nullable=False),
    Column("wallet", BigInteger, nullable=False),
    Column("day", String(10), nullable=False),  # the Beijing day, YYYY-MM-DD
    Column("window", String(16), nullable=False),  # the meal window ("" outside every window)
    Column("reason", String(64), nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_enterprise_payments_employee_day", "employee_id", "day", "window"),
    Index("ix_enterprise_payments_employer", "employer_id", "created_at"),
)

month_closes = Table(
    "enterprise_month_closes",
    metadata,
    Column("employer_id", String(40), nullable=False),
    Column("month", String(7), nullable=False),
    Column("rule", String(8), nullable=False),
    Column("employees", Integer, nullable=False),
    Column("kept", BigInteger, nullable=False),
    Column("returned", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("employer_id", "month", name="pk_enterprise_month_closes"),
)

readers = Table(
    "enterprise_readers",
    metadata,
    Column("id", String(40), primary_key=True),  # rdr_…
    Column("employer_id", String(40), nullable=False),
    Column("label", String(64), nullable=False),
    Column("kind", String(12), nullable=False),  # door | attendance
    Column("public_key", String(64), nullable=False),
    Column("state", String(8), nullable=False),  # active | disabled
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_enterprise_readers_employer", "employer_id"),
)

reader_nonces = Table(
    "enterprise_reader_nonces",
    metadata,
    Column("reader_id", String(40), nullable=False),
    Column("nonce", String(64), nullable=False),
    Column("seen_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("reader_id", "nonce", name="pk_enterprise_reader_nonces"),
)

#: Attendance and door taps: (reader, token, time) is one tap however often it is uploaded.
taps = Table(
    "enterprise_taps",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("reader_id", String(40), nullable=False),
    Column("employer_id", String(40), nullable=False),
    Column("employee_id", String(40), nullable=False),
    Column("token_id", String(64), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("note", Text, nullable=False, server_default=""),
    UniqueConstraint("reader_id", "token_id", "at", name="uq_enterprise_taps_once"),
    Index("ix_enterprise_taps_employee", "employer_id", "employee_id", "at"),
)
