"""Monthly SP settlement on SQLite and PostgreSQL, against the operator-billing and bank
SIMULATORS: fees, a double refund, the operator's share and a penalty's deduction give the
net, paid to the SP's bank account; a suspended SP's settlement is held, then released
when the suspension is lifted; a month is settled once; the statement CSV. Every figure is
asserted in the ledger."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from mobipay.kernel.clock import ManualClock
from mobipay.kernel.errors import MobipayError
from mobipay.kernel.roles import Roster
from mobipay.ledger.chart import BANK_SETTLEMENT
from mobipay.orders.service import OrderBook
from mobipay.sp.governance import SpGovernance
from mobipay.sp.model import Measure
from mobipay.sp.service import SpService, sp_payable
from mobipay.sp.settlement import (
    PENALTY_INCOME,
    SHARE_INCOME,
    SP_PAYOUTS_IN_TRANSIT,
    SpBankPayouts,
    SpSettlements,
)
from tests.conftest import BANK_SECRET
from tests.integration.test_sp import (  # noqa: F401 - fixtures
    SP,
    billing_url,
    clock,
    sp,
    sp_billing_sim,
)

NUMBERS = ("+8613800138000", "+8613900139000", "+8613700137000", "+8613600136000")


@pytest.fixture
async def stl(sp: SpService, bank: str, tmp_path: object) -> AsyncIterator[SpSettlements]:  # noqa: F811
    payouts = SpBankPayouts(bank, BANK_SECRET.encode(), timeout_s=5.0)
    yield SpSettlements(sp.uow, OrderBook(sp.uow, tmp_path), payouts)  # type: ignore[arg-type]
    await payouts.close()


async def bal(sp: SpService, code: str) -> int:  # noqa: F811
    return (await sp.uow.ledger.account(code)).balance


async def bill_four(sp: SpService, clock: ManualClock) -> SpGovernance:  # noqa: F811
    """Four subscribers billed 5 CNY each in December."""
    for n in NUMBERS:
        await sp.subscribe(n, SP, "TQ")
        await sp.reply(n)
    clock.advance(73 * 3600)
    assert (await sp.bill_all()).charged == 4
    return SpGovernance(sp.uow, sp, Roster("alice:sp_governance;bob:sp_governance"))


async def december(sp: SpService, clock: ManualClock) -> SpGovernance:  # noqa: F811
    """The four, one refunded double, one minor violation (10% of the month's fees)."""
    gov = await bill_four(sp, clock)
    [charge] = await sp.charges(NUMBERS[0])
    await sp.refund_double(charge.id, actor="staff", reason="confirmed billing error")
    await gov.record_violation(SP, "pricing", "minor", reason="price unclear", evidence="ad.png", actor="alice")
    assert await bal(sp, sp_payable(SP)) == 2000 - 1000
    return gov


async def test_settlement_net_paid_to_the_bank_once(sp: SpService, stl: SpSettlements,  # noqa: F811
                                                    clock: ManualClock) -> None:  # noqa: F811
    await december(sp, clock)
    with pytest.raises(MobipayError) as info:
        await stl.settle("2026-12")
    assert info.value.code == "SP_INVALID"
    with pytest.raises(MobipayError) as info:
        await stl.settle("2026-13")
    assert info.value.code == "SP_INVALID"
    clock.set(datetime(2026, 12, 31, 16, 0, 1, tzinfo=UTC))  # the month has ended in Shanghai
    reserve = await bal(sp, BANK_SETTLEMENT)
    [s] = await stl.settle("2026-12")
    assert (s.fees, s.refunds, s.operator_share, s.deductions, s.net) == (2000, 1000, 300, 200, 500)
    assert s.state == "paid"
    assert await bal(sp, sp_payable(SP)) == 0
    assert await bal(sp, SHARE_INCOME) == 300 and await bal(sp, PENALTY_INCOME) == 200
    assert await bal(sp, SP_PAYOUTS_IN_TRANSIT) == 0 and await bal(sp, BANK_SETTLEMENT) == reserve - 500
    [again] = await stl.settle("2026-12")  # settled once: nothing posted twice
    assert again == s and await bal(sp, BANK_SETTLEMENT) == reserve - 500
    rows = list(csv.reader(io.StringIO(await stl.statement(SP, "2026-12"))))
    assert rows[0][0] == "charge_id" and len([r for r in rows[1:] if r and r[0].startswith("spc:")]) == 4
    assert ["net_fen", "500"] in rows and ["refunds_fen", "1000"] in rows
    assert not any("13800138000" in ",".join(r) for r in rows)  # numbers are masked


async def test_suspended_settlement_is_held_then_released(sp: SpService, stl: SpSettlements,  # noqa: F811
                                                          clock: ManualClock) -> None:  # noqa: F811
    gov = await bill_four(sp, clock)
    await gov.record_violation(SP, "spam", "serious", reason="spam", evidence="logs", actor="alice")  # 20%
    await gov.record_violation(SP, "spam", "serious", reason="spam again", evidence="logs", actor="alice")  # 30%
    assert (await sp.sp(SP)).settlement_suspended
    clock.set(datetime(2026, 12, 31, 16, 0, 1, tzinfo=UTC))
    reserve = await bal(sp, BANK_SETTLEMENT)
    [s] = await stl.settle("2026-12")
    assert (s.state, s.fees, s.operator_share, s.deductions, s.net) == ("held", 2000, 300, 1000, 700)
    assert await bal(sp, SP_PAYOUTS_IN_TRANSIT) == 700 and await bal(sp, BANK_SETTLEMENT) == reserve
    assert [r.state for r in await stl.release(SP)] == ["held"]  # still suspended: it stays held
    assert (await stl.get(s.id)).state == "held" and await bal(sp, BANK_SETTLEMENT) == reserve
    await gov.lift(SP, Measure.SUSPEND_SETTLEMENT, actor="bob", reason="the SP fixed its opt-in")
    [released] = await stl.release(SP)
    assert (released.state, released.net) == ("paid", 700)
    assert await bal(sp, SP_PAYOUTS_IN_TRANSIT) == 0 and await bal(sp, BANK_SETTLEMENT) == reserve - 700
    assert await stl.release(SP) == []
