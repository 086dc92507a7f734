"""``mobipay protection …`` as an operator runs it (a real process, a real database file):
the programme, stock into a hall, the roster's roles, a bad IMEI as a sentence (never a
traceback), the blocklist, the claims queue, the fee collection and the report as CSV."""

from __future__ import annotations

from pathlib import Path

from stdnum import luhn

from tests.e2e.test_cli import mobipay


def imei(serial: int) -> str:
    body = f"35328111{serial:06d}"
    return body + luhn.calc_check_digit(body)


def test_protection_commands(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    assert mobipay(db, "db", "upgrade").returncode == 0
    shown = mobipay(db, "protection", "programme")
    assert shown.returncode == 0 and "hunan-2026" in shown.stdout and "changsha" in shown.stdout
    assert "up to 3000.00 CNY: 12.00/month" in shown.stdout and "fraud rule right_after_waiting" in shown.stdout
    added = mobipay(db, "protection", "stock-add", "--hall", "CS01", "--imei", imei(1), "--imei", imei(2),
                    "--actor", "operator")
    assert added.returncode == 0 and f"CS01 iPhone 15 {imei(1)}" in added.stdout, added.stderr
    assert "CS01 iPhone 15: 2" in mobipay(db, "protection", "stock").stdout
    nobody = mobipay(db, "protection", "stock-add", "--hall", "CS01", "--imei", imei(3), "--actor", "mallory")
    assert nobody.returncode == 1 and "ROLE_REQUIRED" in nobody.stderr and "Traceback" not in nobody.stderr
    bad = mobipay(db, "protection", "block", imei(4)[:-1] + "x", "--reason", "stolen", "--actor", "operator")
    assert bad.returncode == 1 and bad.stderr.startswith("IMEI_INVALID: ") and "Traceback" not in bad.stderr
    blocked = mobipay(db, "protection", "block", imei(4), "--reason", "stolen", "--actor", "operator")
    assert blocked.returncode == 0 and "is on the blocklist" in blocked.stdout
    taken = mobipay(db, "protection", "stock-add", "--hall", "CS01", "--imei", imei(4), "--actor", "operator")
    assert taken.returncode == 1 and "PROTECTION_STOCK_IMEI_TAKEN" in taken.stderr
    assert mobipay(db, "protection", "claims").stdout == ""
    collected = mobipay(db, "protection", "collect")
    assert collected.returncode == 0 and "0 fee(s) collected" in collected.stdout
    out = tmp_path / "report.csv"
    report = mobipay(db, "protection", "report", "--since", "2026-09-01", "--out", str(out))
    assert report.returncode == 0 and out.read_text().startswith("city,enrolments,claims,decided,approved")
    wrong = mobipay(db, "protection", "report", "--since", "September")
    assert wrong.returncode == 2 and "YYYY-MM-DD" in wrong.stderr
    assert "Example: mobipay protection" in mobipay(db, "protection", "approve", "--help").stdout
