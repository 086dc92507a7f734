"""``mobipay bench api``, ``mobipay bench instore``, ``spbilling`` and ``bulk`` end to end,
briefly: a real uvicorn server, wrk or signed tills, pgbench, the checks. One file, so one xdist
worker runs them one after the other: the benchmarks use the same pgbench database."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_bench_api_runs_and_leaves_the_books_clean(pg_url: str) -> None:
    missing = [tool for tool in ("wrk", "pgbench", "psql") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed: apt-get install -y wrk postgresql-client")
    env = {**os.environ, "MOBIPAY_DATABASE_URL": pg_url, "MOBIPAY_LOG_LEVEL": "WARNING"}
    run = subprocess.run([sys.executable, "-m", "mobipay.app.cli", "bench", "api", "--seconds", "2"],
                         capture_output=True, text=True, env=env, timeout=300, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    last = run.stdout.strip().splitlines()[-1]
    assert last.startswith("RESULT ")
    result = json.loads(last.removeprefix("RESULT "))
    for key in ("pgbench_tps", "api_tps", "api_p99_ms", "ratio", "pin_tps"):
        assert key in result
    assert result["api_tps"] > 0 and result["pin_tps"] > 0
    assert result["non_2xx"] == 0 and result["verify_ok"] and result["balances_unchanged"]
    assert "verify after the run: clean" in run.stderr and "unchanged" in run.stderr


def test_bench_instore_runs_and_the_books_match(pg_url: str) -> None:
    missing = [tool for tool in ("pgbench", "psql") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed: apt-get install -y postgresql-client postgresql-contrib")
    env = {**os.environ, "MOBIPAY_DATABASE_URL": pg_url, "MOBIPAY_LOG_LEVEL": "WARNING"}
    run = subprocess.run([sys.executable, "-m", "mobipay.app.cli", "bench", "instore", "--seconds", "2",
                          "--devices", "200", "--taps", "2000"],
                         capture_output=True, text=True, env=env, timeout=600, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    last = run.stdout.strip().splitlines()[-1]
    assert last.startswith("RESULT ")
    result = json.loads(last.removeprefix("RESULT "))
    for key in ("pgbench_tps", "micropay_tps", "micropay_p99_ms", "ratio", "offline_tps", "offline_ratio"):
        assert key in result
    assert result["micropay_payments"] > 0 and result["offline_taps"] == 2000
    assert result["non_200"] == 0 and result["verify_ok"] and result["balances_match"]
    assert "verify after the run: clean" in run.stderr and "match" in run.stderr


def test_bench_flashsale_sells_exactly_the_stock(pg_url: str) -> None:
    missing = [tool for tool in ("pgbench", "psql") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed: apt-get install -y postgresql-client postgresql-contrib")
    env = {**os.environ, "MOBIPAY_DATABASE_URL": pg_url, "MOBIPAY_LOG_LEVEL": "WARNING"}
    run = subprocess.run([sys.executable, "-m", "mobipay.app.cli", "bench", "flashsale", "--seconds", "2",
                          "--buyers", "300", "--stock", "100", "--connections", "32"],
                         capture_output=True, text=True, env=env, timeout=600, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    last = run.stdout.strip().splitlines()[-1]
    assert last.startswith("RESULT ")
    result = json.loads(last.removeprefix("RESULT "))
    for key in ("pgbench_tps", "purchases_per_s", "sold_per_s", "ratio", "p99_ms"):
        assert key in result
    assert (result["sold"], result["sold_out"], result["other"], result["stock_left"]) == (100, 200, 0, 0)
    assert result["escrow_fen"] == result["buyers_paid_fen"] == 100 * 990 and result["verify_ok"]
    assert "verify after the run: clean" in run.stderr


def test_bench_spbilling_runs_and_the_books_match(pg_url: str) -> None:
    missing = [tool for tool in ("pgbench", "psql") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed: apt-get install -y postgresql-client postgresql-contrib")
    env = {**os.environ, "MOBIPAY_DATABASE_URL": pg_url, "MOBIPAY_LOG_LEVEL": "WARNING"}
    run = subprocess.run([sys.executable, "-m", "mobipay.app.cli", "bench", "spbilling", "--seconds", "2",
                          "--subscriptions", "2000", "--chunk", "500"],
                         capture_output=True, text=True, env=env, timeout=600, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    last = run.stdout.strip().splitlines()[-1]
    assert last.startswith("RESULT ")
    result = json.loads(last.removeprefix("RESULT "))
    for key in ("pgbench_tps", "charges_per_s", "ratio", "charged", "skipped"):
        assert key in result
    assert (result["charged"], result["skipped"], result["charged_again"]) == (1700, 100, 0)
    assert result["verify_ok"] and result["books_match"]
    assert "verify after the run: clean" in run.stderr and "match" in run.stderr


def test_bench_bulk_pays_every_valid_row_once(pg_url: str) -> None:
    missing = [tool for tool in ("pgbench", "psql") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed: apt-get install -y postgresql-client postgresql-contrib")
    env = {**os.environ, "MOBIPAY_DATABASE_URL": pg_url, "MOBIPAY_LOG_LEVEL": "WARNING"}
    run = subprocess.run([sys.executable, "-m", "mobipay.app.cli", "bench", "bulk", "--rows", "20000",
                          "--seconds", "2"], capture_output=True, text=True, env=env, timeout=600, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    last = run.stdout.strip().splitlines()[-1]
    assert last.startswith("RESULT ")
    result = json.loads(last.removeprefix("RESULT "))
    for key in ("pgbench_tps", "rows_per_s", "ratio", "upload_seconds", "run_seconds"):
        assert key in result
    assert (result["rows"], result["invalid_rows"], result["waiting_rows"], result["failed_rows"]) == (
        20000, 400, 1000, 0)
    assert result["paid_rows"] == 18600 and result["sms"] == 19600
    assert result["verify_ok"] and result["books_match"] and result["ok"]
    assert "verify after the run: clean" in run.stderr and "match" in run.stderr
