"""Demo transit one-card: one operator in each of the three cities with fares (transit/data/
fares.json): Beijing's metro (line 1 with five stations and line 2 meeting it at 西单, a gate
in and out at each), Shanghai's buses (route 49, two readers), Guangzhou's metro (line 3,
four stations). Small on purpose (well under a second); idempotent (an operator that has its
lines is skipped). Validators' private seeds are not kept: re-key one with the CLI to drive it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mobipay.app.bootstrap import Container

METROS: dict[str, tuple[str, str, dict[str, tuple[tuple[str, int], ...]]]] = {
    "北京": ("北京地铁", "6222020000111100001", {"1号线": (("苹果园", 0), ("公主坟", 9_200), ("西单", 14_000),
                                                      ("王府井", 16_100), ("国贸", 22_000)),
                                            "2号线": (("西单", 0), ("积水潭", 5_500))}),
    "广州": ("广州地铁", "6222020000111100003", {"3号线": (("体育西路", 0), ("珠江新城", 1_400), ("客村", 4_900),
                                                      ("番禺广场", 31_000))}),
}
BUSES: dict[str, tuple[str, str, dict[str, tuple[str, ...]]]] = {
    "上海": ("上海巴士", "6222020000111100002", {"49路": ("沪B-49001", "沪B-49002")})}


@dataclass(frozen=True)
class DemoTransit:
    operators: int = 0
    validators: int = 0

    def summary(self) -> str:
        return (f"transit: {self.operators} new operators, {self.validators} validators "
                "(mobipay transit operators; mobipay transit fares 北京)")


async def load_demo_transit(c: Container) -> DemoTransit:
    t = c.transit
    ops = validators = 0
    for city, (name, account, lines) in METROS.items():
        op = await t.add_operator(city, name, "metro", account)
        if await t.lines_of(op.id):
            continue
        ops += 1
        for line_name, stations in lines.items():
            line = await t.add_line(op.id, line_name)
            for st_name, pos in stations:
                st = await t.add_station(line.id, st_name, pos)
                for role, word in (("entry", "进站"), ("exit", "出站")):
                    await t.register_validator(op.id, line.id, role, f"{st_name} {word}", station_id=st.id)
                    validators += 1
    for city, (name, account, routes) in BUSES.items():
        op = await t.add_operator(city, name, "bus", account)
        if await t.lines_of(op.id):
            continue
        ops += 1
        for route_name, buses in routes.items():
            line = await t.add_line(op.id, route_name)
            for plate in buses:
                await t.register_validator(op.id, line.id, "flat", f"{route_name} {plate}")
                validators += 1
    return DemoTransit(ops, validators)
