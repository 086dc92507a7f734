"""The SMS channel: commands in, replies and notifications out, each exactly once.

Inbound, in two steps so that no message is lost and none answered twice:

1. :meth:`SmsChannel.receive` (the URL Kannel calls) stores the message, deduplicated on
   Kannel's message id (a retried delivery repeats it), and emits ``sms.received`` to the
   outbox in the same transaction; Kannel gets its 200 only after that commit.
2. The outbox worker runs :meth:`SmsChannel.process`: parse, act through the same services
   as the API, and emit the reply while marking the message answered, in one transaction.
   A worker killed half-way gets the message again; every step is keyed by the inbound
   message (confirmation request, the confirming reply, the payment's idempotency key), so
   doing it again finds what was done and the reply still goes out once.

Money commands are never carried out on the first message: the answer is a summary and a
random code (:mod:`mobipay.confirmations`); the money moves when the subscriber replies
with the code in time. Cancelling an insurance policy (``TB n``) is confirmed the same way,
though its money comes back into the sender's own wallet: it ends the cover for good.
Replies name only the sender's own wallet: whether another number is registered never shows.

Outbound, :meth:`SmsChannel.deliver` renders each ``sms.send`` event and submits it to
Kannel; the ``sms_outbound`` row, keyed by the outbox message, makes a redelivered event a
no-op once Kannel has taken it, and delivery reports move its state.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import structlog
from sqlalchemy import delete, func, insert, select, update

from mobipay.channels.actions import ChannelActions, Policy, bet_text
from mobipay.channels.sms.errors import CommandNotUnderstood, SmsGatewayUnavailable
from mobipay.channels.sms.grammar import HELP, Command, parse
from mobipay.channels.sms.kannel import DLR_STATES, KannelSender, coding_of, fit, parts_of
from mobipay.channels.sms.tables import sms_inbound, sms_optouts, sms_outbound
from mobipay.channels.sms.texts import REMINDERS, render
from mobipay.channels.words import PERIOD_WORDS, both, game_words, yuan
from mobipay.confirmations.service import Confirmations
from mobipay.kernel.clock import SHANGHAI, as_utc
from mobipay.kernel.errors import InvalidMsisdn, MobipayError, RateLimited, ValidationFailed
from mobipay.kernel.events import Event, SmsRequested
from mobipay.kernel.ids import new_id
from mobipay.kernel.msisdn import mask_msisdn, normalize_msisdn
from mobipay.ledger.errors import InsufficientFunds
from mobipay.ledger.uow import UnitOfWork, UnitOfWorkRunner
from mobipay.orders.model import OrderState
from mobipay.orders.service import PartnerOrder
from mobipay.platform.db import dialect_insert
from mobipay.platform.outbox import Message
from mobipay.platform.ratelimit import RateLimiter
from mobipay.protection.model import Channel
from mobipay.protection.service import ProtectionService
from mobipay.wallet.errors import SelfTransfer
from mobipay.wallet.service import Principal

log = structlog.get_logger(__name__)

FINAL = frozenset({"delivered", "failed", "rejected"})
#: A message left "submitting" (no answer from sendsms, or the worker died around the call)
#: is sent again only after this long without a delivery report: Kannel reports within
#: seconds when it took the message. (A message Kannel took while its SMSC was down sends no
#: report and may then go out twice: the one duplicate the design allows.)
RESUBMIT_AFTER = timedelta(seconds=30)


@dataclass(frozen=True, kw_only=True)
class SmsReceived(Event):
    topic = "sms.received"
    inbound_id: str
    sender: str
    text: str


@dataclass(frozen=True, slots=True)
class Reply:
    """What to answer: a template of the catalogue, or nothing (the confirmation SMS is the answer)."""

    template: str | None
    params: dict[str, Any]


def _text(text: str) -> Reply:
    return Reply("sms.reply", {"text": text})


def _pending(order: PartnerOrder, what: str) -> Reply:
    if order.state is OrderState.PENDING:
        return Reply("reply.order_pending", {"what": what, "amount_fen": order.amount})
    return Reply(None, {})


class SpSms(Protocol):
    """What SMS to an SP's service code (and 0000 / QX n / 00000 / 是 to ours) needs of SP
    services (sp.service.SpService): the words to answer, "" when already answered, None
    when the message is not for them."""

    async def sms(self, raw_sender: str, receiver: str, text: str) -> str | None: ...


class RuralSms(Protocol):
    """What agents' and villagers' SMS (CK, DQ, QK, DLYE, DLMX, YJ, QH, JG) need of the rural
    context (rural.service.RuralService): the words to answer ("" when the answer is on its
    way), None when the message is no rural command."""

    async def sms(self, sender: str, text: str) -> str | None: ...


class NfcSuspension(Protocol):
    """What ``GS`` (挂失) needs of the NFC wallet (instore.tokens.NfcTokens)."""

    async def suspend_by_sms(self, raw_msisdn: str) -> Sequence[object]: ...


class SmsChannel:
    def __init__(self, uow: UnitOfWorkRunner, actions: ChannelActions, confirmations: Confirmations,
                 limiter: RateLimiter, sender: KannelSender | None) -> None:
        self.nfc: NfcSuspension | None = None  # plugged in by the bootstrap: GS suspends NFC tokens
        self.sp: SpSms | None = None  # plugged in by the bootstrap: SP subscriptions, 0000, QX, 是
        self.protection: ProtectionService | None = None  # plugged in by the bootstrap: SJBZ (手机保障)
        self.rural: RuralSms | None = None  # plugged in by the bootstrap: agents' and villagers' commands
        self.uow = uow
        self.actions = actions
        self.confirmations = confirmations
        self.limiter = limiter
        self.sender = sender

    # ------------------------------------------------------------------ inbound

    async def receive(self, gateway_id: str, sender: str, receiver: str, text: str) -> bool:
        """Store an inbound SMS for processing; False when it was already received (a retry).
        ``gateway_id`` is Kannel's message id, the deduplication key: it must be given."""
        if not gateway_id.strip():
            raise ValidationFailed("an inbound SMS needs the gateway's message id (Kannel's %I)", field="id")
        inbound_id = new_id("smi")

        async def work(uow: UnitOfWork) -> bool:
            ins = dialect_insert(uow.conn.dialect.name, sms_inbound)
            result = await uow.conn.execute(ins.values(
                id=inbound_id, gateway_id=gateway_id[:64], sender=sender[:24], receiver=receiver[:24], text=text,
                state="received", received_at=uow.now).on_conflict_do_nothing(index_elements=["gateway_id"]))
            if not result.rowcount:
                return False
            await uow.emit(SmsReceived(key=inbound_id, inbound_id=inbound_id, sender=sender, text=text))
            return True

        return await self.uow.run("sms_receive", work)

    async def process(self, message: Message) -> None:
        """Outbox handler of ``sms.received``: answer the command once."""
        inbound_id, raw_sender, text = (message.payload["inbound_id"], message.payload["sender"],
                                        message.payload["text"])
        found = await self.uow.run("sms_state", lambda uow: _first(uow, select(
            sms_inbound.c.state, sms_inbound.c.receiver).where(sms_inbound.c.id == inbound_id)))
        if found is None or found.state != "received":
            return
        try:
            sender = normalize_msisdn(raw_sender)
        except InvalidMsisdn:  # a short code or a foreign gateway: nobody to answer
            log.info("sms.inbound_not_from_a_mobile", inbound_id=inbound_id)
            await self._finish(inbound_id, "", None, action="ignored")
            return
        try:
            await self.limiter.hit("sms", sender)
        except RateLimited:
            await self._throttled(inbound_id, sender)
            return
        if self.sp is not None:
            words = await self.sp.sms(sender, found.receiver, text)
            if words is not None:  # to an SP's code, or an SP command to ours
                await self._finish(inbound_id, sender, _text(words) if words else None, action="sp")
                return
        if self.rural is not None:
            words = await self.rural.sms(sender, text)
            if words is not None:  # an agent's or a villager's rural command
                await self._finish(inbound_id, sender, _text(words) if words else None, action="rural")
                return
        try:
            command = parse(text)
        except CommandNotUnderstood as exc:
            await self._finish(inbound_id, sender, _text(exc.detail), action="unknown")
            return
        try:
            reply = await self._answer(inbound_id, sender, command)
        except MobipayError as exc:
            reply = _text(exc.detail if exc.code == "CONFIRMATION_REFUSED" else both(exc))
        await self._finish(inbound_id, sender, reply, action=command.action)

    async def _throttled(self, inbound_id: str, sender: str) -> None:
        """Past the per-number limit: not acted on; told so at most once per window."""
        try:
            await self.limiter.hit("sms_throttle_notice", sender)
            reply: Reply | None = _text("短信发送过于频繁，请稍后再试。Too many messages; try again later.")
        except RateLimited:
            reply = None
        await self._finish(inbound_id, sender, reply, action="throttled", state="throttled")

    async def _finish(self, inbound_id: str, sender: str, reply: Reply | None, *, action: str,
                      state: str = "answered") -> None:
        """Mark the message answered and emit its reply, in one transaction, once."""

        async def work(uow: UnitOfWork) -> None:
            done = await uow.conn.execute(update(sms_inbound).where(
                sms_inbound.c.id == inbound_id, sms_inbound.c.state == "received").values(
                state=state, action=action, answered_at=uow.now))
            if done.rowcount and reply is not None and reply.template is not None:
                await uow.emit(SmsRequested(key=f"sms-reply:{inbound_id}", to=sender, template=reply.template,
                                            params=reply.params))

        await self.uow.run("sms_answer", work)

    async def _answer(self, inbound_id: str, sender: str, cmd: Command) -> Reply:
        if cmd.action == "help":
            return _text(HELP)
        if cmd.action in ("stop", "start"):
            await self._opt(sender, out=cmd.action == "stop")
            return Reply(f"reply.{cmd.action}", {})
        me = await self.actions.subscriber(sender)
        handlers: dict[str, Callable[[str, Principal, Command], Awaitable[Reply]]] = {
            "balance": self._balance, "history": self._history, "transfer": self._ask_transfer,
            "topup": self._ask_topup, "bill": self._ask_bill, "confirm": self._confirm,
            "products": self._products, "product": self._ask_product, "lottery": self._ask_lottery,
            "tickets": self._tickets, "policies": self._policies, "policy_cancel": self._ask_policy_cancel,
            "nfc_suspend": self._nfc_suspend, "protect": self._ask_protect,
        }
        return await handlers[cmd.action](inbound_id, me, cmd)

    async def _nfc_suspend(self, inbound_id: str, me: Principal, cmd: Command) -> Reply:
        """``GS``: every live NFC token of the sender's wallet suspended at once (no code asked:
        suspending moves no money and is what a lost phone needs; resuming is in the app)."""
        if self.nfc is None:
            return _text("NFC卡挂失暂不可用，请致电客服。NFC suspension is not available: call customer service.")
        done = await self.nfc.suspend_by_sms(me.msisdn)
        if not done:
            return _text("您没有使用中的NFC卡。You have no active NFC card.")
        return _text(f"已挂失您的{len(done)}张NFC卡，立即停用；找回后请在客户端恢复。"
                     f"{len(done)} NFC card(s) suspended at once; resume them in the app.")

    async def _balance(self, inbound_id: str, me: Principal, cmd: Command) -> Reply:
        return Reply("reply.balance", {"balance_fen": await self.actions.balance(me)})

    async def _history(self, inbound_id: str, me: Principal, cmd: Command) -> Reply:
        lines = await self.actions.recent(me, 5)
        if not lines:
            return Reply("reply.history_empty", {})
        rows = "；".join(f"{ln.when.astimezone(SHANGHAI):%m-%d} {ln.words[0]} {'+' if ln.amount > 0 else ''}"
                        f"{yuan(ln.amount)}" for ln in lines)
        return Reply("reply.history", {"rows": rows})

    async def _products(self, inbound_id: str, me: Principal, cmd: Command) -> Reply:
        rows = "；".join(f"{n} {p.name}{yuan(p.price)}{PERIOD_WORDS[p.period][0]}"
                        for n, p in enumerate(self.actions.product_list(), 1))
        return Reply("reply.products", {"rows": rows})

    async def _tickets(self, inbound_id: str, me: Principal, cmd: Command) -> Reply:
        tickets = await self.actions.tickets(me, 3)
        if not tickets:
            return Reply("reply.tickets_empty", {})
        rows = []
        for t in tickets:
            if t.order.state is OrderState.FAILED:
                outcome = "未成功，已退款"
            elif t.order.state is OrderState.PENDING:
                outcome = "出票中"
            elif t.prize is None:
                outcome = "待开奖"
            else:
                outcome = f"中奖{yuan(t.prize)}元" if t.prize else "未中奖"
            rows.append(f"{game_words(t.game)[0]}{t.issue}期 {len(t.bets)}注{yuan(t.order.amount)}元 {outcome}")
        return Reply("reply.tickets", {"rows": "；".join(rows)})

    async def _policies(self, inbound_id: str, me: Principal, cmd: Command) -> Reply:
        mine = await self.actions.policies(me)
        if not mine:
            return Reply("reply.policies_empty", {})
        return Reply("reply.policies", {"rows": "；".join(f"{n} {_policy_row(p)}" for n, p in enumerate(mine, 1))})

    # Money commands: checked now (so a hopeless one is refused at once), done on the code.

    async def _ask_policy_cancel(self, inbound_id: str, me: Principal, cmd: Command) -> Reply:
        """``TB n``: a refund into the sender's own wallet, yet confirmed by code like a payment:
        it ends the cover for good, and ``n`` is a position in a list that may have changed."""
        assert cmd.count is not None
        policy = await self.actions.policy_at(me, cmd.count)
        if policy.state in ("cancelled", "cancelling"):  # asked before: nothing to confirm again
            return Reply(f"reply.policy_{policy.state}", {"name": policy.name, "amount_fen": policy.order.amount})
        self.actions.check_cancellable(policy)
        summary = (f"退保{policy.name}（被保险人{policy.insured}），保费{yuan(policy.order.amount)}元退回您的钱包，"
                   "保障随即终止")
        await self.confirmations.request(me.msisdn, "sms.policy_cancel",
                                         {"policy": policy.id, "attempts": policy.attempts}, summary, key=inbound_id)
        return Reply(None, {})


    async def _ask_product(self, inbound_id: str, me: Principal, cmd: Command) -> Reply:
        assert cmd.name is not None
        product = self.actions.product(cmd.name)
        self.actions.check_product(me, product)
        await self._precheck(me, product.price)
        summary = f"订购{product.name}，{yuan(product.price)}{PERIOD_WORDS[product.period][0]}"
        await self.confirmations.request(me.msisdn, "sms.product", {"product": product.code}, summary,
                                         key=inbound_id)
        return Reply(None, {})

    async def _ask_lottery(self, inbound_id: str, me: Principal, cmd: Command) -> Reply:
        assert cmd.name is not None and cmd.count is not None
        sale = self.actions.on_sale(cmd.name)
        cost = self.actions.quick_pick_cost(cmd.count)
        await self._precheck(me, cost)
        summary = (f"购买{game_words(sale.game.code)[0]}第{sale.issue}期机选{cmd.count}注，共{yuan(cost)}元"
                   f"（{sale.sales_close.astimezone(SHANGHAI):%m-%d %H:%M}截止）")
        await self.confirmations.request(me.msisdn, "sms.lottery", {"game": sale.game.code, "count": cmd.count,
                                                                    "issue": sale.issue}, summary, key=inbound_id)
        return Reply(None, {})


    async def _ask_protect(self, inbound_id: str, me: Principal, cmd: Command) -> Reply:
        """``SJBZ``: every check of the enrolment now (IMEI, city, period, window, tier), then
        the first month's fee confirmed by code like a payment; ``protection.enrolled`` is the
        answer once it is."""
        if self.protection is None:
            return _text("手机保障服务暂不可用。Handset protection is not available here.")
        assert cmd.name is not None and cmd.amount is not None
        day, city, receipt = cmd.words
        quote = await self.protection.quote(imei=cmd.name, price=cmd.amount, purchased_on=day, receipt=receipt,
                                            city=city)
        await self._precheck(me, quote.tier.monthly_fee)
        summary = (f"手机保障{quote.handset.name}（IMEI尾号{quote.imei[-4:]}），每月{yuan(quote.tier.monthly_fee)}元，"
                   f"{quote.covered_from:%Y-%m-%d}起生效")
        await self.confirmations.request(me.msisdn, "sms.protect", {
            "imei": quote.imei, "price": cmd.amount, "purchased_on": day, "city": quote.city, "receipt": receipt},
            summary, key=inbound_id)
        return Reply(None, {})

    async def _ask_transfer(self, inbound_id: str, me: Principal, cmd: Command) -> Reply:
        assert cmd.msisdn is not None and cmd.amount is not None
        if cmd.msisdn == me.msisdn:
            raise SelfTransfer("choose another recipient")
        await self._precheck(me, cmd.amount)
        summary = f"向{mask_msisdn(cmd.msisdn)}转账{yuan(cmd.amount)}元"
        await self.confirmations.request(me.msisdn, "sms.transfer", {"to": cmd.msisdn, "amount": cmd.amount},
                                         summary, key=inbound_id)
        return Reply(None, {})

    async def _ask_topup(self, inbound_id: str, me: Principal, cmd: Command) -> Reply:
        assert cmd.amount is not None
        quote = self.actions.topup_service.quote(cmd.msisdn or me.msisdn, cmd.amount)
        await self._precheck(me, quote.price)
        summary = f"为{mask_msisdn(quote.msisdn)}充值{yuan(quote.face)}元，实付{yuan(quote.price)}元"
        await self.confirmations.request(me.msisdn, "sms.topup", {"msisdn": quote.msisdn, "amount": quote.face},
                                         summary, key=inbound_id)
        return Reply(None, {})

    async def _ask_bill(self, inbound_id: str, me: Principal, cmd: Command) -> Reply:
        assert cmd.name is not None
        saved = await self.actions.saved_bill(me, cmd.name)
        bill_id, amount = await self.actions.bill_due(me, saved)
        await self._precheck(me, amount)
        biller = await self.actions.bills.biller(saved.biller)
        summary = f"缴纳{saved.nickname or biller.name}（{biller.name} {saved.customer_id}）{yuan(amount)}元"
        await self.confirmations.request(me.msisdn, "sms.bill", {"name": cmd.name, "bill_id": bill_id,
                                                                 "amount": amount}, summary, key=inbound_id)
        return Reply(None, {})

    async def _precheck(self, me: Principal, amount: int) -> None:
        """Refuse at once what could not succeed on the code: over the SMS cap or the balance."""
        self.actions.check_consent(amount)
        if amount > await self.actions.balance(me):
            raise InsufficientFunds("not enough balance for this payment")

    async def _confirm(self, inbound_id: str, me: Principal, cmd: Command) -> Reply:
        assert cmd.code is not None
        done = await self.confirmations.confirm(me.msisdn, cmd.code, by=inbound_id)
        p, key = done.payload, done.id  # the confirmation is the payment's idempotency key
        if done.purpose == "sms.transfer":
            await self.actions.transfer(me, p["to"], p["amount"], key=key, consent=True)
            return Reply("reply.transferred", {"to": mask_msisdn(p["to"]), "amount_fen": p["amount"],
                                               "balance_fen": await self.actions.balance(me)})
        # A settled order texts its outcome itself (topup.succeeded, bill.failed…): that is the reply.
        if done.purpose == "sms.topup":
            order = await self.actions.topup(me, p["msisdn"], p["amount"], key=key, consent=True)
            return _pending(order, f"充值{mask_msisdn(p['msisdn'])}")
        if done.purpose == "sms.bill":
            order = await self.actions.pay_saved_bill(me, p["name"], key=key, consent=True, bill_id=p["bill_id"],
                                                      amount=p["amount"])
            return _pending(order, f"缴费{p['name']}")
        if done.purpose == "sms.product":
            order = await self.actions.buy_product(me, p["product"], key=key, consent=True)
            return _pending(order, f"订购{order.details.get('name', '')}")
        if done.purpose == "sms.policy_cancel":
            # Settled at once, the insurer's answer texts itself: refunded, or declined with
            # "nothing refunded" and until when to ask again (insurance_cancel.declined).
            order = await self.actions.cancel_policy(me, p["policy"], attempts_seen=p["attempts"])
            return _pending(order, f"退保{self.actions.policy_name(str(order.details.get('product', '')))}")
        if done.purpose == "sms.lottery":
            ticket = await self.actions.buy_quick_picks(me, p["game"], p["count"], issue=p["issue"], key=key,
                                                        consent=True)
            if ticket.order.state is OrderState.FAILED:
                return Reply(None, {})  # lottery.failed says so, and that the money is back
            zh, en = game_words(ticket.game)
            return Reply("reply.lottery_bought", {"game": zh, "game_en": en, "issue": ticket.issue,
                                                  "numbers": "; ".join(bet_text(b) for b in ticket.bets),
                                                  "amount_fen": ticket.order.amount})
        if done.purpose == "sms.protect" and self.protection is not None:
            await self.protection.enrol(me, imei=p["imei"], price=p["price"], purchased_on=p["purchased_on"],
                                        receipt=p["receipt"], city=p["city"], idempotency_key=key,
                                        channel=Channel.SMS, consent=True)
            return Reply(None, {})  # protection.enrolled is the answer
        log.warning("sms.confirmation_purpose_unknown", purpose=done.purpose)
        return _text("该确认码不适用于短信指令。This code is not for an SMS command.")

    async def _opt(self, msisdn: str, *, out: bool) -> None:
        async def work(uow: UnitOfWork) -> None:
            await uow.conn.execute(delete(sms_optouts).where(sms_optouts.c.msisdn == msisdn))
            if out:
                await uow.conn.execute(insert(sms_optouts).values(msisdn=msisdn, stopped_at=uow.now))

        await self.uow.run("sms_opt", work)

    # ------------------------------------------------------------------ outbound

    async def deliver(self, message: Message) -> None:
        """Outbox handler of ``sms.send``: render and hand to Kannel, once per event."""
        assert self.sender is not None
        to, template, params = message.payload["to"], message.payload["template"], message.payload["params"]
        text = fit(render(template, params))

        async def claim(uow: UnitOfWork) -> bool:
            row = (await uow.conn.execute(select(sms_outbound).where(sms_outbound.c.id == message.id)
                                          .with_for_update())).first()
            if row is None:
                stopped = template in REMINDERS and (await uow.conn.execute(select(sms_optouts.c.msisdn).where(
                    sms_optouts.c.msisdn == to))).first() is not None
                await uow.conn.execute(insert(sms_outbound).values(
                    id=message.id, to=to, template=template, parts=parts_of(text), coding=coding_of(text),
                    state="opted_out" if stopped else "submitting", attempts=0 if stopped else 1,
                    created_at=uow.now, updated_at=uow.now))
                return not stopped
            if row.state == "submitting" and uow.now - as_utc(row.updated_at) < RESUBMIT_AFTER:
                # An earlier try may have reached Kannel (no answer, or we died): wait for its report.
                raise SmsGatewayUnavailable("an earlier submission may have been taken; waiting for its report")
            if row.state not in ("submitting", "unsent"):
                return False  # taken by Kannel already, or opted out: never twice
            await uow.conn.execute(update(sms_outbound).where(sms_outbound.c.id == message.id).values(
                state="submitting", attempts=row.attempts + 1, updated_at=uow.now))
            return True

        if not await self.uow.run("sms_claim", claim):
            return
        try:
            await self.sender.submit(message.id, to, text)
        except SmsGatewayUnavailable as exc:  # the outbox tries again later
            if not exc.extra.get("maybe_sent"):
                await self._mark(message.id, "unsent")
            raise
        await self._mark(message.id, "submitted")

    async def _mark(self, sms_id: str, state: str) -> None:
        async def work(uow: UnitOfWork) -> None:
            values: dict[str, Any] = {"state": state, "updated_at": uow.now}
            if state == "submitted":
                values["submitted_at"] = uow.now
            await uow.conn.execute(update(sms_outbound).where(
                sms_outbound.c.id == sms_id, sms_outbound.c.state == "submitting").values(**values))

        await self.uow.run("sms_mark", work)

    async def delivery_report(self, sms_id: str, status: int) -> bool:
        """Record a Kannel delivery report; False for an unknown message or status."""
        new_state = DLR_STATES.get(status)
        if new_state is None:
            return False

        async def work(uow: UnitOfWork) -> bool:
            row = (await uow.conn.execute(select(sms_outbound.c.state).where(sms_outbound.c.id == sms_id)
                                          .with_for_update())).first()
            if row is None:
                return False
            values: dict[str, Any] = {"last_status": status, "updated_at": uow.now}
            if row.state not in FINAL:  # a late "acked" never undoes "delivered"
                values["state"] = new_state
            await uow.conn.execute(update(sms_outbound).where(sms_outbound.c.id == sms_id).values(**values))
            return True

        return await self.uow.run("sms_dlr", work)

    async def states(self) -> dict[str, int]:
        """Outbound messages per delivery state (for ``mobipay sms status``)."""
        async def work(uow: UnitOfWork) -> dict[str, int]:
            rows = await uow.conn.execute(select(sms_outbound.c.state, func.count()).group_by(sms_outbound.c.state))
            return {r[0]: int(r[1]) for r in rows}

        return await self.uow.run("sms_states", work)


#: A policy's state as an SMS line says it.
_POLICY_STATES = {"pending": "投保处理中", "in_force": "保障中", "expired": "已到期", "cancelling": "退保处理中",
                  "cancelled": "已退保"}


def _policy_row(p: Policy) -> str:
    """``综合意外险 被保险人**明 保障中，12-09 12:00前可退保``: what BX lists for one policy."""
    state = (f"{p.starts_at.astimezone(SHANGHAI):%m-%d}起保障" if p.state == "waiting"
             else _POLICY_STATES.get(p.state, p.state))
    if p.declined:
        state += "，上次退保未获同意"
    if p.cancellable and p.until is not None:
        state += f"，{p.until.astimezone(SHANGHAI):%m-%d %H:%M}前可退保"
    return f"{p.name} 被保险人{p.insured} {state}"


async def _scalar(uow: UnitOfWork, query: Any) -> Any:
    return (await uow.conn.execute(query)).scalar()


async def _first(uow: UnitOfWork, query: Any) -> Any:
    return (await uow.conn.execute(query)).first()
