"""The platform as an operator runs it, in processes a test can kill: ``mobipay serve``,
``mobipay worker``, real Kannel (bearerbox + smsbox with its fake SMSC) and the SIMULATORS
of the far sides (the bank, the operator's billing system, the top-up aggregator, the
billers, and a merchant's site that records the notifications it receives).

Every process writes its log into the work directory; a failing test names it. Children
get SIGTERM if the test process dies (``PR_SET_PDEATHSIG``), so nothing outlives a crash
of pytest itself.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from mobipay.channels.sms.kannel import KannelBoxes, KannelPorts, kannel_config
from mobipay.platform.config import Settings
from mobipay.simulators.handset import Handsets, Received
from tests.conftest import BANK_SECRET, BILLER_SECRET, TELCO_SECRET, free_port
from tests.support.waiting import server_ready, wait_for

SMS_TOKEN = "reliability-sms-token"
ADMIN = "reliability-admin"


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def rss_kb(pid: int) -> int:
    """Resident memory of a process, in KiB (0 when it is gone)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def open_fds(pid: int) -> int:
    with contextlib.suppress(OSError):
        return len(os.listdir(f"/proc/{pid}/fd"))
    return 0


@dataclass
class Simulator:
    module: str
    args: tuple[str, ...]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Stack:
    """Server, worker, Kannel and the simulators on one database (``db_url``)."""

    #: Partners that misbehave a little, so that orders are left pending for the worker:
    #: late answers ("processing"), replies held back past our timeout, a few declines.
    PARTNER = ("--latency-ms", "20", "--processing-rate", "0.15", "--timeout-rate", "0.05", "--hang-s", "4",
               "--decline-rate", "0.05", "--settle-after-s", "1")

    def __init__(self, db_url: str, workdir: Path, *, extra_env: dict[str, str] | None = None) -> None:
        self.db_url, self.workdir = db_url, workdir
        self.sims = {
            "bank": Simulator("bank", ("--secret", BANK_SECRET, "--auto-open", *self.PARTNER)),
            "billing": Simulator("telco", ("--role", "billing", "--secret", TELCO_SECRET, *self.PARTNER)),
            "aggregator": Simulator("telco", ("--role", "aggregator", "--secret", TELCO_SECRET, *self.PARTNER)),
            "billers": Simulator("billers", ("--secret", BILLER_SECRET, *self.PARTNER)),
            "site": Simulator("merchant_site", ()),
        }
        self.ports = KannelPorts(free_port(), free_port(), free_port(), free_port())
        self.api_port = free_port()
        self.api = f"http://127.0.0.1:{self.api_port}"
        self.env = {
            **os.environ, "MOBIPAY_DATABASE_URL": db_url, "MOBIPAY_ENV": "test", "MOBIPAY_LOG_LEVEL": "WARNING",
            "MOBIPAY_ADMIN_TOKEN": ADMIN, "MOBIPAY_MERCHANT_KEY_FILE": str(workdir / "platform.pem"),
            "MOBIPAY_REPORT_DIR": str(workdir / "reports"),
            "MOBIPAY_BANK_URL": self.sims["bank"].url, "MOBIPAY_BANK_SECRET": BANK_SECRET,
            "MOBIPAY_OPERATOR_BILLING_URL": self.sims["billing"].url, "MOBIPAY_OPERATOR_BILLING_SECRET": TELCO_SECRET,
            "MOBIPAY_AGGREGATOR_URL": self.sims["aggregator"].url, "MOBIPAY_AGGREGATOR_SECRET": TELCO_SECRET,
            "MOBIPAY_BILLERS_URL": self.sims["billers"].url, "MOBIPAY_BILLERS_SECRET": BILLER_SECRET,
            "MOBIPAY_BANK_TIMEOUT_S": "2", "MOBIPAY_PARTNER_TIMEOUT_S": "2", "MOBIPAY_BANK_RESOLVE_INTERVAL_S": "1",
            "MOBIPAY_HOLD_SWEEP_INTERVAL_S": "1", "MOBIPAY_OUTBOX_BACKOFF_BASE_S": "0.2",
            "MOBIPAY_OUTBOX_BACKOFF_MAX_S": "2", "MOBIPAY_OUTBOX_MAX_ATTEMPTS": "100",
            # every client of the test comes from 127.0.0.1: per-address limits would stop the load
            "MOBIPAY_RATE_LIMIT_PIN": "100000/minute", "MOBIPAY_RATE_LIMIT_OTP": "100000/minute",
            "MOBIPAY_RATE_LIMIT_LOOKUP": "100000/minute", "MOBIPAY_RATE_LIMIT_SMS": "100000/minute",
            "MOBIPAY_KANNEL_SENDSMS_URL": f"http://127.0.0.1:{self.ports.sendsms}/cgi-bin/sendsms",
            "MOBIPAY_SMS_CALLBACK_URL": self.api, "MOBIPAY_SMS_INBOUND_TOKEN": SMS_TOKEN,
            "MOBIPAY_NOTIFY_ALLOW_NETWORKS": "127.0.0.1/32",  # the merchant SIMULATOR is on loopback
            "PYTHONUNBUFFERED": "1", **(extra_env or {}),
        }
        config = workdir / "kannel" / "kannel.conf"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(kannel_config(
            self.ports, config.parent, inbound_url=f"{self.api}/sms/inbound", token=SMS_TOKEN, username="mobipay",
            password="demo-kannel-secret", sender="10658888", admin_password="adm"))
        self.kannel = KannelBoxes(config, self.ports, "adm")
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.phones: Handsets | None = None
        self.received: list[Received] = []

    def settings(self) -> Settings:
        """The settings the processes run with, for set-up and checks in the test process."""
        env = {k[len("MOBIPAY_"):].lower(): v for k, v in self.env.items() if k.startswith("MOBIPAY_")}
        return Settings(_env_file=None, **env)  # type: ignore[call-arg]

    # ------------------------------------------------------------------ processes

    def _popen(self, name: str, cmd: list[str]) -> subprocess.Popen[bytes]:
        with open(self.workdir / f"{name}.log", "ab") as log:
            return subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True,
                                    preexec_fn=_die_with_parent if sys.platform == "linux" else None)

    def start_simulators(self) -> None:
        for name, sim in self.sims.items():
            sim.proc = self._popen(f"sim-{name}", [sys.executable, "-m", f"mobipay.simulators.{sim.module}",
                                                   "--port", str(sim.port), *sim.args])
        for name, sim in self.sims.items():
            def up(sim: Simulator = sim, name: str = name) -> bool:
                assert sim.proc is not None
                if sim.proc.poll() is not None:
                    raise RuntimeError(f"the {name} simulator exited; see {self.workdir}/sim-{name}.log")
                try:
                    return httpx.get(f"{sim.url}/sim/orders", timeout=1).status_code == 200
                except httpx.HTTPError:
                    return False

            wait_for(up, 60, f"the {name} simulator")

    def start(self, name: str) -> None:
        """Start ``server`` (and wait for /readyz) or ``worker``."""
        args = {"server": ["serve", "--port", str(self.api_port)], "worker": ["worker", "--idle", "0.1"]}[name]
        started = self._log_count(name, "worker: delivering")
        self.procs[name] = self._popen(name, [sys.executable, "-m", "mobipay.app.cli", *args])
        if name == "server":
            self.wait_ready()
        else:  # the worker says what it does once it is built and about to start its loops
            def running() -> bool:
                if not self.alive("worker"):
                    raise RuntimeError(f"the worker exited; see {self.workdir}/worker.log")
                return self._log_count(name, "worker: delivering") > started

            wait_for(running, 90, f"the worker running (see {self.workdir}/worker.log)", every_s=0.2)

    def _log_count(self, name: str, text: str) -> int:
        with contextlib.suppress(OSError):
            return (self.workdir / f"{name}.log").read_text(errors="replace").count(text)
        return 0

    def wait_ready(self, deadline_s: float = 90) -> None:
        def ready() -> bool:
            proc = self.procs.get("server")
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"the server exited ({proc.returncode}); see {self.workdir}/server.log")
            return server_ready(self.api)

        wait_for(ready, deadline_s, f"the server on {self.api} ready (see {self.workdir}/server.log)", every_s=0.2)

    def kill(self, name: str) -> None:
        """``kill -9``: no clean-up, no flush, whatever it was doing."""
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    def pid(self, name: str) -> int:
        return self.procs[name].pid

    def alive(self, name: str) -> bool:
        proc = self.procs.get(name)
        return proc is not None and proc.poll() is None

    def up(self) -> None:
        self.start_simulators()
        self.kannel.start(timeout_s=60)
        self.start("server")
        self.start("worker")
        self.connect_phones()

    def connect_phones(self) -> None:
        """The handsets on Kannel's fake SMSC: every SMS sent to any number arrives here."""
        self.phones = Handsets(self.ports.fake_smsc, connect_timeout_s=30)

    def collect_sms(self) -> list[Received]:
        """Every SMS the handsets have received so far (all numbers), oldest first."""
        if self.phones is not None:
            while not self.phones.inbox.empty():
                self.received.append(self.phones.inbox.get_nowait())
        return self.received

    def down(self) -> None:
        if self.phones is not None:
            self.phones.close()
            self.phones = None
        for name in list(self.procs):
            proc = self.procs.pop(name)
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        with contextlib.suppress(Exception):
            self.kannel.stop(hard=True)
        for sim in self.sims.values():
            if sim.proc is not None and sim.proc.poll() is None:
                sim.proc.terminate()
                try:
                    sim.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    sim.proc.kill()
                    sim.proc.wait(timeout=10)

    def log_tail(self, name: str, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join((self.workdir / f"{name}.log").read_text(errors="replace").splitlines()[-lines:])
        return ""
