"""The enterprise one-card (移动企业一卡通): employers, employees, allowance accounts,
closed-loop merchants, allowance payments, month-end rollover or expiry, readers and
attendance. One method per use case, one transaction each.

An employer is a merchant account (onboarded through :class:`MerchantService`, approved)
with an employer row: its rules and its funds account ``liability:enterprise:funds:<id>``,
paid in from its bank (``deposit``). Each employee has an allowance account
``liability:enterprise:allowance:<employee>``. Both may not go negative, so the ledger itself
refuses a funding run past the employer's funds or an allowance spent twice at once.

Money moves (each a balanced ledger posting, each under an idempotency key):

* deposit: ``asset:bank:settlement`` → employer funds (the bank's receipt reference is the key);
* a funding run: employer funds → every named employee's allowance, all the run's transfers in
  one ledger batch in one transaction (linked: the run is posted whole or not at all);
* a payment at a closed-loop merchant: ONE transfer with two debit legs, the allowance (first,
  as far as the rules let it) and the employee's own wallet (the rest), crediting the
  merchant's payable; recorded as ONE paid trade (``MerchantService.record_payments_in``), so
  the receipt, the merchant's statement and its T+1 settlement see one payment;
* month end: what is left of a month's allowance stays (rollover, up to a cap) or goes back to
  the employer's funds (expiry), one ledger batch per employer and month, once.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import func, insert, select, update

from mobipay.enterprise import errors
from mobipay.enterprise.model import (
    DEFAULT_RULES,
    READER_WINDOW_S,
    AttendanceLine,
    SpendingRules,
    Split,
    attendance_days,
    attendance_line,
    check_reader_key,
    csv_rows,
    month_bounds,
    month_end_split,
    month_of,
    new_reader_key,
    old_money_left,
    previous_month,
    reader_signing_string,
    reader_verifies,
    rules_from,
    split_payment,
)
from mobipay.enterprise.tables import (
    closed_loop,
    employees,
    employers,
    funding_lines,
    funding_runs,
    imports,
    month_closes,
    payments,
    reader_nonces,
    readers,
    taps,
)
from mobipay.instore.micropay import Micropay
from mobipay.instore.service import DeviceTokens, InStore
from mobipay.instore.terminals import Terminal
from mobipay.kernel.clock import SHANGHAI, as_utc
from mobipay.kernel.errors import IdempotencyConflict, MobipayError, ValidationFailed
from mobipay.kernel.events import SmsRequested
from mobipay.kernel.ids import check_idempotency_key, new_id
from mobipay.kernel.money import check_amount
from mobipay.kernel.msisdn import mask_msisdn, normalize_msisdn
from mobipay.ledger.chart import BANK_SETTLEMENT
from mobipay.ledger.model import AccountKind, AccountSpec, Leg, Transfer
from mobipay.ledger.uow import Transaction, UnitOfWork, UnitOfWorkRunner
from mobipay.merchants.service import CounterPayment, Merchant, MerchantService
from mobipay.orders.service import order_id as derived_id
from mobipay.platform.db import dialect_insert
from mobipay.wallet.service import Principal, WalletService

log = structlog.get_logger(__name__)

FUNDS_PREFIX = "liability:enterprise:funds:"
ALLOWANCE_PREFIX = "liability:enterprise:allowance:"
ACTIVE, LEFT, PAUSED = "active", "left", "paused"  # paused: suspended by the employer, still enrolled
READER_KINDS = ("door", "attendance")
MAX_TAPS_PER_UPLOAD = 5_000
FUNDING_CHUNK = 2_000  # transfers a funding run posts per ledger batch (the batch path's own size)

#: The owners (wallet user ids) of in-store device tokens (NFC: HCE or SIM sticker), for the ids
#: that exist and are active: the bootstrap wires it to the in-store service's device tokens, the
#: same token that pays at a shop and passes a transit gate.
TokenOwners = Callable[[Sequence[str]], Awaitable[dict[str, str]]]


def device_token_owners(devices: DeviceTokens) -> TokenOwners:
    """The port over the in-store service's device tokens: active tokens only (a suspended
    phone, reported lost, opens no door and records no attendance)."""

    async def owners(token_ids: Sequence[str]) -> dict[str, str]:
        found = await devices.lookup(token_ids)
        return {t.id: t.user_id for t in found.values() if t.state == "active"}

    return owners


def funds_account(employer_id: str) -> str:
    return FUNDS_PREFIX + employer_id


def allowance_account(employee_id: str) -> str:
    return ALLOWANCE_PREFIX + employee_id


@dataclass(frozen=True, slots=True)
class Employer:
    id: str  # the merchant id
    name: str
    funds_account: str
    rules: SpendingRules
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Employee:
    id: str
    employer_id: str
    msisdn: str
    user_id: str
    name: str
    employee_no: str
    allowance_account: str
    state: str
    created_at: datetime
    balance: int = 0


@dataclass(frozen=True, slots=True)
class RowOutcome:
    """One line of an enrolment file: ``ok`` with the employee, or the refusal's code and words."""

    line: int
    phone: str
    ok: bool
    code: str = ""
    detail: str = ""
    employee_id: str = ""


@dataclass(frozen=True, slots=True)
class ImportResult:
    id: str
    rows: tuple[RowOutcome, ...]
    replayed: bool = False

    @property
    def enrolled(self) -> int:
        return sum(r.ok for r in self.rows)

    @property
    def failed(self) -> int:
        return sum(not r.ok for r in self.rows)


@dataclass(frozen=True, slots=True)
class FundingRun:
    id: str
    employer_id: str
    month: str
    purpose: str
    employees: int
    total: int
    created_at: datetime
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class Receipt:
    """One payment at a closed-loop merchant: one trade, two funding legs."""

    id: str
    trade_id: str
    transfer_id: str
    merchant_id: str
    merchant_name: str
    store_id: str | None
    amount: int
    allowance: int
    wallet: int
    window: str
    reason: str
    created_at: datetime
    allowance_left: int = 0
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class MonthClose:
    employer_id: str
    month: str
    rule: str
    employees: int
    kept: int
    returned: int
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class Reader:
    id: str
    employer_id: str
    label: str
    kind: str
    public_key: str
    state: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class TapIn:
    token_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class TapsOutcome:
    accepted: int
    duplicates: int
    rejected: tuple[tuple[int, str], ...] = ()  # (index in the upload, reason)


@dataclass(frozen=True, slots=True)
class DaySpend:
    day: str
    payments: int
    allowance: int
    wallet: int


@dataclass(frozen=True, slots=True)
class EmployeeSpend:
    employee_id: str
    name: str
    msisdn: str
    funded: int
    allowance: int
    wallet: int
    payments: int
    balance: int


@dataclass(frozen=True, slots=True)
class Report:
    """An employer's month for its page and CSVs."""

    employer: Employer
    month: str
    employees: list[Employee]
    runs: list[FundingRun]
    by_day: list[DaySpend]
    by_employee: list[EmployeeSpend]
    attendance: list[AttendanceLine]
    funds: int
    closed_loop: list[tuple[str, str, str]] = field(default_factory=list)  # (merchant id, name, label)


def _employer(row: Any) -> Employer:
    raw = row.rules if isinstance(row.rules, dict) else json.loads(row.rules)
    return Employer(row.id, row.name, row.funds_account, rules_from(raw), as_utc(row.created_at))


def _employee(row: Any, balance: int = 0) -> Employee:
    return Employee(row.id, row.employer_id, row.msisdn, row.user_id, row.name, row.employee_no,
                    row.allowance_account, row.state, as_utc(row.created_at), balance)


def _run(row: Any, replayed: bool = False) -> FundingRun:
    return FundingRun(row.id, row.employer_id, row.month, row.purpose, int(row.employees), int(row.total),
                      as_utc(row.created_at), replayed)


def _reader(row: Any) -> Reader:
    return Reader(row.id, row.employer_id, row.label, row.kind, row.public_key, row.state, as_utc(row.created_at))


async def _lock_employer(uow: UnitOfWork, employer_id: str) -> None:
    await uow.conn.execute(select(employers.c.id).where(employers.c.id == employer_id).with_for_update())


def _spec(code: str, name: str) -> AccountSpec:
    return AccountSpec(code, AccountKind.LIABILITY, name=name[:100], debits_must_not_exceed_credits=True)


class Enterprise:
    """Employers, employees, allowances, closed-loop payments, month ends and attendance."""

    def __init__(self, uow: UnitOfWorkRunner, merchants: MerchantService, wallet: WalletService, instore: InStore,
                 token_owners: TokenOwners | None = None) -> None:
        self.uow = uow
        self.merchants = merchants
        self.wallet = wallet
        self.instore = instore
        self.token_owners = token_owners
        # a closed-loop trade's money came partly from an allowance: a refund through the
        # merchant API would pay it all into the wallet, so it is refused there (refund at the employer)
        merchants.refund_guards.append(self._refund_guard)

    # ------------------------------------------------------------------ employers

    async def onboard(self, *, name: str, credit_code: str, legal_person: str, contact: str,
                      settlement_account: str, mcc: str = "5812", website: str = "",
                      rules: SpendingRules = DEFAULT_RULES, actor: str = "") -> Employer:
        """A company onboarded as a merchant (the merchants' own application and review);
        once approved it becomes an employer at once, else it waits for the review and
        :meth:`register` makes it one after."""
        merchant = await self.merchants.apply(name=name, credit_code=credit_code, legal_person=legal_person,
                                              contact=contact, mcc=mcc, website=website,
                                              settlement_account=settlement_account)
        if merchant.state.value != "approved":
            raise errors.EmployerInvalid(f"the company's merchant account {merchant.id} waits for review: "
                                         "register it as an employer once approved", field="mcc",
                                         merchant_id=merchant.id)
        return await self.register(merchant.id, rules, actor=actor)

    async def register(self, merchant_id: str, rules: SpendingRules = DEFAULT_RULES, *, actor: str = "") -> Employer:
        """An approved merchant account becomes an employer: its rules and its funds account."""
        merchant = await self.merchants.set_up_merchant(merchant_id)

        async def work(uow: UnitOfWork) -> None:
            if (await uow.conn.execute(select(employers.c.id).where(employers.c.id == merchant_id))).first():
                raise errors.EmployerInvalid(f"{merchant.name} is an employer already", field="merchant_id")
            await uow.open_account(_spec(funds_account(merchant_id), f"Employer funds {merchant.name}"))
            await uow.conn.execute(insert(employers).values(
                id=merchant_id, name=merchant.name[:128], funds_account=funds_account(merchant_id),
                rules=rules.to_json(), created_at=uow.now))
            await uow.audit(actor=actor or "operator", action="enterprise.employer_register", target=merchant_id,
                            reason=merchant.name, after=rules.to_json())

        await self.uow.run("enterprise_register", work)
        return await self.employer(merchant_id)

    async def employer(self, employer_id: str) -> Employer:
        async def work(uow: UnitOfWork) -> Any:
            return (await uow.conn.execute(select(employers).where(employers.c.id == employer_id))).first()

        row = await self.uow.run("enterprise_employer", work)
        if row is None:
            raise errors.EmployerNotFound(f"no employer {employer_id}", field="employer_id")
        return _employer(row)

    async def is_employer(self, merchant_id: str) -> bool:
        try:
            await self.employer(merchant_id)
        except errors.EmployerNotFound:
            return False
        return True

    async def employers_list(self) -> list[Employer]:
        async def work(uow: UnitOfWork) -> list[Any]:
            return list(await uow.conn.execute(select(employers).order_by(employers.c.created_at)))

        return [_employer(r) for r in await self.uow.run("enterprise_employers", work)]

    async def set_rules(self, employer_id: str, rules: SpendingRules, *, actor: str) -> Employer:
        """New spending rules (audited with the old ones); they apply from the next payment."""
        before = await self.employer(employer_id)

        async def work(uow: UnitOfWork) -> None:
            await uow.conn.execute(update(employers).where(employers.c.id == employer_id)
                                   .values(rules=rules.to_json()))
            await uow.audit(actor=actor or "operator", action="enterprise.rules", target=employer_id,
                            reason="spending rules changed", before=before.rules.to_json(), after=rules.to_json())

        await self.uow.run("enterprise_rules", work)
        return await self.employer(employer_id)

    async def deposit(self, employer_id: str, amount: int, *, bank_reference: str, actor: str) -> int:
        """The employer's bank transfer received into its funds (the bank reference is the
        idempotency key: the same receipt twice posts once). Answers the funds balance."""
        check_idempotency_key(bank_reference)
        amount = check_amount(amount)
        employer = await self.employer(employer_id)

        async def work(uow: UnitOfWork) -> None:
            [result] = await uow.post([Transfer(f"ent:deposit:{employer_id}:{bank_reference}", (
                Leg.debit(BANK_SETTLEMENT, amount), Leg.credit(employer.funds_account, amount)),
                "enterprise.deposit", reference=f"{employer.name[:60]} {bank_reference}")])
            if result.error is not None:
                raise result.error
            if not result.replayed:
                await uow.audit(actor=actor or "operator", action="enterprise.deposit", target=employer_id,
                                reason=bank_reference, after={"amount": amount})

        await self.uow.run("enterprise_deposit", work)
        return (await self.uow.ledger.account(employer.funds_account)).balance

    async def funds(self, employer_id: str) -> int:
        """What the employer's funds account holds (fen), for its API and page."""
        return (await self.uow.ledger.account(funds_account(employer_id))).balance

    # ------------------------------------------------------------------ employees

    async def enrol(self, employer_id: str, phone: str, *, name: str = "", employee_no: str = "",
                    actor: str = "") -> Employee:
        """One employee by phone number (a registered wallet); refusals as in the CSV import."""
        result = await self._enrol(employer_id, [(0, phone, name, employee_no)], actor=actor)
        outcome = result[0]
        if not outcome.ok:
            raise errors.EmployeeInvalid(outcome.detail, field="phone", reason=outcome.code)
        return await self.employee(employer_id, outcome.employee_id)

    async def enrol_once(self, employer_id: str, phone: str, *, idempotency_key: str, name: str = "",
                         employee_no: str = "", actor: str = "") -> tuple[Employee, bool]:
        """:meth:`enrol` under an Idempotency-Key (the employer API): a retry with the same key
        and number answers the first enrolment (True: replayed); the key is kept only when
        the number was enrolled, so a refusal changes nothing."""
        check_idempotency_key(idempotency_key)
        digest = hashlib.sha256(json.dumps(["enrol", phone, name, employee_no]).encode()).hexdigest()
        iid = derived_id("eim_", employer_id, idempotency_key)
        known = await self._import_row(iid)
        if known is not None:
            if known.digest != digest:
                raise IdempotencyConflict("this Idempotency-Key enrolled another number", field="Idempotency-Key")
            return await self.employee(employer_id, _import_result(known, replayed=True).rows[0].employee_id), True
        try:
            [outcome] = await self._enrol(employer_id, [(0, phone, name, employee_no)], actor=actor, import_id=iid,
                                          digest=digest, keep_refused=False)
        except _Raced:
            return await self.enrol_once(employer_id, phone, idempotency_key=idempotency_key, name=name,
                                         employee_no=employee_no, actor=actor)
        if not outcome.ok:
            raise errors.EmployeeInvalid(outcome.detail, field="phone", reason=outcome.code)
        return await self.employee(employer_id, outcome.employee_id), False

    async def import_csv(self, employer_id: str, text: str, *, idempotency_key: str, actor: str = "") -> ImportResult:
        """Enrol the employees of a CSV file (``phone,name,employee_no``): the good rows are
        enrolled, every other row says why not (``PHONE_INVALID``, ``DUPLICATE_IN_FILE``,
        ``ALREADY_ENROLLED``, ``ENROLLED_ELSEWHERE``, ``NOT_A_SUBSCRIBER``, ``WALLET_NOT_ACTIVE``).
        The same Idempotency-Key with the same file answers the first import."""
        check_idempotency_key(idempotency_key)
        await self.employer(employer_id)
        digest = hashlib.sha256(text.encode()).hexdigest()
        iid = derived_id("eim_", employer_id, idempotency_key)
        known = await self._import_row(iid)
        if known is not None:
            if known.digest != digest:
                raise IdempotencyConflict("this Idempotency-Key imported another file", field="Idempotency-Key")
            return _import_result(known, replayed=True)
        rows = csv_rows(text)
        try:
            outcomes = await self._enrol(employer_id, [(r.line, r.phone, r.name, r.employee_no) for r in rows],
                                         actor=actor, import_id=iid, digest=digest)
        except _Raced:
            return await self.import_csv(employer_id, text, idempotency_key=idempotency_key, actor=actor)
        return ImportResult(iid, tuple(outcomes))

    async def _import_row(self, iid: str) -> Any:
        async def work(uow: UnitOfWork) -> Any:
            return (await uow.conn.execute(select(imports).where(imports.c.id == iid))).first()

        return await self.uow.run("enterprise_import_look", work)

    async def _enrol(self, employer_id: str, rows: Sequence[tuple[int, str, str, str]], *, actor: str,
                     import_id: str = "", digest: str = "", keep_refused: bool = True) -> list[RowOutcome]:
        employer = await self.employer(employer_id)
        checked: list[tuple[int, str, str, str, str]] = []  # (row index, msisdn, name, number, user id)
        outcomes: dict[int, RowOutcome] = {}
        seen: set[str] = set()
        for n, (line, phone, name, no) in enumerate(rows):
            try:
                msisdn = normalize_msisdn(phone)
            except MobipayError as exc:
                outcomes[n] = RowOutcome(line, phone, False, "PHONE_INVALID", exc.detail)
                continue
            if msisdn in seen:
                outcomes[n] = RowOutcome(line, phone, False, "DUPLICATE_IN_FILE",
                                         f"{mask_msisdn(msisdn)} is in the file twice")
                continue
            seen.add(msisdn)
            try:
                user = await self.wallet.user_by_msisdn(msisdn)
            except MobipayError as exc:
                if exc.code != "USER_NOT_FOUND":
                    raise
                outcomes[n] = RowOutcome(line, phone, False, "NOT_A_SUBSCRIBER",
                                         f"{mask_msisdn(msisdn)} has no mobipay wallet: ask them to sign up first")
                continue
            if user.status.value != "active":
                outcomes[n] = RowOutcome(line, phone, False, "WALLET_NOT_ACTIVE",
                                         f"the wallet of {mask_msisdn(msisdn)} is {user.status.value}")
                continue
            checked.append((n, msisdn, name.strip()[:64], no.strip()[:32], user.id))

        async def work(uow: UnitOfWork) -> dict[int, RowOutcome]:
            await _lock_employer(uow, employer_id)  # one enrolment of an employer at a time
            if import_id and (await uow.conn.execute(select(imports.c.id).where(imports.c.id == import_id))).first():
                raise _Raced()  # the same import a moment ago (a racing retry): answer it
            done: dict[int, RowOutcome] = {}
            numbers = [c[1] for c in checked]
            taken = {r.active_msisdn: r.employer_id for r in await uow.conn.execute(
                select(employees.c.active_msisdn, employees.c.employer_id).where(
                    employees.c.active_msisdn.in_(numbers)))} if numbers else {}
            new_rows = []
            for n, msisdn, name, no, user_id in checked:
                line, phone = rows[n][0], rows[n][1]
                if msisdn in taken:
                    code, words = (("ALREADY_ENROLLED", f"{mask_msisdn(msisdn)} is enrolled already")
                                   if taken[msisdn] == employer_id else
                                   ("ENROLLED_ELSEWHERE", f"{mask_msisdn(msisdn)} is enrolled with another employer"))
                    done[n] = RowOutcome(line, phone, False, code, words)
                    continue
                eid = new_id("emp")
                await uow.open_account(_spec(allowance_account(eid), f"Allowance {employer.name[:40]} {msisdn}"))
                new_rows.append({"id": eid, "employer_id": employer_id, "msisdn": msisdn, "user_id": user_id,
                                 "name": name, "employee_no": no, "allowance_account": allowance_account(eid),
                                 "state": ACTIVE, "created_at": uow.now, "active_msisdn": msisdn})
                done[n] = RowOutcome(line, phone, True, employee_id=eid)
                await uow.emit(SmsRequested(key=f"{eid}:enrolled", to=msisdn, template="enterprise.enrolled",
                                            params={"employer": employer.name[:40]}))
            if new_rows:
                await uow.conn.execute(insert(employees), new_rows)
                await uow.audit(actor=actor or "operator", action="enterprise.enrol", target=employer_id,
                                reason=f"{len(new_rows)} employees", after={"ids": [r["id"] for r in new_rows][:50]})
            if import_id and (keep_refused or new_rows):
                every = [done.get(n) or outcomes[n] for n in range(len(rows))]
                await uow.conn.execute(insert(imports).values(
                    id=import_id, employer_id=employer_id, digest=digest,
                    result=[_outcome_json(o) for o in every], created_at=uow.now))
            return done

        done = await self.uow.run("enterprise_enrol", work)
        return [done.get(n) or outcomes[n] for n in range(len(rows))]

    async def employee(self, employer_id: str, employee_id: str) -> Employee:
        async def work(uow: UnitOfWork) -> Any:
            return (await uow.conn.execute(select(employees).where(
                employees.c.id == employee_id, employees.c.employer_id == employer_id))).first()

        row = await self.uow.run("enterprise_employee", work)
        if row is None:
            raise errors.EmployeeNotFound(f"no employee {employee_id} here", field="employee_id")
        return _employee(row, (await self.uow.ledger.account(row.allowance_account)).balance)

    async def employees(self, employer_id: str, *, active_only: bool = True) -> list[Employee]:
        """The employer's employees with their allowance balances, oldest first."""

        async def work(uow: UnitOfWork) -> list[Any]:
            q = select(employees).where(employees.c.employer_id == employer_id)
            if active_only:
                q = q.where(employees.c.state == ACTIVE)
            return list(await uow.conn.execute(q.order_by(employees.c.created_at, employees.c.id)))

        rows = await self.uow.run("enterprise_employees", work)
        balances = await self.uow.ledger.accounts([r.allowance_account for r in rows]) if rows else {}
        return [_employee(r, balances[r.allowance_account].balance) for r in rows]

    async def leave(self, employer_id: str, employee_id: str, *, actor: str) -> Employee:
        """An employee leaves: what is left of the allowance goes back to the employer, the
        number may be enrolled elsewhere. A second call answers the first."""
        employer = await self.employer(employer_id)

        async def work(uow: UnitOfWork) -> Any:
            row = (await uow.conn.execute(select(employees).where(
                employees.c.id == employee_id, employees.c.employer_id == employer_id).with_for_update())).first()
            if row is None:
                raise errors.EmployeeNotFound(field="employee_id")
            if row.state == LEFT:
                return row
            left = (await uow.open_account(_spec(row.allowance_account, ""))).balance
            if left:
                [result] = await uow.post([Transfer(f"ent:leave:{employee_id}", (
                    Leg.debit(row.allowance_account, left), Leg.credit(employer.funds_account, left)),
                    "enterprise.allowance_return", reference=f"left {row.msisdn}")])
                if result.error is not None:
                    raise result.error
            await uow.conn.execute(update(employees).where(employees.c.id == employee_id).values(
                state=LEFT, left_at=uow.now, active_msisdn=None))
            await uow.audit(actor=actor or "operator", action="enterprise.leave", target=employee_id,
                            reason=row.msisdn, after={"returned": left})
            return (await uow.conn.execute(select(employees).where(employees.c.id == employee_id))).one()

        row = await self.uow.run("enterprise_leave", work)
        return _employee(row, 0)

    async def suspend(self, employer_id: str, employee_id: str, *, suspended: bool, actor: str) -> Employee:
        """Suspend an employee (``paused``: the allowance neither pays nor is funded, doors and
        attendance refuse the phone, the number stays enrolled and the balance stays) or
        resume one. Setting the state it has answers it again; one who left is EMPLOYEE_STATE_INVALID."""
        to, was = (PAUSED, ACTIVE) if suspended else (ACTIVE, PAUSED)

        async def work(uow: UnitOfWork) -> Any:
            row = (await uow.conn.execute(select(employees).where(
                employees.c.id == employee_id, employees.c.employer_id == employer_id).with_for_update())).first()
            if row is None:
                raise errors.EmployeeNotFound(f"no employee {employee_id} here", field="employee_id")
            if row.state == LEFT:
                raise errors.EmployeeStateInvalid("this employee has left: enrol the number again",
                                                  field="employee_id")
            if row.state == was:
                await uow.conn.execute(update(employees).where(employees.c.id == employee_id).values(state=to))
                await uow.audit(actor=actor or "operator", action=f"enterprise.{'suspend' if suspended else 'resume'}",
                                target=employee_id, reason=row.msisdn, before={"state": was}, after={"state": to})
            return (await uow.conn.execute(select(employees).where(employees.c.id == employee_id))).one()

        row = await self.uow.run("enterprise_suspend", work)
        return _employee(row, (await self.uow.ledger.account(row.allowance_account)).balance)

    # ------------------------------------------------------------------ closed-loop merchants

    async def name_merchant(self, employer_id: str, merchant_id: str, *, label: str = "canteen",
                            actor: str = "") -> None:
        """A merchant (approved) where the employer's allowance is accepted: its canteen, its shop."""
        await self.employer(employer_id)
        try:
            merchant = await self.merchants.set_up_merchant(merchant_id)
        except MobipayError as exc:
            raise errors.ClosedLoopInvalid(exc.detail, field="merchant_id") from None
        label = label.strip()[:32] or "canteen"

        async def work(uow: UnitOfWork) -> None:
            ins = dialect_insert(uow.conn.dialect.name, closed_loop)
            await uow.conn.execute(ins.values(employer_id=employer_id, merchant_id=merchant_id, label=label,
                                              created_at=uow.now).on_conflict_do_nothing())
            await uow.audit(actor=actor or "operator", action="enterprise.closed_loop_add", target=employer_id,
                            reason=merchant.name, after={"merchant_id": merchant_id, "label": label})

        await self.uow.run("enterprise_closed_loop", work)

    async def closed_loop_merchants(self, employer_id: str) -> list[tuple[str, str, str]]:
        """(merchant id, name, label) of the employer's closed-loop merchants."""

        async def work(uow: UnitOfWork) -> list[Any]:
            return list(await uow.conn.execute(select(closed_loop).where(closed_loop.c.employer_id == employer_id)
                                               .order_by(closed_loop.c.created_at)))

        rows = await self.uow.run("enterprise_closed_loop_list", work)
        return [(r.merchant_id, (await self.merchants.merchant(r.merchant_id)).name, r.label) for r in rows]

    async def remove_merchant(self, employer_id: str, merchant_id: str, *, actor: str = "") -> None:
        """The allowance is no longer accepted at this merchant (from its next payment); one the
        employer did not name is CLOSED_LOOP_MERCHANT_NOT_FOUND."""
        await self.employer(employer_id)

        async def work(uow: UnitOfWork) -> None:
            gone = await uow.conn.execute(closed_loop.delete().where(
                closed_loop.c.employer_id == employer_id, closed_loop.c.merchant_id == merchant_id))
            if gone.rowcount != 1:
                raise errors.ClosedLoopNotFound(f"{merchant_id} is not one of your closed-loop merchants",
                                                field="merchant_id")
            await uow.audit(actor=actor or "operator", action="enterprise.closed_loop_remove", target=employer_id,
                            reason=merchant_id, before={"merchant_id": merchant_id})

        await self.uow.run("enterprise_closed_loop_remove", work)

    # ------------------------------------------------------------------ funding

    async def fund(self, employer_id: str, month: str, amount: int, *, idempotency_key: str, actor: str = "",
                   employee_ids: Sequence[str] | None = None, purpose: str = "meal",
                   progress: Callable[[int, int], None] | None = None) -> FundingRun:
        """A funding run: ``amount`` fen to each active employee's allowance (or only to
        ``employee_ids``) for ``month``, from the employer's funds. All its transfers are
        posted in one transaction through the ledger's batch path, linked, so the run is
        posted whole or not at all; the same Idempotency-Key answers the first run."""
        check_idempotency_key(idempotency_key)
        amount = check_amount(amount)
        month_bounds(month)
        employer = await self.employer(employer_id)
        rid = derived_id("efr_", employer_id, idempotency_key)

        def replay(known: Any) -> FundingRun:
            if (known.month, int(known.total) // max(1, int(known.employees))) != (month, amount):
                raise IdempotencyConflict("this Idempotency-Key funded another month or amount",
                                          field="Idempotency-Key")
            return _run(known, replayed=True)

        async def look(uow: UnitOfWork) -> Any:
            return (await uow.conn.execute(select(funding_runs).where(funding_runs.c.id == rid))).first()

        known = await self.uow.run("enterprise_fund_look", look)
        if known is not None:
            return replay(known)
        staff = await self.employees(employer_id)
        if employee_ids is not None:
            wanted = set(employee_ids)
            missing = wanted - {e.id for e in staff}
            if missing:
                raise errors.FundingInvalid(f"{sorted(missing)[0]} is not an active employee here",
                                            field="employee_ids")
            staff = [e for e in staff if e.id in wanted]
        if not staff:
            raise errors.FundingInvalid("no active employees to fund", field="employee_ids")
        total = amount * len(staff)
        purpose = purpose.strip()[:32] or "meal"

        async def work(uow: UnitOfWork) -> tuple[Any, bool]:
            await _lock_employer(uow, employer_id)  # one run at a time: a racing retry waits, then replays
            known = await look(uow)
            if known is not None:
                return known, True  # the same key a moment ago (a racing retry)
            funds = (await uow.open_account(_spec(employer.funds_account, ""))).balance
            if funds < total:
                raise errors.EmployerFundsInsufficient(
                    f"the run needs {total / 100:,.2f} CNY; the employer's account holds {funds / 100:,.2f} CNY",
                    field="amount", needed=total, available=funds)
            commands = [Transfer(f"ent:fund:{rid}:{e.id}", (Leg.debit(employer.funds_account, amount),
                                                           Leg.credit(e.allowance_account, amount)),
                                 "enterprise.allowance_fund", reference=f"{purpose} {month}",
                                 linked=n < len(staff) - 1) for n, e in enumerate(staff)]
            for start in range(0, len(commands), FUNDING_CHUNK):
                part = commands[start:start + FUNDING_CHUNK]
                if part[-1].linked:  # a chain may not span two batches: each chunk stands on its own
                    part = [*part[:-1], Transfer(part[-1].id, part[-1].legs, part[-1].code, part[-1].reference)]
                for result in await uow.post(part):
                    if result.error is not None:
                        raise result.error  # rolls the whole run back
                if progress is not None:
                    progress(min(start + FUNDING_CHUNK, len(commands)), len(commands))
            await uow.conn.execute(insert(funding_runs).values(
                id=rid, employer_id=employer_id, month=month, purpose=purpose, employees=len(staff), total=total,
                actor=(actor or "operator")[:80], created_at=uow.now))
            await uow.conn.execute(insert(funding_lines), [
                {"run_id": rid, "employee_id": e.id, "amount": amount, "transfer_id": f"ent:fund:{rid}:{e.id}",
                 "created_at": uow.now} for e in staff])
            await uow.audit(actor=actor or "operator", action="enterprise.fund", target=employer_id,
                            reason=f"{purpose} {month}", after={"run": rid, "employees": len(staff), "total": total})
            return (await uow.conn.execute(select(funding_runs).where(funding_runs.c.id == rid))).one(), False

        row, replayed = await self.uow.run("enterprise_fund", work)
        return replay(row) if replayed else _run(row)

    async def runs(self, employer_id: str, limit: int = 50) -> list[FundingRun]:
        async def work(uow: UnitOfWork) -> list[Any]:
            return list(await uow.conn.execute(select(funding_runs).where(funding_runs.c.employer_id == employer_id)
                                               .order_by(funding_runs.c.created_at.desc()).limit(limit)))

        return [_run(r) for r in await self.uow.run("enterprise_runs", work)]

    # ------------------------------------------------------------------ paying at a closed-loop merchant

    async def me(self, me: Principal) -> tuple[Employee, Employer]:
        """The employee record of the signed-in wallet (``NOT_AN_EMPLOYEE`` when none)."""

        async def work(uow: UnitOfWork) -> Any:
            return (await uow.conn.execute(select(employees).where(
                employees.c.user_id == me.user_id, employees.c.state == ACTIVE))).first()

        row = await self.uow.run("enterprise_me", work)
        if row is None:
            raise errors.NotAnEmployee(field="Authorization")
        employer = await self.employer(row.employer_id)
        return _employee(row, (await self.uow.ledger.account(row.allowance_account)).balance), employer

    async def pay_scanned(self, me: Principal, payload: str, amount: int, *, idempotency_key: str,
                          pin: str | None = None) -> Receipt:
        """The employee scans a closed-loop merchant's in-store QR code (read by the in-store
        service) and pays ``amount``: the allowance first, the wallet the rest, one receipt."""
        seen = await self.instore.scan(payload)
        if seen.kind != "static" or seen.store is None:
            raise ValidationFailed("scan the merchant's counter code (a static code) to pay with the allowance",
                                   field="payload")
        return await self.pay(me, seen.merchant.id, seen.store.id, amount, idempotency_key=idempotency_key, pin=pin)

    async def pay_by_paycode(self, codes: Micropay, terminal: Terminal, *, out_trade_no: str, auth_code: str,
                             amount: int) -> Receipt:
        """A closed-loop merchant's POS (a signed terminal request) charges the employee's
        payment code (付款码): the code verified and used once (``codes``, the in-store payment
        codes), then :meth:`pay` for the code's wallet, the allowance first, without the PIN (the
        wallet's share within the password-free amount), counted as a one-factor dynamic code.
        The terminal's ``out_trade_no`` is the idempotency key: a retry with the same code (or a
        later one of the same device) and amount answers the first receipt. Refused codes count
        against the terminal too: a till guessing device numbers is throttled as in micropay."""
        merchant_id, store_id = terminal.merchant_id, terminal.store_id
        if not 0 < len(out_trade_no) <= 64 or not out_trade_no.isprintable() or out_trade_no != out_trade_no.strip():
            raise ValidationFailed("out_trade_no is 1 to 64 printable characters", field="out_trade_no")
        amount = check_amount(amount)
        pid = derived_id("epy_", "terminal", merchant_id, out_trade_no)
        known = await self._payment_row(pid)
        if known is not None:  # a retry (its code may have expired meanwhile): the same payer's device?
            device = await codes.device_of_code(auth_code)

            async def owner(uow: UnitOfWork) -> Any:
                return (await uow.conn.execute(select(employees.c.user_id).where(
                    employees.c.id == known.employee_id))).scalar()

            if device is None or device.user_id != await self.uow.run("enterprise_payer", owner):
                raise errors.TerminalPaycodeMismatch(field="auth_code")
            me = await self.wallet.principal(device.user_id)
        else:
            device = await codes.claim_code(auth_code, use_id=pid, terminal=terminal)
            me = replace(await self.wallet.principal(device.user_id), session_id=device.session_id)
        return await self.pay(me, merchant_id, store_id, amount, idempotency_key=out_trade_no, qr="dynamic",
                              payment_id=pid)

    async def pay(self, me: Principal, merchant_id: str, store_id: str | None, amount: int, *,
                  idempotency_key: str, pin: str | None = None, qr: str = "static", two_factors: bool = False,
                  payment_id: str | None = None) -> Receipt:
        """Pay ``amount`` at a closed-loop merchant of the employee's employer (the use case a
        closed-loop merchant's terminal or the employee's scan calls): the allowance pays what
        the rules let it (meal window, per meal, per day, balance), the employee's wallet the
        rest, in ONE ledger transfer with two debit legs, recorded as ONE paid trade. At any
        other merchant: ``ALLOWANCE_NOT_ACCEPTED``, nothing moves. The same Idempotency-Key
        answers the first receipt. The wallet's share counts against the PBoC daily QR limits
        as an in-store payment does (``qr``: ``static`` for the counter code, ``dynamic`` for
        a payment code, ``two_factors`` as :meth:`InStore.count_qr` takes it); ``payment_id``
        is a terminal's own derived id (its out_trade_no, whoever the payer)."""
        check_idempotency_key(idempotency_key)
        amount = check_amount(amount)
        pid = payment_id or derived_id("epy_", me.user_id, idempotency_key)
        known = await self._payment_row(pid)
        if known is not None:
            if (known.merchant_id, int(known.amount), known.store_id) != (merchant_id, amount, store_id):
                raise IdempotencyConflict("this Idempotency-Key paid another merchant or amount",
                                          field="Idempotency-Key")
            return await self._receipt(known, replayed=True)
        employee, employer = await self.me(me)
        merchant = await self._closed_loop_merchant(employer, merchant_id)
        if store_id is not None:
            await self.merchants.own_store(merchant_id, store_id)
        plan = await self._split(employee, employer, amount)
        # the wallet proves itself for its share (the PIN above the password-free amount)
        payer = await self.wallet.authorize_payment(me, plan.wallet, pin)

        async def work(uow: UnitOfWork) -> tuple[Any, bool]:
            await uow.conn.execute(select(employees.c.id).where(employees.c.id == employee.id).with_for_update())
            again = (await uow.conn.execute(select(payments).where(payments.c.id == pid))).first()
            if again is not None:  # after the lock: a racing twin that held it has committed by now
                return again, True  # the same key a moment ago (a racing retry)
            split = await self._split_in(uow, employee, employer, amount)
            if split.wallet > plan.wallet:  # spent meanwhile (another payment): the PIN was asked for less
                raise errors.PaymentChanged(f"the allowance now pays {split.allowance / 100:.2f} CNY: pay again",
                                            field="amount")
            transfer_id = f"ent:pay:{pid}"
            legs = [Leg.credit(merchant.account_code, amount)]
            if split.wallet:
                legs.insert(0, Leg.debit(payer.account_code, split.wallet))
            if split.allowance:
                legs.insert(0, Leg.debit(employee.allowance_account, split.allowance))
            [result] = await uow.post([Transfer(transfer_id, tuple(legs), "enterprise.payment",
                                                reference=f"{merchant.name[:60]} {employer.name[:40]}",
                                                metadata={"allowance": split.allowance, "wallet": split.wallet})])
            if result.error is not None:
                raise result.error
            if split.wallet:
                await self.wallet.count_payment(uow, payer, split.wallet)
                # the PBoC daily QR counters, as an in-store code payment (a refusal undoes it all)
                await self.instore.count_qr(uow, me.user_id, qr, two_factors, split.wallet)
            subject = f"企业一卡通 {employer.name}"[:256]
            [trade_id] = await self.merchants.record_payments_in(uow, [CounterPayment(
                merchant_id, store_id or "", f"ent-{pid}", amount, subject, me.user_id, transfer_id)])
            local = uow.now.astimezone(SHANGHAI)
            await uow.conn.execute(insert(payments).values(
                id=pid, employer_id=employer.id, employee_id=employee.id, merchant_id=merchant_id, store_id=store_id,
                trade_id=trade_id, transfer_id=transfer_id, amount=amount, allowance=split.allowance,
                wallet=split.wallet, day=local.date().isoformat(), window=split.window, reason=split.reason[:64],
                created_at=uow.now))
            await uow.emit(SmsRequested(key=f"{pid}:paid", to=me.msisdn, template="enterprise.paid", params={
                "merchant": merchant.name[:40], "amount_fen": amount, "allowance_fen": split.allowance,
                "wallet_fen": split.wallet}))
            return (await uow.conn.execute(select(payments).where(payments.c.id == pid))).one(), False

        row, replayed = await self.uow.run("enterprise_pay", work)
        return await self._receipt(row, replayed=replayed)

    async def _closed_loop_merchant(self, employer: Employer, merchant_id: str) -> Merchant:
        async def work(uow: UnitOfWork) -> Any:
            return (await uow.conn.execute(select(closed_loop.c.label).where(
                closed_loop.c.employer_id == employer.id, closed_loop.c.merchant_id == merchant_id))).first()

        if await self.uow.run("enterprise_closed_loop_check", work) is None:
            raise errors.AllowanceNotAccepted(f"{employer.name}'s allowance is accepted only at its own canteens and "
                                              "shops: pay this merchant from the wallet", field="merchant_id")
        merchant = await self.merchants.merchant(merchant_id)
        if merchant.state.value not in ("approved", "settlement_suspended"):
            raise errors.AllowanceNotAccepted(f"the merchant is {merchant.state.value}: it cannot be paid now",
                                              field="merchant_id")
        return merchant

    async def _split(self, employee: Employee, employer: Employer, amount: int) -> Split:
        return await self.uow.run("enterprise_split", lambda uow: self._split_in(uow, employee, employer, amount))

    async def _split_in(self, uow: UnitOfWork, employee: Employee, employer: Employer, amount: int) -> Split:
        local = uow.now.astimezone(SHANGHAI)
        window = employer.rules.window_at(local)
        day = local.date().isoformat()
        spent_today = (await uow.conn.execute(select(func.coalesce(func.sum(payments.c.allowance), 0)).where(
            payments.c.employee_id == employee.id, payments.c.day == day))).scalar_one()
        spent_meal = 0
        if window is not None and employer.rules.windows:
            spent_meal = (await uow.conn.execute(select(func.coalesce(func.sum(payments.c.allowance), 0)).where(
                payments.c.employee_id == employee.id, payments.c.day == day,
                payments.c.window == window.name))).scalar_one()
        else:
            spent_meal = int(spent_today)
        balance = (await uow.open_account(_spec(employee.allowance_account, ""))).available
        return split_payment(employer.rules, amount, local, balance=balance, spent_today=int(spent_today),
                             spent_this_meal=int(spent_meal))

    async def preview(self, me: Principal, merchant_id: str, amount: int) -> Split:
        """What the allowance and the wallet would pay now (the app shows it before paying)."""
        employee, employer = await self.me(me)
        await self._closed_loop_merchant(employer, merchant_id)
        return await self._split(employee, employer, check_amount(amount))

    async def _payment_row(self, pid: str) -> Any:
        async def work(uow: UnitOfWork) -> Any:
            return (await uow.conn.execute(select(payments).where(payments.c.id == pid))).first()

        return await self.uow.run("enterprise_payment", work)

    async def _receipt(self, row: Any, *, replayed: bool = False) -> Receipt:
        merchant = await self.merchants.merchant(row.merchant_id)
        left = (await self.uow.ledger.account(allowance_account(row.employee_id))).balance
        return Receipt(row.id, row.trade_id, row.transfer_id, row.merchant_id, merchant.name, row.store_id,
                       int(row.amount), int(row.allowance), int(row.wallet), row.window, row.reason,
                       as_utc(row.created_at), left, replayed)

    async def _refund_guard(self, tx: Transaction, trade: Any) -> None:
        conn = tx.conn if isinstance(tx, UnitOfWork) else None
        if conn is None:
            return
        found = (await conn.execute(select(payments.c.id).where(payments.c.trade_id == trade.id))).first()
        if found is not None:
            raise errors.AllowanceNotAccepted("a payment with the enterprise allowance is refunded by the employer, "
                                              "not through the merchant API", field="out_trade_no")

    # ------------------------------------------------------------------ month end

    async def close_month(self, employer_id: str, month: str, *, actor: str = "") -> MonthClose:
        """What is left of ``month``'s allowance, per employee, by the employer's rule:
        rollover (kept, above the cap returned) or expiry (returned to the employer's funds).
        Only a month that has ended; once per employer and month (a rerun answers the first).
        Money funded after the month ended is never taken (model.old_money_left)."""
        _, end = month_bounds(month)
        now = self.uow.clock.now()
        if now < end:
            raise errors.MonthInvalid(f"{month} has not ended yet", field="month")
        employer = await self.employer(employer_id)
        # a suspended (paused) employee's allowance follows the month-end rule too
        staff = [e for e in await self.employees(employer_id, active_only=False) if e.state != LEFT]

        async def work(uow: UnitOfWork) -> tuple[Any, bool]:
            await _lock_employer(uow, employer_id)  # two workers close a month once
            known = (await uow.conn.execute(select(month_closes).where(
                month_closes.c.employer_id == employer_id, month_closes.c.month == month))).first()
            if known is not None:
                return known, True
            since = {r.employee_id: int(r.total) for r in await uow.conn.execute(
                select(funding_lines.c.employee_id, func.sum(funding_lines.c.amount).label("total")).where(
                    funding_lines.c.employee_id.in_([e.id for e in staff]), funding_lines.c.created_at >= end)
                .group_by(funding_lines.c.employee_id))} if staff else {}
            kept_total = returned_total = 0
            commands = []
            for e in staff:
                balance = (await uow.open_account(_spec(e.allowance_account, ""))).balance
                kept, back = month_end_split(employer.rules, old_money_left(balance, since.get(e.id, 0)))
                kept_total += kept
                returned_total += back
                if back:
                    commands.append(Transfer(f"ent:monthend:{employer_id}:{month}:{e.id}", (
                        Leg.debit(e.allowance_account, back), Leg.credit(employer.funds_account, back)),
                        "enterprise.allowance_expire", reference=f"{month} {employer.rules.month_end.value}"))
            for start_at in range(0, len(commands), FUNDING_CHUNK):
                for result in await uow.post(commands[start_at:start_at + FUNDING_CHUNK]):
                    if result.error is not None:
                        raise result.error
            await uow.conn.execute(insert(month_closes).values(
                employer_id=employer_id, month=month, rule=employer.rules.month_end.value, employees=len(staff),
                kept=kept_total, returned=returned_total, created_at=uow.now))
            await uow.audit(actor=actor or "worker", action="enterprise.month_close", target=employer_id,
                            reason=month, after={"kept": kept_total, "returned": returned_total})
            return (await uow.conn.execute(select(month_closes).where(
                month_closes.c.employer_id == employer_id, month_closes.c.month == month))).one(), False

        row, replayed = await self.uow.run("enterprise_month_close", work)
        return MonthClose(row.employer_id, row.month, row.rule, int(row.employees), int(row.kept),
                          int(row.returned), replayed)

    async def close_due(self) -> int:
        """Worker job: every employer's last month, closed once (the month's first days of the
        next month, or whenever the worker comes back). Answers how many were closed now."""
        month = previous_month(self.uow.clock.now())
        _, end = month_bounds(month)
        done = 0
        for employer in await self.employers_list():
            if employer.created_at >= end:
                continue
            try:
                closed = await self.close_month(employer.id, month)
            except MobipayError as exc:
                log.warning("enterprise.month_close_failed", employer=employer.id, month=month, code=exc.code)
                continue
            done += not closed.replayed
        return done

    # ------------------------------------------------------------------ readers and attendance

    async def register_reader(self, employer_id: str, label: str, *, kind: str = "attendance",
                              public_key: str | None = None, actor: str = "") -> tuple[Reader, str | None]:
        """A company reader (door or attendance), signing its uploads with Ed25519 as a POS
        terminal does: the reader's own public key, or a key pair made here whose private
        half is answered once (None when the reader brought its key). A reader is named by
        its label within the employer: the same label again with the same kind (and the same
        key, or none sent) answers the existing reader (its key made here is not shown again);
        another kind or key is ``READER_CONFLICT`` and changes nothing."""
        await self.employer(employer_id)
        if kind not in READER_KINDS:
            raise ValidationFailed(f"a reader is one of {', '.join(READER_KINDS)}", field="kind")
        if not 1 <= len(label.strip()) <= 64:
            raise ValidationFailed("a reader has a label of 1 to 64 characters", field="label")
        seed: str | None = None
        if public_key:
            key = check_reader_key(public_key)
        else:
            seed, key = new_reader_key()
        rid = new_id("rdr")

        async def work(uow: UnitOfWork) -> tuple[Any, bool]:
            await _lock_employer(uow, employer_id)  # one registration at a time: a racing retry finds the first
            known = (await uow.conn.execute(select(readers).where(
                readers.c.employer_id == employer_id, readers.c.label == label.strip()))).first()
            if known is not None:
                if known.kind != kind or (public_key and known.public_key != key):
                    raise errors.ReaderConflict(
                        f"reader {known.id} is labelled {label.strip()} already, as a {known.kind} reader "
                        "with another key" if known.kind == kind else
                        f"reader {known.id} is labelled {label.strip()} already, as a {known.kind} reader",
                        field="label", reader_id=known.id)
                return known, True
            await uow.conn.execute(insert(readers).values(id=rid, employer_id=employer_id, label=label.strip(),
                                                          kind=kind, public_key=key, state=ACTIVE,
                                                          created_at=uow.now))
            await uow.audit(actor=actor or "operator", action="enterprise.reader_register", target=rid,
                            reason=label.strip(), after={"employer_id": employer_id, "kind": kind})
            return (await uow.conn.execute(select(readers).where(readers.c.id == rid))).one(), False

        row, existed = await self.uow.run("enterprise_reader", work)
        return _reader(row), None if existed else seed

    async def readers(self, employer_id: str) -> list[Reader]:
        async def work(uow: UnitOfWork) -> list[Any]:
            return list(await uow.conn.execute(select(readers).where(readers.c.employer_id == employer_id)
                                               .order_by(readers.c.created_at)))

        return [_reader(r) for r in await self.uow.run("enterprise_readers", work)]

    async def disable_reader(self, employer_id: str, reader_id: str, *, actor: str = "") -> Reader:
        """A reader's signed requests are refused from now on (a lost or replaced reader); a
        disabled one answers again. Another employer's reader is READER_NOT_FOUND."""

        async def work(uow: UnitOfWork) -> Any:
            row = (await uow.conn.execute(select(readers).where(
                readers.c.id == reader_id, readers.c.employer_id == employer_id).with_for_update())).first()
            if row is None:
                raise errors.ReaderNotFound(f"no reader {reader_id} here", field="reader_id")
            if row.state == ACTIVE:
                await uow.conn.execute(update(readers).where(readers.c.id == reader_id).values(state="disabled"))
                await uow.audit(actor=actor or "operator", action="enterprise.reader_disable", target=reader_id,
                                reason=row.label, before={"state": ACTIVE}, after={"state": "disabled"})
            return (await uow.conn.execute(select(readers).where(readers.c.id == reader_id))).one()

        return _reader(await self.uow.run("enterprise_reader_disable", work))

    async def verify_reader(self, *, reader_id: str, timestamp: str, nonce: str, signature: str,
                            body: bytes) -> Reader:
        """The reader behind a signed upload: its signature over model.reader_signing_string,
        a timestamp within 5 minutes and a nonce it never sent before; else one answer,
        ``READER_SIGNATURE_INVALID``, that tells a forger nothing."""
        now = self.uow.clock.now()
        if not (timestamp.isdigit() and abs(int(timestamp) - now.timestamp()) <= READER_WINDOW_S
                and 8 <= len(nonce) <= 64 and nonce.isprintable()):
            raise errors.ReaderSignatureInvalid()
        text = reader_signing_string(reader_id, timestamp, nonce, body)

        async def work(uow: UnitOfWork) -> Any:
            row = (await uow.conn.execute(select(readers).where(readers.c.id == reader_id))).first()
            if row is None or row.state != ACTIVE or not reader_verifies(row.public_key, text, signature):
                raise errors.ReaderSignatureInvalid()
            ins = dialect_insert(uow.conn.dialect.name, reader_nonces)
            added = await uow.conn.execute(ins.values(reader_id=reader_id, nonce=nonce, seen_at=uow.now)
                                           .on_conflict_do_nothing())
            if added.rowcount != 1:
                raise errors.ReaderSignatureInvalid()
            return row

        return _reader(await self.uow.run("enterprise_reader_verify", work))

    async def upload_taps(self, reader: Reader, uploaded: Sequence[TapIn]) -> TapsOutcome:
        """Taps a reader recorded (online or uploaded later in a batch): each token is
        resolved to its owner through the in-store tokens and must be an active employee of
        the reader's employer. (reader, token, time) counts once however often it is sent."""
        if not uploaded or len(uploaded) > MAX_TAPS_PER_UPLOAD:
            raise errors.TapsInvalid(f"send 1 to {MAX_TAPS_PER_UPLOAD} taps", field="taps")
        if self.token_owners is None:
            raise errors.TapsInvalid("device tokens are not available here", field="taps")
        now = self.uow.clock.now()
        owners = await self.token_owners(sorted({t.token_id for t in uploaded}))

        async def work(uow: UnitOfWork) -> TapsOutcome:
            users = sorted(set(owners.values()))
            staff = {r.user_id: r.id for r in await uow.conn.execute(select(employees.c.user_id, employees.c.id).where(
                employees.c.employer_id == reader.employer_id, employees.c.state == ACTIVE,
                employees.c.user_id.in_(users)))} if users else {}
            rejected: list[tuple[int, str]] = []
            rows: dict[tuple[str, datetime], dict[str, Any]] = {}
            for n, t in enumerate(uploaded):
                owner = owners.get(t.token_id)
                at = as_utc(t.at).astimezone(UTC)  # stored in UTC (SQLite keeps the text as given)
                if owner is None:
                    rejected.append((n, "unknown or suspended token"))
                elif owner not in staff:
                    rejected.append((n, "not an employee here"))
                elif at > now + timedelta(seconds=READER_WINDOW_S):
                    rejected.append((n, "in the future"))
                else:
                    rows.setdefault((t.token_id, at), {
                        "id": new_id("etp"), "reader_id": reader.id, "employer_id": reader.employer_id,
                        "employee_id": staff[owner], "token_id": t.token_id, "at": at, "received_at": uow.now})
            accepted = 0
            values = list(rows.values())
            for start in range(0, len(values), 500):  # SQLite takes at most 32,766 parameters a statement
                ins = dialect_insert(uow.conn.dialect.name, taps)
                result = await uow.conn.execute(ins.values(values[start:start + 500]).on_conflict_do_nothing())
                accepted += max(0, result.rowcount or 0)
            duplicates = len(uploaded) - len(rejected) - accepted
            return TapsOutcome(accepted, duplicates, tuple(rejected))

        return await self.uow.run("enterprise_taps", work)

    async def access(self, reader: Reader, token_id: str) -> tuple[bool, str]:
        """A door's online question, "may this phone pass?": yes for an active token of an
        active employee of the reader's employer, and the tap is recorded as attendance
        (the same row an upload of it later finds); else no, with the reason."""
        done = await self.upload_taps(reader, [TapIn(token_id, self.uow.clock.now())])
        if done.rejected:
            return False, done.rejected[0][1]
        return True, ""

    async def attendance(self, employer_id: str, month: str) -> list[AttendanceLine]:
        """The month's attendance per active employee: days present, late days (first tap
        after the employer's work start), minutes between the first and last tap each day."""
        employer = await self.employer(employer_id)
        start, end = month_bounds(month)
        staff = await self.employees(employer_id)

        async def work(uow: UnitOfWork) -> dict[str, list[datetime]]:
            out: dict[str, list[datetime]] = defaultdict(list)
            for r in await uow.conn.execute(select(taps.c.employee_id, taps.c.at).where(
                    taps.c.employer_id == employer_id, taps.c.at >= start, taps.c.at < end)):
                out[r.employee_id].append(as_utc(r.at))
            return out

        by = await self.uow.run("enterprise_attendance", work)
        return [attendance_line(e.id, e.name, e.msisdn, attendance_days(by.get(e.id, []), employer.rules))
                for e in staff]

    # ------------------------------------------------------------------ the employer's reports

    async def report(self, employer_id: str, month: str) -> Report:
        """The employer's month: employees and balances, funding runs, spending by day and by
        employee (allowance and wallet), attendance (the employer page and its CSVs)."""
        employer = await self.employer(employer_id)
        start, end = month_bounds(month)
        staff = await self.employees(employer_id)

        async def work(uow: UnitOfWork) -> tuple[list[Any], list[Any], list[Any]]:
            by_day = list(await uow.conn.execute(
                select(payments.c.day, func.count(), func.sum(payments.c.allowance), func.sum(payments.c.wallet))
                .where(payments.c.employer_id == employer_id, payments.c.created_at >= start,
                       payments.c.created_at < end).group_by(payments.c.day).order_by(payments.c.day)))
            by_emp = list(await uow.conn.execute(
                select(payments.c.employee_id, func.count(), func.sum(payments.c.allowance),
                       func.sum(payments.c.wallet))
                .where(payments.c.employer_id == employer_id, payments.c.created_at >= start,
                       payments.c.created_at < end).group_by(payments.c.employee_id)))
            funded = list(await uow.conn.execute(
                select(funding_lines.c.employee_id, func.sum(funding_lines.c.amount)).join(
                    funding_runs, funding_runs.c.id == funding_lines.c.run_id)
                .where(funding_runs.c.employer_id == employer_id, funding_runs.c.month == month)
                .group_by(funding_lines.c.employee_id)))
            return by_day, by_emp, funded

        by_day, by_emp, funded = await self.uow.run("enterprise_report", work)
        spent = {r[0]: (int(r[1]), int(r[2] or 0), int(r[3] or 0)) for r in by_emp}
        got = {r[0]: int(r[1] or 0) for r in funded}
        runs = [r for r in await self.runs(employer_id, 200) if r.month == month]
        return Report(
            employer, month, staff, runs,
            [DaySpend(r[0], int(r[1]), int(r[2] or 0), int(r[3] or 0)) for r in by_day],
            [EmployeeSpend(e.id, e.name, e.msisdn, got.get(e.id, 0), spent.get(e.id, (0, 0, 0))[1],
                           spent.get(e.id, (0, 0, 0))[2], spent.get(e.id, (0, 0, 0))[0], e.balance) for e in staff],
            await self.attendance(employer_id, month),
            (await self.uow.ledger.account(employer.funds_account)).balance,
            await self.closed_loop_merchants(employer_id))

    def this_month(self) -> str:
        return month_of(self.uow.clock.now())


class _Raced(Exception):
    """The same import committed by a racing retry first."""


def _outcome_json(o: RowOutcome) -> dict[str, Any]:
    return {"line": o.line, "phone": o.phone, "ok": o.ok, "code": o.code, "detail": o.detail,
            "employee_id": o.employee_id}


def _import_result(row: Any, *, replayed: bool) -> ImportResult:
    raw = row.result if isinstance(row.result, list) else json.loads(row.result)
    return ImportResult(row.id, tuple(RowOutcome(**r) for r in raw), replayed)
