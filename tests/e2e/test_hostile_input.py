"""The hostile-input suite: schemathesis over the OpenAPI document against a live server
(``mobipay serve`` on a free loopback port) on SQLite and PostgreSQL, signed in as a
funded subscriber (rotating tokens) and with the admin token. It fails on any 5xx, any
error that is not problem+json, any status, content type or body outside the document;
then the books must verify clean. Bounded: ``HOSTILE_SECONDS`` per database (200 by default
and in CI, at least 5,000 requests each, so 10,000 over both); the long run outside CI is the same
suite with ``HOSTILE_SECONDS=1800 pytest -m slow -k hostile``.
Prints ``RESULT {...}`` per database; figures in docs/hardening.md."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_wallet_api import fund, login_by_sms, signed_up
from tests.support import results
from tests.support.live import live_server

ROOT = Path(__file__).resolve().parents[2]
ADMIN = "demo-admin-token"
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,"
          "response_schema_conformance,problem_json")
UNLIMITED = {f"MOBIPAY_RATE_LIMIT_{name}": "1000000/minute" for name in ("OTP", "PIN", "LOOKUP", "SMS")}


def _wallets_total(url: str) -> int:
    """The sum of every wallet's balance, from the database (fen)."""
    code = ("import asyncio, sys\nfrom sqlalchemy import text\nfrom mobipay.platform.db import Database\n"
            "async def main():\n    db = Database(sys.argv[1])\n    async with db.begin() as c:\n"
            "        n = (await c.execute(text(\"SELECT coalesce(sum(credits_posted - debits_posted), 0) FROM \"\n"
            "             \"ledger_accounts WHERE code LIKE 'wallet:%'\"))).scalar_one()\n"
            "    await db.dispose()\n    print(int(n))\nasyncio.run(main())\n")
    return int(subprocess.run([sys.executable, "-c", code, url], check=True, capture_output=True,
                              text=True).stdout)


def _fuzz(db_url: str, tmp_path: Path, seconds: int) -> dict[str, object]:
    with live_server(db_url, tmp_path / "server.log", **UNLIMITED) as base, httpx.Client(base_url=base) as c:
        signed_up(c, db_url, "13800138000")  # type: ignore[arg-type]
        signed_up(c, db_url, "13900139000")  # type: ignore[arg-type]
        tokens = login_by_sms(c, db_url, "13800138000", "fuzz")  # type: ignore[arg-type]
        assert c.put("/v1/me/pin", json={"pin": "739154"},
                     headers={"Authorization": f"Bearer {tokens['access_token']}"}).status_code == 204
        fund(c, "13800138000", 1_000_000)  # type: ignore[arg-type]
        before = _wallets_total(db_url)
        counts = tmp_path / "counts.json"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "SCHEMATHESIS_HOOKS": "tests.e2e.hostile_hooks",
               "HOSTILE_BASE_URL": base, "HOSTILE_ADMIN_TOKEN": ADMIN, "HOSTILE_MSISDN": "13800138000",
               "HOSTILE_PIN": "739154", "HOSTILE_ACCESS": tokens["access_token"],
               "HOSTILE_REFRESH": tokens["refresh_token"], "HOSTILE_COUNTS": str(counts)}
        run = subprocess.run(
            [str(Path(sys.executable).with_name("st")), "run", f"{base}/openapi.json", "--checks", CHECKS,
             "--phases", "examples,coverage,fuzzing", "--max-examples", "200", "--max-time", str(seconds),
             "--workers", "2", "--seed", "20261202", "--suppress-health-check", "all", "--no-color",
             "--request-timeout", "20", "--continue-on-failure", "--generation-database", "none",
             "--report", "junit", "--report-dir", str(tmp_path / "report")],
            env=env, capture_output=True, text=True, timeout=seconds + 300, cwd=tmp_path)
        (tmp_path / "schemathesis.txt").write_text(run.stdout + run.stderr)
        figures = json.loads(counts.read_text())
        after = _wallets_total(db_url)
    verify = subprocess.run([sys.executable, "-m", "mobipay.app.cli", "ledger", "verify"], capture_output=True,
                            text=True, env={**os.environ, "MOBIPAY_DATABASE_URL": db_url})
    failures = run.stdout.count("\n___") if run.returncode else 0
    result = {"database": db_url.split("+")[0], "requests": figures["requests"], "5xx": figures["5xx"],
              "non_problem_errors": figures["non_problem_errors"], "schema_failures": failures,
              "relogins": figures["relogins"], "verify_ok": verify.returncode == 0,
              "wallets_before": before, "wallets_after": after, "seconds": seconds, "ok": run.returncode == 0}
    results.record(result)
    assert run.returncode == 0, run.stdout[-6000:]
    assert figures["5xx"] == 0 and figures["non_problem_errors"] == 0, figures
    assert verify.returncode == 0, verify.stdout + verify.stderr
    # Only the suite's own subscribers hold money; what the fuzzer moved stayed among wallets
    # or went out through a balanced posting: the books say so (verify), the total is reported.
    return result


@pytest.mark.slow
def test_hostile_input(db_url: str, tmp_path: Path) -> None:
    result = _fuzz(db_url, tmp_path, int(os.environ.get("HOSTILE_SECONDS", "200")))
    assert int(result["requests"]) >= int(os.environ.get("HOSTILE_MIN_REQUESTS", "5000")), result  # type: ignore[call-overload]
