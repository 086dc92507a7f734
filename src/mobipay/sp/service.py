"""SP use cases: the registry (SPs, services), subscriptions by SMS keyword, web or the
SP's API with smart dynamic secondary confirmation, the subscriber's controls (0000, QX n,
00000), the billing run that charges monthly fees to the phone bill (through the operator's
billing system) or the wallet, the double refund of a billing error, complaints and the
complaint rate.

Money: an SP's information fees are owed to it on ``liability:payable:sp:<code>``. A
phone-bill charge is owed to us by the billing system (``asset:receivable:sp_phone_bills``)
once it has put the line on the bill; a wallet charge moves the fee out of the wallet. Every
charge's id derives from its subscription and period, so however often a run repeats (a
crash, a lost reply) each month is charged once. A double refund takes twice the fee back
from the SP's payable.

Nothing is charged in a subscription's first 72 hours: its first fee falls due when the
waiver window closes, so a cancellation inside it has nothing to give back.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
import secrets
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import func, insert, select, update

from mobipay.kernel.clock import SHANGHAI, as_utc
from mobipay.kernel.errors import MobipayError
from mobipay.kernel.events import SmsRequested
from mobipay.kernel.ids import new_id
from mobipay.kernel.money import yuan
from mobipay.kernel.msisdn import mask_msisdn, normalize_msisdn
from mobipay.ledger.chart import wallet_account
from mobipay.ledger.model import AccountKind, AccountSpec, Leg, Transfer
from mobipay.ledger.uow import UnitOfWork, UnitOfWorkRunner
from mobipay.platform.db import dialect_insert
from mobipay.sp import errors
from mobipay.sp.billing import BillLine, PhoneBilling
from mobipay.sp.model import (
    API_WINDOW,
    CONFIRM_WINDOW,
    SERVICE_CODE,
    ChargeMethod,
    ConfirmationPolicy,
    Cycle,
    Decision,
    OrderFacts,
    ReplyOutcome,
    Service,
    Sp,
    SubState,
    complaint_rate,
    confirmation_text,
    decide_confirmation,
    double_refund,
    first_charge_due,
    is_yes,
    next_month_start,
    period_of,
    reply_outcome,
    signing_string,
    waived,
)
from mobipay.sp.tables import (
    sp_api_nonces,
    sp_charges,
    sp_complaints,
    sp_providers,
    sp_services,
    sp_subscriptions,
)
from mobipay.wallet.service import WalletService

log = structlog.get_logger(__name__)

RECEIVABLE_PHONE_BILLS = "asset:receivable:sp_phone_bills"  # fees the billing system put on phone bills


def sp_payable(code: str) -> str:
    """What the platform owes an SP: its information fees, less refunds (may go below zero)."""
    return f"liability:payable:sp:{code}"


ACCOUNTS = (AccountSpec(RECEIVABLE_PHONE_BILLS, AccountKind.ASSET, name="SP fees on phone bills, owed by billing"),)


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    msisdn: str
    sp_code: str
    service_id: str
    service_name: str
    price: int
    cycle: Cycle
    state: SubState
    method: ChargeMethod
    asked: bool
    rule: str
    reason: str
    ordered_at: datetime
    active_since: datetime | None
    ended_at: datetime | None
    next_charge_at: datetime | None


@dataclass(frozen=True, slots=True)
class Reply:
    outcome: ReplyOutcome
    subscription: Subscription | None


@dataclass(frozen=True, slots=True)
class Cancelled:
    subscription: Subscription
    waived: bool  # inside the 72 h window: never charged
    charged: int  # fen charged at cancellation (a fee that was due and not yet billed)


@dataclass(frozen=True, slots=True)
class BillingRun:
    charged: int = 0  # charges billed (wallet posted, or the billing system accepted)
    failed: int = 0  # refused: an empty wallet, a suspended number
    skipped: int = 0  # subscriptions of SPs whose port is shielded, exited SPs, services offline
    submitted: int = 0  # phone-bill lines still waiting for the billing system's answer
    amount: int = 0  # fen billed


@dataclass(frozen=True, slots=True)
class Charge:
    id: str
    subscription_id: str
    msisdn: str
    sp_code: str
    amount: int
    method: ChargeMethod
    state: str
    refunded: int
    created_at: datetime


def _sub(row: Any) -> Subscription:
    def t(v: Any) -> datetime | None:
        return as_utc(v) if v is not None else None

    return Subscription(row.id, row.msisdn, row.sp_code, row.service_id, row.name, row.price, Cycle(row.cycle),
                        SubState(row.state), ChargeMethod(row.method), bool(row.asked), row.rule, row.reason,
                        as_utc(row.ordered_at), t(row.active_since), t(row.ended_at), t(row.next_charge_at))


def _sp(row: Any) -> Sp:
    return Sp(row.code, row.name, row.licence, row.hotline, row.share_bp, as_utc(row.registered_at),
              exited=row.exited_at is not None, port_shielded=bool(row.port_shielded),
              settlement_suspended=bool(row.settlement_suspended), forced_confirmation=bool(row.forced_confirmation))


def _service(row: Any) -> Service:
    return Service(row.sp_code, row.keyword, row.name, row.price, Cycle(row.cycle), online=bool(row.online))


_SUB_COLUMNS = (sp_subscriptions, sp_services.c.name, sp_services.c.price, sp_services.c.cycle)


def _subs_query() -> Any:
    return select(*_SUB_COLUMNS).join(sp_services, sp_services.c.id == sp_subscriptions.c.service_id)


class SpService:
    def __init__(self, uow: UnitOfWorkRunner, wallet: WalletService, billing: PhoneBilling, *,
                 policy: ConfirmationPolicy | None = None, platform_number: str = "10658888") -> None:
        self.uow = uow
        self.wallet = wallet
        self.billing = billing
        self.policy = policy or ConfirmationPolicy()
        self.platform_number = platform_number
        # The SP's cards and forced confirmation in force, for the confirmation rules
        # (sp.governance plugs it in; without it only the SP's own flags count).
        self.cards: Callable[[str], Awaitable[dict[str, Any]]] | None = None

    # ------------------------------------------------------------------ registry

    async def register_sp(self, code: str, name: str, *, licence: str, hotline: str, share_bp: int, actor: str,
                          settlement_account: str = "", reason: str = "registered") -> Sp:
        """A new SP with its service code (1066 + its digits), its revenue share and the bank
        account its settlements are paid to. Its API key is made here (``api_key`` reads it
        for the SP's onboarding)."""
        if not SERVICE_CODE.fullmatch(code):
            raise errors.SpInvalid(f"an SP service code is 1066 followed by 4 to 8 digits, not {code!r}",
                                   field="code")
        if not name.strip() or not licence.strip() or not re.fullmatch(r"[0-9-]{5,20}", hotline):
            raise errors.SpInvalid("an SP needs a name, a licence number and a hotline of digits", field="hotline")
        if not 0 <= share_bp <= 10_000:
            raise errors.SpInvalid("the revenue share is in basis points, 0 to 10000", field="share_bp")

        async def work(uow: UnitOfWork) -> Any:
            if (await uow.conn.execute(select(sp_providers.c.code).where(sp_providers.c.code == code))).first():
                raise errors.SpExists(f"SP {code} is already registered", field="code")
            await uow.conn.execute(insert(sp_providers).values(
                code=code, name=name.strip(), licence=licence.strip(), hotline=hotline, share_bp=share_bp,
                registered_at=uow.now, settlement_account=settlement_account.strip(),
                api_secret=secrets.token_hex(32)))
            await uow.open_account(AccountSpec(sp_payable(code), AccountKind.LIABILITY, name=f"Payable to SP {code}"))
            for spec in ACCOUNTS:  # the platform's own (opening again is a no-op)
                await uow.open_account(spec)
            await uow.audit(actor=actor, action="sp.register", target=code, reason=reason,
                            after={"name": name, "licence": licence, "share_bp": share_bp})
            return (await uow.conn.execute(select(sp_providers).where(sp_providers.c.code == code))).one()

        return _sp(await self.uow.run("sp_register", work))

    async def add_service(self, sp_code: str, keyword: str, name: str, *, price: int, cycle: Cycle,
                          actor: str) -> Service:
        keyword = unicodedata.normalize("NFKC", keyword).strip().upper()
        if not re.fullmatch(r"[A-Z0-9]{1,16}", keyword) or keyword in ("0000", "00000") or keyword.startswith("QX"):
            raise errors.SpInvalid(f"a keyword is 1 to 16 letters or digits, not a control word ({keyword!r})",
                                   field="keyword")
        if not isinstance(price, int) or isinstance(price, bool) or not 1 <= price <= 3_000:
            raise errors.SpInvalid("a service's price is whole fen from 1 to 3000 (30 CNY)", field="price")

        async def work(uow: UnitOfWork) -> Service:
            await self._sp_row(uow, sp_code)
            sid = f"{sp_code}:{keyword}"
            if (await uow.conn.execute(select(sp_services.c.id).where(sp_services.c.id == sid))).first():
                raise errors.SpExists(f"SP {sp_code} already has the keyword {keyword}", field="keyword")
            await uow.conn.execute(insert(sp_services).values(
                id=sid, sp_code=sp_code, keyword=keyword, name=name.strip(), price=price, cycle=cycle.value))
            await uow.audit(actor=actor, action="sp.service_add", target=sid, reason="new service",
                            after={"name": name, "price": price, "cycle": cycle.value})
            return Service(sp_code, keyword, name.strip(), price, cycle)

        return await self.uow.run("sp_service_add", work)

    async def sp(self, code: str) -> Sp:
        async def work(uow: UnitOfWork) -> Sp:
            return _sp(await self._sp_row(uow, code))

        return await self.uow.run("sp_read", work)

    async def api_key(self, sp_code: str) -> str:
        """The SP's HMAC key for its API calls (given to the SP at onboarding)."""

        async def work(uow: UnitOfWork) -> str:
            return str((await self._sp_row(uow, sp_code)).api_secret)

        return await self.uow.run("sp_api_key", work)

    async def authenticate(self, params: dict[str, Any]) -> str:
        """The SP behind a signed API call (``sp_code``, ``timestamp`` in Unix seconds, a fresh
        ``nonce``, ``sign`` = hex HMAC-SHA256 of the signing string under the SP's key), or
        ``SP_BAD_SIGNATURE``; the nonce is kept so a replay is refused."""
        code, ts, nonce, sign = (str(params.get(k, "")) for k in ("sp_code", "timestamp", "nonce", "sign"))
        if not (ts.isdigit() and 8 <= len(nonce) <= 64 and sign):
            raise errors.SpBadSignature("sign the call: sp_code, timestamp, nonce (8-64 characters) and sign",
                                        field="sign")
        now = self.uow.clock.now()
        if abs(now.timestamp() - int(ts)) > API_WINDOW.total_seconds():
            raise errors.SpBadSignature("the timestamp is more than 5 minutes from ours", field="timestamp")

        async def work(uow: UnitOfWork) -> str:
            row = (await uow.conn.execute(select(sp_providers.c.api_secret).where(
                sp_providers.c.code == code))).first()
            expected = hmac.new(row.api_secret.encode(), signing_string(params).encode(), hashlib.sha256).hexdigest() \
                if row is not None and row.api_secret else ""
            given = sign.lower().encode() if sign.isascii() else b""
            if not expected or not hmac.compare_digest(expected.encode(), given):
                raise errors.SpBadSignature("the signature does not verify with the SP's key", field="sign")
            ins = dialect_insert(uow.conn.dialect.name, sp_api_nonces)
            done = await uow.conn.execute(ins.values(sp_code=code, nonce=nonce, at=uow.now)
                                          .on_conflict_do_nothing(index_elements=["sp_code", "nonce"]))
            if not done.rowcount:
                raise errors.SpBadSignature("this nonce was used before: a replayed call", field="nonce")
            return code

        return await self.uow.run("sp_authenticate", work)

    async def services(self, sp_code: str) -> list[Service]:
        async def work(uow: UnitOfWork) -> list[Service]:
            rows = await uow.conn.execute(select(sp_services).where(sp_services.c.sp_code == sp_code)
                                          .order_by(sp_services.c.keyword))
            return [_service(r) for r in rows]

        return await self.uow.run("sp_services", work)

    async def _sp_row(self, uow: UnitOfWork, code: str) -> Any:
        row = (await uow.conn.execute(select(sp_providers).where(sp_providers.c.code == code))).first()
        if row is None:
            raise errors.SpNotFound(f"no SP with the service code {code}", field="sp_code")
        return row

    # ------------------------------------------------------------------ subscribing

    async def subscribe(self, raw_msisdn: str, sp_code: str, keyword: str, *, channel: str = "sms",
                        method: ChargeMethod = ChargeMethod.PHONE_BILL) -> Subscription:
        """An order for a service: asked to confirm (the SMS names SP, service, price, cycle
        and hotline) or, when no rule asks, active at once with a notice; the decision and
        its reason are kept with the subscription."""
        msisdn = normalize_msisdn(raw_msisdn)
        keyword = unicodedata.normalize("NFKC", keyword).strip().upper()
        if method is ChargeMethod.WALLET:
            await self.wallet.user_by_msisdn(msisdn)  # a wallet charge needs a wallet: USER_NOT_FOUND
        extra = await self._cards(sp_code)

        async def work(uow: UnitOfWork) -> Subscription:
            sp = _sp(await self._sp_row(uow, sp_code))
            sp = dataclasses.replace(sp, **extra)
            row = (await uow.conn.execute(select(sp_services).where(
                sp_services.c.sp_code == sp_code, sp_services.c.keyword == keyword))).first()
            if row is None:
                raise errors.SpServiceNotFound(f"{sp.name} ({sp_code}) has no service {keyword!r}", field="keyword")
            service = _service(row)
            if not sp.takes_orders:
                raise errors.SpPortClosed(f"{sp.name} ({sp_code}) takes no orders now ({sp.state.value})")
            if not service.online:
                raise errors.SpServiceOffline(f"{service.name} of {sp.name} has been taken offline")
            open_ = (await uow.conn.execute(_subs_query().where(
                sp_subscriptions.c.msisdn == msisdn, sp_subscriptions.c.service_id == row.id,
                sp_subscriptions.c.state.in_([SubState.ACTIVE.value, SubState.AWAITING.value])))).first()
            if open_ is not None and open_.state == SubState.ACTIVE.value:
                raise errors.SpAlreadySubscribed(f"{mask_msisdn(msisdn)} already subscribes to {service.name}")
            if open_ is not None and uow.now < as_utc(open_.ordered_at) + CONFIRM_WINDOW:
                await self._ask(uow, msisdn, sp, service, open_.id)  # asked again: the same order
                return _sub(open_)
            if open_ is not None:
                await self._lapse(uow, [open_.id])  # its window passed: a new order replaces it
            decision = decide_confirmation(await self._facts(uow, msisdn, sp, service), self.policy)
            return await self._order(uow, msisdn, sp, service, row.id, decision, channel, method)

        return await self.uow.run("sp_subscribe", work)

    async def _cards(self, sp_code: str) -> dict[str, Any]:
        """The cards in force (read by governance, when it is plugged in)."""
        return {} if self.cards is None else await self.cards(sp_code)

    async def _facts(self, uow: UnitOfWork, msisdn: str, sp: Sp, service: Service) -> OrderFacts:
        now = uow.now
        recent = await uow.conn.scalar(select(func.count()).select_from(sp_subscriptions).where(
            sp_subscriptions.c.msisdn == msisdn, sp_subscriptions.c.ordered_at > now - self.policy.burst_window))
        used = await uow.conn.scalar(select(func.count()).select_from(sp_subscriptions).where(
            sp_subscriptions.c.msisdn == msisdn, sp_subscriptions.c.active_since.is_not(None)))
        start, end = self.policy.night_hours
        night = 0
        if start <= now.astimezone(SHANGHAI).hour < end:
            night = int(await uow.conn.scalar(select(func.count()).select_from(sp_subscriptions).where(
                sp_subscriptions.c.sp_code == sp.code, sp_subscriptions.c.ordered_at > now - timedelta(hours=1)))
                or 0) + 1
        return OrderFacts(sp, service, now, int(recent or 0) + 1, bool(used), night)

    async def _order(self, uow: UnitOfWork, msisdn: str, sp: Sp, service: Service, service_id: str,
                     decision: Decision, channel: str, method: ChargeMethod) -> Subscription:
        sub_id = new_id("sps")
        values: dict[str, Any] = {
            "id": sub_id, "msisdn": msisdn, "sp_code": sp.code, "service_id": service_id, "method": method.value,
            "channel": channel, "asked": decision.ask, "rule": decision.rule, "reason": decision.reason[:120],
            "ordered_at": uow.now}
        if decision.ask:
            values["state"] = SubState.AWAITING.value
        else:
            values |= {"state": SubState.ACTIVE.value, "active_since": uow.now,
                       "next_charge_at": _first_due(service.cycle, uow.now)}
        await uow.conn.execute(insert(sp_subscriptions).values(**values))
        if decision.ask:
            await self._ask(uow, msisdn, sp, service, sub_id)
        else:
            await self._notice(uow, msisdn, sp, service, sub_id)
        log.info("sp.ordered", sp=sp.code, service=service.keyword, asked=decision.ask, rule=decision.rule)
        return _sub((await uow.conn.execute(_subs_query().where(sp_subscriptions.c.id == sub_id))).one())

    async def _ask(self, uow: UnitOfWork, msisdn: str, sp: Sp, service: Service, sub_id: str) -> None:
        await uow.emit(SmsRequested(key=f"sp-ask:{sub_id}:{uow.now.timestamp():.0f}", to=msisdn,
                                    template="sms.reply", params={"text": confirmation_text(sp, service)}))

    async def _notice(self, uow: UnitOfWork, msisdn: str, sp: Sp, service: Service, sub_id: str) -> None:
        text = (f"您已订购{sp.name}的“{service.name}”，资费{service.price_words}，客服{sp.hotline}。"
                f"72小时内退订不收费，发0000查询、QX序号退订。You subscribed to {service.name} of {sp.name}; "
                f"cancel within 72 hours free: send 0000 to list, QX and the number to cancel.")
        await uow.emit(SmsRequested(key=f"sp-notice:{sub_id}", to=msisdn, template="sms.reply",
                                    params={"text": text}))

    async def reply(self, raw_msisdn: str, at_sp: str | None = None) -> Reply:
        """The subscriber's "是"/"Y": confirms their newest order waiting in its window. Late,
        it lapses unbilled; a second "是" changes nothing; a number with no order waiting
        (another phone replying) confirms nothing."""
        msisdn = normalize_msisdn(raw_msisdn)

        async def work(uow: UnitOfWork) -> Reply:
            q = _subs_query().where(sp_subscriptions.c.msisdn == msisdn,
                                    sp_subscriptions.c.ordered_at > uow.now - 2 * CONFIRM_WINDOW)
            if at_sp is not None:
                q = q.where(sp_subscriptions.c.sp_code == at_sp)
            rows = list(await uow.conn.execute(q.order_by(sp_subscriptions.c.ordered_at.desc())))
            waiting = [r for r in rows if r.state == SubState.AWAITING.value]
            for row in waiting:
                if reply_outcome(SubState.AWAITING, as_utc(row.ordered_at), uow.now) is ReplyOutcome.CONFIRMED:
                    await uow.conn.execute(update(sp_subscriptions).where(
                        sp_subscriptions.c.id == row.id, sp_subscriptions.c.state == SubState.AWAITING.value).values(
                        state=SubState.ACTIVE.value, active_since=uow.now,
                        next_charge_at=_first_due(Cycle(row.cycle), uow.now)))
                    sub = _sub((await uow.conn.execute(_subs_query().where(sp_subscriptions.c.id == row.id))).one())
                    return Reply(ReplyOutcome.CONFIRMED, sub)
            if waiting:
                await self._lapse(uow, [r.id for r in waiting])
                return Reply(ReplyOutcome.LATE, _sub(waiting[0]))
            confirmed = [r for r in rows if r.asked and r.active_since is not None
                         and uow.now - as_utc(r.active_since) < CONFIRM_WINDOW]
            if confirmed:
                return Reply(ReplyOutcome.ALREADY, _sub(confirmed[0]))
            lapsed = [r for r in rows if r.state == SubState.LAPSED.value]
            if lapsed:
                return Reply(ReplyOutcome.LATE, _sub(lapsed[0]))
            return Reply(ReplyOutcome.NOTHING, None)

        return await self.uow.run("sp_reply", work)

    async def _lapse(self, uow: UnitOfWork, ids: Sequence[str]) -> int:
        done = await uow.conn.execute(update(sp_subscriptions).where(
            sp_subscriptions.c.id.in_(list(ids)), sp_subscriptions.c.state == SubState.AWAITING.value).values(
            state=SubState.LAPSED.value, ended_at=uow.now))
        return int(done.rowcount or 0)

    async def lapse_due(self, limit: int = 1000) -> int:
        """The worker's sweep: orders past their 24 h window lapse, unbilled."""

        async def work(uow: UnitOfWork) -> int:
            ids = (await uow.conn.execute(select(sp_subscriptions.c.id).where(
                sp_subscriptions.c.state == SubState.AWAITING.value,
                sp_subscriptions.c.ordered_at <= uow.now - CONFIRM_WINDOW).limit(limit))).scalars().all()
            return await self._lapse(uow, ids) if ids else 0

        return await self.uow.run("sp_lapse", work)

    # ------------------------------------------------------------------ subscriber controls

    async def subscriptions(self, raw_msisdn: str, sp_code: str | None = None) -> list[Subscription]:
        """What "0000" lists: the number's active subscriptions (of one SP, or all), oldest first;
        QX n cancels the n-th of this list."""
        msisdn = normalize_msisdn(raw_msisdn)

        async def work(uow: UnitOfWork) -> list[Subscription]:
            q = _subs_query().where(sp_subscriptions.c.msisdn == msisdn,
                                    sp_subscriptions.c.state == SubState.ACTIVE.value)
            if sp_code is not None:
                q = q.where(sp_subscriptions.c.sp_code == sp_code)
            rows = await uow.conn.execute(q.order_by(sp_subscriptions.c.ordered_at, sp_subscriptions.c.id))
            return [_sub(r) for r in rows]

        return await self.uow.run("sp_list", work)

    async def cancel(self, raw_msisdn: str, position: int, sp_code: str | None = None) -> Cancelled:
        """QX n: cancel the n-th subscription "0000" lists."""
        mine = await self.subscriptions(raw_msisdn, sp_code)
        if not 1 <= position <= len(mine):
            raise errors.SpSubscriptionNotFound(
                f"没有第{position}项订购，发0000查看。There is no subscription {position}; send 0000 for the list.",
                field="position")
        return await self.cancel_subscription(mine[position - 1].id, raw_msisdn)

    async def cancel_all(self, raw_msisdn: str, sp_code: str | None = None) -> list[Cancelled]:
        """00000: cancel every subscription (of this SP, or all of Monternet)."""
        return [await self.cancel_subscription(s.id, raw_msisdn) for s in await self.subscriptions(raw_msisdn, sp_code)]

    async def cancel_subscription(self, sub_id: str, raw_msisdn: str) -> Cancelled:
        """Cancel one (web, SMS, API). Inside the 72 h window nothing was or will be charged;
        after it, a fee that fell due and was not billed yet is billed now, once."""
        msisdn = normalize_msisdn(raw_msisdn)

        async def work(uow: UnitOfWork) -> tuple[Cancelled, list[str]]:
            row = (await uow.conn.execute(_subs_query().where(sp_subscriptions.c.id == sub_id))).first()
            if row is None or row.msisdn != msisdn:
                raise errors.SpSubscriptionNotFound("no such subscription for this number", field="subscription_id")
            sub = _sub(row)
            if sub.state not in (SubState.ACTIVE, SubState.AWAITING):
                raise errors.SpSubscriptionNotFound(f"this subscription is {sub.state.value} already",
                                                    field="subscription_id")
            free = sub.active_since is None or waived(sub.active_since, uow.now)
            pending: list[str] = []
            charged = 0
            if not free and sub.next_charge_at is not None and sub.next_charge_at < uow.now:
                done, pending = await self._charge_due(uow, [row])
                charged = done.amount
            await uow.conn.execute(update(sp_subscriptions).where(sp_subscriptions.c.id == sub_id).values(
                state=SubState.CANCELLED.value, ended_at=uow.now, next_charge_at=None))
            after = _sub((await uow.conn.execute(_subs_query().where(sp_subscriptions.c.id == sub_id))).one())
            return Cancelled(after, free, charged), pending

        cancelled, pending = await self.uow.run("sp_cancel", work)
        if pending:
            sent = await self._submit(pending)
            cancelled = dataclasses.replace(cancelled, charged=cancelled.charged + sent.amount)
        return cancelled

    # ------------------------------------------------------------------ billing

    async def bill_due(self, limit: int = 1000) -> BillingRun:
        """One chunk of the billing run: fees due now, charged once each (wallet at once,
        phone bill through the billing system), then every phone-bill line still waiting.
        Call it until it returns nothing charged, failed or skipped."""

        async def work(uow: UnitOfWork) -> tuple[BillingRun, list[str]]:
            rows = list(await uow.conn.execute(_subs_query().where(
                sp_subscriptions.c.state == SubState.ACTIVE.value,
                sp_subscriptions.c.next_charge_at < uow.now).order_by(sp_subscriptions.c.next_charge_at).limit(limit)))
            return await self._charge_due(uow, rows)

        run, pending = await self.uow.run("sp_bill", work)
        sent = await self._submit(pending)
        return BillingRun(run.charged + sent.charged, run.failed + sent.failed, run.skipped, sent.submitted,
                          run.amount + sent.amount)

    async def bill_all(self, chunk: int = 1000) -> BillingRun:
        """The whole billing run (the worker's round): chunks until nothing is due."""
        total = BillingRun()
        while True:
            run = await self.bill_due(chunk)
            total = BillingRun(total.charged + run.charged, total.failed + run.failed, total.skipped + run.skipped,
                               run.submitted, total.amount + run.amount)
            if not (run.charged or run.failed or run.skipped) or run.submitted:
                return total

    async def _charge_due(self, uow: UnitOfWork, rows: Sequence[Any]) -> tuple[BillingRun, list[str]]:
        """In the caller's transaction: a charge row per due subscription, the wallet ones
        posted in one batch; the phone-bill ones are returned for the billing system."""
        sps = {r.code: r for r in await uow.conn.execute(select(sp_providers).where(
            sp_providers.c.code.in_({r.sp_code for r in rows})))}
        online = {r.id: bool(r.online) for r in await uow.conn.execute(select(
            sp_services.c.id, sp_services.c.online).where(sp_services.c.id.in_({r.service_id for r in rows})))}
        skipped, charges, transfers, phone = 0, [], [], []
        moves: dict[datetime, list[str]] = {}  # the next due time -> subscriptions (one UPDATE each)
        for r in rows:
            message = isinstance(r, _DueMessage)
            due = uow.now if message else as_utc(r.next_charge_at)
            if not message:
                moves.setdefault(next_month_start(due), []).append(r.id)
            sp = _sp(sps[r.sp_code])
            if not sp.takes_orders or not online.get(r.service_id, False):
                skipped += 1
                continue
            charge_id = r.charge_id if message else f"spc:{r.id}:{period_of(due)}"
            charges.append({"id": charge_id, "subscription_id": r.id, "msisdn": r.msisdn, "sp_code": r.sp_code,
                            "service_id": r.service_id, "amount": r.price, "method": r.method, "state": "submitted",
                            "created_at": uow.now})
            if r.method == ChargeMethod.WALLET.value:
                transfers.append(Transfer(charge_id, (Leg.debit(wallet_account(r.msisdn).code, r.price),
                                                      Leg.credit(sp_payable(r.sp_code), r.price)),
                                          "sp.charge", reference=f"{sp.name} {r.name} {period_of(due)}",
                                          metadata={"sp": r.sp_code, "service": r.service_id}))
            else:
                phone.append(charge_id)
        for nxt, ids in moves.items():
            await uow.conn.execute(update(sp_subscriptions).where(sp_subscriptions.c.id.in_(ids)).values(
                next_charge_at=nxt))
        if charges:
            ins = dialect_insert(uow.conn.dialect.name, sp_charges)
            await uow.conn.execute(ins.on_conflict_do_nothing(index_elements=["id"]), charges)
        charged = failed = amount = 0
        results = await uow.post(transfers) if transfers else []
        billed = [t.id for r, t in zip(results, transfers, strict=True) if r.ok]
        if billed:
            await uow.conn.execute(update(sp_charges).where(sp_charges.c.id.in_(billed),
                                                            sp_charges.c.state == "submitted").values(state="billed"))
        for result, t in zip(results, transfers, strict=True):
            if not result.ok:
                await uow.conn.execute(update(sp_charges).where(
                    sp_charges.c.id == t.id, sp_charges.c.state == "submitted").values(
                    state="failed", detail=result.error.code if result.error else ""))
        charged, failed = len(billed), len(transfers) - len(billed)
        amount = sum(t.legs[0].amount for r, t in zip(results, transfers, strict=True) if r.ok)
        return BillingRun(charged, failed, skipped, 0, amount), phone

    async def _submit(self, ids: Sequence[str] = (), limit: int = 1000) -> BillingRun:
        """Send phone-bill lines to the billing system (these, or every one still waiting),
        then post what it charged. No trustworthy answer: they stay submitted for next time."""

        async def load(uow: UnitOfWork) -> list[Any]:
            q = select(sp_charges, sp_services.c.name).join(
                sp_services, sp_services.c.id == sp_charges.c.service_id).where(
                sp_charges.c.state == "submitted", sp_charges.c.method == ChargeMethod.PHONE_BILL.value)
            q = q.where(sp_charges.c.id.in_(list(ids))) if ids else q.limit(limit)
            return list(await uow.conn.execute(q))

        rows = await self.uow.run("sp_bill_load", load)
        if not rows:
            return BillingRun()
        answers = await self.billing.charge([BillLine(r.id, r.msisdn, r.amount, r.sp_code, r.name) for r in rows])
        if answers is None:
            log.warning("sp.billing_unanswered", lines=len(rows))
            return BillingRun(submitted=len(rows))
        by_id = {r.id: r for r in rows}

        async def post(uow: UnitOfWork) -> BillingRun:
            ok = [a for a in answers if a.charged and a.id in by_id]
            transfers = []
            for a in ok:  # the charge row names the subscription, number and service: no metadata needed
                r = by_id[a.id]
                transfers.append(Transfer(a.id, (Leg.debit(RECEIVABLE_PHONE_BILLS, r.amount),
                                                 Leg.credit(sp_payable(r.sp_code), r.amount)),
                                          "sp.charge", reference=f"{r.sp_code} {r.name} on the phone bill"))
            results = await uow.post(transfers) if transfers else []
            for r in results:
                if r.error is not None:
                    raise r.error
            billed = [a.id for a in ok]
            if billed:
                await uow.conn.execute(update(sp_charges).where(
                    sp_charges.c.id.in_(billed), sp_charges.c.state == "submitted").values(state="billed"))
            refused: dict[str, list[str]] = {}
            for a in answers:
                if a.id in by_id and not a.charged:
                    refused.setdefault(a.reason[:120], []).append(a.id)
            for reason, ids in refused.items():
                await uow.conn.execute(update(sp_charges).where(
                    sp_charges.c.id.in_(ids), sp_charges.c.state == "submitted").values(state="failed", detail=reason))
            return BillingRun(charged=len(ok), failed=len(answers) - len(ok),
                              amount=sum(by_id[a.id].amount for a in ok))

        return await self.uow.run("sp_bill_post", post)

    async def charge_message(self, sp_code: str, raw_msisdn: str, keyword: str, message_id: str) -> Charge | None:
        """A message of a per-message service delivered to a subscriber (the SP reports it):
        charged once per message id, to the phone bill or the wallet. Inside the subscription's
        72-hour window a message is free (None): a subscription the subscriber may still cancel
        free is never charged."""
        msisdn = normalize_msisdn(raw_msisdn)
        keyword = unicodedata.normalize("NFKC", keyword).strip().upper()
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", message_id or ""):
            raise errors.SpInvalid("message_id is 1 to 32 letters, digits, _ or -", field="message_id")

        async def work(uow: UnitOfWork) -> tuple[Charge | None, bool]:
            sp = _sp(await self._sp_row(uow, sp_code))
            row = (await uow.conn.execute(_subs_query().where(
                sp_subscriptions.c.msisdn == msisdn, sp_subscriptions.c.sp_code == sp_code,
                sp_services.c.keyword == keyword, sp_subscriptions.c.state == SubState.ACTIVE.value))).first()
            if row is None:
                raise errors.SpSubscriptionNotFound(f"{mask_msisdn(msisdn)} does not subscribe to {keyword}",
                                                    field="msisdn")
            if row.cycle != Cycle.PER_MESSAGE.value:
                raise errors.SpInvalid(f"{row.name} is charged monthly, not per message", field="keyword")
            charge_id = f"spc:{row.id}:m:{message_id}"
            known = (await uow.conn.execute(select(sp_charges).where(sp_charges.c.id == charge_id))).first()
            if known is not None:
                return _charge(known), False  # reported again: charged once
            if not sp.takes_orders:
                raise errors.SpPortClosed(f"{sp.name} ({sp_code}) takes no orders now ({sp.state.value})")
            if uow.now <= first_charge_due(as_utc(row.active_since)):
                return None, False
            _, pending = await self._charge_due(uow, [_DueMessage(row, charge_id)])
            ch = (await uow.conn.execute(select(sp_charges).where(sp_charges.c.id == charge_id))).first()
            if ch is None:  # skipped: the service was taken offline
                raise errors.SpServiceOffline(f"{row.name} of {sp.name} has been taken offline")
            return _charge(ch), bool(pending)

        charge, submit = await self.uow.run("sp_message", work)
        if submit and charge is not None:
            await self._submit([charge.id])
            return (await self.charges_by_id([charge.id]))[0]
        return charge

    async def charges_by_id(self, ids: Sequence[str]) -> list[Charge]:
        async def work(uow: UnitOfWork) -> list[Charge]:
            return [_charge(r) for r in await uow.conn.execute(select(sp_charges).where(sp_charges.c.id.in_(list(ids)))
                                                                 .order_by(sp_charges.c.id))]

        return await self.uow.run("sp_charges_by_id", work)

    async def charges(self, raw_msisdn: str) -> list[Charge]:
        msisdn = normalize_msisdn(raw_msisdn)

        async def work(uow: UnitOfWork) -> list[Charge]:
            rows = await uow.conn.execute(select(sp_charges).where(sp_charges.c.msisdn == msisdn)
                                          .order_by(sp_charges.c.created_at, sp_charges.c.id))
            return [_charge(r) for r in rows]

        return await self.uow.run("sp_charges", work)

    async def refund_double(self, charge_id: str, *, actor: str, reason: str) -> Charge:
        """A confirmed billing error: twice the fee back to the subscriber, taken from the
        SP's payable; once per charge (its refund id derives from the charge)."""
        if not reason.strip():
            raise errors.SpInvalid("a refund needs the reason (the confirmed billing error)", field="reason")

        async def load(uow: UnitOfWork) -> Any:
            row = (await uow.conn.execute(select(sp_charges).where(sp_charges.c.id == charge_id))).first()
            if row is None:
                raise errors.SpChargeNotFound(f"no charge {charge_id}", field="charge_id")
            if row.state != "billed":
                raise errors.SpRefundRefused(f"charge {charge_id} is {row.state}: only a billed charge is refunded",
                                             field="charge_id")
            return row

        row = await self.uow.run("sp_refund_load", load)
        back = double_refund(row.amount)
        refund_id = f"spr:{charge_id}"
        if row.method == ChargeMethod.PHONE_BILL.value:
            answer = await self.billing.refund(BillLine(refund_id, row.msisdn, back, row.sp_code, row.service_id))
            if answer is None:
                raise errors.SpBillingUnavailable("the billing system did not confirm the refund; try again")
            legs = (Leg.debit(sp_payable(row.sp_code), back), Leg.credit(RECEIVABLE_PHONE_BILLS, back))
        else:
            legs = (Leg.debit(sp_payable(row.sp_code), back), Leg.credit(wallet_account(row.msisdn).code, back))

        async def work(uow: UnitOfWork) -> Charge:
            done = await uow.conn.execute(update(sp_charges).where(
                sp_charges.c.id == charge_id, sp_charges.c.state == "billed").values(
                state="refunded", refunded=back, refunded_at=uow.now, detail=reason[:120]))
            if not done.rowcount:
                raise errors.SpRefundRefused(f"charge {charge_id} was refunded already", field="charge_id")
            [result] = await uow.post([Transfer(refund_id, legs, "sp.double_refund",
                                                reference=f"double refund of {charge_id}",
                                                metadata={"charge": charge_id, "reason": reason[:200]})])
            if result.error is not None:
                raise result.error
            await uow.audit(actor=actor, action="sp.double_refund", target=charge_id, reason=reason,
                            before={"state": "billed"}, after={"state": "refunded", "refunded": back})
            words = f"您的SP计费差错已双倍返还{yuan(back)}元。A billing error was refunded double: {yuan(back)} CNY."
            await uow.emit(SmsRequested(key=f"sp-refund:{charge_id}", to=row.msisdn, template="sms.reply",
                                        params={"text": words}))
            return _charge((await uow.conn.execute(select(sp_charges).where(sp_charges.c.id == charge_id))).one())

        return await self.uow.run("sp_refund", work)

    # ------------------------------------------------------------------ complaints

    async def complain(self, raw_msisdn: str, sp_code: str, text: str, *, source: str = "sms") -> str:
        """A complaint against an SP (SMS "投诉", the web, the hotline staff)."""
        msisdn = normalize_msisdn(raw_msisdn)
        if source not in ("sms", "web", "hotline"):
            raise errors.SpInvalid("a complaint comes by sms, web or hotline", field="source")

        async def work(uow: UnitOfWork) -> str:
            await self._sp_row(uow, sp_code)
            cid = new_id("spq")
            await uow.conn.execute(insert(sp_complaints).values(id=cid, sp_code=sp_code, msisdn=msisdn, source=source,
                                                                text=text.strip()[:1000], created_at=uow.now))
            return cid

        return await self.uow.run("sp_complain", work)

    async def complaint_rate(self, sp_code: str, period: str) -> tuple[int, int, float]:
        """(complaints, subscribers, rate per 10,000) for a month (YYYY-MM, Shanghai):
        subscribers are the numbers with a subscription active at some time in it."""
        year, month = (int(p) for p in period.split("-"))
        start = datetime(year, month, 1, tzinfo=SHANGHAI).astimezone(UTC)
        end = next_month_start(start)

        async def work(uow: UnitOfWork) -> tuple[int, int, float]:
            n = await uow.conn.scalar(select(func.count()).select_from(sp_complaints).where(
                sp_complaints.c.sp_code == sp_code, sp_complaints.c.created_at >= start,
                sp_complaints.c.created_at < end))
            subs = await uow.conn.scalar(select(func.count(func.distinct(sp_subscriptions.c.msisdn))).where(
                sp_subscriptions.c.sp_code == sp_code, sp_subscriptions.c.active_since.is_not(None),
                sp_subscriptions.c.active_since < end,
                sp_subscriptions.c.ended_at.is_(None) | (sp_subscriptions.c.ended_at >= start)))
            rate = complaint_rate(int(n or 0), int(subs or 0))
            return int(n or 0), int(subs or 0), round(float(rate), 2)

        return await self.uow.run("sp_complaint_rate", work)

    async def complaints(self, sp_code: str, limit: int = 50) -> list[dict[str, Any]]:
        """The SP's latest complaints (numbers masked), for the console."""

        async def work(uow: UnitOfWork) -> list[dict[str, Any]]:
            rows = await uow.conn.execute(select(sp_complaints).where(sp_complaints.c.sp_code == sp_code)
                                          .order_by(sp_complaints.c.created_at.desc()).limit(limit))
            return [{"id": r.id, "msisdn": mask_msisdn(r.msisdn), "source": r.source, "text": r.text,
                     "created_at": as_utc(r.created_at)} for r in rows]

        return await self.uow.run("sp_complaints", work)

    async def trend(self, sp_code: str, months: int = 6) -> list[dict[str, Any]]:
        """Month by month up to this one: complaints, subscribers, the rate per 10,000 and the
        fees billed, for the console's trend chart."""
        local = self.uow.clock.now().astimezone(SHANGHAI)
        periods = []
        year, month = local.year, local.month
        for _ in range(months):
            periods.append(f"{year:04d}-{month:02d}")
            year, month = (year - 1, 12) if month == 1 else (year, month - 1)
        out = []
        for period in reversed(periods):
            n, subs, rate = await self.complaint_rate(sp_code, period)
            start = datetime(int(period[:4]), int(period[5:]), 1, tzinfo=SHANGHAI).astimezone(UTC)

            async def fees(uow: UnitOfWork, start: datetime = start) -> int:
                return int(await uow.conn.scalar(select(func.coalesce(func.sum(sp_charges.c.amount), 0)).where(
                    sp_charges.c.sp_code == sp_code, sp_charges.c.created_at >= start,
                    sp_charges.c.created_at < next_month_start(start),
                    sp_charges.c.state.in_(("billed", "refunded")))) or 0)

            out.append({"period": period, "complaints": n, "subscribers": subs, "rate": rate,
                        "fees": await self.uow.run("sp_fees", fees)})
        return out

    async def all_sps(self) -> list[Sp]:
        async def work(uow: UnitOfWork) -> list[Sp]:
            return [_sp(r) for r in await uow.conn.execute(select(sp_providers).order_by(sp_providers.c.code))]

        return await self.uow.run("sp_all", work)

    # ------------------------------------------------------------------ SMS

    async def sms(self, raw_sender: str, receiver: str, text: str) -> str | None:
        """An SMS to an SP's service code or to the platform number, answered in words ("" when
        the answer is already on its way: the confirmation SMS); None when it is not for SP
        services (the SMS channel's own commands go on)."""
        to = receiver.strip().lstrip("+")
        at_sp = await self._sp_of(to) if SERVICE_CODE.match(to) else None
        if at_sp is None and to != self.platform_number:
            return None
        clean = " ".join(unicodedata.normalize("NFKC", text).upper().split())
        try:
            return await self._sms(raw_sender, at_sp, to, clean, text)
        except MobipayError as exc:
            return exc.detail

    async def _sms(self, sender: str, at_sp: str | None, to: str, clean: str, text: str) -> str | None:
        if clean == "0000":
            mine = await self.subscriptions(sender, at_sp)
            if not mine:
                return "您没有订购SP业务。You have no SP subscriptions."
            rows = [f"{i}.{s.service_name}({s.sp_code}) {yuan(s.price)}{s.cycle.words}" for i, s in
                    enumerate(mine, 1)]
            return ("您的订购：" + "；".join(rows) + "。退订请回复QX序号，全部退订回复00000。"
                    "Reply QX and the number to cancel.")
        if clean == "00000":
            done = await self.cancel_all(sender, at_sp)
            return f"已退订{len(done)}项业务。Cancelled {len(done)} subscription(s)."
        if m := re.fullmatch(r"QX ?(\d{1,2})", clean):
            c = await self.cancel(sender, int(m.group(1)), at_sp)
            free = "72小时内退订，不收费。Cancelled within 72 hours: no charge." if c.waived else ""
            return f"已退订{c.subscription.service_name}。{free}Cancelled {c.subscription.service_name}."
        if is_yes(clean):
            r = await self.reply(sender)
            return _reply_words(r)
        if m := re.fullmatch(r"(?:投诉|TS) ?(1066\d{4,8})? ?(.*)", clean):
            target = at_sp or m.group(1)
            if target is None:
                return "投诉请发：投诉 SP代码 内容。Send: TS, the SP's code and what happened."
            await self.complain(sender, target, text, source="sms")
            return "您的投诉已受理。Your complaint was received."
        if at_sp is not None and clean:
            await self.subscribe(sender, at_sp, clean.split(" ")[0], channel="sms")
            return ""  # the confirmation SMS (or the notice) is the answer
        return None

    async def _sp_of(self, to: str) -> str | None:
        """The SP whose service code the number starts with (the longest match)."""

        async def work(uow: UnitOfWork) -> str | None:
            codes = (await uow.conn.execute(select(sp_providers.c.code).where(
                sp_providers.c.code.in_([to[:n] for n in range(8, min(len(to), 12) + 1)])))).scalars().all()
            return max(codes, key=len) if codes else None

        return await self.uow.run("sp_of", work)


def _reply_words(r: Reply) -> str:
    name = r.subscription.service_name if r.subscription else ""
    match r.outcome:
        case ReplyOutcome.CONFIRMED:
            return f"您已成功订购{name}，72小时内退订不收费。Subscribed to {name}; cancel within 72 hours free."
        case ReplyOutcome.ALREADY:
            return f"您已确认订购{name}，无需重复回复。You confirmed {name} already."
        case ReplyOutcome.LATE:
            return f"确认已超过24小时，{name}未订购、不收费。More than 24 hours passed: {name} was not ordered."
    return "您没有待确认的订购。No order is waiting for your confirmation."


def _first_due(cycle: Cycle, active_since: datetime) -> datetime | None:
    """A monthly fee first falls due when the waiver window closes; a per-message service
    has no due time (each message is charged when the SP reports it)."""
    return first_charge_due(active_since) if cycle is Cycle.MONTHLY else None


@dataclass(frozen=True, slots=True)
class _DueMessage:
    """A subscription row with the message charge it is billed for (the billing path's input)."""

    row: Any
    charge_id: str

    def __getattr__(self, name: str) -> Any:
        return getattr(self.row, name)


def _charge(row: Any) -> Charge:
    return Charge(row.id, row.subscription_id, row.msisdn, row.sp_code, row.amount, ChargeMethod(row.method),
                  row.state, row.refunded, as_utc(row.created_at))
