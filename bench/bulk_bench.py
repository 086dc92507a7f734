"""A bulk disbursement of ``rows`` rows (1,000,000 by default) against pgbench's TPC-B on the
same PostgreSQL server: the file validated and paid, as rows per second and as a ratio to
pgbench's transactions per second measured in the same run (target >= 10).

Run with ``mobipay bench bulk [--rows N] [--seconds S]`` (MOBIPAY_DATABASE_URL must be
PostgreSQL, e.g. postgresql+asyncpg://postgres@127.0.0.1/mobipay_bench_bulk; created when
missing, then migrated). Needs ``pgbench`` and ``psql``. Last line: ``RESULT {json}``.

Phases:
  pgbench  TPC-B, scale 10, 16 clients, prepared, ``seconds`` (the ledger bench's reference);
  set-up   (once, kept across runs) the wallets of 93% of the rows' numbers, written
           set-based (wallet rows and ledger accounts, as the big demo loads them); a funder
           with a maker and a checker, a deposit from the bank and a campaign funded with the
           file's total (every run);
  file     ``rows`` rows in yuan: 2% invalid (a bad number, a bad amount, a row id used
           twice, in turn), 5% numbers without a wallet, the rest registered wallets;
  upload   ``BulkDisbursements.upload``: the SHA-256, every row parsed and checked, the names
           against the wallets' real names, rows stored (timed);
  approve  by the checker (timed with the run);
  run      ``BulkDisbursements.run``: every sub-batch one transaction through the ledger's
           batch path, claims for the unregistered, an SMS per recipient (timed);
  checks   every valid row paid or waiting, none failed; the campaign debited exactly the
           rows' total; one SMS per paid or waiting row; ``Ledger.verify()`` clean.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from mobipay.app.bootstrap import Container, build
from mobipay.app.migrate import upgrade
from mobipay.kernel.ids import new_id
from mobipay.ledger.chart import wallet_account
from mobipay.platform.bulk import insert_many
from mobipay.platform.config import Settings
from mobipay.platform.outbox import outbox
from mobipay.wallet.tables import users

HERE = Path(__file__).resolve().parent
TARGET = 10.0
INVALID_EVERY = 50  # 2%
UNREGISTERED_EVERY = 20  # 5%


def _api_bench() -> Any:
    """The benchmark next to this file (``mobipay bench`` puts their folder on the path)."""
    import api_bench

    return api_bench


def registered(i: int) -> str:
    return f"+86158{i:08d}"


def unregistered(i: int) -> str:
    return f"+86159{i:08d}"


def kind_of(i: int) -> str:
    if i % INVALID_EVERY == 0:
        return "invalid"
    if i % UNREGISTERED_EVERY == 1:
        return "unregistered"
    return "registered"


def make_file(rows: int) -> tuple[bytes, int, int, int]:
    """The batch file, its valid total (fen), and how many rows are invalid and unregistered."""
    lines = ["row_id,msisdn,name,amount_yuan,note"]
    total = invalid = waiting = 0
    for i in range(rows):
        fen = 100 + (i * 7919) % 99_900  # 1.00 to 999.99 CNY
        amount = f"{fen // 100}.{fen % 100:02d}"
        kind = kind_of(i)
        number = (unregistered(i) if kind == "unregistered" else registered(i))[3:]
        row_id = f"R{i:07d}"
        if kind == "invalid":
            invalid += 1
            turn = (i // INVALID_EVERY) % 3
            if turn == 0:
                number = "1234567"
            elif turn == 1:
                amount = "12.345"
            else:
                row_id = f"R{i - 1:07d}"  # the row id of the row before
        else:
            total += fen
            waiting += kind == "unregistered"
        lines.append(f"{row_id},{number},学生{i},{amount},助学金")
    return ("\n".join(lines) + "\n").encode(), total, invalid, waiting


async def ensure_wallets(c: Container, rows: int, log: Callable[[str], None]) -> None:
    """The registered rows' wallets: missing ones written set-based (wallet rows, accounts)."""
    wanted = [registered(i) for i in range(rows) if kind_of(i) != "unregistered"]
    async with c.db.begin() as conn:
        have = {r[0] for r in await conn.execute(select(users.c.msisdn).where(users.c.msisdn.like("+86158%")))}
    missing = [m for m in wanted if m not in have]
    if not missing:
        log(f"set-up: the {len(wanted):,} wallets are there already")
        return
    log(f"set-up: writing {len(missing):,} wallets (once) …")
    started = time.monotonic()
    segment = c.wallet.segments.lookup(missing[0])
    await c.ledger.open_accounts_bulk([wallet_account(m) for m in missing], chunk=20_000)
    now = c.clock.now()
    for start in range(0, len(missing), 20_000):
        async with c.db.begin() as conn:
            await insert_many(conn, users, [
                {"id": new_id("usr"), "msisdn": m, "operator": segment.operator.value,
                 "virtual_operator": segment.virtual, "status": "active", "tier": 1,
                 "account_code": f"wallet:{m}", "created_at": now} for m in missing[start:start + 20_000]])
    log(f"set-up: {len(missing):,} wallets in {time.monotonic() - started:.0f} s")


async def _run(url: str, rows: int, log: Callable[[str], None], reference: float) -> dict[str, Any]:
    c = build(Settings(database_url=url))
    try:
        await c.ensure_system_accounts()
        await ensure_wallets(c, rows, log)
        data, total, invalid, waiting = make_file(rows)
        stamp = secrets.token_hex(4)
        funder = await c.bulk.create_funder(f"基准基金会 {stamp}", "13800138000", actor="bench", reason="bench")
        maker, _ = await c.bulk.add_member(funder.id, "maker", ["maker"], actor="bench", reason="bench")
        checker, _ = await c.bulk.add_member(funder.id, "checker", ["checker"], actor="bench", reason="bench")
        await c.bulk.deposit(funder.id, total, reference=f"bench-{stamp}", actor="bench")
        campaign = await c.bulk.create_campaign(funder.id, f"bench {stamp}", actor="bench")
        await c.bulk.fund_campaign(campaign.id, total, idempotency_key="bench", actor="bench")
        log(f"file: {rows:,} rows ({len(data) / 1e6:.1f} MB), {invalid:,} invalid, {waiting:,} without a wallet, "
            f"{total / 100:,.2f} CNY")
        t0 = time.perf_counter()
        batch, _ = await c.bulk.upload(maker, campaign.id, data, hashlib.sha256(data).hexdigest(),
                                       idempotency_key=f"bench-{stamp}", file_name="bench.csv",
                                       max_invalid_pct=5)
        upload_s = time.perf_counter() - t0
        log(f"upload: {batch.state}, {batch.summary.rows_valid:,} valid rows in {upload_s:.1f} s "
            f"({rows / upload_s:,.0f} rows/s)")
        t1 = time.perf_counter()
        await c.bulk.approve(checker, batch.id)
        last = [time.perf_counter()]

        def progress(done: int, total_subs: int) -> None:
            if done == total_subs or time.perf_counter() - last[0] > 5:
                last[0] = time.perf_counter()
                log(f"run: {done}/{total_subs} sub-batches, {time.perf_counter() - t1:.1f} s")

        done = await c.bulk.run(batch.id, progress=progress)
        run_s = time.perf_counter() - t1
        s = done.summary
        log("verify: ledger, the campaign, the SMS …")
        campaign_left = (await c.ledger.account(campaign.account_code)).balance
        async with c.db.begin() as conn:
            sms = int((await conn.execute(select(func.count()).select_from(outbox).where(
                outbox.c.topic == "sms.send", outbox.c.key.like(f"bulk:{batch.id}:%")))).scalar_one())
        vt = time.perf_counter()
        report = await c.ledger.verify()
        verify_s = time.perf_counter() - vt
    finally:
        await c.close()
    seconds = upload_s + run_s
    rate = rows / seconds if seconds else 0.0
    ratio = rate / reference if reference else math.nan
    books = (campaign_left == 0 and s.paid_amount + s.waiting_amount == total and s.failed_rows == 0
             and s.waiting_rows == waiting)
    result = {
        "pgbench_tps": round(reference, 1), "rows": rows, "invalid_rows": s.rows_invalid,
        "paid_rows": s.paid_rows, "waiting_rows": s.waiting_rows, "failed_rows": s.failed_rows,
        "upload_seconds": round(upload_s, 2), "run_seconds": round(run_s, 2), "seconds": round(seconds, 2),
        "rows_per_s": round(rate, 1), "ratio": round(ratio, 2), "sms": sms, "verify_ok": report.ok,
        "verify_seconds": round(verify_s, 1), "books_match": books,
    }
    result["ok"] = (report.ok and books and sms == s.paid_rows + s.waiting_rows and s.rows_invalid == invalid
                    and done.state == "completed")
    log(f"\n{'scenario':<44}{'rows/s':>10}{'ratio':>8}  target")
    log(f"{'pgbench TPC-B (reference, tps)':<44}{reference:>10,.0f}{1:>8.2f}")
    log(f"{f'bulk disbursement, {rows:,} rows':<44}{rate:>10,.0f}{ratio:>8.2f}  >= {TARGET}"
        f"{'' if ratio >= TARGET else '  <-- MISSED'}")
    log(f"  upload (validate, store) {upload_s:.1f} s, approve and run {run_s:.1f} s")
    log(f"verify after the run: {'clean' if report.ok else 'DIFFERENCES FOUND'} ({verify_s:.0f} s)")
    log(f"books: campaign left {campaign_left} fen, paid {s.paid_amount} + waiting {s.waiting_amount} of {total}: "
        f"{'match' if books else 'MISMATCH'}; {sms:,} SMS")
    return result


def main(url: str, rows: int = 1_000_000, seconds: int = 10, log: Callable[[str], None] = print) -> dict[str, Any]:
    if not url.startswith("postgresql"):
        raise SystemExit("the bulk benchmark needs PostgreSQL: set MOBIPAY_DATABASE_URL="
                         "postgresql+asyncpg://postgres@127.0.0.1/mobipay_bench_bulk")
    if not 100 <= rows <= 1_000_000:
        raise SystemExit("--rows is 100 to 1,000,000")
    ab = _api_bench()
    from mobipay.platform.observability import configure_logging

    configure_logging("WARNING", json_logs=False)
    reference: float = ab._ledger_bench().pgbench_tps(url, seconds, log)
    asyncio.run(ab._ensure_database(url))
    upgrade(url)
    result: dict[str, Any] = asyncio.run(_run(url, rows, log, reference))
    print("RESULT " + json.dumps(result), flush=True)
    return result


if __name__ == "__main__":  # pragma: no cover
    main(os.environ["MOBIPAY_DATABASE_URL"], int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
