"""``mobipay bench ledger`` end to end, tiny: every phase for 1 s, pgbench's included, then
the RESULT line's fields (the pure-SQL ceiling and the targets among them) and the rows the
ceiling wrote: alongside the engine's, the same shape, and the books verify clean."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from typing import Any

import asyncpg
import pytest

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

FIELDS = (
    "pgbench_tps",
    "single_tps",
    "single_p99_ms",
    "batch_tps",
    "hot_tps",
    "ratio_single",
    "ratio_batch",
    "ratio_hot",
    "ceiling_batch_tps",
    "ceiling_hot_tps",
    "ratio_ceiling_batch",
    "batch_ratio_to_ceiling",
    "hot_ratio_to_ceiling",
    "hot_to_batch",
    "single_target_met",
    "batch_target_met",
    "hot_target_met",
    "all_targets_met",
    "verify_ok",
)


async def _rows(url: str) -> dict[str, dict[str, Any]]:
    """What the engine's batches and the ceiling's wrote, side by side."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        shapes: dict[str, dict[str, Any]] = {}
        for name, prefix in (("engine", "b0-"), ("ceiling", "cb0-"), ("engine_hot", "h0-"), ("ceiling_hot", "ch0-")):
            row = await conn.fetchrow(
                """SELECT count(*) AS transfers,
                          array_agg(DISTINCT (type, code, reference, metadata IS NULL, pending_id IS NULL,
                                              reversal_of IS NULL)::text) AS kinds,
                          max(array_length(string_to_array(posting_keys, ' '), 1)) AS max_legs
                     FROM ledger_transfers WHERE id LIKE $1 || '%'""",
                prefix,
            )
            # A sample's posting_keys point at its postings (by primary key, as the engine reads them).
            sample = await conn.fetchrow(
                """SELECT count(*), count(p.account_id)
                     FROM (SELECT id, posting_keys FROM ledger_transfers WHERE id LIKE $1 || '%' LIMIT 200) t
                     CROSS JOIN LATERAL unnest(string_to_array(t.posting_keys, ' ')) AS k
                     LEFT JOIN ledger_postings p ON p.account_id = split_part(k, ':', 1)::bigint
                      AND p.account_seq = split_part(k, ':', 2)::bigint AND p.transfer_id = t.id""",
                prefix,
            )
            assert row is not None and sample is not None
            keys, found = sample
            shapes[name] = {**dict(row), "keys_ok": keys > 0 and keys == found}
        return shapes
    finally:
        await conn.close()


def test_bench_ledger_prints_the_ceiling_and_the_targets(pg_url: str) -> None:
    missing = [tool for tool in ("pgbench", "psql") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed: apt-get install -y postgresql-client postgresql-contrib")
    env = {**os.environ, "MOBIPAY_DATABASE_URL": pg_url, "MOBIPAY_LOG_LEVEL": "WARNING"}
    run = subprocess.run(
        [sys.executable, "-m", "mobipay.app.cli", "bench", "ledger", "--seconds", "1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    last = run.stdout.strip().splitlines()[-1]
    assert last.startswith("RESULT ")
    result = json.loads(last.removeprefix("RESULT "))
    assert [f for f in FIELDS if f not in result] == [], last
    assert result["verify_ok"] is True
    assert result["ceiling_batch_tps"] > 0 and result["ceiling_hot_tps"] > 0
    for name in ("single_target_met", "batch_target_met", "hot_target_met", "all_targets_met"):
        assert isinstance(result[name], bool)
    assert result["all_targets_met"] == (
        result["single_target_met"] and result["batch_target_met"] and result["hot_target_met"]
    )
    assert "verify after the run: clean" in run.stderr and "targets met:" in run.stderr

    shapes = asyncio.run(_rows(pg_url))
    for engine, ceiling, legs in (("engine", "ceiling", 2), ("engine_hot", "ceiling_hot", 3)):
        assert shapes[ceiling]["transfers"] >= 1000  # whole batches of 1,000
        assert shapes[ceiling]["transfers"] % 1000 == 0
        assert shapes[ceiling]["kinds"] == shapes[engine]["kinds"]  # the same columns as the engine writes
        assert shapes[ceiling]["keys_ok"] and shapes[engine]["keys_ok"]
        assert shapes[ceiling]["max_legs"] == shapes[engine]["max_legs"] == legs
