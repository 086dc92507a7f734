"""The operator console's KPI figures, behind one function: :func:`dashboard`.

**Contract (the console, its JSON and the benchmark depend on it):**
``async def dashboard(c: Container, since: datetime, until: datetime) -> Kpis`` with
``since``/``until`` timezone-aware instants (a window ``[since, until)``); days are
Shanghai business days. The console asks for whole days: the last N days up to now.

What each figure means is written down in docs/kpi.md, and computed by the rules in
:mod:`mobipay.reporting.rollups` (:func:`~mobipay.reporting.rollups.compute_span`):

* **payments** are what subscribers paid out of their wallets: P2P transfers sent, top-ups
  (at the price paid, after a discount), bills, merchant payments (less the red envelope),
  operator products, insurance and lottery. Cash-in and cash-out are fund movements,
  shown apart; a merchant's settlement payout is the merchant's own sales leaving for its
  bank and is counted nowhere (the sales were counted when paid);
* **GMV** is the value sold: top-ups at face value, trades at their full amount, the
  others at their amount; transfers sell nothing;
* **active users** paid at least one payment: daily (the window's last day) and monthly
  (the 30 Shanghai days ending on it);
* **success rate** per product: succeeded / decided of those created in the window.

How: :func:`dashboard` reads whole folded days from the rollups and computes the rest
(today, days not folded yet, a partial first day) from the live tables through indexes,
so it is exact whatever the fold lag and fast on millions of rows. :func:`dashboard_direct`
computes everything from the live tables, the reference the tests compare against.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select, text

from mobipay.ledger.uow import UnitOfWork
from mobipay.merchants.tables import merchants, trades
from mobipay.orders.model import OrderState
from mobipay.orders.tables import partner_orders
from mobipay.reporting import rollups
from mobipay.reporting.rollups import FUNDS_IN, FUNDS_OUT, MERCHANT, PAYMENTS, Span
from mobipay.reporting.tables import outcomes_daily, product_daily
from mobipay.wallet.tables import users

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from mobipay.app.bootstrap import Container

MAU_DAYS = rollups.MAU_DAYS
#: Readers bring the recent day up to date when it is older than this (the worker does every minute).
RECENT_STALE = timedelta(seconds=60)
_EPSILON = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Volume:
    key: str
    count: int
    amount: int  # fen paid
    gmv: int = 0  # fen sold
    parent: str = ""  # a city's province


@dataclass(frozen=True, slots=True)
class Day:
    day: str  # YYYY-MM-DD, Shanghai
    count: int
    amount: int
    gmv: int
    active_users: int


@dataclass(frozen=True, slots=True)
class Kpis:
    since: datetime
    until: datetime
    registered_users: int
    new_users: int
    daily_active_users: int  # payers on the window's last day
    monthly_active_users: int  # payers over the MAU_DAYS days ending on it
    merchants_approved: int
    merchants_total: int
    by_product: list[Volume] = field(default_factory=list)  # payments, largest amount first
    by_province: list[Volume] = field(default_factory=list)  # payments; "-" when unknown
    by_city: list[Volume] = field(default_factory=list)  # payments, ``parent`` = province
    by_day: list[Day] = field(default_factory=list)  # every day of the window, in order
    trend: dict[str, list[int]] = field(default_factory=dict)  # payment product -> fen per day of by_day
    funds: list[Volume] = field(default_factory=list)  # cash-in and cash-out: money in and out, not payments
    outcomes: dict[str, tuple[int, int]] = field(default_factory=dict)  # product -> (succeeded, decided)

    @property
    def total(self) -> Volume:
        """All payments of the window."""
        return Volume("total", sum(v.count for v in self.by_product), sum(v.amount for v in self.by_product),
                      sum(v.gmv for v in self.by_product))

    def product(self, key: str) -> Volume:
        """One product's payments (zero when none), e.g. ``topup`` or ``p2p``."""
        return next((v for v in self.by_product if v.key == key), Volume(key, 0, 0))

    def fund(self, key: str) -> Volume:
        """One fund movement (``cash_in``, ``cash_out``…), zero when none."""
        return next((v for v in self.funds if v.key == key), Volume(key, 0, 0))

    @property
    def success_rates(self) -> dict[str, float]:
        """Per product (payments and fund movements): succeeded / decided, 0..1."""
        return {k: ok / n for k, (ok, n) in self.outcomes.items() if n}

    @property
    def success_rate(self) -> float | None:
        """All payments decided in the window (None when none was)."""
        ok = sum(s for k, (s, _) in self.outcomes.items() if k in PAYMENTS)
        n = sum(d for k, (_, d) in self.outcomes.items() if k in PAYMENTS)
        return ok / n if n else None


def _check(since: datetime, until: datetime) -> None:
    if since.tzinfo is None or until.tzinfo is None:
        raise ValueError("since and until must be timezone-aware")
    if until <= since:
        raise ValueError("until must be after since")


def window(now: datetime, days: int) -> tuple[datetime, datetime]:
    """The last ``days`` Shanghai days up to ``now``: today so far and the days before it."""
    today = rollups.day_of(now)
    return rollups.day_start(today - timedelta(days=days - 1)), now


def _last_day(until: datetime) -> date:
    return rollups.day_of(until - _EPSILON)


def _mau_start(until: datetime) -> datetime:
    return rollups.day_start(_last_day(until) - timedelta(days=MAU_DAYS - 1))


class _Tally:
    """Volumes summed two ways: per (day, product) and per (product, province, city)."""

    def __init__(self) -> None:
        self.by_day: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
        self.by_place: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
        self.actives: dict[str, int] = {}

    def add_span(self, span: Span) -> None:
        for (day, product, province, city), (n, amount, gmv) in span.volume.items():
            for bucket, key in ((self.by_day, (day.isoformat(), product)),
                                (self.by_place, (product, province, city))):
                v = bucket[key]  # type: ignore[index]
                v[0] += n
                v[1] += amount
                v[2] += gmv
        for day, payers in span.payers.items():
            self.actives[day.isoformat()] = self.actives.get(day.isoformat(), 0) + len(payers)

    def kpis(self, since: datetime, until: datetime, counts: tuple[int, int, int, int], dau: int, mau: int,
             outcomes: dict[str, list[int]]) -> Kpis:
        registered, new, approved, total = counts
        product: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        for (_, p), v in self.by_day.items():
            for i in range(3):
                product[p][i] += v[i]
        province: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        city: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
        for (p, pr, c), v in self.by_place.items():
            if p not in PAYMENTS:
                continue
            for i in range(3):
                province[pr][i] += v[i]
                city[(pr, c)][i] += v[i]
        days = [rollups.day_of(since) + timedelta(days=i)
                for i in range((_last_day(until) - rollups.day_of(since)).days + 1)]
        labels = [d.isoformat() for d in days]
        per_day: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        for (d, p), v in self.by_day.items():
            if p in PAYMENTS:
                for i in range(3):
                    per_day[d][i] += v[i]

        def largest(bucket: dict[str, list[int]], keys: list[str]) -> list[Volume]:
            return [Volume(k, bucket[k][0], bucket[k][1], bucket[k][2])
                    for k in sorted(keys, key=lambda k: (-bucket[k][1], k))]

        payments = [k for k in product if k in PAYMENTS]
        trend = {p: [self.by_day[(d, p)][1] if (d, p) in self.by_day else 0 for d in labels]
                 for p in sorted(payments, key=lambda k: (-product[k][1], k))}
        return Kpis(
            since=since, until=until, registered_users=registered, new_users=new, daily_active_users=dau,
            monthly_active_users=mau, merchants_approved=approved, merchants_total=total,
            by_product=largest(product, payments), by_province=largest(province, list(province)),
            by_city=[Volume(c, city[(pr, c)][0], city[(pr, c)][1], city[(pr, c)][2], parent=pr)
                     for pr, c in sorted(city, key=lambda k: (-city[k][1], k))],
            by_day=[Day(d, v[0], v[1], v[2], self.actives.get(d, 0))
                    for d, v in ((d, per_day.get(d, [0, 0, 0])) for d in labels)],
            trend=trend, funds=largest(product, [k for k in product if k in FUNDS_IN + FUNDS_OUT]),
            outcomes={k: (ok, ok + failed) for k, (ok, failed) in sorted(outcomes.items()) if ok + failed})


async def _counts(conn: AsyncConnection, since: datetime, until: datetime,
                  watermark: date | None = None) -> tuple[int, int, int, int]:
    if watermark is not None:  # folded days from their sign-up counts
        registered = await rollups.registered_at(conn, until, watermark)
        new = registered - await rollups.registered_at(conn, since, watermark)
    else:
        registered = (await conn.execute(select(func.count()).select_from(users)
                                         .where(users.c.created_at < until))).scalar_one()
        new = (await conn.execute(select(func.count()).select_from(users).where(
            users.c.created_at >= since, users.c.created_at < until))).scalar_one()
    approved = (await conn.execute(select(func.count()).select_from(merchants)
                                   .where(merchants.c.state == "approved"))).scalar_one()
    total = (await conn.execute(select(func.count()).select_from(merchants))).scalar_one()
    return int(registered), int(new), int(approved), int(total)


async def dashboard_direct(c: Container, since: datetime, until: datetime) -> Kpis:
    """Every figure of the console's dashboard for ``[since, until)``, straight from the
    live tables (the reference :func:`dashboard` must agree with; slow on big data)."""
    _check(since, until)

    async def work(uow: UnitOfWork) -> Kpis:
        conn = uow.conn
        provinces = await rollups.city_provinces(conn)
        span = await rollups.compute_span(conn, uow.ledger, since, until, provinces)
        month = await rollups.compute_span(conn, uow.ledger, _mau_start(until), until, provinces)
        mau = len(set().union(*month.payers.values()))
        dau = len(month.payers.get(_last_day(until), set()))
        tally = _Tally()
        tally.add_span(span)

        decided: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # product -> [succeeded, failed]
        outcomes = await conn.execute(select(partner_orders.c.kind, partner_orders.c.state, func.count()).where(
            partner_orders.c.created_at >= since, partner_orders.c.created_at < until,
            partner_orders.c.state.in_([OrderState.SUCCEEDED.value, OrderState.FAILED.value]))
            .group_by(partner_orders.c.kind, partner_orders.c.state))
        for kind, state, n in outcomes:
            decided[kind][0 if state == OrderState.SUCCEEDED.value else 1] += n
        trade_outcomes = await conn.execute(select(trades.c.paid_at.is_not(None), func.count()).where(
            trades.c.created_at >= since, trades.c.created_at < until,
            trades.c.paid_at.is_not(None) | trades.c.closed_at.is_not(None) | (trades.c.expires_at <= uow.now))
            .group_by(trades.c.paid_at.is_not(None)))
        for was_paid, n in trade_outcomes:
            decided[MERCHANT][0 if was_paid else 1] += n
        return tally.kpis(since, until, await _counts(conn, since, until), dau, mau, decided)

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
    rollups, the rest live (see the module docstring); agrees with :func:`dashboard_direct`.
    Reads ``c.reads``: a replica when MOBIPAY_DATABASE_READ_URL is set, which is read-only,
    so there the recent rollup is not brought up to date (today is computed live)."""
    _check(since, until)
    replica = c.reads is not c.uow

    async def work(uow: UnitOfWork) -> Kpis:
        conn = uow.conn
        if conn.dialect.name == "postgresql":
            # Plan each statement for its own time bounds. asyncpg prepares statements, and from
            # the sixth run of one PostgreSQL may keep a generic plan that ignores the bounds:
            # the live queries after the watermark (a few minutes of rows) then scan by the
            # wrong index, 1 ms becoming 30-400 ms on every dashboard after the fifth.
            await conn.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
        watermark = await rollups.folded_until(conn)
        split = _split(since, until, watermark)
        msplit = _split(_mau_start(until), until, watermark)
        provinces = await rollups.city_provinces(conn)
        spans: dict[tuple[datetime, datetime], Span] = {}

        async def span(x: datetime, y: datetime) -> Span:
            if (x, y) not in spans:
                spans[(x, y)] = await rollups.grouped_span(conn, uow.ledger, x, y, provinces)
            return spans[(x, y)]

        # The watermark's day (today, once yesterday is folded) from the recent rollup up to a
        # few minutes ago, the rest of it live; any other live interval (a partial first day, days
        # not folded yet) live.
        last = _last_day(until)
        today = None if watermark is None else (rollups.day_start(watermark), until)
        recent = None
        if not replica and today is not None and watermark == last and today in split.live \
                and today in msplit.live and msplit.days and until <= uow.now:
            recent = await rollups.refresh_recent(conn, uow.ledger, uow.now, stale_after=RECENT_STALE)
            if recent is not None and (recent.day != watermark or recent.through > until):
                recent = None
        tally = _Tally()
        for x, y in split.live:
            if recent is not None and (x, y) == today:
                rest = await span(recent.through, until) if recent.through < until else Span()
                tally.add_span(rest)
                day = watermark.isoformat() if watermark else ""
                for (p, pr, ci), v in recent.volume.items():
                    for bucket, key in ((tally.by_day, (day, p)), (tally.by_place, (p, pr, ci))):
                        row = bucket[key]  # type: ignore[index]
                        for i in range(3):
                            row[i] += v[i]
                continue
            tally.add_span(await span(x, y))
        if split.days:  # a few rows a day for the trend; the places as two days' running totals
            f, e = split.days
            for d, p, *v in await conn.execute(select(product_daily.c.day, product_daily.c.product,
                                                      product_daily.c.count, product_daily.c.amount,
                                                      product_daily.c.gmv)
                                               .where(product_daily.c.day >= f, product_daily.c.day < e)):
                row = tally.by_day[(str(d)[:10], str(p))]
                for i in range(3):
                    row[i] += int(v[i])
            before = await rollups.place_sums(conn, f - timedelta(days=1))
            for key, v in (await rollups.place_sums(conn, e - timedelta(days=1))).items():
                was = before.get(key, [0, 0, 0])
                if v[0] != was[0]:
                    row = tally.by_place[key]
                    for i in range(3):
                        row[i] += v[i] - was[i]
            for d, n in (await rollups.daily_actives(conn, f, e)).items():
                tally.actives[d.isoformat()] = tally.actives.get(d.isoformat(), 0) + n

        # -- actives: the last day's payers, and the month's: distinct payers of the folded days
        # (cached per range) plus the live payers who were not among them
        live_payers: set[str] = set()
        dau = 0
        if recent is not None and msplit.days and watermark is not None:  # (always, with recent)
            f, e = msplit.days
            rest = await span(recent.through, until) if recent.through < until else Span()
            after = sorted(set().union(*rest.payers.values()))
            have, _ = await rollups.recent_split(conn, after)
            unseen = [u for u in after if u not in have]
            dau = recent.payers + len(unseen)
            tally.actives[watermark.isoformat()] = dau
            seen_before = await rollups.seen(conn, unseen, f, e)
            mau = await rollups.folded_actives(conn, f, e) + recent.new_in_month + len(set(unseen) - seen_before)
            msplit = _Split(msplit.days, [])  # done
        for x, y in msplit.live:
            s = await span(x, y)
            live_payers.update(*s.payers.values())
            dau += len(s.payers.get(last, set()))
        if recent is not None:
            pass
        elif msplit.days:
            f, e = msplit.days
            if f <= last < e:  # the last day is folded (a window that ends at midnight)
                dau = (await rollups.daily_actives(conn, last, last + timedelta(days=1))).get(last, 0)
            mau = await rollups.folded_actives(conn, f, e)
            mau += len(live_payers - await rollups.seen(conn, sorted(live_payers), f, e))
        else:
            mau = len(live_payers)

        # -- success rates by day created: folded decisions, then decisions after the watermark
        decided: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # product -> [succeeded, failed]
        late: tuple[datetime, datetime, datetime] | None = None
        if split.days and watermark is not None:
            sums2 = await conn.execute(select(outcomes_daily.c.product, func.sum(outcomes_daily.c.succeeded),
                                              func.sum(outcomes_daily.c.failed)).where(
                outcomes_daily.c.created_day >= split.days[0], outcomes_daily.c.created_day < split.days[1],
                outcomes_daily.c.decided_day < watermark).group_by(outcomes_daily.c.product))
            for kind, ok, failed in sums2:
                decided[kind][0] += int(ok)
                decided[kind][1] += int(failed)
            late = (rollups.day_start(split.days[0]), rollups.day_start(split.days[1]),
                    rollups.day_start(watermark))
        decisions = (OrderState.SUCCEEDED.value, OrderState.FAILED.value)
        order_sets = [(partner_orders.c.created_at >= x) & (partner_orders.c.created_at < y) for x, y in split.live]
        trade_sets = [(trades.c.created_at >= x) & (trades.c.created_at < y)
                      & (trades.c.paid_at.is_not(None) | trades.c.closed_at.is_not(None)
                         | (trades.c.expires_at <= uow.now)) for x, y in split.live]
        if late is not None:
            a, b, ws = late
            order_sets.append((partner_orders.c.created_at >= a) & (partner_orders.c.created_at < b)
                              & (partner_orders.c.settled_at >= ws))
            trade_sets.append((trades.c.created_at >= a) & (trades.c.created_at < b) & (trades.c.paid_at >= ws))
            trade_sets.append((trades.c.created_at >= a) & (trades.c.created_at < b)
                              & rollups.unpaid_between(ws, uow.now + _EPSILON))
        for cond in order_sets:
            outcomes = await conn.execute(select(partner_orders.c.kind, partner_orders.c.state, func.count()).where(
                cond, partner_orders.c.state.in_(decisions)).group_by(partner_orders.c.kind, partner_orders.c.state))
            for kind, state, n in outcomes:
                decided[kind][0 if state == OrderState.SUCCEEDED.value else 1] += n
        for cond in trade_sets:
            trade_outcomes = await conn.execute(select(trades.c.paid_at.is_not(None), func.count()).where(cond)
                                                .group_by(trades.c.paid_at.is_not(None)))
            for was_paid, n in trade_outcomes:
                decided[MERCHANT][0 if was_paid else 1] += n
        return tally.kpis(since, until, await _counts(conn, since, until, watermark), dau, mau, decided)

    return await c.reads.run("kpi_dashboard", work)
