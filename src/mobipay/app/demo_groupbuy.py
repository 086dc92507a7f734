"""Demo group-buy community: ten deal merchants (group-buy sites and chains), one store and
one deal in each of the community's 296 cities (groupbuy/data/cities.csv), spread over the
categories, some with a group threshold. Small on purpose (loads in seconds); idempotent (a
merchant that has its stores already is skipped)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from mobipay.groupbuy.model import DealTerms
from mobipay.groupbuy.service import cities
from mobipay.kernel.errors import MobipayError

if TYPE_CHECKING:
    from mobipay.app.bootstrap import Container

#: (name, MCC, category): low-risk MCCs only, so the demo's merchants are approved by rule
SITES = (("聚惠啦美食", "5812", "food"), ("星级酒店联盟", "5311", "hotel"), ("欢乐台球KTV", "7932", "leisure"),
         ("丽人美发", "5311", "beauty"), ("家政帮", "5411", "life"), ("周边游乐园", "7996", "travel"),
         ("乐动健身", "7932", "fitness"), ("亲子乐园", "7996", "kids"), ("火锅连锁", "5812", "food"),
         ("烘焙工坊", "5812", "food"))
TITLES = {"food": "双人套餐", "hotel": "标准间一晚", "leisure": "欢唱3小时", "beauty": "洗剪吹",
          "life": "日常保洁2小时", "travel": "景区门票", "fitness": "游泳单次", "kids": "亲子乐园畅玩"}


@dataclass(frozen=True)
class DemoGroupBuy:
    merchants: int = 0
    deals: int = 0
    skipped: str = ""


async def load_demo_groupbuy(c: Container) -> DemoGroupBuy:
    from mobipay.merchants.model import credit_code_check_char

    now = c.clock.now()
    made_merchants = deals = 0
    places = cities()
    for n, (name, mcc, category) in enumerate(SITES):
        first17 = f"9144030{n:03d}GB0{n:04d}"[:17]
        code = first17 + credit_code_check_char(first17)
        try:
            m = await c.merchants.apply(name=name, credit_code=code, legal_person="王经理", contact=f"+86137{n:08d}",
                                        mcc=mcc, website=f"https://tuan{n}.example",
                                        settlement_account=f"62220300{n:010d}")
            made_merchants += 1
        except MobipayError:
            found = [x for x in await c.merchants.find(q=code) if x.name == name]
            if not found:
                continue  # a category needing review: not in the demo
            m = found[0]
        if m.state.value != "approved" or await c.merchants.stores(m.id):
            continue  # not approved by rule, or loaded before
        for i, city in enumerate(places):
            if i % len(SITES) != n and not (n == 0 and i < 30):  # the first site is in the 30 biggest cities too
                continue
            store = await c.merchants.add_store(m, f"{name} {city.name}店", f"{city.name}市中心", city.name)
            price = (19 + (i * 7) % 180) * 100 - 10
            grouped = i % 9 == 0
            await c.groupbuy.open_deal(m.id, DealTerms(
                f"{TITLES[category]}（{city.name}）", city.name, category, price, price * 2, 200 + i % 800,
                now - timedelta(days=1), now + timedelta(days=14), 5, now - timedelta(days=1), now + timedelta(days=90),
                group_min=3 if grouped else 0, group_deadline=now + timedelta(days=7) if grouped else None,
                lat=city.lat + ((i % 7) - 3) * 0.01, lon=city.lon + ((i % 5) - 2) * 0.01), [store], actor="demo")
            deals += 1
    return DemoGroupBuy(made_merchants, deals)
