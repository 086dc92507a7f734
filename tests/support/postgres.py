"""A PostgreSQL server of the test's own, to crash and restart at will.

The shared server at 127.0.0.1:5432 runs other people's tests, so a suite that restarts
PostgreSQL mid-load makes its own: ``initdb`` in a temporary directory, ``pg_ctl`` on a
free loopback port, stopped and removed afterwards. As root (CI, containers) the server
runs as the ``postgres`` user, because PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg


def _server_binaries() -> Path:
    """MOBIPAY_PG_BIN, else the newest Debian PostgreSQL (``/usr/lib/postgresql/<version>/bin``)."""
    if os.environ.get("MOBIPAY_PG_BIN"):
        return Path(os.environ["MOBIPAY_PG_BIN"])
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]) if
                   p.parts[-3].isdigit() else 0)
    return found[-1].parent if found else Path("/usr/lib/postgresql/15/bin")


BIN = _server_binaries()


class OwnPostgres:
    """One cluster: ``start``, ``crash_restart`` (an immediate stop: no checkpoint, WAL
    recovery on start, every connection cut) and ``stop``; ``url(database)`` for SQLAlchemy."""

    def __init__(self, port: int) -> None:
        if not (BIN / "initdb").exists():
            raise FileNotFoundError(f"{BIN}/initdb not found: apt-get install -y postgresql (or set MOBIPAY_PG_BIN)")
        self.port = port
        self.dir = Path(tempfile.mkdtemp(prefix="mobipay-own-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self._user = "postgres" if os.geteuid() == 0 else None
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
        self._pg("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale")
        (self.data / "postgresql.auto.conf").write_text(
            f"port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.dir}'\n"
            "max_connections = 200\nfsync = on\nsynchronous_commit = on\nshared_buffers = 64MB\n"
            "log_min_messages = warning\n")

    def _pg(self, tool: str, *args: str, timeout: float = 120) -> None:
        cmd = [str(BIN / tool), *args]
        if self._user is not None:
            cmd = ["runuser", "-u", self._user, "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}"
                               f"\n{self.tail()}")

    def tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def start(self) -> None:
        self._pg("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def crash(self) -> None:
        """Stop as a crash would (``-m immediate``): no checkpoint, every connection cut."""
        self._pg("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def crash_restart(self) -> None:
        """:meth:`crash`, then start: recovery replays the WAL."""
        self.crash()
        self.start()

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self._pg("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop", timeout=60)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    async def create_database(self, name: str) -> str:
        conn = await asyncpg.connect(self.dsn())
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return self.url(name)

    async def connections(self, database: str) -> int:
        """Client backends connected to ``database`` now (pg_stat_activity)."""
        conn = await asyncpg.connect(self.dsn())
        try:
            return int(await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend'",
                database))
        finally:
            await conn.close()


@contextlib.contextmanager
def own_postgres(port: int) -> Iterator[OwnPostgres]:
    """A started cluster for the life of the block; stopped and removed after it."""
    server = OwnPostgres(port)
    try:
        server.start()
        deadline = time.monotonic() + 30
        while not _answers(server.port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"own PostgreSQL on port {port} did not answer\n{server.tail()}")
            time.sleep(0.1)
        yield server
    finally:
        server.remove()


def _answers(port: int) -> bool:
    done = subprocess.run([str(BIN / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres"],
                          check=False)
    return done.returncode == 0
