"""Crash: kill -9 the process that commits transfers while it is under load, then check
that every acknowledged transfer is there and the books still balance. Bounded to about
half a minute; PostgreSQL (the production database) and SQLite."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mobipay.kernel.clock import SystemClock
from mobipay.ledger.model import AccountKind, Leg, Transfer
from mobipay.ledger.service import AccountSpec, Ledger
from mobipay.platform.db import Database

pytestmark = pytest.mark.slow
CHILD = Path(__file__).with_name("crash_writer.py")


async def _prepare(url: str) -> None:
    db = Database(url)
    ledger = Ledger(db, SystemClock())
    await ledger.open_accounts([AccountSpec("k:source", AccountKind.EQUITY)] + [
        AccountSpec(f"k:{i}", AccountKind.LIABILITY, debits_must_not_exceed_credits=True) for i in range(50)])
    assert all(r.ok for r in await ledger.post_batch([
        Transfer(f"kfund:{i}", (Leg.debit("k:source", 10**9), Leg.credit(f"k:{i}", 10**9)), "fund")
        for i in range(50)]))
    await db.dispose()


def _run_and_kill(url: str, prefix: str, load_seconds: float) -> set[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "MOBIPAY_LOG_LEVEL": "WARNING"}
    child = subprocess.Popen([sys.executable, str(CHILD), url, prefix], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True, env=env)
    lines: list[str] = []
    assert child.stdout is not None
    stdout = child.stdout
    try:
        assert stdout.readline().strip() == "READY"
        reader = threading.Thread(target=lambda: lines.extend(stdout), daemon=True)
        reader.start()
        time.sleep(load_seconds)
        child.send_signal(signal.SIGKILL)  # no cleanup, no flush, mid-commit
        child.wait(timeout=10)
        reader.join(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
    acked: set[str] = set()
    buffer = "".join(lines)
    for line in buffer.splitlines():
        if line.startswith("ACK "):
            acked.add(line[4:])
    return acked


async def _check(url: str, acked: set[str]) -> None:
    db = Database(url)
    ledger = Ledger(db, SystemClock())
    try:
        report = await ledger.verify()
        assert report.ok, report
        from sqlalchemy import text

        async with db.begin() as conn:
            stored = {r[0] for r in await conn.execute(text("SELECT id FROM ledger_transfers WHERE code = 'crash'"))}
        missing = acked - stored
        assert not missing, f"{len(missing)} acknowledged transfers lost, e.g. {sorted(missing)[:3]}"
        found = await ledger.accounts([f"k:{i}" for i in range(50)])
        assert sum(a.balance for a in found.values()) == 50 * 10**9
        assert all(a.balance >= 0 for a in found.values())
    finally:
        await db.dispose()


@pytest.mark.parametrize("db_kind", [pytest.param("postgresql", marks=pytest.mark.postgres), "sqlite"])
def test_kill_minus_nine_loses_no_acknowledged_transfer(db_kind: str, request: pytest.FixtureRequest) -> None:
    import asyncio

    url: str = request.getfixturevalue("pg_url" if db_kind == "postgresql" else "sqlite_url")
    asyncio.run(_prepare(url))
    total = 0
    for round_ in range(3):  # kill it three times, restarting on the same database
        acked = _run_and_kill(url, f"r{round_}", load_seconds=4)
        assert len(acked) > 50, "the writer acknowledged too little to make the test meaningful"
        asyncio.run(_check(url, acked))
        total += len(acked)
    assert total > 150
