"""Merchant settlement on both databases: a day is settled only once it has ended, a run
again reports what the ledger posted and the bank paid (never figures computed afresh),
and the bank's daily file matches the settlement payouts it lists."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from mobipay.app.bootstrap import Container, build
from mobipay.app.http import create_app
from mobipay.kernel.clock import SHANGHAI, ManualClock
from mobipay.kernel.errors import MobipayError
from mobipay.ledger.chart import BANK_SETTLEMENT, FEE_INCOME, SETTLEMENT_IN_TRANSIT
from mobipay.merchants.signing import sign_hmac
from mobipay.merchants.tables import merchants
from mobipay.orders.tables import partner_orders
from mobipay.platform.config import Settings
from tests.conftest import BANK_SECRET
from tests.e2e.test_merchants_api import OPERATORS, application
from tests.e2e.test_wallet_api import bearer, fund, login_by_sms, signed_up

BUYER = "13900139000"


@dataclass
class Shop:
    client: TestClient
    container: Container
    clock: ManualClock
    db_url: str
    merchant_id: str
    app_id: str
    key: str
    account: str

    def call(self, path: str, **params: object) -> Any:
        body: dict[str, Any] = {"app_id": self.app_id, "timestamp": str(int(self.clock.now().timestamp())),
                                "nonce": secrets.token_hex(8), "sign_type": "HMAC",
                                **{k: str(v) for k, v in params.items()}}
        body["sign"] = sign_hmac(body, self.key.encode())
        return self.client.post(path, json=body)

    def sell(self, out_trade_no: str, amount: int) -> None:
        """A buyer signed in now pays a new trade of ``amount`` fen."""
        buyer = login_by_sms(self.client, self.db_url, BUYER, secrets.token_hex(4))
        trade = self.call("/v1/merchant/trades", out_trade_no=out_trade_no, total_amount=amount, subject="书")
        paid = self.client.post(f"/v1/trades/{trade.json()['trade_no']}/pay", headers=bearer(buyer), json={})
        assert paid.status_code == 200, paid.text

    def run(self, work: Any) -> Any:
        return self.client.portal.call(work)  # type: ignore[union-attr]

    def balances(self) -> tuple[int, int, int, int]:
        """(merchant payable, fee income, in transit, bank settlement reserve) in fen."""
        codes = [self.account, FEE_INCOME, SETTLEMENT_IN_TRANSIT, BANK_SETTLEMENT]
        accounts = self.run(lambda: self.container.ledger.accounts(codes))
        return tuple(accounts[c].balance if c in accounts else 0 for c in codes)  # type: ignore[return-value]


@pytest.fixture
def shop(db_url: str, tmp_path: Path, bank: str, request: pytest.FixtureRequest) -> Iterator[Shop]:
    start: datetime = getattr(request, "param", datetime(2026, 11, 24, 2, 0, tzinfo=UTC))  # 10:00 in Shanghai
    settings = Settings(_env_file=None, database_url=db_url, bank_url=bank, bank_secret=BANK_SECRET,  # type: ignore[call-arg]
                        merchant_key_file=tmp_path / "platform.pem", report_dir=tmp_path / "reports",
                        operators=OPERATORS)
    clock = ManualClock(start)
    container = build(settings, clock=clock)
    with TestClient(create_app(settings, container)) as client:
        merchant_id = client.post("/v1/merchant-applications", json=application()).json()["id"]
        app_id, key = client.portal.call(lambda: container.merchants.create_app(merchant_id, "HMAC"))  # type: ignore[union-attr]
        account = client.portal.call(lambda: container.merchants.merchant(merchant_id)).account_code  # type: ignore[union-attr]
        signed_up(client, db_url, BUYER)
        fund(client, BUYER, 100_000)
        yield Shop(client, container, clock, db_url, merchant_id, app_id, str(key), account)


def refused(shop: Shop, work: Any) -> MobipayError:
    with pytest.raises(MobipayError) as info:
        shop.run(work)
    return info.value


def test_a_day_that_has_not_ended_is_not_settled(shop: Shop) -> None:
    day = date(2026, 11, 24)
    shop.sell("D-1", 4_000)
    shop.sell("D-2", 1_000)
    before = shop.balances()
    assert before[:3] == (5_000, 0, 0)
    settlements = shop.container.settlements
    for work in (lambda: settlements.settle(day), lambda: settlements.settle_due(day + timedelta(days=1)),
                 lambda: settlements.settle(day + timedelta(days=3))):
        error = refused(shop, work)
        assert error.code == "SETTLEMENT_DAY_OPEN" and "00:05" in error.detail, error.detail
    shop.clock.set(datetime(2026, 11, 24, 16, 2, tzinfo=UTC))  # 00:02 on the 25th: the cut-off is 00:05
    assert refused(shop, lambda: settlements.settle(day)).code == "SETTLEMENT_DAY_OPEN"
    assert shop.balances() == before  # nothing posted, nothing paid
    assert shop.run(lambda: settlements.settle_due(day)) == []  # the 23rd ended long ago: nothing to do

    shop.clock.set(datetime(2026, 11, 24, 16, 5, tzinfo=UTC))
    [s] = shop.run(lambda: settlements.settle_due(day + timedelta(days=1)))
    assert (s.gross, s.refunds, s.fee, s.net, s.state, s.unsettled) == (5_000, 0, 30, 4_970, "paid", 0)
    assert shop.balances() == (0, 30, 0, before[3] - 4_970)  # the net left the reserve for the merchant's bank
    assert shop.run(lambda: shop.container.ledger.verify()).ok


def test_a_run_again_reports_what_was_paid(shop: Shop) -> None:
    """The issue's case: a day settled at noon (as the old code allowed; done here by the
    settlement's own step, without the cut-off) and a payment later that day. A run after
    the day ended reports the 49.28 paid, never the 59.22 the day now adds up to."""
    day = date(2026, 11, 24)
    settlements = shop.container.settlements
    shop.sell("E-1", 4_958)

    async def merchant_row() -> Any:
        async with shop.container.db.begin() as conn:
            return (await conn.execute(select(merchants).where(merchants.c.id == shop.merchant_id))).one()

    row = shop.run(merchant_row)
    early = shop.run(lambda: settlements._settle_one(row, day))  # what `settle --date <today>` used to do
    assert (early.gross, early.fee, early.net, early.state) == (4_958, 30, 4_928, "paid")
    shop.clock.advance(3600)
    shop.sell("E-2", 1_000)  # later that day: this payment was never paid out
    assert shop.balances()[:3] == (1_000, 30, 0)

    shop.clock.set(datetime(2026, 11, 24, 17, 0, tzinfo=UTC))  # the day has ended
    reports = []
    for _ in range(2):  # idempotent: the same answer and the same report every time
        [again] = shop.run(lambda: settlements.settle(day))
        assert (again.gross, again.refunds, again.fee, again.net, again.state) == (4_958, 0, 30, 4_928, "paid")
        assert again.unsettled == 1_000
        assert again.report is not None
        reports.append(again.report.read_text())
    assert reports[0] == reports[1]
    lines = [line.split(",") for line in reports[0].splitlines()]
    assert lines[1][2:] == ["4958", "0", "30", "4928", "paid"]
    assert ["payment", "E-1", "4958", "30"] in lines and ["not_settled", "E-2", "1000", "0"] in lines

    # the ledger and the bank agree with the report: 49.28 left in transit, paid once
    assert shop.balances()[:3] == (1_000, 30, 0)
    settled = shop.run(lambda: shop.container.ledger.transfer(f"settle:{early_id(shop, day)}"))
    assert {leg.account: leg.amount for leg in settled.legs}[SETTLEMENT_IN_TRANSIT] == 4_928

    async def payouts() -> list[Any]:
        async with shop.container.db.begin() as conn:
            return list(await conn.execute(select(partner_orders.c.amount, partner_orders.c.state).where(
                partner_orders.c.kind == "settlement")))

    assert [(int(a), s) for a, s in shop.run(payouts)] == [(4_928, "succeeded")]
    assert shop.run(lambda: shop.container.ledger.verify()).ok


def early_id(shop: Shop, day: date) -> str:
    from mobipay.orders.service import order_id

    return order_id("stl_", shop.merchant_id, str(day))


def _yesterday_10am() -> datetime:
    """10:00 (Shanghai) yesterday: the bank simulator dates its file by the wall clock, so the
    day settled is yesterday and the payout lands in today's file."""
    today = datetime.now(UTC).astimezone(SHANGHAI).date()
    return datetime.combine(today - timedelta(days=1), datetime.min.time(), SHANGHAI).replace(hour=10).astimezone(UTC)


@pytest.mark.parametrize("shop", [_yesterday_10am()], indirect=True)
def test_the_bank_file_matches_settlement_payouts(shop: Shop) -> None:
    settlements, banking = shop.container.settlements, shop.container.banking
    yesterday = shop.clock.now().astimezone(SHANGHAI).date()
    shop.sell("F-1", 4_958)
    end_of_day = datetime.combine(yesterday + timedelta(days=1), datetime.min.time(), SHANGHAI).astimezone(UTC)
    shop.clock.set(max(datetime.now(UTC), end_of_day + timedelta(minutes=6)))
    [s] = shop.run(lambda: settlements.settle(yesterday))
    assert (s.net, s.state) == (4_928, "paid")
    today = shop.clock.now().astimezone(SHANGHAI).date()
    for _ in range(2):
        report = shop.run(lambda: banking.reconcile(today))
        assert (report.lines, report.matched, report.exceptions) == (1, 1, []), report.exceptions
    assert shop.run(lambda: shop.container.orders.recon_exceptions()) == []

    # the payouts are checked, not skipped: one the bank never made is missing there
    import httpx

    [order] = httpx.get(f"{shop.container.settings.bank_url}/sim/orders").json()
    httpx.post(f"{shop.container.settings.bank_url}/sim/orders/{order['order_id']}/forget").raise_for_status()
    report = shop.run(lambda: banking.reconcile(today))
    assert [e["kind"] for e in report.exceptions] == ["missing_there"]
    assert shop.balances()[:3] == (0, 30, 0)
    assert shop.run(lambda: shop.container.ledger.verify()).ok
