"""KPI rollups: the console's dashboard figures folded per Shanghai day, so a 90-day
dashboard reads a few hundred rows instead of a million orders and trades.

Design (why it is safe):

* A **whole past day** is folded at once, in **one transaction**: delete that day's rows,
  aggregate the day's settled orders and paid/closed trades from the live tables, insert,
  and move the watermark ``folded_until`` past it. A crash anywhere rolls all of it back;
  folding a day again replaces its rows with the same figures (idempotent). Concurrent
  folders serialise on the watermark row.
* A day is folded only once it ended ``MARGIN`` ago: an order's ``settled_at`` is the
  settling unit of work's clock, so nothing lands in a closed day after the margin.
* Readers (:mod:`mobipay.platform.kpi`) take folded days from here and compute whatever is
  not folded (days at or after the watermark, partial days at the window's edges) from the
  live tables through indexes: the answer is exact whatever the fold lag.
* Success rates are by the day an order was **created**, but an order may be decided days
  later: outcomes are keyed by (decided day, created day), so a late decision is folded
  with the day it happened and readers count decisions after the watermark live.
* Loads that write history into the past (``mobipay demo --transactions``) call
  :func:`refold` to move the watermark back; readers ignore rows at or after it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Index,
    String,
    Table,
    delete,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from mobipay.kernel.clock import SHANGHAI, Clock, as_utc
from mobipay.kernel.orders import OrderState
from mobipay.merchants.tables import merchants, trades
from mobipay.platform.db import Database, metadata
from mobipay.platform.partner_orders import partner_orders, partner_recon_items
from mobipay.wallet.tables import users

MERCHANT = "merchant"  # the product name of paid merchant trades
NO_CITY = "-"
STATE_KEY = "kpi"
#: A day is folded this long after it ended (settling clocks and slow commits).
MARGIN = timedelta(minutes=10)

fold_state = Table(
    "kpi_fold_state",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("folded_until", Date, nullable=False),  # every day before it is folded
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

#: Settled payments per Shanghai day (of settlement / payment), product and city.
volume_daily = Table(
    "kpi_volume_daily",
    metadata,
    Column("day", Date, primary_key=True),
    Column("product", String(24), primary_key=True),
    Column("city", String(64), primary_key=True),
    Column("count", BigInteger, nullable=False),
    Column("amount", BigInteger, nullable=False),  # fen
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
#: Rows overlapping a day folded again are deleted with it.
distinct_actives = Table(
    "kpi_distinct_actives",
    metadata,
    Column("first_day", Date, primary_key=True),
    Column("end_day", Date, primary_key=True),  # exclusive
    Column("users", BigInteger, nullable=False),
)


# Indexes on the live tables for the parts of a window that are not folded (and for folding
# one day), and for the console's lists; declared here, next to the queries that need them.
for _index in (
    Index("ix_partner_orders_settled_at", partner_orders.c.settled_at),
    Index("ix_partner_orders_created_at", partner_orders.c.created_at),
    Index("ix_merchant_trades_paid_at", trades.c.paid_at),
    Index("ix_merchant_trades_closed_at", trades.c.closed_at),
    Index("ix_merchant_trades_created_at", trades.c.created_at),
    Index("ix_wallet_users_created_at", users.c.created_at),
    Index("ix_merchants_state_created", merchants.c.state, merchants.c.created_at),
    Index("ix_partner_recon_items_open", partner_recon_items.c.resolution, partner_recon_items.c.day),
):
    assert _index.table is not None


def day_of(at: datetime) -> date:
    """The Shanghai business day of an instant."""
    return as_utc(at).astimezone(SHANGHAI).date()


def day_start(day: date) -> datetime:
    """The first instant (UTC) of a Shanghai day."""
    return datetime.combine(day, time(), SHANGHAI).astimezone(UTC)


async def folded_until(conn: AsyncConnection) -> date | None:
    """The watermark: every day before it is folded (None: nothing folded yet)."""
    row = (await conn.execute(select(fold_state.c.folded_until).where(fold_state.c.name == STATE_KEY))).first()
    return None if row is None else _date(row[0])


def _date(value: Any) -> date:
    return date.fromisoformat(value) if isinstance(value, str) else value


@dataclass
class DayFold:
    volume: dict[tuple[str, str], list[int]]
    outcomes: dict[tuple[date, str], list[int]]
    active: set[str]


async def compute_day(conn: AsyncConnection, day: date) -> DayFold:
    """One day's figures from the live tables (what folding writes for it)."""
    start, end = day_start(day), day_start(day + timedelta(days=1))
    out = DayFold(defaultdict(lambda: [0, 0]), defaultdict(lambda: [0, 0]), set())
    orders = await conn.execute(select(
        partner_orders.c.kind, partner_orders.c.amount, partner_orders.c.details, partner_orders.c.user_id,
        partner_orders.c.state, partner_orders.c.created_at).where(
        partner_orders.c.settled_at >= start, partner_orders.c.settled_at < end,
        partner_orders.c.state.in_([OrderState.SUCCEEDED.value, OrderState.FAILED.value])))
    for kind, amount, details, user_id, state, created_at in orders:
        if state == OrderState.SUCCEEDED.value:
            v = out.volume[(kind, city_of(details))]
            v[0] += 1
            v[1] += amount
            out.active.add(user_id)
            out.outcomes[(day_of(created_at), kind)][0] += 1
        else:
            out.outcomes[(day_of(created_at), kind)][1] += 1
    paid = await conn.execute(select(trades.c.amount, trades.c.payer_id, trades.c.created_at).where(
        trades.c.paid_at >= start, trades.c.paid_at < end))
    for amount, payer_id, created_at in paid:
        v = out.volume[(MERCHANT, NO_CITY)]
        v[0] += 1
        v[1] += amount
        if payer_id is not None:
            out.active.add(payer_id)
        out.outcomes[(day_of(created_at), MERCHANT)][0] += 1
    closed = await conn.execute(select(trades.c.created_at).where(
        trades.c.paid_at.is_(None), trades.c.closed_at >= start, trades.c.closed_at < end))
    for (created_at,) in closed:
        out.outcomes[(day_of(created_at), MERCHANT)][1] += 1
    return out


def city_of(details: str | None) -> str:
    """The city an order names in its details (bills: the biller's), ``-`` when none."""
    if not details or '"city"' not in details:  # most orders: skip the JSON parse
        return NO_CITY
    d: dict[str, Any] = json.loads(details)
    return str(d.get("city") or NO_CITY)[:64]


async def fold_day(conn: AsyncConnection, day: date, now: datetime) -> bool:
    """Fold one day inside the caller's transaction, if it is the next one; False when it
    was already folded (by us earlier, or by another process meanwhile)."""
    lock = select(fold_state.c.folded_until).where(fold_state.c.name == STATE_KEY)
    if conn.dialect.name == "postgresql":
        lock = lock.with_for_update()
    row = (await conn.execute(lock)).first()
    if row is not None and _date(row[0]) > day:
        return False
    figures = await compute_day(conn, day)
    await _replace_day(conn, day, figures)
    if row is None:
        await conn.execute(insert(fold_state).values(name=STATE_KEY, folded_until=day + timedelta(days=1),
                                                     updated_at=now))
    else:
        await conn.execute(update(fold_state).where(fold_state.c.name == STATE_KEY).values(
            folded_until=day + timedelta(days=1), updated_at=now))
    return True


async def _replace_day(conn: AsyncConnection, day: date, f: DayFold) -> None:
    await conn.execute(delete(volume_daily).where(volume_daily.c.day == day))
    await conn.execute(delete(outcomes_daily).where(outcomes_daily.c.decided_day == day))
    await conn.execute(delete(active_daily).where(active_daily.c.day == day))
    await conn.execute(delete(distinct_actives).where(distinct_actives.c.first_day <= day,
                                                      distinct_actives.c.end_day > day))
    if f.volume:
        await conn.execute(insert(volume_daily), [
            {"day": day, "product": p, "city": c, "count": n, "amount": a} for (p, c), (n, a) in f.volume.items()])
    if f.outcomes:
        await conn.execute(insert(outcomes_daily), [
            {"decided_day": day, "created_day": cd, "product": p, "succeeded": s, "failed": x}
            for (cd, p), (s, x) in f.outcomes.items()])
    if f.active:
        await conn.execute(insert(active_daily), [{"day": day, "user_id": u} for u in sorted(f.active)])


async def _first_day(conn: AsyncConnection) -> date | None:
    """The earliest day anything was decided (where folding starts the first time)."""
    firsts = [
        (await conn.execute(select(func.min(partner_orders.c.settled_at)))).scalar_one(),
        (await conn.execute(select(func.min(trades.c.paid_at)))).scalar_one(),
        (await conn.execute(select(func.min(trades.c.closed_at)))).scalar_one(),
    ]
    found = [day_of(as_utc(f)) for f in firsts if f is not None]
    return min(found) if found else None


async def fold(db: Database, clock: Clock, *, progress: Callable[[date], None] | None = None) -> int:
    """Fold every whole day that ended at least :data:`MARGIN` ago and is not folded yet,
    one transaction per day; returns how many days were folded. Safe to run from several
    processes and to interrupt at any point."""
    now = clock.now()
    last = day_of(now - MARGIN) - timedelta(days=1)  # the last day that is over (with margin)
    async with db.begin() as conn:
        start = await folded_until(conn)
        if start is None:
            start = await _first_day(conn)
    if start is None:
        return 0
    done = 0
    day = start
    while day <= last:

        async def work(conn: AsyncConnection, day: date = day) -> bool:
            return await fold_day(conn, day, now)

        folded = await db.run(work)
        done += folded
        if progress is not None:
            progress(day)
        day += timedelta(days=1)
    return done


async def refold(db: Database, clock: Clock, since: date) -> None:
    """Make the days from ``since`` on count as not folded (history was written into them);
    the next :func:`fold` recomputes them, readers meanwhile compute them live."""
    async with db.begin() as conn:
        current = await folded_until(conn)
        await conn.execute(delete(distinct_actives).where(distinct_actives.c.end_day > since))
        if current is not None and current > since:
            await conn.execute(update(fold_state).where(fold_state.c.name == STATE_KEY).values(
                folded_until=since, updated_at=clock.now()))


async def folded_actives(conn: AsyncConnection, first: date, end: date) -> int:
    """Distinct actives over the folded days ``[first, end)``, from the cache or counted
    (and cached) now."""
    found = (await conn.execute(select(distinct_actives.c.users).where(
        distinct_actives.c.first_day == first, distinct_actives.c.end_day == end))).first()
    if found is not None:
        return int(found[0])
    days = select(active_daily.c.user_id).where(active_daily.c.day >= first, active_daily.c.day < end).distinct()
    count = int((await conn.execute(select(func.count()).select_from(days.subquery()))).scalar_one())
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert  # type: ignore[assignment]
    await conn.execute(dialect_insert(distinct_actives).values(first_day=first, end_day=end, users=count)
                       .on_conflict_do_nothing())
    return count


def city_sql(dialect: str) -> Any:
    """SQL for :func:`city_of` (the live parts of a window are grouped in the database)."""
    if dialect == "postgresql":
        return literal_column("coalesce(nullif(CAST(details AS jsonb) ->> 'city', ''), '-')")
    return literal_column("coalesce(nullif(json_extract(details, '$.city'), ''), '-')")


def day_sql(column: Any, dialect: str) -> Any:
    """SQL for :func:`day_of` on a timestamp column (Shanghai is UTC+8 all year)."""
    if dialect == "postgresql":
        return func.to_char(func.timezone("Asia/Shanghai", column), "YYYY-MM-DD")
    return func.date(column, "+8 hours")
