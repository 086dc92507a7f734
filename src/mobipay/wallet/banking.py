"""Money in and out through the bank: real-name cards, cash-in, cash-out, closing payouts,
and settling what the bank did not say clearly (status queries, the daily file).

Binding a debit card is also the real-name check: the bank confirms the four elements
(card, name, identity card, phone), and the wallet becomes Tier II.

An order to the bank is written (with a ledger hold) before the bank hears of it, and is
named by an id the bank keeps unique, so asking again can never move money twice:

1. commit the order ``pending`` and its hold (cash-in: the bank's money towards the
   wallet; cash-out: the wallet's money and fee towards the bank);
2. send it, outside any transaction;
3. the bank's clear answer posts the hold (succeeded) or voids it (failed). No answer, a
   late one, an error or an unsigned reply leaves the order pending; ``resolve_pending``
   (the worker) asks the bank again with backoff, sends it again if the bank never got
   it, and the daily file (``reconcile``) settles whatever is left and lists the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import and_, insert, select, update

from mobipay.kernel.clock import as_utc
from mobipay.kernel.errors import IdempotencyConflict, NotFound, ValidationFailed
from mobipay.kernel.ids import check_idempotency_key, new_id
from mobipay.kernel.money import check_amount
from mobipay.ledger.chart import BANK_SETTLEMENT, FEE_INCOME
from mobipay.ledger.model import Leg, PostPending, Transfer, VoidPending
from mobipay.platform import audit
from mobipay.platform.uow import UnitOfWork, UnitOfWorkRunner
from mobipay.wallet import errors as E
from mobipay.wallet.bank import BankAnswer, BankGateway, BankStatus
from mobipay.wallet.model import (
    BankOrderState,
    CardBins,
    CardType,
    CashOutFee,
    KycTier,
    UserStatus,
    check_card_number,
    check_id_card,
    check_real_name,
    check_settle,
    mask_card,
    mask_id_card,
    mask_name,
    national_number,
    normalize_msisdn,
)
from mobipay.wallet.service import SHANGHAI, Principal, SmsRequested, User, WalletService
from mobipay.wallet.tables import bank_orders, bank_recon_items, cards, identities, sessions, users

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Card:
    id: str
    bank_code: str
    bank_name: str
    masked: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class BankOrder:
    id: str
    kind: str  # cash_in | cash_out | close_payout
    card_id: str
    amount: int
    fee: int
    state: BankOrderState
    bank_ref: str
    reason: str
    created_at: datetime
    settled_at: datetime | None
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class Recipient:
    msisdn: str
    registered: bool
    masked_name: str | None


@dataclass
class ReconReport:
    day: date
    bank_lines: int = 0
    matched: int = 0
    settled_from_file: int = 0
    exceptions: list[dict[str, Any]] = field(default_factory=list)
    report_path: Path | None = None


def _order(row: Any, replayed: bool = False) -> BankOrder:
    return BankOrder(row.id, row.kind, row.card_id, row.amount, row.fee, BankOrderState(row.state), row.bank_ref,
                     row.reason, as_utc(row.created_at), as_utc(row.settled_at) if row.settled_at else None, replayed)


def _hold_id(order_id: str) -> str:
    return f"bank:{order_id}"


class BankingService:
    """Cards, cash-in/out and closing payouts; each command in its own unit of work."""

    def __init__(self, uow: UnitOfWorkRunner, wallet: WalletService, gateway: BankGateway, bins: CardBins,
                 secret: bytes, *, fee: CashOutFee | None = None, report_dir: Path = Path("var/reports")) -> None:
        self.uow = uow
        self.wallet = wallet
        self.gateway = gateway
        self.bins = bins
        self.secret = secret
        self.fee = fee or CashOutFee()
        self.report_dir = report_dir

    def _hmac(self, kind: str, value: str) -> str:
        return hmac.new(self.secret, f"{kind}|{value}".encode(), hashlib.sha256).hexdigest()

    # ------------------------------------------------------------------ cards and real name

    async def bind_card(self, me: Principal, card_number: object, name: object, id_number: object) -> Card:
        """Bind a debit card after the bank confirms it is this person's; the first one
        verifies the real name and raises the wallet to Tier II."""
        number = check_card_number(card_number)
        real_name = check_real_name(name)
        id_card = check_id_card(id_number, today=self.uow.clock.now().astimezone(SHANGHAI).date())
        issuer = self.bins.lookup(number)
        if issuer.card_type is not CardType.DEBIT:
            raise E.CardNotSupported("only debit cards can be bound for cash-in and cash-out", field="card_number")
        user = await self._active(me.msisdn)
        card_hmac, id_hmac = self._hmac("card", number), self.wallet.id_hmac(id_card)

        async def check(uow: UnitOfWork) -> Card | None:
            known = (await uow.conn.execute(select(identities).where(identities.c.user_id == user.id))).first()
            if known is not None and (known.id_hmac != id_hmac or known.name != real_name):
                raise E.IdentityMismatch("this wallet is verified for another name or identity card", field="id_number")
            bound = (await uow.conn.execute(select(cards).where(cards.c.card_hmac == card_hmac,
                                                                cards.c.state == "active"))).first()
            if bound is not None:
                if bound.user_id == user.id:
                    return _card(bound)  # bound already: binding again is a no-op
                raise E.CardAlreadyBound("this card is bound to another wallet", field="card_number")
            return None

        existing = await self.uow.run("bind_card_check", check)
        if existing is not None:
            return existing
        answer = await self.gateway.verify_card(number, real_name, id_card, national_number(user.msisdn))
        if not answer.verified:
            raise E.CardVerificationFailed(
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

        async def work(uow: UnitOfWork) -> None:
            await self._own_card(uow, me.user_id, card_id)
            pending = (await uow.conn.execute(select(bank_orders.c.id).where(
                bank_orders.c.card_id == card_id, bank_orders.c.state == "pending").limit(1))).first()
            if pending is not None:
                raise E.BankOrderConflict("an order on this card is still pending; try again when it settles",
                                          field="card_id")
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

    async def cash_in(self, me: Principal, card_id: str, amount: object, *, idempotency_key: str) -> BankOrder:
        """Move money from a bound card into the wallet."""
        amount = check_amount(amount)
        check_idempotency_key(idempotency_key)
        user = await self._active(me.msisdn)
        return await self._place(user, "cash_in", card_id, amount, 0, idempotency_key)

    async def cash_out(self, me: Principal, card_id: str, amount: object, *, idempotency_key: str,
                       pin: str | None) -> BankOrder:
        """Move money from the wallet to a bound card, less nothing: the fee is on top."""
        amount = check_amount(amount)
        check_idempotency_key(idempotency_key)
        user = await self._active(me.msisdn)
        if pin is None:
            raise E.PinRequired("cash-out always needs the payment PIN", field="pin")
        await self.wallet.verify_pin(user.msisdn, pin)
        return await self._place(user, "cash_out", card_id, amount, self.fee.of(amount), idempotency_key)

    async def order(self, me: Principal, order_id: str) -> BankOrder:
        """One of my bank orders; a pending one is asked about at the bank first."""
        row = await self._find(order_id)
        if row is None or row.user_id != me.user_id:
            raise NotFound("no such bank order in your wallet", field="order_id")
        if row.state == BankOrderState.PENDING.value:
            await self._resolve(row)
            row = await self._find(order_id)
        return _order(row)

    async def orders(self, me: Principal, limit: int = 50) -> list[BankOrder]:
        async def work(uow: UnitOfWork) -> list[BankOrder]:
            rows = await uow.conn.execute(select(bank_orders).where(bank_orders.c.user_id == me.user_id)
                                          .order_by(bank_orders.c.created_at.desc()).limit(limit))
            return [_order(r) for r in rows]

        return await self.uow.run("bank_orders", work)

    async def _place(self, user: User, kind: str, card_id: str, amount: int, fee: int, key: str,
                     *, actor: str | None = None, reason: str = "") -> BankOrder:
        order_id = "bo_" + hashlib.sha256(f"{user.id}|{key}".encode()).hexdigest()[:32]

        async def work(uow: UnitOfWork) -> tuple[Any, bool]:
            row = await self._order_row(uow, order_id)
            if row is not None:
                if (row.kind, row.card_id, row.amount) != (kind, card_id, amount):
                    raise IdempotencyConflict("this Idempotency-Key was used for another order", field="id")
                return row, True
            await self._own_card(uow, user.id, card_id)
            wallet = user.account_code
            legs: tuple[Leg, ...]
            if kind == "cash_in":
                legs = (Leg.debit(BANK_SETTLEMENT, amount), Leg.credit(wallet, amount))
            else:
                legs = (Leg.debit(wallet, amount + fee), Leg.credit(BANK_SETTLEMENT, amount))
                legs += (Leg.credit(FEE_INCOME, fee),) if fee else ()
            [result] = await uow.post([Transfer(_hold_id(order_id), legs, kind, pending=True,
                                                reference=f"bank order {order_id}")])
            if result.error is not None:
                raise result.error
            await uow.conn.execute(insert(bank_orders).values(
                id=order_id, user_id=user.id, msisdn=user.msisdn, kind=kind, card_id=card_id, amount=amount, fee=fee,
                state="pending", created_at=uow.now, updated_at=uow.now, next_check_at=uow.now + timedelta(seconds=5)))
            if kind == "close_payout":
                await uow.conn.execute(update(users).where(users.c.id == user.id).values(
                    status=UserStatus.CLOSING.value))
                await uow.conn.execute(update(sessions).where(sessions.c.user_id == user.id,
                                                              sessions.c.revoked_at.is_(None)).values(revoked_at=uow.now))
                await audit.record(uow.conn, at=uow.now, actor=actor or "system", action="user.close",
                                   target=user.msisdn, reason=reason, before={"status": user.status.value},
                                   after={"status": UserStatus.CLOSING.value, "payout": amount, "order": order_id})
            return await self._order_row(uow, order_id), False

        row, replayed = await self.uow.run(f"place_{kind}", work)
        if row.state == BankOrderState.PENDING.value:
            await self._send(row)  # a replay of a pending order sends it again: the bank dedupes by id
            row = await self._find(order_id)
        return _order(row, replayed)

    async def _send(self, row: Any) -> None:
        token = await self.uow.run("card_token", lambda uow: self._token(uow, row.card_id))
        if row.kind == "cash_in":
            answer = await self.gateway.debit(row.id, token, row.amount)
        else:
            answer = await self.gateway.credit(row.id, token, row.amount)
        await self.settle(answer)

    async def settle(self, answer: BankAnswer) -> BankOrderState:
        """Apply the bank's answer about an order: post or void its hold on a final answer,
        otherwise schedule the next status query. Repeated answers change nothing."""
        target = {BankStatus.SUCCEEDED: BankOrderState.SUCCEEDED,
                  BankStatus.FAILED: BankOrderState.FAILED}.get(answer.status)

        async def work(uow: UnitOfWork) -> BankOrderState:
            row = (await uow.conn.execute(select(bank_orders).where(bank_orders.c.id == answer.order_id)
                                          .with_for_update())).one()
            current = BankOrderState(row.state)
            if target is None:
                if current is BankOrderState.PENDING:
                    wait = min(3600, 5 * 2 ** min(row.checks, 10))
                    await uow.conn.execute(update(bank_orders).where(bank_orders.c.id == row.id).values(
                        checks=row.checks + 1, next_check_at=uow.now + timedelta(seconds=wait), updated_at=uow.now))
                return current
            if not check_settle(current, target):
                return current
            hold = _hold_id(row.id)
            command = (PostPending(f"{hold}:post", hold, code=row.kind) if target is BankOrderState.SUCCEEDED
                       else VoidPending(f"{hold}:void", hold, code=f"{row.kind}.failed"))
            [result] = await uow.post([command])
            if result.error is not None:
                raise result.error
            await uow.conn.execute(update(bank_orders).where(bank_orders.c.id == row.id).values(
                state=target.value, bank_ref=answer.bank_ref, reason=answer.reason, settled_at=uow.now,
                updated_at=uow.now))
            await uow.emit(SmsRequested(key=f"{row.id}:{target.value}", to=row.msisdn,
                                        template=f"{row.kind}.{target.value}",
                                        params={"amount_fen": row.amount, "fee_fen": row.fee}))
            if row.kind == "close_payout":
                await self._after_close_payout(uow, row, target)
            return target

        try:
            return await self.uow.run("settle_bank_order", work)
        except E.BankOrderConflict:
            log.error("bank.contradicting_answer", order_id=answer.order_id, status=answer.status.value)
            raise

    async def _resolve(self, row: Any) -> None:
        """Ask the bank about a pending order; send it again if the bank never got it."""
        answer = await self.gateway.query(row.id)
        if answer.status is BankStatus.NOT_FOUND:
            await self._send(row)
        else:
            await self.settle(answer)

    async def resolve_pending(self, limit: int = 100) -> int:
        """Ask the bank about pending orders that are due; returns how many were asked."""

        async def due(uow: UnitOfWork) -> list[Any]:
            return list(await uow.conn.execute(select(bank_orders).where(
                bank_orders.c.state == "pending", bank_orders.c.next_check_at <= uow.now)
                .order_by(bank_orders.c.next_check_at).limit(limit)))

        rows = await self.uow.run("bank_orders_due", due)
        for row in rows:
            try:
                await self._resolve(row)
            except E.BankOrderConflict:
                continue  # logged; reconciliation lists it for an operator
        return len(rows)

    async def run_resolver(self, interval_s: float, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.resolve_pending()
            except Exception:  # keep going; the next round retries
                log.exception("bank.resolve_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval_s)

    # ------------------------------------------------------------------ daily file

    async def reconcile(self, day: date) -> ReconReport:
        """Match the bank's file for ``day`` with our orders: settle what is still pending
        from it, and record every difference (and write them all to a CSV report)."""
        lines = await self.gateway.statement(day)
        report = ReconReport(day, bank_lines=len(lines))
        seen: set[str] = set()
        for line in lines:
            seen.add(line.order_id)
            row = await self._find(line.order_id)
            ours = (row.state, row.amount) if row is not None else (None, None)
            if row is None:
                kind = "missing_here"
            elif row.amount != line.amount:
                kind = "amount_mismatch"
            elif row.state == BankOrderState.PENDING.value and line.status in (BankStatus.SUCCEEDED,
                                                                               BankStatus.FAILED):
                await self.settle(BankAnswer(line.order_id, line.status, line.bank_ref, "from the daily file"))
                report.settled_from_file += 1
                await self._recon_item(day, line.order_id, "settled_from_file", ours, line, "settled")
                continue
            elif row.state != line.status.value:
                kind = "status_mismatch"
            else:
                report.matched += 1
                continue
            report.exceptions.append(await self._recon_item(day, line.order_id, kind, ours, line, "investigate"))

        start = datetime.combine(day, datetime.min.time(), SHANGHAI).astimezone(UTC)  # stored as UTC

        async def ours_of_day(uow: UnitOfWork) -> list[Any]:
            return list(await uow.conn.execute(select(bank_orders).where(and_(
                bank_orders.c.state == "succeeded", bank_orders.c.settled_at >= start,
                bank_orders.c.settled_at < start + timedelta(days=1)))))

        for row in await self.uow.run("bank_orders_of_day", ours_of_day):
            if row.id not in seen:
                report.exceptions.append(await self._recon_item(day, row.id, "missing_there", (row.state, row.amount),
                                                                None, "investigate"))
        report.report_path = self._write_report(report)
        return report

    async def _recon_item(self, day: date, order_id: str, kind: str, ours: tuple[Any, Any], line: Any,
                          resolution: str) -> dict[str, Any]:
        item = {"day": day, "order_id": order_id, "kind": kind, "our_state": ours[0], "our_amount": ours[1],
                "bank_status": line.status.value if line else None, "bank_amount": line.amount if line else None,
                "resolution": resolution}

        async def work(uow: UnitOfWork) -> None:
            exists = (await uow.conn.execute(select(bank_recon_items.c.id).where(
                bank_recon_items.c.day == day, bank_recon_items.c.order_id == order_id))).first()
            if exists is None:  # a second run of the same day records nothing twice
                await uow.conn.execute(insert(bank_recon_items).values(id=new_id("rci"), created_at=uow.now, **item))

        await self.uow.run("recon_item", work)
        return item

    def _write_report(self, report: ReconReport) -> Path:
        self.report_dir.mkdir(parents=True, exist_ok=True)
        path = self.report_dir / f"bank-recon-{report.day.isoformat()}.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["day", "bank_lines", "matched", "settled_from_file", "exceptions"])
            writer.writerow([report.day, report.bank_lines, report.matched, report.settled_from_file,
                             len(report.exceptions)])
            writer.writerow([])
            columns = ["order_id", "kind", "our_state", "our_amount", "bank_status", "bank_amount", "resolution"]
            writer.writerow(columns)
            for item in report.exceptions:
                writer.writerow([item[c] for c in columns])
        return path

    # ------------------------------------------------------------------ closing a wallet

    async def close_user(self, raw_msisdn: str, *, actor: str, reason: str) -> tuple[User, BankOrder | None]:
        """Close a wallet for good (operator action, audited). The balance is paid out to the
        bound card first (no fee): the wallet is ``closing`` until the bank confirms it."""
        if not reason.strip():
            raise ValidationFailed("give the reason for the audit trail", field="reason")
        user = await self.wallet.user_by_msisdn(raw_msisdn)
        if user.status in (UserStatus.CLOSED, UserStatus.CLOSING):
            raise E.UserClosed(f"the wallet is already {user.status.value}")
        account = await self.uow.ledger.account(user.account_code)
        if account.available != account.balance or account.credits_pending:
            raise E.BalanceNotEmpty("money is on hold or on its way to this wallet; close it when that settles")
        if account.balance == 0:
            async def work(uow: UnitOfWork) -> None:
                await self._finish_close(uow, user.id, user.msisdn, user.account_code, actor, reason,
                                         before=user.status.value)

            await self.uow.run("close_user", work)
            return await self.wallet.user_by_msisdn(user.msisdn), None
        bound = await self.cards(Principal(user.id, "", user.msisdn, user.account_code))
        if not bound:
            raise E.BalanceNotEmpty(f"the wallet holds {account.balance / 100:.2f} CNY and has no bank card: ask the "
                                    "subscriber to bind one (or transfer the balance) before closing")
        order = await self._place(user, "close_payout", bound[0].id, account.balance, 0, f"close:{user.id}",
                                  actor=actor, reason=reason)
        return await self.wallet.user_by_msisdn(user.msisdn), order

    async def _after_close_payout(self, uow: UnitOfWork, row: Any, outcome: BankOrderState) -> None:
        user = (await uow.conn.execute(select(users).where(users.c.id == row.user_id))).one()
        if outcome is BankOrderState.SUCCEEDED:
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
            raise E.UserFrozen(f"this wallet is {user.status.value}")
        return user

    async def _own_card(self, uow: UnitOfWork, user_id: str, card_id: str) -> Any:
        row = (await uow.conn.execute(select(cards).where(cards.c.id == card_id))).first()
        if row is None or row.user_id != user_id or row.state != "active":
            raise E.CardNotFound("no such bound card in your wallet; bind one with POST /v1/me/cards", field="card_id")
        return row

    async def _token(self, uow: UnitOfWork, card_id: str) -> str:
        return str((await uow.conn.execute(select(cards.c.token).where(cards.c.id == card_id))).scalar_one())

    async def _find(self, order_id: str) -> Any:
        return await self.uow.run("bank_order", lambda uow: self._order_row(uow, order_id))

    async def _order_row(self, uow: UnitOfWork, order_id: str) -> Any:
        return (await uow.conn.execute(select(bank_orders).where(bank_orders.c.id == order_id))).first()


def _card(row: Any) -> Card:
    return Card(row.id, row.bank_code, row.bank_name, row.masked, as_utc(row.created_at))
