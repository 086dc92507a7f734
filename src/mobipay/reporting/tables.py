"""Reporting's read models: the KPI rollups folded per day, the recent day's running
figures and the fold's watermark (rollups.py writes them; kpi.py reads them)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    String,
    Table,
)

from mobipay.platform.db import metadata

fold_state = Table(
    "kpi_fold_state",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("folded_until", Date, nullable=False),  # every day before it is folded
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


#: Completed payments (and fund movements, settlement payouts…) per Shanghai day (of
#: settlement, payment or transfer), product, province and city.
volume_daily = Table(
    "kpi_volume_daily",
    metadata,
    Column("day", Date, primary_key=True),
    Column("product", String(24), primary_key=True),
    Column("province", String(16), primary_key=True),
    Column("city", String(64), primary_key=True),
    Column("count", BigInteger, nullable=False),
    Column("amount", BigInteger, nullable=False),  # fen the payers paid
    Column("gmv", BigInteger, nullable=False),  # fen of goods and services sold (0 for transfers)
)


#: Decided orders and trades per day decided, day created and product.
outcomes_daily = Table(
    "kpi_outcomes_daily",
    metadata,
    Column("decided_day", Date, primary_key=True),
    Column("created_day", Date, primary_key=True),
    Column("product", String(24), primary_key=True),
    Column("succeeded", BigInteger, nullable=False),
    Column("failed", BigInteger, nullable=False),
    Index("ix_kpi_outcomes_daily_created", "created_day"),
)


#: Who paid something on a day (a succeeded order or a paid trade): monthly actives.
active_daily = Table(
    "kpi_active_daily",
    metadata,
    Column("day", Date, primary_key=True),
    Column("user_id", String(40), primary_key=True),
    Index("ix_kpi_active_daily_user", "user_id", "day"),  # "was this live payer active in the folded days?"
)


#: Distinct actives over a range of folded days, computed once per range (a 30-day range
#: is ~200k rows at 1M payments: too slow to count distinct on every dashboard view).
#: Folding a day also writes that day's own row (``end_day = first_day + 1``: its daily
#: actives). Rows overlapping a day folded again are deleted with it.
distinct_actives = Table(
    "kpi_distinct_actives",
    metadata,
    Column("first_day", Date, primary_key=True),
    Column("end_day", Date, primary_key=True),  # exclusive
    Column("users", BigInteger, nullable=False),
)


#: Per day and product (what the trend and the product figures read: ~10 rows a day).
product_daily = Table(
    "kpi_product_daily",
    metadata,
    Column("day", Date, primary_key=True),
    Column("product", String(24), primary_key=True),
    Column("count", BigInteger, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("gmv", BigInteger, nullable=False),
)


#: Wallets opened per day (registered and new users without counting every wallet).
signups_daily = Table(
    "kpi_signups_daily",
    metadata,
    Column("day", Date, primary_key=True),
    Column("users", BigInteger, nullable=False),
)


#: Running totals per product and place over every folded day up to ``through_day``
#: (inclusive), so the map of any window of folded days is two days' rows subtracted,
#: not a sum over every day × place row of the window.
place_totals = Table(
    "kpi_place_totals",
    metadata,
    Column("through_day", Date, primary_key=True),
    Column("product", String(24), primary_key=True),
    Column("province", String(16), primary_key=True),
    Column("city", String(64), primary_key=True),
    Column("count", BigInteger, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("gmv", BigInteger, nullable=False),
)


#: The day being folded so far (the watermark's day, usually today), up to ``through``:
#: the live part of a window then starts at ``through`` (a few minutes of payments), not at
#: midnight (tens of thousands). Refreshed by the worker every minute and by readers when
#: stale, up to ``MARGIN`` before now, by the same rules and margin as folding a day.
recent_state = Table(
    "kpi_recent_state",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("day", Date, nullable=False),
    Column("through", DateTime(timezone=True), nullable=False),  # covered: [start of day, through)
)


recent_volume = Table(
    "kpi_recent_volume",
    metadata,
    Column("product", String(24), primary_key=True),
    Column("province", String(16), primary_key=True),
    Column("city", String(64), primary_key=True),
    Column("count", BigInteger, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("gmv", BigInteger, nullable=False),
)


#: The day's payers so far; ``new_in_month``: not active in the MAU_DAYS - 1 folded days
#: before (so monthly actives are the folded range's count plus these).
recent_payers = Table(
    "kpi_recent_payers",
    metadata,
    Column("user_id", String(40), primary_key=True),
    Column("new_in_month", Boolean, nullable=False),
)
