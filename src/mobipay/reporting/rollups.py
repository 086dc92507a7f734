"""KPI rollups: the console's dashboard figures folded per Shanghai day, so a 90-day
dashboard reads a few hundred rows instead of a million orders, trades and transfers.

What is counted, and how, is defined once here (:func:`compute_span`: the same rules for
folded days and for the live part of a window) and written down in docs/kpi.md.

Design (why it is safe):

* A **whole past day** is folded at once, in **one transaction**: delete that day's rows,
  aggregate the day's settled orders and paid/closed trades from the live tables, insert,
  and move the watermark ``folded_until`` past it. A crash anywhere rolls all of it back;
  folding a day again replaces its rows with the same figures (idempotent). Concurrent
  folders serialise on the watermark row.
* A day is folded only once it ended ``MARGIN`` ago: an order's ``settled_at`` is the
  settling unit of work's clock, so nothing lands in a closed day after the margin.
* Readers (:mod:`mobipay.reporting.kpi`) take folded days from here and compute whatever is
  not folded (days at or after the watermark, partial days at the window's edges) from the
  live tables through indexes: the answer is exact whatever the fold lag.
* Success rates are by the day an order was **created**, but an order may be decided days
  later: outcomes are keyed by (decided day, created day), so a late decision is folded
  with the day it happened and readers count decisions after the watermark live.
* Loads that write history into the past (``mobipay demo``) call :func:`refold` to move the
  watermark back; readers ignore rows at or after it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Index,
    case,
    cast,
    delete,
    func,
    insert,
    literal_column,
    select,
    union,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from mobipay.bills.tables import billers
from mobipay.kernel.clock import SHANGHAI, Clock, as_utc
from mobipay.ledger.service import Ledger
from mobipay.merchants.tables import merchants, trades
from mobipay.orders.model import OrderState
from mobipay.orders.tables import partner_orders, partner_recon_items
from mobipay.platform.db import Database
from mobipay.reporting.tables import (
    active_daily,
    distinct_actives,
    fold_state,
    outcomes_daily,
    place_totals,
    product_daily,
    recent_payers,
    recent_state,
    recent_volume,
    signups_daily,
    volume_daily,
)
from mobipay.wallet.tables import users

MERCHANT = "merchant"  # the product name of paid merchant trades
P2P = "p2p"  # the product (and ledger code) of person-to-person transfers
NO_CITY = "-"  # a place that is not known
#: Payments: money a subscriber paid out of the wallet for something or to someone. The
#: payment figures, GMV, actives and the map count these and nothing else (docs/kpi.md).
PAYMENTS = (P2P, "topup", "bill", MERCHANT, "operator_product", "insurance", "lottery")
#: Money moved between a wallet and a bank account: shown apart, never as payments.
FUNDS_IN = ("cash_in",)
FUNDS_OUT = ("cash_out", "close_payout")
#: No sold value is counted for these payments (a transfer sells nothing).
NO_GMV = (P2P,)
STATE_KEY = "kpi"
#: A day is folded this long after it ended (settling clocks and slow commits).
MARGIN = timedelta(minutes=10)
#: Monthly actives: payers over this many Shanghai days, ending on a window's last day.
MAU_DAYS = 30
CHUNK = 5000  # ids per IN (...) list


# Indexes on the live tables for the parts of a window that are not folded (and for folding
# one day), and for the console's lists; declared here, next to the queries that need them.
for _index in (
    Index("ix_partner_orders_settled_at", partner_orders.c.settled_at),
    Index("ix_partner_orders_created_at", partner_orders.c.created_at),
    Index("ix_merchant_trades_paid_at", trades.c.paid_at),
    Index("ix_merchant_trades_closed_at", trades.c.closed_at),
    Index("ix_merchant_trades_expires_at", trades.c.expires_at),
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


Place = tuple[str, str]  # (province, city), NO_CITY where unknown


@dataclass
class Span:
    """What happened in ``[start, end)``: volumes per (day, product, province, city) as
    ``[count, amount paid, gmv]``, and the payers of each day."""

    volume: dict[tuple[date, str, str, str], list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0, 0]))
    payers: dict[date, set[str]] = field(default_factory=lambda: defaultdict(set))

    def add(self, day: date, product: str, place: Place, paid: int, gmv: int) -> None:
        v = self.volume[(day, product, place[0], place[1])]
        v[0] += 1
        v[1] += paid
        v[2] += gmv


def gmv_of(product: str, amount: int) -> int:
    """The sold value of a payment of ``amount`` (a top-up's face value, a trade's full
    amount), 0 for a transfer and for what is not a payment."""
    return amount if product in PAYMENTS and product not in NO_GMV else 0


def paid_of(kind: str, amount: int, details: dict[str, Any]) -> int:
    """What the payer paid for an order: a top-up's price after its discount, otherwise the
    order's amount."""
    if kind == "topup" and "price" in details:
        return int(details["price"])
    return amount


async def city_provinces(conn: AsyncConnection) -> dict[str, str]:
    """Which province each billing city is in (from the biller registry)."""
    return {str(city): str(province) for city, province in await conn.execute(
        select(billers.c.city, billers.c.province).distinct())}


def place_of(details: dict[str, Any], home: tuple[str | None, str | None], provinces: dict[str, str]) -> Place:
    """Where a payment happened: the city it names (a bill: its biller's), else the payer's
    home region (the number's 归属地), else unknown."""
    city = details.get("city")
    if city:
        name = str(city)[:64]
        return str(details.get("province") or provinces.get(name) or NO_CITY)[:16], name
    province, home_city = home
    if province or home_city:
        return (province or NO_CITY)[:16], (home_city or NO_CITY)[:64]
    return NO_CITY, NO_CITY


async def compute_span(conn: AsyncConnection, ledger: Ledger, start: datetime, end: datetime,
                       provinces: dict[str, str] | None = None) -> Span:
    """Every completed payment and fund movement in ``[start, end)`` from the live tables, by
    the rules of docs/kpi.md: settled orders (on the day settled), paid trades (the day paid),
    P2P transfers (the day sent)."""
    if provinces is None:
        provinces = await city_provinces(conn)
    out = Span()
    orders = await conn.execute(
        select(partner_orders.c.kind, partner_orders.c.amount, partner_orders.c.details, partner_orders.c.user_id,
               partner_orders.c.settled_at, users.c.id, users.c.home_province, users.c.home_city)
        .select_from(partner_orders.outerjoin(users, users.c.id == partner_orders.c.user_id))
        .where(partner_orders.c.settled_at >= start, partner_orders.c.settled_at < end,
               partner_orders.c.state == OrderState.SUCCEEDED.value))
    for kind, amount, raw, user_id, settled_at, subscriber, province, city in orders:
        # Only a top-up's price and a named city matter here: most orders skip the JSON parse.
        details: dict[str, Any] = json.loads(raw) if raw and (kind == "topup" or '"city"' in raw) else {}
        day = day_of(settled_at)
        out.add(day, kind, place_of(details, (province, city), provinces), paid_of(kind, amount, details),
                gmv_of(kind, amount))
        if kind in PAYMENTS and subscriber is not None:  # a partner's top-up has no subscriber behind it
            out.payers[day].add(user_id)
    paid = await conn.execute(
        select(trades.c.amount, trades.c.coupon_amount, trades.c.payer_id, trades.c.paid_at, users.c.home_province,
               users.c.home_city)
        .select_from(trades.outerjoin(users, users.c.id == trades.c.payer_id))
        .where(trades.c.paid_at >= start, trades.c.paid_at < end))
    for amount, coupon, payer_id, paid_at, province, city in paid:
        day = day_of(paid_at)
        out.add(day, MERCHANT, place_of({}, (province, city), provinces), amount - (coupon or 0),
                gmv_of(MERCHANT, amount))
        if payer_id is not None:
            out.payers[day].add(payer_id)
    legs = ledger.first_legs(P2P, start, end).subquery()
    sent = await conn.execute(
        select(legs.c.created_at, legs.c.amount, users.c.id, users.c.home_province, users.c.home_city)
        .select_from(legs.outerjoin(users, users.c.account_code == legs.c.account_code)))
    for created_at, amount, sender, province, city in sent:
        day = day_of(created_at)
        out.add(day, P2P, place_of({}, (province, city), provinces), abs(amount), 0)
        if sender is not None:
            out.payers[day].add(sender)
    return out


def unpaid_between(start: datetime, end: datetime) -> Any:
    """Trades decided unpaid in ``[start, end)``: closed then, or left to expire then (an
    expired trade keeps no ``closed_at``)."""
    return trades.c.paid_at.is_(None) & (
        ((trades.c.closed_at >= start) & (trades.c.closed_at < end))
        | (trades.c.closed_at.is_(None) & (trades.c.expires_at >= start) & (trades.c.expires_at < end)))


def _day_sql(column: Any, dialect: str) -> Any:
    """SQL for :func:`day_of` on a timestamp column (Shanghai is UTC+8 all year)."""
    if dialect == "postgresql":
        return func.to_char(func.timezone("Asia/Shanghai", column), "YYYY-MM-DD")
    return func.date(column, "+8 hours")


def _json_sql(key: str, dialect: str) -> Any:
    """SQL for one text member of an order's details (NULL when absent)."""
    if dialect == "postgresql":
        return literal_column(f"CAST(partner_orders.details AS jsonb) ->> '{key}'")
    return func.json_extract(partner_orders.c.details, f"$.{key}")


async def grouped_span(conn: AsyncConnection, ledger: Ledger, start: datetime, end: datetime,
                       provinces: dict[str, str]) -> Span:
    """:func:`compute_span` with the grouping done in the database (the live part of a
    window on big data: a few hundred grouped rows and the day's distinct payers back, not
    every payment); the same figures, which the tests check against it."""
    dialect = conn.dialect.name
    out = Span()
    o_day = _day_sql(partner_orders.c.settled_at, dialect)
    city, province = _json_sql("city", dialect), _json_sql("province", dialect)
    price = _json_sql("price", dialect)
    paid = case((partner_orders.c.kind == "topup", func.coalesce(cast(price, BigInteger), partner_orders.c.amount)),
                else_=partner_orders.c.amount)
    in_orders = (partner_orders.c.settled_at >= start, partner_orders.c.settled_at < end,
                 partner_orders.c.state == OrderState.SUCCEEDED.value)
    groups = (partner_orders.c.kind, o_day, city, province, users.c.home_province, users.c.home_city)
    rows = await conn.execute(
        select(*groups, func.count(), func.sum(paid), func.sum(partner_orders.c.amount))
        .select_from(partner_orders.outerjoin(users, users.c.id == partner_orders.c.user_id))
        .where(*in_orders).group_by(*groups))
    for kind, d, c, pr, hp, hc, n, amount, gross in rows:
        place = place_of({"city": c, "province": pr} if c else {}, (hp, hc), provinces)
        v = out.volume[(_date(d), kind, place[0], place[1])]
        v[0] += int(n)
        v[1] += int(amount)
        v[2] += gmv_of(kind, int(gross))
    t_day = _day_sql(trades.c.paid_at, dialect)
    rows = await conn.execute(
        select(t_day, users.c.home_province, users.c.home_city, func.count(),
               func.sum(trades.c.amount - trades.c.coupon_amount), func.sum(trades.c.amount))
        .select_from(trades.outerjoin(users, users.c.id == trades.c.payer_id))
        .where(trades.c.paid_at >= start, trades.c.paid_at < end)
        .group_by(t_day, users.c.home_province, users.c.home_city))
    for d, hp, hc, n, amount, gross in rows:
        place = place_of({}, (hp, hc), provinces)
        v = out.volume[(_date(d), MERCHANT, place[0], place[1])]
        v[0] += int(n)
        v[1] += int(amount)
        v[2] += gmv_of(MERCHANT, int(gross))
    legs = ledger.first_legs(P2P, start, end).subquery()
    l_day = _day_sql(legs.c.created_at, dialect)
    sent = legs.outerjoin(users, users.c.account_code == legs.c.account_code)
    rows = await conn.execute(
        select(l_day, users.c.home_province, users.c.home_city, func.count(), func.sum(func.abs(legs.c.amount)))
        .select_from(sent).group_by(l_day, users.c.home_province, users.c.home_city))
    for d, hp, hc, n, amount in rows:
        place = place_of({}, (hp, hc), provinces)
        v = out.volume[(_date(d), P2P, place[0], place[1])]
        v[0] += int(n)
        v[1] += int(amount)
    payers = union(
        select(o_day.label("day"), partner_orders.c.user_id.label("uid"))
        .select_from(partner_orders.join(users, users.c.id == partner_orders.c.user_id))
        .where(*in_orders, partner_orders.c.kind.in_(PAYMENTS)),
        select(t_day.label("day"), trades.c.payer_id.label("uid"))
        .where(trades.c.paid_at >= start, trades.c.paid_at < end, trades.c.payer_id.is_not(None)),
        select(l_day.label("day"), users.c.id.label("uid")).select_from(
            legs.join(users, users.c.account_code == legs.c.account_code)),
    )
    for d, uid in await conn.execute(payers):
        out.payers[_date(d)].add(uid)
    return out


@dataclass
class DayFold:
    volume: dict[tuple[str, str, str], list[int]]  # (product, province, city) -> [count, amount, gmv]
    outcomes: dict[tuple[date, str], list[int]]  # (day created, product) -> [succeeded, failed]
    active: set[str]


async def compute_day(conn: AsyncConnection, ledger: Ledger, day: date) -> DayFold:
    """One day's figures from the live tables (what folding writes for it)."""
    start, end = day_start(day), day_start(day + timedelta(days=1))
    span = await compute_span(conn, ledger, start, end)
    out = DayFold({(p, pr, c): v for (_, p, pr, c), v in span.volume.items()}, defaultdict(lambda: [0, 0]),
                  span.payers.get(day, set()))
    decided = await conn.execute(select(partner_orders.c.kind, partner_orders.c.state, partner_orders.c.created_at)
                                 .where(partner_orders.c.settled_at >= start, partner_orders.c.settled_at < end,
                                        partner_orders.c.state.in_([OrderState.SUCCEEDED.value,
                                                                    OrderState.FAILED.value])))
    for kind, state, created_at in decided:
        out.outcomes[(day_of(created_at), kind)][0 if state == OrderState.SUCCEEDED.value else 1] += 1
    for (created_at,) in await conn.execute(select(trades.c.created_at).where(
            trades.c.paid_at >= start, trades.c.paid_at < end)):
        out.outcomes[(day_of(created_at), MERCHANT)][0] += 1
    closed = await conn.execute(select(trades.c.created_at).where(unpaid_between(start, end)))
    for (created_at,) in closed:
        out.outcomes[(day_of(created_at), MERCHANT)][1] += 1
    return out


async def fold_day(conn: AsyncConnection, ledger: Ledger, day: date, now: datetime) -> bool:
    """Fold one day inside the caller's transaction, if it is the next one; False when it
    was already folded (by us earlier, or by another process meanwhile)."""
    lock = select(fold_state.c.folded_until).where(fold_state.c.name == STATE_KEY)
    if conn.dialect.name == "postgresql":
        lock = lock.with_for_update()
    row = (await conn.execute(lock)).first()
    if row is not None and _date(row[0]) > day:
        return False
    figures = await compute_day(conn, ledger, day)
    await _replace_day(conn, day, figures)
    if row is None:
        await conn.execute(insert(fold_state).values(name=STATE_KEY, folded_until=day + timedelta(days=1),
                                                     updated_at=now))
    else:
        await conn.execute(update(fold_state).where(fold_state.c.name == STATE_KEY).values(
            folded_until=day + timedelta(days=1), updated_at=now))
    return True


async def place_sums(conn: AsyncConnection, through: date) -> dict[tuple[str, str, str], list[int]]:
    """The running totals per (product, province, city) through ``through`` (none: zeros)."""
    rows = await conn.execute(select(place_totals.c.product, place_totals.c.province, place_totals.c.city,
                                     place_totals.c.count, place_totals.c.amount, place_totals.c.gmv)
                              .where(place_totals.c.through_day == through))
    return {(str(p), str(pr), str(c)): [int(n), int(a), int(g)] for p, pr, c, n, a, g in rows}


async def registered_at(conn: AsyncConnection, at: datetime, watermark: date) -> int:
    """Wallets opened before ``at``: the folded days' sign-ups, the rest counted."""
    cut = min(watermark, day_of(at))
    folded = (await conn.execute(select(func.coalesce(func.sum(signups_daily.c.users), 0))
                                 .where(signups_daily.c.day < cut))).scalar_one()
    live = (await conn.execute(select(func.count()).select_from(users).where(
        users.c.created_at >= day_start(cut), users.c.created_at < at))).scalar_one()
    return int(folded) + int(live)


async def _replace_day(conn: AsyncConnection, day: date, f: DayFold) -> None:
    await conn.execute(delete(signups_daily).where(signups_daily.c.day == day))
    opened = (await conn.execute(select(func.count()).select_from(users).where(
        users.c.created_at >= day_start(day), users.c.created_at < day_start(day + timedelta(days=1))))).scalar_one()
    if opened:
        await conn.execute(insert(signups_daily).values(day=day, users=int(opened)))
    await conn.execute(delete(volume_daily).where(volume_daily.c.day == day))
    await conn.execute(delete(product_daily).where(product_daily.c.day == day))
    await conn.execute(delete(place_totals).where(place_totals.c.through_day == day))
    totals = await place_sums(conn, day - timedelta(days=1))
    per_product: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for (p, pr, c), v in f.volume.items():
        for i in range(3):
            per_product[p][i] += v[i]
        t = totals.setdefault((p, pr, c), [0, 0, 0])
        for i in range(3):
            t[i] += v[i]
    if per_product:
        await conn.execute(insert(product_daily), [
            {"day": day, "product": p, "count": n, "amount": a, "gmv": g} for p, (n, a, g) in per_product.items()])
    if totals:
        await conn.execute(insert(place_totals), [
            {"through_day": day, "product": p, "province": pr, "city": c, "count": n, "amount": a, "gmv": g}
            for (p, pr, c), (n, a, g) in totals.items()])
    await conn.execute(delete(outcomes_daily).where(outcomes_daily.c.decided_day == day))
    await conn.execute(delete(active_daily).where(active_daily.c.day == day))
    await conn.execute(delete(distinct_actives).where(distinct_actives.c.first_day <= day,
                                                      distinct_actives.c.end_day > day))
    if f.volume:
        await conn.execute(insert(volume_daily), [
            {"day": day, "product": p, "province": pr, "city": c, "count": n, "amount": a, "gmv": g}
            for (p, pr, c), (n, a, g) in f.volume.items()])
    if f.outcomes:
        await conn.execute(insert(outcomes_daily), [
            {"decided_day": day, "created_day": cd, "product": p, "succeeded": s, "failed": x}
            for (cd, p), (s, x) in f.outcomes.items()])
    if f.active:
        await conn.execute(insert(active_daily), [{"day": day, "user_id": u} for u in sorted(f.active)])
    await _cache_actives(conn, day, day + timedelta(days=1), len(f.active))


async def _first_day(conn: AsyncConnection) -> date | None:
    """The earliest day anything was decided or a wallet opened (where folding starts the
    first time: no transfer is older than the first wallet)."""
    firsts = [
        (await conn.execute(select(func.min(partner_orders.c.settled_at)))).scalar_one(),
        (await conn.execute(select(func.min(trades.c.paid_at)))).scalar_one(),
        (await conn.execute(select(func.min(trades.c.closed_at)))).scalar_one(),
        (await conn.execute(select(func.min(users.c.created_at)))).scalar_one(),
    ]
    found = [day_of(as_utc(f)) for f in firsts if f is not None]
    return min(found) if found else None


async def fold(db: Database, clock: Clock, ledger: Ledger, *,
               progress: Callable[[date], None] | None = None) -> int:
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
            return await fold_day(conn, ledger, day, now)

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
        await conn.execute(delete(recent_state))  # the recent day is recomputed from the watermark
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
    await _cache_actives(conn, first, end, count)
    return count


async def _cache_actives(conn: AsyncConnection, first: date, end: date, count: int) -> None:
    """Keep a distinct count (an upsert: a reader may have cached the same range meanwhile)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert  # type: ignore[assignment]
    stmt = dialect_insert(distinct_actives).values(first_day=first, end_day=end, users=count)
    await conn.execute(stmt.on_conflict_do_update(index_elements=["first_day", "end_day"],
                                                  set_={"users": stmt.excluded.users}))


async def daily_actives(conn: AsyncConnection, first: date, end: date) -> dict[date, int]:
    """Daily actives of the folded days ``[first, end)`` (written when each day was folded)."""
    rows = await conn.execute(select(distinct_actives.c.first_day, distinct_actives.c.end_day,
                                     distinct_actives.c.users).where(
        distinct_actives.c.first_day >= first, distinct_actives.c.first_day < end))
    return {_date(a): int(n) for a, b, n in rows if _date(b) == _date(a) + timedelta(days=1)}


@dataclass
class Recent:
    """The watermark's day folded so far: ``[day_start(day), through)``."""

    day: date
    through: datetime
    volume: dict[tuple[str, str, str], list[int]]
    payers: int  # distinct payers of the day so far
    new_in_month: int  # of whom were not active in the MAU_DAYS - 1 days before


async def seen(conn: AsyncConnection, ids: list[str], first: date, end: date) -> set[str]:
    """Which of ``ids`` were active in the folded days ``[first, end)``."""
    seen: set[str] = set()
    for i in range(0, len(ids), CHUNK):
        seen.update(r[0] for r in await conn.execute(select(active_daily.c.user_id).distinct().where(
            active_daily.c.day >= first, active_daily.c.day < end, active_daily.c.user_id.in_(ids[i:i + CHUNK]))))
    return seen


async def refresh_recent(conn: AsyncConnection, ledger: Ledger, now: datetime, *,
                         stale_after: timedelta = timedelta(0)) -> Recent | None:
    """Bring the recent day up to ``now - MARGIN`` (in the caller's transaction) and return it;
    None while nothing is folded yet. Serialised on the state row; skipped when it is
    younger than ``stale_after``."""
    watermark = await folded_until(conn)
    if watermark is None:
        return None
    lock = select(recent_state).where(recent_state.c.name == STATE_KEY)
    if conn.dialect.name == "postgresql":
        lock = lock.with_for_update()
    row = (await conn.execute(lock)).first()
    start = day_start(watermark)
    cut = min(now - MARGIN, day_start(watermark + timedelta(days=1)))
    if row is None or _date(row.day) != watermark:
        await conn.execute(delete(recent_volume))
        await conn.execute(delete(recent_payers))
        through = start
    else:
        through = as_utc(row.through)
    if cut > through and cut - through >= stale_after:
        span = await grouped_span(conn, ledger, through, cut, await city_provinces(conn))
        known = {(str(p), str(pr), str(c)): [int(n), int(a), int(g)] for p, pr, c, n, a, g in await conn.execute(
            select(recent_volume.c.product, recent_volume.c.province, recent_volume.c.city, recent_volume.c.count,
                   recent_volume.c.amount, recent_volume.c.gmv))}
        for (_, p, pr, c), v in span.volume.items():
            was = known.get((p, pr, c))
            if was is None:
                await conn.execute(insert(recent_volume).values(product=p, province=pr, city=c, count=v[0],
                                                                amount=v[1], gmv=v[2]))
            else:
                await conn.execute(update(recent_volume).where(
                    recent_volume.c.product == p, recent_volume.c.province == pr, recent_volume.c.city == c)
                    .values(count=was[0] + v[0], amount=was[1] + v[1], gmv=was[2] + v[2]))
        ids = sorted(set().union(*span.payers.values()))
        have: set[str] = set()
        for i in range(0, len(ids), CHUNK):
            have.update(r[0] for r in await conn.execute(select(recent_payers.c.user_id).where(
                recent_payers.c.user_id.in_(ids[i:i + CHUNK]))))
        new = [u for u in ids if u not in have]
        if new:
            before = await seen(conn, new, watermark - timedelta(days=MAU_DAYS - 1), watermark)
            await conn.execute(insert(recent_payers), [{"user_id": u, "new_in_month": u not in before}
                                                       for u in new])
        through = cut
        if row is None:
            await conn.execute(insert(recent_state).values(name=STATE_KEY, day=watermark, through=through))
        else:
            await conn.execute(update(recent_state).where(recent_state.c.name == STATE_KEY).values(
                day=watermark, through=through))
    elif row is not None and _date(row.day) != watermark:
        await conn.execute(update(recent_state).where(recent_state.c.name == STATE_KEY).values(
            day=watermark, through=through))
    elif row is None:
        await conn.execute(insert(recent_state).values(name=STATE_KEY, day=watermark, through=through))
    volume = {(str(p), str(pr), str(c)): [int(n), int(a), int(g)] for p, pr, c, n, a, g in await conn.execute(
        select(recent_volume.c.product, recent_volume.c.province, recent_volume.c.city, recent_volume.c.count,
               recent_volume.c.amount, recent_volume.c.gmv))}
    payers, fresh = (await conn.execute(select(func.count(), func.count().filter(recent_payers.c.new_in_month))
                                        .select_from(recent_payers))).one()
    return Recent(watermark, through, volume, int(payers), int(fresh or 0))


async def recent_split(conn: AsyncConnection, ids: list[str]) -> tuple[set[str], set[str]]:
    """Of ``ids`` (payers after the recent day's ``through``): those already among its payers,
    and those among them that are new in the month."""
    have: set[str] = set()
    fresh: set[str] = set()
    for i in range(0, len(ids), CHUNK):
        for uid, is_new in await conn.execute(select(recent_payers.c.user_id, recent_payers.c.new_in_month).where(
                recent_payers.c.user_id.in_(ids[i:i + CHUNK]))):
            have.add(uid)
            if is_new:
                fresh.add(uid)
    return have, fresh


async def refresh(db: Database, clock: Clock, ledger: Ledger) -> None:
    """The worker's every-minute refresh of the recent day."""
    await db.run(lambda conn: refresh_recent(conn, ledger, clock.now()))
