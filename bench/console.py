"""Console page times on big data: every operator-console page, server time p50/p95/max.

Run against a PostgreSQL database; the big demo (100,000 subscribers, 1,000,000 payments over
90 days) is loaded first when it is not there yet (a few minutes)::

    MOBIPAY_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1/mobipay_big mobipay bench console

Two phases, both sequential (one request at a time: the figure is one page's answer time,
not throughput):

* **queries**: the functions behind each page called directly in this process (the KPI
  dashboard, user and transaction searches, recon exceptions, complaints…), so a slow
  query shows without HTTP in the way;
* **pages**: a real uvicorn server (``mobipay serve``, as operators run it) answering
  ``GET /console/…`` for a signed-in admin; the time is the client's, from sending the
  request to the last byte (loopback, httpx: ~1–2 ms of it is the client).

Every page must answer 200 and every p95 must be under 300 ms. The last line is
``RESULT {json}`` with per-page p95 (ms) and ``all_under_300ms``. A benchmark, not a test:
figures depend on the machine (docs/performance.md has the measured ones).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from mobipay.app.bootstrap import Container, build
from mobipay.app.demo import load_demo
from mobipay.app.demo_big import BIG, load_big_demo
from mobipay.app.migrate import upgrade
from mobipay.kernel.errors import MobipayError
from mobipay.platform import audit
from mobipay.platform.config import Settings
from mobipay.reporting import kpi
from mobipay.reporting.rollups import day_of, day_start

TARGET_MS = 300.0
ADMIN, PASSWORD = "bench-console", "bench-console-password-1"


def _stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return {"p50": round(statistics.median(ordered), 1), "p95": round(p95, 1), "max": round(ordered[-1], 1)}


async def _time(work: Callable[[], Awaitable[Any]], n: int) -> list[float]:
    await work()  # warm: plans, caches, connections
    out = []
    for _ in range(n):
        t = time.perf_counter()
        await work()
        out.append((time.perf_counter() - t) * 1000)
    return out


async def _inputs(c: Container) -> dict[str, str]:
    """A busy subscriber, a recent transfer, a day inside the history."""
    async with c.db.begin() as conn:
        busy = (await conn.execute(text(
            "SELECT owner FROM ledger_accounts WHERE code LIKE 'wallet:%' ORDER BY version DESC LIMIT 1"))).scalar()
    recent = await c.ledger.find_transfers(code="p2p", limit=1) or await c.ledger.find_transfers(limit=1)
    if busy is None or not recent:
        raise SystemExit("the database has no subscribers or transfers: load the big demo first")
    day = day_of(c.clock.now() - timedelta(days=30)).isoformat()
    return {"msisdn": str(busy), "transfer": recent[0].id, "day": day}


async def _ensure_admin(c: Container) -> str:
    """A console session token for an admin made for the benchmark (created once)."""
    with contextlib.suppress(MobipayError):  # there already
        await c.operators.create(ADMIN, PASSWORD, ["admin"], actor="bench", reason="console benchmark")
    token, _ = await c.operators.sign_in(ADMIN, PASSWORD)
    return token


def _queries(c: Container, q: dict[str, str]) -> dict[str, Callable[[], Awaitable[Any]]]:
    now = c.clock.now()
    since_day = day_start(day_of(now - timedelta(days=30)))
    day = day_start(day_of(now - timedelta(days=30)))

    async def user_page() -> None:
        user = await c.wallet.user_by_msisdn(q["msisdn"])
        await c.ledger.account(user.account_code)
        await c.ledger.statement(user.account_code, limit=50, newest_first=True)
        async with c.db.begin() as conn:
            await audit.entries(conn, user.msisdn)

    async def tx_by_msisdn() -> None:
        user = await c.wallet.user_by_msisdn(q["msisdn"])
        await c.ledger.statement(user.account_code, limit=100, newest_first=True, since=day,
                                 until=day + timedelta(days=30))

    return {
        "kpi.dashboard 7d": lambda: kpi.dashboard(c, *kpi.window(c.clock.now(), 7)),
        "kpi.dashboard 30d": lambda: kpi.dashboard(c, *kpi.window(c.clock.now(), 30)),
        "kpi.dashboard 90d": lambda: kpi.dashboard(c, *kpi.window(c.clock.now(), 90)),
        "kpi.dashboard 30d (not day-aligned)": lambda: kpi.dashboard(c, since_day + timedelta(hours=7), now),
        "user by number": user_page,
        "transactions: latest": lambda: c.ledger.find_transfers(limit=100),
        "transactions: by id": lambda: c.ledger.transfer(q["transfer"]),
        "transactions: by number+dates": tx_by_msisdn,
        "transactions: by day": lambda: c.ledger.find_transfers(since=day, until=day + timedelta(days=1), limit=100),
        "transactions: by kind": lambda: c.ledger.find_transfers(code="insurance", limit=100),
        "recon exceptions": lambda: c.orders.recon_exceptions(),
        "complaints queue": lambda: c.complaints.queue(),
    }


PAGES = (
    ("dashboard 7d", "/console?days=7"),
    ("dashboard 30d", "/console?days=30"),
    ("dashboard 90d", "/console?days=90"),
    ("dashboard JSON 7d", "/console/api/dashboard?days=7"),
    ("dashboard JSON 30d", "/console/api/dashboard?days=30"),
    ("dashboard JSON 90d", "/console/api/dashboard?days=90"),
    ("users search", "/console/users?msisdn={msisdn}"),
    ("user page", "/console/users/{msisdn}"),
    ("transactions", "/console/transactions"),
    ("tx by id", "/console/transactions?id={transfer}"),
    ("tx by number", "/console/transactions?msisdn={msisdn}"),
    ("tx by date", "/console/transactions?date={day}"),
    ("tx by kind", "/console/transactions?kind=insurance"),
    ("tx by kind+date", "/console/transactions?kind=p2p&date={day}"),
    ("transaction", "/console/transactions/{transfer}"),
    ("reversals", "/console/reversals"),
    ("billers", "/console/billers?city=北京"),
    ("merchants", "/console/merchants"),
    ("recon", "/console/recon"),
    ("complaints", "/console/complaints"),
    ("operators", "/console/operators"),
)


async def _pages(url: str, port: int, token: str, q: dict[str, str], n: int,
                 say: Callable[[str], None]) -> dict[str, list[float]]:
    import httpx

    out: dict[str, list[float]] = {}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", cookies={"mp_console": token},
                                 timeout=30) as client:
        for name, path in PAGES:
            target = path.format(**q)
            samples = []
            for i in range(n + 1):
                t = time.perf_counter()
                r = await client.get(target)
                ms = (time.perf_counter() - t) * 1000
                if r.status_code != 200:
                    raise SystemExit(f"{target} answered {r.status_code}: {r.text[:300]}")
                if i:  # the first is the warm-up
                    samples.append(ms)
            out[name] = samples
            say(f"  page {name:<18} p95 {_stats(samples)['p95']:7.1f} ms")
    return out


def _table(title: str, rows: dict[str, list[float]]) -> list[str]:
    lines = [f"{title:<34} {'p50':>8} {'p95':>8} {'max':>8}  (ms)"]
    for name, samples in rows.items():
        s = _stats(samples)
        flag = "" if s["p95"] < TARGET_MS else "  <-- over 300 ms"
        lines.append(f"{name:<34} {s['p50']:8.1f} {s['p95']:8.1f} {s['max']:8.1f}{flag}")
    return lines


async def _load(c: Container, users: int, transactions: int, say: Callable[[str], None]) -> None:
    """The big demo, unless it is there already (its first subscriber exists)."""
    async with c.db.begin() as conn:
        there = (await conn.execute(text("SELECT count(*) FROM wallet_users WHERE id = :id"),
                                    {"id": f"usr_{BIG.tag}{0:08d}"})).scalar_one()
    if there:
        say("  the big demo is loaded already")
        return
    say(f"  loading the big demo: {users:,} subscribers, {transactions:,} payments over 90 days …")
    await load_demo(c.ledger, c.wallet, users=200)
    report = await load_big_demo(c.db, c.ledger, c.clock, users_count=users, transactions=transactions,
                                 home_operator=c.settings.home_operator, progress=say)
    say(f"  loaded in {report.seconds:.0f} s: {report.transfers:,} ledger transfers, {report.orders:,} orders, "
        f"{report.trades:,} trades")


def main(url: str, requests: int = 20, say: Callable[[str], None] = print, *, http: bool = True,
         users: int = 100_000, transactions: int = 1_000_000) -> dict[str, Any]:
    """Load the big demo when missing, run both phases against ``url``; print the tables and
    the RESULT line; return the result."""
    os.environ["MOBIPAY_DATABASE_URL"] = url
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    if not url.startswith("postgresql"):
        raise SystemExit("the console benchmark runs on PostgreSQL: set MOBIPAY_DATABASE_URL=postgresql+asyncpg://…")
    import api_bench  # the same database set-up and uvicorn start and stop as the API benchmark

    asyncio.run(api_bench._ensure_database(url))
    upgrade(url)

    async def direct() -> tuple[dict[str, str], str, dict[str, list[float]]]:
        c = build(Settings())
        try:
            await c.ensure_system_accounts()
            await _load(c, users, transactions, say)
            q = await _inputs(c)
            token = await _ensure_admin(c)
            timed = {}
            for name, work in _queries(c, q).items():
                timed[name] = await _time(work, requests)
                say(f"  query {name:<32} p95 {_stats(timed[name])['p95']:7.1f} ms")
            return q, token, timed
        finally:
            await c.close()

    q, token, queries = asyncio.run(direct())
    pages: dict[str, list[float]] = {}
    if http:
        with tempfile.TemporaryDirectory() as tmp, api_bench.serve(url, 1, Path(tmp) / "server.log") as server:
            pages = asyncio.run(_pages(url, server.port, token, q, requests, say))
    for line in _table("query (in process)", queries) + [""] + (_table("page (HTTP, uvicorn)", pages) if pages else []):
        print(line)
    p95 = {name: _stats(s)["p95"] for name, s in {**queries, **pages}.items()}
    result = {"requests": requests, "http": http, "pages": {k: _stats(v)["p95"] for k, v in pages.items()},
              "queries": {k: _stats(v)["p95"] for k, v in queries.items()},
              "worst_p95_ms": max(p95.values()), "all_under_300ms": all(v < TARGET_MS for v in p95.values())}
    print("RESULT " + json.dumps(result, ensure_ascii=False))
    return result


if __name__ == "__main__":
    main(os.environ["MOBIPAY_DATABASE_URL"], int(sys.argv[1]) if len(sys.argv) > 1 else 20)
