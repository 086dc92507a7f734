"""Village payment service points (助农取款服务点, agents): onboarding, staff and their PINs,
the agent's float, cash-in and cash-out, super-agents' rebalancing, float bought from and
sold to the bank, commissions, limits and fraud flags, and the agents' SMS menu. One method
per use case, one transaction each. The marketplace is :mod:`mobipay.rural.market`.

Money: each agent's **float** is e-money the operator owes it
(``liability:rural:float:<agent>``, never below zero). Cash-in: the float pays the
customer's wallet and the agent takes the cash. Cash-out: the customer's wallet pays the
float (and the tier's fee to ``income:rural:fees``) and the agent hands over the cash; it
needs the customer every time: their PIN (app), or the code texted to their phone, replied
by SMS (started by the customer) or read out to the agent (started by the agent). Each
transaction accrues its commission (``expense:rural:commissions`` to
``liability:rural:commissions_payable``) split between the agent and its super-agent; the
monthly run pays every accrued line into the earners' floats in one batch. A transaction a
fraud rule flags keeps its commission ``held`` until the risk role decides.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from sqlalchemy import case, func, insert, select, update

from mobipay.kernel.clock import SHANGHAI, as_utc
from mobipay.kernel.errors import IdempotencyConflict, MobipayError
from mobipay.kernel.events import SmsRequested
from mobipay.kernel.ids import check_idempotency_key, new_id
from mobipay.kernel.msisdn import mask_msisdn, normalize_msisdn
from mobipay.kernel.roles import Roster
from mobipay.ledger.chart import BANK_SETTLEMENT
from mobipay.ledger.model import AccountKind, AccountSpec, Leg, Reverse, Transfer
from mobipay.ledger.uow import UnitOfWork, UnitOfWorkRunner
from mobipay.orders.model import OrderState as BankOrderState
from mobipay.orders.service import OrderBook, PartnerOrder
from mobipay.orders.service import order_id as derived_id
from mobipay.rural import errors
from mobipay.rural.bank_http import BUY, PARTNER, SELL, RuralBank
from mobipay.rural.model import (
    CODE_TRIES,
    CODE_TTL,
    SMS_HELP,
    SPLIT_WINDOW,
    STAFF_LOCK,
    AgentKind,
    AgentLimits,
    Flag,
    Location,
    SmsCommand,
    TxKind,
    check_amount,
    check_cash_in_limits,
    check_cash_out_limits,
    check_pin,
    code_hash,
    fraud_flags,
    month_of,
    parse_sms,
    split,
    tier_of,
)
from mobipay.rural.tables import agents, cashouts, commissions, flags, registrations, sessions, staff, txns
from mobipay.wallet.service import Principal, User, WalletService

log = structlog.get_logger(__name__)

FLOAT_PREFIX = "liability:rural:float:"
RURAL_FEES = "income:rural:fees"
COMMISSION_EXPENSE = "expense:rural:commissions"
COMMISSION_PAYABLE = "liability:rural:commissions_payable"
RISK = "risk"
SESSION_TTL = timedelta(hours=8)

ACCOUNTS: tuple[AccountSpec, ...] = (
    AccountSpec(RURAL_FEES, AccountKind.INCOME, name="Fees of cash-outs at rural agents"),
    AccountSpec(COMMISSION_EXPENSE, AccountKind.EXPENSE, name="Commissions of rural agents"),
    AccountSpec(COMMISSION_PAYABLE, AccountKind.LIABILITY, name="Commissions accrued to rural agents, unpaid",
                debits_must_not_exceed_credits=True),
)


def float_account(agent_id: str) -> str:
    return FLOAT_PREFIX + agent_id


def _day(at: datetime) -> str:
    return at.astimezone(SHANGHAI).strftime("%Y-%m-%d")


def _month(at: datetime) -> str:
    return at.astimezone(SHANGHAI).strftime("%Y-%m")


def _yuan(fen: int) -> str:
    return f"{fen / 100:.2f}"


@dataclass(frozen=True, slots=True)
class Agent:
    id: str
    kind: str
    name: str
    licence: str
    msisdn: str
    super_id: str | None
    location: Location
    state: str
    cash: int
    has_bank_card: bool
    float_balance: int = 0


@dataclass(frozen=True, slots=True)
class AgentStaff:
    """A staff member of an agent, signed in (web, API) or known by their number (SMS)."""

    staff_id: str
    agent_id: str
    name: str
    msisdn: str


@dataclass(frozen=True, slots=True)
class Quote:
    """What the customer pays, shown before they confirm."""

    kind: str
    amount: int
    fee: int

    @property
    def total(self) -> int:
        return self.amount + self.fee


@dataclass(frozen=True, slots=True)
class Txn:
    id: str
    agent_id: str
    kind: str
    customer: str
    amount: int
    fee: int
    flags: tuple[str, ...]
    created_at: datetime
    float_after: int | None = None
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class CashOutRequest:
    id: str
    agent_id: str
    customer: str
    amount: int
    fee: int
    started_by: str
    state: str
    expires_at: datetime
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class CommissionSummary:
    agent_id: str
    month: str
    accrued: int
    held: int
    paid: int
    lines: int


@dataclass(frozen=True, slots=True)
class FlagOut:
    id: str
    txn_id: str
    agent_id: str
    rule: str
    state: str
    created_at: datetime
    decided_by: str | None = None


@dataclass(frozen=True, slots=True)
class CountyActivity:
    county: str
    agents: int
    cash_ins: int
    cash_in_amount: int
    cash_outs: int
    cash_out_amount: int
    flagged: int


@dataclass
class PayRun:
    month: str
    lines: int = 0
    agents: int = 0
    amount: int = 0
    by_agent: dict[str, int] = field(default_factory=dict)


def _agent(row: Any, balance: int = 0) -> Agent:
    return Agent(row.id, row.kind, row.name, row.licence, row.msisdn, row.super_id,
                 Location(row.province, row.city, row.county, row.township, row.village), row.state, int(row.cash),
                 bool(row.bank_token), balance)


def _txn(row: Any, float_after: int | None = None, replayed: bool = False) -> Txn:
    return Txn(row.id, row.agent_id, row.kind, row.customer, int(row.amount), int(row.fee),
               tuple(f for f in row.flags.split(",") if f), as_utc(row.created_at), float_after, replayed)


def _sms(key: str, to: str, text: str) -> SmsRequested:
    """A notice in words (Chinese, then English): the channel's plain-text template."""
    return SmsRequested(key=key, to=to, template="sms.reply", params={"text": text})


class RuralService:
    """Agents, their float and staff, cash-in and cash-out, commissions and fraud flags."""

    def __init__(self, uow: UnitOfWorkRunner, wallet: WalletService, orders: OrderBook, bank: RuralBank,
                 roster: Roster, secret: bytes, *, limits: AgentLimits | None = None,
                 pin_hasher: PasswordHasher | None = None) -> None:
        self.uow = uow
        self.wallet = wallet
        self.orders = orders
        self.bank = bank
        self.roster = roster
        self.code_key = hashlib.sha256(b"mobipay rural codes v1|" + secret).digest()
        self.limits = limits or AgentLimits()
        self.hasher = pin_hasher or PasswordHasher()
        orders.register(PARTNER, bank, file_of="bank")
        orders.on_settled(BUY, self._float_settled)
        orders.on_settled(SELL, self._float_settled)

    async def open_accounts(self) -> None:
        """The context's own accounts (fees, commissions): opened at start, idempotently."""

        async def work(uow: UnitOfWork) -> None:
            for spec in ACCOUNTS:
                await uow.open_account(spec)

        await self.uow.run("rural_accounts", work)

    # ------------------------------------------------------------------ agents and staff

    async def onboard(self, *, name: str, licence: str, msisdn: str, location: Location, owner_pin: str,
                      owner_name: str = "", kind: AgentKind = AgentKind.AGENT, super_id: str | None = None,
                      bank_account: str | None = None, actor: str = "") -> Agent:
        """A store with its licence and place becomes an agent; its float account opens and its
        owner is its first staff member (the agent's number, with their PIN)."""
        number = normalize_msisdn(msisdn)
        place = location.check()
        if not 2 <= len(name.strip()) <= 80:
            raise errors.RuralInvalid("the store's name is 2 to 80 characters", field="name")
        if not 4 <= len(licence.strip()) <= 40:
            raise errors.RuralInvalid("the licence number is 4 to 40 characters", field="licence")
        pin_hash = self.hasher.hash(check_pin(owner_pin))
        agent_id = new_id("agt")

        async def work(uow: UnitOfWork) -> None:
            if super_id is not None:
                sup = (await uow.conn.execute(select(agents).where(agents.c.id == super_id))).first()
                if sup is None or sup.kind != AgentKind.SUPER.value:
                    raise errors.RuralInvalid(f"{super_id} is not a super-agent", field="super_id")
            taken = (await uow.conn.execute(select(agents.c.id).where(
                (agents.c.msisdn == number) | (agents.c.licence == licence.strip())))).first()
            staffed = (await uow.conn.execute(select(staff.c.id).where(staff.c.msisdn == number))).first()
            if taken is not None or staffed is not None:
                raise errors.RuralInvalid("this number or licence already belongs to an agent", field="msisdn")
            await uow.open_account(AccountSpec(float_account(agent_id), AccountKind.LIABILITY,
                                               name=f"Float of agent {name.strip()[:50]}",
                                               debits_must_not_exceed_credits=True))
            await uow.conn.execute(insert(agents).values(
                id=agent_id, kind=kind.value, name=name.strip(), licence=licence.strip(), msisdn=number,
                super_id=super_id, province=place.province, city=place.city, county=place.county,
                township=place.township, village=place.village, state="active", cash=0, bank_account=bank_account,
                created_at=uow.now))
            await uow.conn.execute(insert(staff).values(
                id=new_id("ags"), agent_id=agent_id, msisdn=number, name=owner_name or name.strip()[:40],
                pin_hash=pin_hash, failures=0, created_at=uow.now))
            if actor:
                await uow.audit(actor=actor, action="rural.agent_onboard", target=agent_id, reason=name,
                                after={"kind": kind.value, "county": place.county, "village": place.village})

        await self.uow.run("rural_onboard", work)
        return await self.agent(agent_id)

    async def agent(self, agent_id: str) -> Agent:
        row = await self.uow.run("rural_agent", lambda uow: _agent_row(uow, agent_id))
        balance = (await self.uow.ledger.account(float_account(agent_id))).balance
        return _agent(row, balance)

    async def add_staff(self, agent_id: str, msisdn: str, name: str, pin: str, *, actor: str = "") -> AgentStaff:
        """Another staff member of the agent, with their own PIN."""
        number = normalize_msisdn(msisdn)
        pin_hash = self.hasher.hash(check_pin(pin))
        staff_id = new_id("ags")

        async def work(uow: UnitOfWork) -> None:
            await _agent_row(uow, agent_id)
            if (await uow.conn.execute(select(staff.c.id).where(staff.c.msisdn == number))).first():
                raise errors.RuralInvalid("this number is already an agent's staff", field="msisdn")
            await uow.conn.execute(insert(staff).values(id=staff_id, agent_id=agent_id, msisdn=number,
                                                        name=name[:40], pin_hash=pin_hash, failures=0,
                                                        created_at=uow.now))
            if actor:
                await uow.audit(actor=actor, action="rural.staff_add", target=agent_id, reason=name[:80])

        await self.uow.run("rural_add_staff", work)
        return AgentStaff(staff_id, agent_id, name[:40], number)

    async def sign_in(self, msisdn: str, pin: str) -> tuple[str, AgentStaff]:
        """A bearer token for a staff member (number and PIN); wrong PINs lock them for a while."""
        number = normalize_msisdn(msisdn)
        row = await self.uow.run("rural_staff", lambda uow: _first(uow, select(staff).where(staff.c.msisdn == number)))
        now = self.uow.clock.now()
        if row is None:
            raise errors.StaffPinWrong()
        if row.locked_until is not None and as_utc(row.locked_until) > now:
            raise errors.StaffLocked(f"locked until {as_utc(row.locked_until).astimezone(SHANGHAI):%H:%M}")
        ok = False
        with contextlib.suppress(VerificationError):
            ok = isinstance(pin, str) and self.hasher.verify(row.pin_hash, pin)
        token = secrets.token_urlsafe(32)
        tries, lock = STAFF_LOCK

        async def record(uow: UnitOfWork) -> None:
            if ok:
                await uow.conn.execute(update(staff).where(staff.c.id == row.id).values(failures=0, locked_until=None))
                await uow.conn.execute(insert(sessions).values(
                    token_hash=hashlib.sha256(token.encode()).hexdigest(), staff_id=row.id, agent_id=row.agent_id,
                    expires_at=uow.now + SESSION_TTL))
                return
            failures = row.failures + 1
            await uow.conn.execute(update(staff).where(staff.c.id == row.id).values(
                failures=0 if failures >= tries else failures,
                locked_until=uow.now + lock if failures >= tries else row.locked_until))

        await self.uow.run("rural_sign_in", record)
        if not ok:
            raise errors.StaffPinWrong()
        return token, AgentStaff(row.id, row.agent_id, row.name, row.msisdn)

    async def session(self, token: str) -> AgentStaff:
        digest = hashlib.sha256(token.encode()).hexdigest()

        async def work(uow: UnitOfWork) -> Any:
            return (await uow.conn.execute(select(sessions, staff.c.name, staff.c.msisdn).join(
                staff, staff.c.id == sessions.c.staff_id).where(sessions.c.token_hash == digest))).first()

        row = await self.uow.run("rural_session", work)
        if row is None or as_utc(row.expires_at) <= self.uow.clock.now():
            raise errors.AgentSessionInvalid()
        return AgentStaff(row.staff_id, row.agent_id, row.name, row.msisdn)

    async def staff_by_number(self, msisdn: str) -> AgentStaff | None:
        """The staff member whose phone sent an SMS (None: the sender is no agent's staff)."""
        row = await self.uow.run("rural_staff_sms", lambda uow: _first(
            uow, select(staff).where(staff.c.msisdn == msisdn)))
        return None if row is None else AgentStaff(row.id, row.agent_id, row.name, row.msisdn)

    async def bind_bank_card(self, agent_id: str, *, card_number: str, name: str, id_number: str,
                             actor: str = "") -> Agent:
        """The agent's bank card, verified by the bank (four elements), for buying float."""
        agent = await self.agent(agent_id)
        token = await self.bank.verify_card(card_number, name, id_number, agent.msisdn)

        async def work(uow: UnitOfWork) -> None:
            await uow.conn.execute(update(agents).where(agents.c.id == agent_id).values(bank_token=token))
            if actor:
                await uow.audit(actor=actor, action="rural.bank_card", target=agent_id,
                                reason=f"card *{card_number[-4:]}")

        await self.uow.run("rural_bank_card", work)
        return await self.agent(agent_id)

    async def register_customer(self, me: AgentStaff, msisdn: str) -> User:
        """A villager's wallet opened at the agent (with their phone): remembered, since a
        cash-out to a number the same agent registered just now is a fraud pattern."""
        user = await self.wallet.create_user(msisdn, actor=f"agent:{me.agent_id}", reason="registered at agent")

        async def work(uow: UnitOfWork) -> None:
            if not (await uow.conn.execute(select(registrations).where(registrations.c.msisdn == user.msisdn))).first():
                await uow.conn.execute(insert(registrations).values(msisdn=user.msisdn, agent_id=me.agent_id,
                                                                    registered_at=uow.now))

        await self.uow.run("rural_register", work)
        return user

    # ------------------------------------------------------------------ cash-in and cash-out

    def quote(self, kind: TxKind, amount: int) -> Quote:
        """The customer's fee for an amount, by tier (shown before they confirm)."""
        return Quote(kind.value, amount, tier_of(kind, amount).fee)

    async def cash_in(self, me: AgentStaff, customer: str, amount: int, *, idempotency_key: str) -> Txn:
        """The agent took ``amount`` in cash: its float pays the customer's wallet, the customer
        is texted. The same key returns the first deposit."""
        check_idempotency_key(idempotency_key)
        check_amount(amount)
        number = normalize_msisdn(customer)
        tid = derived_id("rtx_", me.agent_id, idempotency_key)
        known = await self._known(tid, TxKind.CASH_IN, number, amount)
        if known is not None:
            return known
        user = await self._customer(number)
        tier = tier_of(TxKind.CASH_IN, amount)

        async def work(uow: UnitOfWork) -> tuple[Txn, int]:
            again = (await uow.conn.execute(select(txns).where(txns.c.id == tid))).first()
            if again is not None:
                return _txn(again, replayed=True), -1
            agent = await _active_agent(uow, me.agent_id, lock=True)
            today = _day(uow.now)
            check_cash_in_limits(self.limits, amount, customer_today=await _sum(
                uow, txns.c.customer == number, txns.c.kind == TxKind.CASH_IN.value, txns.c.day == today))
            earlier = [int(r[0]) for r in await uow.conn.execute(select(txns.c.amount).where(
                txns.c.agent_id == agent.id, txns.c.customer == number, txns.c.kind == TxKind.CASH_IN.value,
                txns.c.created_at > uow.now - SPLIT_WINDOW))]
            numbers = [r[0] for r in await uow.conn.execute(select(staff.c.msisdn).where(staff.c.agent_id == agent.id))]
            found = fraud_flags(TxKind.CASH_IN, customer=number, agent_numbers=[agent.msisdn, *numbers],
                                earlier_deposits=earlier, amount=amount, registered_here_at=None, now=uow.now)
            post = [Transfer(f"rural:{tid}", (Leg.debit(float_account(agent.id), amount),
                                              Leg.credit(user.account_code, amount)), "rural.cash_in",
                             reference=f"Cash-in at {agent.name[:60]}")]
            post += await self._accrue(uow, tid, agent, tier.commission, tier.super_pct, bool(found))
            [result, *_] = await uow.post(post)
            if result.error is not None:
                raise _float_error(result.error)
            await self._record(uow, tid, agent.id, TxKind.CASH_IN, number, amount, 0, me.staff_id, found)
            await uow.conn.execute(update(agents).where(agents.c.id == agent.id).values(cash=agents.c.cash + amount))
            await uow.emit(_sms(f"{tid}:customer", number,
                                f"您已在{agent.name}存入{_yuan(amount)}元，已到账钱包。"
                                f"{_yuan(amount)} CNY deposited at {agent.name}, in your wallet now."))
            row = (await uow.conn.execute(select(txns).where(txns.c.id == tid))).one()
            return _txn(row), 0

        txn, _ = await self.uow.run("rural_cash_in", work)
        return await self._with_float(txn)

    async def start_cash_out(self, me: AgentStaff, customer: str, amount: int, *,
                             idempotency_key: str) -> CashOutRequest:
        """The agent asks to pay ``customer`` cash: nothing moves yet. The customer gets a code
        by SMS (the fee shown) and reads it out to the agent, who types it
        (:meth:`confirm_cash_out`). Without it, nothing is ever paid out."""
        check_idempotency_key(idempotency_key)
        number = normalize_msisdn(customer)
        return await self._ask(derived_id("rco_", me.agent_id, idempotency_key), me.agent_id, number, amount,
                               "agent", me.staff_id)

    async def request_cash_out(self, customer: str, agent_msisdn: str, amount: int, *, key: str) -> CashOutRequest:
        """The customer asks (SMS ``QK`` to the agent's number) for cash: they get a code by
        SMS (the fee shown) and reply it to confirm (:meth:`confirm_by_customer`)."""
        number = normalize_msisdn(customer)
        agent_number = normalize_msisdn(agent_msisdn)
        row = await self.uow.run("rural_agent_by_number", lambda uow: _first(
            uow, select(agents).where(agents.c.msisdn == agent_number)))
        if row is None:
            raise errors.AgentNotFound(f"{mask_msisdn(agent_number)} is no agent's number", field="agent")
        return await self._ask(derived_id("rco_", number, key), row.id, number, amount, "customer", None)

    async def _ask(self, rid: str, agent_id: str, number: str, amount: int, by: str,
                   staff_id: str | None) -> CashOutRequest:
        check_amount(amount)
        fee = tier_of(TxKind.CASH_OUT, amount).fee
        user = await self._customer(number)
        code = f"{secrets.randbelow(10**6):06d}"
        # Balances are read before the transaction (the ledger is read on its own connection);
        # the ledger itself refuses any overdraft when the money moves.
        float_now = await self._balance(float_account(agent_id))
        available = (await self.uow.ledger.account(user.account_code)).available

        async def work(uow: UnitOfWork) -> Any:
            known = (await uow.conn.execute(select(cashouts).where(cashouts.c.id == rid))).first()
            if known is not None:
                if (known.customer, int(known.amount), known.agent_id) != (number, amount, agent_id):
                    raise IdempotencyConflict("this key asked another cash-out: use a new key", field="Idempotency-Key")
                return known, True
            agent = await _active_agent(uow, agent_id)
            await self._check_out_limits(uow, agent, number, amount, float_now)
            if amount + fee > available:
                raise errors.RuralInvalid("the customer's wallet does not hold the amount and its fee", field="amount")
            await uow.conn.execute(update(cashouts).where(cashouts.c.customer == number, cashouts.c.state == "pending")
                                   .values(state="void"))  # the newest request only
            await uow.conn.execute(insert(cashouts).values(
                id=rid, agent_id=agent_id, customer=number, amount=amount, fee=fee, started_by=by, staff_id=staff_id,
                code_hash=code_hash(self.code_key, "cash_out", rid, code), wrong=0, state="pending",
                expires_at=uow.now + CODE_TTL, created_at=uow.now))
            how = ("请回复 QK 验证码 确认。Reply QK and the code to confirm." if by == "customer" else
                   "如您本人在场取款，请将验证码告知代理点。"
                   "Tell the code to the agent only if you are there to take it.")
            await uow.emit(_sms(f"{rid}:code", number,
                                f"在{agent.name}取现{_yuan(amount)}元，手续费{_yuan(fee)}元，"
                                f"共扣{_yuan(amount + fee)}元，"
                                f"验证码{code}，{CODE_TTL.seconds // 60}分钟内有效。{how} Cash-out {_yuan(amount)} CNY "
                                f"at {agent.name}, fee {_yuan(fee)}: code {code}."))
            return (await uow.conn.execute(select(cashouts).where(cashouts.c.id == rid))).one(), False

        row, replayed = await self.uow.run("rural_ask_cash_out", work)
        return CashOutRequest(row.id, row.agent_id, row.customer, int(row.amount), int(row.fee), row.started_by,
                              row.state, as_utc(row.expires_at), replayed)

    async def confirm_cash_out(self, me: AgentStaff, code: str, *, request_id: str | None = None) -> Txn:
        """The agent types the code the customer read out: the cash-out is paid (once)."""
        return await self._confirm(code, request_id=request_id, agent_id=me.agent_id, started_by="agent")

    async def confirm_by_customer(self, customer: str, code: str) -> Txn:
        """The customer replied the code to their own request (SMS ``QK <code>``)."""
        return await self._confirm(code, customer=normalize_msisdn(customer), started_by="customer")

    async def _confirm(self, code: str, *, started_by: str, request_id: str | None = None,
                       agent_id: str | None = None, customer: str | None = None) -> Txn:
        async def find(uow: UnitOfWork) -> list[Any]:
            q = select(cashouts).where(cashouts.c.state.in_(("pending", "done")), cashouts.c.started_by == started_by)
            if request_id is not None:
                q = q.where(cashouts.c.id == request_id)
            if agent_id is not None:
                q = q.where(cashouts.c.agent_id == agent_id)
            if customer is not None:
                q = q.where(cashouts.c.customer == customer)
            return list(await uow.conn.execute(q.order_by(cashouts.c.created_at.desc()).limit(20)))

        rows = await self.uow.run("rural_find_cash_out", find)
        match = next((r for r in rows if r.code_hash == code_hash(self.code_key, "cash_out", r.id, code)), None)
        if match is not None and match.state == "done":
            row = await self.uow.run("rural_txn", lambda uow: _first(
                uow, select(txns).where(txns.c.id == match.txn_id)))
            return await self._with_float(_txn(row, replayed=True))
        pending = [r for r in rows if r.state == "pending"]
        now = self.uow.clock.now()
        if match is None or as_utc(match.expires_at) <= now:
            if len(pending) == 1:  # one request at stake: a wrong code counts towards voiding it
                p = pending[0]

                async def wrong(uow: UnitOfWork) -> None:
                    await uow.conn.execute(update(cashouts).where(cashouts.c.id == p.id).values(
                        wrong=cashouts.c.wrong + 1, state="void" if p.wrong + 1 >= CODE_TRIES else "pending"))

                await self.uow.run("rural_wrong_code", wrong)
            if not rows:
                raise errors.CashOutNotFound("no cash-out is waiting for a code here")
            raise errors.CodeWrong()
        return await self._pay_out(match)

    async def customer_cash_out(self, me: Principal, agent_msisdn: str, amount: int, pin: str, *,
                                idempotency_key: str) -> Txn:
        """In the app: the customer cashes out at the agent whose number they typed, with their PIN."""
        check_idempotency_key(idempotency_key)
        agent_number = normalize_msisdn(agent_msisdn)
        row = await self.uow.run("rural_agent_by_number", lambda uow: _first(
            uow, select(agents).where(agents.c.msisdn == agent_number)))
        if row is None:
            raise errors.AgentNotFound(f"{mask_msisdn(agent_number)} is no agent's number", field="agent")
        tid = derived_id("rtx_", me.user_id, idempotency_key)
        known = await self._known(tid, TxKind.CASH_OUT, me.msisdn, amount)
        if known is not None:
            return known
        check_amount(amount)
        await self.wallet.verify_pin(me.msisdn, pin)  # always the PIN: cash leaves the wallet
        fee = tier_of(TxKind.CASH_OUT, amount).fee
        request = _Pay(tid, row.id, me.msisdn, amount, fee, None)
        return await self._pay_out(request)

    async def _pay_out(self, request: Any) -> Txn:
        """Pay a confirmed cash-out: the wallet pays the float and the fee; the till gives the cash."""
        number, amount, fee = request.customer, int(request.amount), int(request.fee)
        tid = request.id if isinstance(request, _Pay) else derived_id("rtx_", request.id)
        user = await self._customer(number)
        payer = await self.wallet.authorize_payment(await self.wallet.principal(user.id), amount + fee, None,
                                                    consent=True)  # the customer's PIN or code was just checked
        tier = tier_of(TxKind.CASH_OUT, amount)
        float_now = await self._balance(float_account(request.agent_id))

        async def work(uow: UnitOfWork) -> Txn:
            again = (await uow.conn.execute(select(txns).where(txns.c.id == tid))).first()
            if again is not None:
                return _txn(again, replayed=True)
            if not isinstance(request, _Pay):
                claimed = await uow.conn.execute(update(cashouts).where(
                    cashouts.c.id == request.id, cashouts.c.state == "pending").values(state="done", txn_id=tid))
                if claimed.rowcount != 1:
                    raise errors.CashOutNotPending()
            agent = await _active_agent(uow, request.agent_id, lock=True)
            await self._check_out_limits(uow, agent, number, amount, float_now)
            await self.wallet.count_payment(uow, payer, amount + fee)
            reg = (await uow.conn.execute(select(registrations).where(
                registrations.c.msisdn == number, registrations.c.agent_id == agent.id))).first()
            found = fraud_flags(TxKind.CASH_OUT, customer=number, agent_numbers=[], earlier_deposits=[],
                                amount=amount, registered_here_at=as_utc(reg.registered_at) if reg else None,
                                now=uow.now)
            legs = [Leg.debit(user.account_code, amount + fee), Leg.credit(float_account(agent.id), amount)]
            legs += [Leg.credit(RURAL_FEES, fee)] if fee else []
            post = [Transfer(f"rural:{tid}", tuple(legs), "rural.cash_out", reference=f"Cash-out at {agent.name[:60]}")]
            post += await self._accrue(uow, tid, agent, tier.commission, tier.super_pct, bool(found))
            [result, *_] = await uow.post(post)
            if result.error is not None:
                raise result.error
            await self._record(uow, tid, agent.id, TxKind.CASH_OUT, number, amount, fee,
                               getattr(request, "staff_id", None), found)
            await uow.conn.execute(update(agents).where(agents.c.id == agent.id).values(cash=agents.c.cash - amount))
            await uow.emit(_sms(f"{tid}:customer", number,
                                f"您已在{agent.name}取现{_yuan(amount)}元，手续费{_yuan(fee)}元。"
                                f"Cash-out {_yuan(amount)} CNY at {agent.name}, fee {_yuan(fee)} CNY."))
            return _txn((await uow.conn.execute(select(txns).where(txns.c.id == tid))).one())

        return await self._with_float(await self.uow.run("rural_cash_out", work))

    async def _balance(self, code: str) -> int:
        return (await self.uow.ledger.account(code)).balance

    async def _check_out_limits(self, uow: UnitOfWork, agent: Any, number: str, amount: int, float_now: int) -> None:
        today = _day(uow.now)
        check_cash_out_limits(
            self.limits, amount, float_now=float_now,
            agent_today=await _sum(uow, txns.c.agent_id == agent.id, txns.c.kind == TxKind.CASH_OUT.value,
                                   txns.c.day == today),
            customer_today=await _sum(uow, txns.c.customer == number, txns.c.kind == TxKind.CASH_OUT.value,
                                      txns.c.day == today))

    async def _customer(self, number: str) -> User:
        try:
            user = await self.wallet.user_by_msisdn(number)
        except MobipayError:
            raise errors.CustomerNotRegistered(f"{mask_msisdn(number)} has no wallet: register it at the agent first",
                                               field="customer") from None
        return user

    async def _known(self, tid: str, kind: TxKind, number: str, amount: int) -> Txn | None:
        row = await self.uow.run("rural_known", lambda uow: _first(uow, select(txns).where(txns.c.id == tid)))
        if row is None:
            return None
        if (row.kind, row.customer, int(row.amount)) != (kind.value, number, amount):
            raise IdempotencyConflict("this Idempotency-Key was used for another transaction", field="Idempotency-Key")
        return await self._with_float(_txn(row, replayed=True))

    async def _with_float(self, t: Txn) -> Txn:
        balance = (await self.uow.ledger.account(float_account(t.agent_id))).balance
        return Txn(**{**{f: getattr(t, f) for f in t.__dataclass_fields__}, "float_after": balance})

    async def _accrue(self, uow: UnitOfWork, tid: str, agent: Any, commission: int, super_pct: int,
                      flagged: bool) -> list[Transfer]:
        """The commission lines of a transaction (held when flagged) and the accrual posting."""
        if commission <= 0:
            return []
        mine, theirs = split(commission, super_pct, agent.super_id is not None)
        state = "held" if flagged else "accrued"
        month = _month(uow.now)
        rows = [{"txn_id": tid, "agent_id": agent.id, "role": "agent", "month": month, "amount": mine, "state": state}]
        if theirs:
            rows.append({"txn_id": tid, "agent_id": agent.super_id, "role": "super", "month": month, "amount": theirs,
                         "state": state})
        await uow.conn.execute(insert(commissions), rows)
        return [Transfer(f"rural:{tid}:commission", (Leg.debit(COMMISSION_EXPENSE, commission),
                                                     Leg.credit(COMMISSION_PAYABLE, commission)),
                         "rural.commission_accrued", reference=f"Commission {tid}")]

    async def _record(self, uow: UnitOfWork, tid: str, agent_id: str, kind: TxKind, customer: str, amount: int,
                      fee: int, staff_id: str | None, found: Sequence[Flag]) -> None:
        await uow.conn.execute(insert(txns).values(
            id=tid, agent_id=agent_id, kind=kind.value, customer=customer, amount=amount, fee=fee, staff_id=staff_id,
            flags=",".join(f.value for f in found), day=_day(uow.now), created_at=uow.now))
        for rule in found:
            await uow.conn.execute(insert(flags).values(id=new_id("rfl"), txn_id=tid, agent_id=agent_id,
                                                        rule=rule.value, state="open", created_at=uow.now))
        if found:
            log.warning("rural.flagged", txn=tid, agent=agent_id, rules=[f.value for f in found])

    # ------------------------------------------------------------------ float: super-agents and the bank

    async def rebalance(self, me: AgentStaff, agent_id: str, amount: int, *, to_agent: bool,
                        idempotency_key: str) -> Txn:
        """A super-agent moves float to one of its agents (or takes it back)."""
        check_idempotency_key(idempotency_key)
        if not isinstance(amount, int) or amount <= 0:
            raise errors.RuralInvalid("the amount is more than zero", field="amount")
        tid = derived_id("rtx_", me.agent_id, idempotency_key)
        known = await self._known(tid, TxKind.REBALANCE, agent_id, amount)
        if known is not None:
            return known

        target_float = await self._balance(float_account(agent_id))

        async def work(uow: UnitOfWork) -> Txn:
            sup = await _active_agent(uow, me.agent_id)
            target = await _agent_row(uow, agent_id)
            if sup.kind != AgentKind.SUPER.value or target.super_id != sup.id:
                raise errors.NotSuperAgent()
            src, dst = (sup.id, target.id) if to_agent else (target.id, sup.id)
            if to_agent and target_float + amount > self.limits.max_float:
                raise errors.AgentLimitExceeded("the agent's float would pass its cap", field="amount", limit="float")
            [result] = await uow.post([Transfer(f"rural:{tid}", (Leg.debit(float_account(src), amount),
                                                                 Leg.credit(float_account(dst), amount)),
                                                "rural.rebalance", reference=f"Float {src} to {dst}")])
            if result.error is not None:
                raise _float_error(result.error)
            await self._record(uow, tid, me.agent_id, TxKind.REBALANCE, agent_id, amount, 0, me.staff_id, [])
            return _txn((await uow.conn.execute(select(txns).where(txns.c.id == tid))).one())

        return await self._with_float(await self.uow.run("rural_rebalance", work))

    async def buy_float(self, me: AgentStaff, amount: int, *, idempotency_key: str) -> PartnerOrder:
        """Float bought from the bank: the agent's verified card is debited; the float is
        credited when the bank says so (held as pending until then)."""
        check_idempotency_key(idempotency_key)
        row = await self.uow.run("rural_agent", lambda uow: _agent_row(uow, me.agent_id))
        if not row.bank_token:
            raise errors.BankCardMissing()
        held = (await self.uow.ledger.account(float_account(row.id))).balance
        if amount <= 0 or held + amount > self.limits.max_float:
            raise errors.AgentLimitExceeded("the float would pass its cap (or the amount is not positive)",
                                            field="amount", limit="float")
        return await self.orders.place(
            derived_id("rfb_", row.id, idempotency_key), partner=PARTNER, kind=BUY, user_id=row.id, msisdn=row.msisdn,
            amount=amount, fee=0, legs=[Leg.debit(BANK_SETTLEMENT, amount), Leg.credit(float_account(row.id), amount)],
            details={"token": row.bank_token, "agent": row.id}, reference=f"Float bought by {row.name[:60]}")

    async def sell_float(self, me: AgentStaff, amount: int, *, idempotency_key: str) -> PartnerOrder:
        """Float sold to the bank: held from the float now, paid to the agent's bank account."""
        check_idempotency_key(idempotency_key)
        row = await self.uow.run("rural_agent", lambda uow: _agent_row(uow, me.agent_id))
        if not row.bank_account:
            raise errors.BankCardMissing("the agent has no bank account for payouts")
        if amount <= 0:
            raise errors.RuralInvalid("the amount is more than zero", field="amount")
        try:
            return await self.orders.place(
                derived_id("rfs_", row.id, idempotency_key), partner=PARTNER, kind=SELL, user_id=row.id,
                msisdn=row.msisdn, amount=amount, fee=0,
                legs=[Leg.debit(float_account(row.id), amount), Leg.credit(BANK_SETTLEMENT, amount)],
                details={"account": row.bank_account, "agent": row.id}, reference=f"Float sold by {row.name[:60]}")
        except MobipayError as exc:
            raise _float_error(exc) from None

    async def _float_settled(self, uow: UnitOfWork, order: PartnerOrder, state: BankOrderState) -> None:
        if state is BankOrderState.SUCCEEDED:
            kind = TxKind.FLOAT_BUY if order.kind == BUY else TxKind.FLOAT_SELL
            await self._record(uow, order.id, order.user_id, kind, "bank", order.amount, 0, None, [])

    # ------------------------------------------------------------------ reads

    async def statement(self, agent_id: str, limit: int = 5) -> list[Txn]:
        """The agent's latest transactions (mini statement)."""
        rows = await self.uow.run("rural_statement", lambda uow: _all(uow, select(txns).where(
            txns.c.agent_id == agent_id).order_by(txns.c.created_at.desc(), txns.c.id.desc()).limit(limit)))
        return [_txn(r) for r in rows]

    async def commission_summary(self, agent_id: str, month: str) -> CommissionSummary:
        month_of(month)

        async def work(uow: UnitOfWork) -> list[Any]:
            return list(await uow.conn.execute(select(commissions.c.state, func.sum(commissions.c.amount),
                                                      func.count()).where(
                commissions.c.agent_id == agent_id, commissions.c.month == month).group_by(commissions.c.state)))

        by = {r[0]: (int(r[1] or 0), int(r[2])) for r in await self.uow.run("rural_commissions", work)}
        return CommissionSummary(agent_id, month, by.get("accrued", (0, 0))[0], by.get("held", (0, 0))[0],
                                 by.get("paid", (0, 0))[0], sum(n for _, n in by.values()))

    async def pay_commissions(self, month: str, *, actor: str = "") -> PayRun:
        """Pay a month's accrued commissions into each earner's float, one posting per earner,
        all in one batch (the ledger's batch path). Held lines wait for the risk decision; a
        second run pays only what the first did not."""
        month_of(month)
        run = PayRun(month)

        async def work(uow: UnitOfWork) -> None:
            rows = list(await uow.conn.execute(select(commissions.c.agent_id, func.sum(commissions.c.amount),
                                                      func.count()).where(
                commissions.c.month == month, commissions.c.state == "accrued").group_by(commissions.c.agent_id)
                .order_by(commissions.c.agent_id)))
            if not rows:
                return
            batch = [Transfer(f"rural:commission:{month}:{r[0]}:{uow.now.timestamp():.0f}",
                              (Leg.debit(COMMISSION_PAYABLE, int(r[1])), Leg.credit(float_account(r[0]), int(r[1]))),
                              "rural.commission_paid", reference=f"Commissions {month}") for r in rows]
            results = await uow.post(batch)
            for r, result, command in zip(rows, results, batch, strict=True):
                if result.error is not None:
                    raise result.error
                await uow.conn.execute(update(commissions).where(
                    commissions.c.month == month, commissions.c.state == "accrued", commissions.c.agent_id == r[0])
                    .values(state="paid", paid_in=command.id))
                run.by_agent[r[0]] = int(r[1])
                run.lines += int(r[2])
            run.agents, run.amount = len(rows), sum(run.by_agent.values())
            if actor:
                await uow.audit(actor=actor, action="rural.commissions_paid", target=month, reason="monthly run",
                                after={"agents": run.agents, "amount": run.amount})

        await self.uow.run("rural_pay_commissions", work)
        return run

    async def pay_last_month(self) -> int:
        """The worker's job: on any day, last month's accrued commissions (none twice)."""
        now = self.uow.clock.now().astimezone(SHANGHAI)
        first = now.replace(day=1)
        return (await self.pay_commissions(_month(first - timedelta(days=1)))).agents

    # ------------------------------------------------------------------ risk

    async def flagged(self, state: str = "open", limit: int = 100) -> list[FlagOut]:
        rows = await self.uow.run("rural_flags", lambda uow: _all(uow, select(flags).where(
            flags.c.state == state).order_by(flags.c.created_at).limit(limit)))
        return [FlagOut(r.id, r.txn_id, r.agent_id, r.rule, r.state, as_utc(r.created_at), r.decided_by) for r in rows]

    async def decide_flag(self, flag_id: str, *, actor: str, fraud: bool, note: str = "") -> FlagOut:
        """The risk role's decision on a flag: cleared (the commission is paid with the month)
        or fraud (its commission is void and the accrual reversed). Audited."""
        self.roster.require(actor, RISK)

        async def work(uow: UnitOfWork) -> Any:
            row = (await uow.conn.execute(select(flags).where(flags.c.id == flag_id).with_for_update())).first()
            if row is None:
                raise errors.FlagNotFound(field="flag_id")
            if row.state != "open":
                return row
            await uow.conn.execute(update(flags).where(flags.c.id == flag_id).values(
                state="confirmed" if fraud else "cleared", decided_by=actor, note=note[:200], decided_at=uow.now))
            still_open = (await uow.conn.execute(select(func.count()).select_from(flags).where(
                flags.c.txn_id == row.txn_id, flags.c.state == "open"))).scalar_one()
            if fraud:
                held = await uow.conn.execute(update(commissions).where(
                    commissions.c.txn_id == row.txn_id, commissions.c.state == "held").values(state="void"))
                if held.rowcount:
                    [r] = await uow.post([Reverse(f"rural:{row.txn_id}:commission:void",
                                                  f"rural:{row.txn_id}:commission", code="rural.commission_void")])
                    if r.error is not None:
                        raise r.error
            elif not still_open:
                await uow.conn.execute(update(commissions).where(
                    commissions.c.txn_id == row.txn_id, commissions.c.state == "held").values(state="accrued"))
            await uow.audit(actor=actor, action="rural.flag_" + ("fraud" if fraud else "cleared"), target=row.txn_id,
                            reason=note or row.rule, after={"rule": row.rule})
            return (await uow.conn.execute(select(flags).where(flags.c.id == flag_id))).one()

        r = await self.uow.run("rural_decide_flag", work)
        return FlagOut(r.id, r.txn_id, r.agent_id, r.rule, r.state, as_utc(r.created_at), r.decided_by)

    # ------------------------------------------------------------------ locator and console

    async def locate(self, *, county: str = "", township: str = "", village: str = "", limit: int = 50) -> list[Agent]:
        """Active agents of a county, township or village (any of them may be given)."""
        if not (county or township or village):
            raise errors.RuralInvalid("name a county, township or village", field="village")
        q = select(agents).where(agents.c.state == "active", agents.c.kind == AgentKind.AGENT.value)
        for column, value in ((agents.c.county, county), (agents.c.township, township), (agents.c.village, village)):
            if value:
                q = q.where(column == value.strip())
        rows = await self.uow.run("rural_locate", lambda uow: _all(uow, q.order_by(
            agents.c.township, agents.c.village, agents.c.name).limit(min(limit, 200))))
        return [_agent(r) for r in rows]

    async def activity_by_county(self, since: datetime, until: datetime) -> list[CountyActivity]:
        """Per county: agents, cash-ins and cash-outs (count and amount), flagged transactions."""

        async def work(uow: UnitOfWork) -> tuple[list[Any], list[Any]]:
            moves = list(await uow.conn.execute(select(
                agents.c.county, txns.c.kind, func.count(), func.sum(txns.c.amount),
                func.sum(case((func.length(txns.c.flags) > 0, 1), else_=0))).join(
                agents, agents.c.id == txns.c.agent_id).where(
                txns.c.created_at >= since, txns.c.created_at < until).group_by(agents.c.county, txns.c.kind)))
            counts = list(await uow.conn.execute(select(agents.c.county, func.count()).where(
                agents.c.kind == AgentKind.AGENT.value).group_by(agents.c.county)))
            return moves, counts

        moves, counts = await self.uow.run("rural_activity", work)
        out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for county, n in counts:
            out[county]["agents"] = int(n)
        for county, kind, n, total, flagged in moves:
            if kind in (TxKind.CASH_IN.value, TxKind.CASH_OUT.value):
                out[county][kind] += int(n)
                out[county][kind + "_amount"] += int(total or 0)
            out[county]["flagged"] += int(flagged or 0)
        return [CountyActivity(c, v["agents"], v["cash_in"], v["cash_in_amount"], v["cash_out"],
                               v["cash_out_amount"], v["flagged"]) for c, v in sorted(out.items())]

    # ------------------------------------------------------------------ SMS

    async def sms(self, sender: str, text: str) -> str | None:
        """An SMS answered in words; None when it is no rural command (the channel goes on)."""
        try:
            cmd = parse_sms(text)
        except MobipayError as exc:
            return exc.detail
        if cmd is None:
            return None
        try:
            return await self._sms(normalize_msisdn(sender), cmd)
        except MobipayError as exc:
            return exc.detail

    async def _sms(self, sender: str, cmd: SmsCommand) -> str:
        if cmd.action == "help":
            return SMS_HELP
        if cmd.action == "customer_cash_out":
            r = await self.request_cash_out(sender, cmd.msisdn, cmd.amount, key=f"sms:{cmd.msisdn}:{cmd.amount}:"
                                            f"{self.uow.clock.now():%Y%m%d%H%M}")
            return "" if not r.replayed else "验证码已发送。The code was sent."
        if cmd.action == "confirm_cash_out" and cmd.words == ("customer_cash_out",):
            t = await self.confirm_by_customer(sender, cmd.code)
            return (f"取现{_yuan(t.amount)}元成功，请向代理点领取现金。"
                    f"Cash-out of {_yuan(t.amount)} CNY done: take the cash.")
        if cmd.action == "price_sub":
            return await self._price_sub(sender, cmd)
        me = await self.staff_by_number(sender)
        if me is None:
            return "您不是代理点员工。This number is no agent's staff. " + SMS_HELP
        key = f"sms:{cmd.action}:{cmd.msisdn}:{cmd.amount}:{self.uow.clock.now():%Y%m%d%H%M}"
        if cmd.action == "cash_in":
            t = await self.cash_in(me, cmd.msisdn, cmd.amount, idempotency_key=key)
            return (f"存款成功：{mask_msisdn(t.customer)} {_yuan(t.amount)}元，"
                    f"备付金余额{_yuan(t.float_after or 0)}元。"
                    f"Cash-in done; float {_yuan(t.float_after or 0)} CNY.")
        if cmd.action == "agent_cash_out":
            r = await self.start_cash_out(me, cmd.msisdn, cmd.amount, idempotency_key=key)
            return (f"已向{mask_msisdn(r.customer)}发送验证码（手续费{_yuan(r.fee)}元），请客户报码后发 DQ 验证码。"
                    "Code sent to the customer: send DQ and the code they read out.")
        if cmd.action == "confirm_cash_out":
            t = await self.confirm_cash_out(me, cmd.code)
            return (f"取现成功：请付给客户{_yuan(t.amount)}元现金。备付金余额{_yuan(t.float_after or 0)}元。"
                    f"Pay {_yuan(t.amount)} CNY cash; float {_yuan(t.float_after or 0)} CNY.")
        if cmd.action == "float":
            a = await self.agent(me.agent_id)
            return (f"备付金余额{_yuan(a.float_balance)}元，现金{_yuan(a.cash)}元。"
                    f"Float {_yuan(a.float_balance)} CNY, cash {_yuan(a.cash)} CNY.")
        if cmd.action == "statement":
            lines = await self.statement(me.agent_id, 5)
            if not lines:
                return "暂无交易。No transactions yet."
            words = {"cash_in": "存", "cash_out": "取", "rebalance": "调", "float_buy": "购", "float_sell": "售"}
            return "明细：" + "；".join(
                f"{t.created_at.astimezone(SHANGHAI):%m-%d %H:%M} {words.get(t.kind, t.kind)}{_yuan(t.amount)}"
                for t in lines) + "。Latest transactions as above."
        if cmd.action == "commissions":
            s = await self.commission_summary(me.agent_id, _month(self.uow.clock.now()))
            return (f"本月佣金：待付{_yuan(s.accrued)}元，审核中{_yuan(s.held)}元，已付{_yuan(s.paid)}元。"
                    f"Commissions this month: {_yuan(s.accrued)} due, {_yuan(s.held)} held, {_yuan(s.paid)} paid.")
        if cmd.action == "pickup" and self.market is not None:
            order = await self.market.pick_up(me, cmd.words[0], cmd.code)
            return f"取货确认：订单{order.id}已交付。Order {order.id} picked up."
        return SMS_HELP

    market: Any = None  # the marketplace (rural.market.Marketplace), plugged in by the bootstrap

    async def _price_sub(self, sender: str, cmd: SmsCommand) -> str:
        if self.market is None:
            return "价格订阅暂不可用。Price notices are not available."
        product, county = cmd.words
        await self.market.subscribe_prices(sender, product, county)
        return f"已订阅{county}{product}价格通知。Subscribed to {product} prices in {county}."


@dataclass(frozen=True, slots=True)
class _Pay:
    """A cash-out confirmed in the app with the PIN (no waiting request)."""

    id: str
    agent_id: str
    customer: str
    amount: int
    fee: int
    staff_id: str | None
    txn_id: str | None = None


def _float_error(exc: MobipayError) -> MobipayError:
    if exc.code == "INSUFFICIENT_FUNDS":
        return errors.FloatInsufficient("the float is too low: buy float from the bank or the super-agent",
                                        field="amount")
    return exc


async def _first(uow: UnitOfWork, q: Any) -> Any:
    return (await uow.conn.execute(q)).first()


async def _all(uow: UnitOfWork, q: Any) -> list[Any]:
    return list(await uow.conn.execute(q))


async def _sum(uow: UnitOfWork, *where: Any) -> int:
    return int((await uow.conn.execute(select(func.coalesce(func.sum(txns.c.amount), 0)).where(*where))).scalar_one())


async def _agent_row(uow: UnitOfWork, agent_id: str, *, lock: bool = False) -> Any:
    q = select(agents).where(agents.c.id == agent_id)
    row = (await uow.conn.execute(q.with_for_update() if lock else q)).first()
    if row is None:
        raise errors.AgentNotFound(field="agent_id")
    return row


async def _active_agent(uow: UnitOfWork, agent_id: str, *, lock: bool = False) -> Any:
    """The agent, row-locked when it is about to move money: its day totals are read after."""
    row = await _agent_row(uow, agent_id, lock=lock)
    if row.state != "active":
        raise errors.AgentNotActive()
    return row
