"""Registration by SMS one-time code, on SQLite and PostgreSQL: the code travels only
through the outbox, wrong/late/used codes change nothing, the wallet opens in the ledger."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select, text

from mobipay.kernel.clock import ManualClock
from mobipay.kernel.errors import MobipayError
from mobipay.ledger.service import Ledger
from mobipay.platform.bootstrap import redact
from mobipay.platform.db import Database
from mobipay.platform.uow import UnitOfWorkRunner
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
    return [p["params"]["code"] for p in payloads if p["to"] == msisdn]


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
