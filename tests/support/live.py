"""A live ``mobipay serve`` (uvicorn) in a subprocess on a free loopback port, for tests that
need the real HTTP server (body limits on the wire, the hostile-input suite)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import free_port
from tests.support.waiting import server_ready


@contextlib.contextmanager
def live_server(database_url: str, log: Path, **env: str) -> Iterator[str]:
    """Serve ``database_url`` (migrated already) until the block ends; yields the base URL."""
    port = free_port()
    environ = {**os.environ, "MOBIPAY_DATABASE_URL": database_url, "MOBIPAY_LOG_LEVEL": "WARNING", **env}
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "mobipay.app.cli", "serve", "--port", str(port)], env=environ,
                                stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if server_ready(url):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mobipay serve did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
