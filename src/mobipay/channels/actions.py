"""What the screenless channels (SMS, voice) can do, over the same services as the API.

A channel knows its caller only by the number the network vouches for (the SMS sender,
the calling line), so it acts as that subscriber's :class:`Principal` without a session.
Payments go through the very same service calls as the client app: limits, holds, partner
orders and idempotency are theirs. The channel's own proof of intent is either the keypad
PIN (voice) or an SMS secondary confirmation (``consent=True``), which stands in for the
PIN up to ``max_consent`` fen per payment.

The operator's products and lottery quick picks are bought the same way (their services take
no ``consent``: an SMS-confirmed purchase goes through without the PIN only up to the
wallet's password-free amount, which every product and quick pick sold here is under).

Insurance is listed and cancelled here, never sold: a policy names the insured person by
name and identity number, which have no place in an SMS or on a keypad (docs/sms.md).
A cancellation moves the premium back into the caller's own wallet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mobipay.bills import errors as bills_errors
from mobipay.bills.model import FetchMode
from mobipay.bills.saved import SavedBill, SavedBills
from mobipay.bills.service import BillsService
from mobipay.channels.errors import NoBillToFetch
from mobipay.channels.words import game_words, kind_words
from mobipay.kernel.clock import SHANGHAI
from mobipay.kernel.msisdn import mask_name
from mobipay.lottery import errors as lottery_errors
from mobipay.lottery.model import GAMES, MAX_BETS, Game, ticket_cost
from mobipay.lottery.service import LotteryService, Ticket
from mobipay.orders.model import OrderState
from mobipay.orders.service import PartnerOrder
from mobipay.products import errors as products_errors
from mobipay.products.model import OperatorProduct
from mobipay.products.service import ProductsService
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


@dataclass(frozen=True, slots=True)
class Policy:
    """One of my policies as the screenless channels show it (``BX``, voice key 8)."""

    order: PartnerOrder  # the purchase
    cancel: PartnerOrder | None  # its latest cancellation attempt, if any
    name: str  # the product's name
    insured: str  # the insured person's name, masked (**明)
    starts_at: datetime
    ends_at: datetime
    until: datetime | None  # cancellable for a full refund until then (None: product no longer sold)
    state: str  # pending | waiting (cover not started) | in_force | expired | cancelling | cancelled
    cancellable: bool  # may be cancelled now: issued, in its period, no cancellation pending or done
    declined: bool  # the insurer declined its latest cancellation
    attempts: int  # cancellation attempts so far

    @property
    def id(self) -> str:
        return self.order.id


@dataclass(frozen=True, slots=True)
class OnSale:
    """A lottery game with the draw on sale now (Beijing time)."""

    game: Game
    issue: str
    sales_close: datetime
    draw_at: datetime


def bet_text(bet: list[list[int]] | tuple[tuple[int, ...], ...], *, padded: bool = True) -> str:
    """A bet as people write it: ``01 05 12 19 27 33+09`` (groups joined by ``+``)."""
    return "+".join(" ".join(f"{n:02d}" if padded else str(n) for n in part) for part in bet)


class ChannelActions:
    def __init__(self, wallet: WalletService, topup: TopupService, bills: BillsService, saved: SavedBills,
                 *, max_consent: int, products: ProductsService | None = None,
                 lottery: LotteryService | None = None) -> None:
        self.wallet = wallet
        self.topup_service = topup
        self.bills = bills
        self.saved = saved
        self.max_consent = max_consent
        self._products = products
        self._lottery = lottery

    @property
    def products(self) -> ProductsService:
        if self._products is None:
            raise RuntimeError("ChannelActions was built without the products service")
        return self._products

    @property
    def lottery(self) -> LotteryService:
        if self._lottery is None:
            raise RuntimeError("ChannelActions was built without the lottery service")
        return self._lottery

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



    # ------------------------------------------------------------------ the operator's products

    def product_list(self) -> list[OperatorProduct]:
        """The catalogue in its shipped order: position 1 is the first product."""
        return list(self.products.catalogue.values())

    def product(self, wanted: str) -> OperatorProduct:
        """A product by its code (any case) or its position in :meth:`product_list` (1, 2…)."""
        listed = self.product_list()
        clean = "".join(wanted.split()).upper()
        if clean.isascii() and clean.isdigit() and 1 <= int(clean) <= len(listed):
            return listed[int(clean) - 1]
        for p in listed:
            if clean in (p.code, "".join(p.name.split()).upper()):
                return p
        raise products_errors.ProductNotFound(f"no product {wanted[:32]!r}", field="product")

    def check_product(self, me: Principal, product: OperatorProduct) -> None:
        """Refuse at once what the products service would refuse on the code: another operator's number."""
        _, operator, _ = self.wallet.operator_of(me.msisdn)
        if operator != self.products.home_operator:
            raise products_errors.ProductNotAvailable(f"{product.name} is for {self.products.home_operator} "
                                                      "numbers only", field="product")

    async def buy_product(self, me: Principal, code: str, *, key: str, pin: str | None = None,
                          consent: bool = False) -> PartnerOrder:
        """Subscribe my own number to a product (``code`` or position)."""
        product = self.product(code)
        self.check_consent(product.price, consent)
        return await self.products.buy_product(me, product.code, idempotency_key=key, pin=pin)

    # ------------------------------------------------------------------ lottery

    def games(self) -> list[OnSale]:
        """Every game with the draw on sale now."""
        return [self.on_sale(code) for code in GAMES]

    def on_sale(self, code: str) -> OnSale:
        return OnSale(*self.lottery.on_sale(code))

    def quick_pick_cost(self, count: int) -> int:
        """What ``count`` quick picks at multiplier 1 cost, or ``INVALID_NUMBERS``."""
        return ticket_cost(count, 1)

    async def buy_quick_picks(self, me: Principal, code: str, count: int, *, issue: str, key: str,
                              pin: str | None = None, consent: bool = False) -> Ticket:
        """``count`` random bets (1..5) for the draw ``issue`` the caller was told of: if its
        sales closed in between, ``SALES_CLOSED`` rather than a ticket for another draw."""
        if not 1 <= count <= MAX_BETS:
            raise lottery_errors.InvalidNumbers(f"a quick pick is 1 to {MAX_BETS} bets", field="quick_picks")
        self.check_consent(self.quick_pick_cost(count), consent)
        return await self.lottery.buy(me, self.on_sale(code).game.code, quick_picks=count, idempotency_key=key,
                                      pin=pin, issue=issue)

    async def tickets(self, me: Principal, limit: int = 3) -> list[Ticket]:
        """My newest tickets with their prizes."""
        return (await self.lottery.mine(me))[:limit]

    @staticmethod
    def game_name(code: str) -> tuple[str, str]:
        return game_words(code)

    # ------------------------------------------------------------------ insurance (listed and cancelled, never sold)

    async def policies(self, me: Principal) -> list[Policy]:
        """My issued and pending policies, newest first: the numbering ``BX`` shows and ``TB n``
        and the voice menu use. A purchase that failed is left out: it is no policy, its money is back."""
        now = self.products.uow.clock.now()
        listed = []
        for order, cancel in await self.products.policies(me):
            if order.state is OrderState.FAILED:
                continue
            product = self.products.insurance.get(str(order.details.get("product", "")))
            starts, ends = (datetime.fromisoformat(order.details[k]) for k in ("starts_at", "ends_at"))
            until = product.cancellable_until(order.created_at, starts) if product else None
            if order.state is OrderState.PENDING:
                state = "pending"
            elif cancel is not None and cancel.state is OrderState.SUCCEEDED:
                state = "cancelled"
            elif cancel is not None and cancel.state is OrderState.PENDING:
                state = "cancelling"
            else:
                state = "waiting" if now < starts else "in_force" if now < ends else "expired"
            declined = cancel is not None and cancel.state is OrderState.FAILED
            cancellable = (order.state is OrderState.SUCCEEDED and (cancel is None or declined)
                           and until is not None and now < until)
            listed.append(Policy(order, cancel, self.policy_name(str(order.details.get("product", ""))),
                                 mask_name(str(order.details.get("insured_name", ""))), starts, ends, until, state,
                                 cancellable, declined, int(cancel.details.get("attempt", 1)) if cancel else 0))
        return listed

    def policy_name(self, code: str) -> str:
        product = self.products.insurance.get(code)
        return product.name if product else code

    async def policy_at(self, me: Principal, position: int) -> Policy:
        """My policy by its position in :meth:`policies` (1, 2…)."""
        mine = await self.policies(me)
        if not 1 <= position <= len(mine):
            raise products_errors.PolicyNotFound(f"there is no policy {position} in your list", field="policy")
        return mine[position - 1]

    @staticmethod
    def check_cancellable(policy: Policy) -> None:
        """Refuse at once what the insurer would not be asked: a policy not issued yet, or past its period."""
        if policy.order.state is not OrderState.SUCCEEDED:
            raise products_errors.PolicyNotFound("this policy is not issued yet", field="policy")
        if not policy.cancellable:
            until = f" (until {policy.until.astimezone(SHANGHAI):%Y-%m-%d %H:%M} Beijing time)" if policy.until else ""
            raise products_errors.CoolingOffOver(f"{policy.name} can no longer be cancelled{until}", field="policy")

    async def cancel_policy(self, me: Principal, policy_id: str, *, attempts_seen: int,
                            pin: str | None = None) -> PartnerOrder:
        """Cancel one of my policies in its cooling-off period (the premium back into my own
        wallet once the insurer confirms). ``attempts_seen``: the cancellation attempts there
        were when the subscriber was asked; a later one is this request's own (a message
        processed again, a fetch sent again) and is answered as it is, never tried again after
        a decline. ``pin`` (voice): the call's PIN, checked again before the insurer is asked."""
        if pin is not None:
            await self.verify_pin(me, pin)
        for policy in await self.policies(me):
            if (policy.id == policy_id and policy.cancel is not None and policy.declined
                    and policy.attempts > attempts_seen):
                return policy.cancel
        return await self.products.cancel_policy(me, policy_id)

    def cancellable_until(self, cancellation: PartnerOrder) -> datetime | None:
        """Until when a declined cancellation may be asked for again."""
        return self.products.cancellable_until(cancellation)
