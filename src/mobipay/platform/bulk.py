"""Set-based writes and reads of many rows in the caller's transaction, for batch paths (an
upload of offline NFC taps: thousands of rows a chunk).

On PostgreSQL each call is ONE statement: the rows travel as one text value per column in
PostgreSQL's array-literal syntax (``'{"a","b"}'``, parsed by the server, as the ledger's
batches do: decision 0002), joined with ``unnest``; a column with the same value in every
row travels once, as a scalar. That is one parse and one execution for the batch instead of
one execution per row (``executemany``), and no per-row binary encoding in Python. On SQLite
(tests, single-user demos) the same calls fall back to SQLAlchemy Core ``executemany`` and
``IN`` lists, which SQLite runs in-process.

Strings are assigned through ``text`` (never cast to ``varchar(n)``, which would truncate
silently): a value too long for its column fails the statement as it would row by row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import String, Table, and_, bindparam, insert, select, tuple_, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

_PG = postgresql.dialect()  # type: ignore[no-untyped-call]
_TYPES: dict[tuple[str, str], str] = {}
SQLITE_CHUNK = 400  # rows (or keys) per SQLite statement: under its bound-variable limit


def _pg_type(table: Table, column: str) -> str:
    """The PostgreSQL type a column's values are cast to (``text`` for every string type)."""
    key = (table.name, column)
    found = _TYPES.get(key)
    if found is None:
        col_type = table.c[column].type
        found = _TYPES[key] = "text" if isinstance(col_type, String) else col_type.compile(dialect=_PG)
    return found


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _element(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime | date):
        return '"' + value.isoformat() + '"'
    return _quote(str(value))


def array_literal(values: Sequence[Any]) -> str:
    """A PostgreSQL array literal of ``values`` (str, int, bool, datetime, date or None), built
    with C-level joins for the common homogeneous columns."""
    if not values:
        return "{}"
    first = values[0]
    if type(first) is int and all(type(v) is int for v in values):
        return "{" + ",".join(map(str, values)) + "}"
    if type(first) is str and all(type(v) is str for v in values):
        raw = "".join(values)
        if '"' in raw or "\\" in raw:
            return "{" + ",".join(map(_quote, values)) + "}"
        return '{"' + '","'.join(values) + '"}'
    if isinstance(first, datetime) and all(isinstance(v, datetime) for v in values):
        return '{"' + '","'.join(v.isoformat() for v in values) + '"}'
    return "{" + ",".join(map(_element, values)) + "}"


def _scalar(value: Any) -> str | None:
    """One value as the text the server casts back (a column the same in every row)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def _constant(values: list[Any]) -> bool:
    first = values[0]
    if values[-1] != first or values[len(values) // 2] != first:  # most varying columns, at once
        return False
    return all(v == first and type(v) is type(first) for v in values)


class _PgRows:
    """The rows as ``unnest`` arguments: varying columns as arrays, constant ones as scalars."""

    def __init__(self, table: Table, columns: Sequence[str], rows: Sequence[Mapping[str, Any]],
                 *, always_array: Sequence[str] = (), conditions: Mapping[str, Any] | None = None) -> None:
        self.args: list[Any] = []
        self.arrays: list[str] = []  # unnest(...) arguments
        self.names: list[str] = []  # their column aliases
        self.expr: dict[str, str] = {}  # column -> SQL expression of its value
        for column in columns:
            values = [r[column] for r in rows]
            pg_type = _pg_type(table, column)
            if column not in always_array and _constant(values):
                self.args.append(_scalar(values[0]))
                self.expr[column] = f"CAST(CAST(${len(self.args)} AS text) AS {pg_type})"
                continue
            self.args.append(array_literal(values))
            alias = f"v_{len(self.names)}"
            self.arrays.append(f"CAST(CAST(${len(self.args)} AS text) AS {pg_type}[])")
            self.names.append(alias)
            self.expr[column] = f"x.{alias}"
        self.conditions: list[str] = []  # t."column" = x.alias, for each of ``conditions``
        for column, value in (conditions or {}).items():
            self.args.append(array_literal([value] * len(rows)))
            alias = f"v_{len(self.names)}"
            self.arrays.append(f"CAST(CAST(${len(self.args)} AS text) AS {_pg_type(table, column)}[])")
            self.names.append(alias)
            self.conditions.append(f't."{column}" = x.{alias}')

    def source(self) -> str:
        """``FROM`` the unnested arrays (one row when every column is constant)."""
        if not self.arrays:
            return "(SELECT 1) AS x"
        return f"unnest({', '.join(self.arrays)}) AS x({', '.join(self.names)})"


async def insert_many(conn: AsyncConnection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys) in the caller's transaction."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        for i in range(0, len(rows), SQLITE_CHUNK):
            await conn.execute(insert(table), [dict(r) for r in rows[i:i + SQLITE_CHUNK]])
        return
    columns = list(rows[0])
    if len(rows) == 1:
        await conn.execute(insert(table).values(**rows[0]))
        return
    pg = _PgRows(table, columns, rows)
    values = ", ".join(pg.expr[c] for c in columns)
    quoted = ", ".join(f'"{c}"' for c in columns)
    sql = f'INSERT INTO "{table.name}" ({quoted}) SELECT {values} FROM {pg.source()}'
    if not pg.arrays:  # every row the same: a repeated row (a primary key would refuse it)
        sql += f" CROSS JOIN generate_series(1, {len(rows)})"
    await conn.exec_driver_sql(sql, tuple(pg.args))


async def insert_new(conn: AsyncConnection, table: Table, rows: Sequence[Mapping[str, Any]], key: str) -> set[Any]:
    """PostgreSQL only: insert the ``rows`` whose ``key`` (the primary key) is not stored yet,
    in ONE statement (``ON CONFLICT DO NOTHING RETURNING``): the duplicate check and the insert
    together. Answers the keys inserted; the others were there already."""
    if not rows:
        return set()
    columns = list(rows[0])
    pg = _PgRows(table, columns, rows, always_array=(key,))
    values = ", ".join(pg.expr[c] for c in columns)
    quoted = ", ".join(f'"{c}"' for c in columns)
    sql = (f'INSERT INTO "{table.name}" ({quoted}) SELECT {values} FROM {pg.source()} '
           f'ON CONFLICT DO NOTHING RETURNING "{key}"')
    return {r[0] for r in await conn.exec_driver_sql(sql, tuple(pg.args))}


async def update_many(conn: AsyncConnection, table: Table, rows: Sequence[Mapping[str, Any]], *,
                      keys: Sequence[str], add: Sequence[str] = (), where: Mapping[str, Any] | None = None) -> int:
    """Update one row per entry of ``rows`` (dicts with the same keys): the row whose ``keys``
    columns equal the entry's is set to its other values; a column in ``add`` is increased by
    the value instead. ``where``: further conditions (column = value) every updated row meets.
    Answers the rows updated."""
    if not rows:
        return 0
    columns = list(rows[0])
    sets = [c for c in columns if c not in keys]
    where = dict(where or {})
    if conn.dialect.name != "postgresql":
        stmt = update(table).where(and_(*(table.c[k] == bindparam(f"k_{k}") for k in keys),
                                        *(table.c[c] == v for c, v in where.items())))
        stmt = stmt.values({c: (table.c[c] + bindparam(f"s_{c}")) if c in add else bindparam(f"s_{c}")
                            for c in sets})
        done = 0
        for i in range(0, len(rows), SQLITE_CHUNK):
            part = [{**{f"k_{k}": r[k] for k in keys}, **{f"s_{c}": r[c] for c in sets}}
                    for r in rows[i:i + SQLITE_CHUNK]]
            result = await conn.execute(stmt, part)
            done += max(result.rowcount, 0)
        return done
    # The ``where`` values travel as arrays too (one per row, all equal), so they are join
    # conditions: a constant one (``state = 'received'``) let the planner scan an index on
    # that column and hash-join the whole table (450 ms a 10,000-row chunk of NFC taps)
    # where probing the key's index costs 40 ms.
    pg = _PgRows(table, columns, rows, always_array=keys, conditions=where)
    assignments = ", ".join(f'"{c}" = t."{c}" + {pg.expr[c]}' if c in add else f'"{c}" = {pg.expr[c]}'
                            for c in sets)
    conditions = [f't."{k}" = {pg.expr[k]}' for k in keys] + pg.conditions
    sql = (f'UPDATE "{table.name}" AS t SET {assignments} FROM {pg.source()} '
           f"WHERE {' AND '.join(conditions)}")
    result = await conn.exec_driver_sql(sql, tuple(pg.args))
    return max(result.rowcount, 0)


async def select_by_keys(conn: AsyncConnection, table: Table, columns: Sequence[str],
                         keys: Sequence[Sequence[Any]]) -> list[Any]:
    """The rows of ``table`` whose ``columns`` equal one of ``keys`` (tuples in column order):
    on PostgreSQL one join of the unnested keys with the table (an index probe per key,
    where a long ``(a, b) IN (...)`` list is planned as thousands of bitmap scans)."""
    if not keys:
        return []
    if conn.dialect.name != "postgresql":
        found: list[Any] = []
        cols = [table.c[c] for c in columns]
        for i in range(0, len(keys), SQLITE_CHUNK):
            part = [tuple(k) for k in keys[i:i + SQLITE_CHUNK]]
            query = (select(table).where(tuple_(*cols).in_(part)) if len(cols) > 1
                     else select(table).where(cols[0].in_([k[0] for k in part])))
            found += list(await conn.execute(query))
        return found
    rows = [dict(zip(columns, k, strict=True)) for k in keys]
    pg = _PgRows(table, columns, rows, always_array=columns)
    join = " AND ".join(f't."{c}" = {pg.expr[c]}' for c in columns)
    sql = f'SELECT t.* FROM {pg.source()} JOIN "{table.name}" AS t ON {join}'
    return list(await conn.exec_driver_sql(sql, tuple(pg.args)))
