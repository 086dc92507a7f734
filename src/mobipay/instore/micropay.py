"""Payment codes (付款码) and micropay: the wallet shows a code, the till scans it and charges.

**Devices.** A wallet session opened by SMS code (:meth:`WalletService.device_bound`) is given
a 20-byte secret and a random 8-digit device number (:meth:`Micropay.provision`); the applet
makes its codes offline from them (``instore/paycode.py``). The platform keeps the secret
sealed with AES-256-GCM (:class:`SecretBox`, a key from settings); the row's id, device
number and wallet are the associated data, so a sealed secret copied onto another row does
not open. A new provisioning of the same session replaces (revokes) its device; the payer
revokes any of their devices; a device whose session ended (signed out, or its refresh
token expired) no longer pays.

**Single use.** A code that verifies names its time step; the order that takes it inserts
"device D used step S" (primary key) in the same transaction as the order itself, so the
same code at two tills at once makes one order: the other insert waits for the first
transaction and finds the row (``PAYCODE_USED``). Wrong codes are counted per device, and 5
in a row lock it (``PAYCODE_DEVICE_LOCKED``) until the payer re-issues the code in the app;
refused codes are also counted per terminal across devices (``instore/paycode_throttle.py``), so
a till trying device numbers is throttled (``TERMINAL_PAYCODE_THROTTLED``) without any payer's
device counting its guesses.

**Micropay.** ``POST /v1/terminal/micropay`` creates a merchant trade for the terminal's store
through :class:`MerchantService` (so the trade's settlement, T+1, and refunds are the trades')
and charges it from the code's wallet at once when the amount is within the wallet's
password-free amount; above it the order waits (``USERPAYING``) for the payer to confirm with
the PIN in the app, while the till queries on the published schedule (every
:data:`QUERY_EVERY_S` seconds) and cancels after :data:`ORDER_WINDOW`; the order closes by
itself then. Cancelling an unpaid order closes it, a paid one is refunded. Every order is
charged in :meth:`Micropay._charge`, the one place a discount could be applied.

**Limits.** A payment code is a dynamic code (one-time, made by the payer's device), so PBoC
notice 2017/296's dynamic-code limits apply on the same Beijing-day counters as dynamic
merchant QR codes (``InStore``): a password-free charge has one factor (the bound device's
secret) and counts against 1,000 CNY a day; a charge confirmed with the PIN on a bound device
has two (5,000 CNY a day in all). A password-free charge refused by the one-factor limit
waits for the PIN instead (two factors, the higher limit). The wallet's own limits apply too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, cast

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select, update

from mobipay.instore import errors, paycode
from mobipay.instore.paycode_throttle import PaycodeThrottle, ThrottlePolicy
from mobipay.instore.service import InStore
from mobipay.instore.tables import micropay_orders, paycode_devices, paycode_uses
from mobipay.instore.terminals import Terminal
from mobipay.kernel.clock import as_utc
from mobipay.kernel.errors import IdempotencyConflict, MobipayError, ValidationFailed
from mobipay.kernel.ids import check_idempotency_key, new_id
from mobipay.kernel.money import check_amount
from mobipay.ledger.uow import Transaction, UnitOfWork, UnitOfWorkRunner
from mobipay.merchants import errors as merchant_errors
from mobipay.merchants.service import Merchant, MerchantFile, MerchantService, StoreRecord, Trade
from mobipay.platform.db import dialect_insert
from mobipay.wallet.service import Principal, WalletService

LOCK_AFTER = 5  # wrong codes in a row before a device is locked
ORDER_WINDOW = timedelta(seconds=60)  # a USERPAYING order waits this long for the payer, then closes
QUERY_EVERY_S = 3  # the published schedule: the till queries every 3 s, and cancels after the window
TRADE_MINUTES = 1  # the merchant trade expires with the order (its shortest expiry: 60 s)
ACTIVE_MERCHANT = ("approved", "settlement_suspended")
#: The refusals of a scanned code that count against the terminal too (guessing device numbers):
#: not a malformed or expired code, nor one used already (those say nothing about a device).
GUESSES = (errors.PaycodeDeviceUnknown, errors.PaycodeInvalid, errors.PaycodeDeviceLocked,
           errors.PaycodeDeviceRevoked)

# device states
ACTIVE, LOCKED, REVOKED = "active", "locked", "revoked"
# order states as stored; the answer adds REFUND (paid, then refunded in part or in full)
CREATED, USERPAYING, SUCCESS, CLOSED, PAYERROR, REFUND = (
    "CREATED", "USERPAYING", "SUCCESS", "CLOSED", "PAYERROR", "REFUND")
_OPEN = (CREATED, USERPAYING)


class SecretBox:
    """AES-256-GCM sealing of device secrets at rest (``cryptography``'s AEAD, a random 96-bit
    nonce per secret). ``key_id`` names the key a secret was sealed with, so a platform started
    with another key fails loudly instead of refusing every code as wrong."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the payment-code key is 32 bytes (AES-256)")
        self._aead = AESGCM(key)
        self.key_id = hashlib.sha256(b"mobipay paycode key id\0" + key).hexdigest()[:16]

    @classmethod
    def from_settings(cls, paycode_key: str, secret_key: str) -> SecretBox:
        """``MOBIPAY_PAYCODE_KEY`` (base64 of 32 bytes) or, when empty, a key of its own derived
        from ``MOBIPAY_SECRET_KEY`` with HKDF-SHA256 (as the voice channel derives its key)."""
        if paycode_key:
            try:
                key = base64.b64decode(paycode_key, validate=True)
            except binascii.Error:
                key = b""
            if len(key) != 32:
                raise ValueError("MOBIPAY_PAYCODE_KEY is base64 of 32 bytes, e.g. from: python -c 'import base64, "
                                 "os; print(base64.b64encode(os.urandom(32)).decode())'")
            return cls(key)
        derived = HKDF(SHA256(), 32, salt=None, info=b"mobipay paycode device secrets v1").derive(secret_key.encode())
        return cls(derived)

    def seal(self, secret: bytes, context: str) -> str:
        nonce = os.urandom(12)
        return base64.b64encode(nonce + self._aead.encrypt(nonce, secret, context.encode())).decode()

    def open(self, sealed: str, key_id: str, context: str) -> bytes:
        if key_id != self.key_id:
            raise RuntimeError(f"payment-code secret sealed with key {key_id}, this platform has {self.key_id}: "
                               "start it with the MOBIPAY_PAYCODE_KEY (or secret key) it was sealed with")
        raw = base64.b64decode(sealed)
        try:
            return self._aead.decrypt(raw[:12], raw[12:], context.encode())
        except InvalidTag:
            raise RuntimeError("a payment-code secret does not open: its row was altered") from None


def _context(device_id: str, device_no: str, user_id: str) -> str:
    """The associated data of a sealed secret: it opens on its own row only."""
    return f"mobipay-paycode-v1|{device_id}|{device_no}|{user_id}"


def _at(value: datetime | None) -> datetime | None:
    return as_utc(value) if value is not None else None


@dataclass(frozen=True, slots=True)
class PaycodeDevice:
    """A device's payment-code registration as its owner sees it (never its secret)."""

    id: str
    device_no: str
    user_id: str
    session_id: str
    state: str  # active | locked | revoked
    failures: int
    created_at: datetime
    last_used_at: datetime | None
    locked_at: datetime | None
    revoked_at: datetime | None



async def _use_code(uow: UnitOfWork, device: PaycodeDevice, step: int, use_id: str, *, again_ok: bool = False) -> None:
    """In the paying transaction: the code's one use (its device and time step) under ``use_id``
    and the device's wrong codes forgotten. A code used already is ``PAYCODE_USED`` (with
    ``again_ok``, the same ``use_id`` again is the same use: a till's retry); a device revoked
    or locked since its code was read is ``PAYCODE_DEVICE_REVOKED``."""
    conn = uow.conn
    used = await conn.execute(dialect_insert(conn.dialect.name, paycode_uses).values(
        device_id=device.id, step=step, order_id=use_id, used_at=uow.now).on_conflict_do_nothing())
    if not used.rowcount:
        u = paycode_uses.c
        if not again_ok or (await conn.execute(select(u.order_id).where(
                u.device_id == device.id, u.step == step))).scalar() != use_id:
            raise errors.PaycodeUsed(field="auth_code")
    c = paycode_devices.c
    still = await conn.execute(update(paycode_devices).where(c.id == device.id, c.state == ACTIVE)
                               .values(failures=0, last_used_at=uow.now))
    if not still.rowcount:
        raise errors.PaycodeDeviceRevoked("the device stopped paying a moment ago", field="auth_code")


def _device(row: Any) -> PaycodeDevice:
    return PaycodeDevice(row.id, row.device_no, row.user_id, row.session_id, row.state, row.failures,
                         as_utc(row.created_at), _at(row.last_used_at), _at(row.locked_at), _at(row.revoked_at))


@dataclass(frozen=True, slots=True)
class Provisioned:
    """The answer of a provisioning: the secret is shown to the device (again on a replay of
    the same Idempotency-Key while the device is active), never listed."""

    device: PaycodeDevice
    secret: bytes | None
    server_time: datetime


@dataclass(frozen=True, slots=True)
class MicropayOrder:
    """A micropay order as the till and the payer see it: ``state`` is the stored one, or
    SUCCESS / REFUND from its trade once paid, or CLOSED once its window has passed."""

    id: str
    merchant_id: str
    store_id: str
    terminal_id: str
    out_trade_no: str
    amount: int
    subject: str
    payer_id: str
    state: str
    trade_id: str | None
    error_code: str | None
    close_reason: str | None
    created_at: datetime
    expires_at: datetime
    paid_at: datetime | None
    closed_at: datetime | None
    refunded: int = 0
    privilege: int = 0  # fen off the amount: an alliance privilege the merchant gave (the payer paid amount - this)


@dataclass(frozen=True, slots=True)
class Pending:
    """An order waiting for the payer's PIN, with what the app shows."""

    order: MicropayOrder
    merchant: Merchant
    store: StoreRecord | None


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


class Micropay:
    """Payment-code devices for the wallet app, and the micropay orders of terminals."""

    def __init__(self, uow: UnitOfWorkRunner, merchants: MerchantService, wallet: WalletService, instore: InStore,
                 box: SecretBox, throttle: ThrottlePolicy | None = None) -> None:
        self.uow = uow
        self.merchants = merchants
        self.wallet = wallet
        self.instore = instore
        self.box = box
        self.throttle = PaycodeThrottle(uow, throttle)  # refused codes per terminal, across devices

    # ------------------------------------------------------------------ devices (the wallet app)

    async def provision(self, me: Principal, *, idempotency_key: str) -> tuple[Provisioned, bool]:
        """A new secret and device number for the caller's session, replacing the one it had:
        (the answer, whether it replays an earlier one with this key). Only a bound device
        (a session opened by SMS code) gets one."""
        check_idempotency_key(idempotency_key)
        if (known := await self._by_key(me.user_id, idempotency_key)) is not None:
            return await self._replay(me, known), True
        if not await self.wallet.device_bound(me):
            raise errors.PaycodeDeviceNotBound("sign in on this device with an SMS code first, then ask for the "
                                               "payment code")
        secret = secrets.token_bytes(paycode.SECRET_BYTES)
        device_id = new_id("pcd")
        c = paycode_devices.c

        async def work(uow: UnitOfWork) -> PaycodeDevice | None:
            conn = uow.conn
            ins = dialect_insert(conn.dialect.name, paycode_devices)
            for _ in range(8):  # a number already given: another random one (1 in 10^8 per device)
                device_no = f"{secrets.randbelow(10 ** paycode.DEVICE_DIGITS):0{paycode.DEVICE_DIGITS}d}"
                moved = await conn.execute(ins.values(
                    id=device_id, device_no=device_no, user_id=me.user_id, session_id=me.session_id,
                    sealed_secret=self.box.seal(secret, _context(device_id, device_no, me.user_id)),
                    key_id=self.box.key_id, state=ACTIVE, failures=0, idempotency_key=idempotency_key,
                    created_at=uow.now).on_conflict_do_nothing())
                if moved.rowcount:
                    break
                if (await conn.execute(select(c.id).where(c.user_id == me.user_id,
                                                          c.idempotency_key == idempotency_key))).first():
                    return None  # the same request, a moment ago: replay it
            else:  # pragma: no cover - eight collisions in 10^8 numbers
                raise RuntimeError("no free payment-code device number")
            # then the session's earlier device stops: after the insert, so a racing twin never revokes this one
            await conn.execute(update(paycode_devices).where(c.session_id == me.session_id, c.id != device_id,
                                                             c.state != REVOKED)
                               .values(state=REVOKED, revoked_at=uow.now))
            row = (await conn.execute(select(paycode_devices).where(c.id == device_id))).one()
            return _device(row)

        made = await self.uow.run("paycode_provision", work)
        if made is None:
            known = await self._by_key(me.user_id, idempotency_key)
            assert known is not None
            return await self._replay(me, known), True
        return Provisioned(made, secret, self.uow.clock.now()), False

    async def _replay(self, me: Principal, known: Any) -> Provisioned:
        device = _device(known)
        if device.session_id != me.session_id:
            raise IdempotencyConflict("this Idempotency-Key provisioned another session's device: send a new key",
                                      field="Idempotency-Key")
        secret = None
        if device.state == ACTIVE:
            secret = self.box.open(known.sealed_secret, known.key_id,
                                   _context(device.id, device.device_no, device.user_id))
        return Provisioned(device, secret, self.uow.clock.now())

    async def _by_key(self, user_id: str, key: str) -> Any:
        async def work(uow: UnitOfWork) -> Any:
            c = paycode_devices.c
            return (await uow.conn.execute(select(paycode_devices).where(c.user_id == user_id,
                                                                          c.idempotency_key == key))).first()

        return await self.uow.run("paycode_device", work)

    async def devices(self, me: Principal) -> list[PaycodeDevice]:
        """The payer's devices that may pay or are locked, oldest first; a device whose session
        ended reads as revoked (it no longer pays)."""
        live = {s.id for s in await self.wallet.devices(me.user_id)}

        async def work(uow: UnitOfWork) -> list[PaycodeDevice]:
            c = paycode_devices.c
            rows = await uow.conn.execute(select(paycode_devices).where(c.user_id == me.user_id, c.state != REVOKED)
                                          .order_by(c.created_at, c.id))
            return [_device(r) for r in rows]

        found = await self.uow.run("paycode_devices", work)
        return [d if d.session_id in live else replace(d, state=REVOKED) for d in found]

    async def revoke(self, me: Principal, device_id: str) -> PaycodeDevice:
        """The device's codes stop paying at once (a lost phone, from another session); again is a no-op."""

        async def work(uow: UnitOfWork) -> PaycodeDevice:
            c = paycode_devices.c
            row = (await uow.conn.execute(select(paycode_devices).where(c.id == device_id, c.user_id == me.user_id)
                                          .with_for_update())).first()
            if row is None:
                raise errors.PaycodeDeviceNotFound(field="device_id")
            if row.state == REVOKED:
                return _device(row)
            await uow.conn.execute(update(paycode_devices).where(c.id == device_id).values(
                state=REVOKED, revoked_at=uow.now))
            return replace(_device(row), state=REVOKED, revoked_at=uow.now)

        return await self.uow.run("paycode_revoke", work)

    # ------------------------------------------------------------------ reading a scanned code

    async def _accepted_device(self, code: str) -> tuple[PaycodeDevice, int]:
        """The device of a scanned code and the code's time step, or the refusal. A wrong
        password counts against the device (5 in a row lock it); nothing else is written."""
        parsed = paycode.parse(code)

        async def read(uow: UnitOfWork) -> Any:
            return (await uow.conn.execute(select(paycode_devices).where(
                paycode_devices.c.device_no == parsed.device_no))).first()

        row = await self.uow.run("paycode_device", read)
        if row is None:
            raise errors.PaycodeDeviceUnknown(field="auth_code")
        device = _device(row)
        if device.state == LOCKED:
            raise errors.PaycodeDeviceLocked(field="auth_code")
        if device.state != ACTIVE:
            raise errors.PaycodeDeviceRevoked(field="auth_code")
        if not any(s.id == device.session_id for s in await self.wallet.devices(device.user_id)):
            raise errors.PaycodeDeviceRevoked("the wallet signed out on this device", field="auth_code")
        secret = self.box.open(row.sealed_secret, row.key_id, _context(device.id, device.device_no, device.user_id))
        try:
            step = paycode.verify(secret, code, self.uow.clock.now())
        except errors.PaycodeInvalid:
            left = await self._wrong_code(device.id)
            if left == 0:
                raise errors.PaycodeDeviceLocked("that was the last wrong code this device may send",
                                                 field="auth_code") from None
            raise errors.PaycodeInvalid(field="auth_code", attempts_left=left) from None
        return device, step

    async def guarded_device(self, code: str, terminal: Terminal) -> tuple[PaycodeDevice, int]:
        """:meth:`_accepted_device` for a terminal: refused (``TERMINAL_PAYCODE_THROTTLED``) without
        reading the code while the terminal is throttled, and each refusal that may be a guess
        (:data:`GUESSES`) counted against the terminal as well as the device."""
        await self.throttle.check(terminal.id)
        try:
            return await self._accepted_device(code)
        except GUESSES as exc:
            await self.throttle.refused(terminal.id, actor=f"{terminal.merchant_id}/{terminal.id}", code=exc.code)
            raise

    async def _wrong_code(self, device_id: str) -> int:
        """One more wrong code for the device; locked at :data:`LOCK_AFTER`. Returns the tries left."""

        async def work(uow: UnitOfWork) -> int:
            c = paycode_devices.c
            await uow.conn.execute(update(paycode_devices).where(c.id == device_id, c.state == ACTIVE)
                                   .values(failures=c.failures + 1))
            failures = int((await uow.conn.execute(select(c.failures).where(c.id == device_id))).scalar_one())
            if failures >= LOCK_AFTER:
                await uow.conn.execute(update(paycode_devices).where(c.id == device_id, c.state == ACTIVE)
                                       .values(state=LOCKED, locked_at=uow.now))
            return max(0, LOCK_AFTER - failures)

        return await self.uow.run("paycode_wrong_code", work)

    # ------------------------------------------------------------------ for the one-cards' terminals

    async def claim_code(self, code: str, *, use_id: str, terminal: Terminal) -> PaycodeDevice:
        """The device of a scanned code, the code's use recorded under ``use_id`` (another
        context's payment: the enterprise canteen's POS), so it pays once as a micropay code
        does; the same ``use_id`` again (the till's retry) is answered the device. Wrong codes
        count against the device and the terminal as in micropay (:meth:`guarded_device`)."""
        code = code.strip()
        device, step = await self.guarded_device(code, terminal)

        async def work(uow: UnitOfWork) -> None:
            await _use_code(uow, device, step, use_id, again_ok=True)

        await self.uow.run("paycode_claim", work)
        return device

    async def device_of_code(self, code: str) -> PaycodeDevice | None:
        """The device a code names by its device number, unverified (a retry's code may have
        expired): whether a retried payment comes from the same payer."""
        try:
            parsed = paycode.parse(code.strip())
        except MobipayError:
            return None

        async def read(uow: UnitOfWork) -> Any:
            return (await uow.conn.execute(select(paycode_devices).where(
                paycode_devices.c.device_no == parsed.device_no))).first()

        row = await self.uow.run("paycode_device", read)
        return _device(row) if row is not None else None

    # ------------------------------------------------------------------ the terminal's micropay

    async def micropay(self, terminal: Terminal, *, out_trade_no: str, auth_code: str, amount: object,
                       subject: str) -> tuple[MicropayOrder, bool]:
        """Charge the scanned code ``auth_code`` ``amount`` fen for the terminal's store:
        (the order, whether this is a retry of an order made before). SUCCESS at once within
        the password-free amount, else USERPAYING; a refusal raises, nothing moved."""
        out_trade_no = _out_trade_no(out_trade_no)
        amount = check_amount(amount)
        subject = subject.strip()
        if not subject or len(subject) > 256:
            raise ValidationFailed("send a subject of 1 to 256 characters: what the payer pays for", field="subject")
        code = auth_code.strip()  # a scanner's CR/LF
        file = await self.merchants.merchant_file(terminal.merchant_id)  # read once: the trade and payment use it
        merchant = file.merchant
        if (known := await self._order_row(merchant.id, out_trade_no)) is not None:
            return await self._again(merchant, known, amount, code, file), True
        if merchant.state.value not in ACTIVE_MERCHANT:
            raise merchant_errors.MerchantNotActive(f"the merchant is {merchant.state.value}: it cannot be paid now")
        try:
            await self.merchants.trade_by_out_no(merchant, out_trade_no)
        except merchant_errors.TradeNotFound:
            pass
        else:  # ours, made by a twin of this request a moment ago (its order is written before its trade)?
            if (known := await self._order_row(merchant.id, out_trade_no)) is not None:
                return await self._again(merchant, known, amount, code, file), True
            raise merchant_errors.TradeExists("this out_trade_no is another trade of yours", field="out_trade_no")
        device, step = await self.guarded_device(code, terminal)
        order_id = new_id("mpo")

        async def accept(uow: UnitOfWork) -> Any:
            """The order and the code's use in one transaction: a used code makes no order."""
            conn = uow.conn
            made = (await conn.execute(dialect_insert(conn.dialect.name, micropay_orders).values(
                id=order_id, merchant_id=merchant.id, store_id=terminal.store_id, terminal_id=terminal.id,
                out_trade_no=out_trade_no, amount=amount, subject=subject, payer_id=device.user_id,
                device_id=device.id, step=step, code_hash=code_hash(code), state=CREATED, created_at=uow.now,
                expires_at=uow.now + ORDER_WINDOW).on_conflict_do_nothing().returning(*micropay_orders.c))).first()
            if made is None:
                return None  # the same out_trade_no from another request a moment ago
            await _use_code(uow, device, step, order_id)  # a refusal here undoes the order
            return made  # the row as inserted (RETURNING), not read again

        row = await self.uow.run("micropay_accept", accept)
        if row is None:
            known = await self._order_row(merchant.id, out_trade_no)
            assert known is not None
            return await self._again(merchant, known, amount, code, file), True
        return await self._proceed(merchant, row, file=file, device=device), False

    async def _again(self, merchant: Merchant, row: Any, amount: int, code: str,
                     file: MerchantFile | None = None) -> MicropayOrder:
        """A retried out_trade_no: the same order (resumed if a failure left it half done), or a refusal."""
        if row.amount != amount:
            raise errors.MicropayAmountMismatch(f"this out_trade_no is an order of {row.amount} fen", field="amount",
                                                order_amount=row.amount)
        if row.code_hash != code_hash(code):
            raise errors.MicropayCodeMismatch(field="auth_code")
        if row.state == PAYERROR:
            raise errors.MicropayOrderFailed(f"refused with {row.error_code}", field="out_trade_no",
                                             error_code=row.error_code)
        if row.state == CREATED and as_utc(row.expires_at) > self.uow.clock.now():
            return await self._proceed(merchant, row, file=file)
        return await self._view(row)

    async def _proceed(self, merchant: Merchant, row: Any, *, file: MerchantFile | None = None,
                       device: PaycodeDevice | None = None) -> MicropayOrder:
        """An accepted order: its trade made (or found), then charged at once or left for the PIN.
        ``file`` and ``device``: the merchant's file and the code's device as this request read
        them (not read again)."""
        trade: Trade | None = None
        if row.trade_id is None:
            order_id, linked = row.id, []

            async def link(tx: Transaction, made: Trade) -> None:
                """In the trade's transaction: the order names its trade (a twin's link stays), read back."""
                conn, c = cast(UnitOfWork, tx).conn, micropay_orders.c
                moved = (await conn.execute(update(micropay_orders).where(c.id == order_id, c.trade_id.is_(None))
                                            .values(trade_id=made.id).returning(*micropay_orders.c))).first()
                linked.append(moved if moved is not None else
                              (await conn.execute(select(micropay_orders).where(c.id == order_id))).one())

            try:
                trade = await self.merchants.create_trade(merchant, row.out_trade_no, row.amount, row.subject,
                                                          TRADE_MINUTES, store_id=row.store_id, file=file, then=link)
            except MobipayError as exc:
                await self._fail(row.id, None, exc)
                raise
            [row] = linked
            if row.trade_id != trade.id:  # pragma: no cover - a twin linked another trade: read that one
                trade = None
        if row.state != CREATED:  # cancelled while the trade was being made
            await self._close_trade(merchant, row)
            return await self._view(row)
        if row.amount > self.wallet.limits.password_free:
            return await self._await_pin(merchant, row)
        session_id = (device.session_id if device is not None and device.id == row.device_id
                      else await self._session_of(row.device_id))
        payer = replace(await self.wallet.principal(row.payer_id), session_id=session_id)
        try:
            paid = await self._charge(row, payer, pin=None, two_factors=False, trade=trade, file=file)
        except errors.QrDynamicLimitExceeded as exc:
            if exc.extra.get("limit") != "dynamic":
                await self._fail(row.id, merchant, exc)
                raise
            return await self._await_pin(merchant, row)  # two factors (the PIN) allow more
        except (errors.MicropayOrderClosed, errors.MicropayOrderExpired):
            await self._close_trade(merchant, await self._row(row.id))
            return await self._view(await self._row(row.id))
        except MobipayError as exc:
            await self._fail(row.id, merchant, exc)
            raise
        if paid.paid_at is None:  # pragma: no cover - pay answers a paid trade
            return await self._view(await self._row(row.id))
        return await self._view(row, paid)  # from what the payment returned: the trade says SUCCESS

    async def _await_pin(self, merchant: Merchant, row: Any) -> MicropayOrder:
        if not await self._set(row.id, (micropay_orders.c.state == CREATED,), state=USERPAYING):
            await self._close_trade(merchant, await self._row(row.id))  # cancelled meanwhile
        return await self._view(await self._row(row.id))

    async def _charge(self, order: Any, payer: Principal, *, pin: str | None, two_factors: bool,
                      trade: Trade | None = None, file: MerchantFile | None = None) -> Trade:
        """The one place a micropay order is charged (at once, or confirmed with the PIN):
        the order's trade paid from the payer's wallet through :meth:`MerchantService.pay`,
        and in the same transaction the order marked SUCCESS (only while still open and in
        its window: a cancel, a decline or the expiry undoes the payment) and the PBoC
        dynamic-code counters moved (a limit undoes it). A discount (a privilege funded by
        the merchant) is applied here, in the paying transaction. ``pin`` was verified by the
        caller already. ``trade`` and ``file``: as this request made and read them (not read again)."""
        counter = self.instore._counter(payer.user_id, "dynamic", two_factors)
        order_id = order.id

        async def then(tx: Transaction, trade: Trade) -> None:
            conn = cast(UnitOfWork, tx).conn
            c = micropay_orders.c
            moved = await conn.execute(update(micropay_orders).where(c.id == order_id, c.state.in_(_OPEN),
                                                                     c.expires_at > tx.now)
                                       .values(state=SUCCESS, paid_at=tx.now))
            if not moved.rowcount:
                raise errors.MicropayOrderClosed("the order closed before it was paid", field="out_trade_no")
            await counter(tx, trade)

        assert order.trade_id is not None
        alliances = self.instore.alliances  # a brand privilege of the store's alliance, as for QR payments
        privilege = (None if alliances is None
                     else alliances.privilege(payer_id=payer.user_id, msisdn=payer.msisdn, channel="paycode"))
        return await self.merchants.pay(payer, order.trade_id, pin=pin, then=then, consent=pin is not None,
                                        privilege=privilege, trade=trade, file=file)

    async def _fail(self, order_id: str, merchant: Merchant | None, exc: MobipayError) -> None:
        """The order's payment was refused: PAYERROR with the refusal's code, its trade closed."""
        await self._set(order_id, (micropay_orders.c.state == CREATED,), state=PAYERROR, error_code=exc.code[:64],
                        closed_at=self.uow.clock.now())
        if merchant is not None:
            await self._close_trade(merchant, await self._row(order_id))

    async def _close_trade(self, merchant: Merchant, row: Any) -> None:
        if row.trade_id is None:
            return
        try:
            await self.merchants.close(merchant, row.out_trade_no)
        except MobipayError as exc:
            if exc.code != "TRADE_STATE_INVALID":  # paid meanwhile: the order reads SUCCESS, the till refunds it
                raise

    async def query(self, terminal: Terminal, out_trade_no: str) -> MicropayOrder:
        """The order as it is now (an order past its window closed by the way)."""
        row = await self._terminal_row(terminal, out_trade_no)
        if row.state in _OPEN and as_utc(row.expires_at) <= self.uow.clock.now():
            await self._expire(row)
            row = await self._row(row.id)
        return await self._view(row)

    async def cancel(self, terminal: Terminal, out_trade_no: str) -> tuple[MicropayOrder, str]:
        """Undo the order: close it unpaid, or refund it in full once paid; (the order, the
        action: ``close`` or ``refund``). Safe to repeat."""
        row = await self._terminal_row(terminal, out_trade_no)
        merchant = await self.merchants.merchant(row.merchant_id)
        await self._set(row.id, (micropay_orders.c.state.in_(_OPEN),), state=CLOSED, close_reason="cancelled",
                        closed_at=self.uow.clock.now())
        action = "close"
        if row.trade_id is not None:
            trade = await self.merchants.cancel(merchant, row.out_trade_no)
            action = "refund" if trade.paid_at is not None else "close"
        return await self._view(await self._row(row.id)), action

    async def refund(self, terminal: Terminal, out_trade_no: str, out_refund_no: str, amount: object
                     ) -> tuple[MicropayOrder, int, bool]:
        """Refund part or all of a paid order, once per ``out_refund_no``: (the order, the
        amount of this refund, whether it replays an earlier request)."""
        out_refund_no = _out_trade_no(out_refund_no, field="out_refund_no")
        if out_refund_no == "cancel":
            raise ValidationFailed("out_refund_no 'cancel' is the cancel's own: send another", field="out_refund_no")
        row = await self._terminal_row(terminal, out_trade_no)
        view = await self._view(row)
        if view.paid_at is None:
            raise errors.MicropayNotPaid(f"the order is {view.state}", field="out_trade_no")
        merchant = await self.merchants.merchant(row.merchant_id)
        _, refunded, replayed = await self.merchants.refund(merchant, row.out_trade_no, out_refund_no, amount)
        return await self._view(row), refunded, replayed

    # ------------------------------------------------------------------ the payer's side of USERPAYING

    async def pending(self, me: Principal) -> list[Pending]:
        """The orders waiting for the payer's PIN, newest first."""
        now = self.uow.clock.now()

        async def work(uow: UnitOfWork) -> list[Any]:
            c = micropay_orders.c
            return list(await uow.conn.execute(select(micropay_orders).where(
                c.payer_id == me.user_id, c.state == USERPAYING, c.expires_at > now).order_by(c.created_at.desc())))

        out = []
        for row in await self.uow.run("micropay_pending", work):
            view = await self._view(row)
            if view.state == USERPAYING:
                out.append(Pending(view, await self.merchants.merchant(row.merchant_id),
                                   await self.merchants.store_by_id(row.store_id)))
        return out

    async def confirm(self, me: Principal, order_id: str, pin: str) -> MicropayOrder:
        """The payer pays a waiting order with the PIN (verified first: a wrong one counts
        towards the lockout); a retry of a paid order returns it."""
        row = await self._payer_row(me, order_id)
        view = await self._waiting(row)
        if view.state in (SUCCESS, REFUND):
            return view
        if row.state != USERPAYING:  # being charged without the PIN this moment
            raise errors.MicropayOrderNotFound("the order is not waiting for your PIN", field="order_id")
        await self.wallet.verify_pin(me.msisdn, pin)
        two = await self.wallet.device_bound(me)
        try:
            await self._charge(row, me, pin=pin, two_factors=two)
        except MobipayError as exc:
            if exc.code not in ("TRADE_STATE_INVALID", "MICROPAY_ORDER_CLOSED"):
                raise
            await self._waiting(await self._row(row.id))  # closed or expired meanwhile: say which
            raise
        return await self._view(await self._row(row.id))

    async def decline(self, me: Principal, order_id: str) -> MicropayOrder:
        """The payer refuses a waiting order: it closes, the till's next query says CLOSED."""
        row = await self._payer_row(me, order_id)
        view = await self._view(row)
        if view.state in (SUCCESS, REFUND):
            raise errors.MicropayOrderPaid(field="order_id")
        if view.state != USERPAYING:
            return view
        await self._set(row.id, (micropay_orders.c.state.in_(_OPEN),), state=CLOSED, close_reason="declined",
                        closed_at=self.uow.clock.now())
        await self._close_trade(await self.merchants.merchant(row.merchant_id), row)
        return await self._view(await self._row(row.id))

    async def _waiting(self, row: Any) -> MicropayOrder:
        """The order if it is waiting for the payer (or paid: a retry), else why not."""
        view = await self._view(row)
        if view.state in (USERPAYING, SUCCESS, REFUND):
            return view
        if view.state == PAYERROR:
            raise errors.MicropayOrderFailed(field="order_id", error_code=view.error_code)
        if view.close_reason == "expired":
            raise errors.MicropayOrderExpired(field="order_id")
        if view.state == CLOSED:
            raise errors.MicropayOrderClosed(f"the order was {view.close_reason}", field="order_id",
                                             close_reason=view.close_reason)
        raise errors.MicropayOrderNotFound("the order is not waiting for your PIN", field="order_id")

    # ------------------------------------------------------------------ expiry (the worker)

    async def expire_due(self, limit: int = 100) -> int:
        """Close the orders whose window has passed unpaid (the worker, every few seconds), so
        no order stays USERPAYING; returns how many."""
        now = self.uow.clock.now()

        async def due(uow: UnitOfWork) -> list[Any]:
            c = micropay_orders.c
            return list(await uow.conn.execute(select(micropay_orders).where(c.state.in_(_OPEN), c.expires_at <= now)
                                               .order_by(c.expires_at).limit(limit)))

        count = 0
        for row in await self.uow.run("micropay_due", due):
            count += await self._expire(row)
        return count

    async def _expire(self, row: Any) -> int:
        moved = await self._set(row.id, (micropay_orders.c.state.in_(_OPEN),
                                         micropay_orders.c.expires_at <= self.uow.clock.now()),
                                state=CLOSED, close_reason="expired", closed_at=self.uow.clock.now())
        if moved:
            await self._close_trade(await self.merchants.merchant(row.merchant_id), row)
        return int(moved)

    # ------------------------------------------------------------------ rows

    async def _set(self, order_id: str, where: tuple[Any, ...], **values: Any) -> bool:
        """A conditional update of one order: whether it moved (the condition held)."""

        async def work(uow: UnitOfWork) -> bool:
            moved = await uow.conn.execute(update(micropay_orders).where(micropay_orders.c.id == order_id, *where)
                                           .values(**values))
            return bool(moved.rowcount)

        return await self.uow.run("micropay_update", work)

    async def _row(self, order_id: str) -> Any:
        async def work(uow: UnitOfWork) -> Any:
            return (await uow.conn.execute(select(micropay_orders).where(micropay_orders.c.id == order_id))).one()

        return await self.uow.run("micropay_order", work)

    async def _order_row(self, merchant_id: str, out_trade_no: str) -> Any:
        async def work(uow: UnitOfWork) -> Any:
            c = micropay_orders.c
            return (await uow.conn.execute(select(micropay_orders).where(
                c.merchant_id == merchant_id, c.out_trade_no == out_trade_no))).first()

        return await self.uow.run("micropay_order", work)

    async def _terminal_row(self, terminal: Terminal, out_trade_no: str) -> Any:
        """An order of the terminal's merchant (any of its tills: a refund at another counter)."""
        row = await self._order_row(terminal.merchant_id, _out_trade_no(out_trade_no))
        if row is None:
            raise errors.MicropayOrderNotFound(field="out_trade_no")
        return row

    async def _payer_row(self, me: Principal, order_id: str) -> Any:
        async def work(uow: UnitOfWork) -> Any:
            c = micropay_orders.c
            return (await uow.conn.execute(select(micropay_orders).where(c.id == order_id,
                                                                          c.payer_id == me.user_id))).first()

        row = await self.uow.run("micropay_order", work)
        if row is None:  # another payer's order looks the same as none
            raise errors.MicropayOrderNotFound(field="order_id")
        return row

    async def _session_of(self, device_id: str) -> str:
        async def work(uow: UnitOfWork) -> str:
            c = paycode_devices.c
            return str((await uow.conn.execute(select(c.session_id).where(c.id == device_id))).scalar_one())

        return await self.uow.run("paycode_device", work)

    async def _view(self, row: Any, trade: Trade | None = None) -> MicropayOrder:
        """The order as the till and the payer see it; ``trade``: its trade as just returned (not read again)."""
        now = self.uow.clock.now()
        if trade is None or trade.id != row.trade_id:
            trade = await self.merchants.trade(row.trade_id) if row.trade_id else None
        state, reason, paid_at, closed_at = row.state, row.close_reason, _at(row.paid_at), _at(row.closed_at)
        refunded = privilege = 0
        if trade is not None and trade.paid_at is not None:
            paid_at, refunded, privilege = trade.paid_at, trade.refunded, trade.privilege
            state = REFUND if trade.refunded else SUCCESS
        elif state in _OPEN and as_utc(row.expires_at) <= now:
            state, reason = CLOSED, "expired"
        elif state == CREATED:
            state = USERPAYING  # accepted and being charged: the till queries on
        return MicropayOrder(row.id, row.merchant_id, row.store_id, row.terminal_id, row.out_trade_no, row.amount,
                             row.subject, row.payer_id, state, row.trade_id, row.error_code, reason,
                             as_utc(row.created_at), as_utc(row.expires_at), paid_at, closed_at, refunded, privilege)


def _out_trade_no(value: object, *, field: str = "out_trade_no") -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 64 or not value.isprintable() or value != value.strip():
        raise ValidationFailed(f"{field} is 1 to 64 printable characters", field=field)
    return value
