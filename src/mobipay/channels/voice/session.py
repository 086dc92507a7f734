"""One call's dialog run against the services, through the shared channel layer.

:class:`VoiceSession` owns what the pure dialog must not: the caller's principal and the
service calls. Each front feeds it keys and gets back a :class:`Reply` (what to say, what
to wait for, whether to hang up); actions the dialog asks for run here, in between, so a
front never talks to a service itself. Payments carry the idempotency key
``voice:<call id>:<n>``, ``n`` counting payments in the call, so a front that repeats a
request (an IVR retrying a fetch, a re-sent SIP packet) cannot pay twice.

A village agent's staff phone is served by the rural context (``rural``, the container's
:class:`~mobipay.rural.service.RuralService`): its staff PIN is checked there, and every agent
action runs one of its use cases for the staff member whose PIN this call verified.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import structlog

from mobipay.channels.actions import ChannelActions, Line, Policy
from mobipay.channels.voice import dialog as D
from mobipay.channels.words import COVER_WORDS, INSURER_WORDS, game_words, product_words
from mobipay.kernel.clock import SHANGHAI
from mobipay.kernel.errors import InvalidMsisdn, MobipayError
from mobipay.kernel.msisdn import normalize_msisdn
from mobipay.orders.model import OrderState
from mobipay.orders.service import PartnerOrder
from mobipay.rural.errors import AgentSessionInvalid
from mobipay.rural.model import TxKind
from mobipay.rural.service import AgentStaff, RuralService
from mobipay.wallet.errors import UserNotFound
from mobipay.wallet.service import Principal

if TYPE_CHECKING:  # the composition root's type, named in hints only (decision 0006)
    from mobipay.app.bootstrap import Container

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Reply:
    say: tuple[D.Say, ...]
    expect: D.Expect | None
    end: bool
    lang: D.Lang


def actions_of(c: Container) -> ChannelActions:
    """The channel layer over a container's services (what both voice fronts run against)."""
    return c.channel_actions


def _line(line: Line) -> D.RecentLine:
    return D.RecentLine(line.when.month, line.when.day, D.Words(*line.words), line.amount)


def _numbers(bets: list[list[list[int]]]) -> D.Words:
    """Bets as read aloud: numbers one by one, the groups apart, the bets apart."""
    zh = "；".join("，后区".join("、".join(str(n) for n in part) for part in bet) for bet in bets)
    en = "; ".join(", plus ".join(", ".join(str(n) for n in part) for part in bet) for bet in bets)
    return D.Words(zh, en)


def _when(at: datetime, *, time: bool = True) -> D.Words:
    """A Beijing date (and time) as said: 12月9日12点 / 12/9 12:00."""
    t = at.astimezone(SHANGHAI)
    zh, en = f"{t.month}月{t.day}日", f"{t.month}/{t.day}"
    if time:
        zh += f"{t.hour}点" + (f"{t.minute}分" if t.minute else "")
        en += f" {t:%H:%M}"
    return D.Words(zh, en)


#: A policy's state as read out.
_POLICY_STATES = {"pending": ("投保处理中", "being issued"), "in_force": ("保障中", "in force"),
                  "expired": ("已到期", "expired"), "cancelling": ("退保处理中", "cancellation in progress"),
                  "cancelled": ("已退保", "cancelled")}


def _policy(a: ChannelActions, p: Policy) -> D.PolicyOffer:
    if p.state == "waiting":
        starts = _when(p.starts_at, time=False)
        zh, en = f"{starts.zh}起保障", f"cover from {starts.en}"
    else:
        zh, en = _POLICY_STATES.get(p.state, (p.state, p.state))
    if p.declined:
        zh, en = zh + "，上次退保未获同意", en + ", the last cancellation was declined"
    if p.cancellable and p.until is not None:
        until = _when(p.until)
        zh, en = zh + f"，{until.zh}前可退保", en + f", cancellable until {until.en}"
    product = a.products.insurance.get(str(p.order.details.get("product", "")))
    name_en = p.name if product is None else (
        f"{INSURER_WORDS.get(product.insurer, (product.insurer, product.insurer))[1]} "
        f"{COVER_WORDS.get(product.kind, (product.kind, product.kind))[1].lower()} cover, {product.term_days} days")
    return D.PolicyOffer(p.id, D.Words(p.name, name_en), p.order.amount, D.Words(zh, en), p.cancellable, p.attempts)


def _paid(order: PartnerOrder) -> D.PaymentResult:
    if order.state is OrderState.SUCCEEDED:
        return D.PaymentResult("done")
    return D.PaymentResult("failed" if order.state is OrderState.FAILED else "pending")


class VoiceSession:
    """A call: the dialog state, the calling line, and the actions run for it."""

    def __init__(self, actions: ChannelActions, call_id: str, caller: str,
                 state: D.CallState | None = None, *, rural: RuralService | None = None) -> None:
        self.actions = actions
        self.call_id = call_id
        self.caller = caller
        self.state = state or D.CallState()
        self.rural = rural  # None: no agent menu (agents' phones are then treated as any caller)
        self._me: Principal | None = None

    async def start(self, lang: D.Lang = "zh") -> Reply:
        return await self._run(D.begin(lang))

    async def handle(self, keys: str | None) -> Reply:
        """What the caller keyed (an entry without its ``#``, ``*``, or ``None`` on a timeout)."""
        if self.state.node == "end":
            return Reply((), None, True, self.state.lang)
        return await self._run(D.on_input(self.state, keys))

    async def _run(self, step: D.Step) -> Reply:
        said: list[D.Say] = list(step.say)
        while step.action is not None:
            action = step.action
            outcome = await self._do(action)
            step = D.on_result(step.state, action, outcome)
            said.extend(step.say)
        self.state = step.state
        log.info("voice.turn", call_id=self.call_id, node=step.state.node, said=[s.prompt for s in said],
                 codes=[s.error.code for s in said if s.error is not None])
        return Reply(tuple(said), step.expect, step.end, step.state.lang)

    async def me(self) -> Principal:
        """The caller's principal, looked up again for each request of a stateless front."""
        if self._me is None:
            self._me = await self.actions.subscriber(self.caller)
        return self._me

    def key(self, n: int) -> str:
        return f"voice:{self.call_id}:{n}"

    async def staff(self) -> AgentStaff | None:
        """The agent's staff member the calling line belongs to (None: no agent's phone)."""
        if self.rural is None:
            return None
        try:
            number = normalize_msisdn(self.caller)
        except InvalidMsisdn:
            return None
        return await self.rural.staff_by_number(number)

    async def _identify(self) -> D.Outcome:
        staff = await self.staff()
        try:
            await self.me()
        except InvalidMsisdn:  # a line that is no mobile number is simply not a subscriber
            if staff is None:
                raise UserNotFound("the calling line is not a registered wallet", field="msisdn") from None
            return D.Caller(agent=True, subscriber=False)
        except MobipayError:  # no wallet, or one that cannot pay: an agent's phone still reaches its menu
            if staff is None:
                raise
            return D.Caller(agent=True, subscriber=False)
        return None if staff is None else D.Caller(agent=True, subscriber=True)

    async def _agent(self, action: D.Action) -> D.Outcome:
        """An agent action, for the staff member whose PIN this call verified (and nobody else)."""
        rural = self.rural
        if rural is None:
            raise AgentSessionInvalid("this voice front serves no agents")
        if isinstance(action, D.AgentSignIn):
            _, signed = await rural.sign_in(self.caller, action.pin)
            return D.StaffIn(signed.staff_id)
        me = await self.staff()
        if me is None or not self.state.staff or me.staff_id != self.state.staff:
            raise AgentSessionInvalid("the staff PIN was not verified in this call")
        match action:
            case D.AgentQuote(kind=kind, amount=amount):
                return rural.quote(TxKind(kind), amount).fee
            case D.AgentCashIn(customer=customer, amount=amount, step=n):
                t = await rural.cash_in(me, customer, amount, idempotency_key=self.key(n))
                return D.AgentDone(t.amount, t.float_after or 0)
            case D.AgentStartCashOut(customer=customer, amount=amount, step=n):
                r = await rural.start_cash_out(me, customer, amount, idempotency_key=self.key(n))
                return D.CashOutAsked(r.id)
            case D.AgentConfirmCashOut(code=code, request_id=request_id):
                t = await rural.confirm_cash_out(me, code, request_id=request_id or None)
                return D.AgentDone(t.amount, t.float_after or 0)
            case D.AgentFloat():
                agent = await rural.agent(me.agent_id)
                return D.FloatInfo(agent.float_balance, agent.cash)
            case D.AgentStatement(limit=limit):
                return [D.AgentLine(_when(t.created_at), t.kind, t.amount)
                        for t in await rural.statement(me.agent_id, limit)]
            case D.AgentCommissions():
                month = rural.uow.clock.now().astimezone(SHANGHAI).strftime("%Y-%m")
                c = await rural.commission_summary(me.agent_id, month)
                return D.CommissionInfo(c.accrued, c.held, c.paid)
        raise AssertionError(f"unknown agent action {action!r}")

    async def _do(self, action: D.Action) -> D.Outcome:
        """Run one action; a refusal is an outcome the dialog speaks, not an exception."""
        try:
            return await self._act(action)
        except MobipayError as exc:
            log.info("voice.refused", call_id=self.call_id, action=type(action).__name__, code=exc.code)
            return exc

    async def _act(self, action: D.Action) -> D.Outcome:
        a = self.actions
        if isinstance(action, D.Identify):
            return await self._identify()
        if isinstance(action, D.AGENT_ACTIONS):
            return await self._agent(action)
        me = await self.me()
        pin = self.state.pin
        match action:
            case D.VerifyPin(pin=entered):
                await a.verify_pin(me, entered)
                return None
            case D.Balance():
                return await a.balance(me)
            case D.Recent(limit=limit):
                return [_line(x) for x in await a.recent(me, limit=limit)]
            case D.Transfer(to=to, amount=amount, step=n):
                await a.transfer(me, to, amount, key=self.key(n), pin=pin)
                return D.PaymentResult("done")  # a number without a wallet yet is told the same: nothing leaks
            case D.Topup(number=number, amount=amount, step=n):
                order = await a.topup(me, number, amount, key=self.key(n), pin=pin)
                return _paid(order)
            case D.SavedBills():
                return [b.nickname for b in await a.saved_bills(me)]
            case D.BillDue(name=name):
                saved = await a.saved_bill(me, name)
                bill_id, amount = await a.bill_due(me, saved)
                return D.DueBill(bill_id, amount)
            case D.PayBill(name=name, bill_id=bill_id, amount=amount, step=n):
                order = await a.pay_saved_bill(me, name, key=self.key(n), pin=pin, bill_id=bill_id, amount=amount)
                return _paid(order)
            case D.Products():
                return [D.ProductOffer(p.code, D.Words(*product_words(p.code, p.name, p.description)), p.price)
                        for p in a.product_list()]
            case D.BuyProduct(code=code, step=n):
                return _paid(await a.buy_product(me, code, key=self.key(n), pin=pin))
            case D.LotteryGames():
                offers = []
                for sale in a.games():
                    close = sale.sales_close.astimezone(SHANGHAI)
                    said = D.Words(f"{close.hour}点" + (f"{close.minute}分" if close.minute else ""),
                                   f"{close:%H:%M}")
                    offers.append(D.GameOffer(sale.game.code, D.Words(*game_words(sale.game.code)), sale.issue,
                                              said))
                return offers
            case D.Policies():
                return [_policy(a, p) for p in await a.policies(me)]
            case D.CancelPolicy(policy_id=policy_id, attempts=attempts):
                # The refund needs no PIN at the wallet; the call's PIN is checked again all the same.
                order = await a.cancel_policy(me, policy_id, attempts_seen=attempts, pin=pin)
                if order.state is OrderState.FAILED:
                    until = a.cancellable_until(order)
                    return D.Cancelled("declined", _when(until) if until else None)
                return D.Cancelled("done" if order.state is OrderState.SUCCEEDED else "pending")
            case D.QuickPick(game=game, count=count, issue=issue, step=n):
                ticket = await a.buy_quick_picks(me, game, count, issue=issue, key=self.key(n), pin=pin)
                return D.Picked(_paid(ticket.order).state, _numbers(ticket.bets))
        raise AssertionError(f"unknown action {action!r}")
