"""Demo enterprise one-card: one employer (示范科技) with its canteen and company shop, five
of the demo's subscribers enrolled, this month's meal allowance funded, a lunch paid at the
canteen (the allowance first, the wallet the rest, on one receipt; outside a meal window the
wallet pays it all), a door reader at the south gate (its key is made and not kept: register
another with ``mobipay enterprise reader`` to try uploads). An owner account for the employer
page (/merchant/enterprise) outside production. Small on purpose (well under a second);
idempotent (an employer that exists is left as it is)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mobipay.enterprise.model import DEFAULT_RULES
from mobipay.kernel.errors import MobipayError
from mobipay.platform.config import Environment
from mobipay.wallet.service import Principal

if TYPE_CHECKING:
    from mobipay.app.bootstrap import Container

EMPLOYEES = (("+8613800138000", "张伟", "SF001"), ("+8613900139000", "王芳", "SF002"),
             ("+8618600186000", "李娜", "SF003"), ("+8615000150000", "刘洋", "SF004"),
             ("+8617700177000", "陈静", "SF005"))
OWNER, PASSWORD, REFUND_PIN = "hr", "demo-employer-pass", "246801"  # published demo values


@dataclass(frozen=True)
class DemoEnterprise:
    employer_id: str = ""
    employees: int = 0
    skipped: str = ""
    lunch: str = ""  # why the demo lunch was not paid ("" when it was)

    def summary(self) -> str:
        """The line ``mobipay demo`` prints."""
        if not self.employer_id:
            return f"enterprise one-card: skipped ({self.skipped})"
        return (f"enterprise one-card: employer {self.employer_id}, {self.employees} employees (/merchant/enterprise "
                f"as {self.employer_id} / {OWNER} / {PASSWORD}; mobipay enterprise report {self.employer_id})")


def _code(first17: str) -> str:
    from mobipay.merchants.model import credit_code_check_char

    return first17 + credit_code_check_char(first17)


async def load_demo_enterprise(c: Container) -> DemoEnterprise:
    employer_code, canteen_code = _code("91440300MA5DEM0E1"), _code("91440300MA5DEM0C1")
    found = await c.merchants.find(q=employer_code, limit=1)
    if found and await c.enterprise.is_employer(found[0].id):
        return DemoEnterprise(found[0].id, len(await c.enterprise.employees(found[0].id)), "loaded before")
    try:
        employer = await c.enterprise.onboard(name="示范科技有限公司", credit_code=employer_code, legal_person="周总",
                                              contact="+8613700000001", settlement_account="6222021000000000001",
                                              mcc="5311", rules=DEFAULT_RULES, actor="demo")
        canteen = await c.merchants.apply(name="示范科技员工食堂", credit_code=canteen_code, legal_person="食堂经理",
                                          contact="+8613700000002", mcc="5812", website="",
                                          settlement_account="6222021000000000002")
    except MobipayError as exc:
        return DemoEnterprise(skipped=exc.detail)
    store = await c.merchants.add_store(canteen, "示范科技员工食堂 一楼", "科技园南区 8 栋", "深圳")
    await c.enterprise.name_merchant(employer.id, canteen.id, label="canteen", actor="demo")
    shop_store = await c.merchants.add_store(await c.merchants.merchant(employer.id), "公司便利店", "8 栋大堂", "深圳")
    await c.enterprise.name_merchant(employer.id, employer.id, label="shop", actor="demo")
    text = "phone,name,employee_no\n" + "".join(f"{m},{n},{no}\n" for m, n, no in EMPLOYEES)
    result = await c.enterprise.import_csv(employer.id, text, idempotency_key="demo-staff", actor="demo")
    await c.enterprise.deposit(employer.id, 1_000_000, bank_reference="DEMO-BANK-0001", actor="demo")
    month = c.enterprise.this_month()
    await c.enterprise.fund(employer.id, month, 60_000, idempotency_key=f"demo-meal-{month}", actor="demo")
    await c.enterprise.register_reader(employer.id, "南门闸机", kind="door", actor="demo")
    first = await c.wallet.user_by_msisdn(EMPLOYEES[0][0])
    me = Principal(first.id, "demo", first.msisdn, first.account_code)
    try:
        await c.enterprise.pay(me, canteen.id, store, 1_800, idempotency_key="demo-lunch")
    except MobipayError as exc:  # outside a meal window the wallet pays: its limits may refuse
        lunch = exc.code
    else:
        lunch = ""
    del shop_store
    if c.settings.env is not Environment.PRODUCTION:
        try:
            await c.merchant_operators.create(employer.id, OWNER, PASSWORD, REFUND_PIN, role="owner", actor="demo",
                                              reason="demo data: the demo employer's HR account")
        except MobipayError as exc:
            if exc.code != "MERCHANT_OPERATOR_EXISTS":
                raise
    return DemoEnterprise(employer.id, result.enrolled, lunch=lunch)
