"""The operator CLI as an operator runs it: a real process, a real database file."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest


def mobipay(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MOBIPAY_DATABASE_URL": f"sqlite+aiosqlite:///{db}", "MOBIPAY_LOG_LEVEL": "WARNING"}
    return subprocess.run([sys.executable, "-m", "mobipay.app.cli", *args], capture_output=True, text=True, env=env,
                          timeout=120, check=False)


def test_upgrade_demo_verify_and_tampering(tmp_path: Path) -> None:
    db = tmp_path / "var" / "mobipay.db"
    assert mobipay(db, "db", "upgrade").returncode == 0
    first = mobipay(db, "demo", "--users", "20", "--merchants", "30")
    assert first.returncode == 0 and "20 subscribers (20 new)" in first.stdout, first.stderr
    second = mobipay(db, "demo", "--users", "20", "--merchants", "30")
    assert second.returncode == 0 and "20 subscribers (0 new), 0 transfers created" in second.stdout
    assert "30 new shops" in first.stdout and "0 new shops" in second.stdout
    assert "history: 1,000 more subscribers, 12,000 payments over 90 days" in first.stdout  # by default
    assert "history:" not in second.stdout  # loaded once
    verify = mobipay(db, "ledger", "verify")
    assert verify.returncode == 0 and "ledger verify: clean" in verify.stdout
    bal = mobipay(db, "ledger", "balance", "wallet:+8613800138000")
    assert bal.returncode == 0 and "balance   " in bal.stdout and "available" in bal.stdout
    stmt = mobipay(db, "ledger", "statement", "wallet:+8613800138000")
    assert "demo:cash-in:+8613800138000" in stmt.stdout

    with sqlite3.connect(db) as conn:  # someone edits a balance behind the ledger's back
        conn.execute("UPDATE ledger_accounts SET credits_posted = credits_posted + 7 "
                     "WHERE code = 'wallet:+8613900139000'")
    verify = mobipay(db, "ledger", "verify", "--json")
    assert verify.returncode == 1
    assert '"account": "wallet:+8613900139000"' in verify.stdout and '"ok": false' in verify.stdout


def test_user_commands(tmp_path: Path) -> None:
    db = tmp_path / "u.db"
    mobipay(db, "db", "upgrade")
    created = mobipay(db, "user", "create", "138 0013 8000", "--actor", "ops1")
    assert created.returncode == 0 and "+8613800138000" in created.stdout
    assert "china_mobile" in mobipay(db, "user", "show", "13800138000").stdout
    assert mobipay(db, "user", "freeze", "13800138000", "--reason", "lost phone").stdout.strip().endswith("frozen")
    assert "status    frozen" in mobipay(db, "user", "show", "13800138000").stdout
    assert "0 fen" in mobipay(db, "balance", "13800138000").stdout
    missing = mobipay(db, "user", "show", "13900139000")
    assert missing.returncode == 1 and "USER_NOT_FOUND" in missing.stderr


def test_unknown_account_is_a_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    mobipay(db, "db", "upgrade")
    r = mobipay(db, "ledger", "balance", "wallet:+8600000000000")
    assert r.returncode == 1 and "ACCOUNT_NOT_FOUND" in r.stderr


def test_production_refuses_sqlite(tmp_path: Path) -> None:
    env = {**os.environ, "MOBIPAY_ENV": "production"}
    r = subprocess.run([sys.executable, "-m", "mobipay.app.cli", "demo"], capture_output=True, text=True, env=env,
                       timeout=60, check=False)
    assert r.returncode == 2 and "PostgreSQL" in r.stderr


@pytest.mark.parametrize("command", [[], ["serve"], ["db", "upgrade"], ["demo"], ["worker"], ["ledger", "verify"],
                                     ["user"], ["user", "create"], ["user", "freeze"], ["balance"], ["statement"],
                                     ["ledger", "statement"], ["outbox", "status"], ["bench", "ledger"],
                                     ["docs", "errors"]])
def test_every_command_has_help_with_an_example(command: list[str], tmp_path: Path) -> None:
    r = mobipay(tmp_path / "x.db", *command, "--help")
    assert r.returncode == 0, r.stderr
    assert "Example" in r.stdout


def test_error_catalogue_is_current(tmp_path: Path) -> None:
    out = tmp_path / "errors.md"
    assert mobipay(tmp_path / "x.db", "docs", "errors", "--out", str(out)).returncode == 0
    generated = out.read_text(encoding="utf-8")
    assert "`INSUFFICIENT_FUNDS` | 422" in generated
    committed = Path(__file__).resolve().parents[2] / "docs" / "errors.md"
    assert committed.read_text(encoding="utf-8") == generated, "run `mobipay docs errors` and commit docs/errors.md"


def test_openapi_document_is_current(tmp_path: Path) -> None:
    out = tmp_path / "openapi.json"
    assert mobipay(tmp_path / "x.db", "docs", "openapi", "--out", str(out)).returncode == 0
    committed = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
    assert committed.read_text(encoding="utf-8") == out.read_text(encoding="utf-8"), (
        "run `mobipay docs openapi` and commit docs/openapi.json")


def test_settling_a_day_that_has_not_ended_is_refused(tmp_path: Path) -> None:
    """`merchants settle --date <today>` or `--due <tomorrow>`: one sentence saying when, nothing settled."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    db = tmp_path / "s.db"
    mobipay(db, "db", "upgrade")
    today = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()
    for args in (["--date", today.isoformat()], ["--due", (today + dt.timedelta(days=1)).isoformat()]):
        r = mobipay(db, "merchants", "settle", *args)
        assert r.returncode == 1 and "SETTLEMENT_DAY_OPEN" in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert "has not ended: settle it from" in r.stderr
    assert mobipay(db, "merchants", "settle", "--date", (today - dt.timedelta(days=2)).isoformat()).returncode == 0


def test_merchants_list_finds_merchant_ids(tmp_path: Path) -> None:
    db = tmp_path / "mch.db"
    assert mobipay(db, "db", "upgrade").returncode == 0
    _demo_shops(db, 3)
    help_ = mobipay(db, "merchants", "list", "--help")
    assert help_.returncode == 0 and "Example: mobipay merchants list" in help_.stdout
    listed = mobipay(db, "merchants", "list")
    lines = listed.stdout.splitlines()
    assert listed.returncode == 0 and len(lines) == 3, listed.stdout + listed.stderr
    assert all(line.startswith("mch_") and " approved " in line for line in lines)
    first = [line for line in lines if "91310000000000000U" in line]
    assert len(first) == 1 and lines[-1] == first[0]  # newest first: the first shop comes last
    one = mobipay(db, "merchants", "list", "--q", "91310000000000000U")
    assert one.stdout.splitlines() == first
    assert mobipay(db, "merchants", "list", "--limit", "1").stdout.splitlines() == lines[:1]
    none = mobipay(db, "merchants", "list", "--state", "suspended")
    assert none.returncode == 0 and none.stdout == "" and "no merchant matches" in none.stderr
    mcc = first[0].split("MCC ")[1].split()[0]
    assert first[0] in mobipay(db, "merchants", "list", "--mcc", mcc).stdout
    bad = mobipay(db, "merchants", "list", "--state", "open")
    assert bad.returncode == 2 and "use one of submitted" in bad.stderr and "Traceback" not in bad.stderr


def _demo_shops(db: Path, count: int) -> None:
    """The demo's first ``count`` shops (what ``mobipay demo`` loads, without its subscribers)."""
    import asyncio

    from mobipay.app.bootstrap import build
    from mobipay.app.demo import load_demo_merchants
    from mobipay.platform.config import Settings

    async def work() -> None:
        c = build(Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{db}",  # type: ignore[call-arg]
                           merchant_key_file=db.parent / "platform.pem"))
        try:
            await c.ensure_system_accounts()
            await load_demo_merchants(c.merchants, c.red_envelopes, c.ledger, count)
        finally:
            await c.close()

    asyncio.run(work())


def test_the_settings_page_is_generated_and_current(tmp_path: Path) -> None:
    out = tmp_path / "settings.md"
    r = mobipay(tmp_path / "x.db", "docs", "settings", "--out", str(out))
    assert r.returncode == 0, r.stderr
    generated = out.read_text(encoding="utf-8")
    assert "| `MOBIPAY_DATABASE_URL` | `sqlite+aiosqlite:///var/mobipay.db` |" in generated
    assert "demo-admin-token" not in generated and "(a demo value: set your own)" in generated
    committed = Path(__file__).resolve().parents[2] / "docs" / "settings.md"
    assert committed.read_text(encoding="utf-8") == generated, "run `mobipay docs settings` and commit docs/settings.md"
