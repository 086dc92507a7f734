"""MOBIPAY_DATABASE_READ_URL on both databases: without it the console's dashboard (KPI)
reads the writer; with it the dashboard reads that database and everything else (sign-in,
sessions, money) stays on the writer; the page says how far behind a replica is.

Here the "replica" is a second, empty database of the same schema, so what the page shows
tells which database it read. A real streaming replica behind PgBouncer (its staleness
from pg_last_xact_replay_timestamp) is exercised by tests/e2e/test_failover.py.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from mobipay.app.http import create_app
from mobipay.platform.config import Settings
from mobipay.platform.db import Database
from mobipay.wallet.tables import users
from tests.conftest import drop_pg, fresh_pg_url
from tests.e2e.test_console import operator, run, sign_in, wallets


@pytest.fixture
def read_url(db_url: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A second database of the same kind and schema as ``db_url``, empty."""
    if db_url.startswith("sqlite"):
        target = tmp_path / "replica.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
        yield f"sqlite+aiosqlite:///{target}"
        return
    url = fresh_pg_url(request.getfixturevalue("pg_template"))
    yield url
    drop_pg(url)


def _client(db_url: str, tmp_path: Path, read: str = "") -> TestClient:
    settings = Settings(_env_file=None, database_url=db_url, database_read_url=read,  # type: ignore[call-arg]
                        merchant_key_file=tmp_path / "platform.pem", report_dir=tmp_path / "reports")
    return TestClient(create_app(settings))


async def _registered(url: str) -> int:
    db = Database(url, pool_size=1)
    try:
        async with db.begin() as conn:
            return int((await conn.execute(select(func.count()).select_from(users))).scalar_one())
    finally:
        await db.dispose()


def test_without_a_read_url_the_dashboard_reads_the_writer(db_url: str, tmp_path: Path) -> None:
    with _client(db_url, tmp_path) as client:
        c = client.app.state.container  # type: ignore[attr-defined]
        assert c.read_db is c.db and c.reads is c.uow
        wallets(client)
        operator(client, "olga", "operations")
        assert sign_in(client, "olga").status_code == 303
        page = client.get("/console")
        assert page.status_code == 200
        assert 'data-testid="registered">2<' in page.text
        assert 'data-testid="staleness"' not in page.text  # the writer: current, nothing to say


def test_with_a_read_url_the_dashboard_reads_it_and_the_rest_the_writer(db_url: str, read_url: str,
                                                                         tmp_path: Path) -> None:
    with _client(db_url, tmp_path, read_url) as client:
        c = client.app.state.container  # type: ignore[attr-defined]
        assert c.read_db is not c.db and c.read_db.url == read_url
        wallets(client)  # two subscribers, funded: on the writer
        operator(client, "olga", "operations")  # the operator and her session: on the writer
        assert sign_in(client, "olga").status_code == 303
        page = client.get("/console")
        assert page.status_code == 200
        assert 'data-testid="registered">0<' in page.text  # the read database has none of them
        assert client.get("/console/api/dashboard").json()["totals"]["count"] == 0
        assert run(client, lambda c: c.read_db.staleness()) is None  # not a replica (SQLite, a primary)
        assert 'data-testid="staleness"' not in page.text

        async def behind() -> float:
            return 2.5

        c.read_db.staleness = behind  # as a replica 2.5 s behind answers (the query: test_failover.py)
        page = client.get("/console")
        assert 'data-testid="staleness" data-seconds="2.5"' in page.text
    assert asyncio.run(_registered(db_url)) == 2 and asyncio.run(_registered(read_url)) == 0


def test_the_read_url_takes_the_forms_other_tools_use() -> None:
    s = Settings(_env_file=None, database_read_url="postgresql://reader@replica/mobipay")  # type: ignore[call-arg]
    assert s.database_read_url == "postgresql+asyncpg://reader@replica/mobipay"
    assert Settings(_env_file=None).database_read_url == ""  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="not a database URL"):
        Settings(_env_file=None, database_read_url="mysql://x@y/z")  # type: ignore[call-arg]
