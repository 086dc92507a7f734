"""The demo's offline merchants on both databases: 15,000 approved merchants of low-risk
categories in the reference data's 50 cities, every one onboarded as MerchantService.apply
onboards (state, reason, category terms, payable account, audit entry), each with 1-3 stores
and each store with 1-2 active POS terminals whose keys derive from their ids, so a demo
terminal signs a request that verifies; loading again adds nothing. The clock is a
ManualClock; nothing sleeps."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from mobipay.app.bootstrap import Container, build
from mobipay.app.demo_offline import (
    OFFLINE_MERCHANTS,
    OfflineReport,
    demo_terminal_key,
    demo_terminal_seed,
    load_offline_merchants,
)
from mobipay.app.http import create_app
from mobipay.bills.reference_data import shipped_billers
from mobipay.instore.cities import cities
from mobipay.instore.model import parse
from mobipay.instore.service import latin_city
from mobipay.instore.signature import public_of
from mobipay.instore.tables import terminals
from mobipay.kernel.clock import ManualClock, as_utc
from mobipay.ledger.model import AccountKind
from mobipay.merchants.model import MerchantState, check_credit_code
from mobipay.merchants.tables import merchants, stores
from mobipay.platform.audit import entries
from mobipay.platform.config import Settings
from tests.conftest import drop_pg, fresh_pg_url
from tests.e2e.test_instore_terminals import call, refused


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 25, 2, 30, tzinfo=UTC))


def _settings(url: str, key_file: Path) -> Settings:
    return Settings(_env_file=None, database_url=url, merchant_key_file=key_file)  # type: ignore[call-arg]


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def demo_db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[str, Path, OfflineReport]]:
    """One database per engine with the offline merchants loaded once (a few seconds) for the module."""
    tmp = tmp_path_factory.mktemp("offline")
    if request.param == "sqlite":
        target = tmp / "mobipay.db"
        target.write_bytes(request.getfixturevalue("sqlite_template").read_bytes())
        url = f"sqlite+aiosqlite:///{target}"
    else:
        url = fresh_pg_url(request.getfixturevalue("pg_template"))

    async def load() -> OfflineReport:
        c = build(_settings(url, tmp / "platform.pem"), clock=ManualClock(datetime(2026, 11, 25, 2, 0, tzinfo=UTC)))
        try:
            await c.ensure_system_accounts()
            return await load_offline_merchants(c)
        finally:
            await c.close()

    try:
        yield url, tmp, asyncio.run(load())
    finally:
        if request.param != "sqlite":
            drop_pg(url)


@pytest.fixture
def loaded(demo_db: tuple[str, Path, OfflineReport], clock: ManualClock
           ) -> Iterator[tuple[TestClient, OfflineReport]]:
    url, tmp, report = demo_db
    settings = _settings(url, tmp / "platform.pem")
    with TestClient(create_app(settings, build(settings, clock=clock))) as client:
        yield client, report


def run(client: TestClient, work: Any) -> Any:
    return client.portal.call(work)  # type: ignore[union-attr]


def rows(client: TestClient, query: Any) -> list[Any]:
    c: Container = client.app.state.container  # type: ignore[attr-defined]

    async def read() -> list[Any]:
        async with c.db.begin() as conn:
            return list((await conn.execute(query)).all())

    return run(client, read)  # type: ignore[no-any-return]


def test_fifteen_thousand_merchants_in_fifty_cities(loaded: tuple[TestClient, OfflineReport]) -> None:
    client, report = loaded
    c: Container = client.app.state.container  # type: ignore[attr-defined]
    assert (report.merchants_created, report.merchants_total) == (OFFLINE_MERCHANTS, 15_000)
    mine = merchants.c.id.like("mch_off%")
    shops = rows(client, select(merchants.c.id, merchants.c.state, merchants.c.mcc, merchants.c.fee_bps,
                                merchants.c.settlement_days, merchants.c.per_trade_limit, merchants.c.daily_limit,
                                merchants.c.credit_code, merchants.c.settlement_account).where(mine))
    assert len(shops) == 15_000 and {s.state for s in shops} == {"approved"}
    for s in shops:  # the category's terms, as onboarding gives them
        cat = c.merchants.categories[s.mcc]
        assert cat.risk == "low"
        assert (s.fee_bps, s.settlement_days, s.per_trade_limit, s.daily_limit) == (
            cat.fee_bps, cat.settlement_days, cat.per_trade_limit, cat.daily_limit)
    assert {"5812", "5411", "7832"} <= {s.mcc for s in shops}  # restaurants, retail, entertainment
    assert len({s.credit_code for s in shops}) == 15_000
    check_credit_code(shops[7].credit_code)
    assert all(s.settlement_account.isdigit() and 8 <= len(s.settlement_account) <= 32 for s in shops)

    per_merchant = Counter(r.merchant_id for r in rows(client, select(stores.c.merchant_id)
                                                       .where(stores.c.merchant_id.like("mch_off%"))))
    assert set(per_merchant) == {s.id for s in shops} and set(per_merchant.values()) <= {1, 2, 3}
    assert report.stores == sum(per_merchant.values())
    store_cities = {r.city for r in rows(client, select(stores.c.city).where(stores.c.id.like("sto_off%")))}
    assert store_cities == {city.name for city in cities()} and len(store_cities) == 50
    per_store = Counter(r.store_id for r in rows(client, select(terminals.c.store_id, terminals.c.state)
                                                 .where(terminals.c.id.like("trm_off%"))))
    assert len(per_store) == report.stores and set(per_store.values()) <= {1, 2}
    assert report.terminals == sum(per_store.values())
    assert {r.state for r in rows(client, select(terminals.c.state).where(terminals.c.id.like("trm_off%")))} == {
        "active"}

    loaded_at = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # the loading clock's now: nothing is dated after it
    for table, prefix in ((merchants, "mch_off%"), (stores, "sto_off%"), (terminals, "trm_off%")):
        [(latest,)] = rows(client, select(func.max(table.c.created_at)).where(table.c.id.like(prefix)))
        assert as_utc(latest) <= loaded_at, (table.name, latest)

    # Each merchant's payable account, as onboarding opens it.
    accounts = run(client, lambda: c.ledger.accounts([f"liability:merchant:{s.id}" for s in shops]))
    assert len(accounts) == 15_000 and {a.kind for a in accounts.values()} == {AccountKind.LIABILITY}


def test_a_demo_merchant_is_onboarded_as_apply_does(loaded: tuple[TestClient, OfflineReport]) -> None:
    client, _ = loaded
    c: Container = client.app.state.container  # type: ignore[attr-defined]
    m = run(client, lambda: c.merchants.set_up_merchant("mch_off00011"))  # approved: may set things up
    assert m.state is MerchantState.APPROVED and m.reason == "low-risk category: approved by rule"
    assert m.account_code == "liability:merchant:mch_off00011" and m.website == ""
    [applied] = [e for e in run(client, lambda: _audit(c, m.id)) if e["action"] == "merchant.apply"]
    assert applied["actor"] == "merchant" and '"approved"' in applied["after"]
    shops = run(client, lambda: c.merchants.stores(m.id))
    assert shops and all(s.city == cities()[11].name and s.address.startswith(s.city) for s in shops)
    tills = run(client, lambda: c.terminals.find(m.id))
    assert {t.store_id for t in tills} == {s.id for s in shops}
    registered = run(client, lambda: _audit(c, tills[0].id))
    assert [e["action"] for e in registered] == ["instore.terminal.register"]

    # The store's static code prints the city: Chinese in template 64, its Latin name in tag 60.
    qr = parse(run(client, lambda: c.instore.store_payload(m, shops[0].id)))
    assert qr.city == latin_city(shops[0].city) != "CHINA" and qr.local is not None
    assert qr.local.city == shops[0].city and qr.store_id == shops[0].id


async def _audit(c: Container, target: str) -> list[dict[str, Any]]:
    async with c.db.begin() as conn:
        return await entries(conn, target)


def test_a_demo_terminal_signs_a_request_that_verifies(loaded: tuple[TestClient, OfflineReport],
                                                       clock: ManualClock) -> None:
    client, _ = loaded
    c: Container = client.app.state.container  # type: ignore[attr-defined]
    some = [r.id for r in rows(client, select(terminals.c.id).where(terminals.c.id.like("trm_off%"))
                                .order_by(terminals.c.id).limit(3))]
    some += [r.id for r in rows(client, select(terminals.c.id).where(terminals.c.merchant_id == "mch_off14999"))]
    for terminal_id in some:
        seed = demo_terminal_seed(terminal_id)
        r = call(client, clock, terminal_id, seed)
        assert r.status_code == 200, r.text
        key = run(client, lambda tid=terminal_id: demo_terminal_key(c, tid))
        assert (key.private_key, key.public_key, key.registered, key.matches) == (seed, public_of(seed), True, True)
    # Another terminal's derived key does not sign for this one.
    refused(call(client, clock, some[0], demo_terminal_seed(some[1])), 401, "TERMINAL_BAD_SIGNATURE")
    assert not run(client, lambda: demo_terminal_key(c, "trm_off9999999")).registered


def test_loading_again_adds_nothing(loaded: tuple[TestClient, OfflineReport]) -> None:
    client, _ = loaded
    c: Container = client.app.state.container  # type: ignore[attr-defined]
    count = select(func.count()).select_from(terminals)
    before = rows(client, count)[0][0]
    again = run(client, lambda: load_offline_merchants(c))
    assert (again.merchants_created, again.merchants_total, again.terminals) == (0, 15_000, 0)
    assert rows(client, count)[0][0] == before


def test_the_cities_are_the_reference_datas() -> None:
    """The 50 cities are the biller registry's (where the demo's subscribers live), each with
    its own Latin name for tag 60 (nothing falls back to CHINA) and a division code."""
    assert len(cities()) == 50
    assert {c.name for c in cities()} == {b.city for b in shipped_billers()}
    assert {c.name: c.province for c in cities()} == {b.city: b.province for b in shipped_billers()}
    assert all(latin_city(c.name) == c.latin != "CHINA" for c in cities())
    assert len({c.latin for c in cities()}) == 50 and len({c.division for c in cities()}) == 50
    assert latin_city("上海市") == "SHANGHAI" and latin_city("乌鲁木齐") == "URUMQI"


def test_nothing_in_production(tmp_path: Path) -> None:
    """Demo terminals' keys are public: production never gets them."""
    from mobipay.platform.config import Environment

    class Prod:
        env = Environment.PRODUCTION

    class Box:
        settings = Prod()

    report = asyncio.run(load_offline_merchants(Box()))  # type: ignore[arg-type]
    assert report.skipped and report.merchants_created == 0


def test_the_documented_derivation_and_the_cli(demo_db: tuple[str, Path, OfflineReport]) -> None:
    """docs/instore.md's derivation and example are the code's, and the CLI prints the key of a
    demo terminal (and refuses an unknown one in a sentence)."""
    url, tmp, _ = demo_db
    tid = "trm_off0000000"
    derived = base64.b64encode(hashlib.sha256(b"mobipay-demo-terminal-v1:" + tid.encode()).digest()).decode()
    assert derived == demo_terminal_seed(tid)
    doc = (Path(__file__).resolve().parents[2] / "docs" / "instore.md").read_text(encoding="utf-8")
    assert f"# private key  {derived} " in doc and f"# public key   {public_of(derived)} " in doc
    env = {**os.environ, "MOBIPAY_DATABASE_URL": url, "MOBIPAY_MERCHANT_KEY_FILE": str(tmp / "platform.pem")}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mobipay.app.cli", "instore", "demo-terminal-key", *args],
                              capture_output=True, text=True, env=env, timeout=120, check=False)

    shown = cli(tid)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split() == ["terminal", tid, "private", "key", derived, "public", "key", public_of(derived)]
    unknown = cli("trm_off9999999")
    assert unknown.returncode == 1 and "no terminal trm_off9999999" in unknown.stderr
    assert "Traceback" not in unknown.stderr
