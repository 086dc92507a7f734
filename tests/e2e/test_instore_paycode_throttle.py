"""A terminal guessing device numbers is throttled, on both databases, through the app with signed
terminal requests: 10 refused payment codes from one terminal across 10 made-up device numbers,
then its 11th charge (even a right code) is 429 TERMINAL_PAYCODE_THROTTLED with Retry-After and
nothing paid; another terminal of the same merchant still charges; after the window a right code
pays; the payer's device is never locked or counted by the terminal's guesses. Concurrent wrong
codes all count, and each lockout is audited once. Balances before and after. ManualClock only."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mobipay.app.bootstrap import build
from mobipay.app.http import create_app
from mobipay.instore.tables import paycode_devices, paycode_throttle
from mobipay.kernel.clock import ManualClock
from mobipay.kernel.errors import MobipayError
from mobipay.platform import audit
from mobipay.platform.config import Settings
from tests.e2e.test_instore_micropay import START, Till, applet, container, refused, shop_balance
from tests.e2e.test_instore_qr_api import payer
from tests.e2e.test_instore_terminals import Shop
from tests.e2e.test_wallet_api import balance

ACTION = "instore.paycode_guessing_throttled"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def client(db_url: str, tmp_path: Path, clock: ManualClock) -> Iterator[TestClient]:
    settings = Settings(
        _env_file=None,
        database_url=db_url,  # type: ignore[call-arg]
        merchant_key_file=tmp_path / "platform.pem",
    )
    with TestClient(create_app(settings, build(settings, clock=clock))) as c:
        wallet = c.app.state.container.wallet  # type: ignore[attr-defined]
        wallet.limits = replace(wallet.limits, tier1_lifetime=10_000_000)
        yield c


def fake_numbers(real: str, count: int, start: int = 0) -> list[str]:
    """``count`` device numbers no device has (the payer's is skipped)."""
    out = [f"{n:08d}" for n in range(start, start + count + 1) if f"{n:08d}" != real]
    return out[:count]


def guess(device_no: str) -> str:
    return "78" + device_no + "12345678"


def device_row(shop: Shop, device_no: str) -> Any:
    async def work(uow: Any) -> Any:
        return (await uow.conn.execute(select(paycode_devices).where(paycode_devices.c.device_no == device_no))).one()

    return shop.run(lambda: shop.c.uow.run("device", work))


def lockouts(shop: Shop, terminal_id: str) -> list[dict[str, Any]]:
    async def work(uow: Any) -> list[dict[str, Any]]:
        return [e for e in await audit.entries(uow.conn, terminal_id) if e["action"] == ACTION]

    found: list[dict[str, Any]] = shop.run(lambda: shop.c.uow.run("audit", work))
    return found


def throttled(r: Any, wait: int) -> None:
    body = refused(r, 429, "TERMINAL_PAYCODE_THROTTLED")
    assert r.headers["Retry-After"] == str(wait) and body["retry_after_s"] == wait, (r.headers, body)


def test_guessing_device_numbers_throttles_the_terminal_not_the_payer(
    client: TestClient, db_url: str, clock: ManualClock
) -> None:
    shop = Shop(client, clock)
    till, other = Till(shop), Till(shop, "POS-02")
    who = payer(client, db_url, "13900139000", 100_000)
    phone = applet(client, clock, who)

    for n, number in enumerate(fake_numbers(phone.device_no, 10)):  # 10 devices, none of them real
        clock.advance(1)
        refused(till.charge(f"G-{n}", guess(number), 1_000), 422, "PAYCODE_DEVICE_UNKNOWN")
    assert len(lockouts(shop, till.id)) == 1  # the 10th refusal started the lockout: audited once
    entry = lockouts(shop, till.id)[0]
    assert entry["actor"] == f"{shop.merchant_id}/{till.id}" and "10 refused" in entry["reason"]

    # the 11th charge is refused before its code is read, even the right code: nothing paid
    throttled(till.charge("G-10", phone.code(), 1_000), 591)  # the window began at the 1st
    refused(till.query("G-10"), 404, "MICROPAY_ORDER_NOT_FOUND")  # no order was made
    good = phone.code()
    throttled(till.charge("G-11", good[:-1] + str((int(good[-1]) + 1) % 10), 1_000), 591)  # a wrong one
    assert balance(client, who) == 100_000 and shop_balance(shop) == 0
    device = device_row(shop, phone.device_no)
    assert (device.state, device.failures) == ("active", 0)  # the payer's device counted nothing
    assert len(lockouts(shop, till.id)) == 1  # refusals while throttled are not audited again

    # another till of the same merchant is not throttled
    code = phone.code()
    r = other.charge("O-1", code, 2_000)
    assert r.status_code == 200 and r.json()["state"] == "SUCCESS", r.text
    assert balance(client, who) == 98_000 and shop_balance(shop) == 2_000
    # the throttled till still follows orders made before: a retry and a query read no code
    again = till.charge("O-1", code, 2_000)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true", again.text
    assert till.query("O-1").json()["state"] == "SUCCESS"
    assert balance(client, who) == 98_000 and shop_balance(shop) == 2_000

    clock.advance(590)  # one second before the window (from the first refusal) ends
    throttled(till.charge("G-12", phone.code(), 1_000), 1)
    clock.advance(1)
    r = till.charge("G-13", phone.code(), 1_000)  # the window passed: a right code pays
    assert r.status_code == 200 and r.json()["state"] == "SUCCESS", r.text
    assert balance(client, who) == 97_000 and shop_balance(shop) == 3_000
    device = device_row(shop, phone.device_no)
    assert (device.state, device.failures) == ("active", 0)

    # a new window counts from its first refusal; its lockout is audited once more
    for n, number in enumerate(fake_numbers(phone.device_no, 10, start=100)):
        refused(till.charge(f"H-{n}", guess(number), 1_000), 422, "PAYCODE_DEVICE_UNKNOWN")
    clock.advance(30)
    throttled(till.charge("H-10", phone.code(), 1_000), 570)
    assert len(lockouts(shop, till.id)) == 2 and lockouts(shop, other.id) == []
    assert balance(client, who) == 97_000 and shop_balance(shop) == 3_000


def test_wrong_codes_of_a_real_device_count_for_both_but_throttled_ones_for_neither(
    client: TestClient, db_url: str, clock: ManualClock
) -> None:
    shop = Shop(client, clock)
    till = Till(shop)
    who = payer(client, db_url, "13900139000", 100_000)
    phone = applet(client, clock, who)
    good = phone.code()
    wrong = [good[:-1] + str((int(good[-1]) + n) % 10) for n in range(1, 6)]
    for n, bad in enumerate(wrong[:4]):  # 4 wrong codes of the payer's device: it counts them
        assert refused(till.charge(f"W-{n}", bad, 1_000), 422, "PAYCODE_INVALID")["attempts_left"] == 4 - n
    for n, number in enumerate(fake_numbers(phone.device_no, 6)):  # and 6 unknown devices: 10 at this till
        refused(till.charge(f"U-{n}", guess(number), 1_000), 422, "PAYCODE_DEVICE_UNKNOWN")
    assert device_row(shop, phone.device_no).failures == 4

    throttled(till.charge("W-4", wrong[4], 1_000), 600)  # would have been the device's 5th: not read
    throttled(till.charge("W-5", good, 1_000), 600)
    device = device_row(shop, phone.device_no)
    assert (device.state, device.failures) == ("active", 4)  # not locked, not counted
    assert balance(client, who) == 100_000 and shop_balance(shop) == 0

    clock.advance(600)
    r = till.charge("W-6", phone.code(), 1_000)
    assert r.status_code == 200 and r.json()["state"] == "SUCCESS", r.text  # and it resets the device's count
    assert device_row(shop, phone.device_no).failures == 0
    assert balance(client, who) == 99_000 and shop_balance(shop) == 1_000


def test_wrong_codes_at_once_all_count(client: TestClient, db_url: str, clock: ManualClock) -> None:
    shop = Shop(client, clock)
    till = Till(shop)
    who = payer(client, db_url, "13900139000", 100_000)
    phone = applet(client, clock, who)
    c = container(client)
    terminal = shop.run(lambda: c.terminals.terminal(shop.merchant_id, till.id))
    numbers = fake_numbers(phone.device_no, 10)

    async def race() -> list[Any]:
        done: list[Any] = await asyncio.gather(
            *(
                c.micropay.micropay(
                    terminal, out_trade_no=f"C-{n}", auth_code=guess(number), amount=1_000, subject="猜码"
                )
                for n, number in enumerate(numbers)
            ),
            return_exceptions=True,
        )
        return done

    outcomes = shop.run(race)  # none can see 10 refusals before its own: each is refused for its code
    assert all(isinstance(o, MobipayError) and o.code == "PAYCODE_DEVICE_UNKNOWN" for o in outcomes), outcomes

    async def row(uow: Any) -> Any:
        return (await uow.conn.execute(select(paycode_throttle).where(paycode_throttle.c.caller == till.id))).one()

    counted = shop.run(lambda: c.uow.run("throttle", row))
    assert (counted.refusals, counted.lockouts) == (10, 1)  # every one counted, one lockout
    assert len(lockouts(shop, till.id)) == 1
    throttled(till.charge("C-10", phone.code(), 1_000), 600)
    assert balance(client, who) == 100_000 and shop_balance(shop) == 0
