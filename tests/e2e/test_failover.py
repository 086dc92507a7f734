"""Failover under load, nothing lost: the whole topology of deploy/ (deploy/topology.py: 3
etcd members, Patroni with a primary and two standbys in synchronous mode, HAProxy in
front of PostgreSQL and of two API nodes, PgBouncer in transaction mode, a worker) on
loopback, with subscribers' phones making P2P transfers through HAProxy at a steady rate,
each with its idempotency key, retried with the same key until answered
(tests/support/load.py).

Mid-load the primary's PostgreSQL is killed with SIGKILL; Patroni promotes the synchronous
standby and HAProxy sends writes there. Then, as far as the time budget allows
(``MOBIPAY_FAILOVER_BUDGET_S``, 180 by default and in CI): an API node is killed (HAProxy
takes it out, it is started again and comes back), the old primary is waited for until it
runs again as a standby, and an etcd member is killed (the other two keep the quorum).

Then: every acknowledged transfer is in the ledger exactly once and nothing else is
(tests/support/books.py), the acknowledged ones sent again are replays, ``ledger verify``
is clean, each wallet moved by exactly what its transfers say and their total is conserved,
and the write gap (the longest time without an acknowledged transfer around the kill) is
at most ``MOBIPAY_FAILOVER_MAX_GAP_S`` (15). A ``RESULT {json}`` line gives the figures.
Runs with MOBIPAY_RELIABILITY=1 (CI) when Debian's patroni, etcd-server, haproxy and
pgbouncer are installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import itertools
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

from mobipay.kernel.clock import SystemClock
from mobipay.ledger.service import Ledger
from mobipay.platform.db import Database
from tests.support import results
from tests.support.books import transfers_exactly_once
from tests.support.load import FUNDING, Load, Phone, prepare
from tests.support.stack import Stack
from tests.support.waiting import wait_for

TOOLS = ("patroni", "etcd", "haproxy", "pgbouncer")
pytestmark = [pytest.mark.failover, pytest.mark.slow,
              pytest.mark.skipif(any(shutil.which(t, path="/usr/sbin:/usr/bin") is None for t in TOOLS),
                                 reason="needs Debian's patroni etcd-server haproxy pgbouncer (apt-get install -y "
                                 "patroni etcd-server etcd-client haproxy pgbouncer); CI installs them")]

PHONES = 12
THINK_S = 0.25  # each phone's pause between transfers: a steady rate, modest CPU
BUDGET_S = float(os.environ.get("MOBIPAY_FAILOVER_BUDGET_S", "180"))
MAX_GAP_S = float(os.environ.get("MOBIPAY_FAILOVER_MAX_GAP_S", "15"))
STEADY = 40  # acknowledged transfers between events
RESERVE_S = 35  # what the checks and stopping the topology take at the end


def _topology_module() -> ModuleType:
    """deploy/topology.py (a script, not a package)."""
    path = Path(__file__).resolve().parents[2] / "deploy" / "topology.py"
    spec = importlib.util.spec_from_file_location("mobipay_deploy_topology", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _acks(load: Load) -> list[float]:
    return sorted(op.answered_at for op in list(load.ops) if op.kind == "transfer" and op.acked)


def _after(load: Load, count: int, what: str, deadline_s: float = 90) -> None:
    target = load.acked + count

    def there() -> bool:
        load.check()
        return load.acked >= target

    wait_for(there, deadline_s, f"{count} more acknowledged transfers {what}", every_s=0.05)


def _write_gap(acks: list[float], start: float, end: float) -> float:
    """The longest time without an acknowledged transfer in [start, end]."""
    window = [start, *(t for t in acks if start <= t <= end), end]
    return max(b - a for a, b in itertools.pairwise(window))


async def _books(url: str, load: Load, phones: list[Phone], problems: list[str]) -> dict[str, object]:
    db = Database(url, pool_size=2, pgbouncer=True)
    ledger = Ledger(db, SystemClock())
    try:
        missing, extra = await transfers_exactly_once(db, load, phones, problems)
        report = await ledger.verify()
        if not report.ok:
            problems.append(f"ledger verify: {report.differences[:3]} {report.unbalanced[:3]}")
        by_msisdn = {p.msisdn: p for p in phones}
        expected = Counter({p.account: FUNDING for p in phones})
        for op in load.ops:
            if op.kind == "transfer" and op.acked:
                expected[by_msisdn[op.payer].account] -= op.amount
                expected[by_msisdn[op.to].account] += op.amount
        found = await ledger.accounts(list(expected))
        wrong = {c: (found[c].balance, want) for c, want in expected.items() if found[c].balance != want}
        if wrong:
            problems.append(f"{len(wrong)} wallets differ from their transfers: {list(wrong.items())[:3]}")
        total = sum(found[c].balance for c in expected)
        if total != FUNDING * len(phones):
            problems.append(f"the wallets hold {total} fen in all, {FUNDING * len(phones)} were funded")
        return {"present": sum(1 for op in load.ops if op.kind == "transfer" and op.acked) - len(missing),
                "missing": len(missing), "duplicated": len(extra), "verify_ok": report.ok, "total_conserved":
                total == FUNDING * len(phones)}
    finally:
        await db.dispose()


async def _staleness(url: str) -> float | None:
    db = Database(url, pool_size=1, pgbouncer=True)
    try:
        return await db.staleness()
    finally:
        await db.dispose()


def test_failover_under_load_loses_and_doubles_nothing(tmp_path: Path) -> None:
    t0 = time.monotonic()
    topology = _topology_module()
    workdir = Path(tempfile.mkdtemp(prefix="mobipay-failover-"))  # under /tmp: the postgres user must reach it
    topo = topology.Topology(topology.Options(dir=workdir, base_port=topology.free_base(2), api_nodes=2,
                                              die_with_parent=True))
    stack = Stack(topo.writer_url, tmp_path, extra_env={"MOBIPAY_DATABASE_PGBOUNCER": "true"})
    topo.o.extra_env = {k: v for k, v in stack.env.items() if k.startswith("MOBIPAY_") and k not in (
        "MOBIPAY_DATABASE_URL", "MOBIPAY_SMS_CALLBACK_URL")} | {"MOBIPAY_KANNEL_SENDSMS_URL": ""}
    events: list[str] = []
    passed = False
    load: Load | None = None

    def note(what: str) -> None:
        events.append(f"{what}: {load.acked if load else 0} acknowledged, {time.monotonic() - t0:.0f} s")
        print(events[-1], flush=True)

    def time_left() -> float:
        return BUDGET_S - RESERVE_S - (time.monotonic() - t0)

    try:
        stack.start_simulators()  # the bank verifies the phones' cards during set-up
        topo.up(say=lambda s: print(s, flush=True))
        note("topology up")
        phones, merchant = asyncio.run(prepare(stack.settings(), PHONES, stack.sims["site"].url))
        load = Load(topo.api_url, phones, merchant, mix={"transfer": 1}, seed=27, think_s=THINK_S,
                    request_timeout_s=10, op_deadline_s=90)
        load.start()
        _after(load, STEADY, "before the kill")

        # -- the primary's PostgreSQL killed: Patroni promotes the synchronous standby
        old = topo.leader()
        assert old is not None
        sync = [n for n, r in topo.roles().items() if r == "sync_standby"]
        killed_at = time.monotonic()
        topo.kill_postgres(old)
        note(f"postgres of {topo.member_name(old)} killed (kill -9), synchronous standby {sync}")
        promoted = wait_for(lambda: (lambda n: n if n not in (None, old) else None)(topo.leader()), 60,
                            "a standby promoted")
        note(f"{topo.member_name(promoted)} promoted")
        _after(load, STEADY, "after the promotion")
        note("writes resumed")
        gap = _write_gap(_acks(load), killed_at - 1, time.monotonic())
        first_after = min((t for t in _acks(load) if t > killed_at), default=float("nan")) - killed_at

        skipped: list[str] = []
        # -- an API node killed: HAProxy takes it out, the other carries the load
        if time_left() > 25:
            topo.kill("api1")
            note("api1 killed (kill -9)")
            wait_for(lambda: topo.api_up_in_haproxy().get("api1") is False, 15, "HAProxy taking api1 out")
            note("api1 out of HAProxy")
            _after(load, STEADY, "with one API node")
            topo.start_api(0)
            wait_for(lambda: topo.api_up_in_haproxy().get("api1") is True, 30, "HAProxy taking api1 back")
            note("api1 back in HAProxy")
        else:
            skipped.append("api node kill")

        # -- the old primary: its Patroni runs it again, now as a standby (pg_rewind if needed)
        if time_left() > 10:
            name = topo.member_name(old)
            wait_for(lambda: topo.roles().get(name) in ("replica", "sync_standby"), max(10.0, min(60.0, time_left())),
                     f"{name} running again as a standby")
            note(f"{name} rejoined as {topo.roles().get(name)}")
        else:
            skipped.append("old primary rejoining")

        # -- an etcd member lost, its Raft leader: the other two elect one and keep the quorum;
        # Patroni renews its leader key through them (every loop_wait, 1 s) and keeps its leader
        etcd_gap = None
        if time_left() > 15:
            victim = topo.etcd_leader()
            victim = 0 if victim is None else victim
            lost_at = time.monotonic()
            topo.kill(f"etcd{victim + 1}")
            note(f"etcd{victim + 1} (the etcd leader) killed (kill -9)")
            leader = topo.leader()
            _after(load, STEADY, "with two etcd members")
            # several renewals of Patroni's leader key (loop_wait 1 s) through the two members left
            wait_for(lambda: (load.check(), time.monotonic() - lost_at >= 8)[1], 30, "8 s with two etcd members")
            assert topo.leader() == leader and topo.healthy(), topo.cluster()
            etcd_gap = _write_gap(_acks(load), lost_at, time.monotonic())
            note(f"leader still {topo.member_name(leader)}, etcd leader now etcd{(topo.etcd_leader() or 0) + 1}")
        else:
            skipped.append("etcd member loss")

        load.stop()
        note("load stopped")
        problems: list[str] = []
        wrong = load.replay(at_most=150)
        if wrong:
            problems.append(f"{len(wrong)} acknowledged transfers sent again were not replays: {wrong[:3]}")
        books = asyncio.run(_books(topo.writer_url, load, phones, problems))
        staleness = asyncio.run(_staleness(topo.reader_url))  # a replica, through PgBouncer
        if staleness is None:
            problems.append("MOBIPAY_DATABASE_READ_URL's port did not reach a replica")
        acknowledged = sum(1 for op in load.ops if op.kind == "transfer" and op.acked)
        results.record({
            "suite": "failover", "phones": PHONES, "events": events, "skipped": skipped,
            "statuses": dict(sorted(load.tally.statuses.items())), "tried": load.tally.tried,
            "acknowledged": acknowledged, **books, "lost": load.tally.lost, "retries": load.tally.retries,
            "requests": load.tally.requests, "transport_errors": load.tally.transport_errors,
            "write_gap_s": round(gap, 2), "first_write_after_kill_s": round(first_after, 2),
            "etcd_loss_gap_s": None if etcd_gap is None else round(etcd_gap, 2),
            "replica_staleness_s": staleness, "elapsed_s": round(time.monotonic() - t0), "problems": len(problems)})
        assert not problems, "\n".join(problems[:20])
        assert books["missing"] == 0 and books["duplicated"] == 0
        assert gap <= MAX_GAP_S, f"writes stopped for {gap:.1f} s (at most {MAX_GAP_S} s)"
        assert etcd_gap is None or etcd_gap <= MAX_GAP_S, f"writes stopped for {etcd_gap} s when etcd lost a member"
        # A 5xx is a bug, except 503: the database failing over (Retry-After; the clients retried).
        assert not {s: n for s, n in load.tally.statuses.items() if s >= 500 and s != 503}, load.tally.statuses
        passed = True
    finally:
        if load is not None:
            with contextlib.suppress(Exception):
                load.stop(timeout_s=30)
        if not passed:
            for name in ("pg1", "pg2", "pg3", "pgbouncer", "haproxy", "api1", "api2", "worker1"):
                print(f"--- {name}.log\n{topo.log_tail(name, 15)}")
        topo.down()
        stack.down()
        if passed:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"topology logs kept in {workdir}")
