"""Wallet use cases of the payment PIN: set, change, reset with an SMS code, check, and the
lockout after wrong tries (its rules are ``model.after_failure`` and ``check_not_locked``).

The PIN is kept as an argon2id hash (``platform.credentials``: one policy for every
password and PIN), hashed and checked off the event loop, outside any transaction.
"""

from __future__ import annotations

import hmac

from mobipay.kernel.errors import MobipayError, ValidationFailed
from mobipay.kernel.events import SmsRequested
from mobipay.kernel.ids import new_id
from mobipay.ledger.uow import Transaction
from mobipay.platform.credentials import hash_secret, verify_secret
from mobipay.wallet import errors
from mobipay.wallet.accounts import Accounts
from mobipay.wallet.model import (
    OtpPurpose,
    PinState,
    after_failure,
    check_id_card,
    check_not_locked,
    check_pin,
)


class Pins(Accounts):
    """The payment PIN's use cases."""

    async def set_pin(self, raw_msisdn: str, pin: str) -> None:
        """Set the first payment PIN (later changes need the current PIN or an SMS code)."""
        user = await self.user_by_msisdn(raw_msisdn)
        check_pin(pin, user.msisdn)
        pin_hash = await hash_secret(self.pin_hasher, pin)

        async def work(tx: Transaction) -> None:
            store = self.store(tx)
            if await store.pin(user.id) is not None:
                raise errors.PinAlreadySet("change it with the current PIN, or reset it with an SMS code", field="pin")
            await store.add_pin(user.id, pin_hash, tx.now)

        await self.uow.run("set_pin", work)

    async def change_pin(self, raw_msisdn: str, current: str, new: str) -> None:
        user = await self.user_by_msisdn(raw_msisdn)
        check_pin(new, user.msisdn)
        await self.verify_pin(user.msisdn, current)
        pin_hash = await hash_secret(self.pin_hasher, new)

        async def work(tx: Transaction) -> None:
            store = self.store(tx)
            stored = await store.pin(user.id, for_update=True)
            assert stored is not None  # verify_pin found it
            await store.put_pin(user.id, pin_hash, PinState(0, stored.state.lockouts, stored.state.locked_until),
                                tx.now)

        await self.uow.run("change_pin", work)

    async def reset_pin(self, raw_msisdn: str, code: str, new_pin: str, id_number: str | None = None) -> None:
        """Forgotten or locked PIN: a new one with an SMS code (purpose reset_pin) and, once
        the real name is verified, the identity card number too (a stolen phone is not
        enough). Clears the failure count and any lockout."""
        user = await self.user_by_msisdn(raw_msisdn)
        check_pin(new_pin, user.msisdn)
        id_hmac = self.id_hmac(check_id_card(id_number)) if id_number is not None else None
        pin_hash = await hash_secret(self.pin_hasher, new_pin)

        async def work(tx: Transaction) -> MobipayError | None:
            store = self.store(tx)
            verified = await store.id_hmac(user.id)
            if verified is not None and id_number is None:
                raise errors.IdentityRequired("this wallet is real-name verified: send id_number as well",
                                              field="id_number")
            refused = await self._consume_otp(tx, user.msisdn, OtpPurpose.RESET_PIN, code)
            if refused is not None:
                return refused
            if verified is not None and not hmac.compare_digest(verified, id_hmac or ""):
                return errors.IdentityMismatch("the identity card number does not match this wallet", field="id_number")
            await store.put_pin(user.id, pin_hash, PinState(0, 0, None), tx.now)
            await tx.emit(SmsRequested(key=new_id("sms"), to=user.msisdn, template="pin.reset", params={}))
            return None

        error = await self.uow.run("reset_pin", work)
        if error is not None:
            raise error

    async def pin_status(self, raw_msisdn: str) -> PinState | None:
        """The PIN's failure count and lockout (None when no PIN is set), for support."""
        user = await self.user_by_msisdn(raw_msisdn)

        async def work(tx: Transaction) -> PinState | None:
            stored = await self.store(tx).pin(user.id)
            return None if stored is None else stored.state

        return await self.uow.run("pin_status", work)

    async def unlock_pin(self, raw_msisdn: str, *, actor: str, reason: str) -> None:
        """An operator lifts a PIN lockout after checking who calls (the PIN itself stays):
        failures and the lockout are cleared, the growing lockout starts over. Audited."""
        if not reason.strip():
            raise ValidationFailed("give the reason for the audit trail", field="reason")
        user = await self.user_by_msisdn(raw_msisdn)

        async def work(tx: Transaction) -> None:
            store = self.store(tx)
            stored = await store.pin(user.id, for_update=True)
            if stored is None:
                raise errors.PinNotSet("this wallet has no payment PIN to unlock", field="msisdn")
            await store.set_pin_state(user.id, PinState(0, 0, None))
            before = stored.state
            await tx.audit(actor=actor, action="user.pin_unlock", target=user.msisdn, reason=reason,
                           before={"failures": before.failures, "lockouts": before.lockouts,
                                   "locked_until": before.locked_until},
                           after={"failures": 0, "lockouts": 0, "locked_until": None})

        await self.uow.run("unlock_pin", work)

    async def verify_pin(self, raw_msisdn: str, pin: object) -> None:
        """Check the payment PIN; wrong ones count, and the limit locks payments for a while
        that doubles with each lockout. A locked PIN refuses even the right one."""
        user = await self.user_by_msisdn(raw_msisdn)
        if not (isinstance(pin, str) and len(pin) == 6 and pin.isascii() and pin.isdigit()):
            raise errors.InvalidPin("a payment PIN is exactly 6 digits", field="pin")  # malformed: not a try

        async def load(tx: Transaction) -> str:
            stored = await self.store(tx).pin(user.id)
            if stored is None:
                raise errors.PinNotSet("set a payment PIN first", field="pin")
            check_not_locked(stored.state, tx.now)
            return stored.pin_hash

        pin_hash = await self.uow.run("verify_pin_load", load)
        ok = await verify_secret(self.pin_hasher, pin_hash, pin)

        async def record(tx: Transaction) -> MobipayError | None:
            store = self.store(tx)
            # Read again under this transaction: concurrent wrong tries must all count.
            stored = await store.pin(user.id, for_update=True)
            assert stored is not None
            state = stored.state
            try:
                check_not_locked(state, tx.now)
            except MobipayError as exc:
                return exc
            if ok:
                if state.failures:
                    await store.set_pin_state(user.id, PinState(0, state.lockouts, state.locked_until))
                return None
            after = after_failure(state, tx.now, self.pin_policy)
            await store.set_pin_state(user.id, after)
            if after.locked_until is not None:
                minutes = int(self.pin_policy.lock_for(state.lockouts).total_seconds()) // 60
                # The subscriber hears of it at once: it may be someone else trying their PIN.
                await tx.emit(SmsRequested(key=f"pin-locked:{user.id}:{after.lockouts}", to=user.msisdn,
                                           template="pin.locked", params={"minutes": minutes}))
                return errors.PinLocked(f"too many wrong PINs: payments are locked for {minutes} min", field="pin")
            left = self.pin_policy.tries - after.failures
            return errors.PinIncorrect(f"wrong PIN, {left} tries left before payments lock", field="pin",
                                       tries_left=left)

        error = await self.uow.run("verify_pin_record", record)
        if error is not None:
            raise error
