"""Database access: one async engine, transactions, and retry of transient conflicts.

PostgreSQL (asyncpg) is the production database; SQLite (aiosqlite) is the embedded
default. Both run the same migrations. SQLite transactions start with ``BEGIN IMMEDIATE``
so a writer takes the write lock up front instead of failing half-way; the journal is WAL
with ``synchronous=FULL`` so a committed transaction survives a crash.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import structlog
from sqlalchemy import MetaData, Table, event, text
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

log = structlog.get_logger(__name__)
T = TypeVar("T")

#: SQLSTATEs that mean "run the whole transaction again": serialization failure,
#: deadlock, unique violation (a concurrent writer inserted the same key first).
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01", "23505"})


def dialect_insert(dialect: str, table: Table) -> PgInsert | SqliteInsert:
    """An INSERT into ``table`` that can skip a row already there (``on_conflict_do_nothing``):
    PostgreSQL and SQLite write it alike, but each dialect has its own construct."""
    return pg_insert(table) if dialect == "postgresql" else sqlite_insert(table)


def causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps (a driver's error under SQLAlchemy's, a cause under a
    wrapper), outermost first, each once."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = getattr(current, "orig", None) or current.__cause__


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE behind a (wrapped) database error, if any."""
    for current in causes(exc):
        for attr in ("sqlstate", "pgcode"):
            code = getattr(current, attr, None)
            if isinstance(code, str):
                return code
    return None


#: SQLSTATEs of a server going away or not there yet: administrator shutdown, crash
#: shutdown, "cannot connect now" (starting up, shutting down); and the class 08
#: (connection exceptions: the connection does not exist, was refused or broke).
UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})


def is_unavailable(exc: BaseException) -> bool:
    """True when the database did not answer (down, restarting, the connection cut): not a
    bug, and the request may be sent again as it was (with its idempotency key)."""
    for current in causes(exc):
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        # A socket refused, reset or timed out, a name not resolved, or asyncio's plain OSError
        # for every address refused; not a file missing or unreadable, which is a bug or set-up.
        if isinstance(current, ConnectionError | TimeoutError | socket.gaierror) or type(current) is OSError:
            return True
        code = getattr(current, "sqlstate", None)
        if isinstance(code, str) and (code.startswith("08") or code in UNAVAILABLE_SQLSTATES):
            return True
    return False


def safe_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}@{host}"
    return url


_NOT_UPGRADED = ("it has no mobipay tables or an older schema: run `mobipay db upgrade` (or `mobipay demo`, "
                 "which upgrades first)")

#: What an operator does about a database that cannot be used, by SQLSTATE.
_SET_UP_SQLSTATES = {
    "3D000": "the database does not exist: create it (createdb -h HOST -U USER NAME) or fix MOBIPAY_DATABASE_URL",
    "28P01": "the password was refused: fix the user or password in MOBIPAY_DATABASE_URL",
    "28000": "the server refused this user: fix MOBIPAY_DATABASE_URL or the server's pg_hba.conf",
    "42501": "the user may not do this: grant it the rights or use the database's owner",
    "42P01": _NOT_UPGRADED,
    "42703": _NOT_UPGRADED,
}


def connection_problem(exc: BaseException, url: str) -> str | None:
    """One sentence saying why the database at ``url`` cannot be used and what to do, or
    None when ``exc`` is not about reaching the database (a bug, shown as such)."""
    where = safe_url(url)
    code = sqlstate(exc)
    if code in _SET_UP_SQLSTATES:
        return f"the database at {where} cannot be used: {_SET_UP_SQLSTATES[code]}"
    for current in causes(exc):
        if isinstance(current, socket.gaierror):
            return f"the database host in {where} is not known: fix the host in MOBIPAY_DATABASE_URL"
        if url.startswith("sqlite") and ("no such table" in str(current) or "no such column" in str(current)):
            return f"the database at {where} cannot be used: {_NOT_UPGRADED}"
        if "unable to open database file" in str(current) or (url.startswith("sqlite") and isinstance(
                current, PermissionError | FileNotFoundError | NotADirectoryError | IsADirectoryError)):
            return (f"the SQLite file of {where} cannot be opened: check that its folder exists and is writable, "
                    "or set MOBIPAY_DATABASE_URL")
    if is_unavailable(exc):
        return (f"the database at {where} did not answer ({_first_line(exc)}): start it (PostgreSQL on that host "
                "and port) or fix MOBIPAY_DATABASE_URL")
    return None


def _first_line(exc: BaseException) -> str:
    """The first line of the innermost error (the driver's or the socket's own words)."""
    *_, root = causes(exc)
    return (str(root).strip().splitlines() or [type(root).__name__])[0][:120]


def is_retryable(exc: BaseException) -> bool:
    """True for conflicts that a fresh attempt of the same transaction can resolve."""
    if sqlstate(exc) in RETRYABLE_SQLSTATES:
        return True
    text = str(exc).lower()
    return "database is locked" in text or "unique constraint failed" in text


#: asyncpg behind PgBouncer in transaction mode (Debian 12's 1.18 cannot track prepared
#: statements; 1.21+ can, with max_prepared_statements). A server connection is ours for
#: one transaction only, so a named prepared statement made in one transaction may be
#: missing, or another client's, in the next. SQLAlchemy always runs statements inside a
#: transaction it began; with both statement caches off and the empty name, every statement
#: is prepared unnamed in the transaction that runs it, and nothing is left on the server.
PGBOUNCER_CONNECT_ARGS: dict[str, Any] = {"statement_cache_size": 0, "prepared_statement_cache_size": 0,
                                          "prepared_statement_name_func": lambda: ""}


class Database:
    """The engine and how to open a transaction on it; built once by the bootstrap."""

    def __init__(self, url: str, *, pool_size: int = 20, echo: bool = False, pgbouncer: bool = False) -> None:
        self.url = url
        self.dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
        kwargs: dict[str, Any] = {"echo": echo}
        if self.dialect == "sqlite":
            path = url.split("///", 1)[1] if "///" in url else ""
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=False)
            if pgbouncer:
                kwargs["connect_args"] = PGBOUNCER_CONNECT_ARGS
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.dialect == "sqlite":
            _sqlite_setup(self.engine)

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """One transaction: commits when the block ends, rolls back on an exception."""
        async with self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction that sees one consistent snapshot for all its queries
        (PostgreSQL REPEATABLE READ; a SQLite transaction already does). For checks that
        compare tables, such as the ledger's verify, while writers may commit."""
        async with self.engine.begin() as conn:
            if self.dialect == "postgresql":
                await conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
            yield conn

    async def run(
        self,
        work: Callable[[AsyncConnection], Awaitable[T]],
        *,
        attempts: int = 20,
    ) -> T:
        """Run ``work`` in a transaction, again from the start after a transient conflict.

        ``work`` must be safe to repeat: it only reads and writes through the connection
        it is given, so a rolled-back attempt leaves no trace.
        """
        for attempt in range(1, attempts + 1):
            try:
                async with self.begin() as conn:
                    return await work(conn)
            except DBAPIError as exc:
                if attempt == attempts or not is_retryable(exc):
                    raise
                log.debug("db.retry", attempt=attempt, sqlstate=sqlstate(exc))
                await asyncio.sleep(random.uniform(0, 0.002 * attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    async def ping(self) -> None:
        """Raise if the database does not answer; used by /readyz."""
        async with self.engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")

    async def staleness(self) -> float | None:
        """How far behind its primary this database is, in seconds, when it is a streaming
        replica (a read URL): 0 when it has replayed all it received, else the age of the
        last transaction it replayed. None when it is not a replica (the writer, SQLite):
        what it shows is current."""
        if self.dialect != "postgresql":
            return None
        async with self.engine.connect() as conn:
            row: Any = (await conn.exec_driver_sql(
                "SELECT pg_is_in_recovery(), CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() "
                "THEN 0 ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) END")).one()
        return max(0.0, float(row[1])) if row[0] else None

    async def dispose(self) -> None:
        await self.engine.dispose()


def _sqlite_setup(engine: AsyncEngine) -> None:
    """Take control of SQLite transactions so they start with BEGIN IMMEDIATE."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


#: One MetaData for every context's tables, so Alembic sees the whole schema.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class Params:
    """Named ``$n`` parameters for asyncpg SQL assembled in pieces across modules (a
    context's part of another's statement): ``p = Params(first, "ids", "amounts")``, then
    ``p["ids"]`` in the SQL text and ``p.values(ids=…, amounts=…)`` for the arguments, in
    the right order with none missing; ``p.next`` is the first number after them. No
    parameter number is counted by hand."""

    def __init__(self, first: int, *names: str) -> None:
        self.numbers = {name: first + i for i, name in enumerate(names)}
        self.next = first + len(names)

    def __getitem__(self, name: str) -> str:
        return f"${self.numbers[name]}"

    def values(self, **given: object) -> list[object]:
        if set(given) != set(self.numbers):
            missing, extra = set(self.numbers) - set(given), set(given) - set(self.numbers)
            raise TypeError(f"parameters missing {sorted(missing)}, unknown {sorted(extra)}")
        return [given[name] for name in self.numbers]
