"""Alliances and brand privileges over HTTP on both databases: a subscriber's brand and VIP
level get a member store's privilege when paying its QR codes (static and dynamic), the scan
previews it, the answer shows the price, the privilege and what was paid, the merchant is
settled net of it (the fee on what it received), points are recorded once per payment, and
every refusal moves nothing (balances before and after). A ManualClock drives the days."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from mobipay.app.bootstrap import Container, build
from mobipay.app.demo_alliances import load_demo_alliances
from mobipay.app.http import create_app
from mobipay.instore.alliances import Brand, Kind, Rule
from mobipay.instore.tables import alliance_members, alliance_privileges, subscriber_brands
from mobipay.kernel.clock import ManualClock
from mobipay.kernel.errors import MobipayError
from mobipay.ledger.chart import FEE_INCOME, SETTLEMENT_IN_TRANSIT
from mobipay.platform.config import Settings
from tests.conftest import BANK_SECRET
from tests.e2e.test_instore_qr_api import PIN, Shop, pay, payer, scan
from tests.e2e.test_wallet_api import balance, bearer, login_by_sms
from tests.e2e.test_web_wallet import sign_in

START = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)  # 10:00 in Beijing
OPS = "ops"
YEAR = timedelta(days=365)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def client(db_url: str, tmp_path: Path, clock: ManualClock, bank: str) -> Iterator[TestClient]:
    roster = f"rev:merchant_review;risk:risk;{OPS}:operations"
    settings = Settings(_env_file=None, database_url=db_url, operators=roster,  # type: ignore[call-arg]
                        merchant_key_file=tmp_path / "platform.pem", bank_url=bank, bank_secret=BANK_SECRET,
                        report_dir=tmp_path / "reports")
    with TestClient(create_app(settings, build(settings, clock=clock))) as c:
        wallet = c.app.state.container.wallet  # type: ignore[attr-defined]
        wallet.limits = replace(wallet.limits, tier1_lifetime=10_000_000)
        yield c


def container(client: TestClient) -> Container:
    found: Container = client.app.state.container  # type: ignore[attr-defined]
    return found


def run(client: TestClient, work: Any) -> Any:
    return client.portal.call(work)  # type: ignore[union-attr]


def refused(client: TestClient, work: Any) -> MobipayError:
    with pytest.raises(MobipayError) as info:
        run(client, work)
    return info.value


def rows(client: TestClient, table: Any) -> int:
    async def count() -> int:
        async with container(client).db.begin() as conn:
            return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())

    return int(run(client, count))


def programme(client: TestClient, code: str, rules: list[Rule], *, start: datetime = START - timedelta(days=1),
              end: datetime = START + YEAR) -> str:
    a = container(client).alliances
    made = run(client, lambda: a.create_programme(code=code, name=f"{code} 联盟", valid_from=start, valid_until=end,
                                                   rules=rules, actor=OPS))
    return str(made.id)


def enrol(client: TestClient, programme_id: str, shop: Shop, **kw: Any) -> int:
    a = container(client).alliances
    return int(run(client, lambda: a.enrol(programme_id, shop.id, actor=OPS, **kw)))


def brand(client: TestClient, number: str, b: str, level: int = 0) -> None:
    a = container(client).alliances
    run(client, lambda: a.set_brand(number, b, level, actor=OPS))


def payable(client: TestClient, shop: Shop) -> int:
    return shop.balance()


def test_privilege_previewed_applied_and_settled_net(client: TestClient, db_url: str, clock: ManualClock) -> None:
    shop = Shop(client, clock, "华新便利店", 1)
    store = shop.store("南京路店", "上海")
    vip = programme(client, "gotone_vip", [Rule(Brand.GOTONE, 1, Kind.PERCENT, 500, 0, 2_000),
                                           Rule(Brand.GOTONE, 2, Kind.PERCENT, 800, 0, 5_000)])
    assert enrol(client, vip, shop) == 1 and enrol(client, vip, shop) == 0  # enrolled once
    buyer = payer(client, db_url, "13900139000")
    brand(client, "13900139000", "gotone", 2)  # 全球通金卡
    before = balance(client, buyer)

    # a dynamic code: the scan previews 8 % off 88.00 = 7.04 (rounded down to the fen)
    created = shop.trade("HX-1", 8_800, store)
    seen = scan(client, buyer, created["emv_qr"]).json()
    assert seen["privilege"]["discount"]["amount"] == 704 and seen["privilege"]["pay"]["amount"] == 8_096
    assert seen["privilege"]["programme_id"] == vip and seen["privilege"]["brand"] == "gotone"
    assert [o["rule"]["value"] for o in seen["offers"]] == [500, 800]  # silver's and gold's: both mine
    r = pay(client, buyer, created["emv_qr"], "k-1", pin=PIN, scan_id=seen["scan_id"])
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["amount"]["amount"], body["paid"]["amount"]) == (8_800, 8_096)
    assert body["privilege"]["discount"]["amount"] == 704 and body["privilege"]["level"] == 2
    assert body["privilege"]["text"] == "立减8%，最高50.00元（金卡及以上）"
    assert balance(client, buyer) == before - 8_096 and payable(client, shop) == 8_096
    again = pay(client, buyer, created["emv_qr"], "k-2", pin=PIN)  # a retry: the same answer, paid once
    assert again.status_code == 200 and again.json()["privilege"] == body["privilege"]
    assert balance(client, buyer) == before - 8_096 and rows(client, alliance_privileges) == 1
    # the merchant's query sees the price and what it received
    trade = run(client, lambda: container(client).merchants.trade(created["trade_no"]))
    assert (trade.amount, trade.privilege) == (8_800, 704)

    # a static code: the payer types the amount (400.00 CNY: 8 % is 32.00, under the 50.00 cap)
    code = shop.store_code(store)
    seen = scan(client, buyer, code).json()
    assert seen["privilege"] is None and len(seen["offers"]) == 2  # no amount yet: the offers
    seen = client.post("/v1/instore/scans", headers=bearer(buyer), json={"payload": code, "amount": 40_000}).json()
    assert seen["privilege"]["discount"]["amount"] == 3_200
    r = pay(client, buyer, code, "k-3", amount=40_000, pin=PIN)
    assert r.status_code == 201, r.text
    assert (r.json()["paid"]["amount"], r.json()["privilege"]["discount"]["amount"]) == (36_800, 3_200)
    assert balance(client, buyer) == before - 8_096 - 36_800 and payable(client, shop) == 8_096 + 36_800

    # the ledger: every posting balanced, the merchant credited what the payer paid
    c = container(client)
    assert run(client, c.ledger.verify).ok
    legs = run(client, lambda: c.ledger.transfer(f"trade:{created['trade_no']}")).legs
    assert sorted((leg.side.value, leg.amount) for leg in legs) == [("C", 8_096), ("D", 8_096)]

    # a refund gives back at most what was paid (the privilege was never paid)
    merchant = _merchant(client, shop)
    error = refused(client, lambda: c.merchants.refund(merchant, "HX-1", "R-1", 8_097))
    assert error.code == "REFUND_EXCEEDS_PAID"
    assert balance(client, buyer) == before - 8_096 - 36_800 and payable(client, shop) == 8_096 + 36_800

    # T+1: settled net of the privileges, the fee on what the merchant received
    clock.set(datetime(2026, 6, 1, 16, 10, tzinfo=UTC))  # 00:10 on the 2nd in Beijing
    [s] = run(client, lambda: c.settlements.settle(date(2026, 6, 1)))
    fee_bps = _merchant(client, shop).fee_bps
    gross = 8_096 + 36_800
    fee = (gross * fee_bps + 5_000) // 10_000
    assert (s.gross, s.refunds, s.fee, s.net, s.state) == (gross, 0, fee, gross - fee, "paid")
    assert payable(client, shop) == 0  # the payable held exactly what was settled
    fees = run(client, lambda: c.ledger.accounts([FEE_INCOME, SETTLEMENT_IN_TRANSIT]))
    assert fees[FEE_INCOME].balance == fee
    assert s.report is not None
    text = s.report.read_text(encoding="utf-8")
    assert "privilege,HX-1,-704,0" in text and "payment,HX-1,8800," in text
    statement = run(client, lambda: c.settlements.statement(shop.id, date(2026, 6, 1)))
    assert ",HX-1,,-704," in statement and statement.count("privilege,") == 2  # both payments
    assert run(client, c.ledger.verify).ok


def _merchant(client: TestClient, shop: Shop) -> Any:
    return run(client, lambda: container(client).merchants.merchant(shop.id))


def test_best_privilege_points_and_validity(client: TestClient, db_url: str, clock: ManualClock) -> None:
    shop = Shop(client, clock, "校园书店", 2)
    campus = shop.store("大学城店", "广州")
    other = shop.store("天河店", "广州")
    m = programme(client, "mzone_campus", [Rule(Brand.MZONE, 0, Kind.PERCENT, 1_200, 1_000, 1_000),
                                           Rule(Brand.MZONE, 0, Kind.FIXED, 300, 2_000)])
    pts = programme(client, "pay_alliance", [Rule(Brand.MZONE, 0, Kind.POINTS, 20),
                                             Rule(Brand.EASYOWN, 0, Kind.POINTS, 15)])
    later = programme(client, "later", [Rule(Brand.MZONE, 0, Kind.PERCENT, 5_000)],
                      start=START + timedelta(days=10))  # not valid yet
    assert enrol(client, m, shop, store_ids=[campus]) == 1
    assert enrol(client, pts, shop) == 2 and enrol(client, later, shop) == 2
    student = payer(client, db_url, "13700137000")
    brand(client, "13700137000", "mzone")
    grandma = payer(client, db_url, "13600136000")
    brand(client, "13600136000", "easyown")
    before = (balance(client, student), balance(client, grandma))

    # 25.00 CNY at the campus store: 12 % is 3.00, the fixed rule 3.00 too: the first rule wins the tie
    r = pay(client, student, shop.store_code(campus), "s-1", amount=2_500)
    assert r.json()["privilege"]["kind"] == "percent" and r.json()["paid"]["amount"] == 2_200
    # 50.00: 12 % is 6.00 but capped at 10.00 → 6.00; the fixed rule gives 3.00: 6.00
    r = pay(client, student, shop.store_code(campus), "s-2", amount=5_000)
    assert r.json()["privilege"]["discount"]["amount"] == 600
    # at the other store only the points programme: 2× points of 45 whole yuan, nothing off
    r = pay(client, student, shop.store_code(other), "s-3", amount=4_599)
    assert r.json()["privilege"]["kind"] == "points" and r.json()["privilege"]["points"] == 90
    assert r.json()["paid"]["amount"] == 4_599
    # Easy-own: 1.5× points of 33 yuan = 49 (rounded down)
    r = pay(client, grandma, shop.store_code(campus), "g-1", amount=3_300)
    assert r.json()["privilege"]["points"] == 49
    assert balance(client, student) == before[0] - 2_200 - 4_400 - 4_599
    assert balance(client, grandma) == before[1] - 3_300
    a = container(client).alliances
    student_id = _user(client, "13700137000")
    assert run(client, lambda: a.points(student_id)) == 90

    # the later programme starts: 50 % off beats the others
    clock.set(START + timedelta(days=10))
    student = login_by_sms(client, db_url, "13700137000", "phone")  # a new session ten days on
    r = pay(client, student, shop.store_code(other), "s-4", amount=1_000)
    assert r.json()["privilege"]["programme_id"] == later and r.json()["paid"]["amount"] == 500
    # the operator ends it: full price again (audited)
    run(client, lambda: a.update_programme(later, state="ended", actor=OPS))
    r = pay(client, student, shop.store_code(other), "s-5", amount=1_000)
    assert r.json()["privilege"]["kind"] == "points" and r.json()["paid"]["amount"] == 1_000
    # a subscriber without a brand gets nothing
    nobody = payer(client, db_url, "13500135000")
    r = pay(client, nobody, shop.store_code(campus), "n-1", amount=5_000)
    assert r.json()["privilege"] is None and r.json()["paid"]["amount"] == 5_000


def _user(client: TestClient, number: str) -> str:
    user = run(client, lambda: container(client).wallet.user_by_msisdn(f"+86{number}"))
    return str(user.id)


def test_every_refusal_moves_nothing(client: TestClient, db_url: str, clock: ManualClock) -> None:
    shop = Shop(client, clock, "华新便利店", 3)
    store = shop.store("南京路店", "上海")
    a = container(client).alliances
    vip = programme(client, "vip", [Rule(Brand.GOTONE, 0, Kind.PERCENT, 1_000)])
    enrol(client, vip, shop)
    buyer = payer(client, db_url, "13900139000")
    brand(client, "13900139000", "gotone")

    def still(expect_buyer: int, expect_shop: int, privileges: int) -> None:
        assert balance(client, buyer) == expect_buyer and payable(client, shop) == expect_shop
        assert rows(client, alliance_privileges) == privileges

    start = balance(client, buyer)
    code = shop.store_code(store)
    # the PIN is asked on the price (20,000.00 > the password-free amount), not on what is paid
    r = pay(client, buyer, code, "r-1", amount=2_000_000)
    assert r.status_code in (401, 403, 422) and r.json()["code"] == "PIN_REQUIRED", r.text
    still(start, 0, 0)
    # the static daily limit (500 CNY) counts what is paid: 555.55 less 10 % = 500.00 passes...
    r = pay(client, buyer, code, "r-2", amount=55_555, pin=PIN)
    assert r.status_code == 201 and r.json()["paid"]["amount"] == 50_000, r.text
    still(start - 50_000, 50_000, 1)
    # ...and 1.00 more is refused, its privilege row rolled back with the payment
    r = pay(client, buyer, code, "r-3", amount=100, pin=PIN)
    assert r.json()["code"] == "QR_STATIC_DAILY_LIMIT", r.text
    still(start - 50_000, 50_000, 1)
    # a balance too small for the price but enough for what is paid: the privilege pays it
    poor = payer(client, db_url, "13800138001", 900)
    brand(client, "13800138001", "gotone")
    r = pay(client, poor, code, "p-1", amount=1_000)
    assert r.status_code == 201 and balance(client, poor) == 0, r.text
    r = pay(client, poor, code, "p-2", amount=100)  # nothing left: refused, nothing moved
    assert r.json()["code"] == "INSUFFICIENT_FUNDS", r.text
    assert balance(client, poor) == 0 and payable(client, shop) == 50_900 and rows(client, alliance_privileges) == 2

    # the operator's refusals change nothing
    programmes = len(run(client, a.programmes))
    bad = [(lambda: a.create_programme(code="vip", name="again", valid_from=START, valid_until=START + YEAR,
                                       actor=OPS), "ALLIANCE_EXISTS"),
           (lambda: a.create_programme(code="x", name="x", valid_from=START, valid_until=START + YEAR,
                                       rules=[Rule(Brand.MZONE, 2, Kind.PERCENT, 500)], actor=OPS),
            "ALLIANCE_INVALID"),  # a VIP level for M-Zone
           (lambda: a.create_programme(code="x", name="x", valid_from=START, valid_until=START + YEAR,
                                       rules=[Rule(Brand.GOTONE, 0, Kind.FIXED, 500, 500)], actor=OPS),
            "ALLIANCE_INVALID"),  # a fixed discount as large as the least spend
           (lambda: a.create_programme(code="x", name="x", valid_from=START, valid_until=START, actor=OPS),
            "ALLIANCE_INVALID"),
           (lambda: a.create_programme(code="x", name="x", valid_from=START, valid_until=START + YEAR, actor="rev"),
            "ROLE_REQUIRED"),
           (lambda: a.enrol("aln_none", shop.id, actor=OPS), "ALLIANCE_NOT_FOUND"),
           (lambda: a.enrol(vip, shop.id, actor=OPS, city="北京"), "ALLIANCE_INVALID"),
           (lambda: a.enrol(vip, "mch_none", actor=OPS), "ALLIANCE_INVALID"),
           (lambda: a.set_brand("13900139000", "vodafone", 0, actor=OPS), "ALLIANCE_INVALID"),
           (lambda: a.set_brand("13900139000", "gotone", 7, actor=OPS), "ALLIANCE_INVALID")]
    for work, code_ in bad:
        assert refused(client, work).code == code_
    assert len(run(client, a.programmes)) == programmes and rows(client, alliance_members) == 1
    assert run(client, lambda: a.brand_of("+8613900139000")) == (Brand.GOTONE, 0)
    r = client.get("/v1/instore/alliances", headers=bearer(buyer), params={"brand": "vodafone"})
    assert r.status_code == 400 and r.json()["code"] == "ALLIANCE_INVALID"
    still(start - 50_000, 50_900, 2)


def test_directory_crm_import_and_web_page(client: TestClient, db_url: str, clock: ManualClock) -> None:
    a = container(client).alliances
    shop = Shop(client, clock, "华新便利店", 4)
    sh, bj = shop.store("南京路店", "上海"), shop.store("王府井店", "北京")
    cafe = Shop(client, clock, "Starbucks 星巴克", 5)
    cafe.store("静安店", "上海")
    vip = programme(client, "vip", [Rule(Brand.GOTONE, 2, Kind.PERCENT, 800), Rule(Brand.MZONE, 0, Kind.POINTS, 20)])
    enrol(client, vip, shop, store_ids=[sh, bj])
    enrol(client, vip, cafe)
    report = run(client, lambda: a.import_brands(
        "msisdn,brand,level\n13900139000,全球通,3\n13700137000,mzone,0\nnot-a-number,gotone,1\n"
        "13600136000,easyown,2\n", actor=OPS))
    assert report.imported == 2 and [n for n, _ in report.refused] == [4, 5]
    assert rows(client, subscriber_brands) == 2
    buyer = payer(client, db_url, "13900139000")
    r = client.get("/v1/instore/alliances", headers=bearer(buyer), params={"city": "上海"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["me"] == {"brand": "gotone", "brand_name": "全球通", "level": 3, "points": 0}
    assert sorted(s["store_name"] for s in body["stores"]) == sorted(["南京路店", "静安店"])
    assert all(len(s["privileges"]) == 1 and s["privileges"][0]["kind"] == "percent" for s in body["stores"])
    r = client.get("/v1/instore/alliances", headers=bearer(buyer), params={"brand": "mzone", "category": "5411"})
    assert {s["city"] for s in r.json()["stores"]} == {"上海", "北京"}
    assert all(s["privileges"][0]["kind"] == "points" for s in r.json()["stores"])
    r = client.get("/v1/instore/alliances", headers=bearer(buyer), params={"brand": "easyown"})
    assert r.json()["stores"] == []
    page = client.get("/v1/instore/alliances", headers=bearer(buyer), params={"limit": 1, "brand": "all"}).json()
    assert len(page["stores"]) == 1 and page["more"] is True
    filters = client.get("/v1/instore/alliances/filters", headers=bearer(buyer)).json()
    assert sorted(filters["cities"]) == sorted(["上海", "北京"])

    # the mobile web wallet's directory page
    sign_in(client, db_url, "13900139000")
    html = client.get("/m/alliances", params={"city": "北京"})
    assert html.status_code == 200, html.text
    assert "王府井店" in html.text and "南京路店" not in html.text and "立减8%" in html.text
    assert "全球通" in html.text


def test_demo_loader_enrols_every_store_in_bulk(client: TestClient, db_url: str, clock: ManualClock) -> None:
    shops = [Shop(client, clock, f"演示商户{i}", 10 + i) for i in range(3)]
    for i, s in enumerate(shops):
        s.store(f"店{i}a", "上海")
        s.store(f"店{i}b", "成都")
    numbers = ["+8613900139000", "+8613700137000", "13600136000"]
    report = run(client, lambda: load_demo_alliances(container(client), msisdns=numbers))
    assert report.programmes == 4 and report.subscribers == 3
    assert report.memberships >= 6  # every store is in the payment alliance
    again = run(client, lambda: load_demo_alliances(container(client), msisdns=numbers))
    assert again.memberships == 0 and rows(client, alliance_members) == report.memberships
    codes = {p.code for p, _ in run(client, container(client).alliances.programmes)}
    assert codes == {"gotone_vip", "mzone_campus", "alliance_12580", "pay_alliance"}
    assert run(client, lambda: container(client).alliances.brand_of("+8613600136000")) is not None


def test_operator_cli(tmp_path: Path) -> None:
    """The operator's commands (SQLite only: the CLI is the same on both databases)."""
    import os
    import subprocess
    import sys

    db = tmp_path / "mobipay.db"
    env = {**os.environ, "MOBIPAY_DATABASE_URL": f"sqlite+aiosqlite:///{db}", "MOBIPAY_LOG_LEVEL": "WARNING",
           "MOBIPAY_OPERATORS": "ops:operations"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mobipay.app.cli", *args], capture_output=True, text=True,
                              env=env, timeout=120, check=False)

    assert cli("db", "upgrade").returncode == 0
    made = cli("alliances", "create", "gotone_vip", "--name", "全球通VIP联盟", "--from", "2026-12-01", "--until",
               "2027-11-30", "--rule", "gotone:2:percent:800:0:5000", "--rule", "gotone:0:points:20", "--actor", "ops")
    assert made.returncode == 0 and "gotone_vip (2 rules)" in made.stdout, made.stderr
    bad = cli("alliances", "create", "x", "--name", "x", "--from", "2026-12-01", "--until", "2027-11-30",
              "--rule", "mzone:3:percent:800", "--actor", "ops")
    assert bad.returncode != 0 and "VIP levels" in bad.stderr + bad.stdout
    nobody = cli("alliances", "create", "y", "--name", "y", "--from", "2026-12-01", "--until", "2027-11-30",
                 "--actor", "eve")
    assert nobody.returncode != 0 and "operations" in nobody.stderr + nobody.stdout
    listed = cli("alliances", "list")
    assert "gotone_vip" in listed.stdout and "立减8%，最高50.00元（金卡及以上）" in listed.stdout
    assert " x " not in listed.stdout and " y " not in listed.stdout
    crm = tmp_path / "crm.csv"
    crm.write_text("msisdn,brand,level\n13900139000,全球通,2\n13700137000,动感地带,1\n", encoding="utf-8")
    imported = cli("alliances", "import-brands", str(crm), "--actor", "ops")
    assert "1 subscribers imported, 1 lines refused" in imported.stdout and "line 3" in imported.stderr
    ended = cli("alliances", "update", "gotone_vip", "--state", "ended", "--actor", "ops")
    assert ended.returncode == 0 and "ended" in ended.stdout


def test_privilege_at_micropay_by_payment_code(client: TestClient, db_url: str, clock: ManualClock) -> None:
    """The payment code path applies the same privilege: the till charges the price, the payer
    pays the price less the privilege, the merchant receives and is settled on what was paid."""
    from tests.e2e.test_instore_micropay import Till, applet, shop_balance
    from tests.e2e.test_instore_terminals import Shop as TerminalShop

    shop = TerminalShop(client, clock)
    till = Till(shop)
    campus = programme(client, "mzone_campus", [Rule(Brand.MZONE, 0, Kind.FIXED, 300, 1_000, 0)])
    a = container(client).alliances
    assert run(client, lambda: a.enrol(campus, shop.merchant_id, actor=OPS)) == 1
    who = payer(client, db_url, "13900139000")
    phone = applet(client, clock, who)
    before = balance(client, who)

    r = till.charge("MP-0", phone.code(), 800)  # under the rule's minimum of 10.00 CNY: the full price
    assert r.status_code == 200 and (r.json()["privilege"], r.json()["paid"]) == (0, 800), r.text
    brand(client, "13900139000", "mzone")  # 动感地带
    clock.advance(30)
    r = till.charge("MP-1", phone.code(), 2_500)
    assert r.status_code == 200, r.text
    paid = r.json()
    assert (paid["state"], paid["amount"], paid["privilege"], paid["paid"]) == ("SUCCESS", 2_500, 300, 2_200)
    assert balance(client, who) == before - 800 - 2_200 and shop_balance(shop) == 800 + 2_200
    trade = run(client, lambda: container(client).merchants.trade(paid["trade_no"]))
    assert (trade.amount, trade.privilege) == (2_500, 300)
    retry = till.charge("MP-1", phone.code(), 2_500)  # the till's retry: the same order, charged once
    assert retry.status_code == 200 and retry.json()["paid"] == 2_200 and rows(client, alliance_privileges) == 1
    assert balance(client, who) == before - 3_000
