"""The rural marketplace's staff and sellers over HTTP (SQLite and PostgreSQL): operator staff
list open disputes with their deadlines and decide one (refund or release, with a reason,
once, with an Idempotency-Key), refused to anyone without the operations role; the console's
disputes page; sellers, signed in with their own wallet, list and change their products, see
their orders and ship them (idempotent), never another seller's; the CLI. Escrow, wallets and
the platform's fees asserted after every decision; refusals are problem+json and change
nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from mobipay.app.bootstrap import Container, build
from mobipay.app.cli import app as cli_app
from mobipay.app.http import create_app
from mobipay.kernel.clock import ManualClock
from mobipay.platform.config import DEMO_ADMIN_TOKEN, Settings
from mobipay.rural.logistics_http import HttpLogistics
from mobipay.rural.market import ESCROW, MARKET_FEES
from mobipay.simulators.logistics import create_logistics_app
from tests.e2e.test_protection_api import problem
from tests.e2e.test_wallet_api import bearer, login_by_sms
from tests.integration.test_rural_agents import funded, money

NOW = datetime(2026, 11, 10, 2, 0, tzinfo=UTC)
COOP, OTHER, BUYER = "13500135001", "13500135002", "13900139001"
ADMIN = {"Authorization": f"Bearer {DEMO_ADMIN_TOKEN}"}
OLGA, RITA = {**ADMIN, "X-Operator": "olga"}, {**ADMIN, "X-Operator": "rita"}
RICE = {
    "title": "灰汤贡米 5kg",
    "price": 6_800,
    "unit": "袋",
    "stock": 10,
    "origin": "湖南宁乡灰汤镇",
    "photos": ["/static/rice.jpg"],
    "delivery": ["宁乡县", "长沙市区"],
}


@pytest.fixture
def live(db_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, Container]]:
    settings = Settings(
        _env_file=None,
        database_url=db_url,
        operators="olga:operations;rita:risk",
        merchant_key_file=tmp_path / "platform.pem",
        report_dir=tmp_path / "reports",
    )
    container = build(settings, clock=ManualClock(NOW))
    carrier = create_logistics_app("k")  # the logistics SIMULATOR in process, the marketplace's real client
    with TestClient(create_app(settings, container)) as c:
        container.rural_market.logistics = HttpLogistics(
            "http://logistics", "k", transport=httpx.ASGITransport(app=carrier)
        )
        yield c, container


async def _market(c: Container) -> tuple[str, str, str]:
    """Two sellers (the co-op with rice) and a buyer with 500 CNY; answers the rice's id."""
    await c.ensure_system_accounts()
    await funded(c, "+86" + COOP, 0)
    await funded(c, "+86" + OTHER, 0)
    await funded(c, "+86" + BUYER, 50_000)
    coop = await c.rural_market.add_seller(COOP, "东鹜村水稻合作社", "coop", "宁乡县")
    other = await c.rural_market.add_seller(OTHER, "沩山茶农", "farmer", "宁乡县")
    rice = await c.rural_market.list_product(coop, **RICE)  # type: ignore[arg-type]
    return coop, other, rice.id


def _books(client: TestClient, c: Container) -> list[int]:
    """Buyer, escrow, co-op, fees."""
    codes = ("wallet:+86" + BUYER, ESCROW, "wallet:+86" + COOP, MARKET_FEES)
    return client.portal.call(money, c, *codes)  # type: ignore[union-attr]


def _order(client: TestClient, buyer: dict[str, str], product: str, key: str, quantity: int = 1) -> str:
    r = client.post(
        "/v1/rural/orders",
        headers={**bearer(buyer), "Idempotency-Key": key},
        json={"product_id": product, "quantity": quantity, "county": "宁乡县", "address": "东鹜村 3 号"},
    )
    assert r.status_code == 201, r.text
    oid: str = r.json()["id"]
    return oid


def _dispute(client: TestClient, buyer: dict[str, str], oid: str, reason: str) -> None:
    r = client.post(f"/v1/rural/orders/{oid}/dispute", headers=bearer(buyer), json={"reason": reason})
    assert r.status_code == 200 and r.json()["state"] == "disputed", r.text


def test_staff_list_and_decide_disputes_once(live: tuple[TestClient, Container], db_url: str) -> None:
    client, c = live
    _, _, rice = client.portal.call(_market, c)  # type: ignore[union-attr]
    buyer = login_by_sms(client, db_url, BUYER, "b")
    refunded, released, open_ = (_order(client, buyer, rice, k) for k in ("o1", "o2", "o3"))
    _dispute(client, buyer, refunded, "米发霉了")
    c.clock.advance(600)  # type: ignore[attr-defined]  # (the access token lives 15 minutes)
    _dispute(client, buyer, released, "没收到")
    assert _books(client, c) == [50_000 - 3 * 6_800, 3 * 6_800, 0, 0]

    # nobody but operator staff with the operations role
    problem(client.get("/v1/rural/disputes"), 401, "UNAUTHORIZED")
    problem(client.get("/v1/rural/disputes", headers=bearer(buyer)), 401, "UNAUTHORIZED")
    problem(client.get("/v1/rural/disputes", headers=ADMIN), 400, "VALIDATION_FAILED")  # no X-Operator
    problem(client.get("/v1/rural/disputes", headers=RITA), 403, "ROLE_REQUIRED")
    decide = f"/v1/rural/disputes/{refunded}/decision"
    refund = {"decision": "refund", "reason": "照片为证"}
    problem(client.post(decide, headers={**RITA, "Idempotency-Key": "r"}, json=refund), 403, "ROLE_REQUIRED")
    problem(client.post(decide, headers={**bearer(buyer), "Idempotency-Key": "r"}, json=refund), 401, "UNAUTHORIZED")

    listed = client.get("/v1/rural/disputes", headers=OLGA)
    assert listed.status_code == 200, listed.text
    assert [(d["order_id"], d["reason"], d["amount"]["amount"]) for d in listed.json()] == [
        (refunded, "米发霉了", 6_800),
        (released, "没收到", 6_800),
    ]  # nearest deadline first
    first = listed.json()[0]
    assert datetime.fromisoformat(first["decide_by"]) == NOW + timedelta(days=5)
    assert (first["seller"], first["title"], first["paid_by"]) == ("东鹜村水稻合作社", "灰汤贡米 5kg", "wallet")

    # bad input: specific problems, nothing changed
    problem(client.post(decide, headers=OLGA, json=refund), 400, "IDEMPOTENCY_KEY_REQUIRED")
    problem(
        client.post(decide, headers={**OLGA, "Idempotency-Key": "k1"}, json={"decision": "maybe", "reason": "xx"}),
        400,
        "VALIDATION_FAILED",
    )
    problem(
        client.post(decide, headers={**OLGA, "Idempotency-Key": "k1"}, json={"decision": "refund"}),
        400,
        "VALIDATION_FAILED",
    )
    problem(
        client.post(f"/v1/rural/disputes/{open_}/decision", headers={**OLGA, "Idempotency-Key": "k1"}, json=refund),
        409,
        "RURAL_ORDER_STATE",
    )  # not disputed
    problem(
        client.post("/v1/rural/disputes/rmo_nothing/decision", headers={**OLGA, "Idempotency-Key": "k1"}, json=refund),
        404,
        "RURAL_ORDER_NOT_FOUND",
    )
    assert _books(client, c) == [50_000 - 3 * 6_800, 3 * 6_800, 0, 0]

    # refund: the buyer's money and the stock back
    r = client.post(decide, headers={**OLGA, "Idempotency-Key": "k1"}, json=refund)
    assert r.status_code == 200 and r.json()["state"] == "refunded", r.text
    assert "Idempotent-Replayed" not in r.headers
    assert _books(client, c) == [50_000 - 2 * 6_800, 2 * 6_800, 0, 0]
    again = client.post(decide, headers={**OLGA, "Idempotency-Key": "k1"}, json=refund)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true", again.text
    release = {"decision": "release", "reason": "改判"}
    problem(client.post(decide, headers={**OLGA, "Idempotency-Key": "k1"}, json=release), 409, "IDEMPOTENCY_CONFLICT")
    problem(client.post(decide, headers={**OLGA, "Idempotency-Key": "k2"}, json=release), 409, "RURAL_DISPUTE_DECIDED")
    problem(client.post(decide, headers={**OLGA, "Idempotency-Key": "k3"}, json=refund), 409, "RURAL_DISPUTE_DECIDED")
    assert _books(client, c) == [50_000 - 2 * 6_800, 2 * 6_800, 0, 0]
    assert client.portal.call(c.rural_market.product, rice).stock == 10 - 2  # type: ignore[union-attr]

    # release: the seller paid less the 3% fee
    r = client.post(
        f"/v1/rural/disputes/{released}/decision",
        headers={**OLGA, "Idempotency-Key": "k4"},
        json={"decision": "release", "reason": "物流签收记录为证"},
    )
    assert r.status_code == 200 and r.json()["state"] == "released", r.text
    assert _books(client, c) == [50_000 - 2 * 6_800, 6_800, 6_800 - 204, 204]
    problem(
        client.post(f"/v1/rural/disputes/{released}/decision", headers={**OLGA, "Idempotency-Key": "k5"}, json=refund),
        409,
        "RURAL_DISPUTE_DECIDED",
    )
    assert _books(client, c) == [50_000 - 2 * 6_800, 6_800, 6_800 - 204, 204]
    assert client.get("/v1/rural/disputes", headers=OLGA).json() == []
    assert client.portal.call(c.ledger.verify).ok  # type: ignore[union-attr]


def test_console_page_lists_and_decides_disputes(live: tuple[TestClient, Container], db_url: str) -> None:
    from tests.e2e.test_console import PASSWORD, csrf, sign_in

    client, c = live
    _, _, rice = client.portal.call(_market, c)  # type: ignore[union-attr]

    async def staff(c: Container) -> None:
        for name, roles in (("ola", ("operations",)), ("rick", ("risk",))):
            await c.operators.create(name, PASSWORD, roles, actor="t", reason="test operator")

    client.portal.call(staff, c)  # type: ignore[union-attr]
    buyer = login_by_sms(client, db_url, BUYER, "b")
    oid = _order(client, buyer, rice, "o1")
    _dispute(client, buyer, oid, "米发霉了")

    sign_in(client, "rick")
    assert client.get("/console/rural/disputes").status_code == 403  # risk alone does not decide disputes
    sign_in(client, "ola")
    page = client.get("/console/rural/disputes")
    assert page.status_code == 200 and oid in page.text and "米发霉了" in page.text, page.text
    key = page.text.split('name="key" value="')[1].split('"')[0]
    form = {"csrf": csrf(page.text), "decision": "refund", "key": key}
    r = client.post(f"/console/rural/disputes/{oid}", data={**form, "reason": ""})
    assert r.status_code == 400 and "RURAL_INVALID" in r.text  # a reason is required
    r = client.post(f"/console/rural/disputes/{oid}", data={**form, "reason": "照片为证"})
    assert r.status_code == 200 and f"{oid}: refunded" in r.text, r.text
    r = client.post(f"/console/rural/disputes/{oid}", data={**form, "reason": "照片为证"})  # sent twice: one decision
    assert r.status_code == 200 and f"{oid}: refunded" in r.text, r.text
    assert _books(client, c) == [50_000, 0, 0, 0]
    r = client.post(
        f"/console/rural/disputes/{oid}", data={**form, "key": "another", "decision": "release", "reason": "改判"}
    )
    assert r.status_code == 409 and "RURAL_DISPUTE_DECIDED" in r.text
    assert _books(client, c) == [50_000, 0, 0, 0]
    assert "/console/rural/disputes" in client.get("/console/rural").text


def test_sellers_manage_products_and_ship_their_own_orders(live: tuple[TestClient, Container], db_url: str) -> None:
    client, c = live
    _, _, rice = client.portal.call(_market, c)  # type: ignore[union-attr]
    coop = login_by_sms(client, db_url, COOP, "s")
    other = login_by_sms(client, db_url, OTHER, "t")
    buyer = login_by_sms(client, db_url, BUYER, "b")
    problem(client.get("/v1/rural/seller/products"), 401, "SESSION_INVALID")
    problem(client.get("/v1/rural/seller/products", headers=bearer(buyer)), 403, "RURAL_NOT_SELLER")
    me = client.get("/v1/rural/seller", headers=bearer(coop)).json()
    assert (me["name"], me["kind"]) == ("东鹜村水稻合作社", "coop")

    # products: listed with an Idempotency-Key, changed, refused when wrong
    tea = {"title": "沩山毛尖 250g", "price": 12_800, "unit": "盒", "stock": 5, "origin": "湖南宁乡沩山"}
    add = "/v1/rural/seller/products"
    problem(client.post(add, headers=bearer(coop), json=tea), 400, "IDEMPOTENCY_KEY_REQUIRED")
    problem(
        client.post(add, headers={**bearer(coop), "Idempotency-Key": "p"}, json={**tea, "price": 0}),
        400,
        "RURAL_INVALID",
    )
    problem(
        client.post(add, headers={**bearer(coop), "Idempotency-Key": "p"}, json={**tea, "photos": ["ftp://x"]}),
        400,
        "RURAL_INVALID",
    )
    problem(
        client.post(add, headers={**bearer(coop), "Idempotency-Key": "p"}, json={**tea, "price": 1.5}),
        400,
        "VALIDATION_FAILED",
    )
    r = client.post(add, headers={**bearer(coop), "Idempotency-Key": "p"}, json=tea)
    assert r.status_code == 201 and r.json()["delivery"] == ["*"], r.text
    tea_id = r.json()["id"]
    again = client.post(add, headers={**bearer(coop), "Idempotency-Key": "p"}, json=tea)
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true" and again.json()["id"] == tea_id
    problem(
        client.post(add, headers={**bearer(coop), "Idempotency-Key": "p"}, json={**tea, "title": "别的茶"}),
        409,
        "IDEMPOTENCY_CONFLICT",
    )
    assert [p["id"] for p in client.get(add, headers=bearer(coop)).json()] == [tea_id, rice]
    assert client.get(add, headers=bearer(other)).json() == []

    patch = f"/v1/rural/seller/products/{rice}"
    change = {
        "price": 7_200,
        "stock": 3,
        "photos": ["https://img.example/rice.jpg"],
        "origin": "湖南宁乡灰汤镇东鹜村",
        "delivery": ["宁乡县"],
    }
    problem(client.patch(patch, headers=bearer(other), json=change), 404, "RURAL_PRODUCT_NOT_FOUND")
    problem(client.patch(patch, headers=bearer(coop), json={"stock": -1}), 400, "RURAL_INVALID")
    problem(client.patch(patch, headers=bearer(coop), json={}), 400, "RURAL_INVALID")
    assert client.portal.call(c.rural_market.product, rice).price == 6_800  # type: ignore[union-attr]
    r = client.patch(patch, headers=bearer(coop), json=change)
    assert r.status_code == 200, r.text
    assert (
        r.json()["price"]["amount"],
        r.json()["stock"],
        r.json()["photos"],
        r.json()["origin"],
        r.json()["delivery"],
    ) == (7_200, 3, change["photos"], change["origin"], ["宁乡县"])

    # orders: the seller's own, shipped once
    shipped, disputed = _order(client, buyer, rice, "o1"), _order(client, buyer, rice, "o2")
    _dispute(client, buyer, disputed, "下错单了")
    assert _books(client, c) == [50_000 - 2 * 7_200, 2 * 7_200, 0, 0]  # the new price
    mine = client.get("/v1/rural/seller/orders", headers=bearer(coop)).json()
    assert {o["id"] for o in mine} == {shipped, disputed}
    first = next(o for o in mine if o["id"] == shipped)
    assert (first["buyer"], first["county"], first["title"]) == ("139****9001", "宁乡县", "灰汤贡米 5kg")
    assert [
        o["id"]
        for o in client.get("/v1/rural/seller/orders", headers=bearer(coop), params={"state": "disputed"}).json()
    ] == [disputed]
    problem(client.get("/v1/rural/seller/orders", headers=bearer(coop), params={"state": "lost"}), 400, "RURAL_INVALID")
    assert client.get("/v1/rural/seller/orders", headers=bearer(other)).json() == []
    ship = f"/v1/rural/seller/orders/{shipped}/shipment"
    problem(client.post(ship, headers=bearer(other)), 404, "RURAL_ORDER_NOT_FOUND")
    problem(client.post(f"/v1/rural/seller/orders/{disputed}/shipment", headers=bearer(coop)), 409, "RURAL_ORDER_STATE")
    r = client.post(ship, headers=bearer(coop))
    assert r.status_code == 200 and r.json()["state"] == "shipped" and r.json()["tracking_no"], r.text
    assert "Idempotent-Replayed" not in r.headers
    again = client.post(ship, headers=bearer(coop))
    assert again.headers["Idempotent-Replayed"] == "true" and again.json()["tracking_no"] == r.json()["tracking_no"]
    assert _books(client, c) == [50_000 - 2 * 7_200, 2 * 7_200, 0, 0]  # shipping moves no money
    assert client.portal.call(c.ledger.verify).ok  # type: ignore[union-attr]


async def _cli_market(url: str, tmp_path: Path) -> tuple[str, str]:
    """A disputed order of the co-op's rice and a paid one; answers both ids."""
    c = build(Settings(_env_file=None, database_url=url, merchant_key_file=tmp_path / "k.pem"))
    try:
        _, _, rice = await _market(c)
        me = await c.wallet.principal((await c.wallet.user_by_msisdn("+86" + BUYER)).id)
        o1 = await c.rural_market.order(me, rice, 1, county="宁乡县", address="a", idempotency_key="c1")
        o2 = await c.rural_market.order(me, rice, 1, county="宁乡县", address="a", idempotency_key="c2")
        await c.rural_market.dispute(me, o1.id, "米发霉了")
        return o1.id, o2.id
    finally:
        await c.close()


async def _cli_books(url: str, tmp_path: Path) -> list[int]:
    c = build(Settings(_env_file=None, database_url=url, merchant_key_file=tmp_path / "k.pem"))
    try:
        return await money(c, "wallet:+86" + BUYER, ESCROW, "wallet:+86" + COOP, MARKET_FEES)
    finally:
        await c.close()


def test_cli_disputes_and_seller_commands(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As an operator runs it (in process, on a migrated SQLite file; each command builds the
    whole container, so this one runs on one database): refusals are one sentence with the
    code, never a traceback."""
    db_url = sqlite_url
    monkeypatch.setenv("MOBIPAY_DATABASE_URL", db_url)
    monkeypatch.setenv("MOBIPAY_MERCHANT_KEY_FILE", str(tmp_path / "k.pem"))
    monkeypatch.setenv("MOBIPAY_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("MOBIPAY_OPERATORS", "olga:operations;rita:risk")
    monkeypatch.setenv("MOBIPAY_LOGISTICS_URL", "http://127.0.0.1:9")  # no carrier answers there
    disputed, paid = asyncio.run(_cli_market(db_url, tmp_path))
    cli = CliRunner()
    for command in ("disputes", "dispute-decide", "seller-products", "product-add", "ship"):
        r = cli.invoke(cli_app, ["rural", command, "--help"])
        assert r.exit_code == 0 and f"Example: mobipay rural {command}" in " ".join(r.output.split()), r.output

    r = cli.invoke(cli_app, ["rural", "disputes", "--actor", "olga"])
    assert r.exit_code == 0 and disputed in r.output and "米发霉了" in r.output, r.output
    decide = ["rural", "dispute-decide", disputed, "--refund", "--reason", "照片为证", "--actor", "olga"]
    r = cli.invoke(cli_app, decide)
    assert r.exit_code == 0 and "refunded" in r.output, r.output
    r = cli.invoke(cli_app, decide)
    assert r.exit_code == 0 and "nothing changed" in r.output, r.output
    r = cli.invoke(cli_app, ["rural", "dispute-decide", disputed, "--release", "--reason", "改判", "--actor", "olga"])
    assert r.exit_code == 1 and "RURAL_DISPUTE_DECIDED" in r.output and "Traceback" not in r.output, r.output
    assert asyncio.run(_cli_books(db_url, tmp_path)) == [50_000 - 6_800, 6_800, 0, 0]

    add = [
        "rural",
        "product-add",
        COOP,
        "--title",
        "沩山毛尖 250g",
        "--price",
        "12800",
        "--unit",
        "盒",
        "--stock",
        "5",
        "--origin",
        "湖南宁乡沩山",
        "--deliver-to",
        "宁乡县",
        "--key",
        "tea",
        "--actor",
        "olga",
    ]
    r = cli.invoke(cli_app, add)
    assert r.exit_code == 0 and "沩山毛尖 250g" in r.output and "to 宁乡县" in r.output, r.output
    r = cli.invoke(cli_app, ["rural", "seller-products", COOP])
    assert r.exit_code == 0 and "沩山毛尖 250g" in r.output and "灰汤贡米 5kg" in r.output, r.output
    r = cli.invoke(cli_app, ["rural", "ship", paid, "--seller", OTHER, "--actor", "olga"])
    assert r.exit_code == 1 and "RURAL_ORDER_NOT_FOUND" in r.output, r.output  # not the other seller's
    r = cli.invoke(cli_app, ["rural", "ship", paid, "--seller", COOP, "--actor", "olga"])
    assert r.exit_code == 1 and "LOGISTICS_UNAVAILABLE" in r.output and "Traceback" not in r.output, r.output
