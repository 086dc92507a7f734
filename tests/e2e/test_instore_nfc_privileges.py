"""Alliance brand privileges on NFC taps over HTTP on both databases, as QR payments get them:
at a member store with a programme for the payer's brand, an online tap and an offline upload
each charge the amount less the privilege (the wallet pays it, the merchant receives it), the
terminal's answer and the tap row say amount, privilege and charged, the trade keeps the price
and the privilege, the merchant is settled net of it, points are recorded once (an upload sent
twice gives nothing twice), a debt is the discounted amount, and the NFC key counts what the
device signed. At a store of the same merchant that is not a member, the full amount. Balances
are asserted throughout; a ManualClock drives the day."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from mobipay.app.bootstrap import build
from mobipay.app.http import create_app
from mobipay.instore.alliances import Brand, Kind, Rule
from mobipay.instore.tables import alliance_privileges, nfc_keys
from mobipay.kernel.clock import ManualClock
from mobipay.platform.config import Settings
from mobipay.simulators.pos_terminal import PosTerminal
from tests.e2e.test_instore_nfc import NUMBER, START, World

OPS = "ops"
DAY = date(2026, 6, 1)
#: 8 % off from 10.00 (at most 50.00) for GoTone gold and above; double points for every GoTone.
RULES = [Rule(Brand.GOTONE, 2, Kind.PERCENT, 800, 1_000, 5_000), Rule(Brand.GOTONE, 0, Kind.POINTS, 20)]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def client(db_url: str, tmp_path: Path, clock: ManualClock) -> Iterator[TestClient]:
    settings = Settings(_env_file=None, database_url=db_url, operators=f"{OPS}:operations",  # type: ignore[call-arg]
                        merchant_key_file=tmp_path / "platform.pem", sms_console_file=tmp_path / "sms.log",
                        report_dir=tmp_path / "reports")
    with TestClient(create_app(settings, build(settings, clock=clock))) as c:
        yield c


def member_world(client: TestClient, clock: ManualClock, db_url: str, funds: int = 100_000) -> World:
    """The NFC world, its store enrolled in a programme, the payer a GoTone gold subscriber."""
    w = World(client, clock, db_url, funds=funds)
    a = w.c.alliances

    async def setup() -> None:
        p = await a.create_programme(code="gotone_vip", name="全球通VIP联盟", valid_from=START - timedelta(days=1),
                                     valid_until=START + timedelta(days=365), rules=RULES, actor=OPS)
        assert await a.enrol(p.id, w.shop.merchant_id, store_ids=[w.shop.store_id], actor=OPS) == 1
        await a.set_brand(NUMBER, "gotone", 2, actor=OPS)

    w.run(setup)
    return w


def figures(x: dict[str, Any]) -> tuple[Any, ...]:
    return x["result"], x["amount"], x["privilege"], x["charged"]


def privileges(w: World) -> list[tuple[str, str, int, int, int]]:
    async def work(uow: Any) -> list[tuple[str, str, int, int, int]]:
        p = alliance_privileges.c
        rows = await uow.conn.execute(select(p.trade_id, p.channel, p.amount, p.discount, p.points)
                                      .order_by(p.amount))
        return [(r.trade_id, r.channel, int(r.amount), int(r.discount), int(r.points)) for r in rows]

    return w.run(lambda: w.c.uow.run("privileges", work))  # type: ignore[no-any-return]


def key_used(w: World) -> tuple[int, int]:
    async def work(uow: Any) -> tuple[int, int]:
        k = nfc_keys.c
        row = (await uow.conn.execute(select(func.sum(k.used_taps), func.sum(k.used_amount))
                                      .where(k.token_id == w.token_id))).one()
        return int(row[0]), int(row[1])

    return w.run(lambda: w.c.uow.run("key", work))  # type: ignore[no-any-return]


def other_store_terminal(w: World) -> PosTerminal:
    """A second store of the same merchant, not enrolled, with its own card reader."""
    async def add() -> str:
        m = await w.c.merchants.merchant(w.shop.merchant_id)
        return await w.c.merchants.add_store(m, "人民广场店", "上海市人民大道1号")

    store_id = w.run(add)
    r = w.shop.api("/v1/merchant/terminals", store_id=store_id, label="POS-02")
    assert r.status_code == 201, r.text
    return PosTerminal(w.client, r.json()["terminal_id"], r.json()["private_key"], w.clock)


def test_online_and_offline_taps_get_the_privilege_and_settle_net(client: TestClient, clock: ManualClock,
                                                                   db_url: str) -> None:
    w = member_world(client, clock, db_url)
    points = w.c.alliances

    # online: 8 % of 23.72 is 1.89 (rounded down): the wallet pays 21.83, the merchant receives it
    r = w.pos.online_tap(w.device, "23.72")
    assert r.status_code == 200, r.text
    assert figures(r.json()) == ("accepted", 2372, 189, 2183) and w.pos.display == "APPROVED"
    assert w.balances() == (100_000 - 2183, 2183)
    online_trade = r.json()["trade_id"]
    trade = w.run(lambda: w.c.merchants.trade(online_trade))
    assert (trade.amount, trade.privilege, trade.store_id) == (2372, 189, w.shop.store_id)
    [row] = w.tap_rows()
    assert (row.amount, row.charged, row.trade_id) == (2372, 2183, online_trade)
    applied = w.run(lambda: points.applied(online_trade))
    assert applied is not None and (applied.channel, applied.discount, applied.points) == ("nfc", 189, 0)
    # the terminal retries (same Idempotency-Key): the same answer, paid and privileged once
    small = w.pos.read(w.device, 500)
    first = w.post_tap(small, "small-1")
    assert figures(first.json()) == ("accepted", 500, 0, 500)  # below 10.00: no discount, double points
    replay = w.post_tap(small, "small-1")
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.json() == first.json()
    assert w.balances() == (100_000 - 2683, 2683)
    assert [(c, a, d, p) for _, c, a, d, p in privileges(w)] == [("nfc", 500, 0, 10), ("nfc", 2372, 189, 0)]

    # offline: priced in the upload's check step, the ledger batch posts the discounted amounts
    w.pos.refresh_deny_list()
    w.pos.online = False
    for typed in ("12.00", "3.50"):
        assert w.pos.offline_tap(w.device, typed) == "APPROVED OFFLINE"
        clock.advance(60)
    stored = list(w.pos.stored)
    clock.advance(600)
    up = w.pos.upload().json()
    assert [figures(x) for x in up["results"]] == [("accepted", 1200, 96, 1104), ("accepted", 350, 0, 350)]
    assert w.balances() == (100_000 - 2683 - 1454, 2683 + 1454)
    uploaded = w.run(lambda: w.c.merchants.trade(up["results"][0]["trade_id"]))
    assert (uploaded.amount, uploaded.privilege) == (1200, 96)
    rows = {r.atc: r for r in w.tap_rows()}
    assert (rows[3].amount, rows[3].charged, rows[4].amount, rows[4].charged) == (1200, 1104, 350, 350)
    assert w.run(lambda: points.points(rows[3].user_id)) == 10 + 6  # 2× of 5 and of 3 whole yuan
    # uploaded again: duplicates with the same figures; nothing moves, no second privilege or points
    w.pos.stored = stored
    dup = w.pos.upload().json()
    assert [(x["result"], x["original"], x["privilege"], x["charged"]) for x in dup["results"]] == [
        ("duplicate", "accepted", 96, 1104), ("duplicate", "accepted", 0, 350)]
    assert w.balances() == (100_000 - 4137, 4137) and len(privileges(w)) == 4
    assert w.run(lambda: points.points(rows[3].user_id)) == 16
    # the key counts what the device signed (the amounts tapped), not what was charged
    assert key_used(w) == (4, 2372 + 500 + 1200 + 350)

    # a store of the same merchant that is not a member: the full amount, online and offline
    other = other_store_terminal(w)
    r = other.online_tap(w.device, "23.72")
    assert figures(r.json()) == ("accepted", 2372, 0, 2372), r.text
    other.refresh_deny_list()
    other.online = False
    assert other.offline_tap(w.device, "12.00") == "APPROVED OFFLINE"
    assert [figures(x) for x in other.upload().json()["results"]] == [("accepted", 1200, 0, 1200)]
    assert w.balances() == (100_000 - 4137 - 3572, 4137 + 3572) and len(privileges(w)) == 4

    # T+1: settled net of the privileges, the fee on what the merchant received
    statement = w.run(lambda: w.c.settlements.statement(w.shop.merchant_id, DAY))
    assert statement.count("privilege,") == 2 and ",-189," in statement and ",-96," in statement
    clock.set(datetime(2026, 6, 1, 16, 10, tzinfo=UTC))  # the Beijing day is over
    [s] = w.run(lambda: w.c.settlements.settle(DAY))
    fee_bps = w.run(lambda: w.c.merchants.merchant(w.shop.merchant_id)).fee_bps
    gross = 2183 + 500 + 1104 + 350 + 2372 + 1200
    fee = (gross * fee_bps + 5_000) // 10_000
    assert (s.merchant_id, s.gross, s.refunds, s.fee, s.net) == (w.shop.merchant_id, gross, 0, fee, gross - fee)
    assert w.merchant() == 0  # the payable held exactly what was settled
    assert run_verify(w)


def run_verify(w: World) -> bool:
    return bool(w.run(w.c.ledger.verify).ok)


def test_a_debt_is_the_discounted_amount(client: TestClient, clock: ManualClock, db_url: str) -> None:
    w = member_world(client, clock, db_url, funds=1_000)  # 10 CNY in the wallet
    w.pos.refresh_deny_list()
    w.pos.online = False
    # 10.50 is 9.66 after 8 % off (payable only thanks to it); 14.00 is 12.88: a debt of 12.88
    for typed in ("10.50", "14"):
        assert w.pos.offline_tap(w.device, typed) == "APPROVED OFFLINE"
        clock.advance(60)
    assert w.balances() == (1_000, 0)
    r = w.pos.upload().json()
    assert [figures(x) for x in r["results"]] == [("accepted", 1050, 84, 966), ("debt", 1400, 112, 1288)]
    assert w.balances() == (1_000 - 966, 966 + 1288)  # the merchant is paid the discounted amounts
    user_id = w.tap_rows()[0].user_id
    assert w.run(lambda: w.c.nfc_taps.owed(user_id)) == 1288
    assert [(a, d) for _, _, a, d, _ in privileges(w)] == [(1050, 84), (1400, 112)]
    assert key_used(w) == (2, 2450)  # the key counts the amounts tapped
    assert run_verify(w)
