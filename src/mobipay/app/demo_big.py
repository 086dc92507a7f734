"""Payment history for the demo, at any size: the default ``mobipay demo`` loads 90 days of
it (:func:`load_demo_history`) so a newcomer's dashboard is not empty, and the big demo for
the console's performance work (``mobipay demo --users 100000 --transactions 1000000``)
loads a million payments (:func:`load_big_demo`). Each has its own ids and numbers, so both
can sit in one database.

Subscribers across the operators' number segments and 50 cities, tiers, merchants with
apps, and a history of payments of the real kinds spread over ``days``: transfers, cash-in
and cash-out, top-ups, bills, operator products, insurance, lottery (settled partner
orders, a few failed) and merchant trades (a few closed unpaid), a few reconciliation
exceptions and complaints for the console's lists.

Why it is fast enough on two cores: the money moves through :meth:`Ledger.post_batch` in
batches of :data:`BATCH` (the ledger's own set-based write path, one statement per batch
on PostgreSQL: ~20,000 transfers/s measured), so the ledger's invariants (balanced
postings, account sequences, balances) hold by construction and ``ledger verify`` stays
clean; subscribers' balances are tracked here so no transfer is refused. The rows around
the money (users, accounts, orders, trades) are bulk inserts: COPY through asyncpg on
PostgreSQL, ``executemany`` on SQLite. Each batch's transfers carry the batch's instant
(a manual clock moved through the history, ~1 hour apart at 1M over 90 days); orders and
trades carry their own instant within it. Afterwards the KPI rollups are refolded.

Subscribers carry their number's home region (归属地: a province and city), which places
their payments on the console's map; bills are placed at their biller's city.

Deterministic: the same seed gives the same people, payments and amounts (the instants are
relative to the clock's now). Not idempotent row by row: a second run finds the first
subscriber and stops.
"""

from __future__ import annotations

import csv
import json
import random
import time
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import resources
from typing import Any

from sqlalchemy import Table, func, insert, select

from mobipay.bills.model import Biller
from mobipay.bills.reference_data import shipped_billers
from mobipay.bills.tables import complaints
from mobipay.kernel.clock import Clock, ManualClock
from mobipay.ledger.chart import (
    BANK_SETTLEMENT,
    FEE_INCOME,
    OPERATOR_PRODUCT_INCOME,
    PAYABLE_AGGREGATOR,
    PAYABLE_INSURER,
    PAYABLE_LOTTERY,
    PAYABLE_OPERATOR_BILLING,
    SYSTEM_ACCOUNTS,
    TOPUP_DISCOUNTS,
    wallet_account,
)
from mobipay.ledger.model import AccountKind, Command, Leg, Transfer, VoidPending
from mobipay.ledger.service import AccountSpec, Ledger
from mobipay.merchants.model import credit_code_check_char
from mobipay.merchants.reference_data import categories
from mobipay.merchants.tables import merchant_apps, merchants, trades
from mobipay.orders.tables import partner_orders, partner_recon_items
from mobipay.platform.db import Database
from mobipay.reporting import rollups
from mobipay.wallet.reference_data import number_segments
from mobipay.wallet.tables import users

BATCH = 500  # payments generated per step (at most this many transfers per ledger batch)
SLOT_S = 4 * 3600  # the history's clock moves in steps of at most this (transfers are dated by it)
ROWS = 5000  # order and trade rows per bulk insert
#: The biggest cities first (the rest by name): they get the most subscribers.
BIG_CITIES = ("上海", "北京", "广州", "深圳", "重庆", "成都", "杭州", "武汉", "天津", "南京", "西安", "苏州", "郑州",
              "长沙", "青岛", "东莞", "沈阳", "佛山", "宁波", "合肥", "济南", "福州", "哈尔滨", "昆明")
#: Share of each kind of payment in the history (sums to 1).
MIX: tuple[tuple[str, float], ...] = (
    ("p2p", 0.32), ("merchant", 0.20), ("topup", 0.16), ("bill", 0.12), ("cash_in", 0.09), ("cash_out", 0.05),
    ("operator_product", 0.03), ("insurance", 0.015), ("lottery", 0.015),
)
FAILED_SHARE = 0.03  # orders the partner refused (hold, then void)
CLOSED_SHARE = 0.04  # merchant trades closed unpaid
LOW_RISK_MCC = ("5311", "5411", "5812", "5942", "5999")
PAYABLE = {"operator_billing": PAYABLE_OPERATOR_BILLING, "topup_aggregator": PAYABLE_AGGREGATOR}


@dataclass
class BigDemoReport:
    users: int = 0
    merchants: int = 0
    transfers: int = 0
    orders: int = 0
    trades: int = 0
    seconds: float = 0.0
    skipped: bool = False
    kinds: dict[str, int] = field(default_factory=dict)


@dataclass
class _User:
    id: str
    msisdn: str
    account: str
    city: str
    operator: str
    created_at: datetime


def _prefixes() -> list[str]:
    """The three-digit segments of the operators' number plan (unique numbers per prefix)."""
    text = (resources.files("mobipay.wallet") / "data" / "number_segments.csv").read_text(encoding="utf-8")
    rows = csv.DictReader(line for line in text.splitlines() if line and not line.startswith("#"))
    return sorted({r["prefix"] for r in rows if len(r["prefix"]) == 3})


async def _bulk(db: Database, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert many rows: COPY on PostgreSQL (several times faster than INSERT), executemany on SQLite."""
    if not rows:
        return
    if db.dialect == "postgresql":
        cols = list(rows[0])
        async with db.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
                table.name, records=[tuple(r[c] for c in cols) for r in rows], columns=cols)
        return
    async with db.begin() as conn:
        await conn.execute(insert(table), list(rows))


def _amount(rng: random.Random, low: int, high: int) -> int:
    """A fen amount, log-uniform between low and high yuan, rounded to whole jiao."""
    return int(round(low * (high / low) ** rng.random(), 1) * 100)


@dataclass(frozen=True)
class Namespace:
    """What keeps one generated history apart from another: id tags and number ranges."""

    tag: str  # in every id: usr_<tag>…, mch_<tag>…, p2p:<tag>…
    numbers: int  # subscribers' numbers are +86 <prefix> <numbers + i>
    credit: str  # the merchants' credit codes start with it (7 digits)
    contacts: int  # the merchants' contact numbers are +86139 <contacts + j>


BIG = Namespace("big", 70_000_000, "9144000", 60_000_000)
HISTORY = Namespace("hist", 60_000_000, "9145000", 50_000_000)


async def load_demo_history(db: Database, ledger: Ledger, clock: Clock, *, users_count: int = 1000,
                            payments: int = 12_000, days: int = 90, home_operator: str = "china_mobile",
                            progress: Callable[[str], None] | None = None) -> BigDemoReport:
    """The default demo's history: ``users_count`` subscribers of their own (the tour's
    wallets keep their balances) paying ``payments`` times over the last ``days`` days."""
    return await load_big_demo(db, ledger, clock, users_count=users_count, transactions=payments, days=days,
                               seed=90, home_operator=home_operator, progress=progress, space=HISTORY,
                               joined_before_days=30, complaints=10)


async def load_big_demo(db: Database, ledger: Ledger, clock: Clock, *, users_count: int, transactions: int,
                        days: int = 90, seed: int = 2026, home_operator: str = "china_mobile",
                        progress: Callable[[str], None] | None = None, space: Namespace = BIG,
                        joined_before_days: int = 365, complaints: int = 200, batch: int = BATCH) -> BigDemoReport:
    """Generate the data; ``progress`` hears a line now and then (long CLI work shows progress)."""
    say = progress or (lambda _line: None)
    report = BigDemoReport()
    started = time.monotonic()
    tag = space.tag
    async with db.begin() as conn:
        first = f"usr_{tag}{0:08d}"
        if (await conn.execute(select(func.count()).select_from(users).where(users.c.id == first))).scalar_one():
            report.skipped = True
            return report
    rng = random.Random(seed)
    now = clock.now()
    begin = now - timedelta(days=days)
    segments = number_segments()
    billers: list[Biller] = shipped_billers()
    cities = sorted({b.city for b in billers})
    province_of = {b.city: b.province for b in billers}
    by_city: dict[str, list[Biller]] = {}
    for b in billers:
        by_city.setdefault(b.city, []).append(b)
    # Bigger cities first and heavier: a Zipf-like weight by position.
    cities.sort(key=lambda city: (BIG_CITIES.index(city) if city in BIG_CITIES else len(BIG_CITIES), city))
    city_weights = [1 / (i + 1) ** 0.8 for i in range(len(cities))]

    # ------------------------------------------------------------------ subscribers
    prefixes = _prefixes()
    people: list[_User] = []
    for i in range(users_count):
        prefix = prefixes[i % len(prefixes)]
        msisdn = f"+86{prefix}{space.numbers + i // len(prefixes):08d}"
        # Three in four registered before the history starts, the rest during it.
        if rng.random() < 0.75:
            created = begin - timedelta(seconds=rng.uniform(0, joined_before_days * 86400))
        else:
            created = begin + timedelta(seconds=rng.uniform(0, days * 86400))
        people.append(_User(f"usr_{tag}{i:08d}", msisdn, f"wallet:{msisdn}",
                            rng.choices(cities, city_weights)[0], segments.lookup(msisdn).operator.value, created))
    people.sort(key=lambda u: u.created_at)
    joined = [u.created_at for u in people]
    say(f"  subscribers: opening {users_count:,} wallets …")
    await ledger.open_accounts(list(SYSTEM_ACCOUNTS))
    await ledger.open_accounts_bulk([wallet_account(u.msisdn) for u in people])
    tiers = (1, 2, 3)
    user_rows = [{"id": u.id, "msisdn": u.msisdn, "operator": u.operator,
                  "virtual_operator": segments.lookup(u.msisdn).virtual, "status": "active",
                  "tier": rng.choices(tiers, (0.6, 0.35, 0.05))[0], "account_code": u.account,
                  "created_at": u.created_at, "home_province": province_of[u.city], "home_city": u.city}
                 for u in people]
    for start in range(0, len(user_rows), 20_000):
        await _bulk(db, users, user_rows[start:start + 20_000])
    report.users = users_count

    # ------------------------------------------------------------------ merchants
    cats = categories()
    merchant_count = max(20, users_count // 50)
    shops: list[tuple[str, str, str]] = []  # (id, account, app)
    merchant_rows, app_rows, specs = [], [], []
    for j in range(merchant_count):
        mid = f"mch_{tag}{j:07d}"
        first17 = f"{space.credit}{j:010d}"
        mcc = LOW_RISK_MCC[j % len(LOW_RISK_MCC)] if LOW_RISK_MCC[j % len(LOW_RISK_MCC)] in cats else next(iter(cats))
        cat = cats[mcc]
        approved = rng.random() < 0.97
        account = f"liability:merchant:{mid}"
        created = begin - timedelta(days=rng.uniform(0, 400))
        merchant_rows.append({
            "id": mid, "name": f"商户{j:05d}", "credit_code": first17 + credit_code_check_char(first17),
            "legal_person": "王经理", "contact_msisdn": f"+86139{space.contacts + j:08d}", "mcc": mcc,
            "website": f"https://m{j}.example", "settlement_account": f"62220200{j:010d}",
            "state": "approved" if approved else "submitted",
            "reason": "low-risk category: approved by rule" if approved else "", "fee_bps": cat.fee_bps,
            "settlement_days": cat.settlement_days, "per_trade_limit": cat.per_trade_limit,
            "daily_limit": cat.daily_limit, "account_code": account, "created_at": created, "updated_at": created})
        app_rows.append({"app_id": f"app_{tag}{j:07d}", "merchant_id": mid, "sign_type": "HMAC",
                         "hmac_key": f"{rng.getrandbits(128):032x}", "notify_url": "", "created_at": created})
        specs.append(AccountSpec(account, AccountKind.LIABILITY, name=f"Payable to 商户{j:05d}",
                                 debits_must_not_exceed_credits=True))
        if approved:
            shops.append((mid, account, f"app_{tag}{j:07d}"))
    await ledger.open_accounts_bulk(specs)
    await _bulk(db, merchants, merchant_rows)
    await _bulk(db, merchant_apps, app_rows)
    await ledger.open_accounts_bulk([AccountSpec(f"liability:payable:biller:{b.code}", AccountKind.LIABILITY,
                                                 name=f"Payable to {b.name}") for b in billers])
    report.merchants = merchant_count
    say(f"  merchants: {merchant_count:,}; history: {transactions:,} payments over {days} days …")

    # ------------------------------------------------------------------ history
    history = ManualClock(begin)
    timed = Ledger(db, history, max_batch=BATCH)
    balance = [0] * len(people)
    kinds = [k for k, _ in MIX]
    weights = [w for _, w in MIX]
    span = (now - begin).total_seconds() - 60
    recon_rows: list[dict[str, Any]] = []
    pending_orders: list[dict[str, Any]] = []  # written every ROWS rows: fewer transactions
    pending_trades: list[dict[str, Any]] = []

    def slot_of(at: datetime) -> int:
        return int((at - begin).total_seconds() // SLOT_S)

    n = 0
    last_said = time.monotonic()
    while n < transactions:
        size = min(batch, transactions - n)
        t0 = begin + timedelta(seconds=span * n / transactions)
        history.set(t0)
        step = span * size / transactions
        cmds: list[Command] = []
        slots: list[int] = []  # the clock slot of each command
        voids: list[Command] = []
        held: list[tuple[int, int]] = []
        order_rows: list[dict[str, Any]] = []
        trade_rows: list[dict[str, Any]] = []
        for k in range(size):
            at = t0 + timedelta(seconds=step * k / size)
            ready = bisect_right(joined, at)
            if ready < 2:
                ready = 2
            idx = int(ready * rng.random() ** 1.6)  # older subscribers pay more often
            u = people[idx]
            kind = rng.choices(kinds, weights)[0]
            seq = n + k
            if kind == "p2p":
                amount = _amount(rng, 1, 2000)
                oidx = rng.randrange(ready)
                other = people[oidx]
                if oidx == idx or balance[idx] < amount:
                    kind = "cash_in"
                else:
                    balance[idx] -= amount
                    balance[oidx] += amount
                    cmds.append(Transfer(f"p2p:{tag}{seq:09d}", (Leg.debit(u.account, amount),
                                                               Leg.credit(other.account, amount)), "p2p",
                                         reference="demo"))
                    slots.append(slot_of(at))
                    continue
            if kind == "merchant":
                amount = _amount(rng, 5, 800)
                mid, maccount, app = shops[int(len(shops) * rng.random() ** 2)]
                tid = f"trd_{tag}{seq:09d}"
                closed = rng.random() < CLOSED_SHARE
                if not closed and balance[idx] < amount:
                    kind = "cash_in"
                else:
                    row: dict[str, Any] = {
                           "id": tid, "merchant_id": mid, "out_trade_no": f"B{seq:09d}", "amount": amount,
                           "subject": "商品", "state": "TRADE_CLOSED" if closed else "TRADE_SUCCESS",
                           "app_id": app, "payer_id": None if closed else u.id,
                           "transfer_id": None if closed else f"trade:{tid}", "expires_at": at + timedelta(minutes=15),
                           "created_at": at, "paid_at": None if closed else at + timedelta(seconds=20),
                           "closed_at": at + timedelta(minutes=15) if closed else None}
                    trade_rows.append(row)
                    if not closed:
                        balance[idx] -= amount
                        cmds.append(Transfer(f"trade:{tid}", (Leg.debit(u.account, amount),
                                                              Leg.credit(maccount, amount)),
                                             "merchant.payment", reference=f"商户 B{seq:09d}"))
                        slots.append(slot_of(at))
                    continue
            order = _order(rng, kind, u, seq, at, balance[idx], by_city, home_operator, tag)
            if order is None:  # not enough money: they add some first
                order = _order(rng, "cash_in", u, seq, at, balance[idx], by_city, home_operator, tag)
                assert order is not None
            row, legs, delta = order
            oid = row["id"]
            failed = rng.random() < FAILED_SHARE
            if failed:  # the hold takes the money until the void in the next batch gives it back
                row.update(state="failed", reason="partner refused")
                if delta < 0:
                    balance[idx] += delta
                    held.append((idx, -delta))
                cmds.append(Transfer(f"order:{oid}", legs, row["kind"], pending=True, reference="demo"))
                slots.append(slot_of(at))
                voids.append(VoidPending(f"order:{oid}:void", f"order:{oid}", code=f"{row['kind']}.failed"))
            else:
                balance[idx] += delta
                cmds.append(Transfer(f"order:{oid}", legs, row["kind"], reference="demo"))
                slots.append(slot_of(at))
                if len(recon_rows) < 300 and rng.random() < 0.001:
                    recon_rows.append({"id": f"rci_{tag}{seq:09d}", "partner": row["partner"],
                                       "day": rollups.day_of(at), "order_id": oid,
                                       "kind": rng.choice(("amount_mismatch", "status_mismatch", "missing_there")),
                                       "our_state": "succeeded", "our_amount": row["amount"],
                                       "partner_status": "failed", "partner_amount": row["amount"],
                                       "resolution": "investigate", "created_at": at + timedelta(days=1)})
            order_rows.append(row)
            kind_name = str(row["kind"])
            report.kinds[kind_name] = report.kinds.get(kind_name, 0) + 1
        # Posted in the order generated, one ledger batch per clock slot: transfers are dated by the
        # ledger's clock, so a slot is the finest time a transfer of the history gets.
        i = 0
        while i < len(cmds):
            j = i
            while j < len(cmds) and slots[j] == slots[i]:
                j += 1
            history.set(max(t0, begin + timedelta(seconds=SLOT_S * slots[i])))
            results = await timed.post_batch(cmds[i:j])
            refused = [r for r in results if not r.ok]
            if refused:
                raise RuntimeError(f"demo transfer {refused[0].id} refused: {refused[0].error}")
            i = j
        if voids:
            history.set(t0 + timedelta(seconds=step * 0.9))
            results = await timed.post_batch(voids)
            refused = [r for r in results if not r.ok]
            if refused:
                raise RuntimeError(f"demo void {refused[0].id} refused: {refused[0].error}")
            for who, amount in held:
                balance[who] += amount
        pending_orders += order_rows
        pending_trades += trade_rows
        if len(pending_orders) + len(pending_trades) >= ROWS or n + size >= transactions:
            await _bulk(db, partner_orders, pending_orders)
            await _bulk(db, trades, pending_trades)
            pending_orders, pending_trades = [], []
        report.transfers += len(cmds) + len(voids)
        report.orders += len(order_rows)
        report.trades += len(trade_rows)
        report.kinds["p2p"] = report.kinds.get("p2p", 0) + sum(1 for c in cmds if c.id.startswith("p2p:"))
        report.kinds["merchant"] = report.kinds.get("merchant", 0) + len(trade_rows)
        n += size
        if time.monotonic() - last_said > 5 or n >= transactions:
            last_said = time.monotonic()
            rate = n / max(last_said - started, 1e-6)
            say(f"  … {n:,} / {transactions:,} payments ({100 * n // transactions}%), {rate:,.0f}/s, "
                f"at {t0:%Y-%m-%d}")
    await _bulk(db, partner_recon_items, recon_rows)
    await _complaints(db, rng, tag, complaints)
    if db.dialect == "postgresql":  # fresh statistics: the planner saw these tables nearly empty
        say("  analysing the tables …")
        async with db.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            await raw.driver_connection.execute("ANALYZE")  # type: ignore[union-attr]
    say("  folding the KPI rollups …")
    await rollups.refold(db, clock, rollups.day_of(min(begin, joined[0])))
    await rollups.fold(db, clock, ledger)
    report.seconds = time.monotonic() - started
    return report


def _order(rng: random.Random, kind: str, u: _User, seq: int, at: datetime, balance: int,
           by_city: dict[str, list[Biller]], home_operator: str, tag: str
           ) -> tuple[dict[str, Any], tuple[Leg, ...], int] | None:
    """A settled partner order of ``kind``: its row, its ledger legs and what it does to the
    subscriber's balance; None when the balance cannot pay it."""
    details: dict[str, Any] = {}
    fee = 0
    legs: tuple[Leg, ...]
    if kind == "cash_in":
        amount = rng.choice((10_000, 20_000, 50_000, 100_000, 200_000))
        partner, legs, delta = "bank", (Leg.debit(BANK_SETTLEMENT, amount), Leg.credit(u.account, amount)), amount
    elif kind == "cash_out":
        amount = _amount(rng, 50, 3000)
        fee = amount // 1000 if amount > 100_000 else 0
        legs = (Leg.debit(u.account, amount + fee), Leg.credit(BANK_SETTLEMENT, amount))
        legs += (Leg.credit(FEE_INCOME, fee),) if fee else ()
        partner, delta = "bank", -(amount + fee)
    elif kind == "topup":
        amount = rng.choice((3000, 5000, 5000, 10_000, 10_000, 20_000, 30_000))
        discount = amount // 50 if rng.random() < 0.3 else 0
        partner = "operator_billing" if u.operator == home_operator else "topup_aggregator"
        legs = (Leg.debit(u.account, amount - discount),)
        legs += (Leg.debit(TOPUP_DISCOUNTS, discount),) if discount else ()
        legs += (Leg.credit(PAYABLE[partner], amount),)
        details.update(msisdn=u.msisdn, operator=u.operator, price=amount - discount, discount=discount)
        delta = -(amount - discount)
    elif kind == "bill":
        choices = by_city.get(u.city) or next(iter(by_city.values()))
        b = rng.choice(choices)
        amount = max(b.minimum, min(_amount(rng, 20, 800), b.maximum or 10**9))
        partner = f"biller:{b.code}"
        legs = (Leg.debit(u.account, amount), Leg.credit(f"liability:payable:biller:{b.code}", amount))
        details.update(biller=b.code, biller_name=b.name, category=b.category.value, city=b.city, province=b.province,
                       customer_id=f"{seq:010d}", period=f"{at:%Y%m}")
        delta = -amount
    else:
        amount = {"operator_product": rng.choice((500, 1000, 1500)), "insurance": rng.choice((990, 2000, 5000)),
                  "lottery": rng.choice((200, 400, 1000, 2000))}[kind]
        credit = {"operator_product": OPERATOR_PRODUCT_INCOME, "insurance": PAYABLE_INSURER,
                  "lottery": PAYABLE_LOTTERY}[kind]
        partner = {"operator_product": "operator_products", "insurance": "insurer", "lottery": "lottery_centre"}[kind]
        legs = (Leg.debit(u.account, amount), Leg.credit(credit, amount))
        delta = -amount
    if delta < 0 and balance < -delta:
        return None
    settled = at + timedelta(seconds=rng.uniform(1, 30))
    row = {"id": f"{kind[:2]}_{tag}{seq:09d}", "partner": partner, "kind": kind, "user_id": u.id, "msisdn": u.msisdn,
           "amount": amount, "fee": fee, "state": "succeeded", "partner_ref": f"P{seq:09d}", "reason": "",
           "details": json.dumps(details, ensure_ascii=False, sort_keys=True), "created_at": at, "updated_at": settled,
           "settled_at": settled, "next_check_at": at, "checks": 0}
    return row, legs, delta


async def _complaints(db: Database, rng: random.Random, tag: str, count: int) -> None:
    """A few complaints about bill payments, some overdue, for the console's queue."""
    async with db.begin() as conn:
        rows = (await conn.execute(select(partner_orders.c.id, partner_orders.c.user_id, partner_orders.c.msisdn,
                                          partner_orders.c.details, partner_orders.c.created_at)
                                   .where(partner_orders.c.kind == "bill",
                                          partner_orders.c.id.like(f"bi_{tag}%")).limit(2 * count))).all()
    out = []
    for i, (oid, uid, msisdn, details, created) in enumerate(rows[::2]):
        d = json.loads(details)
        out.append({"id": f"cmp_{tag}{i:06d}", "user_id": uid, "msisdn": msisdn, "payment_id": oid,
                    "biller": d.get("biller", ""), "reason": rng.choice(("not_credited", "wrong_amount", "duplicate")),
                    "description": "演示投诉", "state": rng.choice(("open", "in_progress")), "level": 0,
                    "due_at": rollups.day_start(rollups.day_of(created)) + timedelta(days=rng.choice((2, 5, 60, 120))),
                    "resolution": "", "created_at": created, "updated_at": created})
    await _bulk(db, complaints, out)
