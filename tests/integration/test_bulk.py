"""platform/bulk.py: set-based inserts, updates and key lookups give what row-by-row
statements give, on SQLite and PostgreSQL (awkward strings, NULLs, constant columns,
timestamps, a value too long for its column)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, String, Table, select
from sqlalchemy.exc import DBAPIError

from mobipay.kernel.clock import as_utc
from mobipay.platform.bulk import array_literal, insert_many, select_by_keys, update_many
from mobipay.platform.db import Database

meta = MetaData()
scratch = Table(
    "test_bulk_scratch", meta,
    Column("id", String(40), primary_key=True),
    Column("token", String(40), nullable=False),
    Column("atc", Integer, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("note", String(64), nullable=True),
    Column("at", DateTime(timezone=True), nullable=False),
)

AWKWARD = ['plain', 'with "quotes"', "back\\slash", "comma,brace{}", "  spaced  ", "NULL", "", "中文"]
T0 = datetime(2026, 12, 3, 8, 30, 15, 123456, tzinfo=UTC)


def _rows(n: int) -> list[dict[str, object]]:
    return [{"id": f"r{i:04d}", "token": f"tok{i % 3}", "atc": i, "amount": 10 * i,
             "note": None if i % 4 == 0 else AWKWARD[i % len(AWKWARD)], "at": T0 + timedelta(seconds=i)}
            for i in range(n)]


async def _all(db: Database) -> dict[str, dict[str, object]]:
    async with db.begin() as conn:
        return {r.id: {**r._mapping, "at": as_utc(r.at)} for r in await conn.execute(select(scratch))}


@pytest.fixture
async def table(db: Database) -> Database:
    async with db.begin() as conn:
        await conn.run_sync(meta.create_all)
    return db


async def test_insert_update_select_match_row_by_row(table: Database) -> None:
    db = table
    rows = _rows(900)  # more than one SQLite chunk
    async with db.begin() as conn:
        await insert_many(conn, scratch, rows)
    assert await _all(db) == {r["id"]: r for r in rows}

    async with db.begin() as conn:
        found = await select_by_keys(conn, scratch, ("token", "atc"), [("tok1", 1), ("tok1", 2), ("tok2", 5),
                                                                        ("nope", 1)])
    assert sorted(r.id for r in found) == ["r0001", "r0005"]

    changes = [{"id": f"r{i:04d}", "amount": 1, "note": "x\"y" if i % 2 else None} for i in range(0, 900, 3)]
    async with db.begin() as conn:
        done = await update_many(conn, scratch, changes, keys=("id",), add=("amount",), where={"token": "tok0"})
    assert done == 300  # every third row is tok0
    after = await _all(db)
    for i in range(900):
        r = after[f"r{i:04d}"]
        if i % 3 == 0:
            assert (r["amount"], r["note"]) == (10 * i + 1, "x\"y" if i % 2 else None)
        else:
            assert (r["amount"], r["note"]) == (10 * i, rows[i]["note"])


async def test_constant_columns_and_where_miss(table: Database) -> None:
    db = table
    rows = [{"id": f"c{i}", "token": "same", "atc": 7, "amount": 5, "note": None, "at": T0} for i in range(3)]
    async with db.begin() as conn:
        await insert_many(conn, scratch, rows)
        assert await update_many(conn, scratch, [{"id": "c1", "note": "n"}], keys=("id",),
                                 where={"token": "other"}) == 0
    assert {k: (v["token"], v["note"], v["at"]) for k, v in (await _all(db)).items()} == {
        f"c{i}": ("same", None, T0) for i in range(3)}


async def test_a_value_too_long_fails_the_statement(table: Database) -> None:
    db = table
    rows = _rows(3)
    rows[1]["note"] = "x" * 65
    if db.dialect == "sqlite":  # SQLite does not enforce VARCHAR lengths: the rows are kept as sent
        async with db.begin() as conn:
            await insert_many(conn, scratch, rows)
        assert (await _all(db))["r0001"]["note"] == "x" * 65
        return
    with pytest.raises(DBAPIError):
        async with db.begin() as conn:
            await insert_many(conn, scratch, rows)
    assert await _all(db) == {}


def test_array_literal() -> None:
    assert array_literal([1, 2, 3]) == "{1,2,3}"
    assert array_literal(["a", "b"]) == '{"a","b"}'
    assert array_literal(['a"b', "c\\d"]) == '{"a\\"b","c\\\\d"}'
    assert array_literal([None, "x", 3]) == '{NULL,"x",3}'
    assert array_literal([]) == "{}"
