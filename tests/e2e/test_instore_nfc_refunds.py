"""A merchant refunds an offline NFC tap: refused while the tap is still a debt the payer has
not paid (the refund would give them money they never paid), allowed once the next top-up
recovered it; balances asserted before and after. Both databases, ManualClock."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from mobipay.kernel.clock import ManualClock
from mobipay.kernel.errors import MobipayError
from mobipay.ledger.model import Leg, Transfer
from mobipay.wallet.service import WalletCredited
from tests.e2e.test_instore_nfc import NUMBER, World, client, clock  # noqa: F401  (fixtures)

RECEIVABLE = "asset:receivable:nfc_offline_taps"


def test_a_tap_still_owed_is_not_refunded_until_recovered(client: TestClient, clock: ManualClock,  # noqa: F811
                                                          db_url: str) -> None:
    w = World(client, clock, db_url, funds=1_000)
    w.pos.refresh_deny_list()
    for typed in ("6", "8"):  # the second cannot be paid when it arrives: a debt of 8 CNY
        assert w.pos.offline_tap(w.device, typed) == "APPROVED OFFLINE"
    assert [x["result"] for x in w.pos.upload().json()["results"]] == ["accepted", "debt"]
    paid_row, owed_row = w.tap_rows()
    merchants = w.c.merchants

    def refund(row: Any, key: str, amount: int) -> Any:
        async def work() -> Any:
            merchant = await merchants.merchant(w.shop.merchant_id)
            trade = await merchants.trade(row.trade_id)
            return await merchants.refund(merchant, trade.out_trade_no, key, amount)

        return w.run(work)

    before = w.balances()
    with pytest.raises(MobipayError) as info:
        refund(owed_row, "r-owed", 800)
    assert info.value.code == "NFC_TAP_UNPAID" and info.value.status == 409
    assert w.balances() == before and w.run(lambda: w.c.ledger.account(RECEIVABLE)).balance == 800
    # a tap the wallet paid is refunded as any trade
    _, amount, replayed = refund(paid_row, "r-paid", 600)
    assert (amount, replayed) == (600, False) and w.balances() == (before[0] + 600, before[1] - 600)

    async def top_up() -> None:  # the next top-up recovers the debt (wallet.credited through the outbox)
        [res] = await w.c.ledger.post_batch([Transfer("cashin-refund-test", (
            Leg.debit("asset:bank:settlement", 5_000), Leg.credit(f"wallet:+86{NUMBER}", 5_000)), "cash_in")])
        assert res.error is None
        user = await w.c.wallet.user_by_msisdn(NUMBER)
        await w.c.uow.run("emit", lambda uow: uow.emit(WalletCredited(
            key="refund-test:credited", user_id=user.id, msisdn=user.msisdn, account_code=user.account_code,
            amount=5_000, source="cash_in")))
        await w.c.outbox_worker().run_once()

    w.run(top_up)
    recovered = w.balances()
    assert w.run(lambda: w.c.ledger.account(RECEIVABLE)).balance == 0
    _, amount, _ = refund(owed_row, "r-owed", 800)  # the payer has paid it now: refunded
    assert amount == 800 and w.balances() == (recovered[0] + 800, recovered[1] - 800)
