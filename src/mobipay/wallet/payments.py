"""Wallet use cases of money leaving a wallet: P2P transfers (to a number with or without a
wallet), the payment authorisation every product asks (status, PIN, PIN lock), usage
against the tier's limits, money returned when nobody claims it, receipts and history.

The rules are ``model.py``'s (``p2p_command``, ``check_limits``, ``check_no_pin_allowed``);
the rows go through the wallet's store; the money through the ledger in the same
transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from mobipay.kernel.clock import SHANGHAI
from mobipay.kernel.errors import MobipayError, NotFound
from mobipay.kernel.events import SmsRequested
from mobipay.kernel.ids import check_idempotency_key, new_id
from mobipay.kernel.money import check_amount
from mobipay.kernel.msisdn import mask_msisdn, normalize_msisdn
from mobipay.ledger import errors as ledger_errors
from mobipay.ledger.model import Side, TransferType
from mobipay.ledger.uow import Transaction
from mobipay.orders.service import settling_ids
from mobipay.wallet import errors
from mobipay.wallet.model import (
    CLAIM_WINDOW,
    Claim,
    Principal,
    Receipt,
    Recipient,
    TransferDone,
    Usage,
    User,
    UserStatus,
    check_limits,
    check_no_pin_allowed,
    check_not_self,
    p2p_command,
    p2p_id,
    p2p_sms,
)
from mobipay.wallet.sessions import Sessions

#: What runs after a transfer's posting, in its transaction (``then`` of :meth:`Payments.transfer`).
AfterTransfer = Callable[[Transaction, TransferDone], Awaitable[None]]


class Payments(Sessions):
    """Paying from the wallet."""

    async def transfer(self, me: Principal, raw_to: str, amount: object, *, idempotency_key: str,
                       pin: str | None = None, note: str = "", consent: bool = False,
                       then: AfterTransfer | None = None) -> TransferDone:
        """Send money to another subscriber by number. Up to the password-free amount no PIN
        is asked; above it the PIN is, unless the channel proved intent another way (``consent``:
        an SMS secondary confirmation); while the PIN is locked, neither goes without it. The
        idempotency key comes first: the same key and body returns the first result
        (``replayed``), another body with that key is refused (IDEMPOTENCY_CONFLICT), before
        any PIN is asked. ``then`` runs in the same transaction after the posting (first time
        or replay): raising there undoes it."""
        amount = check_amount(amount)
        to = normalize_msisdn(raw_to)
        check_idempotency_key(idempotency_key)
        check_not_self(me.msisdn, to)
        pin_asked = amount > self.limits.password_free and not consent
        if pin_asked and not await self._stored(p2p_id(me.user_id, idempotency_key)):
            await self.authorize_payment(me, amount, pin)  # the PIN (costly by design), outside the txn
        metadata: dict[str, Any] = {"note": note} if note else {}

        async def work(tx: Transaction) -> TransferDone:
            store = self.store(tx)
            # Sender (with their PIN's lock) and recipient in one read, in the same transaction
            # as the posting: one commit per transfer.
            found = await store.payers([me.msisdn, to])
            if me.msisdn not in found:
                raise errors.UserNotFound(f"{me.msisdn} is not registered", field="msisdn")
            sender = found[me.msisdn].user
            recipient = found[to].user if to in found else None
            command, waiting = p2p_command(sender, to, recipient.status.value if recipient else None,
                                           recipient.account_code if recipient else None, amount,
                                           idempotency_key, metadata)
            [result] = await tx.post([command])
            if result.error is not None:
                raise result.error
            assert result.transfer is not None
            done = TransferDone(result.transfer.id, sender.msisdn, to, amount, result.transfer.created_at,
                                result.replayed, "waiting_for_recipient" if waiting else "succeeded")
            if result.replayed:
                if then is not None:
                    await then(tx, done)
                return done
            if not pin_asked:  # a new payment without the PIN: not while it is locked (raising undoes it)
                check_no_pin_allowed(found[me.msisdn].pin_locked_until, tx.now)
            await self.count_payment(tx, sender, amount)  # raising undoes the posting too
            if waiting:
                await store.add_claim(Claim(new_id("clm"), command.id, sender.id, sender.msisdn, to, amount,
                                            "waiting", tx.now, tx.now + CLAIM_WINDOW))
            await tx.emit(p2p_sms(command.id, sender.msisdn, to, amount, waiting))
            if then is not None:
                await then(tx, done)
            return done

        return await self.uow.run("transfer", work)

    async def authorize_payment(self, me: Principal, amount: int, pin: str | None, *,
                                consent: bool = False) -> User:
        """The payer's wallet, fit to pay ``amount`` from its balance: active, and proven by
        the PIN above the password-free amount, unless the payer consented to this payment
        another way (``consent``: autopay up to their own limit, an SMS confirmation). A locked PIN
        suspends payments without the PIN too. Every product paid from the wallet asks this,
        after its idempotency key (a replay needs no new proof)."""

        async def work(tx: Transaction) -> tuple[User, datetime | None]:
            found = (await self.store(tx).payers([me.msisdn])).get(me.msisdn)
            if found is None:
                raise errors.UserNotFound(f"{me.msisdn} is not registered", field="msisdn")
            return found.user, found.pin_locked_until

        payer, locked_until = await self.uow.run("payer", work)
        if payer.status is not UserStatus.ACTIVE:
            raise errors.UserFrozen(f"this wallet cannot pay while it is {payer.status.value}")
        if amount > self.limits.password_free and not consent:
            if pin is None:
                raise errors.PinRequired(f"amounts over {self.limits.password_free / 100:.2f} CNY need the PIN",
                                         field="pin")
            await self.verify_pin(payer.msisdn, pin)
        else:
            check_no_pin_allowed(locked_until, self.uow.clock.now())
        return payer

    async def _stored(self, transfer_id: str) -> bool:
        """Whether the ledger holds ``transfer_id`` (an idempotency key used before)."""
        try:
            await self.uow.ledger.transfer(transfer_id)
        except ledger_errors.TransferNotFound:
            return False
        return True

    async def count_payment(self, tx: Transaction, payer: User, amount: int) -> None:
        """In the caller's transaction: add a balance payment to the payer's usage (lifetime,
        year, Shanghai day) under a row lock, refusing it past any limit of their tier."""
        store = self.store(tx)
        stored = await store.usage(payer.id)
        used = (stored or Usage()).rolled(tx.now.astimezone(SHANGHAI).date())
        check_limits(payer.tier, amount, used, self.limits)
        await store.put_usage(payer.id, used.plus(amount), new=stored is None)

    async def uncount_payment(self, tx: Transaction, payer_id: str, amount: int, paid_at: datetime) -> None:
        """In the caller's transaction: give back a counted payment that did not happen (a
        failed top-up or bill): off the lifetime, and off the year and day it was counted in."""
        store = self.store(tx)
        stored = await store.usage(payer_id)
        if stored is not None:
            await store.put_usage(payer_id, stored.minus(amount, paid_at.astimezone(SHANGHAI).date()), new=False)

    async def return_expired_claims(self, limit: int = 100) -> int:
        """Send back money nobody claimed within the window; returns how many claims."""

        async def due(tx: Transaction) -> list[str]:
            return await self.store(tx).claims_due(tx.now, limit)

        returned = 0
        for claim_id in await self.uow.run("claims_due", due):
            paid_from: list[str] = []  # a claim whose sender is no subscriber: the account it came from

            async def back(tx: Transaction, claim_id: str = claim_id, paid_from: list[str] = paid_from) -> bool | str:
                store = self.store(tx)
                claim = await store.claim(claim_id)
                if claim is None or claim.state != "waiting":  # claimed meanwhile
                    return False
                sender = await store.user_by_id(claim.sender_id)
                if sender is None:  # not a subscriber (a campaign's bulk payment): back where it came from
                    if not paid_from:
                        return claim.transfer_id  # read outside (SQLite's one writer), then again
                    await self._settle_claim(tx, claim, to_account=paid_from[0], state="returned")
                    return True
                await self._settle_claim(tx, claim, to_account=sender.account_code, state="returned")
                params = {"to": mask_msisdn(claim.recipient_msisdn), "amount_fen": claim.amount}
                await tx.emit(SmsRequested(key=f"returned:{claim.id}", to=claim.sender_msisdn,
                                           template="p2p.returned", params=params))
                return True

            outcome = await self.uow.run("return_claim", back)
            if isinstance(outcome, str):
                paid_from.append(await self._paid_from(outcome))
                outcome = await self.uow.run("return_claim", back)
            returned += outcome is True
        return returned

    async def _paid_from(self, transfer_id: str) -> str:
        """The account waiting money was debited from (its claim's original transfer)."""
        original = await self.uow.ledger.transfer(transfer_id)
        return next(leg.account for leg in original.legs if leg.side is Side.DEBIT)

    # ------------------------------------------------------------------ bulk payments (campaigns)

    async def recipients_in(self, tx: Transaction, msisdns: Sequence[str]) -> dict[str, Recipient]:
        """In the caller's transaction: the wallets of many numbers (absent: no wallet yet) with
        their verified real names (None when unverified), read set-based: a bulk payment's
        sub-batch asks thousands at once."""
        return await self.store(tx).recipients(msisdns)

    async def hold_for_unregistered_in(self, tx: Transaction, claims: Sequence[Claim]) -> None:
        """In the caller's transaction: record money another context has credited to the
        suspense account for numbers without a wallet (a bulk payment). The wallet pays each
        claim in when its number registers, and the expiry job returns an unclaimed one to the
        account it was debited from (the claim's sender is no subscriber)."""
        await self.store(tx).add_claims(claims)

    async def claim_states(self, transfer_ids: Sequence[str]) -> dict[str, str]:
        """The state (waiting, claimed, returned) of the claims of these transfers."""

        async def read(tx: Transaction) -> dict[str, str]:
            return await self.store(tx).claim_states(transfer_ids)

        return await self.uow.run("claim_states", read)

    # ------------------------------------------------------------------ reads

    async def receipt(self, me: Principal, transfer_id: str) -> Receipt:
        """One transaction of my wallet as a receipt. Another subscriber's transaction looks
        exactly like a missing one, so a changed id in a URL reveals nothing."""
        try:
            t = await self.uow.ledger.transfer(transfer_id)
        except MobipayError:
            t = None
        mine = [leg for leg in t.legs if leg.account == me.account_code] if t else []
        if t is None or not mine:
            raise NotFound("no such transaction in your wallet", field="transfer_id")
        others = [leg.account for leg in t.legs if leg.account != me.account_code and leg.account.startswith("wallet:")]
        leg = mine[0]
        counterparty = mask_msisdn(others[0].removeprefix("wallet:")) if others else None
        claim = None
        if t.code == "p2p" and not others:  # sent to a number without a wallet: it waits there

            async def read(tx: Transaction) -> Claim | None:
                return await self.store(tx).claim_of_transfer(t.id)

            claim = await self.uow.run("receipt_claim", read)
        if claim is not None:
            counterparty = mask_msisdn(claim.recipient_msisdn)
        state = "succeeded"
        if t.type is TransferType.PENDING:  # a partner order's hold: its settling transfer says how it ended
            posted, voided = settling_ids(t.id)
            state = ("succeeded" if await self._stored(posted) else "failed" if await self._stored(voided)
                     else "pending")
        return Receipt(t.id, t.code, leg.amount, leg.currency, "out" if leg.side.value == "D" else "in",
                       counterparty, t.reference, t.created_at, note=str((t.metadata or {}).get("note", "")),
                       prize_tax=int((t.metadata or {}).get("tax_fen", 0)) if t.code == "lottery.prize" else 0,
                       claim_state=claim.state if claim is not None else None,
                       claim_expires_at=claim.expires_at if claim is not None else None, state=state)

    async def history(self, account_code: str, *, after: int = 0, before: int | None = None, limit: int = 20,
                      codes: Sequence[str] | None = None, side: Side | None = None, since: datetime | None = None,
                      until: datetime | None = None, newest_first: bool = False
                      ) -> tuple[list[dict[str, Any]], int | None]:
        """A wallet's history as every channel shows it (the API, the mobile web, SMS MX, voice,
        the CLI statement): one line per payment with its state — an order's hold and its
        settlement are one line, never two of the same amount — and the next cursor."""
        return await self.uow.ledger.history(account_code, after=after, before=before, limit=limit, codes=codes,
                                             side=side, since=since, until=until, newest_first=newest_first)
