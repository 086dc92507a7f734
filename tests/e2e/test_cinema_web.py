"""The mobile web wallet's cinema page (/m/cinema) on both databases, over the demo cinema:
pick a show, tick seats on the map, lock, pay (a double submit pays once), see the code
string, a seat someone else holds refused in words with nothing held, and a refund with its
fee shown first."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from mobipay.app.bootstrap import Container, build
from mobipay.app.demo_cinema import DemoCinema, load_demo_cinema
from mobipay.app.http import create_app
from mobipay.kernel.clock import ManualClock
from mobipay.platform.config import Settings
from tests.e2e.test_wallet_api import fund, signed_up
from tests.e2e.test_web_wallet import balance, csrf, sign_in

ALICE, BOB = "13800138000", "13900139000"


@pytest.fixture
def live(db_url: str) -> Iterator[tuple[TestClient, Container, ManualClock]]:
    settings = Settings(_env_file=None, database_url=db_url)
    clock = ManualClock(datetime(2026, 12, 4, 2, 0, tzinfo=UTC))
    container = build(settings, clock=clock)
    with TestClient(create_app(settings, container)) as c:
        yield c, container, clock


def test_pick_seats_pay_and_refund_on_the_page(live: tuple[TestClient, Container, ManualClock],
                                               db_url: str) -> None:
    client, c, _ = live

    async def demo() -> DemoCinema:
        await c.ensure_system_accounts()
        return await load_demo_cinema(c)

    assert client.portal.call(demo).shows == 8  # type: ignore[union-attr]
    for number in (ALICE, BOB):
        signed_up(client, db_url, number)
    fund(client, ALICE, 20_000)
    fund(client, BOB, 20_000)
    sign_in(client, db_url, ALICE)
    page = client.get("/m/cinema")
    assert page.status_code == 200 and 'data-testid="cinema"' in page.text
    link = re.search(r'href="(/m/cinema/shows/shw_[0-9a-f]+)" data-testid="show"', page.text)
    assert link, page.text
    show = client.get(link.group(1))
    assert show.status_code == 200 and 'value="5-10"' in show.text
    action = re.search(r'action="(/m/cinema/shows/[^"]+/lock)"', show.text)
    key = re.search(r'name="key" value="([^"]+)"', show.text)
    assert action and key
    form = {"csrf": csrf(show.text), "key": key.group(1), "seats": ["5-10", "5-11"]}
    locked = client.post(action.group(1), data=form, follow_redirects=False)
    assert locked.status_code == 303, locked.text
    order_url = locked.headers["location"]
    assert client.post(action.group(1), data=form, follow_redirects=False).headers["location"] == order_url
    order = client.get(order_url)
    assert 'data-testid="pay"' in order.text and "5排10座" in order.text
    pay = {"csrf": csrf(order.text), "key": re.findall(r'name="key" value="([^"]+)"', order.text)[0]}
    paid = client.post(order_url + "/pay", data=pay)
    assert paid.status_code == 200 and 'data-testid="code"' in paid.text and 'data-testid="done"' in paid.text
    assert client.post(order_url + "/pay", data=pay).status_code == 200  # a double submit: paid once
    price = 2 * (3_990 if "流浪地球3" in order.text else 2_900)
    assert balance(client, ALICE) == 20_000 - price

    sign_in(client, db_url, BOB)
    show = client.get(link.group(1))
    assert 'value="5-10"' not in show.text  # taken: no checkbox
    taken = client.post(action.group(1), data={"csrf": csrf(show.text), "key": "bob-1", "seats": ["5-10"]})
    assert taken.status_code == 409 and 'data-testid="error"' in taken.text  # a seat not on sale to him
    assert 'data-testid="orders"' not in client.get("/m/cinema").text  # nothing held

    sign_in(client, db_url, ALICE)
    mine = client.get(order_url)
    assert 'data-testid="refund"' in mine.text and "(10%)" in mine.text  # the show is hours away
    done = client.post(order_url + "/refund", data={"csrf": csrf(mine.text),
                                                    "key": re.findall(r'name="key" value="([^"]+)"', mine.text)[-1]})
    assert done.status_code == 200 and 'data-testid="done"' in done.text
    assert balance(client, ALICE) == 20_000 - price // 10
