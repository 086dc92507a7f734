"""``mobipay worker`` as a process: it delivers due outbox messages, voids expired holds,
and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from mobipay.kernel.clock import ManualClock
from mobipay.ledger.model import AccountKind, Leg, Transfer
from mobipay.ledger.service import AccountSpec, Ledger
from mobipay.platform.db import Database
from mobipay.platform.outbox import emit_raw


async def _seed(url: str) -> None:
    db = Database(url)
    past = ManualClock(datetime.now(UTC) - timedelta(hours=1))
    ledger = Ledger(db, past)
    await ledger.open_accounts([AccountSpec("bank", AccountKind.ASSET),
                                AccountSpec("alice", AccountKind.LIABILITY, debits_must_not_exceed_credits=True)])
    assert (await ledger.post(Transfer("h1", (Leg.debit("bank", 500), Leg.credit("alice", 500)), "hold",
                                       pending=True, timeout_s=60))).ok
    async with db.begin() as conn:
        await emit_raw(conn, "sms.send", "welcome-1", {"to": "+8613800138000", "text": "欢迎"}, past.now())
    await db.dispose()


async def _state(url: str) -> tuple[str, int]:
    db = Database(url)
    async with db.begin() as conn:
        status = (await conn.execute(text("SELECT status FROM outbox_messages"))).scalar_one()
        open_holds = (await conn.execute(text("SELECT count(*) FROM ledger_open_holds"))).scalar_one()
    await db.dispose()
    return status, open_holds


def test_worker_delivers_expires_and_stops_on_sigterm(sqlite_url: str, tmp_path: Path) -> None:
    asyncio.run(_seed(sqlite_url))
    env = {**os.environ, "MOBIPAY_DATABASE_URL": sqlite_url, "MOBIPAY_HOLD_SWEEP_INTERVAL_S": "0.2",
           "MOBIPAY_ENV": "test"}  # test: SMS go to the redacting log handler, not the console
    proc = subprocess.Popen([sys.executable, "-m", "mobipay.app.cli", "worker", "--idle", "0.1"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        state = ("pending", 1)
        while time.monotonic() < deadline and state != ("delivered", 0):
            time.sleep(0.3)
            state = asyncio.run(_state(sqlite_url))
        assert state == ("delivered", 0)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert "outbox.delivered_to_log" in err and "welcome-1" in err
    finally:
        if proc.poll() is None:
            proc.kill()
