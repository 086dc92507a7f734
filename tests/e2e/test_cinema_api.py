"""Cinema e-tickets over HTTP (SQLite and PostgreSQL): a cinema's shows and seat map, a lock
with an Idempotency-Key, a second buyer refused the same seat as problem+json, paying from
the wallet, the code string in the order, the cinema's kiosk (the SIMULATOR, signing as an
in-store terminal) printing the tickets once, a lost answer retried, a second check refused
with when it was used, a guessed code, and a refund with its quote."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mobipay.app.bootstrap import Container, build
from mobipay.app.http import create_app
from mobipay.kernel.clock import ManualClock
from mobipay.merchants.model import credit_code_check_char
from mobipay.platform.config import Settings
from mobipay.simulators.cinema_kiosk import CinemaKiosk
from tests.e2e.test_protection_api import problem
from tests.e2e.test_wallet_api import balance, bearer, fund, login_by_sms, signed_up

NOW = datetime(2026, 12, 4, 3, 0, tzinfo=UTC)


@pytest.fixture
def live(db_url: str) -> Iterator[tuple[TestClient, Container, ManualClock]]:
    settings = Settings(_env_file=None, database_url=db_url)
    clock = ManualClock(NOW)
    container = build(settings, clock=clock)
    with TestClient(create_app(settings, container)) as c:
        yield c, container, clock


async def _setup_coro(c: Container) -> tuple[str, str, str, str, str]:
    """An approved cinema with a hall, a film, two shows and a kiosk (on the app's loop)."""
    await c.ensure_system_accounts()
    body = "91310000MA1CN0B42"
    m = await c.merchants.apply(name="上海影城", credit_code=body + credit_code_check_char(body),
                                legal_person="李四", contact="13700137000", mcc="7832", website="",
                                settlement_account="6222020000111122222")
    store = await c.merchants.add_store(m, "上海影城 新华路店", "新华路 160 号", "上海")
    cinema = await c.cinema.open_cinema(m.id, store, name="上海影城", city="上海", address="新华路 160 号")
    hall = await c.cinema.add_hall(cinema.id, "SFC巨幕厅", "SSS.SSS\nSSS.SSS\nSSXXSSS\n")
    film = await c.cinema.add_film("哪吒之魔童闹海", 144)
    show = await c.cinema.add_show(hall.id, film.id, NOW + timedelta(days=2), list_price=8_000, price=3_990)
    soon = await c.cinema.add_show(hall.id, film.id, NOW + timedelta(hours=5), list_price=8_000, price=3_990)
    terminal, seed = await c.terminals.register(m.id, store, "KIOSK-01", actor="test")
    assert seed is not None
    return cinema.id, show.id, soon.id, terminal.id, seed


def test_lock_pay_print_once_and_refund_over_http(live: tuple[TestClient, Container, ManualClock],
                                                  db_url: str) -> None:
    client, c, clock = live
    cinema_id, show, soon, terminal_id, seed = client.portal.call(_setup_coro, c)  # type: ignore[union-attr]
    signed_up(client, db_url, "13800138000")
    me = login_by_sms(client, db_url, "13800138000", "a")
    fund(client, "13800138000", 50_000)
    signed_up(client, db_url, "13800138001")
    other = login_by_sms(client, db_url, "13800138001", "b")

    assert [x["id"] for x in client.get("/v1/cinema/cinemas", params={"city": "上海"}).json()] == [cinema_id]
    shows = client.get(f"/v1/cinema/cinemas/{cinema_id}/shows").json()
    assert [s["id"] for s in shows] == [soon, show] and shows[1]["price"]["amount"] == 3_990
    assert shows[1]["discount_percent"] == 50  # 39.90 of 80.00
    for day in ("9999-12-31", "12/04"):
        problem(client.get(f"/v1/cinema/cinemas/{cinema_id}/shows", params={"day": day}), 400, "VALIDATION_FAILED")
    assert client.get(f"/v1/cinema/cinemas/{cinema_id}/shows", params={"day": "2026-12-06"}).json()[0]["id"] == show
    problem(client.get("/v1/cinema/cinemas/cin_nope/shows"), 404, "CINEMA_NOT_FOUND")
    seats = client.get(f"/v1/cinema/shows/{show}/seats").json()
    assert [c_["state"] for c_ in seats["rows"][0]] == ["free"] * 3 + ["aisle"] + ["free"] * 3
    assert seats["rows"][2][2] == {"seat": "3-3", "row": 3, "number": 3, "state": "unavailable"}

    path = f"/v1/cinema/shows/{show}/locks"
    problem(client.post(path, headers=bearer(me), json={"seats": ["2-3"]}), 400, "IDEMPOTENCY_KEY_REQUIRED")
    problem(client.post(path, headers={**bearer(me), "Idempotency-Key": "l0"}, json={"seats": ["3-3"]}), 400,
            "SEATS_INVALID")
    r = client.post(path, headers={**bearer(me), "Idempotency-Key": "l1"}, json={"seats": ["2-3", "2-4"]})
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["state"] == "locked" and order["amount"]["amount"] == 7_980 and order["code"] is None
    again = client.post(path, headers={**bearer(me), "Idempotency-Key": "l1"}, json={"seats": ["2-3", "2-4"]})
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    problem(client.post(path, headers={**bearer(other), "Idempotency-Key": "o1"}, json={"seats": ["2-4"]}), 409,
            "SEAT_TAKEN")
    pay = f"/v1/cinema/orders/{order['id']}/payment"
    problem(client.post(pay, headers=bearer(other) | {"Idempotency-Key": "p"}, json={}), 404,
            "CINEMA_ORDER_NOT_FOUND")  # not theirs
    r = client.post(pay, headers={**bearer(me), "Idempotency-Key": "p1"}, json={})
    assert r.status_code == 201, r.text
    code = r.json()["code"]
    assert len(code.replace(" ", "")) == 12 and balance(client, me) == 50_000 - 7_980
    assert client.post(pay, headers={**bearer(me), "Idempotency-Key": "p2"}, json={}).status_code == 200
    assert balance(client, me) == 50_000 - 7_980  # paid once
    assert client.get("/v1/cinema/orders", headers=bearer(me)).json()[0]["code"] == code

    kiosk = CinemaKiosk(client, terminal_id, seed, clock)
    problem(client.post("/v1/cinema/kiosk/checks", json={"code": code, "request_id": "x"}), 401,
            "TERMINAL_NOT_SIGNED")
    r = kiosk.type_code(code)
    assert r.status_code == 201, r.text
    assert [t["label"] for t in r.json()["tickets"]] == ["2排3座", "2排4座"] and len(kiosk.printed) == 2
    assert "SFC巨幕厅" in kiosk.printed[0] and "2排3座" in kiosk.printed[0]
    assert kiosk.retry(code).status_code == 200 and len(kiosk.printed) == 2  # a lost answer: not printed twice
    r = kiosk.type_code(code)
    problem(r, 409, "TICKETS_ALREADY_PRINTED")
    assert "Beijing time" in r.json()["detail"] and kiosk.display.startswith("TICKETS_ALREADY_PRINTED")
    problem(kiosk.type_code("0000 0000 0000"), 404, "TICKET_CODE_UNKNOWN")
    problem(kiosk.type_code("123"), 400, "TICKET_CODE_INVALID")
    problem(client.post(f"/v1/cinema/orders/{order['id']}/refund", headers={**bearer(me), "Idempotency-Key": "r"}),
            422, "TICKET_REFUND_NOT_ALLOWED")  # printed tickets

    # a show five hours away: the 10% tier
    r = client.post(f"/v1/cinema/shows/{soon}/locks", headers={**bearer(me), "Idempotency-Key": "l2"},
                    json={"seats": ["1-1"]})
    second = client.post(f"/v1/cinema/orders/{r.json()['id']}/payment", headers={**bearer(me),
                                                                               "Idempotency-Key": "p3"}, json={})
    assert second.status_code == 201, second.text
    quote = client.get(f"/v1/cinema/orders/{r.json()['id']}/refund-quote", headers=bearer(me)).json()
    assert (quote["percent"], quote["fee"]["amount"], quote["back"]["amount"]) == (10, 399, 3_591)
    done = client.post(f"/v1/cinema/orders/{r.json()['id']}/refund", headers={**bearer(me), "Idempotency-Key": "r2"})
    assert done.status_code == 201 and done.json()["order"]["state"] == "refunded", done.text
    assert balance(client, me) == 50_000 - 7_980 - 399
    clock.advance(5 * 3_600)  # the show has started: no more tickets
    me = login_by_sms(client, db_url, "13800138000", "a")
    problem(client.post(f"/v1/cinema/shows/{soon}/locks", headers={**bearer(me), "Idempotency-Key": "l3"},
                        json={"seats": ["1-2"]}), 422, "SHOW_NOT_ON_SALE")


def test_demo_cinema_loads_once_and_its_kiosk_signs(live: tuple[TestClient, Container, ManualClock]) -> None:
    from mobipay.app.demo_cinema import load_demo_cinema

    client, c, clock = live

    async def load(c: Container) -> tuple[Any, Any]:
        await c.ensure_system_accounts()
        return await load_demo_cinema(c), await load_demo_cinema(c)

    first, second = client.portal.call(load, c)  # type: ignore[union-attr]
    assert first.shows == 8 and second.skipped == "loaded before"
    shows = client.get(f"/v1/cinema/cinemas/{first.cinema_id}/shows").json()
    assert len(shows) == 8 and {s["hall"] for s in shows} == {"IMAX厅", "2号厅"}
    assert all(s["price"]["amount"] * 100 >= s["list_price"]["amount"] * 30 for s in shows)
    kiosk = CinemaKiosk(client, first.kiosk_id, first.kiosk_key, clock)
    assert kiosk.request("GET", "/v1/terminal/ping").status_code == 200
