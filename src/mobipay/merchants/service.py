"""Merchant use cases so far: simplified onboarding with review, API apps with RSA2 or
HMAC keys (rotation with an overlap), signed-request authentication (timestamp window,
nonces), and the trade API: create, pay from the wallet, query, close, refund.

A payment moves the amount from the payer's wallet to the merchant's payable account
(``liability:merchant:<id>``) in the same unit of work that marks the trade paid, under a
row lock on the trade: a trade is paid once however often "pay" is pressed. A refund is
keyed by the merchant's refund request number and never exceeds what is left of the
payment; it moves money back from the merchant's payable, which may not go negative.

The rows go through the merchants' store (``store.py``): no SQL here.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from mobipay.kernel.errors import IdempotencyConflict, ValidationFailed
from mobipay.kernel.events import SmsRequested
from mobipay.kernel.ids import check_idempotency_key, new_id
from mobipay.kernel.money import check_amount
from mobipay.kernel.msisdn import normalize_msisdn
from mobipay.kernel.roles import Roster
from mobipay.kernel.urls import DestinationPolicy
from mobipay.ledger.model import AccountKind, AccountSpec, Leg, Transfer
from mobipay.ledger.uow import Runner, Transaction
from mobipay.merchants import alipay, errors, wechat
from mobipay.merchants.model import (
    PROTOCOLS,
    App,
    Category,
    Merchant,
    MerchantFile,
    MerchantState,
    Refund,
    StoreRecord,
    Trade,
    TradeRecord,
    TradeState,
    check_credit_code,
    check_may_set_up,
    check_mcc,
    check_merchant_move,
    check_notify_url,
    check_refund,
    check_trade_move,
    check_website,
    is_decision,
    signing_string,
    trade_notification,
)
from mobipay.merchants.signing import (
    aead_seal,
    public_key_pem,
    public_pem,
    sign_hmac,
    sign_rsa2,
    verify_hmac,
    verify_rsa2_text,
)
from mobipay.merchants.store import MerchantStore, sql_store
from mobipay.platform.credentials import token_hash
from mobipay.wallet.service import Principal, WalletService

#: What other contexts and the channels use of the merchants: this service and these values.
__all__ = ["CounterPayment", "Merchant", "MerchantFile", "MerchantService", "StoreRecord", "Trade"]

WINDOW_S = 300
KEY_OVERLAP = timedelta(days=7)


class CouponUse(Protocol):
    async def use_in(self, tx: Transaction, coupon_id: str, user_id: str, trade: TradeRecord) -> tuple[int, str]: ...


#: A privilege the merchant funds (in-store alliances): called in the paying transaction, after
#: the trade's row lock and before the posting, with the trade and the fen left to pay after any
#: red envelope; answers the fen given off (0 to that amount less 1 fen). The payer pays and the
#: merchant receives (and is settled) that much less; the trade keeps it as ``privilege_amount``.
Privilege = Callable[[Transaction, Trade, int], Awaitable[int]]


@dataclass(frozen=True, slots=True)
class CounterPayment:
    """A payment taken at a store's counter whose money the caller posted itself (in-store NFC
    taps, many in one ledger batch): :meth:`MerchantService.record_payments_in` makes it a
    paid trade. ``privilege``: fen the merchant gave off ``amount`` (it received that less)."""

    merchant_id: str
    store_id: str
    out_trade_no: str
    amount: int
    subject: str
    payer_id: str
    transfer_id: str
    privilege: int = 0
    trade_id: str = ""  # chosen by the caller (a privilege was recorded under it first); "": a new id


class MerchantService:
    def __init__(self, uow: Runner, wallet: WalletService, platform_key: bytes,
                 categories: dict[str, Category], roster: Roster | None = None,
                 notify_policy: DestinationPolicy | None = None,
                 store: Callable[[Transaction], MerchantStore] = sql_store) -> None:
        self.uow = uow
        self.store = store
        self.notify_policy = notify_policy or DestinationPolicy()  # public addresses only
        self.roster = roster or Roster("operator:admin")
        self.wallet = wallet
        self.categories = categories
        self.platform_key = platform_key  # PEM private key signing our answers and notifications
        self.platform_public_key = public_pem(platform_key)
        self.coupons: CouponUse | None = None  # the red-envelope zone plugs in here
        # in-store plugs in the EMV payload of a trade's dynamic QR code (the merchant API answers it as emv_qr)
        self.trade_qr: Callable[[Trade], Awaitable[str | None]] | None = None
        # contexts above may refuse a refund in its transaction (in-store: a tap the payer has not paid yet)
        self.refund_guards: list[Callable[[Transaction, TradeRecord], Awaitable[None]]] = []

    # ------------------------------------------------------------------ onboarding

    async def apply(self, *, name: str, credit_code: str, legal_person: str, contact: str, mcc: str,
                    website: str, settlement_account: str) -> Merchant:
        """A merchant's application; low-risk categories (config) are approved at once."""
        merchant, _ = await self._apply(name=name, credit_code=credit_code, legal_person=legal_person,
                                        contact=contact, mcc=mcc, website=website,
                                        settlement_account=settlement_account, token=None)
        return merchant

    async def apply_online(self, *, name: str, credit_code: str, legal_person: str, contact: str, mcc: str,
                           website: str, settlement_account: str) -> tuple[Merchant, str]:
        """:meth:`apply` for an applicant with no account here (the public API): the answer
        carries a token, shown once and kept only as its SHA-256, that reads the
        application's status and resubmits it when the reviewer asks for more."""
        token = "mat_" + secrets.token_urlsafe(32)
        merchant, _ = await self._apply(name=name, credit_code=credit_code, legal_person=legal_person,
                                        contact=contact, mcc=mcc, website=website,
                                        settlement_account=settlement_account, token=token)
        return merchant, token

    def _terms(self, *, name: str, legal_person: str, contact: str, mcc: str, website: str,
               settlement_account: str) -> tuple[str, str, str, Category, str, str]:
        """An application's fields checked and normalised (the same rules on first sending
        and on resubmission): name, legal person, contact number, category, website, account."""
        mcc = check_mcc(mcc)
        category = self.categories.get(mcc)
        if category is None:
            raise errors.InvalidMerchantField(f"MCC {mcc} is not a category we accept", field="mcc")
        msisdn = normalize_msisdn(contact)
        website = check_website(website)
        if not (2 <= len(name.strip()) <= 128 and 2 <= len(legal_person.strip()) <= 64):
            raise errors.InvalidMerchantField("give the business name and the legal person's name", field="name")
        account = "".join(settlement_account.split())
        if not (account.isdigit() and 8 <= len(account) <= 32):
            raise errors.InvalidMerchantField("the settlement account is the bank account number",
                                              field="settlement_account")
        return name.strip(), legal_person.strip(), msisdn, category, website, account

    async def _apply(self, *, name: str, credit_code: str, legal_person: str, contact: str, mcc: str,
                     website: str, settlement_account: str, token: str | None) -> tuple[Merchant, str | None]:
        code = check_credit_code(credit_code)
        name, legal_person, msisdn, category, website, account = self._terms(
            name=name, legal_person=legal_person, contact=contact, mcc=mcc, website=website,
            settlement_account=settlement_account)
        merchant_id = new_id("mch")
        spec = AccountSpec(f"liability:merchant:{merchant_id}", AccountKind.LIABILITY, name=f"Payable to {name}",
                           debits_must_not_exceed_credits=True)
        auto = category.risk == "low"

        async def work(tx: Transaction) -> Merchant:
            store = self.store(tx)
            if await store.credit_code_taken(code):
                raise errors.InvalidMerchantField("a merchant with this credit code exists already",
                                                  field="credit_code")
            await tx.open_account(spec)
            state = MerchantState.APPROVED if auto else MerchantState.SUBMITTED
            merchant = Merchant(merchant_id, name, code, category.mcc, state,
                                "low-risk category: approved by rule" if auto else "", category.fee_bps, spec.code,
                                website)
            await store.add_merchant(MerchantFile(merchant, legal_person, msisdn, account,
                                                  category.settlement_days, category.per_trade_limit,
                                                  category.daily_limit, tx.now,
                                                  token_hash(token) if token else None, "", tx.now))
            await tx.audit(actor="merchant", action="merchant.apply", target=merchant_id, reason=name,
                           after={"state": state.value, "mcc": category.mcc})
            if token:  # an applicant on the public API: told it arrived (or was approved by rule)
                await tx.emit(_decision_sms(merchant, msisdn))
            return merchant

        return await self.uow.run("merchant_apply", work), token

    async def review(self, merchant_id: str, to: MerchantState, *, actor: str, reason: str) -> Merchant:
        """A reviewer (or operations) moves a merchant: approve, reject, ask for more
        information, suspend, suspend settlement, terminate. Audited with the reason; a
        decision on an application is told to the applicant's contact number by SMS (in the
        same transaction, through the outbox), so no applicant waits without knowing."""
        if not reason.strip():
            raise ValidationFailed("give the reason (audited; the merchant sees it)", field="reason")

        async def work(tx: Transaction) -> Merchant:
            store = self.store(tx)
            found = await store.merchant(merchant_id, for_update=True)
            if found is None:
                raise errors.MerchantNotFound(f"no merchant {merchant_id}", field="merchant_id")
            current = found.merchant.state
            check_merchant_move(current, to)
            # the review queue is the merchant-review role's; suspending and resuming is risk's
            self.roster.require(actor, "merchant_review" if current in (MerchantState.SUBMITTED,
                                                                        MerchantState.MORE_INFO) else "risk")
            await store.set_state(merchant_id, to, reason.strip()[:500], tx.now)
            await tx.audit(actor=actor, action="merchant.review", target=merchant_id, reason=reason,
                           before={"state": current.value}, after={"state": to.value})
            moved = replace(found.merchant, state=to, reason=reason.strip()[:500])
            if is_decision(current, to):
                await tx.emit(_decision_sms(moved, found.contact_msisdn))
            return moved

        return await self.uow.run("merchant_review", work)

    async def application(self, merchant_id: str, token: str) -> MerchantFile:
        """The application as its applicant sees it (state, the reviewer's reason). An unknown
        id and a wrong token look the same, so ids cannot be probed."""

        async def work(tx: Transaction) -> MerchantFile:
            return await self._own_application(tx, merchant_id, token)

        return await self.uow.run("merchant_application", work)

    async def _own_application(self, tx: Transaction, merchant_id: str, token: str, *,
                               for_update: bool = False) -> MerchantFile:
        found = await self.store(tx).merchant(merchant_id, for_update=for_update)
        kept = found.application_token_hash if found is not None else None
        if found is None or kept is None or not hmac.compare_digest(kept, token_hash(token)):
            raise errors.ApplicationNotFound("no application with this id and token", field="application_id")
        return found

    async def resubmit(self, merchant_id: str, token: str, *, note: str, name: str | None = None,
                       legal_person: str | None = None, contact: str | None = None, mcc: str | None = None,
                       website: str | None = None, settlement_account: str | None = None) -> MerchantFile:
        """The applicant answers a request for more information: the fields given replace
        the old ones (checked as on the first sending; the credit code is the business and
        stays), ``note`` says what was added, and the application returns to the review
        queue (``submitted``), a person deciding again even in a low-risk category."""
        note = note.strip()
        if not 1 <= len(note) <= 500:
            raise ValidationFailed("say in up to 500 characters what you add or changed", field="note")

        async def work(tx: Transaction) -> MerchantFile:
            found = await self._own_application(tx, merchant_id, token, for_update=True)
            m = found.merchant
            if m.state is not MerchantState.MORE_INFO:
                raise errors.StateInvalid(f"the application is {m.state.value}: only one sent back for more "
                                          "information is resubmitted", field="state")
            new_name, new_person, msisdn, category, new_site, account = self._terms(
                name=m.name if name is None else name, legal_person=found.legal_person if legal_person is None
                else legal_person, contact=found.contact_msisdn if contact is None else contact,
                mcc=m.mcc if mcc is None else mcc, website=m.website if website is None else website,
                settlement_account=found.settlement_account if settlement_account is None else settlement_account)
            again = replace(found, merchant=replace(m, name=new_name, mcc=category.mcc, website=new_site,
                                                    state=MerchantState.SUBMITTED, reason="",
                                                    fee_bps=category.fee_bps),
                            legal_person=new_person, contact_msisdn=msisdn, settlement_account=account,
                            settlement_days=category.settlement_days, per_trade_limit=category.per_trade_limit,
                            daily_limit=category.daily_limit, applicant_note=note, updated_at=tx.now)
            await self.store(tx).put_application(again, tx.now)
            await tx.audit(actor="merchant", action="merchant.resubmit", target=merchant_id, reason=note,
                           before={"state": m.state.value, "mcc": m.mcc},
                           after={"state": MerchantState.SUBMITTED.value, "mcc": category.mcc})
            return again

        return await self.uow.run("merchant_resubmit", work)

    async def merchant(self, merchant_id: str) -> Merchant:
        return (await self._file(merchant_id)).merchant

    async def merchant_file(self, merchant_id: str) -> MerchantFile:
        """The merchant with its limits, read once by a caller that creates and pays a trade in
        one request (in-store micropay) and hands it to :meth:`create_trade` and :meth:`pay`."""
        return await self._file(merchant_id)

    async def _file(self, merchant_id: str) -> MerchantFile:
        async def work(tx: Transaction) -> MerchantFile | None:
            return await self.store(tx).merchant(merchant_id)

        found = await self.uow.run("merchant", work)
        if found is None:
            raise errors.MerchantNotFound(f"no merchant {merchant_id}", field="merchant_id")
        return found

    async def find(self, *, state: MerchantState | None = None, q: str | None = None, mcc: str | None = None,
                   limit: int = 20) -> list[Merchant]:
        """Merchants, newest first: in a state, of a category, or whose name, id or credit
        code contains ``q`` (how an operator finds a merchant id)."""

        async def work(tx: Transaction) -> list[Merchant]:
            return await self.store(tx).find(state=state, q=(q or "").strip() or None, mcc=(mcc or "").strip() or None,
                                             limit=max(1, min(limit, 1000)))

        return await self.uow.run("merchant_find", work)

    async def review_queue(self) -> list[Merchant]:
        """Every application waiting for review, the oldest first."""

        async def work(tx: Transaction) -> list[Merchant]:
            return await self.store(tx).find(state=MerchantState.SUBMITTED, q=None, mcc=None, limit=None,
                                             oldest_first=True)

        return await self.uow.run("merchant_queue", work)

    # ------------------------------------------------------------------ API apps and keys

    async def create_app(self, merchant_id: str, sign_type: str, *, public_key: str | None = None,
                         notify_url: str = "", protocol: str = "mobipay") -> tuple[str, str | None]:
        """An API app: (app id, the key to show once: HMAC's, or a WeChat Pay app's APIv3 key;
        None for other RSA2 apps). ``protocol`` ``alipay`` is for a shop's existing Alipay code
        (``/gateway.do``), ``wechat`` for its WeChat Pay v3 code (``/v3/...``): their
        notifications come as those platforms write them; both sign with RSA2."""
        if sign_type not in ("RSA2", "HMAC"):
            raise ValidationFailed("sign_type is RSA2 or HMAC", field="sign_type")
        if protocol not in PROTOCOLS:
            raise ValidationFailed(f"protocol is one of {', '.join(PROTOCOLS)}", field="protocol")
        if protocol != "mobipay" and sign_type != "RSA2":
            raise ValidationFailed(f"the {protocol} protocol signs with RSA2: upload the app's public key",
                                   field="sign_type")
        if sign_type == "RSA2":
            public_key = _public_key(public_key)
        notify_url = check_notify_url(notify_url, self.notify_policy)
        owner = await self.merchant(merchant_id)
        check_may_set_up(owner.id, owner.state)  # a rejected or pending applicant gets no credentials
        app_id, key = new_id("app"), secrets.token_hex(32) if sign_type == "HMAC" else None
        apiv3_key = secrets.token_hex(16) if protocol == "wechat" else None  # 32 characters, as WeChat Pay's

        async def work(tx: Transaction) -> None:
            await self.store(tx).add_app(App(app_id, merchant_id, sign_type, public_key, key, notify_url, tx.now,
                                             protocol=protocol, apiv3_key=apiv3_key))

        await self.uow.run("merchant_app", work)
        return app_id, key or apiv3_key

    async def rotate_key(self, app_id: str, public_key: str) -> None:
        """Upload a new RSA2 public key; the old one is still accepted for KEY_OVERLAP."""
        public_key = _public_key(public_key)

        async def work(tx: Transaction) -> None:
            store = self.store(tx)
            app = await store.app(app_id)
            if app is None or app.sign_type != "RSA2":
                raise errors.MerchantNotFound("no RSA2 app with this id", field="app_id")
            await store.rotate_key(app_id, public_key, app.public_key, tx.now + KEY_OVERLAP)

        await self.uow.run("rotate_key", work)

    async def authenticate(self, params: dict[str, object]) -> tuple[Merchant, bytes | None]:
        """The merchant behind a signed request (``app_id``, ``timestamp`` in Unix seconds,
        ``nonce``, ``sign_type``, ``sign``) and, for an HMAC app, the key our answer is signed
        with; or ``UNAUTHORIZED`` / ``BAD_SIGNATURE``."""
        app_id, ts = str(params.get("app_id", "")), str(params.get("timestamp", ""))
        nonce = str(params.get("nonce", ""))
        # ASCII digits only, and few: "²" and 5,000 digits pass isdigit() but not int() (500s).
        if not (app_id and ts.isascii() and ts.isdigit() and len(ts) <= 12 and 8 <= len(nonce) <= 64
                and params.get("sign")):
            raise errors.RequestNotSigned("send app_id, timestamp (Unix seconds), nonce (8-64 chars), sign_type "
                                          "and sign")
        if abs(self.uow.clock.now().timestamp() - int(ts)) > WINDOW_S:
            raise errors.RequestNotSigned(f"timestamp is more than {WINDOW_S} s away from our clock")

        async def work(tx: Transaction) -> tuple[Merchant, bytes | None]:
            store = self.store(tx)
            app = await store.app(app_id)
            if app is None:
                raise errors.RequestNotSigned("unknown app_id")
            if params.get("sign_type") != app.sign_type:
                raise errors.RequestNotSigned(f"this app signs with {app.sign_type}")
            if app.sign_type == "HMAC":
                assert app.hmac_key is not None
                verify_hmac(params, str(params["sign"]), app.hmac_key.encode())
            else:
                _verify_app_rsa2(app, signing_string(params), str(params["sign"]), tx.now)
            if not await store.use_nonce(app_id, nonce, tx.now, tx.now - timedelta(seconds=2 * WINDOW_S)):
                raise errors.RequestNotSigned("nonce was used already: a replayed request")
            found = await store.merchant(app.merchant_id)
            assert found is not None
            return found.merchant, app.hmac_key.encode() if app.sign_type == "HMAC" and app.hmac_key else None

        return await self.uow.run("merchant_authenticate", work)

    async def authenticate_alipay(self, app_id: str, text: str, signature: str) -> tuple[Merchant, App]:
        """The merchant and app behind a request to the Alipay-compatible gateway, whose
        ``text`` (every parameter but ``sign``, sorted) the app's RSA2 key signed. There is no
        nonce in Alipay's protocol: its timestamp window is checked by the gateway, and every
        write is idempotent by ``out_trade_no`` / ``out_request_no``."""

        async def work(tx: Transaction) -> tuple[Merchant, App]:
            store = self.store(tx)
            app = await store.app(app_id)
            if app is None:
                raise errors.RequestNotSigned("unknown app_id")
            if app.sign_type != "RSA2":
                raise errors.RequestNotSigned("this app signs with HMAC: the gateway takes RSA2 apps")
            _verify_app_rsa2(app, text, signature, tx.now)
            found = await store.merchant(app.merchant_id)
            assert found is not None
            return found.merchant, app

        return await self.uow.run("merchant_authenticate", work)

    async def authenticate_wechat(self, mchid: str, text: str, signature: str, nonce: str) -> tuple[Merchant, App]:
        """The merchant and app behind a WeChat Pay v3 request: ``mchid`` is the app id of an
        app of the ``wechat`` protocol whose RSA2 key signed ``text``; the nonce is used once."""

        async def work(tx: Transaction) -> tuple[Merchant, App]:
            store = self.store(tx)
            app = await store.app(mchid)
            if app is None or app.protocol != "wechat":
                raise errors.RequestNotSigned("mchid is not an app of the WeChat Pay protocol")
            _verify_app_rsa2(app, text, signature, tx.now)
            if not await store.use_nonce(mchid, nonce, tx.now, tx.now - timedelta(seconds=2 * WINDOW_S)):
                raise errors.RequestNotSigned("nonce_str was used already: a replayed request")
            found = await store.merchant(app.merchant_id)
            assert found is not None
            return found.merchant, app

        return await self.uow.run("merchant_authenticate", work)

    async def refund_by_request_no(self, merchant: Merchant, out_request_no: str) -> tuple[Trade, Refund] | None:
        """A refund of the merchant's by its request number alone (WeChat Pay's refund query)."""

        async def work(tx: Transaction) -> tuple[Trade, Refund] | None:
            found = await self.store(tx).refund_by_request_no(merchant.id, out_request_no)
            return (found[0].seen_at(tx.now), found[1]) if found else None

        return await self.uow.run("refund", work)

    async def add_store(self, merchant: Merchant, name: str, address: str = "", city: str = "") -> str:
        """A store of the merchant (trades may name the store they were taken in); its city is
        printed on the store's QR code."""
        if not 1 <= len(name.strip()) <= 128:
            raise ValidationFailed("a store has a name", field="name")
        if len(city.strip()) > 32 or not city.strip().isprintable():
            raise ValidationFailed("a store's city is at most 32 printable characters", field="city")
        store_id = new_id("sto")

        async def work(tx: Transaction) -> None:
            store = self.store(tx)
            found = await store.merchant(merchant.id)  # as it is now, not as the caller last read it
            if found is None:
                raise errors.MerchantNotFound(f"no merchant {merchant.id}", field="merchant_id")
            check_may_set_up(merchant.id, found.merchant.state)
            await store.add_store(store_id, merchant.id, name.strip(), address.strip()[:256], tx.now,
                                  city=city.strip())

        await self.uow.run("add_store", work)
        return store_id

    async def set_up_merchant(self, merchant_id: str) -> Merchant:
        """The merchant, if it may set things up (approved): what other contexts check before
        they give a merchant credentials of their own (in-store terminals); else
        ``MERCHANT_NOT_FOUND`` or ``MERCHANT_NOT_APPROVED``."""
        merchant = await self.merchant(merchant_id)
        check_may_set_up(merchant.id, merchant.state)
        return merchant

    async def stores(self, merchant_id: str) -> list[StoreRecord]:
        """The merchant's stores, oldest first."""

        async def work(tx: Transaction) -> list[StoreRecord]:
            return await self.store(tx).stores_of(merchant_id)

        return await self.uow.run("merchant_stores", work)

    async def own_store(self, merchant_id: str, store_id: str) -> StoreRecord:
        """One of the merchant's stores; another merchant's store looks exactly like a missing one."""
        found = next((s for s in await self.stores(merchant_id) if s.id == store_id), None)
        if found is None:
            raise errors.MerchantNotFound("no such store of yours", field="store_id")
        return found

    def sign_answer(self, body: dict[str, int | str], reply_key: bytes | None) -> dict[str, int | str]:
        """An answer to a signed merchant call, signed as the app signs (HMAC with its key, or
        RSA2 with the platform key), for routes outside this context (in-store terminals)."""
        if reply_key is not None:
            return {**body, "sign_type": "HMAC", "sign": sign_hmac(body, reply_key)}
        return {**body, "sign_type": "RSA2", "sign": sign_rsa2(body, self.platform_key)}

    # ------------------------------------------------------------------ trades

    async def create_trade(self, merchant: Merchant, out_trade_no: str, amount: object, subject: str,
                           expire_minutes: int = 30, *, app_id: str = "", notify_url: str = "",
                           store_id: str | None = None, file: MerchantFile | None = None,
                           then: Callable[[Transaction, Trade], Awaitable[None]] | None = None) -> Trade:
        """A trade waiting for the buyer; the same out_trade_no and content returns it again.
        ``file``: the merchant's file the caller read in this request (not read again);
        ``then`` runs in the trade's transaction with the trade (made or found), so the caller
        links its own row to it without a transaction of its own."""
        if merchant.state not in (MerchantState.APPROVED, MerchantState.SETTLEMENT_SUSPENDED):
            raise errors.MerchantNotActive(f"the merchant is {merchant.state.value}")
        check_idempotency_key(out_trade_no)
        amount = check_amount(amount)
        if file is None or file.merchant.id != merchant.id:
            file = await self._file(merchant.id)
        limit = file.per_trade_limit
        if amount > limit:
            raise errors.MerchantLimitExceeded(f"this merchant takes at most {limit / 100:.2f} CNY a payment",
                                               field="total_amount")
        if not 1 <= expire_minutes <= 24 * 60:
            raise ValidationFailed("expire_minutes is from 1 to 1440", field="expire_minutes")
        if not subject.strip():
            raise ValidationFailed("send a subject: what the buyer pays for", field="subject")
        notify_url = check_notify_url(notify_url, self.notify_policy)

        async def work(tx: Transaction) -> Trade:
            store = self.store(tx)
            known = await store.trade_by_out_no(merchant.id, out_trade_no)
            if known is not None:
                if (known.amount, known.subject) != (amount, subject.strip()[:256]):
                    raise errors.TradeExists("this out_trade_no was used for another amount or subject",
                                             field="out_trade_no")
                found = known.seen_at(tx.now)
                if then is not None:
                    await then(tx, found)
                return found
            if store_id and await store.store_owner(store_id) != merchant.id:
                raise errors.MerchantNotFound("no such store of yours", field="store_id")
            app = await store.app(app_id) if app_id and not notify_url else None
            trade = TradeRecord(new_id("trd"), merchant.id, out_trade_no, amount, subject.strip()[:256],
                                TradeState.WAIT_BUYER_PAY, app_id, notify_url or (app.notify_url if app else ""),
                                tx.now, tx.now + timedelta(minutes=expire_minutes), store_id)
            await store.add_trade(trade)
            made = trade.seen_at(tx.now)
            if then is not None:
                await then(tx, made)
            return made

        return await self.uow.run("create_trade", work)

    async def trade(self, trade_id: str) -> Trade:
        async def work(tx: Transaction) -> Trade:
            found = await self.store(tx).trade(trade_id)
            if found is None:
                raise errors.TradeNotFound("no such trade", field="trade_id")
            return found.seen_at(tx.now)

        return await self.uow.run("trade", work)

    async def find_trade(self, merchant: Merchant, *, out_trade_no: str = "", trade_no: str = "") -> Trade:
        """One of the merchant's trades by its own number or by ours (``trade_no``); both
        given must name the same trade."""
        if not (out_trade_no or trade_no):
            raise ValidationFailed("send out_trade_no or trade_no", field="out_trade_no")
        if out_trade_no:
            found = await self.trade_by_out_no(merchant, out_trade_no)
            if trade_no and found.id != trade_no:
                raise errors.TradeNotFound("trade_no and out_trade_no name different trades", field="trade_no")
            return found
        try:
            by_id = await self.trade(trade_no)
        except errors.TradeNotFound:
            by_id = None
        if by_id is None or by_id.merchant_id != merchant.id:  # another merchant's trade is not yours to see
            raise errors.TradeNotFound("no trade with this trade_no", field="trade_no")
        return by_id

    async def trade_by_out_no(self, merchant: Merchant, out_trade_no: str) -> Trade:
        return (await self._record(merchant, out_trade_no)).seen_at(self.uow.clock.now())

    async def _record(self, merchant: Merchant, out_trade_no: str) -> TradeRecord:
        async def work(tx: Transaction) -> TradeRecord:
            found = await self.store(tx).trade_by_out_no(merchant.id, out_trade_no)
            if found is None:
                raise errors.TradeNotFound("no trade with this out_trade_no", field="out_trade_no")
            return found

        return await self.uow.run("trade", work)

    async def store_by_id(self, store_id: str) -> StoreRecord | None:
        """A store by its id alone (a scanned QR code names it; the caller says what a missing one means)."""

        async def work(tx: Transaction) -> StoreRecord | None:
            return await self.store(tx).store_by_id(store_id)

        return await self.uow.run("store", work)

    async def pay(self, me: Principal, trade_id: str, *, pin: str | None = None, coupon_id: str | None = None,
                  then: Callable[[Transaction, Trade], Awaitable[None]] | None = None, consent: bool = False,
                  privilege: Privilege | None = None, trade: Trade | None = None,
                  file: MerchantFile | None = None) -> Trade:
        """The buyer pays a trade from the wallet (PIN above the password-free amount),
        optionally with a red envelope paying part; a second press returns the paid trade,
        never a second payment. ``then`` runs in the paying transaction after the posting,
        with the paid trade (its caller's own limits: raising undoes the payment).
        ``consent``: the caller has verified the payer's PIN already (as
        :meth:`WalletService.authorize_payment` takes it), so it is not hashed twice.
        ``privilege``: what the merchant gives off (:data:`Privilege`); the PIN is still asked on
        the full amount (the privilege is known only in the paying transaction).
        ``trade`` and ``file``: the trade and its merchant's file as the caller read or made them
        in this request (in-store micropay), not read again; the paying transaction locks and
        re-checks the trade's row all the same."""
        if trade is None or trade.id != trade_id:
            trade = await self.trade(trade_id)
        if trade.state is TradeState.TRADE_SUCCESS and trade.paid_at is not None:
            return trade
        check_trade_move(trade.state, TradeState.TRADE_SUCCESS, why="pay")
        merchant = file if file is not None and file.merchant.id == trade.merchant_id else await self._file(
            trade.merchant_id)
        m = merchant.merchant
        if m.state not in (MerchantState.APPROVED, MerchantState.SETTLEMENT_SUSPENDED):
            raise errors.MerchantNotActive(f"the merchant is {m.state.value}: it cannot be paid now")
        payer = await self.wallet.authorize_payment(me, trade.amount, pin, consent=consent)

        async def work(tx: Transaction) -> Trade:
            store = self.store(tx)
            row = await store.trade(trade_id, for_update=True)
            assert row is not None
            current = row.seen_at(tx.now)
            if current.state is TradeState.TRADE_SUCCESS and row.payer_id == payer.id:
                return current  # paid by this very press a moment ago
            check_trade_move(current.state, TradeState.TRADE_SUCCESS, why="pay")
            await self._check_daily(tx, merchant, row.amount)
            transfer_id = f"trade:{trade_id}"
            face, funded_by = 0, ""
            if coupon_id:
                if self.coupons is None:
                    raise errors.CouponNotUsable("red envelopes are not available", field="coupon_id")
                face, funded_by = await self.coupons.use_in(tx, coupon_id, payer.id, row)
            off = 0
            if privilege is not None:
                off = await privilege(tx, row.seen_at(tx.now), row.amount - face)
                if not 0 <= off < row.amount - face:
                    raise ValueError(f"a privilege gives 0 to {row.amount - face - 1} fen off, not {off}")
            wallet_part = row.amount - face - off
            legs = [Leg.credit(m.account_code, row.amount - off)]
            if wallet_part:
                legs.insert(0, Leg.debit(payer.account_code, wallet_part))
            if face:
                legs.insert(0, Leg.debit(funded_by, face))
            [result] = await tx.post([Transfer(transfer_id, tuple(legs), "merchant.payment",
                                               reference=f"{m.name} {row.out_trade_no}")])
            if result.error is not None:
                raise result.error
            if wallet_part:
                await self.wallet.count_payment(tx, payer, wallet_part)
            paid = replace(row, state=TradeState.TRADE_SUCCESS, payer_id=payer.id, transfer_id=transfer_id,
                           paid_at=tx.now, coupon_id=coupon_id, coupon_amount=face, privilege_amount=off)
            await store.put_trade(paid)
            if then is not None:
                await then(tx, paid.seen_at(tx.now))
            params: dict[str, object] = {"merchant": m.name, "amount_fen": row.amount}
            if face:  # the red envelope's share, said: the wallet paid less than the price
                params |= {"envelope_fen": face, "paid_fen": wallet_part}
            if off:  # the merchant's privilege, said: the wallet paid less than the price
                params |= {"privilege_fen": off, "paid_fen": wallet_part}
            template = ("merchant.paid_with_envelope" if face else "merchant.paid_with_privilege" if off
                        else "merchant.paid")
            await tx.emit(SmsRequested(key=f"{trade_id}:paid", to=payer.msisdn, template=template, params=params))
            await self._notify(tx, paid, TradeState.TRADE_SUCCESS, row.refunded, red_envelope=face)  # as paid
            return paid.seen_at(tx.now)

        return await self.uow.run("pay_trade", work)

    async def record_payments_in(self, tx: Transaction, payments: Sequence[CounterPayment]) -> list[str]:
        """In the caller's transaction, which posted the money to the merchants' payables
        (in-store NFC taps, online or uploaded in a batch): the payments as paid trades, so
        they are in the merchant's statement and T+1 settlement like every trade. ``paid_at``
        is now, when the money reached the payable (an offline tap uploaded days later is
        settled with the day it arrived, never with a day settled already). No SMS and no
        notification: the caller tells the payer. Answers the trade ids, in order."""
        records = [TradeRecord(p.trade_id or new_id("trd"), p.merchant_id, p.out_trade_no, p.amount, p.subject[:256],
                               TradeState.TRADE_SUCCESS, "", "", tx.now, tx.now, p.store_id, payer_id=p.payer_id,
                               transfer_id=p.transfer_id, paid_at=tx.now, privilege_amount=p.privilege)
                   for p in payments]
        await self.store(tx).add_trades(records)
        return [r.id for r in records]

    async def close(self, merchant: Merchant, out_trade_no: str) -> Trade:
        """Close an unpaid trade (the buyer can no longer pay it)."""
        trade = await self.trade_by_out_no(merchant, out_trade_no)

        async def work(tx: Transaction) -> Trade:
            store = self.store(tx)
            row = await store.trade(trade.id, for_update=True)
            assert row is not None
            current = row.seen_at(tx.now)
            if current.state is TradeState.TRADE_CLOSED and row.paid_at is None:
                return current  # closed (or expired) already
            check_trade_move(row.state, TradeState.TRADE_CLOSED, why="close")
            if row.paid_at is not None:
                raise errors.TradeStateInvalid("a paid trade is not closed: refund it", field="out_trade_no")
            closed = replace(row, state=TradeState.TRADE_CLOSED, closed_at=tx.now)
            await store.put_trade(closed)
            return closed.seen_at(tx.now)

        return await self.uow.run("close_trade", work)

    async def cancel(self, merchant: Merchant, out_trade_no: str) -> Trade:
        """Undo a trade whatever its state (Alipay's cancel): close it if unpaid, refund what
        the wallet paid if paid (request number ``cancel``). Safe to repeat."""
        record = await self._record(merchant, out_trade_no)
        if record.paid_at is None:
            return await self.close(merchant, out_trade_no)
        if record.refundable:
            trade, _, _ = await self.refund(merchant, out_trade_no, "cancel", record.refundable)
            return trade
        return record.seen_at(self.uow.clock.now())

    async def refund_query(self, merchant: Merchant, out_trade_no: str, out_request_no: str) -> tuple[Trade, int]:
        """A refund by its request number: (the trade, the amount refunded)."""
        trade = await self._record(merchant, out_trade_no)

        async def work(tx: Transaction) -> Refund | None:
            return await self.store(tx).refund(trade.id, out_request_no)

        found = await self.uow.run("refund", work)
        if found is None:
            raise errors.TradeNotFound("no refund with this out_request_no", field="out_request_no")
        return trade.seen_at(self.uow.clock.now()), found.amount

    async def upload_key(self, merchant: Merchant, app_id: str, public_key: str) -> None:
        """A merchant replaces its RSA2 key through the signed API (the old one keeps working
        for the overlap, so requests in flight are not refused)."""
        async def work(tx: Transaction) -> App | None:
            return await self.store(tx).app(app_id)

        app = await self.uow.run("app_owner", work)
        if app is None or app.merchant_id != merchant.id:
            raise errors.MerchantNotFound("no such app of yours", field="app_id")
        await self.rotate_key(app_id, public_key)

    async def refund(self, merchant: Merchant, out_trade_no: str, out_request_no: str, amount: object
                     ) -> tuple[Trade, int, bool]:
        """Refund part or all of a paid trade, once per ``out_request_no``; returns (trade,
        amount refunded by this request, replayed)."""
        check_idempotency_key(out_request_no)
        amount = check_amount(amount)
        trade = await self._record(merchant, out_trade_no)
        if trade.paid_at is None or trade.payer_id is None:
            raise errors.TradeStateInvalid("only a paid trade can be refunded", field="out_trade_no")
        payer = await self.wallet.principal(trade.payer_id)  # cash goes back where it came from

        async def work(tx: Transaction) -> tuple[Trade, int, bool]:
            store = self.store(tx)
            row = await store.trade(trade.id, for_update=True)
            assert row is not None
            known = await store.refund(trade.id, out_request_no)
            if known is not None:
                if known.amount != amount:
                    raise IdempotencyConflict("this out_request_no was used for another amount", field="out_request_no")
                return row.seen_at(tx.now), known.amount, True
            for guard in self.refund_guards:  # raising refuses the refund: nothing moved
                await guard(tx, row)
            cash = row.wallet_paid  # a red envelope is not cash, nor a privilege
            check_refund(cash, row.refunded, amount)
            transfer_id = "refund:" + hashlib.sha256(f"{trade.id}|{out_request_no}".encode()).hexdigest()[:40]
            [result] = await tx.post([Transfer(transfer_id, (Leg.debit(merchant.account_code, amount),
                                                             Leg.credit(payer.account_code, amount)),
                                               "merchant.refund", reference=f"{merchant.name} {out_trade_no}")])
            if result.error is not None:
                raise result.error
            refunded = row.refunded + amount
            await store.add_refund(Refund(new_id("rfd"), trade.id, out_request_no, amount, transfer_id, tx.now))
            state = TradeState.TRADE_CLOSED if refunded == cash else TradeState.TRADE_SUCCESS
            after = replace(row, refunded=refunded)
            if state is TradeState.TRADE_CLOSED:
                after = replace(after, state=state, closed_at=tx.now)
            await store.put_trade(after)
            await self._notify(tx, row, state, refunded, red_envelope=row.coupon_amount,
                               refund=(out_request_no, amount))
            # The buyer did not move this money: told in the same transaction, with the request number.
            await tx.emit(SmsRequested(key=f"{transfer_id}:sms", to=payer.msisdn, template="merchant.refunded",
                                       params={"merchant": merchant.name, "amount_fen": amount,
                                               "out_request_no": out_request_no}))
            return after.seen_at(tx.now), amount, False

        return await self.uow.run("refund_trade", work)

    async def _notify(self, tx: Transaction, trade: TradeRecord, state: TradeState, refunded: int, *,
                      red_envelope: int = 0, refund: tuple[str, int] | None = None) -> None:
        """In the caller's transaction: the merchant's notification of the trade's new state,
        if it has a URL (the worker delivers it, signed, on the retry schedule), written in
        the protocol of the app that created the trade."""
        if not trade.notify_url:
            return
        store = self.store(tx)
        notify_id = new_id("ntf")
        app = await store.app(trade.app_id) if trade.app_id else None
        if app is not None and app.protocol == "alipay":
            payload = alipay.notification(trade, state, refunded, notify_id=notify_id, now=tx.now,
                                          red_envelope=red_envelope, refund=refund)
            await store.add_notification(notify_id, trade, payload, tx.now, encoding="form")
            return
        if app is not None and app.protocol == "wechat" and app.apiv3_key:
            kind, summary, resource = wechat.event(notify_id, trade, state, refunded, tx.now,
                                                   red_envelope=red_envelope, refund=refund)
            original = "refund" if refund is not None else "transaction"
            nonce, ciphertext = aead_seal(app.apiv3_key, json.dumps(resource, ensure_ascii=False), original)
            await store.add_notification(notify_id, trade, {
                "id": notify_id, "create_time": wechat.rfc3339(tx.now), "resource_type": "encrypt-resource",
                "event_type": kind, "summary": summary,
                "resource": json.dumps({"original_type": original, "algorithm": "AEAD_AES_256_GCM",
                                        "ciphertext": ciphertext, "associated_data": original, "nonce": nonce})},
                tx.now, encoding="wechat")
            return
        await store.add_notification(notify_id, trade, trade_notification(
            trade, state, refunded, notify_id=notify_id, now=tx.now, red_envelope=red_envelope, refund=refund),
            tx.now)

    async def cashier_return(self, trade: Trade) -> dict[str, str]:
        """What the hosted cashier adds to the shop's return URL after paying: the trade's
        number and state, or for an Alipay app the signed return Alipay code verifies."""

        async def work(tx: Transaction) -> tuple[TradeRecord | None, App | None]:
            store = self.store(tx)
            record = await store.trade(trade.id)
            return record, await store.app(record.app_id) if record is not None and record.app_id else None

        record, app = await self.uow.run("cashier_return", work)
        if record is None or app is None or app.protocol != "alipay":
            return {"out_trade_no": trade.out_trade_no, "trade_status": trade.state.value}
        params = alipay.return_params(trade, app.app_id, trade.merchant_id, "alipay.trade.page.pay",
                                      self.uow.clock.now())
        return {**params, "sign_type": "RSA2", "sign": sign_rsa2(params, self.platform_key)}

    async def _check_daily(self, tx: Transaction, merchant: MerchantFile, amount: int) -> None:
        """The merchant's daily limit (Shanghai day), counted on its day's row in the paying
        transaction (a refusal raised later in it undoes the count with the payment)."""
        day = tx.now.astimezone(ZoneInfo("Asia/Shanghai")).date()
        limit = merchant.daily_limit
        today = await self.store(tx).count_paid(merchant.merchant.id, day, amount, limit)
        if today is not None:
            raise errors.MerchantLimitExceeded(f"this merchant's daily limit: {max(0, limit - today) / 100:.2f} CNY "
                                               "left today", field="amount")


def _decision_sms(merchant: Merchant, contact: str) -> SmsRequested:
    """The applicant's SMS about their application: received (waiting for a person),
    approved, rejected or sent back for more information, with the reason."""
    # one key per decision (a second request for more information is news again), unique even
    # at one instant; a retried transaction rolled its first attempt's SMS back with it
    return SmsRequested(key=f"merchant.{merchant.state.value}:{merchant.id}:{new_id('d')}", to=contact,
                        template=f"merchant_application.{merchant.state.value}",
                        params={"name": merchant.name[:40], "id": merchant.id, "reason": merchant.reason[:120]})


def _public_key(text: str | None) -> str:
    """An app's RSA2 public key as PEM (from PEM or Alipay's bare base64)."""
    try:
        return public_key_pem(text or "")
    except ValueError:
        raise ValidationFailed("RSA2 needs the app's RSA public key: PEM, or the base64 Alipay's key tool shows",
                               field="public_key") from None


def _verify_app_rsa2(app: App, text: str, signature: str, now: datetime) -> None:
    """``BAD_SIGNATURE`` unless the app's key (or, during a rotation, its previous key) signed ``text``."""
    assert app.public_key is not None
    try:
        verify_rsa2_text(text, signature, app.public_key.encode())
    except errors.BadSignature:
        if not (app.previous_key and app.previous_until and app.previous_until > now):
            raise
        verify_rsa2_text(text, signature, app.previous_key.encode())
