"""Scan and pay a merchant's QR code from the wallet, and the codes the merchant shows.

A store has one **static** code (initiation 11, no amount: the payer types it); a trade has a
**dynamic** code (12) with its amount and the trade in template 62's bill number. Paying a
dynamic code pays that trade through :meth:`MerchantService.pay`; paying a static code
creates a trade for the store whose ``out_trade_no`` derives from the payer and the
Idempotency-Key (a retry is the same trade, paid once), then pays it.

The daily limits of PBoC notice 2017/296 are counted in the paying transaction (the
``then`` hook of ``MerchantService.pay``), on one row per payer and Beijing day updated with
a conditional UPDATE, so concurrent payments cannot pass a limit together and a refusal
undoes the posting: static codes 500 CNY a day; dynamic codes 1,000 CNY a day paid with fewer
than two factors and 5,000 CNY in all with two (the PIN on a bound device: a session opened
with an SMS code, see :meth:`WalletService.device_bound`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from cryptography.hazmat.primitives.cmac import CMAC
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from mobipay.instore import errors, nfc, signature
from mobipay.instore.alliance_service import AllianceService
from mobipay.instore.cities import latin_names
from mobipay.instore.model import AdditionalData, Initiation, LocalName, MerchantQr, encode, parse
from mobipay.instore.tables import nfc_keys, nfc_tokens, qr_daily_usage
from mobipay.instore.tokens import DenyEntry, NfcTokens
from mobipay.kernel.clock import SHANGHAI, as_utc
from mobipay.kernel.errors import IdempotencyConflict, MobipayError
from mobipay.kernel.ids import check_idempotency_key
from mobipay.kernel.money import check_amount
from mobipay.ledger.uow import Runner, Transaction, UnitOfWork
from mobipay.merchants.service import Merchant, MerchantService, StoreRecord, Trade
from mobipay.platform.db import dialect_insert
from mobipay.wallet.service import Principal, WalletService

ACTIVE = ("approved", "settlement_suspended")  # merchant states that may be paid
STATIC_TRADE_MINUTES = 15  # a static-code trade left unpaid (a refused PIN) closes by itself
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"

#: Latin names of the reference data's 50 cities for tag 60 (Latin only; instore/data/cities.csv);
#: a store's city in Chinese goes to template 64.
CITIES = latin_names()


@dataclass(frozen=True, slots=True)
class QrLimits:
    """PBoC 2017/296's daily limits of QR payments, fen (configurable)."""

    static: int = 50_000
    dynamic: int = 100_000  # with fewer than two factors
    dynamic_two_factor: int = 500_000


@dataclass(frozen=True, slots=True)
class Scan:
    """What the app shows before paying a scanned code."""

    scan_id: str  # the pay call may send it back: it must be this payload's
    kind: str  # "static" | "dynamic"
    merchant: Merchant
    store: StoreRecord | None
    city: str
    amount: int | None  # fen; None for a static code (the payer types it)
    trade: Trade | None  # a dynamic code's order


def scan_id(payload: str) -> str:
    """A stable name of the payload, so the pay call can prove it pays what the app showed."""
    return "scn_" + hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


def bill_number(trade_id: str) -> str | None:
    """Tag 62.01 holds 25 characters; a trade id (``trd_`` and 32 hex digits) is written as its
    128 bits in 25 base-36 digits. None for an id of another form (no dynamic code then)."""
    prefix, _, digits = trade_id.partition("_")
    if prefix != "trd" or len(digits) != 32:
        return None
    try:
        n = int(digits, 16)
    except ValueError:
        return None
    out = ""
    for _ in range(25):
        n, r = divmod(n, 36)
        out = _BASE36[r] + out
    return out


def trade_id_of(bill: str | None) -> str | None:
    """The trade id a bill number of :func:`bill_number` stands for."""
    if bill is None or len(bill) != 25 or any(c not in _BASE36 for c in bill):
        return None
    n = int(bill, 36)
    return f"trd_{n:032x}" if n < 1 << 128 else None


def latin_name(merchant: Merchant) -> str:
    """Tag 59 (printable ASCII, at most 25): the Latin words of the merchant's name if it has
    any (``Starbucks 星巴克`` → ``STARBUCKS``), else a short name from its id; the Chinese name
    is in template 64. There is no romanisation library here, nor a field for an English name."""
    ascii_part = " ".join("".join(c if c.isascii() and c.isprintable() else " " for c in merchant.name).split())
    if sum(c.isalpha() for c in ascii_part) >= 2:
        return ascii_part.upper()[:25].strip()
    return f"MOBIPAY {merchant.id.removeprefix('mch_')[-8:].upper()}"


def latin_city(city: str) -> str:
    """Tag 60 (printable ASCII, at most 15): the city as written if Latin, its known Latin name
    if Chinese, else CHINA (the Chinese name travels in template 64)."""
    city = city.strip()
    if city and city.isascii() and city.isprintable():
        return city.upper()[:15].strip()
    return CITIES.get(city.removesuffix("市"), "CHINA")


class InStore:
    """The merchant's codes and the subscriber's scan and pay."""

    def __init__(self, uow: Runner, merchants: MerchantService, wallet: WalletService,
                 limits: QrLimits | None = None) -> None:
        self.uow = uow
        self.merchants = merchants
        self.wallet = wallet
        self.limits = limits or QrLimits()
        #: Alliance privileges applied at payment (the payer pays, the merchant is settled, less).
        self.alliances: AllianceService | None = None

    # ------------------------------------------------------------------ the merchant's codes

    async def store_payload(self, merchant: Merchant, store_id: str) -> str:
        """The static code of one of the merchant's stores (printed once, the payer types the amount)."""
        store = await self.merchants.own_store(merchant.id, store_id)
        return encode(self._qr(merchant, Initiation.STATIC, store=store))

    async def trade_payload(self, trade: Trade) -> str | None:
        """The dynamic code of a trade (its amount, the trade in the bill number)."""
        bill = bill_number(trade.id)
        if bill is None:
            return None
        merchant = await self.merchants.merchant(trade.merchant_id)
        store = await self.merchants.store_by_id(trade.store_id) if trade.store_id else None
        return encode(self._qr(merchant, Initiation.DYNAMIC, store=store, amount=trade.amount, bill=bill))

    async def own_trade_payload(self, merchant: Merchant, out_trade_no: str) -> str:
        """The dynamic code of one of the merchant's trades, by its number."""
        found = await self.merchants.find_trade(merchant, out_trade_no=out_trade_no)
        payload = await self.trade_payload(found)
        if payload is None:
            raise errors.QrTradeNotFound("this trade has no dynamic code", field="out_trade_no")
        return payload

    def _qr(self, merchant: Merchant, initiation: Initiation, *, store: StoreRecord | None,
            amount: int | None = None, bill: str | None = None) -> MerchantQr:
        city = store.city if store else ""
        local = LocalName("ZH", merchant.name[:25], city[:15] or None)
        return MerchantQr(initiation, merchant.id, merchant.mcc, latin_name(merchant), latin_city(city),
                          amount=amount, store_id=store.id if store else None,
                          additional=AdditionalData(bill_number=bill), local=local)

    # ------------------------------------------------------------------ the subscriber's side

    async def scan(self, payload: str) -> Scan:
        """Read a scanned code and what it names: refused with a specific code when it is not
        ours, damaged, for a merchant not active, a store that does not exist, or an order
        expired, closed or paid."""
        qr = parse(payload)
        try:
            merchant = await self.merchants.merchant(qr.merchant_id)
        except MobipayError as exc:
            if exc.code == "MERCHANT_NOT_FOUND":
                raise errors.QrMerchantUnknown(field="payload") from None
            raise
        if merchant.state.value not in ACTIVE:
            raise errors.QrMerchantNotActive(f"the merchant is {merchant.state.value}", field="payload")
        store = await self.merchants.store_by_id(qr.store_id) if qr.store_id else None
        if qr.store_id and (store is None or store.merchant_id != merchant.id):
            raise errors.QrStoreNotFound(field="payload")
        city = qr.local.city if qr.local and qr.local.city else (store.city if store and store.city else qr.city)
        if qr.initiation is Initiation.STATIC:
            if store is None:
                raise errors.QrStoreNotFound("a static mobipay code names its store", field="payload")
            return Scan(scan_id(payload), "static", merchant, store, city, None, None)
        trade = await self._trade_of(qr)
        self._payable(trade)
        return Scan(scan_id(payload), "dynamic", merchant, store, city, trade.amount, trade)

    async def _trade_of(self, qr: MerchantQr) -> Trade:
        trade_id = trade_id_of(qr.additional.bill_number)
        trade = None
        if trade_id is not None:
            try:
                trade = await self.merchants.trade(trade_id)
            except MobipayError as exc:
                if exc.code != "TRADE_NOT_FOUND":
                    raise
        if trade is None or trade.merchant_id != qr.merchant_id or trade.amount != qr.amount:
            raise errors.QrTradeNotFound(field="payload")
        return trade

    def _payable(self, trade: Trade, payer_id: str | None = None) -> None:
        """An order a payer may pay (or, ``payer_id``, one they paid themselves: a retry)."""
        if trade.paid_at is not None:
            if payer_id is not None and trade.payer_id == payer_id:
                return
            raise errors.QrTradePaid(field="payload")
        if trade.state.value == "TRADE_CLOSED":
            if trade.expires_at <= self.uow.clock.now():  # unpaid past its expiry: read as closed
                raise errors.QrTradeExpired(field="payload")
            raise errors.QrTradeClosed(field="payload")

    async def pay(self, me: Principal, payload: str, *, idempotency_key: str, amount: int | None = None,
                  pin: str | None = None, expected_scan: str | None = None) -> tuple[Scan, Trade, bool]:
        """Pay a scanned code: (what was scanned, the paid trade, whether it was paid before:
        a retry). Nothing moves when any check or limit refuses."""
        check_idempotency_key(idempotency_key)
        seen = await self.scan_for_payment(payload, me.user_id)
        if expected_scan is not None and expected_scan != seen.scan_id:
            raise errors.QrScanMismatch(field="scan_id")
        if seen.kind == "dynamic":
            if amount is not None:
                raise errors.QrAmountFixed(field="amount")
            assert seen.trade is not None
            if seen.trade.paid_at is not None:  # this payer paid it already: the same answer
                return seen, seen.trade, True
            trade = seen.trade
        else:
            if amount is None:
                raise errors.QrAmountMissing(field="amount")
            amount = check_amount(amount)
            assert seen.store is not None
            out_trade_no = "qr_" + hashlib.sha256(f"{me.user_id}|{idempotency_key}".encode()).hexdigest()[:40]
            try:
                trade = await self.merchants.create_trade(seen.merchant, out_trade_no, amount, seen.store.name,
                                                          STATIC_TRADE_MINUTES, store_id=seen.store.id)
            except MobipayError as exc:
                if exc.code == "TRADE_EXISTS":
                    raise IdempotencyConflict("this Idempotency-Key paid another amount or store",
                                              field="Idempotency-Key") from None
                raise
            if trade.paid_at is not None:
                return seen, trade, True
            if trade.state.value == "TRADE_CLOSED":
                raise errors.QrTradeExpired("this payment's trade expired unpaid: pay with a new Idempotency-Key",
                                            field="Idempotency-Key")
        two = await self._two_factors(me, pin)
        paid = await self._pay(me, trade, pin, self._counter(me.user_id, seen.kind, two))
        return seen, paid, False

    async def scan_for_payment(self, payload: str, payer_id: str) -> Scan:
        """:meth:`scan`, but a dynamic code this payer paid already reads as theirs (a retry)."""
        try:
            return await self.scan(payload)
        except errors.QrTradePaid:
            qr = parse(payload)
            trade = await self._trade_of(qr)
            self._payable(trade, payer_id)
            merchant = await self.merchants.merchant(trade.merchant_id)
            store = await self.merchants.store_by_id(trade.store_id) if trade.store_id else None
            city = qr.local.city if qr.local and qr.local.city else qr.city
            return Scan(scan_id(payload), "dynamic", merchant, store, city, trade.amount, trade)

    async def _pay(self, me: Principal, trade: Trade, pin: str | None,
                   then: Callable[[Transaction, Trade], Awaitable[None]]) -> Trade:
        """Pay the trade; a PIN given was verified by :meth:`_two_factors` already (one argon2
        hash per payment, not two)."""
        try:
            privilege = (None if self.alliances is None
                         else self.alliances.privilege(payer_id=me.user_id, msisdn=me.msisdn, channel="qr"))
            paid = await self.merchants.pay(me, trade.id, pin=pin, then=then, consent=pin is not None,
                                            privilege=privilege)
        except MobipayError as exc:
            if exc.code != "TRADE_STATE_INVALID":
                raise
        else:
            if paid.payer_id == me.user_id:
                return paid
        now = await self.merchants.trade(trade.id)  # moved meanwhile: say how
        self._payable(now, me.user_id)
        return now

    async def _two_factors(self, me: Principal, pin: str | None) -> bool:
        """The PIN (verified: a wrong one counts towards the lockout and refuses) and a bound device."""
        if pin is None:
            return False
        await self.wallet.verify_pin(me.msisdn, pin)
        return await self.wallet.device_bound(me)

    def _counter(self, payer_id: str, kind: str, two: bool) -> Callable[[Transaction, Trade], Awaitable[None]]:
        async def count(tx: Transaction, trade: Trade) -> None:
            await self._count(tx, payer_id, kind, two, trade.wallet_paid)

        return count

    async def count_qr(self, tx: Transaction, payer_id: str, kind: str, two: bool, amount: int) -> None:
        """For the one-cards paid by a counter code or a payment code (the enterprise allowance's
        wallet share): the same PBoC daily counters and refusals, in the caller's transaction."""
        await self._count(tx, payer_id, kind, two, amount)

    async def _count(self, tx: Transaction, payer_id: str, kind: str, two: bool, amount: int) -> None:
        """In the paying transaction: add ``amount`` to the payer's Beijing-day counters with a
        conditional UPDATE (it waits for a concurrent payment's row lock, then re-checks), or
        refuse naming the limit and what is left; raising undoes the payment."""
        conn = cast(UnitOfWork, tx).conn
        day = tx.now.astimezone(SHANGHAI).date()
        ins = dialect_insert(conn.dialect.name, qr_daily_usage)
        await conn.execute(ins.values(payer_id=payer_id, day=day).on_conflict_do_nothing())
        c = qr_daily_usage.c
        where = (c.payer_id == payer_id) & (c.day == day)
        if kind == "static":
            moved = await conn.execute(update(qr_daily_usage).where(where, c.static_fen + amount <= self.limits.static)
                                       .values(static_fen=c.static_fen + amount))
        elif two:
            moved = await conn.execute(update(qr_daily_usage).where(
                where, c.dynamic_fen + amount <= self.limits.dynamic_two_factor)
                .values(dynamic_fen=c.dynamic_fen + amount))
        else:
            moved = await conn.execute(update(qr_daily_usage).where(
                where, c.dynamic_fen + amount <= self.limits.dynamic_two_factor,
                c.dynamic_weak_fen + amount <= self.limits.dynamic)
                .values(dynamic_fen=c.dynamic_fen + amount, dynamic_weak_fen=c.dynamic_weak_fen + amount))
        if moved.rowcount:
            return
        row = (await conn.execute(select(c.static_fen, c.dynamic_fen, c.dynamic_weak_fen).where(where))).one()
        if kind == "static":
            left = max(0, self.limits.static - row.static_fen)
            raise errors.QrStaticLimitExceeded(f"static QR codes: {left / 100:.2f} CNY left today", field="amount",
                                               limit="static", limit_fen=self.limits.static, left=left)
        total_left = max(0, self.limits.dynamic_two_factor - row.dynamic_fen)
        if two:
            limit, left = "dynamic_two_factor", total_left
        else:
            weak_left = max(0, self.limits.dynamic - row.dynamic_weak_fen)
            limit, left = ("dynamic", weak_left) if weak_left <= total_left else ("dynamic_two_factor", total_left)
        limit_fen = self.limits.dynamic if limit == "dynamic" else self.limits.dynamic_two_factor
        hint = "" if two else " (the PIN on a device signed in by SMS code allows more)"
        raise errors.QrDynamicLimitExceeded(f"dynamic QR codes: {left / 100:.2f} CNY left today{hint}",
                                            field="amount", limit=limit, limit_fen=limit_fen, left=left)



# ---------------------------------------------------------------------- for the one-cards


@dataclass(frozen=True, slots=True)
class TokenKeys:
    """A device token as another context's readers need it (transit validators): whose wallet,
    whether active, and the lifetimes of the keys issued to it (never a key)."""

    id: str
    user_id: str
    msisdn: str
    account_code: str
    state: str
    key_seq: int
    keys: dict[int, tuple[datetime, datetime]]  # seq -> (issued, end: expiry or replacement)


class DeviceTokens:
    """The NFC device token, its cryptogram check and its deny list, for the one-cards built on
    it (transit): a tap at a gate is made by the same token and key as at a shop's terminal, with
    the amount 0 in the cryptogram (the fare is not known at the gate) and the validator's id as
    the terminal id. A transit tap does not count against a key's limits of shop payments."""

    def __init__(self, tokens: NfcTokens) -> None:
        self.tokens = tokens
        self._keyed: dict[tuple[str, int], CMAC] = {}

    async def lookup(self, token_ids: Sequence[str], conn: AsyncConnection | None = None) -> dict[str, TokenKeys]:
        """The tokens of these ids that exist, with their keys' lifetimes (in the caller's
        transaction when ``conn`` is given)."""
        ids = sorted(set(token_ids))
        if not ids:
            return {}

        async def work(c: AsyncConnection) -> dict[str, TokenKeys]:
            out: dict[str, TokenKeys] = {}
            for i in range(0, len(ids), 5000):
                part = ids[i:i + 5000]
                for r in await c.execute(select(nfc_tokens).where(nfc_tokens.c.id.in_(part))):
                    out[r.id] = TokenKeys(r.id, r.user_id, r.msisdn, r.account_code, r.state, int(r.key_seq), {})
                for k in await c.execute(select(nfc_keys.c.token_id, nfc_keys.c.seq, nfc_keys.c.issued_at,
                                                nfc_keys.c.expires_at, nfc_keys.c.retired_at)
                                         .where(nfc_keys.c.token_id.in_(part))):
                    ends = as_utc(k.expires_at) if k.retired_at is None else min(as_utc(k.expires_at),
                                                                               as_utc(k.retired_at))
                    out[k.token_id].keys[int(k.seq)] = (as_utc(k.issued_at), ends)
            return out

        if conn is not None:
            return await work(conn)
        return await self.tokens.uow.run("nfc_token_lookup", lambda uow: work(uow.conn))

    async def of_users(self, user_ids: Sequence[str], conn: AsyncConnection | None = None) -> dict[str, list[str]]:
        """The token ids of each of these wallets (in the caller's transaction when ``conn`` is given)."""
        users = sorted(set(user_ids))

        async def work(c: AsyncConnection) -> dict[str, list[str]]:
            out: dict[str, list[str]] = {}
            for i in range(0, len(users), 5000):
                for r in await c.execute(select(nfc_tokens.c.user_id, nfc_tokens.c.id).where(
                        nfc_tokens.c.user_id.in_(users[i:i + 5000])).order_by(nfc_tokens.c.id)):
                    out.setdefault(r.user_id, []).append(r.id)
            return out

        if not users:
            return {}
        if conn is not None:
            return await work(conn)
        return await self.tokens.uow.run("nfc_tokens_of_users", lambda uow: work(uow.conn))

    def tap_valid(self, token: TokenKeys, *, key_seq: int, atc: int, tapped_at: datetime,
                  unpredictable_number: str, cvm: int, reader_id: str, cryptogram: str) -> str | None:
        """None when the tap verifies; else why not (``key``: no such key or outside its
        lifetime; ``cryptogram``: the AC is not the key's over the tap)."""
        life = token.keys.get(key_seq)
        if life is None or key_seq > token.key_seq:
            return "key"
        if not life[0] - nfc.KEY_SKEW <= tapped_at <= life[1] + nfc.KEY_SKEW:
            return "key"
        mac = self._keyed.get((token.id, key_seq))
        if mac is None:
            if len(self._keyed) > 200_000:
                self._keyed.clear()
            mac = self._keyed[(token.id, key_seq)] = nfc.keyed(self.tokens.luk(token.id, key_seq))
        tap = nfc.Tap(token.id, key_seq, atc, 0, nfc.CURRENCY_CNY, tapped_at, unpredictable_number, cvm, reader_id,
                      cryptogram)
        return None if nfc.cryptogram_valid(mac, tap) else "cryptogram"

    async def deny_list(self, since: int = 0) -> tuple[int, list[DenyEntry]]:
        """The NFC deny list (suspended tokens, shop taps owed): :meth:`NfcTokens.deny_list`."""
        return await self.tokens.deny_list(since)

    # the signed requests of a reader (a POS terminal's scheme, instore/signature.py)
    signing_string = staticmethod(signature.signing_string)
    verifies = staticmethod(signature.verifies)
    new_key = staticmethod(signature.new_key)
    check_public_key = staticmethod(signature.check_public_key)
