"""The operator console's KPI figures, behind one function: :func:`dashboard`.

**Contract (stable; the console and the benchmark depend on it):**
``async def dashboard(c: Container, since: datetime, until: datetime) -> Kpis`` with
``since``/``until`` timezone-aware instants (a window ``[since, until)``); days are
Shanghai business days. :class:`Kpis` and :class:`Volume` keep their fields; new fields
may be added with defaults. How the figures are computed is free to change (rollups,
indexes, caches): this first version is deliberately straightforward queries over the
live tables, correct but not fast on 1M transactions.

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
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, union

from mobipay.kernel.clock import SHANGHAI
from mobipay.kernel.orders import OrderState
from mobipay.merchants.tables import merchants, trades
from mobipay.platform.partner_orders import partner_orders
from mobipay.platform.uow import UnitOfWork
from mobipay.wallet.tables import users

if TYPE_CHECKING:
    from mobipay.platform.bootstrap import Container

MAU_WINDOW = timedelta(days=30)
MERCHANT = "merchant"


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


async def dashboard(c: Container, since: datetime, until: datetime) -> Kpis:
    """Every figure of the console's dashboard for ``[since, until)``."""
    if since.tzinfo is None or until.tzinfo is None:
        raise ValueError("since and until must be timezone-aware")
    if until <= since:
        raise ValueError("until must be after since")

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
