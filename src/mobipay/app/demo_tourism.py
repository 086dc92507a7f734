"""Demo tourism enforcement (旅游通): the 绥宁县 bureau's shipped directory (its bureau, the
brigade, unit contacts, hotels, five scenic spots, two agencies with guides and drivers, news
and policies), its nine officers' terminals (SN0001-SN0009 on devices SN-TERM-01..09) and one
officer of the neighbouring county, the agency's account paid in, and the seed's National Day
tour contract (黄桑 and 上堡侗寨 promised; the location SIMULATOR's track of the guide skips
上堡侗寨), so an officer can enter the complaint at /tourism/app and replay the route; each
agency's manager account (qingshan, huangsang at /tourism/agency) and each guide's (lifang,
longxiuying at /tourism/guide).
Small and idempotent (a second run adds nothing)."""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from mobipay.kernel.clock import SHANGHAI
from mobipay.kernel.errors import MobipayError
from mobipay.tourism.service import Viewer

if TYPE_CHECKING:
    from mobipay.app.bootstrap import Container

SUINING, CHENGBU = "430527", "430529"
PASSWORD = "tourism-demo-1"  # noqa: S105 - the demo's officers only (never in production)
TOURIST = "+8613800138000"
OFFICERS = ("唐明", "杨帆", "刘洋", "吴静", "龙飞", "陈刚", "蒋丽", "肖勇", "向华")


@dataclass(frozen=True)
class DemoTourism:
    officers: int = 0
    contract: str = ""
    skipped: str = ""

    def summary(self) -> str:
        if self.skipped:
            return f"tourism: skipped ({self.skipped})"
        return (f"tourism (旅游通): 绥宁县 directory, {self.officers} new officers (SN0001/{PASSWORD} on device "
                f"SN-TERM-01 at /tourism/app), the seed's tour contract {self.contract} (/console/tourism), "
                f"agency accounts qingshan/huangsang (/tourism/agency) and guides lifang/longxiuying "
                f"(/tourism/guide), password {PASSWORD}")


async def load_demo_tourism(c: Container) -> DemoTourism:
    if c.settings.env.value == "production":
        return DemoTourism(skipped="production")
    t = c.tourism
    await t.load_directory(SUINING, actor="demo")
    made = 0
    known = {o.badge for o in await t.officers_of(SUINING)} | {o.badge for o in await t.officers_of(CHENGBU)}
    for n, name in enumerate(OFFICERS, 1):
        if f"SN{n:04d}" not in known:
            await t.add_officer(SUINING, f"SN{n:04d}", name, f"139073910{n:02d}", f"SN-TERM-{n:02d}", PASSWORD,
                                actor="demo")
            made += 1
    if "CB0001" not in known:
        await t.add_officer(CHENGBU, "CB0001", "杨林", "13907392001", "CB-TERM-01", PASSWORD, actor="demo")
        made += 1
    agency = "tag_" + hashlib.sha256(b"L-HUN-CJ00527").hexdigest()[:20]
    await t.fund_agency(agency, 500_000, idempotency_key="demo-deposit", actor="demo")
    with contextlib.suppress(MobipayError):  # already there
        await c.wallet.create_user(TOURIST, actor="demo", reason="the seed's tourist")
    staff = {e.name: e.id for e in await t.directory(Viewer("demo", SUINING))}
    contract = await t.file_contract(
        agency, "张伟", TOURIST, datetime(2026, 10, 3, 7, 30, tzinfo=SHANGHAI),
        datetime(2026, 10, 3, 13, 0, tzinfo=SHANGHAI), ["spot_huangsang", "spot_shangbao"],
        guide_id=staff.get("李芳"), driver_id=staff.get("王军"), price=38_000, people=2)
    await _demo_accounts(c)
    return DemoTourism(made, contract)


#: One account per demo agency (its manager) and one per guide: (licence, login, manager's name,
#: guide's login, guide's name).
ACCOUNTS = (("L-HUN-CJ00527", "qingshan", "陈志强", "lifang", "李芳"),
            ("L-HUN-CJ00531", "huangsang", "吴国华", "longxiuying", "龙秀英"))


async def _demo_accounts(c: Container) -> None:
    """The agencies' own sign-in (/tourism/agency) and their guides' (/tourism/guide)."""
    t = c.tourism
    people = {e.name: e.id for e in await t.directory(Viewer("demo", SUINING), kind="guide")}
    for licence, login, manager, guide_login, guide in ACCOUNTS:
        agency = "tag_" + hashlib.sha256(licence.encode()).hexdigest()[:20]
        known = {a.login for a in await t.agency_accounts_of(agency)}
        if login not in known:
            await t.add_agency_account(agency, login, manager, "manager", PASSWORD, actor="demo")
        if guide_login not in known and guide in people:
            await t.add_agency_account(agency, guide_login, guide, "guide", PASSWORD, staff_id=people[guide],
                                       actor="demo")
