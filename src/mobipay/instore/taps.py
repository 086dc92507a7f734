"""NFC taps at a store's terminal: paid online at once, or accepted offline (under the offline
limit) and uploaded later in batches; debts and their recovery.

**Online** (:meth:`NfcTaps.pay_online`): the terminal sends the tap it read, signed as every
terminal request, with an Idempotency-Key; the cryptogram, the ATC and the key's limits are
checked and the wallet pays the merchant in one transaction, with the tap and a paid merchant
trade (so settlement, statements and refunds are the trades').

**Offline** (:meth:`NfcTaps.upload`): a batch of stored taps, each answered on its own
(``accepted``, ``duplicate``, ``debt``, ``refused`` with its code). A tap is unique per token
and ATC, so an upload sent twice, or taps arriving out of order and across uploads, are paid
once. Each chunk of an upload is three steps: one transaction checks every tap and records
the good ones (``received``); one ``Ledger.post_batch`` call posts them all; one transaction
records the outcome and the merchant trades. Chunks are pipelined (the next one is checked
while the last one is posted and finished), and every many-row statement is set-based
(platform/bulk.py: one statement a table a chunk on PostgreSQL). A tap the wallet cannot
pay by then is posted from the receivable of offline taps: the merchant is paid (the
platform accepted the risk of the offline limit) and the wallet owes it — a **debt**,
recovered from the wallet as soon as money comes in (``wallet.credited``, the top-up) or
the subscriber pays it; until then every token of that wallet is on the deny list. A chunk
interrupted after its first step is finished by the next upload of the same taps (the
transfer ids are the taps': never twice).

:meth:`NfcTaps.price` is the one place a tap is priced: the amount tapped less the store's
alliance privilege for the payer's brand (``AllianceService.apply_many``, in the transaction
that records the tap: the paying one online, the check step of an upload, so the ledger batch
posts the discounted amounts). The key's limits count the amount tapped (what the device
signed); the wallet pays, the merchant receives and is settled, the amount less the privilege.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import structlog
from cryptography.hazmat.primitives.cmac import CMAC
from sqlalchemy import insert, select, update

from mobipay.instore import errors, nfc
from mobipay.instore.alliance_service import AllianceService, Payment
from mobipay.instore.tables import nfc_deny_list, nfc_keys, nfc_taps, nfc_tokens
from mobipay.instore.terminals import Terminal
from mobipay.instore.tokens import NfcTokens, Token, key_of, relist, token_of
from mobipay.kernel.clock import as_utc
from mobipay.kernel.errors import IdempotencyConflict, MobipayError
from mobipay.kernel.events import SmsRequested
from mobipay.kernel.ids import check_idempotency_key, new_id
from mobipay.ledger.errors import TransferNotFound
from mobipay.ledger.model import AccountKind, AccountSpec, Leg, Transfer
from mobipay.ledger.uow import Transaction, UnitOfWork, UnitOfWorkRunner
from mobipay.merchants.service import CounterPayment, Merchant, MerchantService
from mobipay.platform.bulk import insert_many, select_by_keys, update_many
from mobipay.platform.outbox import Message
from mobipay.wallet.service import Principal, WalletService

log = structlog.get_logger(__name__)

#: What the platform is owed for offline taps the wallets could not pay when they arrived.
OFFLINE_RECEIVABLE = AccountSpec("asset:receivable:nfc_offline_taps", AccountKind.ASSET,
                                 name="Offline NFC taps owed by wallets")
ONLINE_WINDOW = timedelta(seconds=300)  # an online tap's time, as the terminal's request's
CHUNK = 10_000  # taps per check transaction (the ledger splits its batches at its max_batch)
PAYABLE = ("approved", "settlement_suspended")
ACCEPTED, DUPLICATE, DEBT, REFUSED = "accepted", "duplicate", "debt", "refused"
SUBJECT = "NFC 闪付"


@dataclass(frozen=True, slots=True)
class TapPrice:
    """What a tap costs: the merchant gives ``privilege`` fen off (an alliance privilege);
    the wallet pays and the merchant receives ``amount - privilege``."""

    amount: int
    privilege: int = 0

    @property
    def charged(self) -> int:
        return self.amount - self.privilege


@dataclass(frozen=True, slots=True)
class TapResult:
    """One tap's answer (online, or each of an upload's)."""

    token_id: str
    atc: int
    result: str  # accepted | duplicate | debt | refused
    code: str = ""  # a refusal's
    detail: str = ""
    tap_id: str = ""
    trade_id: str = ""
    charged: int = 0
    original: str = ""  # a duplicate's first outcome: accepted | debt | refused
    amount: int = 0  # fen tapped (the price); charged = amount - privilege
    privilege: int = 0  # fen the merchant gave off (an alliance privilege)


@dataclass
class _Candidate:
    index: int
    tap: nfc.Tap
    token: Token
    price: TapPrice
    tap_id: str
    trade_id: str
    resumed: bool = False
    transfer_id: str = ""
    state: str = ""  # paid | debt | failed once posted
    error: MobipayError | None = None


@dataclass(frozen=True, slots=True)
class PriceAsk:
    """One tap to price: its payer, the amount tapped, the merchant trade it will be (the
    privilege is recorded under it) and when it was tapped (offline; None: now)."""

    token: Token
    amount: int
    trade_id: str
    at: datetime | None = None


@dataclass
class _Use:
    taps: int = 0
    amount: int = 0


@dataclass
class _Checked:
    results: dict[int, TapResult] = field(default_factory=dict)
    candidates: list[_Candidate] = field(default_factory=list)


def wallet_transfer_id(token_id: str, atc: int) -> str:
    return f"nfc:{token_id}:{atc}"


def debt_transfer_id(token_id: str, atc: int) -> str:
    return f"nfc-debt:{token_id}:{atc}"


def recovery_transfer_id(token_id: str, atc: int) -> str:
    return f"nfc-recover:{token_id}:{atc}"


def _refused(tap: nfc.Tap, exc: MobipayError) -> TapResult:
    return TapResult(tap.token_id, tap.atc, REFUSED, exc.code, exc.detail)


def _paid(token_id: str, atc: int, result: str, tap_id: str, trade_id: str, price: TapPrice) -> TapResult:
    """A tap's answer with its figures: the amount tapped, the privilege, what was charged."""
    return TapResult(token_id, atc, result, tap_id=tap_id, trade_id=trade_id, charged=price.charged,
                     amount=price.amount, privilege=price.privilege)


class NfcTaps:
    """Online taps, offline uploads, debts and their recovery."""

    def __init__(self, uow: UnitOfWorkRunner, tokens: NfcTokens, merchants: MerchantService,
                 wallet: WalletService) -> None:
        self.uow = uow
        self.tokens = tokens
        self.merchants = merchants
        self.wallet = wallet
        self.policy = tokens.policy
        self._receivable_open = False
        #: Alliance privileges on taps (the store's programmes for the payer's brand); None: none.
        self.alliances: AllianceService | None = None

    # ------------------------------------------------------------------ pricing (one place)

    async def price(self, tx: Transaction, *, merchant_id: str, store_id: str,
                    asks: Sequence[PriceAsk], fresh: bool = False) -> list[TapPrice]:
        """The prices of taps at one store, in the transaction that records them: the amount as
        tapped, less what the merchant gives off (the best alliance privilege for the payer's
        brand, 0 to ``amount - 1`` fen, recorded once per trade with its points). The one
        function online taps (one ask) and offline uploads (a chunk's, a few queries in all) ask.
        ``fresh``: every trade id was made just now (nothing decided before under it)."""
        if self.alliances is None or not asks:
            return [TapPrice(a.amount) for a in asks]
        applied = await self.alliances.apply_many(
            tx, [Payment(a.token.user_id, a.token.msisdn, a.amount, a.trade_id, a.at) for a in asks],
            merchant_id=merchant_id, store_id=store_id, channel="nfc", fresh=fresh)
        return [TapPrice(a.amount, x.discount) for a, x in zip(asks, applied, strict=True)]

    # ------------------------------------------------------------------ online

    async def pay_online(self, terminal: Terminal, tap: nfc.Tap, *, idempotency_key: str) -> tuple[TapResult, bool]:
        """Pay a tap now: (its result, whether this is a retry of the same request). Refused
        with a specific code and nothing moved: a tampered cryptogram, a replayed or
        non-increasing ATC, an expired or exhausted key, a suspended or denied token, a
        wallet that cannot pay."""
        check_idempotency_key(idempotency_key)
        nfc.check_shape(tap)
        now = self.uow.clock.now()
        if abs(tap.tapped_at - now) > ONLINE_WINDOW:
            raise errors.NfcTapMalformed("an online tap's tapped_at is now (within 300 s of the platform's clock)",
                                         field="tapped_at")
        merchant = await self._merchant(terminal)
        replay = await self._replay(terminal, tap, idempotency_key)
        if replay is not None:
            return replay, True
        token = await self._token(tap.token_id)
        if tap.amount > self.wallet.limits.password_free and tap.cvm != nfc.CVM_CDCVM:
            raise errors.NfcCvmRequired(f"above {self.wallet.limits.password_free / 100:.2f} CNY, unlock the phone "
                                        "before tapping", field="cvm")
        payer = await self.wallet.authorize_payment(Principal(token.user_id, "", token.msisdn, token.account_code),
                                                    tap.amount, None, consent=True)
        tap_id, trade_id = new_id("tap"), new_id("trd")

        async def work(uow: UnitOfWork) -> tuple[TapResult, bool]:
            row = (await uow.conn.execute(select(nfc_tokens).where(nfc_tokens.c.id == tap.token_id)
                                          .with_for_update())).one()
            current = token_of(row)
            raced = await self._replay_in(uow, terminal, tap, idempotency_key)  # the same request, concurrently
            if raced is not None:
                return raced, True
            if not current.active:
                raise errors.NfcTokenSuspended(field="token_id")
            deny = (await uow.conn.execute(select(nfc_deny_list.c.listed, nfc_deny_list.c.reason).where(
                nfc_deny_list.c.token_id == current.id))).first()
            if deny is not None and deny.listed:
                raise errors.NfcTokenDenied("this wallet owes an offline tap: top up to pay it", field="token_id")
            key_row = (await uow.conn.execute(select(nfc_keys).where(
                nfc_keys.c.token_id == current.id, nfc_keys.c.seq == tap.key_seq).with_for_update())).first()
            key = key_of(key_row) if key_row is not None else None
            self._verify(current, key, tap)
            used = (await uow.conn.execute(select(nfc_taps.c.id).where(
                nfc_taps.c.token_id == current.id, nfc_taps.c.atc == tap.atc))).first() is not None
            nfc.check_atc(tap.atc, current.atc_high, online=True, used=used, window=self.policy.atc_window)
            nfc.check_key(key, tap, current_seq=current.key_seq, online=True, now=uow.now)
            [price] = await self.price(uow, merchant_id=merchant.id, store_id=terminal.store_id,
                                       asks=[PriceAsk(current, tap.amount, trade_id)])
            transfer_id = wallet_transfer_id(current.id, tap.atc)
            [result] = await uow.post([self._command(transfer_id, current.account_code, merchant, price)])
            if result.error is not None:
                raise result.error
            await self.wallet.count_payment(uow, payer, price.charged)
            await self.merchants.record_payments_in(uow, [self._payment(merchant, terminal, current, tap_id, trade_id,
                                                                         price, transfer_id)])
            await uow.conn.execute(insert(nfc_taps).values(
                **self._row(tap_id, trade_id, tap, current, terminal, price, "online", "paid", uow.now),
                transfer_id=transfer_id, idempotency_key=idempotency_key))
            await uow.conn.execute(update(nfc_keys).where(nfc_keys.c.token_id == current.id,
                                                          nfc_keys.c.seq == tap.key_seq).values(
                used_taps=nfc_keys.c.used_taps + 1, used_amount=nfc_keys.c.used_amount + tap.amount))
            await uow.conn.execute(update(nfc_tokens).where(nfc_tokens.c.id == current.id).values(atc_high=tap.atc))
            params: dict[str, object] = {"merchant": merchant.name, "amount_fen": price.charged}
            if price.privilege:  # said as a QR payment's: the price, the privilege, what the wallet paid
                params = {"merchant": merchant.name, "amount_fen": price.amount, "privilege_fen": price.privilege,
                          "paid_fen": price.charged}
            await uow.emit(SmsRequested(key=f"{tap_id}:paid", to=current.msisdn, params=params,
                                        template="merchant.paid_with_privilege" if price.privilege
                                        else "merchant.paid"))
            return _paid(current.id, tap.atc, ACCEPTED, tap_id, trade_id, price), False

        return await self.uow.run("nfc_tap_online", work)

    async def _replay(self, terminal: Terminal, tap: nfc.Tap, idempotency_key: str) -> TapResult | None:
        return await self.uow.run("nfc_tap_replay", lambda uow: self._replay_in(uow, terminal, tap, idempotency_key))

    @staticmethod
    async def _replay_in(uow: UnitOfWork, terminal: Terminal, tap: nfc.Tap, idempotency_key: str
                         ) -> TapResult | None:
        """The tap this terminal paid with this Idempotency-Key (the same tap), or None."""
        row = (await uow.conn.execute(select(nfc_taps).where(
            nfc_taps.c.terminal_id == terminal.id, nfc_taps.c.idempotency_key == idempotency_key))).first()
        if row is None:
            return None
        if (row.token_id, row.atc, row.cryptogram) != (tap.token_id, tap.atc, tap.cryptogram.upper()):
            raise IdempotencyConflict("this Idempotency-Key paid another tap", field="Idempotency-Key")
        return _paid(row.token_id, row.atc, ACCEPTED, row.id, row.trade_id or "",
                     TapPrice(int(row.amount), int(row.amount) - int(row.charged)))

    def _verify(self, token: Token, key: nfc.KeyState | None, tap: nfc.Tap) -> None:
        """The cryptogram under the tap's key (a key not issued to the token verifies nothing)."""
        if key is None or tap.key_seq > token.key_seq:
            raise errors.NfcCryptogramInvalid(f"no key {tap.key_seq} was issued to this token", field="key_seq")
        if not nfc.cryptogram_valid(self.tokens.luk(token.id, tap.key_seq), tap):
            raise errors.NfcCryptogramInvalid(field="cryptogram")

    # ------------------------------------------------------------------ offline uploads

    async def upload(self, terminal: Terminal, taps: Sequence[nfc.Tap]) -> list[TapResult]:
        """An upload of offline taps: a result per tap, in order. Safe to send again (each tap
        once per token and ATC); chunks of :data:`CHUNK` taps, each one check transaction, one
        ledger batch and one finishing transaction.

        The chunks are pipelined: while one chunk is posted and finished (mostly the database's
        work), the next one is checked (mostly Python's), so both cores work. Checks run one
        after another and so do the posting-and-finishing steps, in chunk order (each wallet's
        balance is spent in tap order); a tap repeated anywhere in the upload is answered from
        its first copy, so no chunk ever meets a tap an earlier chunk of the same upload has
        not finished."""
        merchant = await self._merchant(terminal)
        with _collector_paused():
            return await self._upload(terminal, merchant, list(taps))

    async def _upload(self, terminal: Terminal, merchant: Merchant, taps: list[nfc.Tap]) -> list[TapResult]:
        results: dict[int, TapResult] = {}
        first: dict[tuple[str, int], int] = {}
        duplicates: dict[int, int] = {}
        for i, tap in enumerate(taps):
            try:
                nfc.check_shape(tap)
                if tap.terminal_id != terminal.id:
                    raise errors.NfcCryptogramInvalid("the tap was made at another terminal", field="terminal_id")
            except MobipayError as exc:
                results[i] = _refused(tap, exc)
                continue
            seen = first.get((tap.token_id, tap.atc))
            if seen is None:
                first[(tap.token_id, tap.atc)] = i
            elif taps[seen].cryptogram.upper() == tap.cryptogram.upper():
                duplicates[i] = seen
            else:
                results[i] = _refused(tap, errors.NfcAtcReplayed("two taps of one ATC in this upload", field="atc"))
        if not self._receivable_open and first:
            await self.uow.run("nfc_receivable", lambda uow: uow.open_account(OFFLINE_RECEIVABLE))
            self._receivable_open = True
        unique = list(first.values())  # in upload order
        luks: dict[tuple[str, int], CMAC] = {}  # each key derived once an upload (a token taps many times)
        settling: list[asyncio.Task[_Checked]] = []
        try:
            for start in range(0, len(unique), CHUNK):
                if len(settling) >= 2:  # at most one chunk checked ahead of the one being settled
                    await asyncio.shield(settling[-2])
                order = sorted(unique[start:start + CHUNK], key=lambda i: (taps[i].tapped_at, taps[i].token_id,
                                                                              taps[i].atc))

                async def check(uow: UnitOfWork, order: list[int] = order) -> _Checked:
                    out = _Checked()
                    await self._check_and_record(uow, terminal, merchant, taps, order, out, luks)
                    return out

                checked = await self.uow.run("nfc_upload_check", check)
                settling.append(asyncio.ensure_future(
                    self._settle(terminal, merchant, checked, settling[-1] if settling else None)))
            for task in settling:
                results.update((await task).results)
        except BaseException:
            for task in settling:
                task.cancel()
            await asyncio.gather(*settling, return_exceptions=True)
            raise
        out: list[TapResult] = []
        for i in range(len(taps)):
            if i in duplicates:
                firsts = results[duplicates[i]]
                out.append(replace(firsts, result=DUPLICATE, original=firsts.result
                                   if firsts.result != DUPLICATE else firsts.original))
            else:
                out.append(results[i])
        return out

    async def _settle(self, terminal: Terminal, merchant: Merchant, checked: _Checked,
                      after: asyncio.Task[_Checked] | None) -> _Checked:
        """A checked chunk posted (one ledger batch) and finished, once the chunk before it is."""
        if after is not None:
            await asyncio.shield(after)  # (its failure fails this one too: nothing is posted out of order)
        if checked.candidates:
            await self._post(merchant, checked.candidates)
            await self._finish(terminal, merchant, checked)
        return checked

    async def _check_and_record(self, uow: UnitOfWork, terminal: Terminal, merchant: Merchant, taps: list[nfc.Tap],
                                order: list[int], out: _Checked, luks: dict[tuple[str, int], CMAC]) -> None:
        """In one transaction: every tap checked against its token, key and earlier taps; the
        good ones recorded ``received`` with their key's use and the tokens' highest ATC."""
        if not order:
            return
        token_ids = sorted({taps[i].token_id for i in order})
        tokens = {r.id: token_of(r) for r in await uow.conn.execute(
            select(nfc_tokens).where(nfc_tokens.c.id.in_(token_ids)).order_by(nfc_tokens.c.id).with_for_update())}
        pairs = sorted({(taps[i].token_id, taps[i].key_seq) for i in order if taps[i].token_id in tokens})
        keys = {(r.token_id, int(r.seq)): key_of(r)
                for r in await select_by_keys(uow.conn, nfc_keys, ("token_id", "seq"), pairs)}
        atcs = [(taps[i].token_id, taps[i].atc) for i in order]
        existing = {(r.token_id, int(r.atc)): r
                    for r in await select_by_keys(uow.conn, nfc_taps, ("token_id", "atc"), atcs)}
        denied = {r.token_id: r for r in await uow.conn.execute(
            select(nfc_deny_list).where(nfc_deny_list.c.token_id.in_(token_ids), nfc_deny_list.c.listed == 1))}
        use: dict[tuple[str, int], _Use] = {}
        highs: dict[str, int] = {}
        good: list[tuple[int, nfc.Tap, Token]] = []
        for i in order:
            tap = taps[i]
            old = existing.get((tap.token_id, tap.atc))
            token = tokens.get(tap.token_id)
            try:
                if old is not None:
                    if old.cryptogram != tap.cryptogram.upper():
                        raise errors.NfcAtcReplayed(f"ATC {tap.atc} was used already", field="atc")
                    if old.state != "received":  # uploaded before: its first outcome
                        original = (DEBT if old.state == "debt" or old.recovered_at is not None
                                    else ACCEPTED if old.state == "paid" else REFUSED)
                        out.results[i] = TapResult(tap.token_id, tap.atc, DUPLICATE, old.error_code or "", "",
                                                   old.id, old.trade_id or "", int(old.charged), original,
                                                   int(old.amount), int(old.amount) - int(old.charged))
                        continue
                    assert token is not None  # a recorded tap's token exists
                    out.candidates.append(_Candidate(i, tap, token, TapPrice(int(old.amount),
                                                                             int(old.amount) - int(old.charged)),
                                                     old.id, old.trade_id or new_id("trd"), resumed=True))
                    continue
                if token is None:
                    raise errors.NfcTokenUnknown(f"no NFC token {tap.token_id}", field="token_id")
                if token.suspended_at is not None and not token.active and tap.tapped_at > token.suspended_at:
                    raise errors.NfcTokenSuspended("the tap was made after the token was suspended", field="token_id")
                listed = denied.get(token.id)
                if (listed is not None and listed.reason == "debt" and listed.listed_at is not None
                        and tap.tapped_at > as_utc(listed.listed_at) + self.policy.deny_grace):
                    raise errors.NfcTokenDenied("the token was on the deny list when the tap was made",
                                                field="token_id")
                if tap.amount > self.policy.offline_limit:
                    raise errors.NfcOfflineLimit(f"offline taps are at most {self.policy.offline_limit / 100:.2f} CNY",
                                                 field="amount")
                key = keys.get((token.id, tap.key_seq))
                if key is None or tap.key_seq > token.key_seq:
                    raise errors.NfcCryptogramInvalid(f"no key {tap.key_seq} was issued to this token",
                                                      field="key_seq")
                luk = luks.get((token.id, tap.key_seq))
                if luk is None:
                    luk = luks[(token.id, tap.key_seq)] = nfc.keyed(self.tokens.luk(token.id, tap.key_seq))
                if not nfc.cryptogram_valid(luk, tap):
                    raise errors.NfcCryptogramInvalid(field="cryptogram")
                nfc.check_atc(tap.atc, token.atc_high, online=False, used=False, window=self.policy.atc_window)
                so_far = use.setdefault((token.id, tap.key_seq), _Use())
                nfc.check_key(key, tap, current_seq=token.key_seq, online=False, now=uow.now,
                              taps_before=so_far.taps, amount_before=so_far.amount)
            except MobipayError as exc:
                out.results[i] = _refused(tap, exc)
                continue
            so_far.taps += 1
            so_far.amount += tap.amount  # the key counts what the device signed, not the discounted price
            highs[token.id] = max(highs.get(token.id, token.atc_high), tap.atc)
            good.append((i, tap, token))
        # every good tap priced at once (a few queries for the chunk), before the ledger batch
        trade_ids = [new_id("trd") for _ in good]
        prices = await self.price(uow, merchant_id=merchant.id, store_id=terminal.store_id, fresh=True, asks=[
            PriceAsk(token, tap.amount, t, tap.tapped_at) for (_, tap, token), t in zip(good, trade_ids, strict=True)])
        fresh: list[dict[str, Any]] = []
        for (i, tap, token), trade_id, price in zip(good, trade_ids, prices, strict=True):
            tap_id = new_id("tap")
            fresh.append(self._row(tap_id, trade_id, tap, token, terminal, price, "offline", "received", uow.now))
            out.candidates.append(_Candidate(i, tap, token, price, tap_id, trade_id))
        position = {i: n for n, i in enumerate(order)}
        out.candidates.sort(key=lambda c: position[c.index])  # tap order, as the wallets' balances are spent
        await insert_many(uow.conn, nfc_taps, fresh)
        await update_many(uow.conn, nfc_keys, [{"token_id": t, "seq": s, "used_taps": u.taps, "used_amount": u.amount}
                                               for (t, s), u in use.items()],
                          keys=("token_id", "seq"), add=("used_taps", "used_amount"))
        await update_many(uow.conn, nfc_tokens, [{"id": t, "atc_high": h} for t, h in highs.items()
                                                 if h > tokens[t].atc_high], keys=("id",))

    async def _post(self, merchant: Merchant, candidates: list[_Candidate]) -> None:
        """One ledger batch for the chunk: from the wallet when its balance covers the tap (in
        tap order), else from the receivable (a debt); a wallet refused meanwhile (spent
        concurrently) goes to the receivable in a second batch."""
        ledger = self.uow.ledger
        for c in candidates:
            if c.resumed:  # a chunk interrupted after its check: what was posted stands
                c.transfer_id, c.state = await self._posted_before(c)
        codes = sorted({c.token.account_code for c in candidates if not c.transfer_id})
        available = {code: state.available for code, state in (await ledger.accounts(codes)).items()}
        for c in candidates:
            if c.transfer_id:
                continue
            left = available.get(c.token.account_code, 0)
            if left >= c.price.charged:
                available[c.token.account_code] = left - c.price.charged
                c.transfer_id, c.state = wallet_transfer_id(c.token.id, c.tap.atc), "paid"
            else:
                c.transfer_id, c.state = debt_transfer_id(c.token.id, c.tap.atc), "debt"
        batch = [c for c in candidates if c.state in ("paid", "debt")]
        results = await ledger.post_batch([self._command(c.transfer_id, c.token.account_code if c.state == "paid"
                                                         else OFFLINE_RECEIVABLE.code, merchant, c.price)
                                           for c in batch])
        again: list[_Candidate] = []
        for c, r in zip(batch, results, strict=True):
            if r.error is None:
                continue
            if c.state == "paid":
                c.transfer_id, c.state = debt_transfer_id(c.token.id, c.tap.atc), "debt"
                again.append(c)
            else:
                c.state, c.error = "failed", r.error
        if again:
            results = await ledger.post_batch([self._command(c.transfer_id, OFFLINE_RECEIVABLE.code, merchant, c.price)
                                               for c in again])
            for c, r in zip(again, results, strict=True):
                if r.error is not None:
                    c.state, c.error = "failed", r.error

    async def _posted_before(self, c: _Candidate) -> tuple[str, str]:
        for transfer_id, state in ((wallet_transfer_id(c.token.id, c.tap.atc), "paid"),
                                   (debt_transfer_id(c.token.id, c.tap.atc), "debt")):
            try:
                await self.uow.ledger.transfer(transfer_id)
            except TransferNotFound:
                continue
            return transfer_id, state
        return "", ""

    async def _finish(self, terminal: Terminal, merchant: Merchant, checked: _Checked) -> None:
        """In one transaction: each posted tap's state and merchant trade, the deny list of the
        wallets that now owe, and their SMS."""
        posted = [c for c in checked.candidates if c.state in ("paid", "debt")]

        async def work(uow: UnitOfWork) -> list[str]:
            trade_ids = await self.merchants.record_payments_in(uow, [
                self._payment(merchant, terminal, c.token, c.tap_id, c.trade_id, c.price, c.transfer_id)
                for c in posted])
            rows: list[dict[str, Any]] = [
                {"id": c.tap_id, "state": c.state, "transfer_id": c.transfer_id, "trade_id": t, "error_code": None}
                for c, t in zip(posted, trade_ids, strict=True)]
            rows += [{"id": c.tap_id, "state": "failed", "transfer_id": None, "trade_id": None,
                      "error_code": c.error.code if c.error else "FAILED"}
                     for c in checked.candidates if c.state == "failed"]
            failed = [c.trade_id for c in checked.candidates if c.state == "failed" and c.price.privilege]
            if failed and self.alliances is not None:  # never paid: no privilege, no points
                await self.alliances.cancel(uow, failed)
            await update_many(uow.conn, nfc_taps, rows, keys=("id",), where={"state": "received"})
            debtors = sorted({c.token.user_id for c in posted if c.state == "debt"})
            await relist(uow.conn, debtors, uow.now)
            for c in posted:
                if c.state == "debt":
                    await uow.emit(SmsRequested(key=f"{c.tap_id}:debt", to=c.token.msisdn, template="sms.reply",
                                                params={"text": _debt_text(merchant.name, c.price.charged)}))
            return trade_ids

        trade_ids = await self.uow.run("nfc_upload_finish", work)
        for c, t in zip(posted, trade_ids, strict=True):
            checked.results[c.index] = _paid(c.tap.token_id, c.tap.atc, ACCEPTED if c.state == "paid" else DEBT,
                                             c.tap_id, t, c.price)
        for c in checked.candidates:
            if c.state == "failed":
                assert c.error is not None
                checked.results[c.index] = _refused(c.tap, c.error)

    # ------------------------------------------------------------------ debts

    async def owed(self, user_id: str) -> int:
        """Fen the wallet owes for offline taps."""

        async def work(uow: UnitOfWork) -> int:
            rows = await uow.conn.execute(select(nfc_taps.c.charged).where(nfc_taps.c.user_id == user_id,
                                                                          nfc_taps.c.state == "debt"))
            return sum(int(r[0]) for r in rows)

        return await self.uow.run("nfc_owed", work)

    async def recover(self, user_id: str) -> tuple[int, int]:
        """Pay the wallet's debts from its balance, oldest first, as far as it goes: (fen
        recovered, fen still owed). When nothing is owed any more its tokens leave the deny
        list (unless suspended). Safe to repeat: each debt is recovered once."""

        async def work(uow: UnitOfWork) -> tuple[int, int]:
            rows = list(await uow.conn.execute(select(nfc_taps.c.id, nfc_taps.c.token_id, nfc_taps.c.atc,
                                                      nfc_taps.c.charged).where(
                nfc_taps.c.user_id == user_id, nfc_taps.c.state == "debt").order_by(nfc_taps.c.created_at,
                                                                                   nfc_taps.c.id).with_for_update()))
            if not rows:
                return 0, 0
            account = (await uow.conn.execute(select(nfc_tokens.c.account_code).where(
                nfc_tokens.c.user_id == user_id).limit(1))).scalar_one()
            results = await uow.post([Transfer(recovery_transfer_id(r.token_id, r.atc),
                                               (Leg.debit(account, int(r.charged)),
                                                Leg.credit(OFFLINE_RECEIVABLE.code, int(r.charged))),
                                               "instore.nfc_recovery", reference="NFC offline tap")
                                      for r in rows])
            done = [r for r, res in zip(rows, results, strict=True) if res.error is None]
            if done:
                await uow.conn.execute(update(nfc_taps).where(nfc_taps.c.id.in_([r.id for r in done])).values(
                    state="paid", recovered_at=uow.now))
                await relist(uow.conn, [user_id], uow.now)
            got = sum(int(r.charged) for r in done)
            return got, sum(int(r.charged) for r in rows) - got

        return await self.uow.run("nfc_recover", work)

    async def on_wallet_credited(self, message: Message) -> None:
        """Outbox handler of ``wallet.credited`` (a top-up arrived): recover what the wallet owes."""
        user_id = str(message.payload.get("user_id", ""))
        if user_id and await self.owed(user_id):
            got, left = await self.recover(user_id)
            log.info("nfc.debt_recovered", user_id=user_id, recovered=got, still_owed=left)

    # ------------------------------------------------------------------ helpers

    async def _merchant(self, terminal: Terminal) -> Merchant:
        merchant = await self.merchants.merchant(terminal.merchant_id)
        if merchant.state.value not in PAYABLE:
            raise errors.NfcMerchantNotActive(f"the merchant is {merchant.state.value}")
        return merchant

    async def _token(self, token_id: str) -> Token:
        async def work(uow: UnitOfWork) -> Any:
            return (await uow.conn.execute(select(nfc_tokens).where(nfc_tokens.c.id == token_id))).first()

        row = await self.uow.run("nfc_token", work)
        if row is None:
            raise errors.NfcTokenUnknown(f"no NFC token {token_id}", field="token_id")
        return token_of(row)

    @staticmethod
    def _command(transfer_id: str, source: str, merchant: Merchant, price: TapPrice) -> Transfer:
        code = "instore.nfc_debt" if source == OFFLINE_RECEIVABLE.code else "instore.nfc_tap"
        return Transfer(transfer_id, (Leg.debit(source, price.charged), Leg.credit(merchant.account_code,
                                                                                   price.charged)),
                        code, reference=f"{merchant.name} NFC")

    @staticmethod
    def _payment(merchant: Merchant, terminal: Terminal, token: Token, tap_id: str, trade_id: str, price: TapPrice,
                 transfer_id: str) -> CounterPayment:
        return CounterPayment(merchant.id, terminal.store_id, f"nfc_{tap_id}", price.amount, SUBJECT, token.user_id,
                              transfer_id, privilege=price.privilege, trade_id=trade_id)

    @staticmethod
    def _row(tap_id: str, trade_id: str, tap: nfc.Tap, token: Token, terminal: Terminal, price: TapPrice, mode: str,
             state: str, now: datetime) -> dict[str, Any]:
        """A tap's row; its trade id is chosen with it (the privilege is recorded under it
        before the trade is written: a chunk resumed after its check finds both)."""
        return {"id": tap_id, "trade_id": trade_id, "token_id": token.id, "atc": tap.atc, "key_seq": tap.key_seq,
                "user_id": token.user_id,
                "terminal_id": terminal.id, "merchant_id": terminal.merchant_id, "store_id": terminal.store_id,
                "amount": price.amount, "charged": price.charged, "tapped_at": tap.tapped_at,
                "cryptogram": tap.cryptogram.upper(), "mode": mode, "state": state, "created_at": now}


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while an upload runs (the upload that turned it off
    turns it on again). An upload makes hundreds of thousands of short-lived objects, freed
    by reference counting; each collection they trigger walks every live object of the
    process (a quarter of an upload's Python time when measured). Cycles made meanwhile
    are collected once it is back on."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def _debt_text(merchant: str, fen: int) -> str:
    return (f"您在{merchant}的NFC离线消费{fen / 100:.2f}元因余额不足未能扣款，充值后将自动扣回，此前NFC卡暂停使用。"
            f"An offline NFC tap of {fen / 100:.2f} CNY at {merchant} could not be paid: your next top-up pays it; "
            "until then your NFC cards are paused.")
