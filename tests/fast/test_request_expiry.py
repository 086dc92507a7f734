"""Money requests expire by the worker's job (issue 29): after the window (a setting, 3 days
by default) an open request is stored as expired once, both sides are told by SMS once, and
it can no longer be paid; paid and declined requests are left alone. In memory, on the
ManualClock: no wall-clock sleeping."""

from __future__ import annotations

from datetime import timedelta

import pytest
from argon2 import PasswordHasher

from mobipay.channels.sms.texts import render
from mobipay.kernel.events import SmsRequested
from mobipay.platform.config import Settings
from mobipay.wallet import errors
from mobipay.wallet.reference_data import number_segments
from mobipay.wallet.service import WalletService
from tests.fast.test_wallet_use_cases import LI, WANG, sms, subscriber
from tests.support.memory import MemoryRunner


def expiry_sms(runner: MemoryRunner) -> list[SmsRequested]:
    return sms(runner, "request.expired") + sms(runner, "request.expired_payer")


async def test_the_worker_expires_a_due_request_once_and_tells_both_sides(wallet: WalletService,
                                                                          runner: MemoryRunner) -> None:
    li = await subscriber(wallet, runner, LI)
    wang = await subscriber(wallet, runner, WANG, cash_in=5_000)
    asked = await wallet.request_money(li, WANG, 1_200, idempotency_key="dinner", note="dinner")
    assert asked.expires_at == asked.created_at + timedelta(days=3)  # the default window

    runner.clock.advance(3 * 86_400 - 1)
    assert await wallet.expire_due_requests() == 0  # not due yet: nothing moves, nobody is told
    assert runner.store.requests[asked.id].state == "open" and expiry_sms(runner) == []

    runner.clock.advance(1)
    assert await wallet.expire_due_requests() == 1
    assert runner.store.requests[asked.id].state == "expired"  # stored, not only computed when read
    told = {e.template: e for e in expiry_sms(runner)}
    assert told["request.expired"].to == LI and told["request.expired_payer"].to == WANG
    assert told["request.expired"].params == {"payer": "139****9000", "amount_fen": 1_200, "days": 3}
    assert "12.00" in render("request.expired", told["request.expired"].params)
    assert "12.00" in render("request.expired_payer", told["request.expired_payer"].params)

    assert await wallet.expire_due_requests() == 0  # idempotent: a second round (or worker) does nothing
    assert len(expiry_sms(runner)) == 2

    with pytest.raises(errors.RequestNotOpen, match="expired"):
        await wallet.pay_request(wang, asked.id)
    with pytest.raises(errors.RequestNotOpen):
        await wallet.decline_request(wang, asked.id)
    assert (runner.ledger.balance(li.account_code), runner.ledger.balance(wang.account_code)) == (0, 5_000)
    incoming, outgoing = await wallet.money_requests(wang)
    assert incoming[0].state == "expired" and (await wallet.money_requests(li))[1][0].state == "expired"
    assert outgoing == []


async def test_paid_and_declined_requests_are_not_expired(wallet: WalletService, runner: MemoryRunner) -> None:
    li = await subscriber(wallet, runner, LI)
    wang = await subscriber(wallet, runner, WANG, cash_in=5_000)
    paid = await wallet.request_money(li, WANG, 1_000, idempotency_key="a")
    declined = await wallet.request_money(li, WANG, 500, idempotency_key="b")
    await wallet.pay_request(wang, paid.id)
    await wallet.decline_request(wang, declined.id)
    runner.clock.advance(10 * 86_400)
    assert await wallet.expire_due_requests() == 0
    assert (runner.store.requests[paid.id].state, runner.store.requests[declined.id].state) == ("paid", "declined")
    assert expiry_sms(runner) == []
    again = await wallet.pay_request(wang, paid.id)  # a late retry still replays the one payment
    assert again.replayed
    assert (runner.ledger.balance(li.account_code), runner.ledger.balance(wang.account_code)) == (1_000, 4_000)


async def test_the_window_is_a_setting(runner: MemoryRunner) -> None:
    assert Settings(_env_file=None).money_request_ttl == timedelta(days=3)  # type: ignore[call-arg]
    one_day = Settings(_env_file=None, money_request_days=1)  # type: ignore[call-arg]
    wallet = WalletService(runner, number_segments(), b"k" * 32, store=runner.stores,  # as the bootstrap builds it
                           pin_hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1),
                           request_ttl=one_day.money_request_ttl)
    li = await subscriber(wallet, runner, LI)
    await subscriber(wallet, runner, WANG)
    asked = await wallet.request_money(li, WANG, 300, idempotency_key="k")
    assert asked.expires_at == asked.created_at + timedelta(days=1)
    runner.clock.advance(86_400)
    assert await wallet.expire_due_requests() == 1
    assert sms(runner, "request.expired")[0].params["days"] == 1
    with pytest.raises(ValueError, match="money_request_days"):
        Settings(_env_file=None, money_request_days=0)  # type: ignore[call-arg]


async def test_a_request_past_its_window_cannot_be_paid_before_the_job_runs(wallet: WalletService,
                                                                           runner: MemoryRunner) -> None:
    li = await subscriber(wallet, runner, LI)
    wang = await subscriber(wallet, runner, WANG, cash_in=2_000)
    asked = await wallet.request_money(li, WANG, 1_000, idempotency_key="late")
    runner.clock.advance(3 * 86_400)
    with pytest.raises(errors.RequestNotOpen, match="expired"):
        await wallet.pay_request(wang, asked.id)
    assert (runner.ledger.balance(li.account_code), runner.ledger.balance(wang.account_code)) == (0, 2_000)
    assert await wallet.expire_due_requests() == 1  # and the job still tells them
