"""Handset protection use cases (手机保障服务): enrol a phone by IMEI, collect the monthly
fee, claim for damage, loss or theft, work the claim to a same-model replacement handed
over at a business hall, and the blocklist and stock behind it.

* **Money** moves only through the ledger, in the use case's transaction: the first
  month's fee with the enrolment (its id derives from the enrolment, itself derived from
  the subscriber and the Idempotency-Key, so a retry pays once), each later month by the
  worker's ``collect_due`` in batches (ids per enrolment and period: a rerun never charges a
  month twice; a refused one lapses the cover), the handling fee once per claim. A fee the
  wallet cannot pay is refused and changes nothing.
* **Claims** follow ``model.MOVES``; every move writes a claim event and an SMS to the
  customer through the outbox (topic ``sms.send``, as every context), in the same
  transaction. A claim the fraud rules flag is approved twice: by a handler, then by a
  checker who is someone else (maker-checker).
* **Stock** is allocated under a row lock (the row's state moves only from ``available``),
  so two claims never get one phone; a lost or stolen phone's IMEI goes on the blocklist at
  hand-over, in the same transaction.
* **Photos** of a claim are uploaded first (``upload_photo``): checked by their magic bytes
  (JPEG, PNG) and size, kept once under ``photo_dir`` named by their SHA-256, recorded with
  their owner; a claim names them by id, and only its subscriber's own photos are accepted.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol

import structlog
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from mobipay.kernel.clock import as_utc
from mobipay.kernel.errors import IdempotencyConflict, MobipayError, ValidationFailed
from mobipay.kernel.events import SmsRequested
from mobipay.kernel.ids import check_idempotency_key, new_id
from mobipay.ledger.chart import WALLET_PREFIX
from mobipay.ledger.model import AccountKind, AccountSpec, Leg, Transfer
from mobipay.ledger.uow import UnitOfWork, UnitOfWorkRunner
from mobipay.orders.service import order_id as derived_id
from mobipay.protection import errors
from mobipay.protection.gateway import WarrantyService
from mobipay.protection.model import (
    CHECKER_ROLE,
    FEE_INCOME,
    HANDLER_ROLE,
    HANDLING_INCOME,
    OPEN,
    PHONE_BILL_RECEIVABLE,
    PHOTO_SUFFIX,
    Channel,
    ClaimKind,
    ClaimState,
    EnrolmentState,
    FeeTier,
    Hall,
    Handset,
    PastClaim,
    Payment,
    Programme,
    add_months,
    as_json,
    check_claim,
    check_imei,
    check_move,
    check_region,
    check_second_reviewer,
    city_code,
    deadline,
    fee_transfer_id,
    fraud_flags,
    handling_transfer_id,
    handset_for,
    local_date,
    photo_id,
    photo_type,
)
from mobipay.protection.reference_data import halls as shipped_halls
from mobipay.protection.reference_data import handsets as shipped_handsets
from mobipay.protection.reference_data import programmes as shipped_programmes
from mobipay.protection.tables import blocklist, claim_events, claims, enrolments, stock
from mobipay.protection.tables import photos as photo_table
from mobipay.wallet.service import Principal, WalletService

log = structlog.get_logger(__name__)

DEFAULT_PROGRAMME = "hunan-2026"
ACCOUNTS = (
    AccountSpec(FEE_INCOME, AccountKind.INCOME, name="Handset protection monthly fees"),
    AccountSpec(HANDLING_INCOME, AccountKind.INCOME, name="Handset protection handling fees"),
    AccountSpec(PHONE_BILL_RECEIVABLE, AccountKind.ASSET, name="Fees charged to subscribers' phone bills"),
)
MAX_PHOTOS = 6
KIND_ZH = {"damage": "损坏", "loss": "丢失", "theft": "被盗"}


class Staff(Protocol):
    """Who works a claim: a console operator (``backoffice.operators.Operator``) or a
    command-line actor of the roster; refuses with ``ROLE_REQUIRED`` without the role."""

    @property
    def name(self) -> str: ...

    def require(self, role: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Enrolment:
    id: str
    programme: str
    user_id: str
    msisdn: str
    imei: str
    brand: str
    model: str
    price: int
    purchased_on: date
    receipt: str
    city: str
    channel: str
    hall: str | None
    monthly_fee: int
    damage_fee: int
    loss_fee: int
    payment: str
    state: EnrolmentState
    enrolled_at: datetime
    enrolled_on: date
    covered_from: date
    periods_paid: int
    paid_until: date
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class Quote:
    """An enrolment checked and priced, not made."""

    programme: Programme
    handset: Handset
    imei: str
    purchased_on: date
    receipt: str
    city: str
    payment: Payment
    tier: FeeTier
    covered_from: date


@dataclass(frozen=True, slots=True)
class Claim:
    id: str
    enrolment_id: str
    user_id: str
    msisdn: str
    imei: str
    model: str
    city: str
    kind: ClaimKind
    state: ClaimState
    occurred_on: date
    region: str
    description: str
    photos: list[str]
    police_report: str | None
    warranty: str
    warranty_until: date | None
    flags: list[str]
    fee: int
    reviewer: str | None
    checker: str | None
    reason: str | None
    hall: str | None
    replacement_imei: str | None
    old_phone_returned: bool
    fee_transfer_id: str | None
    submitted_at: datetime
    state_since: datetime
    handed_over_at: datetime | None
    replayed: bool = False

    @property
    def due_by(self) -> datetime | None:
        """When the claim's current state is overdue (the console's deadline)."""
        return deadline(self.state, self.state_since)


@dataclass(frozen=True, slots=True)
class Photo:
    """An uploaded claim photo: its file is ``<photo_dir>/<sha256>.<jpg|png>``."""

    id: str
    user_id: str
    sha256: str
    content_type: str
    size: int
    uploaded_at: datetime
    replayed: bool = False

    @property
    def file_name(self) -> str:
        return f"{self.sha256}.{PHOTO_SUFFIX[self.content_type]}"


def _photo(row: Any, replayed: bool = False) -> Photo:
    return Photo(row.id, row.user_id, row.sha256, row.content_type, row.size, as_utc(row.uploaded_at), replayed)


def _keep(target: Path, data: bytes) -> None:
    """Write a file named by its hash once, whole or not at all (a rename of a finished file)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        tmp = target.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.replace(target)


@dataclass(frozen=True, slots=True)
class ClaimEvent:
    at: datetime
    actor: str
    from_state: str | None
    to_state: str
    note: str


@dataclass(frozen=True, slots=True)
class StockUnit:
    id: str
    hall: str
    model: str
    imei: str
    state: str
    claim_id: str | None


@dataclass(frozen=True, slots=True)
class Collection:
    """One run of the monthly fee collection."""

    collected: int
    amount: int
    lapsed: int


@dataclass(frozen=True, slots=True)
class CityReport:
    city: str
    enrolments: int
    claims: int
    decided: int
    approved: int
    handed_over: int
    avg_hours_to_replacement: float | None

    @property
    def approval_rate(self) -> float | None:
        return self.approved / self.decided if self.decided else None


def _enrolment(row: Any, replayed: bool = False) -> Enrolment:
    return Enrolment(row.id, row.programme, row.user_id, row.msisdn, row.imei, row.brand, row.model, row.price,
                     row.purchased_on, row.receipt, row.city, row.channel, row.hall, row.monthly_fee, row.damage_fee,
                     row.loss_fee, row.payment, EnrolmentState(row.state), as_utc(row.enrolled_at), row.enrolled_on,
                     row.covered_from, row.periods_paid, row.paid_until, replayed)


def _claim(row: Any, replayed: bool = False) -> Claim:
    return Claim(row.id, row.enrolment_id, row.user_id, row.msisdn, row.imei, row.model, row.city,
                 ClaimKind(row.kind), ClaimState(row.state), row.occurred_on, row.region, row.description,
                 json.loads(row.photos), row.police_report, row.warranty, row.warranty_until, json.loads(row.flags),
                 row.fee, row.reviewer, row.checker, row.reason, row.hall, row.replacement_imei,
                 bool(row.old_phone_returned), row.fee_transfer_id, as_utc(row.submitted_at),
                 as_utc(row.state_since), as_utc(row.handed_over_at) if row.handed_over_at else None, replayed)


def _text(value: object, name: str, limit: int, *, required: bool = True) -> str:
    text = str(value or "").strip()
    if required and not text:
        raise ValidationFailed(f"give the {name.replace('_', ' ')}", field=name)
    if len(text) > limit or not text.isprintable():
        raise ValidationFailed(f"the {name.replace('_', ' ')} is at most {limit} printable characters", field=name)
    return text


def _date(value: object, name: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ValidationFailed(f"{name.replace('_', ' ')} is a date, YYYY-MM-DD", field=name) from None


class ProtectionService:
    """The handset protection programme's commands; each runs in one unit of work."""

    def __init__(self, uow: UnitOfWorkRunner, wallet: WalletService, warranty: WarrantyService, *,
                 programmes: dict[str, Programme] | None = None, handsets: dict[str, Handset] | None = None,
                 halls: dict[str, Hall] | None = None, collect_batch: int = 200,
                 photo_dir: Path = Path("var/protection/photos")) -> None:
        self.uow = uow
        self.wallet = wallet
        self.warranty = warranty
        self.programmes = programmes if programmes is not None else shipped_programmes()
        self.handsets = handsets if handsets is not None else shipped_handsets()
        self.halls = halls if halls is not None else shipped_halls()
        self.collect_batch = collect_batch  # enrolments per ledger batch in the monthly collection
        self.photo_dir = photo_dir  # claims' photos, each file named by its SHA-256

    async def open_accounts(self) -> None:
        """The programme's income and receivable accounts (idempotent; the bootstrap calls it)."""
        await self.uow.ledger.open_accounts(list(ACCOUNTS))

    def programme(self, code: str | None = None) -> Programme:
        found = self.programmes.get(code or DEFAULT_PROGRAMME)
        if found is None:
            raise errors.ProgrammeUnknown(f"no programme {code!r}; there is {', '.join(self.programmes)}",
                                          field="programme")
        return found

    def hall(self, code: str) -> Hall:
        found = self.halls.get(str(code or "").strip().upper())
        if found is None:
            raise errors.HallUnknown(f"no business hall {code!r}", field="hall")
        return found

    def today(self) -> date:
        return local_date(self.uow.clock.now())

    # ------------------------------------------------------------------ enrolment

    async def enrol(self, me: Principal, *, imei: object, price: int, purchased_on: object, receipt: object,
                    city: object, idempotency_key: str, programme: str | None = None,
                    payment: str = Payment.WALLET.value, channel: Channel = Channel.APP, pin: str | None = None,
                    hall: str | None = None, staff: str | None = None, consent: bool = False) -> Enrolment:
        """Enrol my phone: its IMEI checked (Luhn, TAC, blocklist, not enrolled), the
        programme's city, period and window after purchase, the fee tier by its price; the
        first month's fee is paid now (from the wallet, or charged to the phone bill).
        The same Idempotency-Key and request returns the first enrolment (``replayed``)."""
        check_idempotency_key(idempotency_key)
        enrolment_id = derived_id("pe_", me.user_id, idempotency_key)
        number = check_imei(imei)
        known = await self._enrolment_row(enrolment_id)
        if known is not None:
            if known.imei != number:
                raise IdempotencyConflict("this Idempotency-Key enrolled another phone: use a new key",
                                          field="Idempotency-Key")
            return _enrolment(known, replayed=True)
        q = await self.quote(imei=number, price=price, purchased_on=purchased_on, receipt=receipt, city=city,
                             programme=programme, payment=payment)
        prog, handset, bought, proof, where, how, tier = (q.programme, q.handset, q.purchased_on, q.receipt, q.city,
                                                          q.payment, q.tier)
        today = self.today()
        payer = None
        if how is Payment.WALLET:
            payer = await self.wallet.authorize_payment(me, tier.monthly_fee, pin, consent=consent)

        async def work(uow: UnitOfWork) -> Any:
            if (await uow.conn.execute(select(blocklist.c.imei).where(blocklist.c.imei == number))).first():
                raise errors.ImeiBlocklisted("this IMEI is on the blocklist", field="imei")
            if (await uow.conn.execute(select(enrolments.c.id).where(enrolments.c.live_imei == number))).first():
                raise errors.AlreadyEnrolled("this phone is already enrolled", field="imei")
            await uow.conn.execute(insert(enrolments).values(
                id=enrolment_id, programme=prog.code, user_id=me.user_id, msisdn=me.msisdn, imei=number,
                live_imei=number, brand=handset.brand, model=handset.model, price=price, purchased_on=bought,
                receipt=proof, city=where, channel=channel.value, hall=hall, staff=staff,
                monthly_fee=tier.monthly_fee, damage_fee=tier.damage_fee, loss_fee=tier.loss_fee, payment=how.value,
                state=EnrolmentState.ACTIVE.value, enrolled_at=uow.now, enrolled_on=today,
                covered_from=prog.covered_from(today), periods_paid=1, paid_until=add_months(today, 1)))
            if payer is not None:
                await self.wallet.count_payment(uow, payer, tier.monthly_fee)
            await self._post(uow, fee_transfer_id(enrolment_id, 1), self._fee_legs(how, me.account_code,
                                                                                  tier.monthly_fee),
                             "protection.fee", f"手机保障 {handset.name} 1", {"enrolment": enrolment_id, "period": 1})
            await uow.emit(SmsRequested(key=f"{enrolment_id}:enrolled", to=me.msisdn, template="protection.enrolled",
                                        params={"model": handset.name, "imei": number[-4:],
                                                "amount_fen": tier.monthly_fee,
                                                "from": f"{prog.covered_from(today):%Y-%m-%d}",
                                                "damage_fen": tier.damage_fee, "loss_fen": tier.loss_fee}))
            return (await uow.conn.execute(select(enrolments).where(enrolments.c.id == enrolment_id))).one()

        try:
            row = await self.uow.run("protection_enrol", work)
        except IntegrityError:  # a concurrent request enrolled the IMEI (live_imei) or used the key
            known = await self._enrolment_row(enrolment_id)
            if known is not None and known.imei == number:
                return _enrolment(known, replayed=True)
            raise errors.AlreadyEnrolled("this phone is already enrolled", field="imei") from None
        log.info("protection.enrolled", enrolment=enrolment_id, channel=channel.value, city=where)
        return _enrolment(row)

    async def quote(self, *, imei: object, price: int, purchased_on: object, receipt: object, city: object,
                    programme: str | None = None, payment: str = Payment.WALLET.value) -> Quote:
        """Every check of an enrolment without enrolling: the handset, the fee tier, or the
        refusal (the SMS channel and the pages show the fee before the subscriber confirms)."""
        number = check_imei(imei)
        prog = self.programme(programme)
        handset = handset_for(number, self.handsets)
        bought = _date(purchased_on, "purchased_on")
        proof = _text(receipt, "receipt", 64)
        where = city_code(city)
        try:
            how = Payment(payment)
        except ValueError:
            raise ValidationFailed("payment is wallet or phone_bill", field="payment") from None
        if not isinstance(price, int) or isinstance(price, bool):
            raise errors.PriceOutOfRange("the price is integer fen", field="price")
        prog.check_enrolment(city=where, today=self.today(), purchased_on=bought)
        tier = prog.tier_for(price)
        await self._check_imei_free(number)
        return Quote(prog, handset, number, bought, proof, where, how, tier, prog.covered_from(self.today()))

    async def enrol_at_hall(self, staff: Staff, hall_code: str, msisdn: str, *, imei: object, price: int,
                            purchased_on: object, receipt: object, idempotency_key: str,
                            payment: str = Payment.PHONE_BILL.value, programme: str | None = None) -> Enrolment:
        """A business hall enrols a phone it sold, for the customer at the counter: the hall's
        city is the customer's. The monthly fee goes on the phone bill: staff never take money
        from a wallet (that needs the subscriber's own session: the app, the web, SMS)."""
        staff.require(HANDLER_ROLE)
        if payment != Payment.PHONE_BILL.value:
            raise ValidationFailed("at the counter the monthly fee goes on the phone bill; to pay it from the wallet "
                                   "the subscriber enrols in the app, on the web or by SMS", field="payment")
        hall = self.hall(hall_code)
        user = await self.wallet.user_by_msisdn(msisdn)
        me = Principal(user.id, "business-hall", user.msisdn, user.account_code)
        return await self.enrol(me, imei=imei, price=price, purchased_on=purchased_on, receipt=receipt,
                                city=hall.city, idempotency_key=idempotency_key, programme=programme,
                                payment=payment, channel=Channel.HALL, hall=hall.code, staff=staff.name)

    async def _check_imei_free(self, number: str) -> None:
        async def work(uow: UnitOfWork) -> tuple[bool, bool]:
            blocked = (await uow.conn.execute(select(blocklist.c.imei).where(blocklist.c.imei == number))).first()
            enrolled = (await uow.conn.execute(select(enrolments.c.id).where(enrolments.c.live_imei == number))
                        ).first()
            return blocked is not None, enrolled is not None

        blocked, enrolled = await self.uow.run("protection_imei_free", work)
        if blocked:
            raise errors.ImeiBlocklisted("this IMEI is on the blocklist (reported lost or stolen)", field="imei")
        if enrolled:
            raise errors.AlreadyEnrolled("this phone is already enrolled", field="imei")

    @staticmethod
    def _fee_legs(how: Payment, account: str, amount: int, income: str = FEE_INCOME) -> tuple[Leg, ...]:
        source = account if how is Payment.WALLET else PHONE_BILL_RECEIVABLE
        return (Leg.debit(source, amount), Leg.credit(income, amount))

    @staticmethod
    async def _post(uow: UnitOfWork, transfer_id: str, legs: tuple[Leg, ...], code: str, reference: str,
                    metadata: dict[str, Any]) -> None:
        [result] = await uow.post([Transfer(transfer_id, legs, code, reference=reference, metadata=metadata)])
        if result.error is not None:
            raise result.error

    async def _enrolment_row(self, enrolment_id: str) -> Any:
        async def work(uow: UnitOfWork) -> Any:
            return (await uow.conn.execute(select(enrolments).where(enrolments.c.id == enrolment_id))).first()

        return await self.uow.run("protection_enrolment", work)

    async def enrolments(self, me: Principal) -> list[Enrolment]:
        async def work(uow: UnitOfWork) -> list[Any]:
            return list(await uow.conn.execute(select(enrolments).where(enrolments.c.user_id == me.user_id)
                                               .order_by(enrolments.c.enrolled_at.desc())))

        return [_enrolment(r) for r in await self.uow.run("protection_enrolments", work)]

    async def enrolment(self, me: Principal, enrolment_id: str) -> Enrolment:
        """One of my enrolments; another subscriber's looks exactly like a missing one."""
        row = await self._enrolment_row(enrolment_id)
        if row is None or row.user_id != me.user_id:
            raise errors.EnrolmentNotFound("no such enrolment of yours", field="enrolment_id")
        return _enrolment(row)

    # ------------------------------------------------------------------ the monthly fee

    async def collect_due(self, limit: int = 5_000) -> Collection:
        """The worker's job: collect each active enrolment's fee for the month that starts
        today or earlier, in ledger batches; a fee the wallet cannot pay (its balance, or
        its tier's limits, which a wallet's fee counts against) lapses the cover (an SMS
        says so). Each month's transfer id derives from the enrolment and the
        period, so a rerun charges nothing twice."""
        today = self.today()
        collected = amount = lapsed = 0
        while collected + lapsed < limit:
            async def work(uow: UnitOfWork) -> tuple[int, int, int, int]:
                rows = list(await uow.conn.execute(select(enrolments).where(
                    enrolments.c.state == EnrolmentState.ACTIVE.value, enrolments.c.paid_until <= today)
                    .order_by(enrolments.c.paid_until, enrolments.c.id).limit(self.collect_batch).with_for_update()))
                if not rows:
                    return 0, 0, 0, 0
                # A wallet's fee counts against its limits (PBoC tiers) as every payment does: a
                # fee over them is not posted, and one the ledger then refuses is given back.
                refused: dict[str, str] = {}
                payers: dict[str, str] = {}
                kept, commands = [], []
                for r in rows:
                    if r.payment == Payment.WALLET.value:
                        user = await self.wallet.store(uow).user_by_msisdn(r.msisdn)
                        try:
                            if user is None:
                                raise errors.EnrolmentNotActive("the wallet is gone")
                            await self.wallet.count_payment(uow, user, r.monthly_fee)
                        except MobipayError as exc:
                            refused[r.id] = exc.code
                            continue
                        payers[r.id] = user.id
                    kept.append(r)
                    commands.append(Transfer(fee_transfer_id(r.id, r.periods_paid + 1),
                                             self._fee_legs(Payment(r.payment), f"{WALLET_PREFIX}{r.msisdn}",
                                                            r.monthly_fee),
                                             "protection.fee", f"手机保障 {r.brand} {r.model} {r.periods_paid + 1}",
                                             metadata={"enrolment": r.id, "period": r.periods_paid + 1}))
                for r, result in zip(kept, await uow.post(commands) if commands else [], strict=True):
                    if result.error is not None:
                        refused[r.id] = result.error.code
                        if r.id in payers:
                            await self.wallet.uncount_payment(uow, payers[r.id], r.monthly_fee, uow.now)
                ok = gone = total = 0
                for r in rows:
                    period = r.periods_paid + 1
                    params = {"model": f"{r.brand} {r.model}", "amount_fen": r.monthly_fee}
                    if r.id not in refused:
                        ok += 1
                        total += r.monthly_fee
                        until = add_months(r.enrolled_on, period)
                        await uow.conn.execute(update(enrolments).where(enrolments.c.id == r.id).values(
                            periods_paid=period, paid_until=until))
                        await uow.emit(SmsRequested(key=f"{r.id}:fee:{period}", to=r.msisdn,
                                                    template="protection.fee_collected",
                                                    params={**params, "until": f"{until:%Y-%m-%d}"}))
                    else:
                        gone += 1
                        await uow.conn.execute(update(enrolments).where(enrolments.c.id == r.id).values(
                            state=EnrolmentState.LAPSED.value, lapsed_at=uow.now))
                        await uow.emit(SmsRequested(key=f"{r.id}:lapsed:{period}", to=r.msisdn,
                                                    template="protection.lapsed",
                                                    params={**params, "code": refused[r.id]}))
                return len(rows), ok, gone, total

            seen, ok, gone, total = await self.uow.run("protection_collect", work)
            if not seen:
                break
            collected, lapsed, amount = collected + ok, lapsed + gone, amount + total
        if collected or lapsed:
            log.info("protection.fees_collected", collected=collected, amount=amount, lapsed=lapsed)
        return Collection(collected, amount, lapsed)

    # ------------------------------------------------------------------ blocklist and stock

    async def block(self, staff: Staff, imei: object, *, reason: str) -> None:
        """Put an IMEI on the blocklist by hand (audited); no enrolment of it is accepted."""
        staff.require(CHECKER_ROLE)
        number = check_imei(imei)
        why = _text(reason, "reason", 200)

        async def work(uow: UnitOfWork) -> None:
            if (await uow.conn.execute(select(blocklist.c.imei).where(blocklist.c.imei == number))).first():
                return
            await uow.conn.execute(insert(blocklist).values(imei=number, reason=why, claim_id=None,
                                                            added_by=staff.name, added_at=uow.now))
            await uow.audit(actor=staff.name, action="protection.block", target=number, reason=why)

        await self.uow.run("protection_block", work)

    async def unblock(self, staff: Staff, imei: object, *, reason: str) -> bool:
        """Take an IMEI off the blocklist (a lost phone found again, checked); audited."""
        staff.require(CHECKER_ROLE)
        number = check_imei(imei)
        why = _text(reason, "reason", 200)

        async def work(uow: UnitOfWork) -> bool:
            row = (await uow.conn.execute(select(blocklist).where(blocklist.c.imei == number))).first()
            if row is None:
                return False
            await uow.conn.execute(blocklist.delete().where(blocklist.c.imei == number))
            await uow.audit(actor=staff.name, action="protection.unblock", target=number, reason=why,
                            before={"reason": row.reason})
            return True

        return await self.uow.run("protection_unblock", work)

    async def blocked(self, imei: object) -> bool:
        number = check_imei(imei)

        async def work(uow: UnitOfWork) -> bool:
            return (await uow.conn.execute(select(blocklist.c.imei).where(blocklist.c.imei == number))
                    ).first() is not None

        return await self.uow.run("protection_blocked", work)

    async def add_stock(self, staff: Staff, hall_code: str, imei: object) -> StockUnit:
        """A replacement phone into a hall's stock; its model comes from its TAC."""
        staff.require(HANDLER_ROLE)
        hall = self.hall(hall_code)
        number = check_imei(imei)
        handset = handset_for(number, self.handsets)
        unit_id = new_id("pst")

        async def work(uow: UnitOfWork) -> None:
            if (await uow.conn.execute(select(enrolments.c.id).where(enrolments.c.live_imei == number))).first() or \
                    (await uow.conn.execute(select(blocklist.c.imei).where(blocklist.c.imei == number))).first():
                raise errors.StockImeiTaken("this IMEI is enrolled or blocklisted: not a new phone", field="imei")
            await uow.conn.execute(insert(stock).values(id=unit_id, hall=hall.code, model=handset.model, imei=number,
                                                        state="available", claim_id=None, added_at=uow.now))

        try:
            await self.uow.run("protection_add_stock", work)
        except IntegrityError:
            raise errors.StockImeiTaken("this IMEI is already in stock", field="imei") from None
        return StockUnit(unit_id, hall.code, handset.model, number, "available", None)

    async def stock_levels(self) -> dict[tuple[str, str], int]:
        """Phones available per (hall, model)."""
        async def work(uow: UnitOfWork) -> dict[tuple[str, str], int]:
            rows = await uow.conn.execute(select(stock.c.hall, stock.c.model, func.count()).where(
                stock.c.state == "available").group_by(stock.c.hall, stock.c.model))
            return {(r[0], r[1]): int(r[2]) for r in rows}

        return await self.uow.run("protection_stock", work)

    # ------------------------------------------------------------------ claims: the customer

    async def submit_claim(self, me: Principal, enrolment_id: str, *, kind: str, occurred_on: object,
                           region: object, description: object, photos: list[str] | None = None,
                           police_report: str | None = None, idempotency_key: str) -> Claim:
        """Claim for my enrolled phone. Refused (nothing stored) outside mainland China, in
        the waiting period, over the claim limit, without its evidence, while another claim
        is open, or for damage the maker repairs free under 三包. The fraud rules' flags are
        kept on the claim: a flagged claim needs a second reviewer."""
        check_idempotency_key(idempotency_key)
        claim_id = derived_id("pc_", me.user_id, idempotency_key)
        known = await self._claim_row(claim_id)
        if known is not None:
            if known.enrolment_id != enrolment_id or known.kind != kind:
                raise IdempotencyConflict("this Idempotency-Key made another claim: use a new key",
                                          field="Idempotency-Key")
            return _claim(known, replayed=True)
        try:
            what = ClaimKind(kind)
        except ValueError:
            raise ValidationFailed("kind is damage, loss or theft", field="kind") from None
        enrolment = await self.enrolment(me, enrolment_id)
        if enrolment.state is not EnrolmentState.ACTIVE:
            raise errors.EnrolmentNotActive(f"the enrolment is {enrolment.state.value}: no cover", field="enrolment_id")
        prog = self.programme(enrolment.programme)
        where = check_region(region)
        happened = _date(occurred_on, "occurred_on")
        text = _text(description, "description", 1000)
        pictures = await self._my_photos(me, photos or [])
        report = _text(police_report, "police_report", 32, required=False) or None
        now = self.uow.clock.now()
        past = await self._past_claims(enrolment)
        check_claim(prog, kind=what, occurred_on=happened, today=local_date(now), enrolled_on=enrolment.enrolled_on,
                    photos=pictures, police_report=report, enrolment_id=enrolment.id, past=past, now=now)
        flags = fraud_flags(prog, occurred_on=happened, enrolled_on=enrolment.enrolled_on, msisdn=me.msisdn,
                            imei=enrolment.imei, enrolment_id=enrolment.id, past=past, now=now)
        warranty, until = "not_applicable", None
        if what is ClaimKind.DAMAGE:
            warranty, until = await self._warranty(enrolment.imei, text)
        fee = (enrolment.damage_fee if what is ClaimKind.DAMAGE else enrolment.loss_fee)

        async def work(uow: UnitOfWork) -> Any:
            # Under the enrolment's row lock: two claims submitted at once cannot both be open.
            await uow.conn.execute(select(enrolments.c.id).where(enrolments.c.id == enrolment.id).with_for_update())
            open_now = (await uow.conn.execute(select(func.count()).select_from(claims).where(
                claims.c.enrolment_id == enrolment.id, claims.c.state.in_([s.value for s in OPEN])))).scalar_one()
            if open_now:
                raise errors.ClaimAlreadyOpen("finish the claim in progress first", field="enrolment_id")
            await uow.conn.execute(insert(claims).values(
                id=claim_id, enrolment_id=enrolment.id, user_id=me.user_id, msisdn=me.msisdn, imei=enrolment.imei,
                model=enrolment.model, city=enrolment.city, kind=what.value, state=ClaimState.SUBMITTED.value,
                occurred_on=happened, region=where, description=text, photos=as_json(pictures), police_report=report,
                warranty=warranty, warranty_until=until, flags=as_json(flags), fee=fee, submitted_at=uow.now,
                state_since=uow.now, old_phone_returned=False))
            await self._event(uow, claim_id, me.msisdn, None, ClaimState.SUBMITTED, "; ".join(flags))
            await uow.emit(SmsRequested(key=f"{claim_id}:submitted", to=me.msisdn, template="protection.submitted",
                                        params={"id": claim_id[-8:], "kind": what.value,
                                                "kind_zh": KIND_ZH[what.value],
                                                "model": f"{enrolment.brand} {enrolment.model}"}))
            return (await uow.conn.execute(select(claims).where(claims.c.id == claim_id))).one()

        try:
            row = await self.uow.run("protection_claim", work)
        except IntegrityError:  # the same key a moment ago
            known = await self._claim_row(claim_id)
            if known is None:
                raise
            return _claim(known, replayed=True)
        log.info("protection.claim_submitted", claim=claim_id, kind=what.value, flags=flags)
        return _claim(row)

    async def _warranty(self, imei: str, damage: str) -> tuple[str, date | None]:
        """The maker's 三包 answer: covered damage is refused (the maker repairs it free);
        no answer keeps the claim with the status unknown, asked again at approval."""
        try:
            status = await self.warranty.status(imei, damage)
        except errors.WarrantyUnavailable:
            log.warning("protection.warranty_unavailable", imei=imei[-4:])
            return "unknown", None
        if status.covered:
            until = f" until {status.until:%Y-%m-%d}" if status.until else ""
            raise errors.UnderWarranty(f"the maker repairs this free under 三包{until}: take it to the maker's "
                                       "service centre", field="kind")
        return "not_covered", status.until

    async def _past_claims(self, enrolment: Enrolment) -> list[PastClaim]:
        async def work(uow: UnitOfWork) -> list[Any]:
            return list(await uow.conn.execute(select(
                claims.c.enrolment_id, claims.c.msisdn, claims.c.imei, claims.c.state, claims.c.submitted_at).where(
                (claims.c.enrolment_id == enrolment.id) | (claims.c.msisdn == enrolment.msisdn)
                | (claims.c.imei == enrolment.imei))))

        return [PastClaim(r.enrolment_id, r.msisdn, r.imei, ClaimState(r.state), as_utc(r.submitted_at))
                for r in await self.uow.run("protection_past_claims", work)]

    async def answer_info(self, me: Principal, claim_id: str, *, note: object,
                          photos: list[str] | None = None) -> Claim:
        """Answer staff's question: the claim goes back to review with the answer (and photos)."""
        claim = await self.claim(me, claim_id)
        answer = _text(note, "note", 1000)
        pictures = await self._my_photos(me, photos or [])

        async def change(uow: UnitOfWork, row: Any) -> dict[str, Any]:
            before = json.loads(row.photos)
            merged = before + [p for p in pictures if p not in before]
            if len(merged) > MAX_PHOTOS:
                raise ValidationFailed(f"a claim has at most {MAX_PHOTOS} photos; it has {len(before)}",
                                       field="photos")
            return {"photos": as_json(merged), "description": (row.description + "\n" + answer)[:4000]}

        return await self._move(claim.id, me.msisdn, ClaimState.SUBMITTED, answer, change, expect=ClaimState.MORE_INFO)

    # ------------------------------------------------------------------ photos

    async def upload_photo(self, me: Principal, data: bytes) -> Photo:
        """Keep a claim photo of mine: a JPEG or PNG by its magic bytes, at most 5 MB, its
        file written once under its SHA-256; the same bytes again are the same photo
        (``replayed``), so a retried upload makes nothing new."""
        content_type = photo_type(data)
        sha = hashlib.sha256(data).hexdigest()
        pid = photo_id(me.user_id, sha)
        known = await self._photo_row(pid)
        if known is not None:
            return _photo(known, replayed=True)
        # the file before the row that names it: a row never points at a missing file
        await asyncio.to_thread(_keep, self.photo_dir / f"{sha}.{PHOTO_SUFFIX[content_type]}", data)

        async def work(uow: UnitOfWork) -> Any:
            await uow.conn.execute(insert(photo_table).values(id=pid, user_id=me.user_id, sha256=sha,
                                                              content_type=content_type, size=len(data),
                                                              uploaded_at=uow.now))
            return (await uow.conn.execute(select(photo_table).where(photo_table.c.id == pid))).one()

        try:
            row = await self.uow.run("protection_photo", work)
        except IntegrityError:  # the same upload a moment ago
            known = await self._photo_row(pid)
            if known is None:
                raise
            return _photo(known, replayed=True)
        log.info("protection.photo_uploaded", photo=pid, size=len(data), type=content_type)
        return _photo(row)

    async def _photo_row(self, pid: str) -> Any:
        async def work(uow: UnitOfWork) -> Any:
            return (await uow.conn.execute(select(photo_table).where(photo_table.c.id == pid))).first()

        return await self.uow.run("protection_photo_row", work)

    async def _my_photos(self, me: Principal, ids: list[str]) -> list[str]:
        """The photo ids a claim names, each an upload of mine (another subscriber's looks
        exactly like a missing one: PROTECTION_PHOTO_UNKNOWN), without repeats."""
        wanted = list(dict.fromkeys(str(p).strip() for p in ids if str(p).strip()))
        if len(wanted) > MAX_PHOTOS:
            raise ValidationFailed(f"a claim has at most {MAX_PHOTOS} photos", field="photos")
        if not wanted:
            return []

        async def work(uow: UnitOfWork) -> set[str]:
            rows = await uow.conn.execute(select(photo_table.c.id).where(
                photo_table.c.id.in_(wanted), photo_table.c.user_id == me.user_id))
            return {r.id for r in rows}

        mine = await self.uow.run("protection_my_photos", work)
        missing = [p for p in wanted if p not in mine]
        if missing:
            raise errors.PhotoUnknown(f"no photo {missing[0][:64]} of yours: upload it first", field="photos")
        return wanted

    async def photos(self, ids: list[str]) -> list[Photo]:
        """The photos of a claim, in its order (for staff: the console and the CLI)."""
        async def work(uow: UnitOfWork) -> list[Any]:
            return list(await uow.conn.execute(select(photo_table).where(photo_table.c.id.in_(ids)))) if ids else []

        found = {r.id: _photo(r) for r in await self.uow.run("protection_photos", work)}
        return [found[p] for p in ids if p in found]

    async def photo_file(self, pid: str) -> tuple[Photo, bytes]:
        """A photo and its bytes, for staff who work claims (the console checks the role)."""
        row = await self._photo_row(pid)
        if row is None:
            raise errors.PhotoUnknown(f"no photo {pid[:64]}", field="photo_id")
        photo = _photo(row)
        try:
            data = await asyncio.to_thread((self.photo_dir / photo.file_name).read_bytes)
        except FileNotFoundError:
            raise errors.PhotoUnknown(f"the file of photo {pid[:64]} is missing from the photo directory",
                                      field="photo_id") from None
        return photo, data

    async def claims_of(self, me: Principal) -> list[Claim]:
        async def work(uow: UnitOfWork) -> list[Any]:
            return list(await uow.conn.execute(select(claims).where(claims.c.user_id == me.user_id)
                                               .order_by(claims.c.submitted_at.desc())))

        return [_claim(r) for r in await self.uow.run("protection_my_claims", work)]

    async def claim(self, me: Principal, claim_id: str) -> Claim:
        """One of my claims; another subscriber's looks exactly like a missing one."""
        row = await self._claim_row(claim_id)
        if row is None or row.user_id != me.user_id:
            raise errors.ClaimNotFound("no such claim of yours", field="claim_id")
        return _claim(row)

    async def pay_fee(self, me: Principal, claim_id: str, *, idempotency_key: str, pin: str | None = None,
                      consent: bool = False) -> Claim:
        """Pay an approved claim's handling fee from my wallet. Its ledger id derives from
        the claim, so whatever key a retry sends it is paid once; a wallet that cannot pay
        is ``INSUFFICIENT_FUNDS`` and nothing changes (the claim stays approved)."""
        check_idempotency_key(idempotency_key)
        claim = await self.claim(me, claim_id)
        if claim.state is not ClaimState.APPROVED:
            if claim.fee_transfer_id is not None:
                return replace(claim, replayed=True)
            check_move(claim.state, ClaimState.FEE_PAID)
        payer = await self.wallet.authorize_payment(me, claim.fee, pin, consent=consent)
        transfer_id = handling_transfer_id(claim.id)

        async def change(uow: UnitOfWork, row: Any) -> dict[str, Any]:
            await self.wallet.count_payment(uow, payer, row.fee)
            await self._post(uow, transfer_id, (Leg.debit(me.account_code, row.fee), Leg.credit(HANDLING_INCOME,
                                                                                                row.fee)),
                             "protection.handling", f"手机保障理赔 {row.id[-8:]}", {"claim": row.id})
            return {"fee_transfer_id": transfer_id}

        return await self._move(claim.id, me.msisdn, ClaimState.FEE_PAID, f"{claim.fee} fen", change)

    # ------------------------------------------------------------------ claims: staff

    async def queue(self, states: list[str] | None = None, *, city: str | None = None,
                    limit: int = 200) -> list[Claim]:
        """Claims for the console, oldest deadline first (open ones unless states are given)."""
        wanted = states or [s.value for s in OPEN]

        async def work(uow: UnitOfWork) -> list[Any]:
            query = select(claims).where(claims.c.state.in_(wanted))
            if city:
                query = query.where(claims.c.city == city_code(city))
            return list(await uow.conn.execute(query.order_by(claims.c.state_since).limit(limit)))

        found = [_claim(r) for r in await self.uow.run("protection_queue", work)]
        far = datetime.max.replace(tzinfo=self.uow.clock.now().tzinfo)
        return sorted(found, key=lambda c: c.due_by or far)

    async def claim_for_staff(self, claim_id: str) -> tuple[Claim, list[ClaimEvent]]:
        async def work(uow: UnitOfWork) -> tuple[Any, list[Any]]:
            row = (await uow.conn.execute(select(claims).where(claims.c.id == claim_id))).first()
            events = list(await uow.conn.execute(select(claim_events).where(claim_events.c.claim_id == claim_id)
                                                 .order_by(claim_events.c.seq)))
            return row, events

        row, events = await self.uow.run("protection_claim_staff", work)
        if row is None:
            raise errors.ClaimNotFound(f"no claim {claim_id}", field="claim_id")
        return _claim(row), [ClaimEvent(as_utc(e.at), e.actor, e.from_state, e.to_state, e.note) for e in events]

    async def ask_info(self, staff: Staff, claim_id: str, *, question: object) -> Claim:
        staff.require(HANDLER_ROLE)
        ask = _text(question, "question", 500)

        async def change(uow: UnitOfWork, row: Any) -> dict[str, Any]:
            return {"reason": ask}

        return await self._move(claim_id, staff.name, ClaimState.MORE_INFO, ask, change)

    async def approve(self, staff: Staff, claim_id: str, *, note: str = "") -> Claim:
        """Approve a claim. A flagged claim's first approval sends it to second review; the
        second review is by a checker who is not the first reviewer. A damage claim whose
        warranty status is unknown is asked again first (a 三包 case is refused)."""
        claim, _ = await self.claim_for_staff(claim_id)
        if claim.state is ClaimState.SECOND_REVIEW:
            staff.require(CHECKER_ROLE)
            check_second_reviewer(claim.reviewer, staff.name)

            async def second(uow: UnitOfWork, row: Any) -> dict[str, Any]:
                return {"checker": staff.name, "decided_at": uow.now}

            return await self._move(claim_id, staff.name, ClaimState.APPROVED, note or "second review: approved",
                                    second, expect=ClaimState.SECOND_REVIEW)
        staff.require(HANDLER_ROLE)
        warranty: dict[str, Any] = {}
        if claim.kind is ClaimKind.DAMAGE and claim.warranty == "unknown" and claim.state is ClaimState.SUBMITTED:
            try:
                status = await self.warranty.status(claim.imei, claim.description)
            except errors.WarrantyUnavailable as exc:
                raise errors.WarrantyUnavailable("the maker's warranty service did not answer: the claim cannot be "
                                                 "approved before its 三包 status is known; try again") from exc
            if status.covered:
                return await self.reject(staff, claim_id, reason="the maker repairs this damage free under 三包")
            warranty = {"warranty": "not_covered", "warranty_until": status.until}
        to = ClaimState.SECOND_REVIEW if claim.flags else ClaimState.APPROVED

        async def first(uow: UnitOfWork, row: Any) -> dict[str, Any]:
            done = {"decided_at": uow.now} if to is ClaimState.APPROVED else {}
            return {"reviewer": staff.name, **warranty, **done}

        return await self._move(claim_id, staff.name, to, note or ("flags: " + ", ".join(claim.flags)
                                                                   if claim.flags else "approved"),
                                first, expect=ClaimState.SUBMITTED)

    async def reject(self, staff: Staff, claim_id: str, *, reason: object) -> Claim:
        why = _text(reason, "reason", 500)
        claim, _ = await self.claim_for_staff(claim_id)
        staff.require(CHECKER_ROLE if claim.state is ClaimState.SECOND_REVIEW else HANDLER_ROLE)

        async def change(uow: UnitOfWork, row: Any) -> dict[str, Any]:
            key = "checker" if row.state == ClaimState.SECOND_REVIEW.value else "reviewer"
            return {"reason": why, key: staff.name, "decided_at": uow.now}

        return await self._move(claim_id, staff.name, ClaimState.REJECTED, why, change)

    async def allocate(self, staff: Staff, claim_id: str, *, hall: str | None = None) -> Claim:
        """Reserve a phone of the claimed model at a business hall (the claim's city's first
        hall with one, or the one named): the stock row moves from available under a lock."""
        staff.require(HANDLER_ROLE)
        claim, _ = await self.claim_for_staff(claim_id)
        check_move(claim.state, ClaimState.ALLOCATED)
        candidates = [self.hall(hall)] if hall else [h for h in self.halls.values() if h.city == claim.city]
        if not candidates:
            raise errors.HallUnknown(f"no business hall in {claim.city}: name the hall to allocate from", field="hall")

        async def change(uow: UnitOfWork, row: Any) -> dict[str, Any]:
            for h in candidates:
                unit = (await uow.conn.execute(select(stock).where(
                    stock.c.hall == h.code, stock.c.model == row.model, stock.c.state == "available")
                    .order_by(stock.c.added_at, stock.c.id).limit(1).with_for_update(skip_locked=True))).first()
                if unit is None:
                    continue
                moved = await uow.conn.execute(update(stock).where(stock.c.id == unit.id, stock.c.state == "available")
                                               .values(state="allocated", claim_id=row.id))
                if moved.rowcount != 1:
                    continue
                return {"hall": h.code, "stock_id": unit.id, "replacement_imei": unit.imei}
            where = candidates[0].name if len(candidates) == 1 else f"the halls of {claim.city}"
            raise errors.NoStock(f"no {row.model} in stock at {where}: add stock or name another hall", field="hall")

        return await self._move(claim_id, staff.name, ClaimState.ALLOCATED, hall or "", change)

    async def ready(self, staff: Staff, claim_id: str, *, delivery: bool = False) -> Claim:
        """The replacement is ready for pick-up at the hall, or out for delivery."""
        staff.require(HANDLER_ROLE)
        to = ClaimState.OUT_FOR_DELIVERY if delivery else ClaimState.READY_FOR_PICKUP

        async def change(uow: UnitOfWork, row: Any) -> dict[str, Any]:
            return {}

        return await self._move(claim_id, staff.name, to, "delivery" if delivery else "pick-up", change)

    async def hand_over(self, staff: Staff, claim_id: str, *, old_phone_returned: bool = False) -> Claim:
        """The customer has the replacement: a damage claim only against the damaged phone;
        a lost or stolen phone's IMEI goes on the blocklist; the enrolment now covers the
        replacement (same model), in one transaction."""
        staff.require(HANDLER_ROLE)
        claim, _ = await self.claim_for_staff(claim_id)
        if claim.kind is ClaimKind.DAMAGE and not old_phone_returned:
            raise errors.OldPhoneRequired("take the damaged phone back before handing over the replacement",
                                          field="old_phone_returned")

        async def change(uow: UnitOfWork, row: Any) -> dict[str, Any]:
            await uow.conn.execute(update(stock).where(stock.c.id == row.stock_id).values(state="handed_over"))
            if row.kind != ClaimKind.DAMAGE.value:
                known = (await uow.conn.execute(select(blocklist.c.imei).where(blocklist.c.imei == row.imei))).first()
                if known is None:
                    await uow.conn.execute(insert(blocklist).values(
                        imei=row.imei, reason=f"reported {row.kind}", claim_id=row.id, added_by=staff.name,
                        added_at=uow.now))
            await uow.conn.execute(update(enrolments).where(enrolments.c.id == row.enrolment_id).values(
                imei=row.replacement_imei, live_imei=row.replacement_imei))
            return {"handed_over_at": uow.now, "old_phone_returned": bool(old_phone_returned)}

        return await self._move(claim_id, staff.name, ClaimState.HANDED_OVER,
                                "old phone returned" if old_phone_returned else "", change)

    # ------------------------------------------------------------------ one move of a claim

    async def _move(self, claim_id: str, actor: str, to: ClaimState, note: str,
                    change: Any, *, expect: ClaimState | None = None) -> Claim:
        """Move a claim to ``to`` under its row lock (the state checked there, so two staff
        acting at once move it once), with ``change``'s columns, an event and the SMS."""

        async def work(uow: UnitOfWork) -> Any:
            row = (await uow.conn.execute(select(claims).where(claims.c.id == claim_id).with_for_update())).first()
            if row is None:
                raise errors.ClaimNotFound(f"no claim {claim_id}", field="claim_id")
            state = ClaimState(row.state)
            if expect is not None and state is not expect:
                raise errors.ClaimStateInvalid(f"the claim is {state.value}, not {expect.value}", field="state",
                                               state=state.value)
            check_move(state, to)
            values = await change(uow, row)
            await uow.conn.execute(update(claims).where(claims.c.id == claim_id).values(
                state=to.value, state_since=uow.now, **values))
            seq = await self._event(uow, claim_id, actor, state, to, note)
            fresh = (await uow.conn.execute(select(claims).where(claims.c.id == claim_id))).one()
            await uow.emit(SmsRequested(key=f"{claim_id}:{seq}", to=row.msisdn,
                                        template=f"protection.{to.value}", params=self._sms_params(fresh)))
            return fresh

        row = await self.uow.run(f"protection_{to.value}", work)
        log.info("protection.claim_moved", claim=claim_id, to=to.value, actor=actor)
        return _claim(row)

    def _sms_params(self, row: Any) -> dict[str, Any]:
        hall = self.halls.get(row.hall) if row.hall else None
        return {"id": row.id[-8:], "kind": row.kind, "kind_zh": KIND_ZH[row.kind], "model": row.model,
                "amount_fen": row.fee, "reason": row.reason or "", "hall": hall.name if hall else "",
                "address": hall.address if hall else ""}

    @staticmethod
    async def _event(uow: UnitOfWork, claim_id: str, actor: str, from_state: ClaimState | None, to: ClaimState,
                     note: str) -> int:
        """Record a move (under the claim's row lock: its number is the next); returns it."""
        seq = int((await uow.conn.execute(select(func.count()).select_from(claim_events).where(
            claim_events.c.claim_id == claim_id))).scalar_one()) + 1
        await uow.conn.execute(insert(claim_events).values(
            id=new_id("pce"), claim_id=claim_id, seq=seq, at=uow.now, actor=actor[:64],
            from_state=from_state.value if from_state else None, to_state=to.value, note=note[:1000]))
        return seq

    async def _claim_row(self, claim_id: str) -> Any:
        async def work(uow: UnitOfWork) -> Any:
            return (await uow.conn.execute(select(claims).where(claims.c.id == claim_id))).first()

        return await self.uow.run("protection_claim_row", work)

    # ------------------------------------------------------------------ reports

    async def report(self, since: date | None = None, until: date | None = None) -> list[CityReport]:
        """Per city: enrolments, claims, decided and approved (the approval rate), handed over
        and the mean hours from submission to hand-over, for enrolments and claims made in
        [since, until] (Shanghai dates; all when not given)."""
        async def work(uow: UnitOfWork) -> tuple[list[Any], list[Any]]:
            e = list(await uow.conn.execute(select(enrolments.c.city, enrolments.c.enrolled_on)))
            c = list(await uow.conn.execute(select(claims.c.city, claims.c.state, claims.c.submitted_at,
                                                   claims.c.handed_over_at, claims.c.decided_at)))
            return e, c

        rows_e, rows_c = await self.uow.run("protection_report", work)

        def inside(day: date) -> bool:
            return (since is None or day >= since) and (until is None or day <= until)

        enrolled: dict[str, int] = defaultdict(int)
        for r in rows_e:
            if inside(r.enrolled_on):
                enrolled[r.city] += 1
        stats: dict[str, list[Any]] = defaultdict(lambda: [0, 0, 0, 0, []])
        for r in rows_c:
            submitted = as_utc(r.submitted_at)
            if not inside(local_date(submitted)):
                continue
            s = stats[r.city]
            s[0] += 1
            state = ClaimState(r.state)
            if state is ClaimState.REJECTED or r.decided_at is not None:
                s[1] += 1
                if state is not ClaimState.REJECTED:
                    s[2] += 1
            if r.handed_over_at is not None:
                s[3] += 1
                s[4].append((as_utc(r.handed_over_at) - submitted).total_seconds() / 3600)
        cities = sorted(set(enrolled) | set(stats))
        return [CityReport(c, enrolled.get(c, 0), stats[c][0], stats[c][1], stats[c][2], stats[c][3],
                           round(sum(stats[c][4]) / len(stats[c][4]), 1) if stats[c][4] else None)
                for c in cities]


def report_csv(rows: list[CityReport]) -> str:
    """The report as CSV (one line per city and a total), for the console's download and the CLI."""
    lines = ["city,enrolments,claims,decided,approved,approval_rate,handed_over,avg_hours_to_replacement"]
    for r in rows:
        rate = f"{r.approval_rate:.3f}" if r.approval_rate is not None else ""
        hours = f"{r.avg_hours_to_replacement}" if r.avg_hours_to_replacement is not None else ""
        lines.append(f"{r.city},{r.enrolments},{r.claims},{r.decided},{r.approved},{rate},{r.handed_over},{hours}")
    return "\n".join(lines) + "\n"

