"""A use case's money move, its own rows and its events commit together or not at all."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import text

from mobipay.kernel.clock import ManualClock
from mobipay.kernel.errors import MobipayError
from mobipay.kernel.events import Event
from mobipay.ledger.model import AccountKind, Leg, Transfer
from mobipay.ledger.service import AccountSpec, Ledger
from mobipay.ledger.uow import UnitOfWork, UnitOfWorkRunner
from mobipay.platform.db import Database


@dataclass(frozen=True, kw_only=True)
class Paid(Event):
    topic = "demo.paid"
    amount: int


class Refused(MobipayError):
    code = "TEST_USE_CASE_REFUSED"
    status = 422
    title = "Refused by the test use case"


async def _pay(uow: UnitOfWork, tid: str, amount: int, fail_after: bool) -> None:
    [result] = await uow.post([Transfer(tid, (Leg.debit("alice", amount), Leg.credit("bob", amount)), "p2p")])
    if result.error:
        raise result.error
    await uow.emit(Paid(key=tid, amount=amount))
    if fail_after:
        raise Refused("a later step of the use case refused")


async def test_all_or_nothing(db: Database, ledger: Ledger, clock: ManualClock) -> None:
    await ledger.open_accounts([AccountSpec("bank", AccountKind.ASSET),
                                AccountSpec("alice", AccountKind.LIABILITY, debits_must_not_exceed_credits=True),
                                AccountSpec("bob", AccountKind.LIABILITY, debits_must_not_exceed_credits=True)])
    assert (await ledger.post(Transfer("f", (Leg.debit("bank", 100), Leg.credit("alice", 100)), "fund"))).ok
    runner = UnitOfWorkRunner(db, clock, ledger)

    with pytest.raises(Refused):
        await runner.run("pay", lambda uow: _pay(uow, "t1", 30, fail_after=True))
    with pytest.raises(MobipayError) as info:
        await runner.run("pay", lambda uow: _pay(uow, "t2", 300, fail_after=False))
    assert info.value.code == "INSUFFICIENT_FUNDS"
    await runner.run("pay", lambda uow: _pay(uow, "t3", 30, fail_after=False))

    assert [(await ledger.account(c)).balance for c in ("alice", "bob")] == [70, 30]
    async with db.begin() as conn:
        keys = [r[0] for r in await conn.execute(text("SELECT key FROM outbox_messages"))]
        stored = [r[0] for r in await conn.execute(text("SELECT id FROM ledger_transfers WHERE code = 'p2p'"))]
    assert keys == ["t3"] and stored == ["t3"]
    assert (await ledger.verify()).ok
