"""Subscribers on SQLite and PostgreSQL: registration by SMS one-time code (the code travels
only through the outbox; wrong, late or used codes change nothing; the wallet opens in the
ledger) and the payment PIN (argon2id, weak PINs refused, growing lockout)."""

from __future__ import annotations

import json

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select, text

from mobipay.app.bootstrap import redact
from mobipay.kernel.clock import ManualClock
from mobipay.kernel.errors import MobipayError
from mobipay.ledger.service import Ledger
from mobipay.ledger.uow import UnitOfWorkRunner
from mobipay.platform.db import Database
from mobipay.wallet.model import OtpPurpose
from mobipay.wallet.reference_data import number_segments
from mobipay.wallet.service import WalletService
from mobipay.wallet.tables import users


@pytest.fixture
def wallet(db: Database, ledger: Ledger, clock: ManualClock) -> WalletService:
    return WalletService(UnitOfWorkRunner(db, clock, ledger), number_segments(), b"test-secret")


async def sent_codes(db: Database, msisdn: str) -> list[str]:
    async with db.begin() as conn:
        rows = await conn.execute(text("SELECT payload FROM outbox_messages WHERE topic = 'sms.send' "
                                       "ORDER BY created_at"))
        payloads = [json.loads(r[0]) for r in rows]
    return [p["params"]["code"] for p in payloads if p["to"] == msisdn and p["template"].startswith("otp.")]


async def count_users(db: Database) -> int:
    async with db.begin() as conn:
        return int((await conn.execute(select(func.count()).select_from(users))).scalar_one())


async def refused(coro: object) -> str:
    with pytest.raises(MobipayError) as info:
        await coro  # type: ignore[misc]
    return info.value.code


async def test_register_with_the_code_opens_a_wallet(wallet: WalletService, db: Database, ledger: Ledger) -> None:
    sent = await wallet.request_otp("138 0013 8000", OtpPurpose.REGISTER)
    assert sent.msisdn == "+8613800138000" and sent.resend_after_s == 60
    [code] = await sent_codes(db, "+8613800138000")
    assert len(code) == 6 and code.isdigit()
    async with db.begin() as conn:  # stored only as a hash
        stored = (await conn.execute(text("SELECT code_hash FROM wallet_otps"))).scalar_one()
    assert code not in stored

    user = await wallet.register("+86 138-0013-8000", code)
    assert (user.msisdn, user.operator, user.tier, user.account_code) == (
        "+8613800138000", "china_mobile", 1, "wallet:+8613800138000")
    account = await ledger.account(user.account_code)
    assert account.balance == 0 and account.debits_must_not_exceed_credits
    assert (await wallet.user_by_msisdn("13800138000")).id == user.id
    assert await refused(wallet.register("13800138000", code)) == "OTP_INVALID"  # used once only


async def test_wrong_late_and_exhausted_codes_change_nothing(
    wallet: WalletService, db: Database, clock: ManualClock
) -> None:
    await wallet.request_otp("13900139000", OtpPurpose.REGISTER)
    [code] = await sent_codes(db, "+8613900139000")
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(4):
        assert await refused(wallet.register("13900139000", wrong)) == "OTP_INVALID"
    assert await refused(wallet.register("13900139000", wrong)) == "OTP_INVALID"  # the 5th wrong try
    assert await refused(wallet.register("13900139000", code)) == "OTP_ATTEMPTS_EXCEEDED"
    assert await count_users(db) == 0

    assert await refused(wallet.request_otp("13900139000", OtpPurpose.REGISTER)) == "OTP_RESEND_TOO_SOON"
    clock.advance(61)
    await wallet.request_otp("13900139000", OtpPurpose.REGISTER)
    fresh = (await sent_codes(db, "+8613900139000"))[-1]
    clock.advance(301)
    assert await refused(wallet.register("13900139000", fresh)) == "OTP_EXPIRED"
    assert await count_users(db) == 0


async def test_a_registered_number_cannot_register_again(wallet: WalletService, db: Database,
                                                         clock: ManualClock) -> None:
    await wallet.request_otp("18600186000", OtpPurpose.REGISTER)
    await wallet.register("18600186000", (await sent_codes(db, "+8618600186000"))[-1])
    clock.advance(61)
    await wallet.request_otp("18600186000", OtpPurpose.REGISTER)  # no hint that it is registered
    code = (await sent_codes(db, "+8618600186000"))[-1]
    assert await refused(wallet.register("18600186000", code)) == "USER_EXISTS"
    assert await count_users(db) == 1


@pytest.mark.parametrize(("number", "code"), [("12345", "INVALID_MSISDN"), ("+1 415 555 0100", "INVALID_MSISDN"),
                                              ("14000140000", "UNKNOWN_NUMBER_SEGMENT")])
async def test_bad_numbers_are_refused_and_send_nothing(wallet: WalletService, db: Database, number: str,
                                                        code: str) -> None:
    assert await refused(wallet.request_otp(number, OtpPurpose.REGISTER)) == code
    async with db.begin() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM outbox_messages"))).scalar_one() == 0


async def test_unknown_user(wallet: WalletService) -> None:
    assert await refused(wallet.user_by_msisdn("13800138000")) == "USER_NOT_FOUND"


def test_codes_never_reach_the_log() -> None:
    payload = {"to": "+8613800138000", "template": "otp.register", "params": {"code": "493817", "minutes": 5},
               "nested": [{"pin": "739154"}]}
    assert redact(payload) == {"to": "+8613800138000", "template": "otp.register",
                               "params": {"code": "***", "minutes": 5}, "nested": [{"pin": "***"}]}


async def registered(wallet: WalletService, db: Database, number: str) -> str:
    sent = await wallet.request_otp(number, OtpPurpose.REGISTER)
    await wallet.register(number, (await sent_codes(db, sent.msisdn))[-1])
    return sent.msisdn


@pytest.fixture
def fast_wallet(db: Database, ledger: Ledger, clock: ManualClock) -> WalletService:
    """argon2id with test-sized parameters (the real ones cost ~40 ms a hash)."""
    return WalletService(UnitOfWorkRunner(db, clock, ledger), number_segments(), b"test-secret",
                         pin_hasher=PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


async def test_pin_set_verify_change(fast_wallet: WalletService, db: Database) -> None:
    msisdn = await registered(fast_wallet, db, "13800138000")
    assert await refused(fast_wallet.verify_pin(msisdn, "739154")) == "PIN_NOT_SET"
    assert await refused(fast_wallet.set_pin(msisdn, "123456")) == "WEAK_PIN"
    assert await refused(fast_wallet.set_pin(msisdn, "138000")) == "WEAK_PIN"  # the number's last six
    await fast_wallet.set_pin(msisdn, "739154")
    async with db.begin() as conn:
        stored = (await conn.execute(text("SELECT pin_hash FROM wallet_pins"))).scalar_one()
    assert stored.startswith("$argon2id$") and "739154" not in stored
    await fast_wallet.verify_pin(msisdn, "739154")
    assert await refused(fast_wallet.set_pin(msisdn, "482915")) == "PIN_ALREADY_SET"
    assert await refused(fast_wallet.change_pin(msisdn, "000001", "482915")) == "PIN_INCORRECT"
    await fast_wallet.change_pin(msisdn, "739154", "482915")
    await fast_wallet.verify_pin(msisdn, "482915")
    assert await refused(fast_wallet.verify_pin(msisdn, "739154")) == "PIN_INCORRECT"
    for bad in ("12ab56", "7391545", ""):
        assert await refused(fast_wallet.verify_pin(msisdn, bad)) == "INVALID_PIN"


async def test_wrong_pins_lock_payments_for_longer_each_time(
    fast_wallet: WalletService, db: Database, clock: ManualClock
) -> None:
    msisdn = await registered(fast_wallet, db, "13900139000")
    await fast_wallet.set_pin(msisdn, "739154")
    codes = [await refused(fast_wallet.verify_pin(msisdn, "111112")) for _ in range(5)]
    assert codes == ["PIN_INCORRECT"] * 4 + ["PIN_LOCKED"]
    assert await refused(fast_wallet.verify_pin(msisdn, "739154")) == "PIN_LOCKED"  # even the right one
    clock.advance(15 * 60)
    await fast_wallet.verify_pin(msisdn, "739154")  # unlocked after 15 minutes
    codes = [await refused(fast_wallet.verify_pin(msisdn, "111112")) for _ in range(5)]
    assert codes[-1] == "PIN_LOCKED"
    clock.advance(15 * 60)
    assert await refused(fast_wallet.verify_pin(msisdn, "739154")) == "PIN_LOCKED"  # second lockout: 30 min
    clock.advance(15 * 60)
    await fast_wallet.verify_pin(msisdn, "739154")


async def test_concurrent_double_spend_from_two_devices(fast_wallet: WalletService, db: Database,
                                                        ledger: Ledger) -> None:
    """Two devices of one subscriber spend the same balance at the same moment: one wins."""
    import asyncio

    from mobipay.ledger.chart import BANK_SETTLEMENT, SYSTEM_ACCOUNTS
    from mobipay.ledger.model import Leg, Transfer

    alice = await registered(fast_wallet, db, "13800138000")
    bob = await registered(fast_wallet, db, "13900139000")
    await ledger.open_accounts(list(SYSTEM_ACCOUNTS))
    assert (await ledger.post(Transfer("fund", (Leg.debit(BANK_SETTLEMENT, 10_000),
                                                Leg.credit(f"wallet:{alice}", 10_000)), "cash_in"))).ok
    phone = await fast_wallet.login(alice, device_id="phone", code=await _login_code(fast_wallet, db, alice))
    tablet_code = await _login_code(fast_wallet, db, alice, later=True)
    tablet = await fast_wallet.login(alice, device_id="tablet", code=tablet_code)
    me_phone = await fast_wallet.authenticate(phone.access_token)
    me_tablet = await fast_wallet.authenticate(tablet.access_token)
    results = await asyncio.gather(
        fast_wallet.transfer(me_phone, bob, 8_000, idempotency_key="from-phone"),
        fast_wallet.transfer(me_tablet, bob, 8_000, idempotency_key="from-tablet"),
        return_exceptions=True,
    )
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(errors) == 1 and getattr(errors[0], "code", None) == "INSUFFICIENT_FUNDS", results
    found = await ledger.accounts([f"wallet:{alice}", f"wallet:{bob}"])
    assert (found[f"wallet:{alice}"].balance, found[f"wallet:{bob}"].balance) == (2_000, 8_000)
    assert (await ledger.verify()).ok


async def _login_code(wallet: WalletService, db: Database, msisdn: str, *, later: bool = False) -> str:
    if later:  # a second code for the same number waits out the resend throttle
        wallet.uow.clock.advance(61)  # type: ignore[attr-defined]
    await wallet.request_otp(msisdn, OtpPurpose.LOGIN)
    return (await sent_codes(db, msisdn))[-1]


async def test_operator_create_freeze_unfreeze_are_audited(fast_wallet: WalletService, db: Database,
                                                           ledger: Ledger) -> None:
    from mobipay.ledger.chart import BANK_SETTLEMENT, SYSTEM_ACCOUNTS
    from mobipay.ledger.model import Leg, Transfer
    from mobipay.platform import audit
    from mobipay.wallet.service import Principal

    alice = await fast_wallet.create_user("13800138000", actor="ops1", reason="walk-in customer")
    bob = await fast_wallet.create_user("13900139000", actor="ops1", reason="walk-in customer")
    assert await refused(fast_wallet.create_user("13800138000", actor="ops1", reason="again")) == "USER_EXISTS"
    await ledger.open_accounts(list(SYSTEM_ACCOUNTS))
    assert (await ledger.post(Transfer("f", (Leg.debit(BANK_SETTLEMENT, 500), Leg.credit(alice.account_code, 500)),
                                       "cash_in"))).ok
    as_alice = Principal(alice.id, "s", alice.msisdn, alice.account_code)
    as_bob = Principal(bob.id, "s", bob.msisdn, bob.account_code)

    assert await refused(fast_wallet.set_frozen(alice.msisdn, True, actor="ops2", reason=" ")) == "VALIDATION_FAILED"
    frozen = await fast_wallet.set_frozen(alice.msisdn, True, actor="ops2", reason="reported lost phone")
    assert frozen.status.value == "frozen"
    assert await refused(fast_wallet.transfer(as_alice, bob.msisdn, 100, idempotency_key="k1")) == "USER_FROZEN"
    assert await refused(fast_wallet.transfer(as_bob, alice.msisdn, 1, idempotency_key="k2")) in (
        "ACCOUNT_FROZEN", "INSUFFICIENT_FUNDS")  # bob has nothing, and alice cannot receive either
    await fast_wallet.set_frozen(alice.msisdn, False, actor="ops2", reason="phone found")
    assert (await fast_wallet.transfer(as_alice, bob.msisdn, 100, idempotency_key="k3")).amount == 100

    async with db.begin() as conn:
        trail = await audit.entries(conn, alice.msisdn)
    assert [(e["actor"], e["action"], e["reason"]) for e in trail] == [
        ("ops1", "user.create", "walk-in customer"), ("ops2", "user.freeze", "reported lost phone"),
        ("ops2", "user.unfreeze", "phone found")]
    assert trail[1]["before"] == '{"status": "active"}' and trail[1]["after"] == '{"status": "frozen"}'


async def test_locked_pin_is_reset_by_sms_code(fast_wallet: WalletService, db: Database, clock: ManualClock) -> None:
    msisdn = await registered(fast_wallet, db, "15000150000")
    await fast_wallet.set_pin(msisdn, "739154")
    for _ in range(5):
        await refused(fast_wallet.verify_pin(msisdn, "111112"))
    assert await refused(fast_wallet.verify_pin(msisdn, "739154")) == "PIN_LOCKED"
    await fast_wallet.request_otp(msisdn, OtpPurpose.RESET_PIN)
    code = (await sent_codes(db, msisdn))[-1]
    assert await refused(fast_wallet.reset_pin(msisdn, code, "654321")) == "WEAK_PIN"
    wrong = "000000" if code != "000000" else "111111"
    assert await refused(fast_wallet.reset_pin(msisdn, wrong, "482915")) == "OTP_INVALID"
    await fast_wallet.reset_pin(msisdn, code, "482915")
    await fast_wallet.verify_pin(msisdn, "482915")  # unlocked, new PIN
    assert await refused(fast_wallet.verify_pin(msisdn, "739154")) == "PIN_INCORRECT"
    register_code = await _login_code(fast_wallet, db, msisdn, later=True)  # a login code cannot reset
    assert await refused(fast_wallet.reset_pin(msisdn, register_code, "591837")) == "OTP_INVALID"


async def test_unclaimed_money_goes_back_after_three_days(fast_wallet: WalletService, db: Database,
                                                          ledger: Ledger, clock: ManualClock) -> None:
    from mobipay.ledger.chart import BANK_SETTLEMENT, SUSPENSE, SYSTEM_ACCOUNTS
    from mobipay.ledger.model import Leg, Transfer
    from mobipay.wallet.service import Principal

    await ledger.open_accounts(list(SYSTEM_ACCOUNTS))
    alice = await fast_wallet.create_user("13800138000", actor="t", reason="test")
    assert (await ledger.post(Transfer("f", (Leg.debit(BANK_SETTLEMENT, 5_000), Leg.credit(alice.account_code, 5_000)),
                                       "cash_in"))).ok
    me = Principal(alice.id, "s", alice.msisdn, alice.account_code)
    done = await fast_wallet.transfer(me, "15000150000", 2_000, idempotency_key="k1")
    assert done.status == "waiting_for_recipient"
    assert (await ledger.account(SUSPENSE)).balance == 2_000
    clock.advance(3 * 24 * 3600 - 1)
    assert await fast_wallet.return_expired_claims() == 0  # not yet
    clock.advance(2)
    assert await fast_wallet.return_expired_claims() == 1
    assert await fast_wallet.return_expired_claims() == 0
    assert (await ledger.account(alice.account_code)).balance == 5_000
    assert (await ledger.account(SUSPENSE)).balance == 0
    late = await fast_wallet.create_user("15000150000", actor="t", reason="registers too late")
    assert (await ledger.account(late.account_code)).balance == 0
    assert (await ledger.verify()).ok


async def test_money_requests_expire(fast_wallet: WalletService, db: Database, ledger: Ledger,
                                     clock: ManualClock) -> None:
    from mobipay.wallet.service import Principal

    alice = await fast_wallet.create_user("13800138000", actor="t", reason="test")
    bob = await fast_wallet.create_user("13900139000", actor="t", reason="test")
    as_alice = Principal(alice.id, "s", alice.msisdn, alice.account_code)
    as_bob = Principal(bob.id, "s", bob.msisdn, bob.account_code)
    request = await fast_wallet.request_money(as_alice, bob.msisdn, 100, idempotency_key="k")
    clock.advance(3 * 24 * 3600)
    incoming, _ = await fast_wallet.money_requests(as_bob)
    assert [r.state for r in incoming] == ["expired"]
    assert await refused(fast_wallet.pay_request(as_bob, request.id)) == "REQUEST_NOT_OPEN"
    assert await refused(fast_wallet.decline_request(as_bob, request.id)) == "REQUEST_NOT_OPEN"
    assert await refused(fast_wallet.pay_request(as_bob, "mrq_nope")) == "NOT_FOUND"
