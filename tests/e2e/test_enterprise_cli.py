"""``mobipay enterprise …`` as an operator runs it (in process, on a migrated SQLite file): a
CSV import listing its refused rows, a funding run with progress, the month's report, and
refusals as one sentence with the code, never a traceback, nothing changed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mobipay.app.bootstrap import build
from mobipay.app.cli import app
from mobipay.merchants.model import credit_code_check_char
from mobipay.platform.config import Settings


async def _employer(url: str, tmp_path: Path) -> str:
    c = build(Settings(_env_file=None, database_url=url, merchant_key_file=tmp_path / "k.pem"))
    try:
        await c.ensure_system_accounts()
        for n in (1, 2):
            await c.wallet.create_user(f"+861390013900{n}", actor="t", reason="t")
        body = "91440300MA5CL0001"
        e = await c.enterprise.onboard(name="命令行科技", credit_code=body + credit_code_check_char(body),
                                       legal_person="周总", contact="13700000001",
                                       settlement_account="6222021000000000001")
        await c.enterprise.deposit(e.id, 100_000, bank_reference="B1", actor="t")
        return e.id
    finally:
        await c.close()


def test_enterprise_commands(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOBIPAY_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("MOBIPAY_MERCHANT_KEY_FILE", str(tmp_path / "k.pem"))
    monkeypatch.setenv("MOBIPAY_LOG_LEVEL", "WARNING")
    employer = asyncio.run(_employer(sqlite_url, tmp_path))
    cli = CliRunner()
    staff = tmp_path / "staff.csv"
    staff.write_text("phone,name,employee_no\n13900139001,张三,E1\n12345,坏号码,E2\n13900139002,李四,E3\n"
                     "13900139001,又是张三,E4\n", encoding="utf-8")
    r = cli.invoke(app, ["enterprise", "import", employer, str(staff), "--key", "k1", "--actor", "hr"])
    assert r.exit_code == 0, r.output
    assert "line 3: 12345: PHONE_INVALID" in r.output and "line 5: 13900139001: DUPLICATE_IN_FILE" in r.output
    assert "2 enrolled, 2 refused" in r.output
    r = cli.invoke(app, ["enterprise", "fund", employer, "30000", "--month", "2026-12", "--key", "dec",
                         "--actor", "hr"])
    assert r.exit_code == 0 and "2 employees  600.00 CNY" in r.output and "2/2 transfers" in r.output, r.output
    r = cli.invoke(app, ["enterprise", "fund", employer, "9000000", "--month", "2026-12", "--key", "big",
                         "--actor", "hr"])
    assert r.exit_code == 1 and "EMPLOYER_FUNDS_INSUFFICIENT: the run needs" in r.output
    assert "Traceback" not in r.output
    r = cli.invoke(app, ["enterprise", "report", employer, "--month", "2026-12"])
    assert r.exit_code == 0 and "funds 400.00 CNY, 2 employees" in r.output, r.output
    assert "2 × 300.00 = 600.00 CNY" in r.output
    r = cli.invoke(app, ["enterprise", "deposit", "mch_nobody", "100", "--bank-reference", "B2", "--actor", "hr"])
    assert r.exit_code == 1 and "EMPLOYER_NOT_FOUND" in r.output
