"""Migrations run forwards and backwards on both databases."""

from __future__ import annotations

import asyncio

from sqlalchemy import inspect

from mobipay.app.migrate import downgrade, upgrade
from mobipay.platform.db import Database

TABLES = {"ledger_accounts", "ledger_transfers", "ledger_postings", "ledger_open_holds", "outbox_messages",
          "outbox_consumed"}


async def _tables(url: str) -> set[str]:
    db = Database(url)
    async with db.engine.connect() as conn:
        names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    await db.dispose()
    return names - {"alembic_version"}


def test_upgrade_downgrade_upgrade(db_url: str) -> None:
    assert asyncio.run(_tables(db_url)) >= TABLES  # the fixture's database is migrated
    downgrade(db_url, "base")
    assert asyncio.run(_tables(db_url)) == set()
    upgrade(db_url)
    assert asyncio.run(_tables(db_url)) >= TABLES
    upgrade(db_url)  # at head already: nothing to do, no error


def test_one_head_and_numbers_in_order() -> None:
    """Two branches that each add the next number leave two heads: `db upgrade` then fails."""
    from alembic.script import ScriptDirectory

    from mobipay.app.migrate import alembic_config

    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(scripts.get_heads()) == 1, scripts.get_heads()
    chain = [s.revision for s in scripts.walk_revisions()][::-1]
    assert chain == [f"{n:04d}" for n in range(1, len(chain) + 1)]
