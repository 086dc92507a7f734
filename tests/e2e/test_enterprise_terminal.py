"""The canteen's POS charges an employee's payment code with the allowance, over HTTP on both
databases (``POST /v1/terminal/enterprise/payments``, signed like every ``/v1/terminal/...``
request): the allowance first and the wallet the rest on one receipt, every balance asserted; a
retry of the same out_trade_no charges once (with the same code or a later one of the device);
a replayed nonce, a bad signature, another payer's code under a used out_trade_no and a used
code are refused with nothing moved; an outside shop's terminal is refused the allowance; the
wallet's share counts against the PBoC daily limits of dynamic codes on the same counters as
an in-store micropay, to the fen. ManualClock only."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mobipay.app.bootstrap import Container, build
from mobipay.app.http import create_app
from mobipay.enterprise.model import rules_from
from mobipay.enterprise.service import allowance_account
from mobipay.instore.service import QrLimits
from mobipay.instore.signature import sign, signing_string
from mobipay.kernel.clock import ManualClock
from mobipay.merchants.model import credit_code_check_char
from mobipay.platform.config import Settings
from mobipay.simulators.paycode_device import PaycodeApplet
from tests.e2e.test_instore_qr_api import payer
from tests.e2e.test_wallet_api import balance, bearer

NOW = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)  # Monday 12:00 in Beijing: lunch, the first second of a 30 s step
PATH = "/v1/terminal/enterprise/payments"
EMPLOYEE, OTHER = "13700137100", "13700137101"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def client(db_url: str, tmp_path: Path, clock: ManualClock) -> Iterator[TestClient]:
    settings = Settings(
        _env_file=None,
        database_url=db_url,
        merchant_key_file=tmp_path / "platform.pem",
    )
    with TestClient(create_app(settings, build(settings, clock=clock))) as c:
        wallet = c.app.state.container.wallet  # type: ignore[attr-defined]
        wallet.limits = replace(wallet.limits, tier1_lifetime=10_000_000)  # the one-card's rules are under test
        yield c


def _code(n: int) -> str:
    body = f"91440300MA6E{n:05d}"
    return body + credit_code_check_char(body)


class Till:
    """A POS terminal of a store, sending signed requests."""

    def __init__(self, client: TestClient, clock: ManualClock, terminal_id: str, seed: str) -> None:
        self.client, self.clock, self.id, self.seed = client, clock, terminal_id, seed

    def post(self, path: str, body: dict[str, Any], *, nonce: str | None = None, seed: str | None = None) -> Any:
        sent = json.dumps(body, ensure_ascii=False).encode()
        stamp, nonce = str(int(self.clock.now().timestamp())), nonce or secrets.token_hex(12)
        signature = sign(seed or self.seed, signing_string(self.id, "POST", path, stamp, nonce, sent))
        return self.client.post(
            path,
            content=sent,
            headers={
                "Terminal-Id": self.id,
                "Timestamp": stamp,
                "Nonce": nonce,
                "Signature": signature,
                "Content-Type": "application/json",
            },
        )

    def charge(self, out_trade_no: str, code: str, amount: int, **kw: Any) -> Any:
        return self.post(PATH, {"out_trade_no": out_trade_no, "auth_code": code, "amount": amount}, **kw)


def refused(r: Any, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status and r.headers["content-type"].startswith("application/problem+json"), r.text
    body: dict[str, Any] = r.json()
    assert body["code"] == code, body
    return body


class World:
    """An employer (lunch 25.00 a meal, 40.00 a day) with its canteen (a closed-loop merchant)
    and an outside shop, a terminal at each, and an enrolled employee with a payment-code applet."""

    def __init__(self, client: TestClient, db_url: str, clock: ManualClock) -> None:
        self.client, self.clock = client, clock
        self.c: Container = client.app.state.container  # type: ignore[attr-defined]
        self.me = payer(client, db_url, EMPLOYEE, 100_000)
        self.w = self.run(self._setup)
        self.canteen = Till(client, clock, self.w["canteen_terminal"], self.w["canteen_seed"])
        self.outside = Till(client, clock, self.w["outside_terminal"], self.w["outside_seed"])
        r = client.post("/v1/instore/paycode/devices", headers={**bearer(self.me), "Idempotency-Key": "pc-1"})
        assert r.status_code == 201, r.text
        self.applet = PaycodeApplet.provisioned(r.json(), clock=clock.now)

    def run(self, work: Any) -> Any:
        return self.client.portal.call(work)  # type: ignore[union-attr]

    async def _setup(self) -> dict[str, str]:
        c = self.c
        await c.ensure_system_accounts()
        rules = rules_from(
            {"windows": [{"name": "lunch", "start": "11:00", "end": "13:30"}], "per_meal": 2_500, "per_day": 4_000}
        )
        boss = await c.enterprise.onboard(
            name="深圳示范电子",
            credit_code=_code(1),
            legal_person="周总",
            contact="13700000001",
            settlement_account="6222021000000000001",
            rules=rules,
        )
        await c.enterprise.deposit(boss.id, 100_000, bank_reference="B1", actor="ops")
        shops: dict[str, str] = {"boss": boss.id}
        for n, (key, name) in enumerate((("canteen", "电子厂食堂"), ("outside", "园外奶茶")), start=2):
            m = await c.merchants.apply(
                name=name,
                credit_code=_code(n),
                legal_person="赵经理",
                contact=f"1370000000{n}",
                mcc="5812",
                website="",
                settlement_account=f"622202100000000000{n}",
            )
            store = await c.merchants.add_store(m, f"{name}一店", "工业园 1 号", "深圳")
            terminal, seed = await c.terminals.register(m.id, store, "POS-01", actor="test")
            assert seed is not None
            shops |= {key: m.id, f"{key}_account": m.account_code, f"{key}_terminal": terminal.id, f"{key}_seed": seed}
        await c.enterprise.name_merchant(boss.id, shops["canteen"])
        employee = await c.enterprise.enrol(boss.id, EMPLOYEE, name="张三")
        await c.enterprise.fund(boss.id, "2026-12", 30_000, idempotency_key="dec")
        return shops | {"employee": employee.id, "allowance": allowance_account(employee.id)}

    def money(self) -> tuple[int, int, int, int]:
        """(the employee's wallet, allowance, the canteen's payable, the outside shop's payable)."""

        codes = [f"wallet:+86{EMPLOYEE}", self.w["allowance"], self.w["canteen_account"], self.w["outside_account"]]

        async def read() -> tuple[int, int, int, int]:
            got = await self.c.ledger.accounts(codes)
            wallet, allowance, canteen, outside = (got[code].balance for code in codes)
            return wallet, allowance, canteen, outside

        found: tuple[int, int, int, int] = self.run(read)
        return found

    def next_code(self) -> str:
        """A fresh code: the applet's code of the next 30 s step (the platform's clock moves on)."""
        self.clock.advance(30)
        return self.applet.code()


def test_split_retry_and_refusals(client: TestClient, db_url: str, clock: ManualClock) -> None:
    world = World(client, db_url, clock)
    assert world.money() == (100_000, 30_000, 0, 0)

    code = world.applet.code()
    paid = world.canteen.charge("SALE-1", code, 3_000)
    assert paid.status_code == 201, paid.text
    body = paid.json()
    assert (body["amount"], body["allowance"], body["wallet"], body["window"]) == (3_000, 2_500, 500, "lunch")
    assert body["reason"] and body["allowance_left"] == 27_500 and body["terminal_id"] == world.canteen.id
    assert body["merchant_id"] == world.w["canteen"] and body["out_trade_no"] == "SALE-1"
    assert world.money() == (99_500, 27_500, 3_000, 0)  # one trade of 30.00: 25.00 allowance + 5.00 wallet

    again = world.canteen.charge("SALE-1", code, 3_000)  # the answer was lost: the same sale
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true", again.text
    assert (again.json()["payment_id"], again.json()["trade_no"]) == (body["payment_id"], body["trade_no"])
    later = world.canteen.charge("SALE-1", world.next_code(), 3_000)  # later, the device's next code: still once
    assert later.status_code == 200 and later.json()["payment_id"] == body["payment_id"], later.text
    assert world.money() == (99_500, 27_500, 3_000, 0)
    refused(world.canteen.charge("SALE-1", code, 3_100), 409, "IDEMPOTENCY_CONFLICT")

    used = world.canteen.charge("SALE-2", code, 1_000)  # the code paid SALE-1: each code pays once
    refused(used, 409, "PAYCODE_USED")
    assert world.money() == (99_500, 27_500, 3_000, 0)

    # a replayed nonce and a bad signature: refused before anything is read
    fresh = world.next_code()
    nonce = secrets.token_hex(12)
    first = world.canteen.charge("SALE-3", fresh, 1_000, nonce=nonce)
    assert first.status_code == 201, first.text
    assert (first.json()["allowance"], first.json()["wallet"]) == (0, 1_000)  # the lunch cap is reached
    assert world.money() == (98_500, 27_500, 4_000, 0)
    refused(world.canteen.charge("SALE-4", world.next_code(), 1_000, nonce=nonce), 401, "TERMINAL_NONCE_REPLAYED")
    store_id = _store_of(world)
    _, other_seed = world.run(lambda: world.c.terminals.register(world.w["canteen"], store_id, "POS-02", actor="test"))
    refused(world.canteen.charge("SALE-4", world.next_code(), 1_000, seed=other_seed), 401, "TERMINAL_BAD_SIGNATURE")
    assert world.money() == (98_500, 27_500, 4_000, 0)

    # the outside shop's terminal: the allowance is not accepted there, nothing moves
    refused(world.outside.charge("TEA-1", world.next_code(), 1_500), 422, "ALLOWANCE_NOT_ACCEPTED")
    assert world.money() == (98_500, 27_500, 4_000, 0)

    # another payer's code under a used out_trade_no is not a retry of it
    other = payer(client, db_url, OTHER, 10_000)
    r = client.post("/v1/instore/paycode/devices", headers={**bearer(other), "Idempotency-Key": "pc-2"})
    assert r.status_code == 201, r.text
    theirs = PaycodeApplet.provisioned(r.json(), clock=clock.now)
    refused(world.canteen.charge("SALE-1", theirs.code(), 3_000), 409, "ENTERPRISE_PAYCODE_MISMATCH")
    refused(world.canteen.charge("SALE-9", theirs.code(), 500), 403, "NOT_AN_EMPLOYEE")  # no allowance to pay
    assert world.money() == (98_500, 27_500, 4_000, 0) and balance(client, other) == 10_000


def _store_of(world: World) -> str:
    async def read() -> str:
        t = await world.c.terminals.terminal(world.w["canteen"], world.w["canteen_terminal"])
        return t.store_id

    found: str = world.run(read)
    return found


def test_wallet_share_counts_against_the_daily_dynamic_code_limit(
    client: TestClient, db_url: str, clock: ManualClock
) -> None:
    world = World(client, db_url, clock)
    world.c.instore.limits = QrLimits(static=50_000, dynamic=1_000, dynamic_two_factor=500_000)  # 10.00 a day
    # an in-store micropay at the outside shop (a one-factor dynamic code) uses 4.00 of the day's 10.00
    sale = world.outside.post(
        "/v1/terminal/micropay",
        {"out_trade_no": "TEA-1", "auth_code": world.applet.code(), "amount": 400, "subject": "奶茶"},
    )
    assert sale.status_code == 200 and sale.json()["state"] == "SUCCESS", sale.text
    assert world.money() == (99_600, 30_000, 0, 400)

    first = world.canteen.charge("SALE-1", world.next_code(), 3_000)  # 25.00 allowance + 5.00 wallet: 9.00 used
    assert first.status_code == 201 and first.json()["wallet"] == 500, first.text
    assert world.money() == (99_100, 27_500, 3_000, 400)

    over = refused(world.canteen.charge("SALE-2", world.next_code(), 101), 422, "QR_DYNAMIC_DAILY_LIMIT")
    assert (over["limit"], over["left"]) == ("dynamic", 100)  # the same counters as the micropay's
    assert world.money() == (99_100, 27_500, 3_000, 400)  # nothing moved, the allowance untouched

    edge = world.canteen.charge("SALE-3", world.next_code(), 100)  # exactly what is left
    assert edge.status_code == 201 and (edge.json()["allowance"], edge.json()["wallet"]) == (0, 100), edge.text
    assert world.money() == (99_000, 27_500, 3_100, 400)
    last = refused(world.canteen.charge("SALE-4", world.next_code(), 1), 422, "QR_DYNAMIC_DAILY_LIMIT")
    assert last["left"] == 0

    clock.advance(timedelta(days=1).total_seconds())  # a new Beijing day: the counters start again
    assert world.canteen.charge("SALE-5", world.applet.code(), 3_000).status_code == 201
    assert world.money() == (98_500, 25_000, 6_100, 400)


def test_counter_code_share_counts_against_the_daily_static_code_limit(
    client: TestClient, db_url: str, clock: ManualClock
) -> None:
    world = World(client, db_url, clock)
    world.c.instore.limits = QrLimits(static=600, dynamic=100_000, dynamic_two_factor=500_000)  # 6.00 a day

    store_id = _store_of(world)

    async def payload() -> str:
        merchant = await world.c.merchants.merchant(world.w["canteen"])
        return await world.c.instore.store_payload(merchant, store_id)

    qr = world.run(payload)

    def scan_pay(key: str, amount: int) -> Any:
        return client.post(
            "/v1/enterprise/payments",
            headers={**bearer(world.me), "Idempotency-Key": key},
            json={"payload": qr, "amount": amount},
        )

    first = scan_pay("lunch-1", 3_000)  # 25.00 allowance + 5.00 wallet: 5.00 of the static codes' 6.00
    assert first.status_code == 201, first.text
    assert world.money() == (99_500, 27_500, 3_000, 0)
    over = refused(scan_pay("lunch-2", 200), 422, "QR_STATIC_DAILY_LIMIT")
    assert (over["limit"], over["left"]) == ("static", 100)
    assert world.money() == (99_500, 27_500, 3_000, 0)
    assert scan_pay("lunch-3", 100).status_code == 201  # to the fen
    assert world.money() == (99_400, 27_500, 3_100, 0)


def test_racing_twins_of_one_sale_charge_once(client: TestClient, db_url: str, clock: ManualClock) -> None:
    world = World(client, db_url, clock)
    code, store_id = world.applet.code(), _store_of(world)

    async def twins() -> list[Any]:
        till = await world.c.terminals.terminal(world.w["canteen"], world.w["canteen_terminal"])
        assert till.store_id == store_id
        return await asyncio.gather(
            *(
                world.c.enterprise.pay_by_paycode(
                    world.c.micropay,
                    till,
                    out_trade_no="SALE-1",
                    auth_code=code,
                    amount=3_000,
                )
                for _ in range(3)
            )
        )

    receipts = world.run(twins)
    assert len({r.id for r in receipts}) == 1 and sum(not r.replayed for r in receipts) == 1
    assert world.money() == (99_500, 27_500, 3_000, 0)


def test_a_canteen_till_guessing_device_numbers_is_throttled(
    client: TestClient, db_url: str, clock: ManualClock
) -> None:
    """The canteen's till reads payment codes through the same guard as micropay: refused codes
    of unknown devices count against the terminal; past the limit even a right code is refused
    with 429 and nothing moves."""
    from tests.e2e.test_instore_paycode_throttle import fake_numbers, guess

    world = World(client, db_url, clock)
    before = world.money()
    for n, number in enumerate(fake_numbers(world.applet.device_no, 10)):
        refused(world.canteen.charge(f"GUESS-{n}", guess(number), 1_000), 422, "PAYCODE_DEVICE_UNKNOWN")
    r = world.canteen.charge("REAL-1", world.applet.code(), 1_000)
    refused(r, 429, "TERMINAL_PAYCODE_THROTTLED")
    assert int(r.headers["Retry-After"]) > 0
    assert world.money() == before
