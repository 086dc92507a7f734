"""In-store payments against pgbench's TPC-B on the same PostgreSQL server: micropay (a till
charges a scanned payment code) over HTTP with signed terminal requests, and an upload of
offline NFC taps posted through the ledger's batch path.

Run with ``mobipay bench instore --seconds N`` (MOBIPAY_DATABASE_URL must be PostgreSQL, e.g.
postgresql+asyncpg://postgres@127.0.0.1/mobipay_bench_instore; created when missing, then
migrated). Needs ``pgbench`` and ``psql``. The ratio to pgbench measured in the same run is the
figure that counts; absolute rates swing with the machine. Last line: ``RESULT {json}``.

Phases:
  pgbench  TPC-B, scale 10, 16 clients, prepared, ``seconds`` (the ledger bench's reference);
  set-up   an approved shop (merchant onboarding) with one store and 16 POS terminals (Ed25519
           keys made here, so requests can be signed); ``devices`` subscribers, funded, each
           signed in with an SMS code (a bound device) and given a payment-code secret
           (``POST /v1/instore/paycode/devices``'s use case); 1,000 NFC tokens on 200 of them;
  server   ``python -m mobipay.app.cli serve`` on a free loopback port;
  micropay 16 connections (one per terminal, as 16 tills), ``seconds``: ``POST
           /v1/terminal/micropay`` of 1 to 99 fen (under the password-free amount: SUCCESS at
           once), every request signed (Ed25519, a new nonce) and carrying another device's
           payment code. A code is good for one payment in its 30 s step, so every request is
           made and signed just before the phase (each one once) and the phase ends when the
           devices' codes are spent or ``seconds`` have passed, whichever comes first (the
           rate is payments / elapsed time either way); 2 s of it first as a warm-up;
  offline  100,000 offline taps (``taps``) of the 1,000 tokens, made by the device SIMULATOR
           (instore/nfc.py's cryptogram under each token's limited-use key), uploaded by one
           terminal through ``NfcTaps.upload`` (the use case behind ``POST
           /v1/terminal/nfc/uploads``), timed from the call to its return: every tap verified,
           deduplicated, posted in ledger batches and recorded as the merchant's trades;
  checks   every micropay answer 200 SUCCESS and every tap ``accepted``; ``Ledger.verify()``
           clean; what the payers lost equals what the orders and taps say they paid.

The client is a small asyncio HTTP/1.1 client over keep-alive connections sending requests
prepared as bytes (no per-request work but reading the answer): wrk cannot sign Ed25519 nor
make TOTP codes, and a request is usable once (nonce, code), so the requests are made before
the phase. Its CPU per request is printed.

The NFC keys of this benchmark allow 100 taps each (the platform's policy issues 10): the
policy is the issuer's setting, and the taps of a key are what is measured, not its renewal.
Subscribers are raised to tier III directly in their table as in the API benchmark.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import math
import os
import resource
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text, update

from mobipay.app.bootstrap import Container, build
from mobipay.app.migrate import upgrade
from mobipay.instore import nfc, paycode
from mobipay.instore.signature import new_key, sign, signing_string
from mobipay.instore.tables import micropay_orders, nfc_taps
from mobipay.kernel.clock import SHANGHAI
from mobipay.kernel.errors import MobipayError
from mobipay.ledger.chart import BANK_SETTLEMENT
from mobipay.ledger.model import Leg, Transfer
from mobipay.platform.config import Settings
from mobipay.wallet import errors as WE
from mobipay.wallet.model import OtpPurpose
from mobipay.wallet.tables import users

HERE = Path(__file__).resolve().parent
TERMINALS = 16  # connections: one till each
NFC_USERS = 200
TOKENS_PER_USER = 5
TAPS_PER_KEY = 100
TARGETS = {"ratio": 0.4, "micropay_p99_ms": 50.0, "offline_ratio": 10.0}
FUNDING = 200_000  # fen per subscriber (2,000 CNY), topped up to this before every run
WARMUP_S = 2
CREDIT_CODE = "91310000MA1FL0B42F"  # a valid GB 32100 code for the benchmark's shop


def _api_bench() -> Any:
    """The benchmark next to this file (``mobipay bench`` puts their folder on the path)."""
    import api_bench

    return api_bench



async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, req: bytes) -> tuple[int, bytes]:
    """Send one pre-built HTTP/1.1 request on a kept-alive connection; its status and body."""
    writer.write(req)
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return int(head[9:12]), await reader.readexactly(length) if length else b""

def numbers(count: int) -> list[str]:
    return [f"+86136{77_000_000 + i:08d}" for i in range(count)]


@dataclasses.dataclass
class Device:
    msisdn: str
    account: str
    device_no: str
    secret: bytes


@dataclasses.dataclass
class Till:
    terminal_id: str
    seed: str


@dataclasses.dataclass
class World:
    merchant_id: str
    store_id: str
    tills: list[Till]
    devices: list[Device]
    tokens: list[tuple[str, str]]  # (token id, payer account)
    luks: dict[str, tuple[int, bytes]]  # token id -> (key seq, limited-use key)
    atc: dict[str, int]


# ---------------------------------------------------------------------------- set-up


async def _shop(c: Container, log: Callable[[str], None]) -> tuple[str, str, list[Till]]:
    """The benchmark's shop (made once, kept across runs) and its 16 tills, re-keyed every run
    so this process knows their private keys."""
    try:
        m = await c.merchants.apply(name="基准测试便利店", credit_code=CREDIT_CODE, legal_person="张三",
                                    contact="+8613677099999", mcc="5411", website="https://bench.example",
                                    settlement_account="6222 0200 0011 1122 222")
    except MobipayError:  # applied on an earlier run
        found = [x for x in await c.merchants.find(q=CREDIT_CODE) if x.name == "基准测试便利店"]
        if not found:
            raise
        m = found[0]
    stores = await c.merchants.stores(m.id)
    store_id = stores[0].id if stores else await c.merchants.add_store(m, "基准店", "上海市南京东路1号", city="上海")
    terminals = [t for t in await c.terminals.find(m.id, store_id) if t.state == "active"]
    for n in range(len(terminals), TERMINALS):
        made, _ = await c.terminals.register(m.id, store_id, f"BENCH-{n:02d}", actor="bench")
        terminals.append(made)
    tills = []
    for t in terminals[:TERMINALS]:
        seed, public = new_key()
        await c.terminals.rotate_key(m.id, t.id, actor="bench", public_key=public)
        tills.append(Till(t.id, seed))
    log(f"set-up: shop {m.id}, store {store_id}, {len(tills)} terminals re-keyed")
    return m.id, store_id, tills


async def _codes(c: Container, msisdns: list[str], since: datetime) -> dict[str, str]:
    """The login codes the outbox holds for these numbers since ``since`` (where a handset reads them)."""
    async with c.db.begin() as conn:
        rows = await conn.execute(text(
            "SELECT payload FROM outbox_messages WHERE topic = 'sms.send' AND created_at >= :since "
            "AND payload LIKE '%otp.login%' ORDER BY created_at, id"), {"since": since})
        out: dict[str, str] = {}
        wanted = set(msisdns)
        for (payload,) in rows:
            p = json.loads(payload)
            if p.get("to") in wanted:
                out[p["to"]] = str(p["params"]["code"])
    return out


async def prepare(c: Container, count: int, log: Callable[[str], None]) -> World:
    await c.ensure_system_accounts()
    merchant_id, store_id, tills = await _shop(c, log)
    msisdns = numbers(count)
    gate = asyncio.Semaphore(8)

    async def ensure(msisdn: str) -> str:
        async with gate:
            try:
                return (await c.wallet.user_by_msisdn(msisdn)).account_code
            except WE.UserNotFound:
                return (await c.wallet.create_user(msisdn, actor="bench", reason="in-store benchmark")).account_code

    started = time.monotonic()
    accounts = await asyncio.gather(*(ensure(m) for m in msisdns))
    async with c.db.begin() as conn:
        await conn.execute(update(users).where(users.c.msisdn.in_(msisdns), users.c.tier != 3).values(tier=3))
    balances = await c.ledger.accounts(accounts)
    stamp = secrets.token_hex(4)
    top_up = [Transfer(f"bench-instore:fund:{stamp}:{m}", (Leg.debit(BANK_SETTLEMENT, FUNDING - b),
                                                          Leg.credit(a, FUNDING - b)), "cash_in",
                       reference="in-store benchmark funding")
              for m, a in zip(msisdns, accounts, strict=True) if (b := balances[a].balance) < FUNDING]
    for r in await c.ledger.post_batch(top_up):
        if not r.ok:
            raise SystemExit(f"funding transfer {r.id} refused: {r.error}")
    log(f"set-up: {count} subscribers funded ({time.monotonic() - started:.1f} s); signing each in by SMS code …")
    since = datetime.now(UTC)
    await asyncio.gather(*(_sent(c, m, gate) for m in msisdns))
    codes = await _codes(c, msisdns, since)
    device = f"bench-{stamp}"

    async def bind(msisdn: str, account: str) -> tuple[Device, Any]:
        async with gate:
            tokens = await c.wallet.login(msisdn, device_id=device, device_name="in-store bench", code=codes[msisdn])
            me = await c.wallet.authenticate(tokens.access_token)
            made, _ = await c.micropay.provision(me, idempotency_key=f"bench-{stamp}")
            assert made.secret is not None
            return Device(msisdn, account, made.device.device_no, made.secret), me

    bound = await asyncio.gather(*(bind(m, a) for m, a in zip(msisdns, accounts, strict=True)))
    log(f"set-up: {count} payment-code devices provisioned ({time.monotonic() - started:.1f} s); NFC tokens …")
    c.nfc_tokens.policy = dataclasses.replace(c.nfc_tokens.policy, key_taps=TAPS_PER_KEY, max_tokens=10**6)
    tokens: list[tuple[str, str]] = []
    luks: dict[str, tuple[int, bytes]] = {}

    async def provision(me: Any, account: str, n: int) -> None:
        async with gate:
            token, key = await c.nfc_tokens.provision(me, "hce", idempotency_key=f"bench-{stamp}-{n}")
        tokens.append((token.id, account))
        luks[token.id] = (key.seq, base64.b64decode(key.luk))

    await asyncio.gather(*(provision(me, d.account, n) for d, me in bound[:NFC_USERS]
                           for n in range(TOKENS_PER_USER)))
    log(f"set-up: {len(tokens)} NFC tokens ({time.monotonic() - started:.1f} s)")
    return World(merchant_id, store_id, tills, [d for d, _ in bound], tokens, luks, {t: 0 for t, _ in tokens})


async def _sent(c: Container, msisdn: str, gate: asyncio.Semaphore) -> None:
    async with gate:
        await c.wallet.request_otp(msisdn, OtpPurpose.LOGIN)


# ---------------------------------------------------------------------------- micropay requests and the client


def micropay_requests(world: World, port: int, prefix: str) -> list[bytes]:
    """One signed request per device, its current code, each usable once; tills in turn."""
    now = datetime.now(UTC)
    stamp = str(int(now.timestamp()))
    out = []
    for i, d in enumerate(world.devices):
        till = world.tills[i % len(world.tills)]
        body = json.dumps({"out_trade_no": f"{prefix}{i}", "auth_code": paycode.generate(d.secret, d.device_no, now),
                           "amount": 1 + i % 99, "subject": "基准测试"}, ensure_ascii=False,
                          separators=(",", ":")).encode()
        nonce = f"{prefix}{i}"
        path = "/v1/terminal/micropay"
        signature = sign(till.seed, signing_string(till.terminal_id, "POST", path, stamp, nonce, body))
        head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nTerminal-Id: {till.terminal_id}\r\nTimestamp: {stamp}\r\n"
                f"Nonce: {nonce}\r\nSignature: {signature}\r\n\r\n")
        out.append(head.encode() + body)
    return out


@dataclasses.dataclass
class Phase:
    name: str
    seconds: float
    latencies_ns: list[int]
    statuses: dict[int, int]
    first_bad: str
    client_cpu_s: float
    server_cpu_s: float
    postgres_cpu_s: float
    ran_out: bool

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)

    @property
    def tps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies_ns:
            return math.nan
        s = sorted(self.latencies_ns)
        return s[min(len(s) - 1, int(q / 100 * len(s)))] / 1e6

    def cpu_text(self) -> str:
        n = max(1, sum(self.statuses.values()))
        return (f"{self.name}: CPU per request: server {self.server_cpu_s / n * 1000:.2f} ms, PostgreSQL "
                f"{self.postgres_cpu_s / n * 1000:.2f} ms, client {self.client_cpu_s / n * 1000:.3f} ms")


async def drive(port: int, requests: list[bytes], connections: int, seconds: float, name: str,
                server_pid: int, ab: Any) -> Phase:
    """Send each request once over ``connections`` keep-alive connections until they run out
    or ``seconds`` pass; latency is from the first byte sent to the last byte read."""
    pids = ab._tree(server_pid)
    server_before, pg_before = sum(ab._cpu_of(p) for p in pids), ab._postgres_cpu()
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    latencies: list[int] = []
    statuses: dict[int, int] = {}
    bad: list[str] = []
    cursor = 0
    start = time.perf_counter()
    end = start + seconds

    async def connection() -> None:
        nonlocal cursor
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while cursor < len(requests) and time.perf_counter() < end:
                req = requests[cursor]
                cursor += 1
                t0 = time.perf_counter_ns()
                status, body = await exchange(reader, writer, req)
                latencies.append(time.perf_counter_ns() - t0)
                statuses[status] = statuses.get(status, 0) + 1
                if status != 200 and len(bad) < 3:
                    bad.append(f"{status} {body[:300].decode(errors='replace')}")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    await asyncio.gather(*(connection() for _ in range(connections)))
    elapsed = time.perf_counter() - start
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    return Phase(name, elapsed, latencies, statuses, " | ".join(bad),
                 (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime),
                 sum(ab._cpu_of(p) for p in pids) - server_before, ab._postgres_cpu() - pg_before,
                 cursor >= len(requests))


# ---------------------------------------------------------------------------- offline taps


def offline_taps(world: World, terminal_id: str, count: int) -> list[nfc.Tap]:
    """``count`` taps of the tokens in turn, as the device simulator's applet makes them."""
    taps = []
    now = datetime.now(UTC)
    per_token = math.ceil(count / len(world.tokens))
    if per_token > TAPS_PER_KEY:
        raise SystemExit(f"--taps {count}: at most {TAPS_PER_KEY * len(world.tokens)} (one key per token)")
    for i in range(count):
        token_id, _ = world.tokens[i % len(world.tokens)]
        seq, luk = world.luks[token_id]
        world.atc[token_id] += 1
        atc = world.atc[token_id]
        amount = 1 + i % 99
        un = f"{secrets.randbits(32):08x}"
        data = nfc.tap_data(amount=amount, currency=nfc.CURRENCY_CNY, day=now.astimezone(SHANGHAI).date(),
                            unpredictable_number=un, atc=atc, cvm=nfc.CVM_NONE, terminal_id=terminal_id)
        taps.append(nfc.Tap(token_id, seq, atc, amount, nfc.CURRENCY_CNY, now, un, nfc.CVM_NONE, terminal_id,
                            nfc.cryptogram(luk, data)))
    return taps


# ---------------------------------------------------------------------------- main


async def _run(url: str, seconds: int, devices: int, taps: int, log: Callable[[str], None],
               reference: float) -> dict[str, Any]:
    ab = _api_bench()
    c = build(Settings(database_url=url))
    try:
        world = await prepare(c, devices, log)
        payer_accounts = sorted({d.account for d in world.devices})
        before = sum(a.balance for a in (await c.ledger.accounts(payer_accounts)).values())
        prefix = f"b{int(time.time() * 1000):x}-"
        with tempfile.TemporaryDirectory(prefix="mobipay-bench-instore-") as tmp:
            log_path = Path(tmp) / "server.log"
            with ab._sigterm_interrupts(), ab.serve(url, 1, log_path) as server:
                log(f"server: uvicorn pid {server.pid} on http://127.0.0.1:{server.port}; "
                    f"profile with: py-spy top --pid {server.pid}")
                requests = micropay_requests(world, server.port, prefix)
                warm_n = min(len(requests) // 10, 2000)
                log(f"micropay: warm-up ({warm_n} payments, at most {WARMUP_S} s) …")
                warm = await drive(server.port, requests[:warm_n], TERMINALS, WARMUP_S, "warm-up", server.pid, ab)
                log(f"micropay: {TERMINALS} tills, {len(requests) - warm_n} signed payments, at most {seconds} s …")
                phase = await drive(server.port, requests[warm_n:], TERMINALS, seconds, "micropay", server.pid, ab)
                log(phase.cpu_text())
                if phase.ran_out and phase.seconds < seconds:
                    log(f"micropay: the {devices} devices' codes ran out after {phase.seconds:.1f} s "
                        "(--devices for longer phases)")
                server_tail = ab._tail(log_path)
        terminal = await c.terminals.terminal(world.merchant_id, world.tills[0].terminal_id)
        log(f"offline: {taps:,} taps of {len(world.tokens)} tokens, made by the device simulator …")
        batch = offline_taps(world, terminal.id, taps)
        log("offline: uploading …")
        t0 = time.perf_counter()
        results = await c.nfc_taps.upload(terminal, batch)
        upload_s = time.perf_counter() - t0
        accepted = sum(r.result == "accepted" for r in results)
        if accepted != taps:
            odd = next(r for r in results if r.result != "accepted")
            log(f"offline: {taps - accepted} taps not accepted, e.g. {odd}")
        log("verify: ledger, payers' balances against the orders and taps …")
        report = await c.ledger.verify()
        after = sum(a.balance for a in (await c.ledger.accounts(payer_accounts)).values())
        async with c.db.begin() as conn:
            paid_orders = int((await conn.execute(select(func.coalesce(func.sum(micropay_orders.c.amount), 0)).where(
                micropay_orders.c.out_trade_no.like(f"{prefix}%"), micropay_orders.c.state == "SUCCESS"))
                ).scalar_one())
            tapped = int((await conn.execute(select(func.coalesce(func.sum(nfc_taps.c.charged), 0)).where(
                nfc_taps.c.token_id.in_([t for t, _ in world.tokens]), nfc_taps.c.state == "paid"))).scalar_one())
    finally:
        await c.close()
    ok_all = warm.ok + phase.ok
    ratio = phase.tps / reference if reference else math.nan
    offline_tps = accepted / upload_s if upload_s else 0.0
    offline_ratio = offline_tps / reference if reference else math.nan
    balanced = before - after == paid_orders + tapped
    result = {
        "pgbench_tps": round(reference, 1),
        "micropay_tps": round(phase.tps, 1),
        "micropay_p50_ms": round(phase.pct(50), 2),
        "micropay_p99_ms": round(phase.pct(99), 2),
        "ratio": round(ratio, 3),
        "micropay_payments": ok_all,
        "offline_taps": accepted,
        "offline_seconds": round(upload_s, 2),
        "offline_tps": round(offline_tps, 1),
        "offline_ratio": round(offline_ratio, 2),
        "non_200": sum(n for s, n in {**phase.statuses}.items() if s != 200)
        + sum(n for s, n in warm.statuses.items() if s != 200),
        "verify_ok": report.ok,
        "balances_match": balanced,
        "seconds": round(phase.seconds, 1),
    }
    result["ok"] = result["non_200"] == 0 and accepted == taps and report.ok and balanced
    log(f"\n{'scenario':<40}{'tps':>10}{'p50 ms':>9}{'p99 ms':>9}{'ratio':>8}  target")
    log(f"{'pgbench TPC-B (reference)':<40}{reference:>10,.0f}{'':>9}{'':>9}{1:>8.2f}")
    meets = ratio >= TARGETS["ratio"] and phase.pct(99) <= TARGETS["micropay_p99_ms"]
    log(f"{'micropay, 16 signed tills':<40}{phase.tps:>10,.0f}{phase.pct(50):>9.1f}{phase.pct(99):>9.1f}"
        f"{ratio:>8.2f}  >= {TARGETS['ratio']}, p99 <= {TARGETS['micropay_p99_ms']:.0f} ms"
        f"{'' if meets else '  <-- MISSED'}")
    log(f"{f'offline upload, {taps:,} taps':<40}{offline_tps:>10,.0f}{'':>9}{'':>9}{offline_ratio:>8.2f}  "
        f">= {TARGETS['offline_ratio']}{'' if offline_ratio >= TARGETS['offline_ratio'] else '  <-- MISSED'}")
    log(f"verify after the run: {'clean' if report.ok else 'DIFFERENCES FOUND'}")
    log(f"payers lost {before - after} fen; orders {paid_orders} + taps {tapped}: "
        f"{'match' if balanced else 'MISMATCH'}")
    if result["non_200"]:
        log(f"FAILED: answers other than 200: warm-up {warm.statuses}, phase {phase.statuses}: {warm.first_bad} "
            f"{phase.first_bad}\nserver log:\n{server_tail}")
    return result


def main(url: str, seconds: int, log: Callable[[str], None] = print, devices: int = 4000,
         taps: int = 100_000) -> dict[str, Any]:
    if not url.startswith("postgresql"):
        raise SystemExit("the in-store benchmark needs PostgreSQL: set MOBIPAY_DATABASE_URL="
                         "postgresql+asyncpg://postgres@127.0.0.1/mobipay_bench_instore")
    if not 1 <= seconds <= 25:
        raise SystemExit("--seconds must be 1 to 25: a payment code is good for 30 s and the requests are "
                         "made before the phase")
    ab = _api_bench()
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
    result: dict[str, Any] = runner(_run(url, seconds, devices, taps, log, reference))
    print("RESULT " + json.dumps(result), flush=True)
    return result


if __name__ == "__main__":  # pragma: no cover
    main(os.environ["MOBIPAY_DATABASE_URL"], int(sys.argv[1]) if len(sys.argv) > 1 else 10)
