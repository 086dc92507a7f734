"""asyncpg through PgBouncer in transaction mode (deploy/templates/pgbouncer.ini.in, as
deploy/topology.py renders it), with ONE server connection for every client so that they
always meet on it: without MOBIPAY_DATABASE_PGBOUNCER two clients' named prepared
statements collide there (asyncpg numbers them per process); with it (unnamed statements, no caches: platform/db.py) the
services, the ledger's batch path and the read URL's staleness all work.

PgBouncer runs in this test's own directory in front of the test's database (a copy on the
machine's PostgreSQL, as every PostgreSQL test makes); nothing of the server is changed.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy.exc import DBAPIError

from mobipay.kernel.clock import SystemClock
from mobipay.ledger.model import AccountKind, AccountSpec, Leg, Transfer
from mobipay.ledger.service import Ledger
from mobipay.platform.db import Database
from tests.conftest import free_port
from tests.support.waiting import wait_for

PGBOUNCER = shutil.which("pgbouncer", path="/usr/sbin:/usr/bin")
pytestmark = [pytest.mark.postgres,
              pytest.mark.skipif(PGBOUNCER is None, reason="needs Debian's pgbouncer (apt-get install -y "
                                 "pgbouncer); CI installs it")]


def _topology() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "deploy" / "topology.py"
    spec = importlib.util.spec_from_file_location("mobipay_deploy_topology_render", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def bouncer(pg_url: str) -> Iterator[str]:
    """The test database behind PgBouncer (transaction mode, one server connection): its URL."""
    assert PGBOUNCER is not None
    host_port, database = pg_url.split("@", 1)[1].split("/", 1)
    port = int(host_port.split(":")[1]) if ":" in host_port else 5432
    workdir = Path(tempfile.mkdtemp(prefix="mobipay-pgbouncer-"))
    listen = free_port()
    (workdir / "pgbouncer.ini").write_text(_topology().render("pgbouncer.ini.in", {
        "pgbouncer_version": "1.18", "database": database, "host": "127.0.0.1", "pg_write_port": port,
        "pg_read_port": port, "pgbouncer_port": listen, "dir": workdir, "auth_type": "trust", "pool_size": 1})
        .replace("reserve_pool_size = 2", "reserve_pool_size = 0"))
    (workdir / "userlist.txt").write_text('"postgres" ""\n')
    user = "postgres" if os.geteuid() == 0 else None
    if user is not None:
        entry = pwd.getpwnam(user)
        for path in (workdir, *workdir.iterdir()):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    with open(workdir / "pgbouncer.log", "ab") as log:
        proc = subprocess.Popen([PGBOUNCER, str(workdir / "pgbouncer.ini")], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, user=user, group=user, start_new_session=True)
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{listen}/{database}"
    try:
        async def answers() -> bool:
            db = Database(url, pool_size=1, pgbouncer=True)
            try:
                await db.ping()
                return True
            except (DBAPIError, OSError):
                return False
            finally:
                await db.dispose()

        wait_for(lambda: proc.poll() is None and asyncio.run(answers()), 30, "PgBouncer answering", every_s=0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


CLIENT = """
import asyncio, sys
from sqlalchemy import text
from mobipay.platform.db import Database

async def main(url, pgbouncer):
    db = Database(url, pool_size=1, pgbouncer=pgbouncer)
    try:
        for i in range(3):
            async with db.begin() as conn:
                assert (await conn.execute(text("SELECT :n + 1"), {"n": i})).scalar_one() == i + 1
                await conn.execute(text("SELECT count(*) FROM ledger_accounts WHERE code <> :c"), {"c": "x"})
    finally:
        await db.dispose()

asyncio.run(main(sys.argv[1], sys.argv[2] == "true"))
"""


def _client(url: str, *, pgbouncer: bool) -> subprocess.CompletedProcess[str]:
    """One process's pool (asyncpg numbers its statements per process, from 1), on
    PgBouncer's one server connection, which the previous process's statements stay on."""
    return subprocess.run([sys.executable, "-c", CLIENT, url, "true" if pgbouncer else "false"],
                          capture_output=True, text=True, check=False, timeout=60)


def test_named_prepared_statements_collide_without_the_setting(bouncer: str) -> None:
    first = _client(bouncer, pgbouncer=False)
    assert first.returncode == 0, first.stderr
    second = _client(bouncer, pgbouncer=False)  # the next process (an API node restarted, another node)
    assert second.returncode != 0 and "prepared statement" in second.stderr and "already exists" in second.stderr


def test_with_the_setting_services_and_the_batch_path_work(bouncer: str) -> None:
    for _ in range(2):
        done = _client(bouncer, pgbouncer=True)
        assert done.returncode == 0, done.stderr

    async def ledger_work() -> None:
        dbs = [Database(bouncer, pool_size=2, pgbouncer=True) for _ in range(2)]
        ledgers = [Ledger(db, SystemClock()) for db in dbs]
        try:
            await ledgers[0].open_accounts([AccountSpec("pgb:bank", AccountKind.ASSET),
                                            *(AccountSpec(f"pgb:{i}", AccountKind.LIABILITY) for i in range(4))])
            for round_ in range(3):  # the batch path (one statement, autocommit, raw asyncpg) from both
                results = await asyncio.gather(*(ledgers[k].post_batch([
                    Transfer(f"pgb:{k}:{round_}:{i}", (Leg.debit("pgb:bank", 100), Leg.credit(f"pgb:{i}", 100)),
                             "test") for i in range(4)]) for k in range(2)))
                assert all(r.ok for batch in results for r in batch)
            found = await ledgers[1].accounts([f"pgb:{i}" for i in range(4)])
            assert {code: a.balance for code, a in found.items()} == {f"pgb:{i}": 600 for i in range(4)}
            assert (await ledgers[1].verify()).ok
            assert await dbs[0].staleness() is None  # a primary: nothing to show
        finally:
            for ledger in ledgers:
                await ledger.stop()
            for db in dbs:
                await db.dispose()

    asyncio.run(ledger_work())
