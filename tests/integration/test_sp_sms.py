"""SP services through the SMS channel as the bootstrap wires it, on SQLite and PostgreSQL
against the operator-billing SIMULATOR: a keyword to an SP's service code asks for
confirmation, "是" to the platform number confirms, 0000 lists, QX cancels, 00000 cancels
all, a complaint by SMS, the channel's own commands untouched; the subscriber needs no
wallet for the phone bill."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from mobipay.app.bootstrap import Container, build
from mobipay.channels.sms.texts import render
from mobipay.kernel.clock import ManualClock
from mobipay.kernel.ids import new_id
from mobipay.platform.config import Settings
from mobipay.sp.model import Cycle
from mobipay.sp.service import sp_payable
from tests.integration.test_sp import SECRET, SP, bill, sp_billing_sim  # noqa: F401 - the session's simulator

ME = "+8613800138000"


@pytest.fixture
def billing_url(sp_billing_sim: str) -> str:  # noqa: F811
    httpx.post(f"{sp_billing_sim}/sim/reset").raise_for_status()
    return sp_billing_sim


@pytest.fixture
async def c(db_url: str, billing_url: str) -> AsyncIterator[Container]:
    settings = Settings(_env_file=None, database_url=db_url, env="test",
                        sp_billing_url=billing_url, sp_billing_secret=SECRET, partner_timeout_s=5.0)
    container = build(settings, clock=ManualClock(datetime(2026, 12, 1, 4, 0, tzinfo=UTC)))
    await container.ensure_system_accounts()
    await container.sp.register_sp(SP, "天气通", licence="B2-20060001", hotline="4008101234", share_bp=8500,
                                   actor="test")
    await container.sp.add_service(SP, "TQ", "天气预报", price=500, cycle=Cycle.MONTHLY, actor="test")
    await container.sp.add_service(SP, "XH", "每日笑话", price=300, cycle=Cycle.MONTHLY, actor="test")
    yield container
    await container.close()


async def texted(c: Container, body: str, to: str = SP) -> list[str]:
    before = await _sent(c)
    await c.sms.receive(new_id("k"), ME.removeprefix("+86"), to, body)
    while await c.outbox_worker().run_once():
        pass
    return [render(t, p) for who, t, p in (await _sent(c))[len(before):] if who == ME]


async def _sent(c: Container) -> list[tuple[str, str, dict[str, Any]]]:
    async with c.db.begin() as conn:
        rows = await conn.execute(text("SELECT payload FROM outbox_messages WHERE topic = 'sms.send' "
                                       "ORDER BY created_at, id"))
        return [(p["to"], p["template"], p["params"]) for p in (json.loads(r[0]) for r in rows)]


async def test_subscribe_confirm_list_cancel_by_sms(c: Container, billing_url: str) -> None:
    [ask] = await texted(c, "TQ")
    assert "天气通" in ask and "5.00元/月" in ask and "4008101234" in ask and "回复“是”" in ask
    [done] = await texted(c, "是", to="10658888")
    assert "成功订购天气预报" in done
    [ask] = await texted(c, "xh")
    [done] = await texted(c, "Y", to="10658888")
    [listing] = await texted(c, "0000", to="10658888")
    assert "1.天气预报" in listing and "2.每日笑话" in listing
    [cancelled] = await texted(c, "QX 2")
    assert "已退订每日笑话" in cancelled and "不收费" in cancelled
    [complaint] = await texted(c, "投诉 乱扣费")
    assert "受理" in complaint
    [unknown] = await texted(c, "NOPE")
    assert "no service" in unknown
    [all_gone] = await texted(c, "00000")
    assert "1项" in all_gone
    assert await c.sp.subscriptions(ME) == []
    [help_] = await texted(c, "YE", to="10658888")  # the channel's own command: no wallet here
    assert "00000" not in help_
    clock = c.clock
    assert isinstance(clock, ManualClock)
    clock.advance(40 * 86400)
    assert (await c.sp.bill_all()).charged == 0
    assert (await c.ledger.account(sp_payable(SP))).balance == 0
    assert bill(billing_url) == 0
