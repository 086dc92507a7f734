"""``mobipay bench transit`` end to end, tiny: pgbench for 2 s, 2,000 taps of three cities'
fares (5 % duplicates, 1 % of riders unable to pay) uploaded and posted, the books checked."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_bench_transit_runs_and_the_books_match(pg_url: str) -> None:
    missing = [tool for tool in ("pgbench", "psql") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed: apt-get install -y postgresql-client postgresql-contrib")
    env = {**os.environ, "MOBIPAY_DATABASE_URL": pg_url, "MOBIPAY_LOG_LEVEL": "WARNING"}
    run = subprocess.run([sys.executable, "-m", "mobipay.app.cli", "bench", "transit", "--seconds", "2",
                          "--taps", "2000"], capture_output=True, text=True, env=env, timeout=600, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    last = run.stdout.strip().splitlines()[-1]
    assert last.startswith("RESULT ")
    result = json.loads(last.removeprefix("RESULT "))
    for key in ("pgbench_tps", "taps_per_s", "ratio"):
        assert key in result
    assert (result["unique"], result["accepted"], result["refused"]) == (2000, 2000, 0)
    assert result["duplicates"] == result["taps"] - 2000 > 0
    assert result["debt_trips"] > 0 and result["debts"] > 0
    assert result["verify_ok"] and result["balances_match"]
    assert "verify after the run: clean" in run.stderr and "match" in run.stderr
