"""Money in and out through the bank: real-name cards, cash-in, cash-out, closing payouts,
and the bank's daily file.

Binding a debit card is also the real-name check: the bank confirms the four elements
(card, name, identity card, phone), and the wallet becomes Tier II.

Orders to the bank go through the partner-order engine (``orders/service.py``):
written ``pending`` with a ledger hold before the bank hears of them (cash-in: the bank's
money towards the wallet; cash-out: the wallet's money and fee towards the bank), posted
or voided on the bank's clear answer, asked about again (or sent again) when it was not
clear, and settled from the daily file at the latest. Nothing is credited twice or lost.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import structlog
from sqlalchemy import insert, select, update

from mobipay.kernel.clock import SHANGHAI, as_utc
from mobipay.kernel.errors import NotFound, ValidationFailed
from mobipay.kernel.events import SmsRequested
from mobipay.kernel.ids import check_idempotency_key, new_id
from mobipay.kernel.money import check_amount
from mobipay.kernel.msisdn import mask_name, national_number, normalize_msisdn
from mobipay.ledger.chart import BANK_SETTLEMENT, FEE_INCOME, wallet_account
from mobipay.ledger.model import Leg
from mobipay.ledger.uow import UnitOfWork, UnitOfWorkRunner
from mobipay.orders.model import OrderState
from mobipay.orders.service import OrderBook, PartnerOrder, ReconReport
from mobipay.orders.service import order_id as make_order_id
from mobipay.platform import audit
from mobipay.wallet import errors
from mobipay.wallet.gateway import BANK, BankGateway, BankPartner
from mobipay.wallet.model import (
    CardBins,
    CardType,
    CashOutFee,
    KycTier,
    Principal,
    User,
    UserStatus,
    WalletCredited,
    check_card_number,
    check_id_card,
    check_real_name,
    mask_card,
    mask_id_card,
)
from mobipay.wallet.service import WalletService
from mobipay.wallet.tables import cards, identities, sessions, users

log = structlog.get_logger(__name__)
KINDS = ("cash_in", "cash_out", "close_payout")


@dataclass(frozen=True, slots=True)
class Card:
    id: str
    bank_code: str
    bank_name: str
    masked: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Recipient:
    msisdn: str
    registered: bool
    masked_name: str | None


class BankingService:
    """Cards, cash-in/out and closing payouts; each command in its own unit of work."""

    def __init__(self, uow: UnitOfWorkRunner, wallet: WalletService, gateway: BankGateway, bins: CardBins,
                 orders: OrderBook, *, fee: CashOutFee | None = None) -> None:
        self.uow = uow
        self.wallet = wallet
        self.gateway = gateway
        self.bins = bins
        self.fee = fee or CashOutFee()
        self.orders = orders
        orders.register(BANK, BankPartner(gateway))
        for kind in KINDS:
            orders.on_settled(kind, self._settled)

    # ------------------------------------------------------------------ cards and real name

    async def bind_card(self, me: Principal, card_number: object, name: object, id_number: object) -> Card:
        """Bind a debit card after the bank confirms it is this person's; the first one
        verifies the real name and raises the wallet to Tier II."""
        number = check_card_number(card_number)
        real_name = check_real_name(name)
        id_card = check_id_card(id_number, today=self.uow.clock.now().astimezone(SHANGHAI).date())
        issuer = self.bins.lookup(number)
        if issuer.card_type is not CardType.DEBIT:
            raise errors.CardNotSupported("only debit cards can be bound for cash-in and cash-out", field="card_number")
        user = await self._active(me.msisdn)
        card_hmac, id_hmac = self.wallet.keyed_hash("card", number), self.wallet.id_hmac(id_card)

        async def check(uow: UnitOfWork) -> Card | None:
            known = (await uow.conn.execute(select(identities).where(identities.c.user_id == user.id))).first()
            if known is not None and (known.id_hmac != id_hmac or known.name != real_name):
                raise errors.IdentityMismatch("this wallet is verified for another name or identity card",
                                              field="id_number")
            bound = (await uow.conn.execute(select(cards).where(cards.c.card_hmac == card_hmac,
                                                                cards.c.state == "active"))).first()
            if bound is not None:
                if bound.user_id == user.id:
                    return _card(bound)  # bound already: binding again is a no-op
                raise errors.CardAlreadyBound("this card is bound to another wallet", field="card_number")
            return None

        existing = await self.uow.run("bind_card_check", check)
        if existing is not None:
            return existing
        answer = await self.gateway.verify_card(number, real_name, id_card, national_number(user.msisdn))
        if not answer.verified:
            raise errors.CardVerificationFailed(
                f"the bank did not confirm the card ({answer.reason or 'no reason given'}); check the name, "
                "identity card and that the card is registered to this phone number", field="card_number")

        async def bind(uow: UnitOfWork) -> Card:
            card = Card(new_id("card"), issuer.bank_code, issuer.bank_name, mask_card(number), uow.now)
            known = await uow.conn.execute(select(identities.c.user_id).where(identities.c.user_id == user.id))
            if known.first() is None:  # the first card verifies the real name
                await uow.conn.execute(insert(identities).values(
                    user_id=user.id, name=real_name, id_masked=mask_id_card(id_card), id_hmac=id_hmac,
                    verified_at=uow.now, verified_by="bank"))
            await uow.conn.execute(insert(cards).values(
                id=card.id, user_id=user.id, bank_code=card.bank_code, bank_name=card.bank_name, masked=card.masked,
                card_hmac=card_hmac, token=answer.token, state="active", created_at=uow.now))
            if user.tier < KycTier.TIER_2:
                await uow.conn.execute(update(users).where(users.c.id == user.id).values(tier=int(KycTier.TIER_2)))
            await uow.emit(SmsRequested(key=f"card:{card.id}", to=user.msisdn, template="card.bound",
                                        params={"bank": card.bank_name, "card": card.masked[-4:]}))
            return card

        return await self.uow.run("bind_card", bind)

    async def cards(self, me: Principal) -> list[Card]:
        async def work(uow: UnitOfWork) -> list[Card]:
            rows = await uow.conn.execute(select(cards).where(cards.c.user_id == me.user_id, cards.c.state == "active")
                                          .order_by(cards.c.created_at))
            return [_card(r) for r in rows]

        return await self.uow.run("cards", work)

    async def remove_card(self, me: Principal, card_id: str) -> None:
        """Unbind a card (not while an order on it is pending)."""
        if await self.orders.pending_for(me.user_id, card_id=card_id):
            raise errors.CardBusy("an order on this card is still pending; try again when it settles", field="card_id")

        async def work(uow: UnitOfWork) -> None:
            await self._own_card(uow, me.user_id, card_id)
            await uow.conn.execute(update(cards).where(cards.c.id == card_id).values(state="removed"))

        await self.uow.run("remove_card", work)

    async def recipient(self, raw_msisdn: str) -> Recipient:
        """Who a transfer to a number reaches: registered or not, and the verified real name
        masked (``*明``) so the sender can confirm it is the person they mean."""
        msisdn = normalize_msisdn(raw_msisdn)

        async def work(uow: UnitOfWork) -> Recipient:
            row = (await uow.conn.execute(select(users.c.id, identities.c.name)
                                          .outerjoin(identities, identities.c.user_id == users.c.id)
                                          .where(users.c.msisdn == msisdn))).first()
            if row is None:
                return Recipient(msisdn, False, None)
            return Recipient(msisdn, True, mask_name(row.name) if row.name else None)

        return await self.uow.run("recipient", work)

    # ------------------------------------------------------------------ cash-in and cash-out

    async def cash_in(self, me: Principal, card_id: str, amount: object, *, idempotency_key: str) -> PartnerOrder:
        """Move money from a bound card into the wallet."""
        amount = check_amount(amount)
        check_idempotency_key(idempotency_key)
        user = await self._active(me.msisdn)
        return await self._place(user, "cash_in", card_id, amount, 0, idempotency_key)

    async def cash_out(self, me: Principal, card_id: str, amount: object, *, idempotency_key: str,
                       pin: str | None) -> PartnerOrder:
        """Move money from the wallet to a bound card, less nothing: the fee is on top."""
        amount = check_amount(amount)
        check_idempotency_key(idempotency_key)
        user = await self._active(me.msisdn)

        async def authorize() -> None:  # only for a new order: the key comes first
            if pin is None:
                raise errors.PinRequired("cash-out always needs the payment PIN", field="pin")
            await self.wallet.verify_pin(user.msisdn, pin)

        return await self._place(user, "cash_out", card_id, amount, self.fee.of(amount), idempotency_key,
                                 authorize=authorize)

    async def order(self, me: Principal, order_id: str) -> PartnerOrder:
        """One of my bank orders; a pending one is asked about at the bank first."""
        order = await self.orders.get(order_id, refresh=True)
        if order is None or order.user_id != me.user_id or order.kind not in KINDS:
            raise NotFound("no such bank order in your wallet", field="order_id")
        return order

    async def my_orders(self, me: Principal, limit: int = 50) -> list[PartnerOrder]:
        return await self.orders.of_user(me.user_id, KINDS, limit)

    async def _place(self, user: User, kind: str, card_id: str, amount: int, fee: int, key: str,
                     *, actor: str | None = None, reason: str = "",
                     authorize: Callable[[], Awaitable[None]] | None = None) -> PartnerOrder:
        """Place a bank order; ``authorize`` (the PIN) runs first unless the order is a replay."""
        order_id = make_order_id("bo_", user.id, key)
        card = await self.uow.run("own_card", lambda uow: self._own_card(uow, user.id, card_id))
        wallet = user.account_code
        legs: tuple[Leg, ...]
        if kind == "cash_in":
            legs = (Leg.debit(BANK_SETTLEMENT, amount), Leg.credit(wallet, amount))
        else:
            legs = (Leg.debit(wallet, amount + fee), Leg.credit(BANK_SETTLEMENT, amount))
            legs += (Leg.credit(FEE_INCOME, fee),) if fee else ()

        async def closing(uow: UnitOfWork) -> None:
            await uow.conn.execute(update(users).where(users.c.id == user.id).values(status=UserStatus.CLOSING.value))
            await uow.conn.execute(update(sessions).where(sessions.c.user_id == user.id,
                                                          sessions.c.revoked_at.is_(None)).values(revoked_at=uow.now))
            await audit.record(uow.conn, at=uow.now, actor=actor or "system", action="user.close", target=user.msisdn,
                               reason=reason, before={"status": user.status.value},
                               after={"status": UserStatus.CLOSING.value, "payout": amount, "order": order_id})

        details = {"card_id": card_id, "token": card.token}
        if authorize is not None and not await self.orders.known(order_id, partner=BANK, kind=kind, amount=amount,
                                                                 details=details):
            await authorize()
        return await self.orders.place(
            order_id, partner=BANK, kind=kind, user_id=user.id, msisdn=user.msisdn, amount=amount, fee=fee,
            legs=legs, details=details, then=closing if kind == "close_payout" else None)

    async def _settled(self, uow: UnitOfWork, order: PartnerOrder, state: OrderState) -> None:
        """In the settling unit of work: tell the subscriber; finish (or stop) a closing."""
        await uow.emit(SmsRequested(key=f"{order.id}:{state.value}", to=order.msisdn,
                                    template=f"{order.kind}.{state.value}",
                                    params={"amount_fen": order.amount, "fee_fen": order.fee}))
        if order.kind == "cash_in" and state is OrderState.SUCCEEDED:  # for whoever waits for money (NFC debts)
            await uow.emit(WalletCredited(key=f"{order.id}:credited", user_id=order.user_id, msisdn=order.msisdn,
                                          account_code=wallet_account(order.msisdn).code, amount=order.amount,
                                          source="cash_in"))
        if order.kind == "close_payout":
            await self._after_close_payout(uow, order, state)

    async def reconcile(self, day: date) -> ReconReport:
        """Fetch the bank's daily file and reconcile it (see ``OrderBook.reconcile``)."""
        return await self.orders.reconcile(BANK, day, await self.gateway.statement(day))

    # ------------------------------------------------------------------ closing a wallet

    async def close_user(self, raw_msisdn: str, *, actor: str, reason: str) -> tuple[User, PartnerOrder | None]:
        """Close a wallet for good (operator action, audited). The balance is paid out to the
        bound card first (no fee): the wallet is ``closing`` until the bank confirms it."""
        if not reason.strip():
            raise ValidationFailed("give the reason for the audit trail", field="reason")
        user = await self.wallet.user_by_msisdn(raw_msisdn)
        if user.status in (UserStatus.CLOSED, UserStatus.CLOSING):
            raise errors.UserClosed(f"the wallet is already {user.status.value}")
        account = await self.uow.ledger.account(user.account_code)
        if account.available != account.balance or account.credits_pending:
            raise errors.BalanceNotEmpty("money is on hold or on its way to this wallet; close it when that settles")
        if account.balance == 0:
            async def work(uow: UnitOfWork) -> None:
                await self._finish_close(uow, user.id, user.msisdn, user.account_code, actor, reason,
                                         before=user.status.value)

            await self.uow.run("close_user", work)
            return await self.wallet.user_by_msisdn(user.msisdn), None
        bound = await self.cards(Principal(user.id, "", user.msisdn, user.account_code))
        if not bound:
            raise errors.BalanceNotEmpty(f"the wallet holds {account.balance / 100:.2f} CNY and has no bank "
                                         "card: ask the subscriber to bind one (or transfer the balance) "
                                         "before closing")
        order = await self._place(user, "close_payout", bound[0].id, account.balance, 0, f"close:{user.id}",
                                  actor=actor, reason=reason)
        return await self.wallet.user_by_msisdn(user.msisdn), order

    async def _after_close_payout(self, uow: UnitOfWork, row: PartnerOrder, outcome: OrderState) -> None:
        user = (await uow.conn.execute(select(users).where(users.c.id == row.user_id))).one()
        if outcome is OrderState.SUCCEEDED:
            await self._finish_close(uow, user.id, user.msisdn, user.account_code, "system",
                                     f"balance paid out by bank order {row.id}", before=user.status)
        else:  # the payout failed: the wallet stays frozen for an operator to sort out
            await uow.conn.execute(update(users).where(users.c.id == user.id).values(status=UserStatus.FROZEN.value))
            await uow.set_frozen(user.account_code, True)
            await audit.record(uow.conn, at=uow.now, actor="system", action="user.close_failed", target=user.msisdn,
                               reason=f"payout {row.id} failed: {row.reason or 'declined'}",
                               before={"status": user.status}, after={"status": UserStatus.FROZEN.value})

    async def _finish_close(self, uow: UnitOfWork, user_id: str, msisdn: str, account_code: str, actor: str,
                            reason: str, *, before: str) -> None:
        await uow.conn.execute(update(users).where(users.c.id == user_id).values(status=UserStatus.CLOSED.value))
        await uow.conn.execute(update(sessions).where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))
                               .values(revoked_at=uow.now))
        await uow.conn.execute(update(cards).where(cards.c.user_id == user_id).values(state="removed"))
        await uow.set_frozen(account_code, True)
        await audit.record(uow.conn, at=uow.now, actor=actor, action="user.closed", target=msisdn, reason=reason,
                           before={"status": before}, after={"status": UserStatus.CLOSED.value})

    # ------------------------------------------------------------------ helpers

    async def _active(self, msisdn: str) -> User:
        user = await self.wallet.user_by_msisdn(msisdn)
        if user.status is not UserStatus.ACTIVE:
            raise errors.UserFrozen(f"this wallet is {user.status.value}")
        return user

    async def _own_card(self, uow: UnitOfWork, user_id: str, card_id: str) -> Any:
        """The user's active card, or ``CARD_NOT_FOUND``."""
        row = (await uow.conn.execute(select(cards).where(cards.c.id == card_id))).first()
        if row is None or row.user_id != user_id or row.state != "active":
            raise errors.CardNotFound("no such bound card in your wallet; bind one with POST /v1/me/cards",
                                      field="card_id")
        return row


def _card(row: Any) -> Card:
    return Card(row.id, row.bank_code, row.bank_name, row.masked, as_utc(row.created_at))
