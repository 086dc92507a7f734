"""What ``make run`` shows a newcomer, with the real processes it starts: after ``mobipay
demo`` the server prints a short summary (every front door, the demo numbers, sign-ins that
work); the worker prints the SMS codes a person must type and writes every SMS to a file
instead of flooding the terminal with the demo's texts; server, worker and CLI log in the
one format ``MOBIPAY_LOG_JSON`` chooses."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from mobipay.app.bootstrap import build
from mobipay.app.demo_accounts import CONSOLE_OPERATOR, CONSOLE_PASSWORD, SHOP_OWNER, SHOP_PASSWORD
from mobipay.platform.config import Settings
from mobipay.wallet.model import OtpPurpose
from tests.conftest import free_port

ANSI = "\x1b["


def env_for(db: Path, tmp: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "MOBIPAY_DATABASE_URL": f"sqlite+aiosqlite:///{db}", "MOBIPAY_ENV": "development",
            "MOBIPAY_MERCHANT_KEY_FILE": str(tmp / "platform.pem"), "MOBIPAY_REPORT_DIR": str(tmp / "reports"),
            "MOBIPAY_SMS_CONSOLE_FILE": str(tmp / "sms.log"), "MOBIPAY_KANNEL_SENDSMS_URL": "", **extra}


def mobipay(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mobipay.app.cli", *args], capture_output=True, text=True, env=env,
                          timeout=300, check=False)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A database with the demo loaded (a few subscribers, one red-envelope shop and the 15,000
    offline merchants), as make run makes it."""
    tmp = tmp_path_factory.mktemp("make-run")
    db = tmp / "mobipay.db"
    env = env_for(db, tmp)
    assert mobipay(env, "db", "upgrade").returncode == 0
    loaded = mobipay(env, "demo", "--users", "5", "--merchants", "1")
    assert loaded.returncode == 0, loaded.stderr
    assert "offline merchants: 15,000 new (15,000 in all) in 50 cities" in loaded.stdout, loaded.stdout
    return db, tmp


class Lines:
    """A process's stderr, read line by line in a thread, for waiting on what it prints."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc, self.lines = proc, list[str]()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout_s: float = 120) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in self.lines:
                if re.search(pattern, line):
                    return line
            if self.proc.poll() is not None and not any(re.search(pattern, ln) for ln in self.lines):
                break
            time.sleep(0.1)
        raise AssertionError(f"no line matching {pattern!r} in:\n" + "\n".join(self.lines))


@pytest.fixture
def served(demo: tuple[Path, Path]) -> Iterator[tuple[str, Lines]]:
    db, tmp = demo
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mobipay.app.cli", "serve", "--port", str(port)],
                            env=env_for(db, tmp, MOBIPAY_LOG_JSON="false"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    lines = Lines(proc)
    try:
        yield f"http://127.0.0.1:{port}", lines
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def test_the_server_says_where_to_sign_in(served: tuple[str, Lines]) -> None:
    base, out = served
    out.wait_for(r"^  SMS ")
    start = next(i for i, ln in enumerate(out.lines) if ln.startswith(f"mobipay on {base}"))
    summary = out.lines[start:]
    assert len(summary) <= 12 and all(len(ln) <= 160 for ln in summary), summary
    text_ = "\n".join(summary)
    for door in ("/", "/m", "/merchant", "/console", "/docs"):
        assert re.search(rf"^  \w[\w ]+ {re.escape(base + door)} ", text_, re.M), (door, text_)
    assert "13800138000 (¥" in text_ and "demo-admin-token" in text_
    assert f"{CONSOLE_OPERATOR} / {CONSOLE_PASSWORD}" in text_ and f"/ {SHOP_OWNER} / {SHOP_PASSWORD}" in text_
    assert "codes print here in full (development only)" in text_
    assert not any(ln.lstrip().startswith("{") for ln in out.lines), out.lines  # MOBIPAY_LOG_JSON=false: text
    assert not any(ANSI in ln for ln in out.lines)  # not a terminal: no colours

    # The sign-ins it prints open the console and the merchant portal.
    with httpx.Client(base_url=base) as web:
        token = re.search(r'name="csrf" value="([^"]+)"', web.get("/console/signin").text).group(1)  # type: ignore[union-attr]
        console = web.post("/console/signin", data={"csrf": token, "name": CONSOLE_OPERATOR,
                                                     "password": CONSOLE_PASSWORD})
        assert console.status_code in (200, 303) and "mp_console" in "".join(web.cookies.keys()), console.text[:300]
        shop = re.search(r"/merchant\s+(mch_\w+) /", text_).group(1)  # type: ignore[union-attr]
        token = re.search(r'name="csrf" value="([^"]+)"', web.get("/merchant/signin").text).group(1)  # type: ignore[union-attr]
        portal = web.post("/merchant/signin", data={"csrf": token, "merchant_id": shop, "name": SHOP_OWNER,
                                                    "password": SHOP_PASSWORD})
        assert portal.status_code in (200, 303) and "mp_merchant" in web.cookies, portal.text[:300]
        assert web.get("/").status_code == 200


def _ask_for_a_code(db: Path, tmp: Path, number: str) -> None:
    settings = Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{db}",  # type: ignore[call-arg]
                        merchant_key_file=tmp / "platform.pem")

    async def work() -> None:
        c = build(settings)
        try:
            await c.wallet.request_otp(number, OtpPurpose.LOGIN)
        finally:
            await c.close()

    asyncio.run(work())


def _pending_sms(db: Path) -> int:
    async def count() -> int:
        c = build(Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{db}"))  # type: ignore[call-arg]
        try:
            async with c.db.begin() as conn:
                return int((await conn.execute(text(
                    "SELECT count(*) FROM outbox_messages WHERE status = 'pending'"))).scalar_one())
        finally:
            await c.close()

    return asyncio.run(count())


@pytest.mark.parametrize("log_json", ["true", "false"])
def test_the_worker_prints_codes_not_the_demo_flood(demo: tuple[Path, Path], log_json: str) -> None:
    db, tmp = demo
    inbox = tmp / f"sms-{log_json}.log"
    number = {"true": "13800138000", "false": "13900139000"}[log_json]  # one fresh code each
    _ask_for_a_code(db, tmp, number)
    proc = subprocess.Popen([sys.executable, "-m", "mobipay.app.cli", "worker", "--idle", "0.1"],
                            env=env_for(db, tmp, MOBIPAY_LOG_JSON=log_json, MOBIPAY_SMS_CONSOLE_FILE=str(inbox)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    out = Lines(proc)
    try:
        code_line = out.wait_for(rf"^SMS to \+86{number}: 登录验证码\d{{6}}")
        deadline = time.monotonic() + 120
        while _pending_sms(db) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _pending_sms(db) == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    time.sleep(0.2)  # the reader thread drains the pipe after exit
    assert "Sign-in code" in code_line  # the whole text, code included: development only
    assert not any("向您转账" in ln or "p2p" in ln for ln in out.lines), out.lines
    assert len(out.lines) < 12, out.lines  # the demo's hundreds of texts are in the file, not here
    if log_json == "true":
        logs = [json.loads(ln) for ln in out.lines if ln.startswith("{")]
        assert any(entry["event"] == "outbox.worker_started" for entry in logs), out.lines
    else:
        assert any("outbox.worker_started" in ln for ln in out.lines) and not any(ln.startswith("{")
                                                                                 for ln in out.lines)
    assert not any(ANSI in ln for ln in out.lines)
    texts = inbox.read_text(encoding="utf-8").splitlines() if inbox.exists() else []
    if log_json == "true":  # the first run delivered the demo's backlog: every SMS is in the file
        assert sum("向您转账" in ln for ln in texts) >= 50 and any("登录验证码" in ln for ln in texts)
