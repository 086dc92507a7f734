"""Secondary confirmation on SQLite and PostgreSQL: the right code in time works once;
wrong, late or reused codes change nothing; guessing is capped; a newer request replaces
the older one."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from mobipay.confirmations.service import Confirmations
from mobipay.kernel.clock import ManualClock
from mobipay.kernel.errors import MobipayError
from mobipay.ledger.service import Ledger
from mobipay.ledger.uow import UnitOfWorkRunner
from mobipay.platform.db import Database

ME = "+8613800138000"


@pytest.fixture
def service(db: Database, ledger: Ledger, clock: ManualClock) -> Confirmations:
    return Confirmations(UnitOfWorkRunner(db, clock, ledger), b"test-secret")


async def sent_code(db: Database) -> str:
    async with db.begin() as conn:
        row = (await conn.execute(text("SELECT payload FROM outbox_messages WHERE topic = 'sms.send' "
                                       "ORDER BY created_at DESC, id DESC LIMIT 1"))).scalar_one()
    return str(json.loads(row)["params"]["code"])


async def refused(service: Confirmations, code: str, msisdn: str = ME) -> str:
    with pytest.raises(MobipayError) as info:
        await service.confirm(msisdn, code)
    return info.value.code


async def test_once_in_time(service: Confirmations, db: Database, clock: ManualClock) -> None:
    await service.request("13800138000", "sms.transfer", {"to": "+8613900139000", "amount": 5_000},
                          "转账 50.00 元给 139****9000")
    code = await sent_code(db)
    wrong = "000000" if code != "000000" else "111111"
    assert await refused(service, wrong) == "CONFIRMATION_REFUSED"
    assert await refused(service, code, "+8613900139000") == "CONFIRMATION_REFUSED"  # another number
    done = await service.confirm(ME, code)
    assert (done.purpose, done.payload) == ("sms.transfer", {"to": "+8613900139000", "amount": 5_000})
    assert await refused(service, code) == "CONFIRMATION_REFUSED"  # once only

    await service.request(ME, "sms.topup", {"amount": 10_000}, "充值 100 元")
    late = await sent_code(db)
    clock.advance(301)
    assert await refused(service, late) == "CONFIRMATION_REFUSED"


async def test_guessing_is_capped_and_newest_wins(service: Confirmations, db: Database) -> None:
    await service.request(ME, "sms.transfer", {"n": 1}, "first")
    first = await sent_code(db)
    await service.request(ME, "sms.transfer", {"n": 2}, "second")
    second = await sent_code(db)
    if first != second:
        assert await refused(service, first) == "CONFIRMATION_REFUSED"  # replaced by the newer request
    others = [f"{n:06d}" for n in range(10) if f"{n:06d}" != second][:5]
    for guess in others:
        assert await refused(service, guess) == "CONFIRMATION_REFUSED"
    assert await refused(service, second) == "CONFIRMATION_REFUSED"  # void after 5 wrong tries
    async with db.begin() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM confirmations WHERE state = 'used'"))).scalar_one() == 0
