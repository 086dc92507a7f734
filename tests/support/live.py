"""Live servers on a free loopback port: ``mobipay serve`` (uvicorn) in a subprocess, for
tests that need the real HTTP server (body limits on the wire, the hostile-input suite),
and :class:`Live`, uvicorn in a thread of the test with a way to act on its container
(browsers, the real Alipay client libraries)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import uvicorn
from sqlalchemy import text

from mobipay.app.bootstrap import Container, build
from mobipay.app.http import create_app
from mobipay.platform.config import Settings
from tests.conftest import free_port
from tests.support.waiting import server_ready

T = TypeVar("T")


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


class Live:
    """A running server and a way to act on its container from the test."""

    def __init__(self, settings: Settings) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.container = build(settings)
        self.server = uvicorn.Server(uvicorn.Config(create_app(settings, self.container), host="127.0.0.1",
                                                   port=self.port, log_level="warning", lifespan="on"))
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread = threading.Thread(target=self._serve, daemon=True, name="live-server")

    def _serve(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.server.serve())

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the live server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)

    def call(self, work: Callable[[Container], Awaitable[T]]) -> T:
        """Run ``work(container)`` on the server's loop and return its result."""
        assert self.loop is not None

        async def run() -> T:
            return await work(self.container)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=30)

    def sms_code(self, msisdn: str) -> str:
        """The newest one-time code texted to ``msisdn`` (read from the outbox, as the phone would)."""

        async def work(c: Container) -> str:
            async with c.db.begin() as conn:
                rows = await conn.execute(text("SELECT payload FROM outbox_messages WHERE topic = 'sms.send' "
                                               "ORDER BY created_at DESC, id DESC"))
                for (payload,) in rows:
                    p = json.loads(payload)
                    if p["to"] == msisdn and re.fullmatch(r"\d{6}", str(p["params"].get("code", ""))):
                        return str(p["params"]["code"])
            raise AssertionError(f"no code was texted to {msisdn}")

        return self.call(work)
