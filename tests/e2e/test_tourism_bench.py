"""``mobipay bench evidence`` briefly: three terminals capture through the app's API path,
the loopback proxy standing for the network is cut for a second in the middle, the queues are
flushed after it; every capture is visible in the back office once, its hash verified, and
the RESULT line carries p50/p95 against the 60 s target."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_bench_evidence_survives_an_outage(sqlite_template: Path, tmp_path: Path) -> None:
    db = tmp_path / "bench.db"
    db.write_bytes(sqlite_template.read_bytes())  # migrated already: the bench's upgrade is a no-op
    env = {**os.environ, "MOBIPAY_LOG_LEVEL": "WARNING"}
    run = subprocess.run([sys.executable, "-m", "mobipay.app.cli", "bench", "evidence", "--captures", "9",
                          "--officers", "3", "--interval", "0.3", "--outage", "1.5", "--outage-at", "0.2",
                          "--retry", "0.5",
                          "--database-url", f"sqlite+aiosqlite:///{db}"],
                         capture_output=True, text=True, env=env, timeout=240, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    last = run.stdout.strip().splitlines()[-1]
    assert last.startswith("RESULT ")
    result = json.loads(last.removeprefix("RESULT "))
    assert result["ok"] and result["captures"] == 9 and result["visible"] == 9
    assert result["lost"] == 0 and result["duplicates"] == 0 and result["verified_intact"] == 9
    assert result["failed_attempts"] > 0  # uploads did fail while the network was cut …
    assert result["max_s"] >= 0.5  # … and what was queued then waited for it to come back
    assert result["p50_s"] <= result["p95_s"] <= result["max_s"] <= 60
    assert "outage: the network is cut" in run.stderr and "capture to visible" in run.stderr
