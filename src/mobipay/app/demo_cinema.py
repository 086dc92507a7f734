"""Demo cinema e-tickets: one cinema (a merchant with MCC 7832 and its store) with two halls
drawn from cinema/data/*.txt, three films and eight shows over the next two days at up to 50%
off, and one verification kiosk registered as the store's terminal with a demo key anyone can
compute (so ``python -m mobipay.simulators.cinema_kiosk`` can be run against the demo).
Small on purpose (well under a second); idempotent (a merchant with its cinema already is
skipped)."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import timedelta
from importlib.resources import files
from typing import TYPE_CHECKING

from mobipay.instore.signature import public_of
from mobipay.kernel.errors import MobipayError

if TYPE_CHECKING:
    from mobipay.app.bootstrap import Container

NAME = "聚影国际影城 三里屯店"
CODE17 = "91110105CN0000001"
FILMS = (("流浪地球3", 150, 8_000, 3_990), ("哪吒之魔童闹海", 144, 6_000, 2_900), ("长安三万里", 168, 5_000, 2_500))
KIOSK_KEY_CONTEXT = "mobipay-demo-cinema-kiosk-v1:"


@dataclass(frozen=True)
class DemoCinema:
    cinema_id: str = ""
    shows: int = 0
    kiosk_id: str = ""
    kiosk_key: str = ""  # the demo kiosk's private key (public on purpose: demo only)
    skipped: str = ""


def demo_kiosk_seed(store_id: str) -> str:
    """The demo kiosk's Ed25519 seed: SHA-256 of a fixed context and its store id (demo only)."""
    return base64.b64encode(hashlib.sha256((KIOSK_KEY_CONTEXT + store_id).encode()).digest()).decode()


def _layout(name: str) -> str:
    return files("mobipay.cinema").joinpath(f"data/{name}").read_text(encoding="utf-8")


async def load_demo_cinema(c: Container) -> DemoCinema:
    from mobipay.merchants.model import credit_code_check_char

    code = CODE17 + credit_code_check_char(CODE17)
    try:
        m = await c.merchants.apply(name="聚影国际影城", credit_code=code, legal_person="陈影",
                                    contact="+8613711110000", mcc="7832", website="https://cinema.example",
                                    settlement_account="6222030000000007832")
    except MobipayError:
        found = await c.merchants.find(q=code)
        if not found:
            return DemoCinema(skipped="the cinema merchant could not be made")
        m = found[0]
    if m.state.value != "approved":
        return DemoCinema(skipped=f"the cinema merchant is {m.state.value}")
    if any(x.merchant_id == m.id for x in await c.cinema.find_cinemas("北京")):
        return DemoCinema(skipped="loaded before")
    store = await c.merchants.add_store(m, NAME, "三里屯路 19 号", "北京")
    cinema = await c.cinema.open_cinema(m.id, store, name=NAME, city="北京", address="三里屯路 19 号", actor="demo")
    imax = await c.cinema.add_hall(cinema.id, "IMAX厅", _layout("hall_imax.txt"))
    small = await c.cinema.add_hall(cinema.id, "2号厅", _layout("hall_small.txt"))
    films = [await c.cinema.add_film(title, minutes) for title, minutes, _, _ in FILMS]
    first = c.clock.now().replace(minute=0, second=0, microsecond=0) + timedelta(hours=2)
    shows = 0
    for n in range(4):
        for hall, k in ((imax, n % 2), (small, 1 + n % 2)):
            _, _, list_price, price = FILMS[k]
            await c.cinema.add_show(hall.id, films[k].id, first + timedelta(hours=3 * n + (1 if hall is small else 0)),
                                    list_price=list_price, price=price, actor="demo")
            shows += 1
    seed = demo_kiosk_seed(store)
    kiosk, _ = await c.terminals.register(m.id, store, "KIOSK-01", actor="demo", public_key=public_of(seed))
    return DemoCinema(cinema.id, shows, kiosk.id, seed)
