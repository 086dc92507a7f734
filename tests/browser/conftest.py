"""Browser tests: Playwright for Python driving Debian's Chromium against a real uvicorn
server on loopback.

* ``live``: the platform served by uvicorn in a thread on a free port (SQLite, one per
  test). ``live.call(lambda c: c.wallet.create_user(...))`` runs a coroutine on the
  server's own event loop with its container, to seed data and check the books.
* ``browser``: one Chromium per test module (``/usr/bin/chromium``, ``apt-get install
  chromium``); in CI a missing Chromium fails the run instead of skipping.
* ``phone`` / ``desk``: a fresh page in a phone-sized / desktop context. Each test's last
  screen is saved as ``var/test-artifacts/screenshots/<test>.png``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from mobipay.platform.config import Settings
from tests.support.live import Live

CHROMIUM = os.environ.get("MOBIPAY_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
SHOTS = Path(os.environ.get("MOBIPAY_TEST_ARTIFACTS", "var/test-artifacts")) / "screenshots"
T = TypeVar("T")


@pytest.fixture
def live(sqlite_url: str, tmp_path: Path) -> Iterator[Live]:
    settings = Settings(_env_file=None, database_url=sqlite_url, env="test",  # type: ignore[call-arg]
                        merchant_key_file=tmp_path / "platform.pem", report_dir=tmp_path / "reports")
    server = Live(settings)
    server.start()
    server.call(lambda c: c.ensure_system_accounts())
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser(sqlite_template: Path) -> Iterator[Any]:  # the template first: it needs asyncio.run
    """One Chromium per test module: Playwright's sync API keeps an event loop running in
    this thread while it is open, which would break ``asyncio.run`` in the tests that the
    same xdist worker runs next; closing it after each module gives the thread back."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("MOBIPAY_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{CHROMIUM} is missing: CI installs it with apt-get install -y chromium")
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


def _page(browser: Any, request: pytest.FixtureRequest, **context: Any) -> Iterator[Any]:
    ctx = browser.new_context(locale="zh-CN", **context)
    ctx.set_default_timeout(10_000)
    page = ctx.new_page()
    yield page
    SHOTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^\w.-]+", "_", request.node.name)
    try:
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    finally:
        ctx.close()


@pytest.fixture
def phone(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A phone-sized page (the mobile web wallet, the cashier on a phone)."""
    yield from _page(browser, request, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)


@pytest.fixture
def desk(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A desktop page (the operator console, the merchant portal, the cashier on a computer)."""
    yield from _page(browser, request, viewport={"width": 1280, "height": 900})


@pytest.fixture
def live_with(sqlite_url: str, tmp_path: Path) -> Iterator[Callable[..., Live]]:
    """Like ``live``, with extra Settings (partner SIMULATOR URLs and secrets):
    ``server = live_with(billers_url=..., billers_secret=...)``."""
    started: list[Live] = []

    def start(**extra: Any) -> Live:
        settings = Settings(_env_file=None, database_url=sqlite_url, env="test",  # type: ignore[call-arg]
                            merchant_key_file=tmp_path / "platform.pem", report_dir=tmp_path / "reports", **extra)
        server = Live(settings)
        server.start()
        started.append(server)
        server.call(lambda c: c.ensure_system_accounts())
        return server

    yield start
    for server in started:
        server.stop()
