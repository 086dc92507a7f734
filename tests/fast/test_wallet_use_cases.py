"""The wallet's use cases on the in-memory store and ledger (tests/support/memory.py): the
rules of registration, codes, sessions, the PIN and its lock, transfers, limits, claims and
money requests, in milliseconds, without a database. The same use cases run on SQLite and
PostgreSQL in tests/integration; these say what they decide, with every balance."""

from __future__ import annotations

import pytest

from mobipay.kernel.errors import IdempotencyConflict
from mobipay.kernel.events import SmsRequested
from mobipay.ledger.chart import BANK_SETTLEMENT, SUSPENSE
from mobipay.ledger.model import Leg, Transfer
from mobipay.wallet import errors
from mobipay.wallet.model import OtpPurpose, Principal, UserStatus
from mobipay.wallet.service import WalletService
from tests.support.memory import MemoryRunner

LI, WANG, NEW = "+8613800138000", "+8613900139000", "+8615000150000"


def sms(runner: MemoryRunner, template: str) -> list[SmsRequested]:
    return [e for e in runner.events if isinstance(e, SmsRequested) and e.template == template]


async def subscriber(wallet: WalletService, runner: MemoryRunner, msisdn: str, cash_in: int = 0) -> Principal:
    """A registered wallet (by the code its SMS carried), with ``cash_in`` fen from the bank."""
    await wallet.request_otp(msisdn, OtpPurpose.REGISTER)
    code = str(sms(runner, "otp.register")[-1].params["code"])
    user = await wallet.register(msisdn, code)
    if cash_in:
        runner.ledger.post([Transfer(f"cashin:{msisdn}", (Leg.debit(BANK_SETTLEMENT, cash_in),
                                                           Leg.credit(user.account_code, cash_in)), "cash_in")],
                           runner.clock.now())
    return Principal(user.id, "test", user.msisdn, user.account_code)


async def test_a_wrong_code_counts_and_registers_nobody(wallet: WalletService, runner: MemoryRunner) -> None:
    await wallet.request_otp(LI, OtpPurpose.REGISTER)
    with pytest.raises(errors.OtpInvalid, match="4 tries left"):
        await wallet.register(LI, "000000" if sms(runner, "otp.register")[0].params["code"] != "000000" else "111111")
    assert runner.store.otps[0].attempts == 1  # the wrong try was kept
    assert runner.store.users == {} and "wallet:" + LI not in runner.ledger.accounts


async def test_a_transfer_moves_the_money_once(wallet: WalletService, runner: MemoryRunner) -> None:
    li = await subscriber(wallet, runner, LI, cash_in=50_000)
    wang = await subscriber(wallet, runner, WANG)
    done = await wallet.transfer(li, WANG, 3_000, idempotency_key="k1")
    again = await wallet.transfer(li, WANG, 3_000, idempotency_key="k1")
    assert (done.status, again.replayed, again.id) == ("succeeded", True, done.id)
    assert runner.ledger.balance(li.account_code) == 47_000
    assert runner.ledger.balance(wang.account_code) == 3_000
    assert runner.ledger.balance(BANK_SETTLEMENT) == 50_000  # (debit-normal: the reserve backing the wallets)
    assert len(sms(runner, "p2p.received")) == 1
    with pytest.raises(IdempotencyConflict):
        await wallet.transfer(li, WANG, 4_000, idempotency_key="k1")
    assert runner.ledger.balance(li.account_code) == 47_000


async def test_money_for_a_number_without_a_wallet_waits_then_arrives(wallet: WalletService,
                                                                       runner: MemoryRunner) -> None:
    li = await subscriber(wallet, runner, LI, cash_in=10_000)
    done = await wallet.transfer(li, NEW, 2_500, idempotency_key="invite")
    assert done.status == "waiting_for_recipient"
    assert (runner.ledger.balance(li.account_code), runner.ledger.balance(SUSPENSE)) == (7_500, 2_500)
    assert len(sms(runner, "p2p.invite")) == 1
    new = await subscriber(wallet, runner, NEW)  # registering claims it
    assert (runner.ledger.balance(new.account_code), runner.ledger.balance(SUSPENSE)) == (2_500, 0)
    [claim] = runner.store.claims.values()
    assert claim.state == "claimed"


async def test_unclaimed_money_goes_back_after_the_window(wallet: WalletService, runner: MemoryRunner) -> None:
    li = await subscriber(wallet, runner, LI, cash_in=10_000)
    await wallet.transfer(li, NEW, 2_500, idempotency_key="invite")
    assert await wallet.return_expired_claims() == 0  # not yet
    runner.clock.advance(3 * 86_400)
    assert await wallet.return_expired_claims() == 1
    assert (runner.ledger.balance(li.account_code), runner.ledger.balance(SUSPENSE)) == (10_000, 0)
    assert len(sms(runner, "p2p.returned")) == 1


async def test_money_past_its_window_goes_back_even_if_the_number_registers_first(
        wallet: WalletService, runner: MemoryRunner) -> None:
    li = await subscriber(wallet, runner, LI, cash_in=10_000)
    await wallet.transfer(li, NEW, 2_500, idempotency_key="invite")
    runner.clock.advance(3 * 86_400 + 1)  # the window has passed; the return sweep has not run yet
    new = await subscriber(wallet, runner, NEW)
    assert runner.ledger.balance(new.account_code) == 0  # the invitation said it goes back after 3 days
    assert await wallet.return_expired_claims() == 1
    assert (runner.ledger.balance(li.account_code), runner.ledger.balance(SUSPENSE)) == (10_000, 0)


async def test_five_wrong_pins_lock_password_free_payments_too(wallet: WalletService, runner: MemoryRunner) -> None:
    li = await subscriber(wallet, runner, LI, cash_in=10_000)
    await subscriber(wallet, runner, WANG)
    await wallet.set_pin(LI, "480213")
    for left in (4, 3, 2, 1):
        with pytest.raises(errors.PinIncorrect) as wrong:
            await wallet.verify_pin(LI, "999999")
        assert wrong.value.extra["tries_left"] == left
    with pytest.raises(errors.PinLocked):
        await wallet.verify_pin(LI, "999999")
    assert len(sms(runner, "pin.locked")) == 1  # the subscriber hears of it at once
    with pytest.raises(errors.PinLocked):  # a 1.00 CNY transfer without the PIN is refused while locked
        await wallet.transfer(li, WANG, 100, idempotency_key="small")
    assert runner.ledger.balance(li.account_code) == 10_000  # and nothing moved: the posting was undone
    runner.clock.advance(15 * 60)
    await wallet.transfer(li, WANG, 100, idempotency_key="small")
    assert runner.ledger.balance(li.account_code) == 9_900


async def test_a_payment_past_the_tier_limit_is_undone(wallet: WalletService, runner: MemoryRunner) -> None:
    li = await subscriber(wallet, runner, LI, cash_in=300_000)
    await subscriber(wallet, runner, WANG)
    await wallet.set_pin(LI, "480213")
    await wallet.transfer(li, WANG, 90_000, idempotency_key="a", pin="480213")
    with pytest.raises(errors.LimitExceeded, match=r"Tier I lifetime limit .*: 100.00 CNY left"):
        await wallet.transfer(li, WANG, 20_000, idempotency_key="b", pin="480213")
    assert runner.ledger.balance(li.account_code) == 210_000
    assert runner.store.usages[li.user_id].lifetime == 90_000


async def test_a_refresh_token_works_once(wallet: WalletService, runner: MemoryRunner) -> None:
    await subscriber(wallet, runner, LI)
    await wallet.request_otp(LI, OtpPurpose.LOGIN)
    tokens = await wallet.login(LI, device_id="phone", code=str(sms(runner, "otp.login")[-1].params["code"]))
    assert (await wallet.authenticate(tokens.access_token)).msisdn == LI
    rotated = await wallet.refresh(tokens.refresh_token)
    with pytest.raises(errors.SessionInvalid, match="already used"):
        await wallet.refresh(tokens.refresh_token)  # copied: the whole session ends
    with pytest.raises(errors.SessionInvalid):
        await wallet.authenticate(rotated.access_token)


async def test_a_money_request_is_paid_once(wallet: WalletService, runner: MemoryRunner) -> None:
    li = await subscriber(wallet, runner, LI)
    wang = await subscriber(wallet, runner, WANG, cash_in=5_000)
    asked = await wallet.request_money(li, WANG, 1_200, idempotency_key="dinner", note="dinner")
    first = await wallet.pay_request(wang, asked.id)
    second = await wallet.pay_request(wang, asked.id)
    assert second.replayed and second.id == first.id
    assert (runner.ledger.balance(li.account_code), runner.ledger.balance(wang.account_code)) == (1_200, 3_800)
    incoming, _ = await wallet.money_requests(wang)
    assert incoming[0].state == "paid"


async def test_a_frozen_wallet_cannot_pay_and_its_owner_is_told(wallet: WalletService, runner: MemoryRunner) -> None:
    li = await subscriber(wallet, runner, LI, cash_in=5_000)
    await subscriber(wallet, runner, WANG)
    frozen = await wallet.set_frozen(LI, True, actor="op", reason="reported stolen")
    assert frozen.status is UserStatus.FROZEN and runner.audits[-1]["action"] == "user.freeze"
    assert sms(runner, "wallet.frozen")[0].params == {"balance_fen": 5_000}
    with pytest.raises(errors.UserFrozen):
        await wallet.transfer(li, WANG, 100, idempotency_key="x")
    assert runner.ledger.balance(li.account_code) == 5_000
