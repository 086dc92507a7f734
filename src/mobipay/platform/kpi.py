"""The operator console's KPI figures, behind one function: :func:`dashboard`.

**Contract (stable; the console and the benchmark depend on it):**
``async def dashboard(c: Container, since: datetime, until: datetime) -> Kpis`` with
``since``/``until`` timezone-aware instants (a window ``[since, until)``); days are
Shanghai business days. :class:`Kpis` and :class:`Volume` keep their fields; new fields
may be added with defaults.

How: :func:`dashboard` reads whole folded days from the rollups in
:mod:`mobipay.platform.rollups` and computes the rest (days not folded yet, partial days at
the window's edges) from the live tables through indexes, so it is exact whatever the fold
lag and fast on millions of rows. :func:`dashboard_direct` is the straightforward
computation over the live tables, kept as the definition the tests compare against.

What is counted:

* payments are settled partner orders (top-up, bills, cash-in/out, operator products,
  insurance, lottery, …: ``product`` = the order's kind) and paid merchant trades
  (``product`` = ``merchant``); person-to-person transfers live only in the ledger and
  are not counted yet;
* registered users: wallets created before ``until``; new users: in the window;
* monthly active users: distinct subscribers with a succeeded order or a paid trade in
  the 30 days before ``until``;
* merchants: approved ones (taking payments), and all of them;
* success rate per product: succeeded / (succeeded + failed) of orders created in the
  window (pending ones are not decided yet); trades: paid / (paid + closed unpaid).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, func, select, union

from mobipay.kernel.clock import SHANGHAI
from mobipay.kernel.orders import OrderState
from mobipay.merchants.tables import merchants, trades
from mobipay.platform import rollups
from mobipay.platform.partner_orders import partner_orders
from mobipay.platform.rollups import active_daily, outcomes_daily, volume_daily
from mobipay.platform.uow import UnitOfWork
from mobipay.wallet.tables import users

if TYPE_CHECKING:
    from mobipay.platform.bootstrap import Container

MAU_WINDOW = timedelta(days=30)
MERCHANT = rollups.MERCHANT


@dataclass(frozen=True, slots=True)
class Volume:
    key: str
    count: int
    amount: int  # fen


@dataclass(frozen=True, slots=True)
class Kpis:
    since: datetime
    until: datetime
    registered_users: int
    new_users: int
    monthly_active_users: int
    merchants_approved: int
    merchants_total: int
    by_product: list[Volume] = field(default_factory=list)  # largest amount first
    by_city: list[Volume] = field(default_factory=list)  # largest amount first; "-" when unknown
    by_day: list[Volume] = field(default_factory=list)  # Shanghai days, in order
    success_rates: dict[str, float] = field(default_factory=dict)  # product → 0..1

    @property
    def total(self) -> Volume:
        return Volume("total", sum(v.count for v in self.by_product), sum(v.amount for v in self.by_product))

    def product(self, key: str) -> Volume:
        """One product's volume (zero when nothing was paid), e.g. ``topup`` or ``bill``."""
        return next((v for v in self.by_product if v.key == key), Volume(key, 0, 0))


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _check(since: datetime, until: datetime) -> None:
    if since.tzinfo is None or until.tzinfo is None:
        raise ValueError("since and until must be timezone-aware")
    if until <= since:
        raise ValueError("until must be after since")


async def dashboard_direct(c: Container, since: datetime, until: datetime) -> Kpis:
    """Every figure of the console's dashboard for ``[since, until)``, straight from the
    live tables (the reference :func:`dashboard` must agree with; slow on big data)."""
    _check(since, until)

    async def work(uow: UnitOfWork) -> Kpis:
        conn = uow.conn
        registered = (await conn.execute(select(func.count()).select_from(users)
                                         .where(users.c.created_at < until))).scalar_one()
        new = (await conn.execute(select(func.count()).select_from(users).where(
            users.c.created_at >= since, users.c.created_at < until))).scalar_one()
        active = union(
            select(partner_orders.c.user_id.label("uid")).where(
                partner_orders.c.state == OrderState.SUCCEEDED.value,
                partner_orders.c.settled_at >= until - MAU_WINDOW, partner_orders.c.settled_at < until),
            select(trades.c.payer_id.label("uid")).where(
                trades.c.payer_id.is_not(None), trades.c.paid_at >= until - MAU_WINDOW, trades.c.paid_at < until),
        ).subquery()
        mau = (await conn.execute(select(func.count()).select_from(active))).scalar_one()
        approved = (await conn.execute(select(func.count()).select_from(merchants)
                                       .where(merchants.c.state == "approved"))).scalar_one()
        all_merchants = (await conn.execute(select(func.count()).select_from(merchants))).scalar_one()

        product: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        city: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        day: dict[str, list[int]] = defaultdict(lambda: [0, 0])

        def add(kind: str, where: str, at: datetime, amount: int) -> None:
            d = _utc(at).astimezone(SHANGHAI).date().isoformat()
            for bucket, key in ((product, kind), (city, where), (day, d)):
                bucket[key][0] += 1
                bucket[key][1] += amount

        orders = await conn.execute(select(partner_orders.c.kind, partner_orders.c.amount, partner_orders.c.details,
                                           partner_orders.c.settled_at).where(
            partner_orders.c.state == OrderState.SUCCEEDED.value, partner_orders.c.settled_at >= since,
            partner_orders.c.settled_at < until))
        for kind, amount, details, settled_at in orders:
            d: dict[str, Any] = json.loads(details or "{}")
            add(kind, str(d.get("city") or "-"), settled_at, amount)
        paid = await conn.execute(select(trades.c.amount, trades.c.paid_at).where(
            trades.c.paid_at >= since, trades.c.paid_at < until))
        for amount, paid_at in paid:
            add(MERCHANT, "-", paid_at, amount)

        decided: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # product → [succeeded, decided]
        outcomes = await conn.execute(select(partner_orders.c.kind, partner_orders.c.state, func.count()).where(
            partner_orders.c.created_at >= since, partner_orders.c.created_at < until,
            partner_orders.c.state.in_([OrderState.SUCCEEDED.value, OrderState.FAILED.value]))
            .group_by(partner_orders.c.kind, partner_orders.c.state))
        for kind, state, n in outcomes:
            decided[kind][1] += n
            if state == OrderState.SUCCEEDED.value:
                decided[kind][0] += n
        trade_outcomes = await conn.execute(select(trades.c.paid_at.is_not(None), func.count()).where(
            trades.c.created_at >= since, trades.c.created_at < until,
            (trades.c.paid_at.is_not(None)) | (trades.c.closed_at.is_not(None)))
            .group_by(trades.c.paid_at.is_not(None)))
        for was_paid, n in trade_outcomes:
            decided[MERCHANT][1] += n
            if was_paid:
                decided[MERCHANT][0] += n

        def rows(bucket: dict[str, list[int]], *, by_key: bool = False) -> list[Volume]:
            keys = sorted(bucket) if by_key else sorted(bucket, key=lambda k: (-bucket[k][1], k))
            return [Volume(k, bucket[k][0], bucket[k][1]) for k in keys]

        return Kpis(since=since, until=until, registered_users=registered, new_users=new,
                    monthly_active_users=mau, merchants_approved=approved, merchants_total=all_merchants,
                    by_product=rows(product), by_city=rows(city), by_day=rows(day, by_key=True),
                    success_rates={k: s / n for k, (s, n) in sorted(decided.items()) if n})

    return await c.uow.run("kpi_dashboard", work)


@dataclass(frozen=True, slots=True)
class _Split:
    """A window cut into folded whole days ``[first, end)`` and live intervals around them."""

    days: tuple[date, date] | None
    live: list[tuple[datetime, datetime]]


def _split(since: datetime, until: datetime, watermark: date | None) -> _Split:
    if watermark is None:
        return _Split(None, [(since, until)])
    first = rollups.day_of(since)
    if rollups.day_start(first) < since:
        first += timedelta(days=1)
    end = min(rollups.day_of(until), watermark)  # every day before day_of(until) ends by until
    if first >= end:
        return _Split(None, [(since, until)])
    a, b = rollups.day_start(first), rollups.day_start(end)
    return _Split((first, end), [(x, y) for x, y in ((since, a), (b, until)) if x < y])


async def dashboard(c: Container, since: datetime, until: datetime) -> Kpis:
    """Every figure of the console's dashboard for ``[since, until)``: folded days from the
    rollups, the rest live (see the module docstring); agrees with :func:`dashboard_direct`."""
    _check(since, until)

    async def work(uow: UnitOfWork) -> Kpis:
        conn = uow.conn
        watermark = await rollups.folded_until(conn)
        split = _split(since, until, watermark)
        registered = (await conn.execute(select(func.count()).select_from(users)
                                         .where(users.c.created_at < until))).scalar_one()
        new = (await conn.execute(select(func.count()).select_from(users).where(
            users.c.created_at >= since, users.c.created_at < until))).scalar_one()
        approved = (await conn.execute(select(func.count()).select_from(merchants)
                                       .where(merchants.c.state == "approved"))).scalar_one()
        all_merchants = (await conn.execute(select(func.count()).select_from(merchants))).scalar_one()

        # -- monthly actives: distinct payers of the folded days (cached per range), plus the
        # live payers who were not among them
        msplit = _split(until - MAU_WINDOW, until, watermark)
        parts: list[Select[Any]] = []
        for x, y in msplit.live:
            parts.append(select(partner_orders.c.user_id.label("uid")).where(
                partner_orders.c.settled_at >= x, partner_orders.c.settled_at < y,
                partner_orders.c.state == OrderState.SUCCEEDED.value))
            parts.append(select(trades.c.payer_id.label("uid")).where(
                trades.c.paid_at >= x, trades.c.paid_at < y, trades.c.payer_id.is_not(None)))
        live = (union(*parts) if parts else select(users.c.id.label("uid")).where(users.c.id.is_(None))).subquery()
        if msplit.days:
            f, e = msplit.days
            mau = await rollups.folded_actives(conn, f, e)
            seen = select(active_daily.c.user_id).where(active_daily.c.user_id == live.c.uid,
                                                        active_daily.c.day >= f, active_daily.c.day < e)
            mau += (await conn.execute(select(func.count()).select_from(live).where(~seen.exists()))).scalar_one()
        else:
            mau = (await conn.execute(select(func.count()).select_from(live))).scalar_one()

        # -- volumes
        product: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        city: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        day: dict[str, list[int]] = defaultdict(lambda: [0, 0])

        def add(kind: str, where: str, d: str, count: int, amount: int) -> None:
            for bucket, key in ((product, kind), (city, where), (day, d)):
                bucket[key][0] += count
                bucket[key][1] += amount

        if split.days:  # summed per dimension in the database: a few hundred rows back, not 10k
            in_days = (volume_daily.c.day >= split.days[0], volume_daily.c.day < split.days[1])
            n_sum, a_sum = func.sum(volume_daily.c.count), func.sum(volume_daily.c.amount)
            for bucket, column in ((product, volume_daily.c.product), (city, volume_daily.c.city),
                                   (day, volume_daily.c.day)):
                for key, n, amount in await conn.execute(select(column, n_sum, a_sum).where(*in_days)
                                                         .group_by(column)):
                    bucket[str(key)[:10] if column is volume_daily.c.day else str(key)][0] += int(n)
                    bucket[str(key)[:10] if column is volume_daily.c.day else str(key)][1] += int(amount)
        dialect = conn.dialect.name
        for x, y in split.live:  # grouped in the database: a partial day is ~10k rows at 1M payments
            o_day = rollups.day_sql(partner_orders.c.settled_at, dialect)
            o_city = rollups.city_sql(dialect)
            orders = await conn.execute(select(partner_orders.c.kind, o_city, o_day, func.count(),
                                               func.sum(partner_orders.c.amount)).where(
                partner_orders.c.settled_at >= x, partner_orders.c.settled_at < y,
                partner_orders.c.state == OrderState.SUCCEEDED.value).group_by(partner_orders.c.kind, o_city, o_day))
            for kind, where, d, n, amount in orders:
                add(kind, str(where), str(d), int(n), int(amount))
            t_day = rollups.day_sql(trades.c.paid_at, dialect)
            paid = await conn.execute(select(t_day, func.count(), func.sum(trades.c.amount)).where(
                trades.c.paid_at >= x, trades.c.paid_at < y).group_by(t_day))
            for d, n, amount in paid:
                add(MERCHANT, rollups.NO_CITY, str(d), int(n), int(amount))

        # -- success rates by day created: folded decisions, then decisions after the watermark
        decided: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # product → [succeeded, decided]
        created_live = list(split.live)
        late: tuple[datetime, datetime, datetime] | None = None
        if split.days and watermark is not None:
            sums = await conn.execute(select(outcomes_daily.c.product, func.sum(outcomes_daily.c.succeeded),
                                             func.sum(outcomes_daily.c.failed)).where(
                outcomes_daily.c.created_day >= split.days[0], outcomes_daily.c.created_day < split.days[1],
                outcomes_daily.c.decided_day < watermark).group_by(outcomes_daily.c.product))
            for kind, ok, failed in sums:
                decided[kind][0] += int(ok)
                decided[kind][1] += int(ok) + int(failed)
            late = (rollups.day_start(split.days[0]), rollups.day_start(split.days[1]),
                    rollups.day_start(watermark))
        decisions = (OrderState.SUCCEEDED.value, OrderState.FAILED.value)
        order_sets = [(partner_orders.c.created_at >= x) & (partner_orders.c.created_at < y)
                      for x, y in created_live]
        trade_sets = [(trades.c.created_at >= x) & (trades.c.created_at < y)
                      & (trades.c.paid_at.is_not(None) | trades.c.closed_at.is_not(None)) for x, y in created_live]
        if late is not None:
            a, b, ws = late
            order_sets.append((partner_orders.c.created_at >= a) & (partner_orders.c.created_at < b)
                              & (partner_orders.c.settled_at >= ws))
            trade_sets.append((trades.c.created_at >= a) & (trades.c.created_at < b) & (trades.c.paid_at >= ws))
            trade_sets.append((trades.c.created_at >= a) & (trades.c.created_at < b) & trades.c.paid_at.is_(None)
                              & (trades.c.closed_at >= ws))
        for cond in order_sets:
            outcomes = await conn.execute(select(partner_orders.c.kind, partner_orders.c.state, func.count()).where(
                cond, partner_orders.c.state.in_(decisions)).group_by(partner_orders.c.kind, partner_orders.c.state))
            for kind, state, n in outcomes:
                decided[kind][1] += n
                if state == OrderState.SUCCEEDED.value:
                    decided[kind][0] += n
        for cond in trade_sets:
            trade_outcomes = await conn.execute(select(trades.c.paid_at.is_not(None), func.count()).where(cond)
                                                .group_by(trades.c.paid_at.is_not(None)))
            for was_paid, n in trade_outcomes:
                decided[MERCHANT][1] += n
                if was_paid:
                    decided[MERCHANT][0] += n

        def rows_of(bucket: dict[str, list[int]], *, by_key: bool = False) -> list[Volume]:
            keys = sorted(bucket) if by_key else sorted(bucket, key=lambda k: (-bucket[k][1], k))
            return [Volume(k, bucket[k][0], bucket[k][1]) for k in keys]

        return Kpis(since=since, until=until, registered_users=registered, new_users=new,
                    monthly_active_users=mau, merchants_approved=approved, merchants_total=all_merchants,
                    by_product=rows_of(product), by_city=rows_of(city), by_day=rows_of(day, by_key=True),
                    success_rates={k: s / n for k, (s, n) in sorted(decided.items()) if n})

    return await c.uow.run("kpi_dashboard", work)
