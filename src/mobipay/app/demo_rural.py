"""Demo rural e-commerce: one super-agent and three village agents in 宁乡县 (Hunan), each
with float from its super-agent, and a rice co-operative selling three products on the rural
marketplace. Small on purpose (well under a second); idempotent (an agent number already
onboarded is skipped)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mobipay.kernel.errors import MobipayError
from mobipay.ledger.chart import BANK_SETTLEMENT
from mobipay.ledger.model import Leg, Transfer
from mobipay.rural.model import AgentKind, Location
from mobipay.rural.service import float_account

if TYPE_CHECKING:
    from mobipay.app.bootstrap import Container

PIN = "135790"  # the demo staff PIN (printed by make run)
SUPER = ("宁乡县助农服务中心", "RURAL-SUPER-0001", "+8613600136000", "玉潭街道", "城关社区")
AGENTS = (("东鹜村便民店", "RURAL-0001", "+8613600136001", "灰汤镇", "东鹜村"),
          ("灰汤村小卖部", "RURAL-0002", "+8613600136002", "灰汤镇", "灰汤村"),
          ("炭子冲农资店", "RURAL-0003", "+8613600136003", "花明楼镇", "炭子冲村"))
COOP = "+8613500135001"
PRODUCTS = (("灰汤贡米 5kg", 6_800, "袋", 200, "湖南宁乡灰汤镇"), ("沩山毛尖 250g", 12_800, "盒", 50, "湖南宁乡沩山"),
            ("宁乡花猪腊肉 1kg", 9_800, "块", 80, "湖南宁乡花明楼镇"))


@dataclass(frozen=True)
class DemoRural:
    agents: int = 0
    products: int = 0

    def summary(self) -> str:
        return (f"rural: {self.agents} new agents in 宁乡县 (staff PIN {PIN}; SMS DLYE from 13600136001), "
                f"{self.products} marketplace products (mobipay rural agents --county 宁乡县; page /m/agent)")


def _place(township: str, village: str) -> Location:
    return Location("湖南省", "长沙市", "宁乡县", township, village)


async def load_demo_rural(c: Container) -> DemoRural:
    made = 0
    try:
        sup = await c.rural.onboard(name=SUPER[0], licence=SUPER[1], msisdn=SUPER[2], location=_place(*SUPER[3:]),
                                    owner_pin=PIN, kind=AgentKind.SUPER, actor="demo")
    except MobipayError:
        return DemoRural()  # loaded before
    await c.ledger.post(Transfer(f"demo:rural:float:{sup.id}", (Leg.debit(BANK_SETTLEMENT, 5_000_000),
                                                                 Leg.credit(float_account(sup.id), 5_000_000)),
                                 "rural.float_buy", reference="Demo float bought from the bank"))
    _, boss = await c.rural.sign_in(SUPER[2], PIN)
    for name, licence, number, township, village in AGENTS:
        a = await c.rural.onboard(name=name, licence=licence, msisdn=number, location=_place(township, village),
                                  owner_pin=PIN, super_id=sup.id, actor="demo")
        await c.rural.rebalance(boss, a.id, 500_000, to_agent=True, idempotency_key=f"demo-{a.id}")
        made += 1
    with contextlib.suppress(MobipayError):  # already a wallet
        await c.wallet.create_user(COOP, actor="demo", reason="demo rural co-operative")
    seller = await c.rural_market.add_seller(COOP, "东鹜村水稻专业合作社", "coop", "宁乡县")
    for title, price, unit, stock, origin in PRODUCTS:
        await c.rural_market.list_product(seller, title=title, price=price, unit=unit, stock=stock, origin=origin,
                                          delivery=["*"])
    return DemoRural(made + 1, len(PRODUCTS))
