"""Soak: mixed load (transfers, phone top-ups, cash-ins, bill payments, merchant payments,
reads and SMS commands) from subscribers' phones and a merchant's server against real
``mobipay serve`` and ``mobipay worker`` processes, real Kannel and the partners'
SIMULATORS, on a PostgreSQL cluster of the test's own, for ``--soak-seconds`` (default
1800, or MOBIPAY_SOAK_SECONDS; CI runs 180).

Every 5 s the resident memory and open file descriptors of the server and the worker and
the database connections (pg_stat_activity) are sampled. After the warm-up (a tenth of the
run, at least 30 s) the last third of the samples may not exceed the first third by more
than noise: memory by 10% + 16 MiB, descriptors and connections by a few; connections stay
within the pools. Then the books are checked as after the kill -9 suite (nothing lost,
nothing twice, everything delivered, ``ledger verify`` clean). A ``RESULT {json}`` line
gives the figures (docs/reliability.md). Runs with MOBIPAY_RELIABILITY=1 (CI sets it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mobipay.app.migrate import upgrade
from mobipay.channels.sms.kannel import BEARERBOX
from tests.conftest import free_port
from tests.support import results
from tests.support.books import audit, outstanding
from tests.support.load import SOAK_MIX, Load, prepare
from tests.support.postgres import BIN, OwnPostgres, own_postgres
from tests.support.sampling import Sampler, growth
from tests.support.stack import Stack
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.soak, pytest.mark.slow,
              pytest.mark.skipif(not Path(BEARERBOX).exists(), reason="Kannel is not installed (apt-get install -y "
                                 "kannel); CI installs it"),
              pytest.mark.skipif(not (BIN / "initdb").exists(), reason=f"PostgreSQL server binaries not in {BIN}")]

PHONES = 16
POOL = 10  # MOBIPAY_DB_POOL_SIZE of the server and the worker: at most twice that each (overflow)


@pytest.fixture
def database() -> Iterator[tuple[str, OwnPostgres]]:
    with own_postgres(free_port()) as pg:
        url = asyncio.run(pg.create_database("mobipay"))
        upgrade(url)
        yield url, pg


def test_soak_memory_and_connections_stay_bounded(database: tuple[str, OwnPostgres], tmp_path: Path,
                                                  pytestconfig: pytest.Config) -> None:
    url, pg = database
    seconds = float(pytestconfig.getoption("--soak-seconds"))
    warmup = max(30.0, seconds / 10)
    stack = Stack(url, tmp_path, extra_env={"MOBIPAY_DB_POOL_SIZE": str(POOL)})
    try:
        stack.start_simulators()
        stack.kannel.start(timeout_s=60)
        phones, merchant = asyncio.run(prepare(stack.settings(), PHONES, stack.sims["site"].url))
        stack.start("server")
        stack.start("worker")
        stack.connect_phones()
        assert stack.phones is not None
        sampler = Sampler(stack, pg, "mobipay", every_s=5.0)
        load = Load(stack.api, phones, merchant, mix=SOAK_MIX, seed=1816, texter=stack.phones.send, think_s=0.02)
        sampler.start()
        started = time.monotonic()
        load.start()

        def done() -> bool:
            load.check()
            return time.monotonic() - started >= seconds

        wait_for(done, seconds + 60, "the soak's duration", every_s=1.0)
        load.stop()
        load_s = time.monotonic() - started
        acked_in_load = load.acked
        try:
            wait_for(lambda: not outstanding(stack, load), 240, "the worker settling everything", every_s=1.0)
        except TimeoutError:
            raise AssertionError(f"not settled: {outstanding(stack, load)}") from None
        sampler.stop()
        samples = sampler.samples

        checks = [
            growth(samples, warmup, "server RSS (KiB)", lambda s: s.server_rss_kb, ratio=0.10, slack=16 * 1024),
            growth(samples, warmup, "worker RSS (KiB)", lambda s: s.worker_rss_kb, ratio=0.10, slack=16 * 1024),
            growth(samples, warmup, "server open files", lambda s: s.server_fds, ratio=0.0, slack=10),
            growth(samples, warmup, "worker open files", lambda s: s.worker_fds, ratio=0.0, slack=10),
            growth(samples, warmup, "PostgreSQL connections", lambda s: s.connections, ratio=0.0, slack=5),
        ]
        figures = asyncio.run(audit(stack, load, phones, merchant, crashes=0))
        wrong = load.replay()
        if wrong:
            figures.problems.append(f"{len(wrong)} acknowledged requests sent again were not replays: {wrong[:3]}")
        again = asyncio.run(audit(stack, load, phones, merchant, crashes=0))  # the replays moved nothing
        figures.problems.extend(p for p in again.problems if p not in figures.problems)
        steady = [s for s in samples if s.at >= warmup]
        result = figures.result(
            suite="soak", database="postgresql", phones=PHONES, seconds=round(load_s), warmup_s=round(warmup),
            ops_per_s=round(acked_in_load / load_s, 1), samples=len(samples),
            statuses=dict(sorted(load.tally.statuses.items())), refreshed=load.tally.refreshed,
            rss_server_mb=[round(steady[0].server_rss_kb / 1024), round(steady[-1].server_rss_kb / 1024)],
            rss_worker_mb=[round(steady[0].worker_rss_kb / 1024), round(steady[-1].worker_rss_kb / 1024)],
            rss_thirds_mb={c.what.split(" (")[0]: [round(c.first / 1024), round(c.last / 1024)]
                           for c in checks[:2]},
            fds_max=[max(s.server_fds for s in samples), max(s.worker_fds for s in samples)],
            connections_max=sampler.max_connections())
        results.record(result)
        for c in checks:
            print(c, flush=True)
        assert not figures.problems, "\n".join(figures.problems[:20])
        assert not [c for c in checks if not c.ok], "\n".join(str(c) for c in checks if not c.ok)
        assert sampler.max_connections() <= 2 * 2 * POOL + 2, sampler.max_connections()  # two pools, and the sampler
        assert not {s: n for s, n in load.tally.statuses.items() if s >= 500}, load.tally.statuses
        assert figures.acknowledged > 0
    finally:
        stack.down()

