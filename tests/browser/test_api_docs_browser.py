"""The API docs page in Chromium with the network closed (only the server on loopback
answers): Swagger UI comes from the package, not a CDN, and renders the operations."""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import urlsplit

import httpx

from tests.browser.conftest import Live


def test_docs_render_without_internet(live: Live, desk: Any) -> None:
    elsewhere: list[str] = []

    def offline(route: Any) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:  # what a machine without internet would do
            elsewhere.append(route.request.url)
            route.abort("internetdisconnected")

    desk.context.route("**/*", offline)
    desk.goto(f"{live.url}/docs", timeout=60_000)  # 1.7 MB of Swagger UI, on a busy machine
    desk.locator(".opblock").first.wait_for(timeout=60_000)
    # A spec of more than ~115 paths is drawn as it scrolls into view (Swagger UI 5 renders only
    # what is on screen): read the page down to its end, gathering every operation shown.
    seen: set[str] = set()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        seen.update(f"{m} {p}" for m, p in zip(desk.locator(".opblock-summary-method").all_inner_texts(),
                                               desk.locator(".opblock-summary-path").all_inner_texts(), strict=True))
        if desk.evaluate("window.innerHeight + window.scrollY >= document.body.scrollHeight - 2"):
            break
        desk.mouse.wheel(0, 600)
        desk.wait_for_timeout(100)  # the next rows' drawing; the loop reads until the page ends
    assert len(seen) > 50, sorted(seen)
    assert "POST /v1/transfers" in seen and "POST /v1/terminal/micropay" in seen, sorted(seen)
    assert not elsewhere, elsewhere


def test_docs_assets_are_served_by_the_platform(live: Live) -> None:
    page = httpx.get(f"{live.url}/docs", timeout=30)
    assert page.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(a.startswith("/static/vendor/swagger-ui-dist/") for a in assets), assets
    for asset in assets:
        assert httpx.get(f"{live.url}{asset}", timeout=30).status_code == 200, asset
    assert "cdn.jsdelivr.net" not in page.text and "unpkg" not in page.text
    assert httpx.get(f"{live.url}/redoc", timeout=30).status_code == 404  # ReDoc would need a CDN: not served
