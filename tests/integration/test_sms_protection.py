"""Handset protection by SMS (SJBZ / 手机保障) on SQLite and PostgreSQL: every check answered
at once in words, the first month's fee confirmed by code, the enrolment's SMS as the answer,
and the wallet charged once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from stdnum import luhn

from mobipay.app.bootstrap import Container, build
from mobipay.kernel.clock import SHANGHAI, ManualClock
from mobipay.ledger.chart import BANK_SETTLEMENT
from mobipay.ledger.model import Leg, Transfer
from mobipay.platform.config import Settings
from mobipay.protection.model import FEE_INCOME
from tests.integration.test_sms_channel import ME, balance, code, texted

IMEI = "35328111000042" + luhn.calc_check_digit("35328111000042")


@pytest.fixture
async def c(db_url: str) -> AsyncIterator[Container]:
    settings = Settings(_env_file=None, database_url=db_url, env="test")  # type: ignore[call-arg]
    container = build(settings, clock=ManualClock(datetime(2026, 11, 20, 12, 0, tzinfo=SHANGHAI).astimezone(UTC)))
    await container.ensure_system_accounts()
    user = await container.wallet.create_user(ME, actor="test", reason="test")
    assert (await container.ledger.post(Transfer("fund", (Leg.debit(BANK_SETTLEMENT, 5_000),
                                                          Leg.credit(user.account_code, 5_000)), "cash_in"))).ok
    yield container
    await container.close()


async def test_enrol_by_sms_code(c: Container) -> None:
    [help_reply] = await texted(c, ME, "SJBZ 123")
    assert "SJBZ IMEI" in help_reply
    bad = IMEI[:-1] + str((int(IMEI[-1]) + 1) % 10)
    [reply] = await texted(c, ME, f"SJBZ {bad} 3999 20261118 长沙 FP1")
    assert "校验位" in reply and "check digit" in reply, reply
    [reply] = await texted(c, ME, f"SJBZ {IMEI} 3999 20261118 北京 FP1")
    assert "长沙、株洲、衡阳、常德" in reply, reply
    assert await balance(c, ME) == 5_000
    [ask] = await texted(c, ME, f"手机保障 {IMEI} 3999 20261118 长沙 FP-77")
    assert "iPhone 15" in ask and "18.00" in ask and "2026-12-20" in ask, ask
    [done] = await texted(c, ME, code(ask))
    assert "已加入手机保障服务" in done and "18.00" in done, done
    assert await balance(c, ME) == 5_000 - 1_800
    assert (await c.ledger.account(FEE_INCOME)).balance == 1_800
    [e] = await c.protection.enrolments(await c.channel_actions.subscriber(ME))
    assert (e.channel, e.receipt, e.city) == ("sms", "FP-77", "changsha")
    [again] = await texted(c, ME, f"SJBZ {IMEI} 3999 20261118 长沙 FP-77")
    assert "该手机已办理手机保障服务" in again, again  # one enrolment per IMEI
    assert await balance(c, ME) == 5_000 - 1_800
