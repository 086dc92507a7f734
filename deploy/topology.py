#!/usr/bin/env python3
"""The whole mobipay topology on one machine, for tests and for trying it out: a 3-member
etcd cluster, Patroni managing PostgreSQL (a primary and two standbys, synchronous
replication), HAProxy in front of PostgreSQL (writes to the Patroni leader, reads to the
replicas) and of the API nodes, PgBouncer in transaction mode in front of the writer, N
``mobipay serve`` API nodes and a ``mobipay worker``.

Every process is Debian's own (etcd-server, patroni, haproxy, pgbouncer, PostgreSQL's
server binaries) run from the configuration in ``deploy/templates/``, rendered here with
ports on loopback counted from ``--base-port`` and data directories under ``--dir``. The
machine's own PostgreSQL (5432) is never touched. As root, PostgreSQL, Patroni and
PgBouncer run as the ``postgres`` user (PostgreSQL refuses root).

    .venv/bin/python deploy/topology.py up --dir /tmp/mp-topo --api-nodes 2
    .venv/bin/python deploy/topology.py status --dir /tmp/mp-topo
    .venv/bin/python deploy/topology.py down --dir /tmp/mp-topo

It is also a library: ``tests/e2e/test_failover.py`` drives :class:`Topology` (kill -9
a member's PostgreSQL, an API node, an etcd member). Standard library only, so it runs
with any Python 3.11; the API nodes run with ``--python`` (default: this interpreter).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import pwd
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
HOST = "127.0.0.1"
MEMBERS = 3  # etcd members and PostgreSQL members (a primary and two standbys)
DATABASE = "mobipay"


def _pg_bin() -> Path:
    """MOBIPAY_PG_BIN, else the newest Debian PostgreSQL server binaries."""
    if os.environ.get("MOBIPAY_PG_BIN"):
        return Path(os.environ["MOBIPAY_PG_BIN"])
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"),
                   key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    return found[-1].parent if found else Path("/usr/lib/postgresql/15/bin")


@dataclass
class Ports:
    """Every port of the topology, counted from one base (``--base-port``)."""

    base: int
    api_nodes: int = 2

    def etcd_client(self, i: int) -> int:
        return self.base + i

    def etcd_peer(self, i: int) -> int:
        return self.base + 3 + i

    def pg(self, i: int) -> int:
        return self.base + 10 + i

    def rest(self, i: int) -> int:
        return self.base + 13 + i

    @property
    def pg_write(self) -> int:
        return self.base + 20

    @property
    def pg_read(self) -> int:
        return self.base + 21

    @property
    def api(self) -> int:
        return self.base + 22

    @property
    def stats(self) -> int:
        return self.base + 23

    @property
    def pgbouncer(self) -> int:
        return self.base + 24

    def api_node(self, i: int) -> int:
        return self.base + 30 + i

    def all(self) -> list[int]:
        return sorted({*(f(i) for f in (self.etcd_client, self.etcd_peer, self.pg, self.rest) for i in range(MEMBERS)),
                       self.pg_write, self.pg_read, self.api, self.stats, self.pgbouncer,
                       *(self.api_node(i) for i in range(self.api_nodes))})


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def free_base(api_nodes: int, start: int = 26000, step: int = 50) -> int:
    """A base port whose whole block is free now (another checkout's topology may run)."""
    for base in range(start, 60000, step):
        if all(_port_free(p) for p in Ports(base, api_nodes).all()):
            return base
    raise RuntimeError("no free block of ports on 127.0.0.1")


def render(template: str, values: dict[str, object]) -> str:
    """``deploy/templates/<template>`` with ``${name}`` filled in (every name must be given)."""
    return string.Template((TEMPLATES / template).read_text()).substitute({k: str(v) for k, v in values.items()})


def _http_json(url: str, timeout: float = 1.0) -> tuple[int, Any]:
    """(status, parsed JSON or None); (0, None) when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - loopback URLs we built
            body = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        body, status = e.read(), e.code
    except (OSError, ValueError):
        return 0, None
    try:
        return status, json.loads(body)
    except ValueError:
        return status, None


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def wait_for(check: Callable[[], Any], deadline_s: float, what: str, every_s: float = 0.2) -> Any:
    deadline = time.monotonic() + deadline_s
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {deadline_s:.0f} s (last: {found!r})")
        time.sleep(every_s)


@dataclass
class Options:
    dir: Path
    base_port: int
    api_nodes: int = 2
    workers: int = 1
    python: str = sys.executable
    rate_limit_storage: str = "async+memory://"
    shared_buffers: str = "32MB"
    max_connections: int = 60
    pgbouncer_pool: int = 8
    app_pool_size: int = 4
    extra_env: dict[str, str] = field(default_factory=dict)
    die_with_parent: bool = False  # library use: every process gets SIGTERM if the caller dies


class Topology:
    """Start, inspect, break and stop the topology described in the module docstring."""

    def __init__(self, options: Options) -> None:
        self.o = options
        self.dir = options.dir
        self.ports = Ports(options.base_port, options.api_nodes)
        self.bin = _pg_bin()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._user = "postgres" if os.geteuid() == 0 else None

    # ------------------------------------------------------------------ addresses

    @property
    def api_url(self) -> str:
        """HAProxy in front of the API nodes: what clients use."""
        return f"http://{HOST}:{self.ports.api}"

    @property
    def writer_url(self) -> str:
        """The application's writer: PgBouncer, then HAProxy, then the Patroni leader."""
        return f"postgresql+asyncpg://postgres@{HOST}:{self.ports.pgbouncer}/{DATABASE}"

    @property
    def reader_url(self) -> str:
        return f"postgresql+asyncpg://postgres@{HOST}:{self.ports.pgbouncer}/{DATABASE}_ro"

    @property
    def direct_writer_url(self) -> str:
        """HAProxy's writer port without PgBouncer (migrations, checks)."""
        return f"postgresql+asyncpg://postgres@{HOST}:{self.ports.pg_write}/{DATABASE}"

    def member_name(self, i: int) -> str:
        return f"pg{i + 1}"

    def member_dir(self, i: int) -> Path:
        return self.dir / "pg" / self.member_name(i)

    # ------------------------------------------------------------------ configuration

    def render_all(self) -> None:
        """Write every configuration file under ``--dir`` (no process started)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        p = self.ports
        cluster = ",".join(f"etcd{i + 1}=http://{HOST}:{p.etcd_peer(i)}" for i in range(MEMBERS))
        for i in range(MEMBERS):
            d = self.dir / "etcd" / f"etcd{i + 1}"
            d.mkdir(parents=True, exist_ok=True)
            (d / "etcd.yml").write_text(render("etcd.yml.in", {
                "name": f"etcd{i + 1}", "data_dir": d / "data", "host": HOST, "client_port": p.etcd_client(i),
                "peer_port": p.etcd_peer(i), "initial_cluster": cluster, "cluster_token": f"mobipay-{p.base}"}))
        etcd_hosts = ",".join(f"{HOST}:{p.etcd_client(i)}" for i in range(MEMBERS))
        version = self.bin.parent.name
        for i in range(MEMBERS):
            d = self.member_dir(i)
            d.mkdir(parents=True, exist_ok=True)
            (d / "patroni.yml").write_text(render("patroni.yml.in", {
                "name": self.member_name(i), "scope": f"mobipay-{p.base}", "host": HOST, "pg_port": p.pg(i),
                "rest_port": p.rest(i), "etcd_hosts": etcd_hosts, "data_dir": d / "data", "bin_dir": self.bin,
                "member_dir": d, "pg_version": version, "superuser_password": "topology-superuser",
                "replication_password": "topology-replicator", "hba_network": f"{HOST}/32", "hba_method": "trust",
                "max_connections": self.o.max_connections, "shared_buffers": self.o.shared_buffers}))
        servers = [f"    server {self.member_name(i)} {HOST}:{p.pg(i)} check port {p.rest(i)}" for i in range(MEMBERS)]
        api = [f"    server api{i + 1} {HOST}:{p.api_node(i)} check" for i in range(self.o.api_nodes)]
        (self.dir / "haproxy.cfg").write_text(render("haproxy.cfg.in", {
            "haproxy_version": "2.6", "host": HOST, "dir": self.dir, "api_port": p.api, "pg_write_port": p.pg_write,
            "pg_read_port": p.pg_read, "stats_port": p.stats, "pg_write_servers": "\n".join(servers),
            "pg_read_servers": "\n".join(servers), "api_servers": "\n".join(api)}))
        (self.dir / "pgbouncer.ini").write_text(render("pgbouncer.ini.in", {
            "pgbouncer_version": "1.18", "database": DATABASE, "host": HOST, "pg_write_port": p.pg_write,
            "pg_read_port": p.pg_read, "pgbouncer_port": p.pgbouncer, "dir": self.dir, "auth_type": "trust",
            "pool_size": self.o.pgbouncer_pool}))
        (self.dir / "userlist.txt").write_text('"postgres" ""\n')
        (self.dir / "mobipay.env").write_text(render("mobipay.env.in", {
            "env": "test", "host": HOST, "pgbouncer_port": p.pgbouncer, "database": DATABASE,
            "app_pool_size": self.o.app_pool_size, "rate_limit_storage": self.o.rate_limit_storage}))
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            for path in [self.dir, *self.dir.rglob("*")]:
                os.chown(path, entry.pw_uid, entry.pw_gid)
        for i in range(MEMBERS):
            os.chmod(self.member_dir(i), 0o700)

    def app_env(self) -> dict[str, str]:
        """The environment of an API node or the worker: mobipay.env, then ``extra_env``."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("MOBIPAY_")}
        for line in (self.dir / "mobipay.env").read_text().splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                key, _, value = line.partition("=")
                env[key.strip()] = value.strip()
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.o.extra_env)
        return env

    # ------------------------------------------------------------------ processes

    def _start(self, name: str, cmd: list[str], *, as_postgres: bool = False, env: dict[str, str] | None = None,
               cwd: Path | None = None) -> subprocess.Popen[bytes]:
        if env is None:  # Debian's tools with the system Python, not a virtualenv's packages
            env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
            env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        user = self._user if as_postgres else None
        if user is not None:
            env = {**env, "HOME": str(self.dir), "USER": user}
        with open(self.dir / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,  # noqa: S603 - our commands
                                    stdin=subprocess.DEVNULL,
                                    cwd=cwd or self.dir, start_new_session=True, user=user, group=user,
                                    preexec_fn=_die_with_parent if self.o.die_with_parent else None)
        self.procs[name] = proc
        self._save_state()
        return proc

    def _save_state(self) -> None:
        state = {"options": {**asdict(self.o), "dir": str(self.o.dir)},
                 "pids": {n: p.pid for n, p in self.procs.items() if p.poll() is None}}
        (self.dir / "topology.json").write_text(json.dumps(state, indent=1))

    def log_tail(self, name: str, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join((self.dir / f"{name}.log").read_text(errors="replace").splitlines()[-lines:])
        return ""

    def _alive_or_raise(self, name: str) -> None:
        proc = self.procs.get(name)
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{name} exited ({proc.returncode}); {self.dir}/{name}.log:\n{self.log_tail(name)}")

    def start_etcd(self, i: int) -> None:
        d = self.dir / "etcd" / f"etcd{i + 1}"
        self._start(f"etcd{i + 1}", ["etcd", "--config-file", str(d / "etcd.yml")])

    def etcd_healthy(self, i: int) -> bool:
        status, body = _http_json(f"http://{HOST}:{self.ports.etcd_client(i)}/health")
        return status == 200 and isinstance(body, dict) and body.get("health") == "true"

    def etcd_leader(self) -> int | None:
        """The index of the etcd member that leads the Raft group now, if one answers."""
        for i in range(MEMBERS):
            request = urllib.request.Request(f"http://{HOST}:{self.ports.etcd_client(i)}/v3/maintenance/status",
                                             data=b"{}", method="POST")
            try:
                with urllib.request.urlopen(request, timeout=1) as r:  # noqa: S310 - loopback URL we built
                    body = json.loads(r.read())
            except (OSError, ValueError):
                continue
            if body.get("leader") and body.get("header", {}).get("member_id") == body["leader"]:
                return i
        return None

    def start_patroni(self, i: int) -> None:
        self._start(self.member_name(i), ["patroni", str(self.member_dir(i) / "patroni.yml")], as_postgres=True)

    def start_haproxy(self) -> None:
        self._start("haproxy", ["haproxy", "-db", "-f", str(self.dir / "haproxy.cfg")])

    def start_pgbouncer(self) -> None:
        self._start("pgbouncer", ["pgbouncer", str(self.dir / "pgbouncer.ini")], as_postgres=True)

    def start_api(self, i: int, *, wait: bool = True) -> None:
        name = f"api{i + 1}"
        self._start(name, [self.o.python, "-m", "mobipay.app.cli", "serve", "--host", HOST, "--port",
                           str(self.ports.api_node(i))], env=self.app_env(), cwd=self.o.dir)
        if wait:
            def ready() -> bool:
                self._alive_or_raise(name)
                status, _ = _http_json(f"http://{HOST}:{self.ports.api_node(i)}/readyz", timeout=2)
                return status == 200

            wait_for(ready, 120, f"API node {name} ready (see {self.dir}/{name}.log)")

    def start_worker(self, i: int = 0) -> None:
        self._start(f"worker{i + 1}", [self.o.python, "-m", "mobipay.app.cli", "worker"], env=self.app_env())

    # ------------------------------------------------------------------ the cluster's state

    def cluster(self) -> dict[str, Any]:
        """Patroni's view (GET /cluster) from the first member that answers; {} if none."""
        for i in range(MEMBERS):
            status, body = _http_json(f"http://{HOST}:{self.ports.rest(i)}/cluster")
            if status == 200 and isinstance(body, dict):
                return body
        return {}

    def roles(self) -> dict[str, str]:
        """Member name -> role (leader, sync_standby, replica) of members that run."""
        return {m["name"]: m["role"] for m in self.cluster().get("members", []) if m.get("state") in
                ("running", "streaming")}

    def leader(self) -> int | None:
        """The index of the Patroni leader whose PostgreSQL runs, if there is one."""
        for name, role in self.roles().items():
            if role == "leader":
                return int(name[2:]) - 1
        return None

    def healthy(self, members: int = MEMBERS) -> bool:
        """A running leader, a synchronous standby, and ``members`` members running in all."""
        roles = self.roles()
        return len(roles) >= members and "leader" in roles.values() and "sync_standby" in roles.values()

    def postmaster_pid(self, i: int) -> int | None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int((self.member_dir(i) / "data" / "postmaster.pid").read_text().splitlines()[0])
        return None

    def api_up_in_haproxy(self) -> dict[str, bool]:
        """API node -> whether HAProxy has it in service (its stats, CSV)."""
        try:
            with urllib.request.urlopen(f"http://{HOST}:{self.ports.stats}/;csv", timeout=2) as r:
                rows = r.read().decode().splitlines()
        except OSError:
            return {}
        out = {}
        for row in rows[1:]:
            cols = row.split(",")
            if len(cols) > 17 and cols[0] == "api" and cols[1].startswith("api"):
                out[cols[1]] = cols[17] == "UP"
        return out

    # ------------------------------------------------------------------ up / down

    def up(self, *, say: Callable[[str], None] = print) -> None:
        """Render, start everything in order, wait until each part is healthy."""
        for tool in ("etcd", "patroni", "haproxy", "pgbouncer"):
            if shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin") is None:
                raise RuntimeError(f"{tool} not found: apt-get install -y patroni etcd-server etcd-client haproxy "
                                   "pgbouncer")
        started = time.monotonic()
        self.render_all()
        for i in range(MEMBERS):
            self.start_etcd(i)
        wait_for(lambda: all(self._check(f"etcd{i + 1}", self.etcd_healthy, i) for i in range(MEMBERS)), 60,
                 "the etcd cluster healthy")
        say(f"etcd: 3 members healthy ({time.monotonic() - started:.0f} s)")
        self.start_patroni(0)  # the first member bootstraps the cluster (initdb); the others clone it
        wait_for(lambda: self._check("pg1", lambda _: self.leader() == 0, 0), 120, "the first Patroni member leading")
        for i in range(1, MEMBERS):
            self.start_patroni(i)
        wait_for(lambda: all(self._check(self.member_name(i), lambda _: True, i) for i in range(MEMBERS))
                 and self.healthy(), 180, "Patroni: a leader, a synchronous standby and 3 members running")
        say(f"patroni: {self.roles()} ({time.monotonic() - started:.0f} s)")
        self.start_haproxy()
        wait_for(lambda: self._check("haproxy", lambda _: self._pg_answers(self.ports.pg_write), 0), 30,
                 "PostgreSQL through HAProxy's writer port")
        self._psql(self.ports.pg_write, "postgres", f'CREATE DATABASE "{DATABASE}"')
        self._migrate()
        say(f"database {DATABASE} created and migrated ({time.monotonic() - started:.0f} s)")
        self.start_pgbouncer()
        wait_for(lambda: self._check("pgbouncer", lambda _: self._pg_answers(self.ports.pgbouncer, DATABASE), 0),
                 30, "PostgreSQL through PgBouncer")
        wait_for(lambda: self._pg_answers(self.ports.pg_read), 60, "a replica through HAProxy's reader port")
        for i in range(self.o.api_nodes):
            self.start_api(i)
        wait_for(lambda: all(self.api_up_in_haproxy().values()) and len(self.api_up_in_haproxy()) ==
                 self.o.api_nodes, 30, "every API node in service in HAProxy")
        for i in range(self.o.workers):
            self.start_worker(i)
        say(f"up in {time.monotonic() - started:.0f} s: API {self.api_url} (nodes "
            f"{', '.join(str(self.ports.api_node(i)) for i in range(self.o.api_nodes))}), writer {self.writer_url}, "
            f"reader {self.reader_url}, HAProxy stats http://{HOST}:{self.ports.stats}/")

    def _check(self, name: str, check: Callable[[int], bool], i: int) -> bool:
        self._alive_or_raise(name)
        return check(i)

    def _pg_answers(self, port: int, database: str = "postgres") -> bool:
        cmd = [str(self.bin / "pg_isready"), "-q", "-h", HOST, "-p", str(port), "-U", "postgres", "-d", database]
        done = subprocess.run(cmd, check=False, timeout=10)  # noqa: S603 - our own command line
        return done.returncode == 0

    def _psql(self, port: int, database: str, sql: str) -> str:
        cmd = [str(self.bin / "psql"), "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-h", HOST, "-p", str(port),
               "-U", "postgres", "-d", database, "-c", sql]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=60)  # noqa: S603
        if done.returncode != 0:
            raise RuntimeError(f"psql on port {port}: {done.stderr.strip()}")
        return done.stdout.strip()

    def _migrate(self) -> None:
        env = {**self.app_env(), "MOBIPAY_DATABASE_URL": self.direct_writer_url}
        env.pop("MOBIPAY_DATABASE_READ_URL", None)
        cmd = [self.o.python, "-m", "mobipay.app.cli", "db", "upgrade"]
        done = subprocess.run(cmd, env=env, cwd=self.dir, capture_output=True, text=True, check=False,  # noqa: S603
                              timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"mobipay db upgrade failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")

    def kill(self, name: str) -> None:
        """``kill -9`` one of the processes started here (``api1``, ``etcd2``, ``pg1`` = its Patroni)."""
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        self._save_state()

    def kill_postgres(self, i: int) -> int:
        """``kill -9`` a member's postmaster (its Patroni lives on and sees it crash)."""
        pid = self.postmaster_pid(i)
        if pid is None:
            raise RuntimeError(f"{self.member_name(i)} has no postmaster.pid")
        os.kill(pid, signal.SIGKILL)
        return pid

    def down(self) -> None:
        """Stop everything, the API first and etcd last; whatever does not stop is killed."""
        order = [n for n in self.procs if n.startswith(("worker", "api"))] + \
            [n for n in ("pgbouncer", "haproxy") if n in self.procs] + \
            [n for n in self.procs if n.startswith("pg")] + [n for n in self.procs if n.startswith("etcd")]
        for group in (order[:-MEMBERS], order[-MEMBERS:]):
            for name in group:
                with contextlib.suppress(ProcessLookupError):
                    self.procs[name].terminate()
            for name in group:
                try:
                    self.procs[name].wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self.procs[name].kill()
                    self.procs[name].wait(timeout=10)
        self.procs.clear()
        self._kill_postmasters()
        self._save_state()

    def _kill_postmasters(self) -> None:
        """A PostgreSQL whose Patroni was killed outlives it: stop it as a crash would."""
        for i in range(MEMBERS):
            pid = self.postmaster_pid(i)
            if pid is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGQUIT)


def _stop_from_state(directory: Path) -> int:
    """``down`` for a topology started by another process (``up`` without --foreground)."""
    state_file = directory / "topology.json"
    if not state_file.exists():
        print(f"nothing to stop: {state_file} does not exist")
        return 0
    state = json.loads(state_file.read_text())
    pids: dict[str, int] = state.get("pids", {})
    order = sorted(pids, key=lambda n: (n.startswith("etcd"), n.startswith("pg") and n != "pgbouncer",
                                        n in ("haproxy", "pgbouncer")))
    for phase in (lambda n: not n.startswith("etcd"), lambda n: n.startswith("etcd")):
        group = [n for n in order if phase(n)]
        for name in group:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pids[name], signal.SIGTERM)
        deadline = time.monotonic() + 30
        for name in group:
            while _pid_alive(pids[name]) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _pid_alive(pids[name]):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pids[name], signal.SIGKILL)
    topo = Topology(Options(dir=directory, base_port=int(state["options"]["base_port"]),
                            api_nodes=int(state["options"]["api_nodes"])))
    topo._kill_postmasters()
    state["pids"] = {}
    state_file.write_text(json.dumps(state, indent=1))
    print(f"stopped: {', '.join(order) or 'nothing was running'}")
    return 0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):  # a zombie (our child, not reaped) is not alive
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    return True


def _status(directory: Path) -> int:
    state = json.loads((directory / "topology.json").read_text())
    topo = Topology(Options(dir=directory, base_port=int(state["options"]["base_port"]),
                            api_nodes=int(state["options"]["api_nodes"])))
    print(json.dumps({"processes": {n: _pid_alive(p) for n, p in state.get("pids", {}).items()},
                      "patroni": topo.roles(), "haproxy_api": topo.api_up_in_haproxy(),
                      "etcd": {f"etcd{i + 1}": topo.etcd_healthy(i) for i in range(MEMBERS)},
                      "api": topo.api_url, "writer": topo.writer_url, "reader": topo.reader_url}, indent=1))
    return 0


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  .venv/bin/python deploy/topology.py up --dir /tmp/mp-topo --api-nodes 2\n"
               "  .venv/bin/python deploy/topology.py status --dir /tmp/mp-topo\n"
               "  .venv/bin/python deploy/topology.py down --dir /tmp/mp-topo\n"
               "render only writes the configuration files (to read or to copy to real hosts).")
    parser.add_argument("command", choices=("up", "down", "status", "render"))
    parser.add_argument("--dir", type=Path, required=True, help="work directory: configuration, data, logs")
    parser.add_argument("--base-port", type=int, default=0, help="first port of the block (default: a free one "
                        "from 26000)")
    parser.add_argument("--api-nodes", type=int, default=2, help="mobipay serve processes behind HAProxy")
    parser.add_argument("--workers", type=int, default=1, help="mobipay worker processes")
    parser.add_argument("--python", default=sys.executable, help="the Python with mobipay installed")
    parser.add_argument("--redis", default="", help="rate limits shared by the API nodes, e.g. "
                        "async+redis://127.0.0.1:6379 (default: in memory, per node)")
    parser.add_argument("--foreground", action="store_true", help="up: stay attached; Ctrl-C stops everything")
    args = parser.parse_args(list(argv) if argv is not None else None)
    directory = args.dir.resolve()
    if args.command == "down":
        return _stop_from_state(directory)
    if args.command == "status":
        return _status(directory)
    if (directory / "topology.json").exists() and any(
            _pid_alive(p) for p in json.loads((directory / "topology.json").read_text()).get("pids", {}).values()):
        print(f"a topology already runs from {directory}: deploy/topology.py down --dir {directory}", file=sys.stderr)
        return 1
    options = Options(dir=directory, base_port=args.base_port or free_base(args.api_nodes), api_nodes=args.api_nodes,
                      workers=args.workers, python=args.python, rate_limit_storage=args.redis or "async+memory://",
                      die_with_parent=args.foreground)
    topo = Topology(options)
    if args.command == "render":
        topo.render_all()
        print(f"configuration written under {directory}")
        return 0
    try:
        topo.up()
    except BaseException as exc:
        topo.down()
        print(f"topology did not come up: {exc}", file=sys.stderr)
        return 1
    if not args.foreground:
        print(f"running; stop with: {sys.argv[0]} down --dir {directory}")
        return 0
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})  # after the children started
    signal.sigwait({signal.SIGINT, signal.SIGTERM})
    topo.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
