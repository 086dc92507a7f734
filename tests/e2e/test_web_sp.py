"""The mobile web wallet's Monternet page (/m/sp) on both databases, over the demo SPs: the
list "0000" gives, a cancellation inside 72 hours charging nothing, a wallet subscription
billed after the window and its charge shown, cancel-all, a complaint; bad forms (no
service, an unknown way to pay, another number's subscription, no CSRF token) refused in
words with nothing changed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pytest
from fastapi.testclient import TestClient

from mobipay.app.bootstrap import Container, build
from mobipay.app.demo_sp import DemoSps, load_demo_sp
from mobipay.app.http import create_app
from mobipay.kernel.clock import ManualClock
from mobipay.platform.config import Settings
from mobipay.sp.model import SubState
from mobipay.sp.service import Subscription
from tests.e2e.test_wallet_api import fund, signed_up
from tests.e2e.test_web_wallet import balance, sign_in

ALICE, BOB = "13800138000", "13900139000"
T = TypeVar("T")


@pytest.fixture
def live(db_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, Container, ManualClock]]:
    settings = Settings(_env_file=None, database_url=db_url,  # type: ignore[call-arg]
                        merchant_key_file=tmp_path / "platform.pem")
    clock = ManualClock(datetime(2026, 9, 10, 2, 0, tzinfo=UTC))  # 10:00 in Beijing, in UTC as the system clock gives
    container = build(settings, clock=clock)
    with TestClient(create_app(settings, container)) as c:
        yield c, container, clock


def call(client: TestClient, fn: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine on the app's event loop (the container's connections live there)."""
    result: T = client.portal.call(fn)  # type: ignore[union-attr]
    return result


def test_subscriptions_on_the_page(live: tuple[TestClient, Container, ManualClock], db_url: str) -> None:
    client, c, clock = live
    for number in (ALICE, BOB):
        signed_up(client, db_url, number)
    fund(client, ALICE, 10_000)

    async def demo() -> DemoSps:
        return await load_demo_sp(c)

    assert call(client, demo) == DemoSps(sps=3, services=5, orders=2)
    assert call(client, demo) == DemoSps(sps=0, services=0, orders=0)  # a second run adds nothing
    token = sign_in(client, db_url, ALICE)
    assert 'data-testid="sp-link"' in client.get("/m").text
    page = client.get("/m/sp")
    assert page.status_code == 200 and "1. 每日天气" in page.text and "天气通 (10661234)" in page.text, page.text
    assert 'data-testid="free-until"' in page.text and "2026-09-13 10:00" in page.text  # 72 h from confirming
    assert "手机早报 · ¥3.00" in page.text  # offered; the demo's order for it still waits for 是

    async def mine(number: str = ALICE) -> list[Subscription]:
        return await c.sp.subscriptions(number)

    [weather] = call(client, mine)
    for form, code in (({"csrf": token, "service": ""}, "VALIDATION_FAILED"),
                       ({"csrf": token, "service": "10665678:CL", "method": "cash"}, "VALIDATION_FAILED"),
                       ({"csrf": token, "service": "10665678:NOPE"}, "SP_SERVICE_NOT_FOUND"),
                       ({"csrf": "forged", "service": "10665678:CL"}, "VALIDATION_FAILED")):
        bad = client.post("/m/sp/order", data=form)
        assert bad.status_code in (400, 404, 422) and code in bad.text, (form, bad.status_code, bad.text[:300])
    assert [s.id for s in call(client, mine)] == [weather.id]

    async def bobs() -> Subscription:
        return await c.sp.subscribe(BOB, "10665678", "CL", channel="web")

    theirs = call(client, bobs)
    other = client.post("/m/sp/cancel", data={"csrf": token, "subscription_id": theirs.id})
    assert other.status_code == 404 and "SP_SUBSCRIPTION_NOT_FOUND" in other.text

    gone = client.post("/m/sp/cancel", data={"csrf": token, "subscription_id": weather.id}, follow_redirects=False)
    assert gone.status_code == 303 and gone.headers["location"] == "/m/sp?done=waived"
    assert "72小时内退订，不收取费用" in client.get("/m/sp?done=waived").text

    ordered = client.post("/m/sp/order", data={"csrf": token, "service": "10665678:CL", "method": "wallet"},
                          follow_redirects=False)
    assert ordered.status_code == 303 and ordered.headers["location"] in ("/m/sp?done=asked", "/m/sp?done=ordered")
    ring: Subscription | None = next(iter(call(client, mine)), None)
    if ordered.headers["location"].endswith("asked"):
        assert ring is None  # waiting for the 是: not listed, not charged

        async def yes() -> None:
            await c.sp.reply(ALICE, at_sp="10665678")

        call(client, yes)
        ring = call(client, mine)[0]
    assert ring is not None and ring.state is SubState.ACTIVE and ring.method.value == "wallet"
    assert balance(client, ALICE) == 10_000

    clock.advance(73 * 3600)  # past the waiver: the month's fee is billed from the wallet

    async def bill() -> None:
        await c.sp.bill_due()

    call(client, bill)
    assert balance(client, ALICE) == 10_000 - 500
    token = sign_in(client, db_url, ALICE)
    page = client.get("/m/sp")
    assert 'data-testid="charges"' in page.text and "彩铃工坊 · ¥5.00" in page.text, page.text
    assert 'data-testid="free-until"' not in page.text

    empty = client.post("/m/sp/complaints", data={"csrf": token, "sp_code": "10665678", "text": "  "})
    assert empty.status_code == 400 and "VALIDATION_FAILED" in empty.text
    sent = client.post("/m/sp/complaints", data={"csrf": token, "sp_code": "10665678", "text": "没订过却扣费"},
                       follow_redirects=False)
    assert sent.status_code == 303 and sent.headers["location"] == "/m/sp?done=complained"

    async def complaints() -> list[dict[str, object]]:
        return await c.sp.complaints("10665678")

    [complaint] = call(client, complaints)
    assert complaint["text"] == "没订过却扣费" and complaint["source"] == "web"

    done = client.post("/m/sp/cancel-all", data={"csrf": token}, follow_redirects=False)
    assert done.status_code == 303 and call(client, mine) == []
    assert 'data-testid="none"' in client.get("/m/sp").text
    assert balance(client, ALICE) == 10_000 - 500  # cancelling after the bill charges nothing more this month
