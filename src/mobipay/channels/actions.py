"""What the screenless channels (SMS, voice) can do, over the same services as the API.

A channel knows its caller only by the number the network vouches for (the SMS sender,
the calling line), so it acts as that subscriber's :class:`Principal` without a session.
Payments go through the very same service calls as the client app: limits, holds, partner
orders and idempotency are theirs. The channel's own proof of intent is either the keypad
PIN (voice) or an SMS secondary confirmation (``consent=True``), which stands in for the
PIN up to ``max_consent`` fen per payment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mobipay.bills import errors as bills_errors
from mobipay.bills.model import FetchMode
from mobipay.bills.saved import SavedBill, SavedBills
from mobipay.bills.service import BillsService
from mobipay.channels.errors import NoBillToFetch
from mobipay.channels.words import kind_words
from mobipay.orders.service import PartnerOrder
from mobipay.topup.service import TopupService
from mobipay.wallet import errors as wallet_errors
from mobipay.wallet.model import UserStatus
from mobipay.wallet.service import Principal, TransferDone, WalletService

#: What a line that has not simply succeeded says after its kind (texted and read out alike).
STATE_WORDS: dict[str, tuple[str, str]] = {"pending": ("（处理中）", " (pending)"),
                                           "failed": ("（未成功，未扣款）", " (failed, nothing moved)")}


@dataclass(frozen=True, slots=True)
class Line:
    """One entry of a short statement: signed fen (negative = money out)."""

    when: datetime
    kind: str
    amount: int
    words: tuple[str, str]  # (zh, en) of the kind, with the state when it is not succeeded
    state: str = "succeeded"  # pending | succeeded | failed


class ConsentCapExceeded(wallet_errors.LimitExceeded):
    """Raised as LIMIT_EXCEEDED: SMS-confirmed payments are capped (a phone in the wrong hands)."""


class ChannelActions:
    def __init__(self, wallet: WalletService, topup: TopupService, bills: BillsService, saved: SavedBills,
                 *, max_consent: int) -> None:
        self.wallet = wallet
        self.topup_service = topup
        self.bills = bills
        self.saved = saved
        self.max_consent = max_consent

    async def subscriber(self, raw_msisdn: str) -> Principal:
        """The caller as a principal; refuses unknown numbers and wallets that cannot pay."""
        user = await self.wallet.user_by_msisdn(raw_msisdn)
        if user.status is UserStatus.FROZEN:
            raise wallet_errors.UserFrozen("this wallet is frozen")
        if user.status is not UserStatus.ACTIVE:
            raise wallet_errors.UserClosed(f"this wallet is {user.status.value}")
        return Principal(user.id, "channel", user.msisdn, user.account_code)

    async def balance(self, me: Principal) -> int:
        """Available fen (balance less holds of pending orders)."""
        return (await self.wallet.uow.ledger.account(me.account_code)).available

    async def recent(self, me: Principal, limit: int = 5) -> list[Line]:
        """The newest ``limit`` payments of the wallet, newest first, one line each with its state."""
        items, _ = await self.wallet.history(me.account_code, limit=limit, newest_first=True)
        lines = []
        for e in items:
            code, state = str(e["code"]), str(e["state"])
            words = kind_words(code)
            if state in STATE_WORDS:
                words = (words[0] + STATE_WORDS[state][0], words[1] + STATE_WORDS[state][1])
            # A wallet is a liability: a credit (negative posting amount) is money in.
            lines.append(Line(e["created_at"], code, -int(e["amount"]), words, state))
        return lines

    async def verify_pin(self, me: Principal, pin: str) -> None:
        await self.wallet.verify_pin(me.msisdn, pin)

    def check_consent(self, amount: int, consent: bool = True) -> None:
        """Refuse a payment over the cap that an SMS confirmation may authorise."""
        if consent and amount > self.max_consent:
            raise ConsentCapExceeded(
                f"payments confirmed by SMS are up to {self.max_consent / 100:.2f} CNY; use the app for more",
                field="amount", limit="sms_payment_max", max=self.max_consent)

    async def transfer(self, me: Principal, to: str, amount: int, *, key: str, pin: str | None = None,
                       consent: bool = False) -> TransferDone:
        self.check_consent(amount, consent)
        return await self.wallet.transfer(me, to, amount, idempotency_key=key, pin=pin, consent=consent)

    async def topup(self, me: Principal, number: str | None, amount: int, *, key: str, pin: str | None = None,
                    consent: bool = False) -> PartnerOrder:
        self.check_consent(amount, consent)
        return await self.topup_service.topup(me, number or me.msisdn, amount, idempotency_key=key, pin=pin,
                                              consent=consent)

    async def saved_bills(self, me: Principal) -> list[SavedBill]:
        return await self.saved.mine(me)

    async def saved_bill(self, me: Principal, name: str) -> SavedBill:
        """A saved bill by nickname (case and spacing ignored), or by its position in the list (1, 2…)."""
        mine = await self.saved.mine(me)
        wanted = "".join(name.split()).casefold()
        for i, bill in enumerate(mine, 1):
            if wanted in ("".join(bill.nickname.split()).casefold(), bill.customer_id, str(i)):
                return bill
        raise bills_errors.SavedBillNotFound(f"no saved bill named {name!r}", field="name")

    async def bill_due(self, me: Principal, saved: SavedBill) -> tuple[str | None, int]:
        """The fetched bill id and amount due of a saved bill (the biller is asked now)."""
        biller = await self.bills.biller(saved.biller)
        if biller.fetch is FetchMode.NONE:
            raise NoBillToFetch(f"{biller.name} has no bills to fetch; pay an amount in the app", field="name")
        fetched = await self.bills.fetch(me, biller.code, saved.customer_id)
        return fetched.id, fetched.bill.amount_due

    async def pay_saved_bill(self, me: Principal, name: str, *, key: str, pin: str | None = None,
                             consent: bool = False, bill_id: str | None = None,
                             amount: int | None = None) -> PartnerOrder:
        """Pay a saved bill's current amount due (fetched now unless ``bill_id``/``amount`` are given)."""
        saved = await self.saved_bill(me, name)
        if bill_id is None or amount is None:
            bill_id, amount = await self.bill_due(me, saved)
        self.check_consent(amount, consent)
        return await self.bills.pay(me, saved.biller, saved.customer_id, amount, idempotency_key=key, bill_id=bill_id,
                                    pin=pin, preauthorized=consent)


