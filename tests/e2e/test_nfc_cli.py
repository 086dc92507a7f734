"""Support's NFC token commands as an operator runs them: a real process on a real database
file (SQLite; the CLI is the same on both). A subscriber called about a lost phone: support
lists the wallet's tokens, suspends one (audited, refused without a reason, a clear sentence for
an unknown token), and resumes it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from mobipay.app.bootstrap import build
from mobipay.app.migrate import upgrade
from mobipay.platform.audit import entries
from mobipay.platform.config import Settings
from mobipay.wallet.model import OtpPurpose

NUMBER = "13700137000"


def mobipay(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MOBIPAY_DATABASE_URL": url, "MOBIPAY_LOG_LEVEL": "WARNING"}
    return subprocess.run([sys.executable, "-m", "mobipay.app.cli", *args], capture_output=True, text=True, env=env,
                          timeout=120, check=False)


async def _token(url: str, tmp: Path) -> str:
    """A wallet signed in by SMS code on a phone, with an HCE token provisioned there."""
    c = build(Settings(_env_file=None, database_url=url, merchant_key_file=tmp / "k.pem"))  # type: ignore[call-arg]
    try:
        await c.ensure_system_accounts()
        await c.wallet.create_user(NUMBER, actor="test", reason="NFC CLI test")
        await c.wallet.request_otp(NUMBER, OtpPurpose.LOGIN)
        async with c.db.begin() as conn:
            payload = (await conn.execute(text("SELECT payload FROM outbox_messages WHERE topic = 'sms.send' "
                                               "ORDER BY created_at DESC, id DESC LIMIT 1"))).scalar_one()
        tokens = await c.wallet.login(NUMBER, device_id="phone-1", code=str(json.loads(payload)["params"]["code"]))
        me = await c.wallet.authenticate(tokens.access_token)
        token, _ = await c.nfc_tokens.provision(me, "hce", idempotency_key="cli-test")
        return token.id
    finally:
        await c.close()


async def _audit(url: str, tmp: Path, token_id: str) -> list[str]:
    c = build(Settings(_env_file=None, database_url=url, merchant_key_file=tmp / "k.pem"))  # type: ignore[call-arg]
    try:
        async with c.db.begin() as conn:
            return [f"{e['actor']} {e['action']} {e['reason']}" for e in await entries(conn, target=token_id)]
    finally:
        await c.close()


def test_support_lists_suspends_and_resumes_a_token(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'nfc.db'}"
    upgrade(url)
    token_id = asyncio.run(_token(url, tmp_path))

    listed = mobipay(url, "instore", "token", "list", NUMBER)
    assert listed.returncode == 0 and token_id in listed.stdout and "active" in listed.stdout, listed.stderr
    nobody = mobipay(url, "instore", "token", "list", "13900139000")
    assert nobody.returncode == 0 and "no NFC token" in nobody.stderr
    no_reason = mobipay(url, "instore", "token", "suspend", token_id, "--actor", "support1")
    assert no_reason.returncode != 0 and "--reason" in no_reason.stderr
    suspended = mobipay(url, "instore", "token", "suspend", token_id, "--reason", "subscriber called: phone lost",
                        "--actor", "support1")
    assert suspended.returncode == 0 and f"{token_id}: suspended by support" in suspended.stdout, suspended.stderr
    assert "suspended by support" in mobipay(url, "instore", "token", "list", NUMBER).stdout
    unknown = mobipay(url, "instore", "token", "suspend", "nft_nope", "--reason", "x", "--actor", "support1")
    assert unknown.returncode == 1 and "Traceback" not in unknown.stderr and "NFC_TOKEN" in unknown.stderr
    resumed = mobipay(url, "instore", "token", "resume", token_id, "--reason", "phone found", "--actor", "support1")
    assert resumed.returncode == 0 and f"{token_id}: active" in resumed.stdout, resumed.stderr
    trail = asyncio.run(_audit(url, tmp_path, token_id))
    assert any("support1" in t and "phone lost" in t for t in trail) and any("phone found" in t for t in trail)
