"""The demo's sign-ins, so a newcomer can open every door after ``make run``: an operator
for the console and an owner account for the first demo shop in the merchant portal.

Their passwords are published (the README and the start-up summary print them), so they
are made only outside production; ``mobipay demo`` calls :func:`ensure_demo_accounts`,
which is safe to run again.
"""

from __future__ import annotations

from dataclasses import dataclass

from mobipay.app.bootstrap import Container
from mobipay.kernel.errors import MobipayError
from mobipay.kernel.roles import ROLES
from mobipay.merchants.model import credit_code_check_char
from mobipay.platform.config import Environment

CONSOLE_OPERATOR = "demo"
CONSOLE_PASSWORD = "demo-console-pass"  # noqa: S105 - a published demo value, never made in production
SHOP_OWNER = "owner"
SHOP_PASSWORD = "demo-shop-pass"  # noqa: S105 - idem
SHOP_REFUND_PIN = "135790"
#: The first demo shop's credit code (``platform.demo.load_demo_merchants`` numbers them from 0).
FIRST_SHOP_CREDIT_CODE = "91310000000000000" + credit_code_check_char("91310000000000000")


@dataclass(frozen=True, slots=True)
class DemoAccounts:
    console: bool  # the demo operator exists
    shop_id: str | None  # the first demo shop, whose owner account exists


async def ensure_demo_accounts(c: Container) -> DemoAccounts:
    """Create the demo operator (every role) and the first shop's owner if missing;
    nothing in production."""
    if c.settings.env is Environment.PRODUCTION:
        return DemoAccounts(console=False, shop_id=None)
    if CONSOLE_OPERATOR not in {o.name for o in await c.operators.list()}:
        await c.operators.create(CONSOLE_OPERATOR, CONSOLE_PASSWORD, sorted(ROLES), actor="demo",
                                 reason="demo data: the console's demo operator")
    shop = await first_shop(c)
    if shop is not None:
        try:
            await c.merchant_operators.create(shop, SHOP_OWNER, SHOP_PASSWORD, SHOP_REFUND_PIN, role="owner",
                                              actor="demo", reason="demo data: the first shop's owner")
        except MobipayError as exc:
            if exc.code != "MERCHANT_OPERATOR_EXISTS":
                raise
    return await demo_accounts(c)


async def first_shop(c: Container) -> str | None:
    """The first demo shop's merchant id, if the demo's shops are loaded."""
    found = await c.merchants.find(q=FIRST_SHOP_CREDIT_CODE, limit=1)
    return found[0].id if found else None


async def demo_accounts(c: Container) -> DemoAccounts:
    """Which demo sign-ins exist (for the start-up summary); none in production."""
    if c.settings.env is Environment.PRODUCTION:
        return DemoAccounts(console=False, shop_id=None)
    console = CONSOLE_OPERATOR in {o.name for o in await c.operators.list()}
    shop = await first_shop(c)
    owner = shop is not None and await c.merchant_operators.exists(shop, SHOP_OWNER)
    return DemoAccounts(console=console, shop_id=shop if owner else None)
