"""What ``make test`` tells about the tests it skips: how many, why, and how to run them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_skipped_tests_say_why_and_how_to_run_them(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("MOBIPAY_TEST_POSTGRES", "MOBIPAY_REQUIRE_POSTGRES")}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", "--basetemp", str(tmp_path / "t"),
         "tests/integration/test_outbox.py::test_event_is_written_only_if_the_transaction_commits"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed, 1 skipped" in run.stdout, run.stdout
    assert "skipped tests, and how to run them" in run.stdout, run.stdout
    assert ("   1 skipped: PostgreSQL is not configured: run them with "
            "MOBIPAY_TEST_POSTGRES=postgresql+asyncpg://postgres@127.0.0.1/test make test") in run.stdout, run.stdout
