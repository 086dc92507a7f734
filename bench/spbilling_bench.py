"""The SP monthly billing run against pgbench's TPC-B on the same PostgreSQL server.

Run with ``mobipay bench spbilling`` (MOBIPAY_DATABASE_URL must be PostgreSQL, e.g.
postgresql+asyncpg://postgres@127.0.0.1/mobipay_bench_sp; created when missing, then
migrated). Needs ``pgbench`` and ``psql``. The ratio to pgbench measured in the same run is the
figure that counts. Last line: ``RESULT {json}``.

Phases:
  pgbench  TPC-B, scale 10, 16 clients, prepared, ``seconds`` (the ledger bench's reference);
  set-up   10 SPs of this run (new service codes each run), one with its port shielded; the
           operator-billing SIMULATOR as its own process; ``subscriptions`` subscriptions
           written set-based (one INSERT … SELECT generate_series): per 20, one lapsed (never
           confirmed), one cancelled within 72 h (waived), one of the shielded SP, the rest
           active with their monthly fee due;
  billing  ``SpService.bill_all(chunk)``, the worker's billing round: chunks of due
           subscriptions, each one SELECT, one UPDATE of their next due time, one multi-row
           INSERT of the charges, one call to the billing system with the chunk's lines, then
           the accepted charges posted through the ledger's batch path (``uow.post`` of the
           chunk) and one UPDATE marking them billed. Timed from the first chunk to the last;
  checks   every due subscription of an open SP charged once and nothing else (lapsed, waived
           and shielded ones not); the SPs' payables and the receivable from the billing
           system equal what the simulator says it billed; ``Ledger.verify()`` clean.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from mobipay.app.bootstrap import build
from mobipay.app.migrate import upgrade
from mobipay.platform.config import Settings
from mobipay.sp.model import Cycle
from mobipay.sp.service import RECEIVABLE_PHONE_BILLS, sp_payable

HERE = Path(__file__).resolve().parent
TARGETS = {"ratio": 10.0}
SPS = 10
SHIELDED = SPS - 1  # the last SP's port is shielded: its subscriptions are not billed
PRICE = 500
SECRET = "bench-sp-billing-secret"


def _api_bench() -> Any:
    """The benchmark next to this file (``mobipay bench`` puts their folder on the path)."""
    import api_bench

    return api_bench


def _simulator() -> tuple[str, subprocess.Popen[bytes]]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen([sys.executable, "-m", "mobipay.simulators.sp_billing", "--port", str(port),
                             "--secret", SECRET])
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{url}/sim/summary", timeout=1).raise_for_status()
            return url, proc
        except httpx.HTTPError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise SystemExit("the operator-billing simulator did not start") from None
            time.sleep(0.1)


async def _run(url: str, billing_url: str, n: int, chunk: int, log: Callable[[str], None],
               reference: float) -> dict[str, Any]:
    c = build(Settings(database_url=url, sp_billing_url=billing_url, sp_billing_secret=SECRET,
                       partner_timeout_s=60.0))
    try:
        await c.ensure_system_accounts()
        run_id = f"{int(time.time()) % 1_000_000:06d}"
        codes = [f"1066{run_id}{i:02d}" for i in range(SPS)]
        now = c.clock.now()
        for code in codes:
            await c.sp.register_sp(code, f"Bench SP {code}", licence="B2-BENCH", hotline="4000000000",
                                   share_bp=8500, actor="bench")
            await c.sp.add_service(code, "TQ", "Bench weather", price=PRICE, cycle=Cycle.MONTHLY, actor="bench")
        async with c.db.begin() as conn:
            await conn.execute(text("UPDATE sp_providers SET port_shielded = true WHERE code = :c"),
                               {"c": codes[SHIELDED]})
            await conn.execute(text("UPDATE sp_providers SET registered_at = :t WHERE code = ANY(:codes)"),
                               {"t": now - timedelta(days=400), "codes": codes})
        log(f"set-up: {n:,} subscriptions of {SPS} SPs …")
        t0 = time.perf_counter()
        async with c.db.begin() as conn:
            await conn.execute(text("""
                INSERT INTO sp_subscriptions (id, msisdn, sp_code, service_id, state, method, channel, asked, rule,
                                              reason, ordered_at, active_since, ended_at, next_charge_at)
                SELECT 'b' || :run || '-' || i,
                       '+86138' || lpad(i::text, 8, '0'),
                       :prefix || lpad(CASE WHEN i % 20 = 2 THEN CAST(:shielded AS integer)
                                            ELSE i % CAST(:nsp_open AS integer) END::text, 2, '0'),
                       :prefix || lpad(CASE WHEN i % 20 = 2 THEN CAST(:shielded AS integer)
                                            ELSE i % CAST(:nsp_open AS integer) END::text, 2, '0') || :kw,
                       CASE i % 20 WHEN 0 THEN 'lapsed' WHEN 1 THEN 'cancelled' ELSE 'active' END,
                       'phone_bill', 'sms', true, 'new_sp', 'bench', CAST(:ordered AS timestamptz),
                       CASE WHEN i % 20 = 0 THEN NULL ELSE CAST(:ordered AS timestamptz) END,
                       CASE WHEN i % 20 = 0 THEN CAST(:lapsed AS timestamptz)
                            WHEN i % 20 = 1 THEN CAST(:cancelled AS timestamptz) END,
                       CASE WHEN i % 20 IN (0, 1) THEN NULL ELSE CAST(:due AS timestamptz) END
                FROM generate_series(1, CAST(:n AS integer)) AS i"""),
                {"kw": ":TQ", "run": run_id, "prefix": f"1066{run_id}", "shielded": SHIELDED, "nsp_open": SHIELDED,
                 "n": n,
                 "ordered": now - timedelta(days=10), "lapsed": now - timedelta(days=9),
                 "cancelled": now - timedelta(days=8), "due": now - timedelta(minutes=1)})
            await conn.execute(text("ANALYZE sp_subscriptions"))
        log(f"set-up: written in {time.perf_counter() - t0:.1f} s")
        expected = sum(1 for i in range(1, n + 1) if i % 20 not in (0, 1, 2))
        shielded = sum(1 for i in range(1, n + 1) if i % 20 == 2)
        log(f"billing: {expected:,} fees due, chunks of {chunk:,} …")
        t0 = time.perf_counter()
        run = await c.sp.bill_all(chunk)
        seconds = time.perf_counter() - t0
        log(f"billing: {run.charged:,} charged in {seconds:.1f} s ({run.skipped:,} skipped, {run.failed} refused, "
            f"{run.submitted} waiting)")
        again = await c.sp.bill_all(chunk)
        log("verify: the ledger, the SPs' payables against the billing system …")
        payables = sum(a.balance for a in (await c.ledger.accounts([sp_payable(code) for code in codes])).values())
        receivable = (await c.ledger.account(RECEIVABLE_PHONE_BILLS)).balance
        async with httpx.AsyncClient(timeout=60) as http:
            summary = (await http.get(f"{billing_url}/sim/summary")).json()
        report = await c.ledger.verify()
    finally:
        await c.close()
    rate = run.charged / seconds if seconds else 0.0
    ratio = rate / reference if reference else math.nan
    books = (payables == run.amount == expected * PRICE and summary["amount"] == run.amount
             and summary["charged"] == run.charged)
    result = {
        "pgbench_tps": round(reference, 1),
        "subscriptions": n,
        "charged": run.charged,
        "skipped": run.skipped,
        "seconds": round(seconds, 2),
        "charges_per_s": round(rate, 1),
        "ratio": round(ratio, 2),
        "charged_again": again.charged,
        "verify_ok": report.ok,
        "books_match": books,
        "receivable_fen": receivable,
    }
    result["ok"] = (run.charged == expected and run.skipped == shielded and again.charged == 0 and report.ok
                    and books and run.failed == 0 and run.submitted == 0)
    log(f"\n{'scenario':<44}{'per s':>10}{'ratio':>8}  target")
    log(f"{'pgbench TPC-B (reference)':<44}{reference:>10,.0f}{1:>8.2f}")
    log(f"{f'SP billing run, {n:,} subscriptions':<44}{rate:>10,.0f}{ratio:>8.2f}  >= {TARGETS['ratio']}"
        f"{'' if ratio >= TARGETS['ratio'] else '  <-- MISSED'}")
    log(f"verify after the run: {'clean' if report.ok else 'DIFFERENCES FOUND'}")
    log(f"payables {payables} fen, billed {run.amount} fen, the billing system {summary['amount']} fen: "
        f"{'match' if books else 'MISMATCH'}")
    return result


def main(url: str, seconds: int, log: Callable[[str], None] = print, subscriptions: int = 1_000_000,
         chunk: int = 5000) -> dict[str, Any]:
    if not url.startswith("postgresql"):
        raise SystemExit("the SP billing benchmark needs PostgreSQL: set MOBIPAY_DATABASE_URL="
                         "postgresql+asyncpg://postgres@127.0.0.1/mobipay_bench_sp")
    ab = _api_bench()
    from mobipay.platform.observability import configure_logging

    configure_logging("WARNING", json_logs=False)
    reference: float = ab._ledger_bench().pgbench_tps(url, seconds, log)
    asyncio.run(ab._ensure_database(url))
    upgrade(url)
    billing_url, proc = _simulator()
    try:
        result: dict[str, Any] = asyncio.run(_run(url, billing_url, subscriptions, chunk, log, reference))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print("RESULT " + json.dumps(result), flush=True)
    return result


if __name__ == "__main__":  # pragma: no cover
    main(os.environ["MOBIPAY_DATABASE_URL"], int(sys.argv[1]) if len(sys.argv) > 1 else 10)
