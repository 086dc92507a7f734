"""Demo SP governance (移动梦网): three SPs with monthly and per-message services, and the
first demo subscriber with one confirmed subscription on the phone bill and one order still
waiting for its "是", so /m/sp, SMS 0000 and the console's SP pages have something to show.

Small, and idempotent: an SP that is registered already is left as it is, and the
subscriber's orders are placed once (when 天气通 is not active for the number yet)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mobipay.kernel.errors import MobipayError
from mobipay.sp.model import ChargeMethod, Cycle, SubState

if TYPE_CHECKING:
    from mobipay.app.bootstrap import Container

#: (service code, name, licence, hotline, share in basis points, [(keyword, name, fen, cycle)])
SPS = (
    ("10661234", "天气通", "B2-20260001", "4006661234", 8_500,
     (("TQ", "每日天气", 300, Cycle.MONTHLY), ("TQJ", "天气预警（按条）", 10, Cycle.PER_MESSAGE))),
    ("10665678", "彩铃工坊", "B2-20260002", "4006665678", 8_000,
     (("CL", "彩铃包月", 500, Cycle.MONTHLY),)),
    ("10669001", "新闻早报", "B2-20260003", "4006669001", 8_500,
     (("ZB", "手机早报", 300, Cycle.MONTHLY), ("KX", "快讯（按条）", 20, Cycle.PER_MESSAGE))),
)
SUBSCRIBER = "+8613800138000"


@dataclass(frozen=True, slots=True)
class DemoSps:
    sps: int  # newly registered
    services: int
    orders: int


async def load_demo_sp(c: Container) -> DemoSps:
    """Register the demo SPs and their services, then order two services for the first demo
    subscriber: 天气通 confirmed (active), 手机早报 waiting for the reply."""
    sps = services = orders = 0
    for code, name, licence, hotline, share, offered in SPS:
        try:
            await c.sp.sp(code)
        except MobipayError:
            await c.sp.register_sp(code, name, licence=licence, hotline=hotline, share_bp=share, actor="demo",
                                   settlement_account=f"6222000000{code[-6:]}", reason="demo data")
            sps += 1
            for keyword, title, price, cycle in offered:
                await c.sp.add_service(code, keyword, title, price=price, cycle=cycle, actor="demo")
                services += 1
    try:
        await c.wallet.user_by_msisdn(SUBSCRIBER)
    except MobipayError:
        return DemoSps(sps, services, orders)
    if any(s.service_id == "10661234:TQ" for s in await c.sp.subscriptions(SUBSCRIBER)):
        return DemoSps(sps, services, orders)  # placed by an earlier run (the waiting one may have lapsed since)
    for code, keyword, confirm in (("10661234", "TQ", True), ("10669001", "ZB", False)):
        sub = await c.sp.subscribe(SUBSCRIBER, code, keyword, channel="web", method=ChargeMethod.PHONE_BILL)
        orders += 1
        if confirm and sub.state is SubState.AWAITING:
            await c.sp.reply(SUBSCRIBER, at_sp=code)
    return DemoSps(sps, services, orders)
