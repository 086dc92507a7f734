"""A group-buy flash sale against pgbench's TPC-B on the same PostgreSQL server: ``buyers``
subscribers (10,000) each try once to buy one voucher of a deal with ``stock`` (1,000) over
HTTP, all at once; exactly ``stock`` are sold and every other answer is 409 ``SOLD_OUT``.

Run with ``mobipay bench flashsale`` (MOBIPAY_DATABASE_URL must be PostgreSQL, e.g.
postgresql+asyncpg://postgres@127.0.0.1/mobipay_bench_flashsale; created when missing, then
migrated). Needs ``pgbench`` and ``psql``. The ratio to pgbench measured in the same run is the
figure that counts; absolute rates swing with the machine. Last line: ``RESULT {json}``.

Phases:
  pgbench  TPC-B, scale 10, 16 clients, prepared, ``seconds`` (the ledger bench's reference);
  set-up   a deal merchant (onboarded as merchants are) with one store; a new deal of ``stock``
           vouchers at 9.90 CNY (under the password-free amount); ``buyers`` subscribers, funded,
           each signed in with an SMS code so each has its own access token;
  server   ``python -m mobipay.app.cli serve`` on a free loopback port;
  sale     every buyer's ``POST /v1/groupbuy/orders`` (its own token and Idempotency-Key) made
           before the phase, in random order, then sent at once over ``connections`` keep-alive
           connections (each buyer's request once); latency is from the first byte sent to the
           last byte read, per request;
  checks   201 exactly ``stock`` times, every other answer 409 with code SOLD_OUT; the deal's
           stock 0; the escrow holds stock × price; what the buyers lost equals it;
           ``Ledger.verify()`` clean.

``purchases_per_s`` is purchase requests answered (sold or SOLD_OUT) per second of the sale;
``sold_per_s`` the vouchers sold per second until the last was sold. The ratio target is on
``purchases_per_s``; both ratios are in the RESULT line.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import secrets
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text, update

from mobipay.app.bootstrap import Container, build
from mobipay.app.migrate import upgrade
from mobipay.groupbuy.model import DealTerms
from mobipay.groupbuy.service import escrow_account
from mobipay.kernel.errors import MobipayError
from mobipay.ledger.chart import BANK_SETTLEMENT
from mobipay.ledger.model import Leg, Transfer
from mobipay.platform.config import Settings
from mobipay.wallet import errors as WE
from mobipay.wallet.model import OtpPurpose
from mobipay.wallet.tables import users

HERE = Path(__file__).resolve().parent
TARGETS = {"ratio": 0.3, "p99_ms": 200.0}
PRICE = 990  # fen: 9.90 CNY, password-free
FUNDING = 10_000  # fen per buyer, topped up to this before every run
CREDIT_CODE = "91440300MA5FL0B42X"
MERCHANT = "基准测试团购网"


def _instore_bench() -> Any:
    """The benchmark next to this file (``mobipay bench`` puts their folder on the path)."""
    import instore_bench

    return instore_bench


def numbers(count: int) -> list[str]:
    return [f"+86137{66_000_000 + i:08d}" for i in range(count)]


def _credit_code() -> str:
    from mobipay.merchants.model import credit_code_check_char

    return CREDIT_CODE[:17] + credit_code_check_char(CREDIT_CODE[:17])


async def _shop(c: Container) -> tuple[str, str]:
    code = _credit_code()
    try:
        m = await c.merchants.apply(name=MERCHANT, credit_code=code, legal_person="李四", contact="+8613766099999",
                                    mcc="5812", website="https://bench.example",
                                    settlement_account="6222 0200 0011 1122 333")
    except MobipayError:  # applied on an earlier run
        found = [x for x in await c.merchants.find(q=code) if x.name == MERCHANT]
        if not found:
            raise
        m = found[0]
    stores = await c.merchants.stores(m.id)
    store_id = stores[0].id if stores else await c.merchants.add_store(m, "基准店", "深圳市福田区1号", city="深圳")
    return m.id, store_id


async def prepare(c: Container, buyers: int, stock: int, log: Callable[[str], None]
                  ) -> tuple[str, list[tuple[str, str, str]]]:
    """The deal and (msisdn, account, access token) per buyer."""
    await c.ensure_system_accounts()
    merchant_id, store_id = await _shop(c)
    now = datetime.now(UTC)
    deal = await c.groupbuy.open_deal(merchant_id, DealTerms(
        f"限时秒杀 双人套餐 {secrets.token_hex(2)}", "深圳", "food", PRICE, 3_900, stock, now - timedelta(minutes=1),
        now + timedelta(hours=2), 1, now - timedelta(minutes=1), now + timedelta(days=30), lat=22.54, lon=114.06),
        [store_id])
    msisdns = numbers(buyers)
    gate = asyncio.Semaphore(16)
    started = time.monotonic()

    async def ensure(msisdn: str) -> str:
        async with gate:
            try:
                return (await c.wallet.user_by_msisdn(msisdn)).account_code
            except WE.UserNotFound:
                return (await c.wallet.create_user(msisdn, actor="bench", reason="flash-sale benchmark")).account_code

    accounts = await asyncio.gather(*(ensure(m) for m in msisdns))
    async with c.db.begin() as conn:  # tier III: a buyer's yearly limit never stops a benchmark run
        await conn.execute(update(users).where(users.c.msisdn.in_(msisdns), users.c.tier != 3).values(tier=3))
    balances = await c.ledger.accounts(accounts)
    stamp = secrets.token_hex(4)
    top_up = [Transfer(f"bench-flash:fund:{stamp}:{m}", (Leg.debit(BANK_SETTLEMENT, FUNDING - b),
                                                        Leg.credit(a, FUNDING - b)), "cash_in",
                       reference="flash-sale benchmark funding")
              for m, a in zip(msisdns, accounts, strict=True) if (b := balances[a].balance) < FUNDING]
    for r in await c.ledger.post_batch(top_up):
        if not r.ok:
            raise SystemExit(f"funding transfer {r.id} refused: {r.error}")
    log(f"set-up: deal {deal.id} ({stock} vouchers), {buyers} buyers funded ({time.monotonic() - started:.1f} s); "
        "signing each in by SMS code …")
    since = datetime.now(UTC)

    async def otp(msisdn: str) -> None:
        async with gate:
            await c.wallet.request_otp(msisdn, OtpPurpose.LOGIN)

    await asyncio.gather(*(otp(m) for m in msisdns))
    codes = await _instore_bench()._codes(c, msisdns, since)
    missing = [m for m in msisdns if m not in codes]
    if missing:
        raise SystemExit(f"no sign-in code for {len(missing)} buyers (e.g. {missing[0]}): a code is sent at most "
                         "every 60 s per number; run again in a minute")

    async def sign_in(msisdn: str, account: str) -> tuple[str, str, str]:
        async with gate:
            tokens = await c.wallet.login(msisdn, device_id=f"flash-{stamp}", device_name="flash-sale bench",
                                          code=codes[msisdn])
        return msisdn, account, tokens.access_token

    signed = await asyncio.gather(*(sign_in(m, a) for m, a in zip(msisdns, accounts, strict=True)))
    log(f"set-up: {buyers} buyers signed in ({time.monotonic() - started:.1f} s)")
    return deal.id, list(signed)


async def drive(port: int, reqs: list[bytes], connections: int, server_pid: int, ab: Any, ib: Any
                ) -> tuple[Any, list[str]]:
    """Each request once over ``connections`` keep-alive connections; latency from the first
    byte sent to the last byte read. Answers the phase and up to 3 answers that were neither
    201 nor a 409 SOLD_OUT problem."""
    import contextlib
    import resource

    pids = ab._tree(server_pid)
    server_before, pg_before = sum(ab._cpu_of(p) for p in pids), ab._postgres_cpu()
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    latencies: list[int] = []
    statuses: dict[int, int] = {}
    odd: list[str] = []
    cursor = 0
    exchange = _instore_bench().exchange  # one request, one answer on a kept-alive connection
    start = time.perf_counter()

    async def connection() -> None:
        nonlocal cursor
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while cursor < len(reqs):
                req = reqs[cursor]
                cursor += 1
                t0 = time.perf_counter_ns()
                status, body = await exchange(reader, writer, req)
                latencies.append(time.perf_counter_ns() - t0)
                if status == 409 and b'"code":"SOLD_OUT"' not in body:
                    status = 4090  # a 409 that is not SOLD_OUT (counted apart)
                statuses[status] = statuses.get(status, 0) + 1
                if status not in (201, 409) and len(odd) < 3:
                    odd.append(f"{status} {body[:300].decode(errors='replace')}")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    await asyncio.gather(*(connection() for _ in range(connections)))
    elapsed = time.perf_counter() - start
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    phase = ib.Phase("flash sale", elapsed, latencies, statuses, " | ".join(odd),
                     (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime),
                     sum(ab._cpu_of(p) for p in pids) - server_before, ab._postgres_cpu() - pg_before, True)
    return phase, odd


def requests(deal_id: str, buyers: list[tuple[str, str, str]], port: int, stamp: str) -> list[bytes]:
    body = json.dumps({"deal_id": deal_id, "quantity": 1}, separators=(",", ":")).encode()
    out = []
    for n, (_, _, token) in enumerate(buyers):
        head = (f"POST /v1/groupbuy/orders HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nAuthorization: Bearer {token}\r\n"
                f"Idempotency-Key: flash-{stamp}-{n}\r\n\r\n")
        out.append(head.encode() + body)
    return out


async def _run(url: str, buyers: int, stock: int, connections: int, workers: int, log: Callable[[str], None],
               reference: float) -> dict[str, Any]:
    ib = _instore_bench()
    ab = ib._api_bench()
    c = build(Settings(database_url=url))
    try:
        deal_id, people = await prepare(c, buyers, stock, log)
        random.shuffle(people)
        accounts = sorted({a for _, a, _ in people})
        before = sum(a.balance for a in (await c.ledger.accounts(accounts)).values())
        with tempfile.TemporaryDirectory(prefix="mobipay-bench-flash-") as tmp:
            log_path = Path(tmp) / "server.log"
            with ab._sigterm_interrupts(), ab.serve(url, workers, log_path) as server:
                log(f"server: uvicorn pid {server.pid} ({workers} workers) on http://127.0.0.1:{server.port}")
                reqs = requests(deal_id, people, server.port, secrets.token_hex(4))
                log(f"sale: {len(reqs):,} buyers at once over {connections} connections for {stock:,} vouchers …")
                phase, odd = await drive(server.port, reqs, connections, server.pid, ab, ib)
                log(phase.cpu_text())
                server_tail = ab._tail(log_path)
        async with c.db.begin() as conn:
            left = (await conn.execute(text("SELECT stock_left FROM groupbuy_deals WHERE id = :d"),
                                       {"d": deal_id})).scalar_one()
            sold_rows = (await conn.execute(text("SELECT count(*), min(created_at), max(created_at) FROM "
                                                 "groupbuy_orders WHERE deal_id = :d"), {"d": deal_id})).one()
        escrow = (await c.ledger.account(escrow_account(deal_id))).balance
        after = sum(a.balance for a in (await c.ledger.accounts(accounts)).values())
        log("verify: ledger …")
        report = await c.ledger.verify()
    finally:
        await c.close()
    sold = phase.statuses.get(201, 0)
    sold_out = phase.statuses.get(409, 0)
    answered = sum(phase.statuses.values())
    per_s = answered / phase.seconds if phase.seconds else 0.0
    selling_s = (sold_rows[2] - sold_rows[1]).total_seconds() if sold_rows[0] > 1 else phase.seconds
    sold_per_s = sold / selling_s if selling_s else 0.0
    ratio = per_s / reference if reference else math.nan
    only_sold_out = not odd
    result = {
        "pgbench_tps": round(reference, 1),
        "buyers": buyers,
        "stock": stock,
        "connections": connections,
        "workers": workers,
        "sold": sold,
        "sold_out": sold_out,
        "other": answered - sold - sold_out,
        "stock_left": int(left),
        "purchases_per_s": round(per_s, 1),
        "sold_per_s": round(sold_per_s, 1),
        "ratio": round(ratio, 3),
        "sold_ratio": round(sold_per_s / reference, 3) if reference else math.nan,
        "p50_ms": round(phase.pct(50), 2),
        "p99_ms": round(phase.pct(99), 2),
        "seconds": round(phase.seconds, 2),
        "escrow_fen": escrow,
        "buyers_paid_fen": before - after,
        "verify_ok": report.ok,
    }
    result["ok"] = (sold == stock and sold_out == buyers - stock and left == 0 and only_sold_out
                    and escrow == stock * PRICE == before - after and report.ok)
    log(f"\n{'scenario':<44}{'per s':>10}{'p50 ms':>9}{'p99 ms':>9}{'ratio':>8}  target")
    log(f"{'pgbench TPC-B (reference)':<44}{reference:>10,.0f}{'':>9}{'':>9}{1:>8.2f}")
    meets = ratio >= TARGETS["ratio"] and phase.pct(99) <= TARGETS["p99_ms"]
    log(f"{f'flash sale, {buyers:,} buyers, {stock:,} vouchers':<44}{per_s:>10,.0f}{phase.pct(50):>9.1f}"
        f"{phase.pct(99):>9.1f}{ratio:>8.2f}  >= {TARGETS['ratio']}, p99 <= {TARGETS['p99_ms']:.0f} ms"
        f"{'' if meets else '  <-- MISSED'}")
    log(f"sold {sold} (stock {stock}, left {left}), SOLD_OUT {sold_out}, other {answered - sold - sold_out}; "
        f"escrow {escrow} fen, buyers paid {before - after} fen")
    log(f"verify after the run: {'clean' if report.ok else 'DIFFERENCES FOUND'}")
    if not result["ok"]:
        log(f"FAILED: statuses {phase.statuses}: {phase.first_bad}\nserver log:\n{server_tail}")
    return result


def main(url: str, seconds: int, log: Callable[[str], None] = print, buyers: int = 10_000, stock: int = 1_000,
         connections: int = 100, workers: int = 2) -> dict[str, Any]:
    if not url.startswith("postgresql"):
        raise SystemExit("the flash-sale benchmark needs PostgreSQL: set MOBIPAY_DATABASE_URL="
                         "postgresql+asyncpg://postgres@127.0.0.1/mobipay_bench_flashsale")
    if not 1 <= stock <= buyers:
        raise SystemExit("--stock is 1 to --buyers")
    ab = _instore_bench()._api_bench()
    from mobipay.platform.observability import configure_logging

    configure_logging("WARNING", json_logs=False)
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    reference: float = ab._ledger_bench().pgbench_tps(url, seconds, log)
    runner(ab._ensure_database(url))
    upgrade(url)
    result: dict[str, Any] = runner(_run(url, buyers, stock, connections, workers, log, reference))
    print("RESULT " + json.dumps(result), flush=True)
    return result


if __name__ == "__main__":  # pragma: no cover
    main(os.environ["MOBIPAY_DATABASE_URL"], 10)
