"""HTTP API throughput: authenticated P2P transfers through a real uvicorn server, as a ratio
to pgbench's TPC-B on the same PostgreSQL server.

Run with ``mobipay bench api --seconds N`` (MOBIPAY_DATABASE_URL must be PostgreSQL, e.g.
postgresql+asyncpg://postgres@127.0.0.1/mobipay_bench_api; the database is created when
missing, then migrated). Needs ``wrk`` (``apt-get install -y wrk``), ``pgbench`` and ``psql``.
Absolute rates swing from run to run on a shared machine; the ratio to pgbench measured in
the same run is the figure that counts. Last line: ``RESULT {json}``.

Phases:
  pgbench  TPC-B, scale 10, 16 clients, prepared, ``seconds`` (the ledger bench's reference);
  set-up   300 subscribers (WalletService.create_user, set_pin), funded once from the bank
           settlement account, each signed in with its PIN (one access token each);
  server   ``python -m mobipay.app.cli serve`` (uvicorn with uvloop, as operators run it) on a
           free loopback port with the caller's MOBIPAY_* settings; its log goes to a file;
  warm-up  2 s of P2P load, not counted;
  p2p      wrk, 1 thread, 16 connections, ``seconds``: POST /v1/transfers of 1 to 99 fen
           (under the password-free amount: no PIN), a new Idempotency-Key per request,
           senders (tokens) in turn, recipients rotating;
  pin      as p2p for ``seconds // 2`` (5 to 60 s) on 4 connections, 20,001 to 20,099 fen with
           the PIN: argon2id on every request, costly by design, so its own rate (``pin_tps``).
           Four connections keep two cores busy; more only queue behind the hashing (16 made a
           request wait over 2 s on a loaded machine, so a 2 s phase counted none);
  checks   every response must be 201 Created (anything else, a socket error or a timeout
           fails the run loudly), ``Ledger.verify()`` must be clean and the subscribers'
           balances must sum to what they did before the load.

Access tokens last 15 minutes and are not refreshed: ``seconds`` is at most 600, so the
warm-up, p2p and pin phases end within the life of the tokens issued just before them.

The subscribers are raised to tier III directly in their table (real-name verification is
not built yet): the tier I lifetime cap of 1,000 CNY would stop PIN transfers after a few
runs. The tier only decides which limit is checked, not the work a transfer does.

wrk is the client because server, PostgreSQL and client share the machine's cores: it
spends 0.04-0.1 ms of CPU per request (printed after each phase), where an httpx
AsyncClient measured 1.8 ms per request on the same machine (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import make_url

from mobipay.app.bootstrap import build
from mobipay.app.migrate import upgrade
from mobipay.kernel.clock import SystemClock
from mobipay.kernel.errors import MobipayError
from mobipay.kernel.msisdn import national_number
from mobipay.ledger.chart import BANK_SETTLEMENT
from mobipay.ledger.model import Leg, Transfer
from mobipay.ledger.service import Ledger
from mobipay.platform.config import Settings
from mobipay.platform.db import Database
from mobipay.wallet import errors as WE
from mobipay.wallet.model import check_pin
from mobipay.wallet.tables import users

HERE = Path(__file__).resolve().parent
LUA = HERE / "api_bench.lua"
SUBSCRIBERS = 300
FUNDING = 100_000_000  # fen per subscriber (1,000,000 CNY), posted once: a fixed transfer id
CLIENTS = 16
PIN_CLIENTS = 4  # argon2id is CPU-bound: more connections only lengthen the queue
WRK_THREADS = 1  # one event loop drives 16 connections at these rates; leaves the CPU to the server
WARMUP_S = 2
MAX_SECONDS = 600  # warm-up + p2p + pin phases must end before the 15-minute access tokens do
TARGETS = {"ratio": 0.5, "api_p99_ms": 100.0}
DEVICE = "bench-api"
INSTALL_WRK = "wrk not found: install it with `apt-get install -y wrk` (Debian/Ubuntu) or `brew install wrk`"


def _ledger_bench() -> Any:
    """The benchmark next to this file (``mobipay bench`` puts their folder on the path)."""
    import ledger_bench

    return ledger_bench


# ---------------------------------------------------------------------------- set-up


def subscriber_numbers(count: int = SUBSCRIBERS) -> list[str]:
    return [f"+86135{88_000_000 + i:08d}" for i in range(count)]


def pin_for(msisdn: str) -> str:
    """A PIN per subscriber, the same on every run, that the PIN rules accept."""
    seed = int(msisdn[-6:])
    for k in range(1, 100):
        try:
            return check_pin(f"{(seed * 7919 + k * 104_729) % 1_000_000:06d}", msisdn)
        except MobipayError:  # too easy to guess: the next candidate
            continue
    raise AssertionError(f"no acceptable PIN for {msisdn}")


@dataclass(frozen=True)
class Subscriber:
    msisdn: str
    account: str
    pin: str
    token: str


async def _ensure_database(url: str) -> None:
    """Create the database named in ``url`` if it does not exist (connecting to ``postgres``)."""
    import asyncpg

    target = make_url(url)
    name = target.database or ""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise SystemExit(f"database name {name!r}: use letters, digits and _ (it is created if missing)")
    admin = target.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    conn = await asyncpg.connect(admin)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def prepare(url: str, log: Callable[[str], None]) -> tuple[list[Subscriber], int]:
    """Subscribers with funded wallets and fresh access tokens; the sum of their balances."""
    await _ensure_database(url)
    await asyncio.to_thread(upgrade, url)
    c = build(Settings(database_url=url))
    try:
        await c.ensure_system_accounts()
        numbers = subscriber_numbers()
        gate = asyncio.Semaphore(8)
        created = 0

        async def ensure(msisdn: str) -> str:
            nonlocal created
            async with gate:
                try:
                    return (await c.wallet.user_by_msisdn(msisdn)).account_code
                except WE.UserNotFound:
                    created += 1
                    user = await c.wallet.create_user(msisdn, actor="bench", reason="API benchmark subscriber")
                    return user.account_code

        accounts = await asyncio.gather(*(ensure(m) for m in numbers))
        async with c.db.begin() as conn:  # tier III: see the module docstring
            await conn.execute(update(users).where(users.c.msisdn.in_(numbers), users.c.tier != 3).values(tier=3))
        results = await c.ledger.post_batch([
            Transfer(f"bench-api:fund:{m}", (Leg.debit(BANK_SETTLEMENT, FUNDING), Leg.credit(a, FUNDING)),
                     "cash_in", reference="API benchmark funding")
            for m, a in zip(numbers, accounts, strict=True)])
        if refused := [r for r in results if not r.ok]:
            raise SystemExit(f"funding transfer {refused[0].id} refused: {refused[0].error}")
        log(f"set-up: {len(numbers)} subscribers ({created} new), funded; signing each in with its PIN "
            "(argon2id, a few seconds) …")
        login_gate = asyncio.Semaphore(4)  # argon2 runs in threads: 2 cores, a little queueing

        async def sign_in(msisdn: str, account: str) -> Subscriber:
            pin = pin_for(msisdn)
            async with login_gate:
                try:
                    tokens = await c.wallet.login(msisdn, device_id=DEVICE, device_name="mobipay bench api", pin=pin)
                except WE.PinNotSet:
                    await c.wallet.set_pin(msisdn, pin)
                    tokens = await c.wallet.login(msisdn, device_id=DEVICE, device_name="mobipay bench api", pin=pin)
            return Subscriber(msisdn, account, pin, tokens.access_token)

        subscribers = await asyncio.gather(*(sign_in(m, a) for m, a in zip(numbers, accounts, strict=True)))
        total = sum(acc.balance for acc in (await c.ledger.accounts(accounts)).values())
    finally:
        await c.close()
    return list(subscribers), total


async def check_books(url: str, accounts: list[str]) -> tuple[bool, int]:
    """``Ledger.verify()`` and the sum of the subscribers' balances after the run."""
    db = Database(url, pool_size=2)
    ledger = Ledger(db, SystemClock())
    try:
        report = await ledger.verify()
        total = sum(acc.balance for acc in (await ledger.accounts(accounts)).values())
    finally:
        await ledger.stop()
        await db.dispose()
    return report.ok, total


# ---------------------------------------------------------------------------- the server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the server gets SIGTERM if this process dies without cleaning up (kill -9)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@dataclass(frozen=True)
class Server:
    pid: int
    port: int
    log_path: Path


@contextlib.contextmanager
def serve(url: str, workers: int, log_path: Path) -> Iterator[Server]:
    """``mobipay serve`` in its own process group; stopped (SIGTERM, then SIGKILL) on any exit."""
    port = _free_port()
    env = {**os.environ, "MOBIPAY_DATABASE_URL": url}
    cmd = [sys.executable, "-m", "mobipay.app.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--workers", str(workers)]
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True,
                                preexec_fn=_die_with_parent if sys.platform == "linux" else None)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"the server exited with {proc.returncode} before answering:\n{_tail(log_path)}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"the server did not answer /readyz within 60 s:\n{_tail(log_path)}")
            time.sleep(0.2)
        yield Server(proc.pid, port, log_path)
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # any worker left behind by the supervisor


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM to the benchmark unwinds like Ctrl-C, so the server is stopped either way."""
    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: nothing to install
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# ---------------------------------------------------------------------------- CPU accounting (Linux /proc)

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_of(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime


def _tree(pid: int) -> list[int]:
    out = [pid]
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            for child in children.read_text().split():
                out.extend(_tree(int(child)))
    return out


def _postgres_cpu() -> float:
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            text = stat.read_text()
            if "(postgres)" in text:
                fields = text.rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / _TICK
    return total


# ---------------------------------------------------------------------------- load


@dataclass
class Phase:
    name: str
    seconds: float
    requests: int
    created: int
    other_2xx: int
    non_2xx: int
    socket_errors: dict[str, int]
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    bad: str
    wrk_cpu_s: float
    server_cpu_s: float
    postgres_cpu_s: float

    @property
    def tps(self) -> float:
        return self.created / self.seconds if self.seconds else 0.0

    @property
    def failures(self) -> int:
        return self.other_2xx + self.non_2xx + sum(self.socket_errors.values())

    def failure_text(self) -> str:
        errors = ", ".join(f"{k} {v}" for k, v in self.socket_errors.items() if v)
        return (f"{self.name}: {self.non_2xx} non-2xx and {self.other_2xx} other non-201 responses"
                f"{'; socket errors: ' + errors if errors else ''}; statuses and first body: {self.bad[:600]}")

    def cpu_text(self) -> str:
        n = max(1, self.requests)
        return (f"{self.name}: CPU per request: server {self.server_cpu_s / n * 1000:.2f} ms, PostgreSQL (all "
                f"backends) {self.postgres_cpu_s / n * 1000:.2f} ms, wrk {self.wrk_cpu_s / n * 1000:.3f} ms "
                f"(wrk used {self.wrk_cpu_s / self.seconds * 100 if self.seconds else 0:.1f}% of one core)")


def run_wrk(exe: str, server: Server, data: Path, mode: str, seconds: int, prefix: str, name: str,
            clients: int = CLIENTS) -> Phase:
    cmd = [exe, "-t", str(WRK_THREADS), "-c", str(clients), "-d", f"{seconds}s", "--timeout", "10s",
           "-s", str(LUA), f"http://127.0.0.1:{server.port}", "--", str(data), mode, prefix, str(WRK_THREADS)]
    pids = _tree(server.pid)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_before, pg_before = sum(_cpu_of(p) for p in pids), _postgres_cpu()
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
    server_cpu = sum(_cpu_of(p) for p in pids) - server_before
    pg_cpu = _postgres_cpu() - pg_before
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((x for x in run.stdout.splitlines() if x.startswith("WRK requests=")), None)
    if run.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed ({run.returncode}):\n{run.stdout}\n{run.stderr}")
    v = {k: int(n) for k, n in re.findall(r"(\w+)=(\d+)", line)}
    bad = next((x[len("WRK bad="):] for x in run.stdout.splitlines() if x.startswith("WRK bad=")), "")
    return Phase(
        name=name, seconds=v["duration_us"] / 1e6, requests=v["requests"], created=v["created"],
        other_2xx=v["other_2xx"], non_2xx=v["non_2xx"],
        socket_errors={k: v[k] for k in ("connect", "read", "write", "timeout")},
        p50_ms=v["p50_us"] / 1000, p90_ms=v["p90_us"] / 1000, p99_ms=v["p99_us"] / 1000, max_ms=v["max_us"] / 1000,
        bad=bad.strip(), wrk_cpu_s=(after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        server_cpu_s=server_cpu, postgres_cpu_s=pg_cpu,
    )


# ---------------------------------------------------------------------------- main


def main(url: str, seconds: int, log: Callable[[str], None] = print, workers: int = 1) -> dict[str, Any]:
    if not url.startswith("postgresql"):
        raise SystemExit("the API benchmark needs PostgreSQL: set MOBIPAY_DATABASE_URL="
                         "postgresql+asyncpg://postgres@127.0.0.1/mobipay_bench_api")
    if not 1 <= seconds <= MAX_SECONDS:
        raise SystemExit(f"--seconds must be 1 to {MAX_SECONDS}: access tokens last 15 minutes and the "
                         "benchmark does not refresh them")
    exe = shutil.which("wrk")
    if exe is None:
        raise SystemExit(INSTALL_WRK)
    from mobipay.platform.observability import configure_logging

    configure_logging("WARNING", json_logs=False)  # this process only; the server keeps its settings
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        runner = asyncio.run
    pin_seconds = max(5, min(60, seconds // 2))

    reference: float = _ledger_bench().pgbench_tps(url, seconds, log)
    log(f"set-up: database, {SUBSCRIBERS} subscribers …")
    subscribers, total_before = runner(prepare(url, log))
    prefix = f"b{int(time.time() * 1000):x}"  # Idempotency-Keys: new on every run
    with tempfile.TemporaryDirectory(prefix="mobipay-bench-api-") as tmp:
        data = Path(tmp) / "subscribers.txt"  # access tokens: in a private temporary directory
        data.write_text("".join(f"{s.token} {national_number(s.msisdn)} {s.pin}\n" for s in subscribers))
        data.chmod(0o600)
        log_path = Path(tmp) / "server.log"
        with _sigterm_interrupts(), serve(url, workers, log_path) as server:
            log(f"server: uvicorn pid {server.pid} ({workers} worker{'s' if workers > 1 else ''}) on "
                f"http://127.0.0.1:{server.port}; profile with: py-spy top --pid {server.pid}")
            log(f"wrk: warm-up, {WARMUP_S}s …")
            warm = run_wrk(exe, server, data, "p2p", WARMUP_S, f"{prefix}w", "warm-up")
            if warm.failures:
                raise SystemExit(f"FAILED in the warm-up: {warm.failure_text()}\nserver log:\n{_tail(log_path)}")
            log(f"wrk: P2P transfers without PIN, {CLIENTS} connections, {seconds}s …")
            p2p = run_wrk(exe, server, data, "p2p", seconds, f"{prefix}a", "p2p")
            log(p2p.cpu_text())
            log(f"wrk: P2P transfers with PIN (argon2id), {PIN_CLIENTS} connections, {pin_seconds}s …")
            pin = run_wrk(exe, server, data, "pin", pin_seconds, f"{prefix}p", "pin", PIN_CLIENTS)
            log(pin.cpu_text())
            errors_logged = sum('"error"' in line for line in log_path.read_text(errors="replace").splitlines())
            server_tail = _tail(log_path)
    log("verify: ledger and the subscribers' balances …")
    verify_ok, total_after = runner(check_books(url, [s.account for s in subscribers]))

    failed = [p for p in (p2p, pin) if p.failures]
    ratio = p2p.tps / reference if reference else math.nan
    result = {
        "pgbench_tps": round(reference, 1),
        "api_tps": round(p2p.tps, 1),
        "api_p99_ms": round(p2p.p99_ms, 2),
        "ratio": round(ratio, 3),
        "pin_tps": round(pin.tps, 1),
        "pin_p99_ms": round(pin.p99_ms, 2),
        "non_2xx": p2p.non_2xx + pin.non_2xx,
        "verify_ok": verify_ok,
        "balances_unchanged": total_before == total_after,
        "seconds": seconds,
        "workers": workers,
    }
    result["ok"] = not failed and verify_ok and total_before == total_after
    meets = ratio >= TARGETS["ratio"] and p2p.p99_ms <= TARGETS["api_p99_ms"]
    log(f"\n{'scenario':<34}{'tps':>10}{'p50 ms':>9}{'p99 ms':>9}{'ratio':>8}  target")
    log(f"{'pgbench TPC-B (reference)':<34}{reference:>10,.0f}{'':>9}{'':>9}{1:>8.2f}")
    log(f"{'P2P, 16 clients, no PIN':<34}{p2p.tps:>10,.0f}{p2p.p50_ms:>9.1f}{p2p.p99_ms:>9.1f}{ratio:>8.2f}  "
        f">= {TARGETS['ratio']}, p99 <= {TARGETS['api_p99_ms']:.0f} ms{'' if meets else '  <-- MISSED'}")
    log(f"{'P2P with PIN (argon2id), 4 clients':<34}{pin.tps:>10,.0f}{pin.p50_ms:>9.1f}{pin.p99_ms:>9.1f}"
        f"{pin.tps / reference if reference else math.nan:>8.2f}")
    log(f"verify after the run: {'clean' if verify_ok else 'DIFFERENCES FOUND'}")
    log(f"subscribers' balances: {total_before} fen before, {total_after} fen after: "
        f"{'unchanged' if total_before == total_after else 'CHANGED'}")
    if errors_logged:
        log(f"server log: {errors_logged} error lines; last lines:\n{server_tail}")
    for phase in failed:
        log(f"FAILED: {phase.failure_text()}")
    print("RESULT " + json.dumps(result), flush=True)
    return result
