"""Money in and out through the bank SIMULATOR (a real HTTP server in its own process), on
SQLite and PostgreSQL: card binding as the real-name check, cash-in, cash-out with its
fee, every way the bank can fail to answer, status queries, the daily file, and closing
a wallet. Every story asserts balances at the bank and in the ledger, and that a refused
or failed step moved nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from mobipay.kernel.clock import SHANGHAI, ManualClock
from mobipay.kernel.errors import MobipayError
from mobipay.ledger.chart import BANK_SETTLEMENT, FEE_INCOME, SYSTEM_ACCOUNTS
from mobipay.ledger.service import Ledger
from mobipay.ledger.uow import UnitOfWorkRunner
from mobipay.orders.model import OrderState as BankOrderState
from mobipay.orders.model import PartnerStatus
from mobipay.orders.service import OrderBook
from mobipay.platform.db import Database
from mobipay.wallet.banking import BankingService
from mobipay.wallet.gateway_http import HttpBankGateway
from mobipay.wallet.model import CashOutFee, UserStatus, id_card_check_char, luhn_complete
from mobipay.wallet.reference_data import card_bins, number_segments
from mobipay.wallet.service import Principal, WalletService
from tests.conftest import BANK_SECRET
from tests.support import partners

ID = "11010519491231002"
ID_NUMBER = ID + id_card_check_char(ID)
CARD = luhn_complete("622202" + "000011112222")  # ICBC debit
NAME = "王小明"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC))  # the bank's daily file uses real dates


@pytest.fixture
async def banking(db: Database, ledger: Ledger, clock: ManualClock, bank: str, tmp_path: Path
                  ) -> AsyncIterator[BankingService]:
    await ledger.open_accounts(list(SYSTEM_ACCOUNTS))
    uow = UnitOfWorkRunner(db, clock, ledger)
    wallet = WalletService(uow, number_segments(), b"test-secret")
    gateway = HttpBankGateway(bank, BANK_SECRET.encode(), timeout_s=1.0)
    yield BankingService(uow, wallet, gateway, card_bins(), OrderBook(uow, tmp_path),
                         fee=CashOutFee(10, 10))
    await gateway.close()


async def subscriber(banking: BankingService, msisdn: str = "+8613800138000", balance: int = 0) -> Principal:
    user = await banking.wallet.create_user(msisdn, actor="test", reason="test")
    if balance:
        from mobipay.ledger.model import Leg, Transfer

        result = await banking.uow.ledger.post(Transfer(f"fund:{msisdn}", (Leg.debit(BANK_SETTLEMENT, balance),
                                                                          Leg.credit(user.account_code, balance)),
                                                        "cash_in"))
        assert result.ok
    return Principal(user.id, "s", user.msisdn, user.account_code)


def open_bank_account(bank: str, card: str = CARD, name: str = NAME, id_number: str = ID_NUMBER,
                      phone: str = "13800138000", balance: int = 1_000_000) -> None:
    httpx.post(f"{bank}/sim/accounts", json={"card_number": card, "name": name, "id_number": id_number,
                                             "phone": phone, "balance": balance}).raise_for_status()


def bank_balance(bank: str, card: str = CARD) -> int:
    return int(httpx.get(f"{bank}/sim/accounts/{card}").json()["balance"])


def forget(bank: str, order_id: str) -> bool:
    """Make the bank lose an order."""
    return bool(httpx.post(f"{bank}/sim/orders/{order_id}/forget").json()["forgotten"])


def behave(bank: str, **behaviour: Any) -> None:
    partners.behave(f"{bank}/sim", **behaviour)


def release(bank: str) -> int:
    return partners.release(f"{bank}/sim")


async def balances(banking: BankingService, me: Principal) -> tuple[int, int, int, int]:
    accounts = await banking.uow.ledger.accounts([me.account_code, BANK_SETTLEMENT, FEE_INCOME])
    w = accounts[me.account_code]
    return w.balance, w.available, accounts[BANK_SETTLEMENT].balance, accounts[FEE_INCOME].balance


async def refused(coro: Any) -> str:
    with pytest.raises(MobipayError) as info:
        await coro
    return info.value.code


async def bound(banking: BankingService, bank: str, me: Principal) -> str:
    open_bank_account(bank)
    return (await banking.bind_card(me, CARD, NAME, ID_NUMBER)).id


async def test_binding_a_card_verifies_the_real_name(banking: BankingService, bank: str) -> None:
    me = await subscriber(banking)
    other = await subscriber(banking, "+8613900139000")
    open_bank_account(bank)
    credit_card = luhn_complete("439225" + "000011112222")
    assert await refused(banking.bind_card(me, credit_card, NAME, ID_NUMBER)) == "CARD_NOT_SUPPORTED"
    assert await refused(banking.bind_card(me, luhn_complete("999999000011112222"), NAME, ID_NUMBER)) == (
        "CARD_NOT_SUPPORTED")
    assert await refused(banking.bind_card(me, CARD[:-1] + str((int(CARD[-1]) + 1) % 10), NAME, ID_NUMBER)) == (
        "INVALID_CARD_NUMBER")
    assert await refused(banking.bind_card(me, CARD, NAME, ID_NUMBER[:-1] + "0")) in ("INVALID_ID_CARD",)
    assert await refused(banking.bind_card(me, CARD, "王小", ID_NUMBER)) == "CARD_VERIFICATION_FAILED"
    assert await refused(banking.bind_card(me, CARD, "1", ID_NUMBER)) == "INVALID_REAL_NAME"
    assert (await banking.wallet.user_by_msisdn(me.msisdn)).tier == 1  # nothing changed
    assert await banking.cards(me) == []

    card = await banking.bind_card(me, f"{CARD[:4]} {CARD[4:8]} {CARD[8:]}", NAME, ID_NUMBER)
    assert (card.bank_code, card.masked) == ("ICBC", f"622202{'*' * (len(CARD) - 10)}{CARD[-4:]}")
    assert (await banking.wallet.user_by_msisdn(me.msisdn)).tier == 2
    assert await banking.bind_card(me, CARD, NAME, ID_NUMBER) == card  # again: the same card
    assert [c.id for c in await banking.cards(me)] == [card.id]
    assert (await banking.recipient("13800138000")).masked_name == "**明"
    assert (await banking.recipient("13900139000")).masked_name is None
    assert not (await banking.recipient("13700137000")).registered
    # the card is this person's: another wallet cannot have it
    assert await refused(banking.bind_card(other, CARD, NAME, ID_NUMBER)) == "CARD_ALREADY_BOUND"
    # a second card must be the same person's
    second = luhn_complete("621700" + "000011113333")
    open_bank_account(bank, second, name="李四")
    assert await refused(banking.bind_card(me, second, "李四", ID_NUMBER)) == "IDENTITY_MISMATCH"


async def test_cash_in_is_credited_once(banking: BankingService, bank: str) -> None:
    me = await subscriber(banking)
    card = await bound(banking, bank, me)
    before = await balances(banking, me)
    order = await banking.cash_in(me, card, 50_000, idempotency_key="ci-1")
    assert order.state is BankOrderState.SUCCEEDED and order.partner_ref and not order.replayed
    again = await banking.cash_in(me, card, 50_000, idempotency_key="ci-1")
    assert (again.id, again.state, again.replayed) == (order.id, BankOrderState.SUCCEEDED, True)
    assert await refused(banking.cash_in(me, card, 40_000, idempotency_key="ci-1")) == "IDEMPOTENCY_CONFLICT"
    assert await balances(banking, me) == (before[0] + 50_000, before[1] + 50_000, before[2] + 50_000, before[3])
    assert bank_balance(bank) == 1_000_000 - 50_000
    assert await refused(banking.cash_in(me, "card_nope", 100, idempotency_key="ci-2")) == "CARD_NOT_FOUND"
    assert await refused(banking.cash_in(me, card, 0, idempotency_key="ci-3")) == "INVALID_AMOUNT"
    assert await refused(banking.cash_in(me, card, 1.5, idempotency_key="ci-4")) == "INVALID_AMOUNT"


async def test_cash_out_charges_the_fee_on_top(banking: BankingService, bank: str) -> None:
    me = await subscriber(banking, balance=100_000)
    card = await bound(banking, bank, me)
    await banking.wallet.set_pin(me.msisdn, "135790")
    before = await balances(banking, me)
    assert await refused(banking.cash_out(me, card, 10_000, idempotency_key="co-1", pin=None)) == "PIN_REQUIRED"
    assert await refused(banking.cash_out(me, card, 10_000, idempotency_key="co-1", pin="000111")) == (
        "PIN_INCORRECT")
    assert await refused(banking.cash_out(me, card, 100_000, idempotency_key="co-1", pin="135790")) == (
        "INSUFFICIENT_FUNDS")  # 1,000 CNY + 1 CNY fee > 1,000 CNY
    assert await balances(banking, me) == before and bank_balance(bank) == 1_000_000
    order = await banking.cash_out(me, card, 50_000, idempotency_key="co-1", pin="135790")
    assert (order.state, order.fee) == (BankOrderState.SUCCEEDED, 50)  # 0.1 %
    small = await banking.cash_out(me, card, 1_000, idempotency_key="co-2", pin="135790")
    assert small.fee == 10  # the minimum fee
    # the key first: its replay needs no PIN, another amount under it is a conflict (not PIN_REQUIRED)
    assert (await banking.cash_out(me, card, 1_000, idempotency_key="co-2", pin=None)).replayed
    assert await refused(banking.cash_out(me, card, 2_000, idempotency_key="co-2", pin=None)) == (
        "IDEMPOTENCY_CONFLICT")
    assert await balances(banking, me) == (before[0] - 51_060, before[1] - 51_060, before[2] - 51_000,
                                           before[3] + 60)
    assert bank_balance(bank) == 1_000_000 + 51_000


async def test_a_declined_order_moves_nothing(banking: BankingService, bank: str) -> None:
    me = await subscriber(banking, balance=100_000)
    card = await bound(banking, bank, me)
    before = await balances(banking, me)
    behave(bank, decline_rate=1.0)
    order = await banking.cash_in(me, card, 10_000, idempotency_key="d-1")
    assert (order.state, order.reason) == (BankOrderState.FAILED, "declined")
    open_bank_account(bank, balance=500)  # too little at the bank: failed as well
    behave(bank)
    poor = await banking.cash_in(me, card, 10_000, idempotency_key="d-2")
    assert (poor.state, poor.reason) == (BankOrderState.FAILED, "insufficient_funds")
    assert await balances(banking, me) == before and bank_balance(bank) == 500


async def test_unknown_outcomes_stay_pending_until_the_bank_says(banking: BankingService, bank: str,
                                                                 clock: ManualClock) -> None:
    me = await subscriber(banking)
    card = await bound(banking, bank, me)
    before = await balances(banking, me)

    # The money moves at the bank but its reply never comes in time.
    behave(bank, timeout_rate=1.0, hang_s=None)
    lost_reply = await banking.cash_in(me, card, 10_000, idempotency_key="u-1")
    # The bank fails before doing anything (HTTP 500): it has no such order.
    behave(bank, error_rate=1.0)
    never_arrived = await banking.cash_in(me, card, 20_000, idempotency_key="u-2")
    # The bank accepts but finishes later.
    behave(bank, processing_rate=1.0, settle_after_s=None)  # held until released below
    later = await banking.cash_in(me, card, 30_000, idempotency_key="u-3")
    assert {o.state for o in (lost_reply, never_arrived, later)} == {BankOrderState.PENDING}
    balance, available, *_ = await balances(banking, me)
    assert (balance, available) == (before[0], before[1])  # pending money is not spendable
    assert bank_balance(bank) == 1_000_000 - 10_000

    behave(bank)
    assert release(bank) == 1  # the bank finishes the one it was processing
    assert bank_balance(bank) == 1_000_000 - 40_000
    assert await banking.orders.resolve_pending() == 0  # not due yet
    clock.advance(10)
    assert await banking.orders.resolve_pending() == 3
    # the one the bank never got was sent again (same id), the others were asked about
    states = {o.id: o.state for o in await banking.my_orders(me)}
    assert set(states.values()) == {BankOrderState.SUCCEEDED}
    assert await balances(banking, me) == (before[0] + 60_000, before[1] + 60_000, before[2] + 60_000, before[3])
    assert bank_balance(bank) == 1_000_000 - 60_000
    clock.advance(3600)
    assert await banking.orders.resolve_pending() == 0  # nothing pending, nothing asked, nothing moved twice
    assert bank_balance(bank) == 1_000_000 - 60_000


async def test_the_daily_file_settles_and_reports(banking: BankingService, bank: str, clock: ManualClock) -> None:
    me = await subscriber(banking)
    card = await bound(banking, bank, me)
    ok = await banking.cash_in(me, card, 1_000, idempotency_key="r-1")
    behave(bank, timeout_rate=1.0, hang_s=3)
    pending = await banking.cash_in(me, card, 2_000, idempotency_key="r-2")
    behave(bank)
    assert pending.state is BankOrderState.PENDING
    gone = await banking.cash_in(me, card, 4_000, idempotency_key="r-3")
    assert forget(bank, gone.id)
    today = datetime.now(UTC).astimezone(SHANGHAI).date()

    report = await banking.reconcile(today)
    assert (report.matched, report.settled_from_file) == (1, 1)
    assert [(e["order_id"], e["kind"]) for e in report.exceptions] == [(gone.id, "missing_there")]
    assert report.report_path is not None and gone.id in report.report_path.read_text()
    assert ok.state is BankOrderState.SUCCEEDED
    assert {o.id: o.state for o in await banking.my_orders(me)}[pending.id] is BankOrderState.SUCCEEDED
    assert (await balances(banking, me))[0] == 7_000
    again = await banking.reconcile(today)  # a second run settles nothing twice
    assert (again.matched, again.settled_from_file, len(again.exceptions)) == (2, 0, 1)
    assert (await balances(banking, me))[0] == 7_000
    assert (await banking.reconcile(today - timedelta(days=30))).lines == 0


async def test_closing_pays_the_balance_out_first(banking: BankingService, bank: str) -> None:
    empty = await subscriber(banking, "+8613900139000")
    user, order = await banking.close_user(empty.msisdn, actor="ops", reason="asked to")
    assert (user.status, order) == (UserStatus.CLOSED, None)
    assert await refused(banking.close_user(empty.msisdn, actor="ops", reason="again")) == "USER_CLOSED"

    no_card = await subscriber(banking, "+8618600186000", balance=5_000)
    assert await refused(banking.close_user(no_card.msisdn, actor="ops", reason="asked to")) == "BALANCE_NOT_EMPTY"
    assert (await banking.wallet.user_by_msisdn(no_card.msisdn)).status is UserStatus.ACTIVE

    me = await subscriber(banking, balance=12_345)
    await bound(banking, bank, me)
    user, order = await banking.close_user(me.msisdn, actor="ops", reason="asked to, ticket 7")
    assert order is not None and (order.amount, order.fee, order.state) == (12_345, 0, BankOrderState.SUCCEEDED)
    assert (await banking.wallet.user_by_msisdn(me.msisdn)).status is UserStatus.CLOSED
    assert (await balances(banking, me))[0] == 0 and bank_balance(bank) == 1_000_000 + 12_345
    account = await banking.uow.ledger.account(me.account_code)
    assert account.frozen
    assert await refused(banking.wallet.transfer(no_card, me.msisdn, 100, idempotency_key="to-closed")) == (
        "USER_CLOSED")
    assert (await banking.uow.ledger.verify()).ok


def test_the_bank_refuses_unsigned_stale_and_replayed_requests(bank: str) -> None:
    import hashlib
    import hmac
    import time

    def signed(ts: int, nonce: str, secret: str = BANK_SECRET) -> dict[str, str]:
        mac = hmac.new(secret.encode(), f"{ts}\n{nonce}\nGET\n/v1/orders/bo_x\n".encode(), hashlib.sha256)
        return {"X-Bank-Timestamp": str(ts), "X-Bank-Nonce": nonce, "X-Bank-Signature": mac.hexdigest()}

    now = int(time.time())
    assert httpx.get(f"{bank}/v1/orders/bo_x").status_code == 401
    assert httpx.get(f"{bank}/v1/orders/bo_x", headers=signed(now, "n1", "wrong")).status_code == 401
    assert httpx.get(f"{bank}/v1/orders/bo_x", headers=signed(now - 600, "n2")).status_code == 401
    assert httpx.get(f"{bank}/v1/orders/bo_x", headers=signed(now, "n3")).status_code == 404  # accepted
    replay = httpx.get(f"{bank}/v1/orders/bo_x", headers=signed(now, "n3"))
    assert replay.status_code == 401 and "nonce" in replay.json()["reason"]


async def test_an_unverifiable_reply_is_no_answer(bank: str) -> None:
    """With the wrong secret the bank's replies do not verify: a card check is refused as
    BANK_UNAVAILABLE and a money order's outcome is UNKNOWN (it would stay pending)."""
    gateway = HttpBankGateway(bank, b"not-the-secret", timeout_s=1.0)
    try:
        assert await refused(gateway.verify_card(CARD, NAME, ID_NUMBER, "13800138000")) == "BANK_UNAVAILABLE"
        assert (await gateway.debit("bo_y", "tok", 100)).status is PartnerStatus.UNKNOWN
    finally:
        await gateway.close()
    dead = HttpBankGateway("http://127.0.0.1:9", BANK_SECRET.encode(), timeout_s=0.5)  # nothing listens
    try:
        assert (await dead.query("bo_z")).status is PartnerStatus.UNKNOWN
    finally:
        await dead.close()
