"""Handset protection, told as one story.

Li Lei and Wang Fang live in Changsha and bring 500.00 and 20.00 CNY in from their bank
cards. On 10 September Li Lei enrols the iPhone 15 he bought for 2,999.00 two days earlier
(the 3,000 CNY tier: 12.00 a month, theft handled for 349.00) and Wang Fang her 5,499.00
Mate 60 (18.00 a month); each pays the first month from the wallet. On 10 October the
worker collects the second month: Li Lei's 12.00 goes, Wang Fang has 2.00 left, so her
cover lapses, and running the collection again charges nobody twice. On 19 November Li
Lei's phone is stolen in Guangzhou; he claims the next day with the police report number.
The claim trips no fraud rule (70 days after enrolment, 40 after the cover began); a
handler approves it, Li Lei pays the 349.00, the Wuyi Square hall (CS01) reserves an iPhone
15 from its stock and hands it over: the stolen phone's IMEI is on the blocklist and Li
Lei's cover goes on with the new phone. Wang Fang's claim is refused: her cover lapsed.
The books balance.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from stdnum import luhn

from mobipay.app.bootstrap import Container
from mobipay.kernel.clock import SHANGHAI, ManualClock
from mobipay.kernel.errors import RoleRequired
from mobipay.ledger.chart import BANK_SETTLEMENT
from mobipay.protection.model import FEE_INCOME, HANDLING_INCOME, ClaimState, EnrolmentState
from tests.scenarios.story import LI_LEI, PIN, WANG_FANG, books, cash_in, platform, refused, sign_up, sms


def imei(tac: str, serial: int) -> str:
    body = f"{tac}{serial:06d}"
    return body + luhn.calc_check_digit(body)


LI_PHONE, WANG_PHONE, SPARE = imei("35328111", 1), imei("86753005", 2), imei("35328111", 900)


@dataclass(frozen=True)
class Staff:
    name: str

    def require(self, role: str) -> None:
        if role != "support":
            raise RoleRequired(f"{self.name} works claims only", role=role)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 9, 10, 10, 0, tzinfo=SHANGHAI))


@pytest.fixture
async def c(db_url: str, tmp_path: Path, clock: ManualClock, bank: str) -> AsyncIterator[Container]:
    container = await platform(db_url, tmp_path, clock, bank_url=bank)
    yield container
    await container.close()


async def test_protection_story(c: Container, bank: str, clock: ManualClock) -> None:
    li, wang = LI_LEI.wallet, WANG_FANG.wallet
    want = {li: 0, wang: 0, BANK_SETTLEMENT: 0, FEE_INCOME: 0, HANDLING_INCOME: 0}
    p = c.protection

    # They register and bring 500.00 and 20.00 in from their cards.
    me = await sign_up(c, LI_LEI)
    her = await sign_up(c, WANG_FANG)
    await c.wallet.set_pin(LI_LEI.number, PIN)
    await cash_in(c, bank, me, LI_LEI, 50_000)
    await cash_in(c, bank, her, WANG_FANG, 2_000)
    want.update({li: 50_000, wang: 2_000, BANK_SETTLEMENT: 52_000})
    assert await books(c, want) == want

    # 10 September: both enrol and pay the first month.
    mine = await p.enrol(me, imei=LI_PHONE, price=299_900, purchased_on="2026-09-08", receipt="CS-FP-001",
                         city="长沙", idempotency_key="li-enrol")
    hers = await p.enrol(her, imei=WANG_PHONE, price=549_900, purchased_on="2026-09-09", receipt="CS-FP-002",
                         city="长沙", idempotency_key="wang-enrol")
    assert (mine.monthly_fee, mine.loss_fee, mine.covered_from.isoformat()) == (1_200, 34_900, "2026-10-10")
    want.update({li: 50_000 - 1_200, wang: 2_000 - 1_800, FEE_INCOME: 3_000})
    assert await books(c, want) == want
    assert "protection.enrolled" in [t for t, _ in await sms(c, LI_LEI.msisdn)]

    # 10 October: the second month. Li Lei pays; Wang Fang's 2.00 is not enough: her cover lapses.
    clock.set(datetime(2026, 10, 10, 9, 0, tzinfo=SHANGHAI))
    done = await p.collect_due()
    assert (done.collected, done.amount, done.lapsed) == (1, 1_200, 1)
    assert (await p.collect_due()).collected == 0  # the worker's next round charges nobody twice
    want.update({li: 50_000 - 2 * 1_200, FEE_INCOME: 4_200})
    assert await books(c, want) == want
    [lapsed] = await p.enrolments(her)
    assert lapsed.state is EnrolmentState.LAPSED
    assert "protection.lapsed" in [t for t, _ in await sms(c, WANG_FANG.msisdn)]

    # The Wuyi Square hall has an iPhone 15 in stock for replacements.
    await p.add_stock(Staff("hall-cs01"), "CS01", SPARE)

    # 20 November (November's fee collected on the 10th): Li Lei claims for the theft of the day before.
    clock.set(datetime(2026, 11, 10, 9, 0, tzinfo=SHANGHAI))
    assert (await p.collect_due()).collected == 1
    want.update({li: 50_000 - 3 * 1_200, FEE_INCOME: 5_400})
    clock.set(datetime(2026, 11, 20, 9, 0, tzinfo=SHANGHAI))
    claim = await p.submit_claim(me, mine.id, kind="theft", occurred_on="2026-11-19", region="CN-GD",
                                 description="在广州地铁被盗", police_report="GZ20261119-0032", idempotency_key="c1")
    assert (claim.state, claim.flags, claim.fee) == (ClaimState.SUBMITTED, [], 34_900)
    staff = Staff("zhang")
    claim = await p.approve(staff, claim.id)
    assert claim.state is ClaimState.APPROVED
    claim = await p.pay_fee(me, claim.id, idempotency_key="c1-fee", pin=PIN)
    want.update({li: 50_000 - 3 * 1_200 - 34_900, HANDLING_INCOME: 34_900})
    assert await books(c, want) == want
    claim = await p.allocate(staff, claim.id)
    assert (claim.hall, claim.replacement_imei) == ("CS01", SPARE)
    claim = await p.hand_over(staff, (await p.ready(staff, claim.id)).id)
    assert claim.state is ClaimState.HANDED_OVER
    assert await p.blocked(LI_PHONE)
    [covered] = await p.enrolments(me)
    assert (covered.imei, covered.state) == (SPARE, EnrolmentState.ACTIVE)
    told = [t for t, _ in await sms(c, LI_LEI.msisdn)]  # one clock tick: compare as a multiset, not in order
    assert sorted(told[-6:]) == sorted(["protection.submitted", "protection.approved", "protection.fee_paid",
                                        "protection.allocated", "protection.ready_for_pickup",
                                        "protection.handed_over"])

    # Wang Fang's cover lapsed: her claim is refused and nothing moves.
    assert await refused(p.submit_claim(her, hers.id, kind="loss", occurred_on="2026-11-19", region="CN-HN",
                                        description="丢失", idempotency_key="w1")) == "ENROLMENT_NOT_ACTIVE"
    assert await books(c, want) == want
    [row] = [r for r in await p.report() if r.city == "changsha"]
    assert (row.enrolments, row.claims, row.approved, row.handed_over) == (2, 1, 1, 1)
    assert (await c.ledger.verify()).ok
