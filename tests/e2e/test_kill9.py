"""Kill -9 end to end: subscribers' phones and a merchant's server make transfers, phone
top-ups, cash-ins, bill payments and merchant payments over HTTP with idempotency keys,
against real ``mobipay serve`` and ``mobipay worker`` processes, real Kannel and the
partners' SIMULATORS. Mid-load the API server is killed with SIGKILL, then the worker,
then (PostgreSQL) the database server is stopped as a crash would stop it and started
again; the clients retry with the same keys until answered.

Then the books are held to what the clients were told (tests/support/books.py): every
acknowledged request in the ledger exactly once, nothing half-done, every SMS and merchant
notification delivered (duplicates only as documented), ``ledger verify`` clean, each
wallet moved by exactly what succeeded for it; and every acknowledged request sent once
more is a replay that moves nothing.

The database is the test's own: a SQLite file, or a PostgreSQL cluster made for the test
(tests/support/postgres.py), never the shared server. Runs with MOBIPAY_RELIABILITY=1 (CI);
``MOBIPAY_KILL9_OPS`` (default 150) is how many operations are acknowledged between crashes.
A ``RESULT {json}`` line gives the figures (docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mobipay.app.migrate import upgrade
from mobipay.channels.sms.kannel import BEARERBOX
from tests.conftest import free_port
from tests.support import results
from tests.support.books import audit, outstanding
from tests.support.load import KILL9_MIX, Load, prepare
from tests.support.postgres import OwnPostgres, own_postgres
from tests.support.sampling import Sampler
from tests.support.stack import Stack
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.kill9, pytest.mark.slow,
              pytest.mark.skipif(not Path(BEARERBOX).exists(), reason="Kannel is not installed (apt-get install -y "
                                 "kannel); CI installs it")]

PHONES = 24
STEP = int(os.environ.get("MOBIPAY_KILL9_OPS", "150"))


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, OwnPostgres | None]]:
    """A migrated database of this test's own: (url, the PostgreSQL cluster or None)."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'mobipay.db'}"
        upgrade(url)
        yield url, None
        return
    with own_postgres(free_port()) as pg:
        url = asyncio.run(pg.create_database("mobipay"))
        upgrade(url)
        yield url, pg


def _after(load: Load, count: int, what: str) -> None:
    """Wait (on the condition, with a deadline) until ``count`` more operations are acknowledged."""
    target = load.acked + count

    def there() -> bool:
        load.check()
        return load.acked >= target

    wait_for(there, 300, f"{count} more acknowledged operations before {what}", every_s=0.05)


def test_kill_minus_nine_under_load_loses_and_doubles_nothing(database: tuple[str, OwnPostgres | None],
                                                             tmp_path: Path) -> None:
    url, pg = database
    stack = Stack(url, tmp_path)
    try:
        stack.start_simulators()
        stack.kannel.start(timeout_s=60)
        phones, merchant = asyncio.run(prepare(stack.settings(), PHONES, stack.sims["site"].url))
        stack.start("server")
        stack.start("worker")
        stack.connect_phones()
        sampler = Sampler(stack, pg, "mobipay", every_s=2.0)
        sampler.start()
        rss_start = sampler.take()
        assert stack.phones is not None
        load = Load(stack.api, phones, merchant, mix=KILL9_MIX, seed=16, texter=stack.phones.send)
        started = time.monotonic()
        load.start()
        events: list[str] = []

        def note(what: str) -> None:
            events.append(f"{what}: {load.acked} acknowledged, {time.monotonic() - started:.0f} s")
            print(events[-1], flush=True)

        _after(load, STEP, "killing the server")
        stack.kill("server")
        note("server killed")
        stack.start("server")
        note("server ready")

        _after(load, STEP, "killing the worker")
        stack.kill("worker")
        note("worker killed")
        stack.start("worker")
        note("worker started")
        crashes = 1  # of the notification sender (the worker)

        if pg is not None:
            _after(load, STEP, "restarting PostgreSQL")
            note("postgresql stopping (immediate)")
            pg.crash_restart()
            note("postgresql restarted")
            crashes += 1

        _after(load, STEP, "stopping the load")
        note("load stopping")
        load.stop()
        load_s = time.monotonic() - started
        note("load stopped")
        try:
            wait_for(lambda: not outstanding(stack, load), 240, "the worker settling everything",
                     every_s=1.0)
        except TimeoutError:
            raise AssertionError(f"not settled: {outstanding(stack, load)}\nworker log:\n"
                                 f"{stack.log_tail('worker')}") from None
        note("settled")
        rss_end = sampler.take()
        sampler.stop()

        figures = asyncio.run(audit(stack, load, phones, merchant, crashes=crashes))
        wrong = load.replay()
        if wrong:
            figures.problems.append(f"{len(wrong)} acknowledged requests sent again were not replays: {wrong[:3]}")
        again = asyncio.run(audit(stack, load, phones, merchant, crashes=crashes))  # the replays moved nothing
        figures.problems.extend(p for p in again.problems if p not in figures.problems)
        result = figures.result(
            suite="kill9", database="postgresql" if pg else "sqlite", phones=PHONES, load_s=round(load_s),
            events=events, statuses=dict(sorted(load.tally.statuses.items())),
            refreshed=load.tally.refreshed, signed_in_again=load.tally.signed_in_again,
            rss_server_mb=[round(rss_start.server_rss_kb / 1024), round(rss_end.server_rss_kb / 1024)],
            rss_worker_mb=[round(rss_start.worker_rss_kb / 1024), round(rss_end.worker_rss_kb / 1024)],
            connections_max=sampler.max_connections())
        results.record(result)
        assert not figures.problems, "\n".join(figures.problems[:20])
        # A 5xx is a bug, except 503: the database restarting (Retry-After; the clients retried).
        assert not {s: n for s, n in load.tally.statuses.items() if s >= 500 and s != 503}, load.tally.statuses
        assert figures.acknowledged >= 3 * STEP
    finally:
        stack.down()
