"""``mobipay serve`` believes X-Forwarded-For only from the proxies named in
MOBIPAY_TRUSTED_PROXIES (default: none), so another process on the machine cannot reset a
per-address limit by claiming to be someone else. A real uvicorn, started by the command."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.conftest import free_port


@contextmanager
def served(sqlite_url: str, tmp_path: Path, **env: str) -> Iterator[str]:
    port = free_port()
    environment = {**os.environ, "MOBIPAY_DATABASE_URL": sqlite_url, "MOBIPAY_RATE_LIMIT_OTP": "2/minute",
                   "MOBIPAY_MERCHANT_KEY_FILE": str(tmp_path / "platform.pem"), "MOBIPAY_LOG_LEVEL": "WARNING",
                   "MOBIPAY_REPORT_DIR": str(tmp_path / "reports"), **env}
    environment.pop("FORWARDED_ALLOW_IPS", None)
    mobipay = str(Path(sys.executable).with_name("mobipay"))
    proc = subprocess.Popen([mobipay, "serve", "--port", str(port)], env=environment, cwd=tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "mobipay serve did not start"
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def _otp(url: str, n: int, forwarded: str | None = None) -> int:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return httpx.post(f"{url}/v1/otp", json={"msisdn": f"1370013{n:04d}"}, headers=headers, timeout=10).status_code


def test_a_spoofed_forwarded_header_does_not_reset_a_limit(sqlite_url: str, tmp_path: Path) -> None:
    with served(sqlite_url, tmp_path) as url:
        assert [_otp(url, 1), _otp(url, 2)] == [202, 202]
        assert _otp(url, 3) == 429  # the limit of this address
        for n, claimed in enumerate(("203.0.113.7", "198.51.100.9, 203.0.113.8", "::1")):
            assert _otp(url, 4 + n, claimed) == 429, claimed  # claiming to be another client changes nothing


def test_a_named_proxy_is_believed(sqlite_url: str, tmp_path: Path) -> None:
    with served(sqlite_url, tmp_path, MOBIPAY_TRUSTED_PROXIES="127.0.0.1/32") as url:
        assert [_otp(url, 1, "203.0.113.7"), _otp(url, 2, "203.0.113.7")] == [202, 202]
        assert _otp(url, 3, "203.0.113.7") == 429  # the client the proxy names is limited
        assert _otp(url, 4, "203.0.113.8") == 202  # another client behind the same proxy is not
