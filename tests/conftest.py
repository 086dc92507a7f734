"""Shared fixtures: a migrated database per test, on SQLite and (when configured) PostgreSQL.

PostgreSQL tests run when MOBIPAY_TEST_POSTGRES names a server, e.g.
``postgresql+asyncpg://postgres@127.0.0.1/test``; CI sets it and also sets
MOBIPAY_REQUIRE_POSTGRES=1, which turns "not configured" into a failure instead of a skip.
Each test gets its own database cloned from a migrated template (fast, and isolated).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from mobipay.app.migrate import upgrade
from mobipay.kernel.clock import ManualClock
from mobipay.ledger.service import Ledger
from mobipay.platform.db import Database

# Audited commands take their actor from the login name and refuse without one (a CI shell
# may have no $USER): the tests run them as a named login.
os.environ.setdefault("USER", "mobipay-tests")

PG_URL = os.environ.get("MOBIPAY_TEST_POSTGRES", "")
REQUIRE_PG = os.environ.get("MOBIPAY_REQUIRE_POSTGRES", "") == "1"
TEMPLATE = f"mobipay_tmpl_{os.getpid()}"
NO_PG = ("PostgreSQL is not configured: run them with "
         "MOBIPAY_TEST_POSTGRES=postgresql+asyncpg://postgres@127.0.0.1/test make test "
         "(a server where the user may create databases; each test clones its own)")
#: The reliability suites (kill -9, soak: minutes each, their own PostgreSQL, Kannel and
#: simulators) run only when asked: CI sets MOBIPAY_RELIABILITY=1; a laptop's `make test`
#: skips them and says so.
RELIABILITY = os.environ.get("MOBIPAY_RELIABILITY", "") == "1"
RELIABILITY_MARKERS = ("kill9", "soak", "failover")
RELIABILITY_SKIP = ("reliability suite (kill -9, soak, failover: minutes each): set MOBIPAY_RELIABILITY=1 to run it "
                    "(CI does; docs/reliability.md)")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--soak-seconds", type=float, default=float(os.environ.get("MOBIPAY_SOAK_SECONDS", "1800")),
                     help="how long the soak suite loads the platform (default 1800, or MOBIPAY_SOAK_SECONDS; "
                     "CI runs 180)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the reliability suites unless enabled; start the long suites first (reliability,
    then the other slow ones such as the hostile-input fuzzer), so that the other tests fill
    the remaining worker around them instead of one long suite finishing alone at the end."""
    chosen = [item for item in items if any(m in item.keywords for m in RELIABILITY_MARKERS)]
    if not RELIABILITY:
        for item in chosen:
            item.add_marker(pytest.mark.skip(reason=RELIABILITY_SKIP))
        chosen = []
    slow = [item for item in items if "slow" in item.keywords and item not in chosen]
    first = chosen + slow
    items[:] = first + [item for item in items if item not in first]


def _dsn(url: str, database: str | None = None) -> str:
    dsn = url.replace("postgresql+asyncpg://", "postgresql://").replace("postgresql+psycopg://", "postgresql://")
    if database is not None:
        dsn = dsn.rsplit("/", 1)[0] + f"/{database}"
    return dsn


def _sqlalchemy_url(database: str) -> str:
    base = PG_URL if "+" in PG_URL.split("://", 1)[0] else PG_URL.replace("postgresql://", "postgresql+asyncpg://")
    return base.rsplit("/", 1)[0] + f"/{database}"


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(_dsn(PG_URL))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


_SKIPPED: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        _SKIPPED.append(report.nodeid)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Carry the RESULT lines a test recorded (tests/support/results.py) on its report."""
    outcome = yield
    if call.when == "call":
        from tests.support import results

        report = outcome.get_result()
        report.user_properties.extend(("RESULT", line) for line in results.pending)
        results.pending.clear()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """List the suites' RESULT figures; say why tests were skipped and how to run them: a
    skip is otherwise a silent "s" (a third of the suite without PostgreSQL)."""
    figures = [(r.nodeid, value) for kind in ("passed", "failed") for r in terminalreporter.stats.get(kind, [])
               for name, value in getattr(r, "user_properties", []) if name == "RESULT"]
    if figures:
        terminalreporter.section("figures of the long suites")
        for nodeid, line in figures:
            terminalreporter.write_line(f"{nodeid}\n  {line}")
    reasons: dict[str, int] = {}
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = getattr(report, "longrepr", None)
        reason = str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else "skipped"
        reason = reason.removeprefix("Skipped: ")
        reasons[reason] = reasons.get(reason, 0) + 1
    if not reasons:
        return
    terminalreporter.section("skipped tests, and how to run them")
    for reason, count in sorted(reasons.items(), key=lambda item: -item[1]):
        terminalreporter.write_line(f"{count:>4} skipped: {reason}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With MOBIPAY_REQUIRE_POSTGRES=1 (CI), a skipped test is a failed run."""
    if REQUIRE_PG and _SKIPPED and not hasattr(session.config, "workerinput"):
        print(f"\nMOBIPAY_REQUIRE_POSTGRES=1 but {len(_SKIPPED)} tests were skipped, e.g. {_SKIPPED[0]}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated template database for this test session (PostgreSQL)."""
    if not PG_URL:
        if REQUIRE_PG:
            pytest.fail("MOBIPAY_REQUIRE_POSTGRES=1 but MOBIPAY_TEST_POSTGRES is not set")
        pytest.skip(NO_PG)
    asyncio.run(_admin(f"DROP DATABASE IF EXISTS {TEMPLATE}"))
    asyncio.run(_admin(f"CREATE DATABASE {TEMPLATE}"))
    upgrade(_sqlalchemy_url(TEMPLATE))
    yield TEMPLATE
    asyncio.run(_admin(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)"))


def fresh_pg_url(template: str) -> str:
    name = f"mobipay_t_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f"CREATE DATABASE {name} TEMPLATE {template}"))
    return _sqlalchemy_url(name)


def drop_pg(url: str) -> None:
    asyncio.run(_admin(f"DROP DATABASE IF EXISTS {url.rsplit('/', 1)[1]} WITH (FORCE)"))


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    url = fresh_pg_url(pg_template)
    yield url
    drop_pg(url)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    target = tmp_path / "mobipay.db"
    target.write_bytes(sqlite_template.read_bytes())
    return f"sqlite+aiosqlite:///{target}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Run the test on both databases."""
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = Database(db_url, pool_size=5)
    yield database
    await database.dispose()


@pytest.fixture
async def ledger(db: Database, clock: ManualClock) -> AsyncIterator[Ledger]:
    service = Ledger(db, clock)
    yield service
    await service.stop()


BANK_SECRET = "test-bank-secret"
TELCO_SECRET = "test-telco-secret"
BILLER_SECRET = "test-biller-secret"
PROVIDER_SECRET = "test-provider-secret"
LOTTERY_SECRET = "test-lottery-secret"


def free_port() -> int:
    """A TCP port free on loopback now (for servers the tests start)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _simulator(module: str, *args: str) -> tuple[str, Any]:
    """Start a SIMULATOR as a real HTTP server in its own process; (url, process)."""
    import subprocess
    import sys
    import time

    import httpx

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", f"mobipay.simulators.{module}", "--port", str(port), *args])
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{url}/sim/orders", timeout=1)
            return url, proc
        except httpx.HTTPError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail(f"the {module} simulator did not start")
            time.sleep(0.1)


def _reset(url: str) -> str:
    import httpx

    httpx.post(f"{url}/sim/reset").raise_for_status()
    return url


@contextlib.contextmanager
def _running(**simulators: tuple[str, ...]) -> Iterator[dict[str, str]]:
    """Start SIMULATORS (name -> module and arguments) for a session; stop them after."""
    started = {name: _simulator(module, *args) for name, (module, *args) in simulators.items()}
    try:
        yield {name: url for name, (url, _) in started.items()}
    finally:
        for _, proc in started.values():
            proc.terminate()
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def bank_sim() -> Iterator[str]:
    """The bank SIMULATOR for this test session; tests set its behaviour with PUT /sim/behaviour."""
    with _running(bank=("bank", "--secret", BANK_SECRET)) as urls:
        yield urls["bank"]


@pytest.fixture
def bank(bank_sim: str) -> str:
    """The bank simulator, as a fresh bank: no accounts, no orders, behaving well."""
    return _reset(bank_sim)


@pytest.fixture(scope="session")
def telco_sims() -> Iterator[dict[str, str]]:
    """The operator billing system and the top-up aggregator SIMULATORS for this session."""
    with _running(operator_billing=("telco", "--role", "billing", "--secret", TELCO_SECRET),
                  topup_aggregator=("telco", "--role", "aggregator", "--secret", TELCO_SECRET)) as urls:
        yield urls


@pytest.fixture
def telcos(telco_sims: dict[str, str]) -> dict[str, str]:
    """Both telco simulators, fresh."""
    return {route: _reset(url) for route, url in telco_sims.items()}


@pytest.fixture(scope="session")
def billers_sim() -> Iterator[str]:
    """The billers SIMULATOR for this test session."""
    with _running(billers=("billers", "--secret", BILLER_SECRET)) as urls:
        yield urls["billers"]


@pytest.fixture
def billers_url(billers_sim: str) -> str:
    """The billers simulator, fresh: no payments, every biller behaving well."""
    return _reset(billers_sim)


@pytest.fixture(scope="session")
def provider_sims() -> Iterator[dict[str, str]]:
    """The operator product platform and insurer SIMULATORS for this session."""
    with _running(operator_products=("providers", "--role", "products", "--secret", PROVIDER_SECRET),
                  insurer=("providers", "--role", "insurer", "--secret", PROVIDER_SECRET)) as urls:
        yield urls


@pytest.fixture
def providers(provider_sims: dict[str, str]) -> dict[str, str]:
    return {name: _reset(url) for name, url in provider_sims.items()}


@pytest.fixture(scope="session")
def lottery_sim() -> Iterator[str]:
    with _running(lottery=("lottery_centre", "--secret", LOTTERY_SECRET)) as urls:
        yield urls["lottery"]


@pytest.fixture
def lottery_url(lottery_sim: str) -> str:
    return _reset(lottery_sim)


@pytest.fixture(scope="session")
def merchant_site_sim() -> Iterator[str]:
    with _running(site=("merchant_site",)) as urls:
        yield urls["site"]


@pytest.fixture
def merchant_site(merchant_site_sim: str) -> str:
    return _reset(merchant_site_sim)
