"""``mobipay sp`` as an operator runs it: a real process, a real database file. Registering
an SP and a service, a violation by staff with the role (and refused without it), bad input
as one sentence, the billing run with nothing due."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.test_cli import mobipay


def test_sp_commands(tmp_path: Path) -> None:
    db = tmp_path / "sp.db"
    assert mobipay(db, "db", "upgrade").returncode == 0
    reg = mobipay(db, "sp", "register", "--code", "10661234", "--name", "天气通", "--licence", "B2-20060001",
                  "--hotline", "4008101234", "--share-bp", "8500", "--actor", "ops1")
    assert reg.returncode == 0 and "SP 10661234 天气通 registered (active)" in reg.stdout, reg.stderr
    svc = mobipay(db, "sp", "service", "--code", "10661234", "--keyword", "tq", "--name", "天气预报", "--price", "500")
    assert svc.returncode == 0 and "10661234 TQ 天气预报: 5.00元/月" in svc.stdout, svc.stderr
    bad = mobipay(db, "sp", "register", "--code", "1234", "--name", "x", "--licence", "l", "--hotline", "4008101234",
                  "--share-bp", "1", "--actor", "ops1")
    assert bad.returncode == 1 and "SP_INVALID" in bad.stderr and "Traceback" not in bad.stderr
    cycle = mobipay(db, "sp", "service", "--code", "10661234", "--keyword", "XH", "--name", "x", "--price", "5",
                    "--cycle", "weekly")
    assert cycle.returncode == 2 and "per_message, monthly" in cycle.stderr
    refused = mobipay(db, "sp", "violation", "--code", "10661234", "--class", "pricing", "--level", "minor",
                      "--reason", "price not shown", "--evidence", "case-17", "--actor", "nobody")
    assert refused.returncode == 1 and "ROLE_REQUIRED" in refused.stderr
    ok = mobipay(db, "sp", "violation", "--code", "10661234", "--class", "pricing", "--level", "minor",
                 "--reason", "price not shown", "--evidence", "case-17", "--actor", "operator")  # admin by default
    assert ok.returncode == 0 and "in_force: rung 1: deduct 10 points; deduct 10% of information fees" in ok.stdout
    review = mobipay(db, "sp", "review-complaints", "--code", "10661234", "--period", "2026-12", "--actor", "operator")
    assert review.returncode == 0 and "below the thresholds" in review.stdout, review.stderr
    bill = mobipay(db, "sp", "bill")
    assert bill.returncode == 0 and bill.stdout.startswith("0 charged"), bill.stderr
    report = mobipay(db, "sp", "exit-report", "--code", "10661234", "--out", str(tmp_path / "r.pdf"))
    assert report.returncode == 1 and "SP_DECISION_REFUSED" in report.stderr
