"""Transit tables: operators, lines, stations, validators (their public keys and nonces),
taps (unique per token, validator and time: a duplicate is the same row), trips with their
fares step by step, each rider's pricing state per city, the transit deny list, the daily
clearings and disputes.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Date, DateTime, Index, Integer, PrimaryKeyConstraint, String, Table, Text

from mobipay.platform.db import metadata

operators = Table(
    "transit_operators",
    metadata,
    Column("id", String(40), primary_key=True),  # top_...
    Column("city", String(16), nullable=False),
    Column("name", String(80), nullable=False),
    Column("mode", String(8), nullable=False),  # bus | metro
    Column("bank_account", String(34), nullable=False),
    Column("account_code", String(64), nullable=False),  # what the platform owes the operator (fares)
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ux_transit_operators_name", "city", "name", unique=True),
)

lines = Table(
    "transit_lines",
    metadata,
    Column("id", String(40), primary_key=True),  # tln_...
    Column("operator_id", String(40), nullable=False),
    Column("name", String(60), nullable=False),
    Index("ux_transit_lines_name", "operator_id", "name", unique=True),
)

stations = Table(
    "transit_stations",
    metadata,
    Column("id", String(40), primary_key=True),  # tst_...
    Column("line_id", String(40), nullable=False),
    Column("operator_id", String(40), nullable=False),
    Column("name", String(60), nullable=False),
    Column("position_m", Integer, nullable=False),  # along the line from its first station
    Index("ux_transit_stations_name", "line_id", "name", unique=True),
    Index("ix_transit_stations_operator", "operator_id"),
)

validators = Table(
    "transit_validators",
    metadata,
    Column("id", String(40), primary_key=True),  # tvl_...
    Column("operator_id", String(40), nullable=False),
    Column("line_id", String(40), nullable=False),
    Column("station_id", String(40), nullable=True),  # a metro gate's station; none on a bus
    Column("role", String(8), nullable=False),  # flat | entry | exit
    Column("label", String(60), nullable=False),
    Column("public_key", String(64), nullable=False),  # Ed25519, base64 of 32 bytes
    Column("state", String(10), nullable=False),  # active | disabled
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_seen_at", DateTime(timezone=True), nullable=True),
    Column("deny_version", String(40), nullable=False, server_default=""),  # the deny list it last downloaded
    Column("deny_at", DateTime(timezone=True), nullable=True),
    Index("ix_transit_validators_operator", "operator_id"),
)

validator_nonces = Table(
    "transit_validator_nonces",
    metadata,
    Column("validator_id", String(40), nullable=False),
    Column("nonce", String(64), nullable=False),
    Column("seen_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("validator_id", "nonce", name="pk_transit_validator_nonces"),
)

#: A tap as uploaded: its id is a hash of (token, validator, time), so the same tap uploaded
#: twice, in one upload or two, is one row.
taps = Table(
    "transit_taps",
    metadata,
    Column("id", String(40), primary_key=True),  # ttp_...
    Column("token_id", String(40), nullable=False),
    Column("user_id", String(40), nullable=False),
    Column("validator_id", String(40), nullable=False),
    Column("operator_id", String(40), nullable=False),
    Column("city", String(16), nullable=False),
    Column("role", String(8), nullable=False),
    Column("station_id", String(40), nullable=True),
    Column("tapped_at", DateTime(timezone=True), nullable=False),
    Column("atc", Integer, nullable=False),
    Column("trip_id", String(40), nullable=False),
    Column("day", Date, nullable=False),  # Beijing date of the tap
    Column("uploaded_at", DateTime(timezone=True), nullable=False),
    Index("ix_transit_taps_operator_day", "operator_id", "day"),
)

#: A trip: one bus tap, or a metro entry and exit. ``state``: open (a metro tap waiting for its
#: pair; ``open_side`` says which it has), priced (fare decided, being posted), paid, debt
#: (posted from the receivable: the wallet owes it), void (nothing to pay).
trips = Table(
    "transit_trips",
    metadata,
    Column("id", String(40), primary_key=True),  # ttr_...
    Column("user_id", String(40), nullable=False),
    Column("token_id", String(40), nullable=False),
    Column("account_code", String(64), nullable=False),
    Column("msisdn", String(24), nullable=False),
    Column("city", String(16), nullable=False),
    Column("operator_id", String(40), nullable=False),
    Column("mode", String(8), nullable=False),
    Column("entry_station_id", String(40), nullable=True),
    Column("exit_station_id", String(40), nullable=True),
    Column("start_at", DateTime(timezone=True), nullable=False),
    Column("end_at", DateTime(timezone=True), nullable=False),
    Column("open_side", String(8), nullable=False, server_default=""),  # entry | exit while open
    Column("missing", String(8), nullable=False, server_default=""),  # exit | entry: charged the maximum
    Column("meters", Integer, nullable=False, server_default="0"),
    Column("base", BigInteger, nullable=False, server_default="0"),
    Column("transfer_discount", BigInteger, nullable=False, server_default="0"),
    Column("tier_discount", BigInteger, nullable=False, server_default="0"),
    Column("cap_discount", BigInteger, nullable=False, server_default="0"),
    Column("fare", BigInteger, nullable=False, server_default="0"),
    Column("state", String(8), nullable=False),
    Column("transfer_id", String(64), nullable=True),
    Column("refunded", BigInteger, nullable=False, server_default="0"),
    Column("day", Date, nullable=False),  # Beijing date of the start: the clearing's day
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("priced_at", DateTime(timezone=True), nullable=True),
    Column("recovered_at", DateTime(timezone=True), nullable=True),
    Index("ix_transit_trips_user", "user_id", "state", "start_at"),
    Index("ix_transit_trips_state", "state", "start_at"),
    Index("ix_transit_trips_operator_day", "operator_id", "day"),
)

riders = Table(
    "transit_riders",
    metadata,
    Column("user_id", String(40), nullable=False),
    Column("city", String(16), nullable=False),
    Column("month", String(7), nullable=False, server_default=""),
    Column("month_spent", BigInteger, nullable=False, server_default="0"),
    Column("day", Date, nullable=True),
    Column("day_spent", BigInteger, nullable=False, server_default="0"),
    Column("last_end", DateTime(timezone=True), nullable=True),
    Column("last_mode", String(8), nullable=False, server_default=""),
    PrimaryKeyConstraint("user_id", "city", name="pk_transit_riders"),
)

#: Tokens of wallets owing a fare; versioned as the NFC deny list is (validators ask for changes).
deny_list = Table(
    "transit_deny_list",
    metadata,
    Column("token_id", String(40), primary_key=True),
    Column("user_id", String(40), nullable=False),
    Column("listed", Integer, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
    Index("ix_transit_deny_list_version", "version"),
    Index("ix_transit_deny_list_user", "user_id"),
)

deny_version = Table(
    "transit_deny_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", BigInteger, nullable=False),
)

clearings = Table(
    "transit_clearings",
    metadata,
    Column("id", String(60), primary_key=True),  # <operator>:<day>
    Column("operator_id", String(40), nullable=False),
    Column("day", Date, nullable=False),
    Column("taps", Integer, nullable=False),
    Column("trips", Integer, nullable=False),
    Column("base", BigInteger, nullable=False),
    Column("discounts", BigInteger, nullable=False),
    Column("fares", BigInteger, nullable=False),
    Column("debts", BigInteger, nullable=False),  # fares still owed by wallets (the platform pays them)
    Column("refunds", BigInteger, nullable=False),  # disputes upheld before the clearing
    Column("net", BigInteger, nullable=False),  # paid to the operator
    Column("state", String(10), nullable=False),  # paying | paid | failed | nothing
    Column("payout_id", String(64), nullable=True),
    Column("file", Text, nullable=False),  # the clearing file (CSV)
    Column("operator_taps", Integer, nullable=True),  # the operator's own count, at reconciliation
    Column("operator_fares", BigInteger, nullable=True),
    Column("reconciled", String(10), nullable=False, server_default=""),  # match | mismatch
    Column("created_at", DateTime(timezone=True), nullable=False),
)

disputes = Table(
    "transit_disputes",
    metadata,
    Column("id", String(40), primary_key=True),  # tdp_...
    Column("trip_id", String(40), nullable=False),
    Column("tap_id", String(40), nullable=False),
    Column("user_id", String(40), nullable=False),
    Column("reason", String(200), nullable=False),
    Column("state", String(10), nullable=False),  # open | upheld | rejected
    Column("refund", BigInteger, nullable=False, server_default="0"),
    Column("decided_by", String(80), nullable=False, server_default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    Index("ux_transit_disputes_tap", "tap_id", unique=True),
)
