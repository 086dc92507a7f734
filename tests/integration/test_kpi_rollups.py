"""KPI rollups on both databases: the rolled-up dashboard agrees with the direct computation
over the live tables for random histories and random windows (edges inside days, beyond
the watermark, late decisions); folding twice changes nothing; a crash in the middle of a
fold leaves everything consistent; the big demo generator leaves the books clean."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select, update

from mobipay.app.bootstrap import Container, build
from mobipay.app.demo_big import load_big_demo
from mobipay.kernel.clock import ManualClock
from mobipay.ledger.chart import BANK_SETTLEMENT
from mobipay.ledger.model import Leg, Transfer
from mobipay.ledger.service import Ledger
from mobipay.merchants.tables import trades
from mobipay.orders.tables import partner_orders
from mobipay.platform.config import Settings
from mobipay.reporting import kpi, rollups
from mobipay.wallet.tables import users

NOW = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
KINDS = ("topup", "bill", "cash_in", "operator_product")
CITIES = ("北京", "上海", "广州")


@pytest.fixture
async def c(db_url: str, tmp_path: Path) -> AsyncIterator[Container]:
    settings = Settings(_env_file=None, database_url=db_url,
                        merchant_key_file=tmp_path / "platform.pem", report_dir=tmp_path / "reports")
    container = build(settings, clock=ManualClock(NOW))
    await container.ensure_system_accounts()
    yield container
    await container.close()


def _clock(c: Container) -> ManualClock:
    assert isinstance(c.clock, ManualClock)
    return c.clock


async def _history(c: Container, rng: random.Random, n: int, start: datetime, end: datetime, tag: str) -> None:
    """Random orders (succeeded, failed, pending; some decided days later), trades (paid,
    closed, open) and sign-ups between ``start`` and ``end``."""
    span = (end - start).total_seconds()
    orders, paid, people = [], [], []
    for i in range(n):
        created = start + timedelta(seconds=rng.uniform(0, span))
        later = min(created + timedelta(seconds=rng.choice((5, 600, 86_400 * 2))), end)
        state = rng.choices(("succeeded", "failed", "pending"), (0.8, 0.15, 0.05))[0]
        city = rng.choice((*CITIES, None))
        orders.append({
            "id": f"o{tag}{i}", "partner": "p", "kind": rng.choice(KINDS), "user_id": f"u{rng.randrange(30)}",
            "msisdn": "+8613800000000", "amount": rng.randrange(1, 50_000), "fee": 0, "state": state,
            "details": "{}" if city is None else f'{{"city": "{city}"}}', "created_at": created,
            "updated_at": later, "settled_at": None if state == "pending" else later, "next_check_at": later})
        outcome = rng.choice(("paid", "closed", "open"))
        paid.append({
            "id": f"t{tag}{i}", "merchant_id": "m1", "out_trade_no": f"{tag}{i}", "amount": rng.randrange(1, 9_000),
            "subject": "s", "state": "TRADE_SUCCESS" if outcome == "paid" else "WAIT_BUYER_PAY", "app_id": "a",
            "payer_id": f"u{rng.randrange(30)}" if outcome == "paid" else None, "expires_at": later,
            "created_at": created, "paid_at": later if outcome == "paid" else None,
            "closed_at": later if outcome == "closed" else None})
        if i % 5 == 0:
            people.append({"id": f"usr{tag}{i}", "msisdn": f"+86138{tag}{i:06d}"[:16], "operator": "china_mobile",
                           "virtual_operator": False, "status": "active", "tier": 1,
                           "account_code": f"wallet:{tag}{i}", "created_at": created})
    async with c.db.begin() as conn:
        await conn.execute(insert(partner_orders), orders)
        await conn.execute(insert(trades), paid)
        await conn.execute(insert(users), people)
    # P2P transfers between wallets (some with a home region), each at its own instant of the
    # ledger's clock: transfers are dated by the ledger.
    clock = _clock(c)
    back = clock.now()
    clock.set(start)
    wallets = []
    for k, home in enumerate((("湖南", "长沙"), None, ("广东", "深圳"))):
        user = await c.wallet.create_user(f"+861370013{ord(tag) % 10}{k:03d}", actor="t", reason="t")
        if home:
            async with c.db.begin() as conn:
                await conn.execute(update(users).where(users.c.id == user.id).values(home_province=home[0],
                                                                                     home_city=home[1]))
        assert (await c.ledger.post(Transfer(f"fund:{user.id}", (Leg.debit(BANK_SETTLEMENT, 10**7),
                                                                 Leg.credit(user.account_code, 10**7)), "seed"))).ok
        wallets.append(user.account_code)
    for i in range(n // 5):
        clock.set(start + timedelta(seconds=rng.uniform(0, span)))
        payer, payee = rng.sample(wallets, 2)
        amount = rng.randrange(1, 9_000)
        assert (await c.ledger.post(Transfer(f"p2p:{tag}{i}", (Leg.debit(payer, amount), Leg.credit(payee, amount)),
                                             "p2p"))).ok
    clock.set(back)


def _windows(rng: random.Random, now: datetime) -> list[tuple[datetime, datetime]]:
    out = [(now - timedelta(days=30), now), (now - timedelta(days=7), now), (now - timedelta(days=1), now),
           (rollups.day_start(rollups.day_of(now - timedelta(days=5))), rollups.day_start(rollups.day_of(now)))]
    for _ in range(6):
        a = now - timedelta(seconds=rng.uniform(0, 14 * 86_400))
        out.append((a, a + timedelta(seconds=rng.uniform(60, 10 * 86_400))))
    return out


async def _agree(c: Container, rng: random.Random) -> None:
    for since, until in _windows(rng, c.clock.now()):
        fast = await kpi.dashboard(c, since, until)
        assert fast == await kpi.dashboard_direct(c, since, until), (since, until)


async def _rollup_rows(c: Container) -> list[list[Any]]:
    async with c.db.begin() as conn:
        return [sorted(tuple(map(str, r)) for r in await conn.execute(select(t)))
                for t in (rollups.volume_daily, rollups.outcomes_daily, rollups.active_daily, rollups.product_daily,
                          rollups.place_totals, rollups.fold_state)]


@pytest.mark.parametrize("seed", [1, 2])
async def test_rollups_agree_with_the_live_tables_and_fold_idempotently(c: Container, seed: int) -> None:
    rng = random.Random(seed)
    await _history(c, rng, 300, NOW - timedelta(days=12), NOW, "a")
    await _agree(c, rng)  # nothing folded yet: all live
    folded = await rollups.fold(c.db, c.clock, c.ledger)
    assert folded >= 11
    async with c.db.begin() as conn:
        assert await rollups.folded_until(conn) == rollups.day_of(NOW)  # yesterday is over (plus margin)
    await _agree(c, rng)
    before = await _rollup_rows(c)
    assert before[0], "something was folded"
    assert await rollups.fold(c.db, c.clock, c.ledger) == 0  # twice: nothing more to do, nothing changed
    assert await _rollup_rows(c) == before
    async with c.db.begin() as conn:  # a folded day is not folded again behind the watermark
        assert not await rollups.fold_day(conn, c.ledger, rollups.day_of(NOW - timedelta(days=3)), NOW)
    await rollups.refold(c.db, c.clock, rollups.day_of(NOW - timedelta(days=12)))
    await _agree(c, rng)  # readers ignore rows past the moved-back watermark
    await rollups.fold(c.db, c.clock, c.ledger)  # every day folded again: the same rows
    assert (await _rollup_rows(c))[:5] == before[:5]

    # Two days later: new history, and orders pending before are decided now (late).
    clock = _clock(c)
    clock.set(NOW + timedelta(days=2, hours=3))
    async with c.db.begin() as conn:
        await conn.execute(update(partner_orders).where(partner_orders.c.state == "pending").values(
            state="succeeded", settled_at=NOW + timedelta(days=1, hours=1)))
    await _history(c, rng, 100, NOW, clock.now(), "b")
    await _agree(c, rng)
    assert await rollups.fold(c.db, c.clock, c.ledger) == 2
    await _agree(c, rng)


async def test_a_crash_in_the_middle_of_a_fold_leaves_the_rollups_consistent(
        c: Container, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(3)
    await _history(c, rng, 200, NOW - timedelta(days=8), NOW, "c")
    real = rollups._replace_day
    calls = {"n": 0}

    async def crashing(conn: Any, day: Any, figures: Any) -> None:
        calls["n"] += 1
        await real(conn, day, figures)  # the day's rows are written …
        if calls["n"] == 4:
            raise RuntimeError("power cut")  # … but the transaction never commits

    monkeypatch.setattr(rollups, "_replace_day", crashing)
    with pytest.raises(RuntimeError, match="power cut"):
        await rollups.fold(c.db, c.clock, c.ledger)
    async with c.db.begin() as conn:
        mark = await rollups.folded_until(conn)
        first = rollups.day_of(NOW - timedelta(days=8))
        assert mark == first + timedelta(days=3)  # three days folded, the fourth not
        crashed_day = (await conn.execute(select(rollups.volume_daily).where(
            rollups.volume_daily.c.day == mark))).all()
        assert crashed_day == []  # rolled back with it
    await _agree(c, rng)
    monkeypatch.setattr(rollups, "_replace_day", real)
    await rollups.fold(c.db, c.clock, c.ledger)
    async with c.db.begin() as conn:
        assert await rollups.folded_until(conn) == rollups.day_of(NOW)
    await _agree(c, rng)


async def test_big_demo_at_a_small_size_keeps_the_books_and_the_kpis_right(c: Container) -> None:
    _clock(c).set(datetime.now(UTC))  # the demo writes history up to now
    report = await load_big_demo(c.db, c.ledger, c.clock, users_count=2000, transactions=20_000)
    assert (report.users, report.orders + report.trades + report.kinds["p2p"]) == (2000, 20_000)
    assert report.trades > 3000 and report.kinds["bill"] > 1500 and report.kinds["topup"] > 2000
    verified = await Ledger(c.db, c.clock).verify()
    assert verified.ok, verified
    now = c.clock.now()
    for days in (1, 30, 90):
        fast = await kpi.dashboard(c, now - timedelta(days=days), now)
        assert fast == await kpi.dashboard_direct(c, now - timedelta(days=days), now)
    k = await kpi.dashboard(c, now - timedelta(days=90), now)
    assert k.registered_users >= 2000 and k.monthly_active_users > 500
    assert {"p2p", "topup", "bill", "merchant"} <= {v.key for v in k.by_product}
    assert {"cash_in", "cash_out"} <= {v.key for v in k.funds}
    assert len(k.by_city) > 10 and len(k.by_day) >= 89
    assert 0.9 < k.success_rates["topup"] < 1.0
    again = await load_big_demo(c.db, c.ledger, c.clock, users_count=2000, transactions=20_000)
    assert again.skipped
