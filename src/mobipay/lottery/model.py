"""Lottery rules without I/O: the games (welfare and sports lottery style), their draw
calendars and sales cut-off, bets chosen or picked at random, and the prize tiers.

A bet is one selection (``[[1, 5, 12, 19, 27, 33], [9]]`` for 双色球: six red balls and a
blue one); a ticket is up to 5 bets with a multiplier, for the game's next draw whose
sales have not closed. Fixed prizes are in the tables below; the top tiers float and come
with the draw from the lottery centre.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from mobipay.lottery import errors

BET_PRICE = 200  # fen: every game here costs 2 CNY a bet
MAX_BETS = 5
MAX_MULTIPLIER = 99


@dataclass(frozen=True, slots=True)
class Pool:
    """One part of a selection: ``pick`` numbers from ``low``..``high``, distinct or not, ordered or not."""

    pick: int
    low: int
    high: int
    distinct: bool = True


@dataclass(frozen=True, slots=True)
class Game:
    code: str
    name: str
    pools: tuple[Pool, ...]
    weekdays: frozenset[int]  # Monday = 0
    draw_at: time  # Beijing time
    sales_close: time
    fixed: dict[tuple[int, ...], tuple[int, int]]  # matches per pool -> (tier, prize in fen)
    floating: dict[tuple[int, ...], int]  # matches per pool -> tier whose prize comes with the draw
    ordered: bool = False  # 3D "direct": position by position

    def check_bet(self, bet: object) -> tuple[tuple[int, ...], ...]:
        """A bet as a tuple per pool (sorted unless the game is ordered), or ``INVALID_NUMBERS``."""
        if not isinstance(bet, list | tuple) or len(bet) != len(self.pools):
            raise errors.InvalidNumbers(f"{self.name}: a bet has {len(self.pools)} group(s) of numbers", field="bets")
        out = []
        for pool, numbers in zip(self.pools, bet, strict=True):
            if not (isinstance(numbers, list | tuple) and len(numbers) == pool.pick
                    and all(type(n) is int and pool.low <= n <= pool.high for n in numbers)):
                raise errors.InvalidNumbers(f"{self.name}: pick {pool.pick} numbers from {pool.low} to {pool.high}",
                                            field="bets")
            if pool.distinct and len(set(numbers)) != len(numbers):
                raise errors.InvalidNumbers(f"{self.name}: the numbers of a group must differ", field="bets")
            out.append(tuple(numbers) if self.ordered else tuple(sorted(numbers)))
        return tuple(out)

    def quick_pick(self) -> tuple[tuple[int, ...], ...]:
        """A random bet (机选), from the operating system's random source."""
        bet = []
        for pool in self.pools:
            choices = list(range(pool.low, pool.high + 1))
            if pool.distinct:
                picked = []
                for _ in range(pool.pick):
                    picked.append(choices.pop(secrets.randbelow(len(choices))))
            else:
                picked = [secrets.choice(choices) for _ in range(pool.pick)]
            bet.append(tuple(picked) if self.ordered else tuple(sorted(picked)))
        return tuple(bet)

    def matches(self, bet: tuple[tuple[int, ...], ...], drawn: tuple[tuple[int, ...], ...]) -> tuple[int, ...]:
        if self.ordered:
            return (sum(1 for a, b in zip(bet[0], drawn[0], strict=True) if a == b),)
        return tuple(len(set(b) & set(d)) for b, d in zip(bet, drawn, strict=True))

    def prize(self, bet: tuple[tuple[int, ...], ...], drawn: tuple[tuple[int, ...], ...],
              floating: dict[int, int]) -> tuple[int, int]:
        """(tier, prize in fen) of one bet at multiplier 1; (0, 0) for no prize."""
        m = self.matches(bet, drawn)
        if m in self.floating:
            tier = self.floating[m]
            return tier, floating.get(tier, 0)
        return self.fixed.get(m, (0, 0))

    def next_draw(self, now: datetime) -> tuple[str, datetime, datetime]:
        """The draw on sale at ``now`` (Beijing time): (issue, sales close, draw time).
        Issues are numbered per year: 2026001 is the year's first draw of the game."""
        day = now.date()
        while True:
            if day.weekday() in self.weekdays:
                close = datetime.combine(day, self.sales_close, now.tzinfo)
                if now < close:
                    return f"{day.year}{self._nth_draw(day):03d}", close, datetime.combine(day, self.draw_at,
                                                                                             now.tzinfo)
            day += timedelta(days=1)

    def _nth_draw(self, day: date) -> int:
        start = date(day.year, 1, 1)
        return sum(1 for n in range((day - start).days + 1) if (start + timedelta(days=n)).weekday() in self.weekdays)


SSQ = Game("ssq", "双色球", (Pool(6, 1, 33), Pool(1, 1, 16)), frozenset({1, 3, 6}), time(21, 15), time(20, 0),
           fixed={(5, 1): (3, 300_000), (5, 0): (4, 20_000), (4, 1): (4, 20_000), (4, 0): (5, 1_000),
                  (3, 1): (5, 1_000), (2, 1): (6, 500), (1, 1): (6, 500), (0, 1): (6, 500)},
           floating={(6, 1): 1, (6, 0): 2})
DLT = Game("dlt", "超级大乐透", (Pool(5, 1, 35), Pool(2, 1, 12)), frozenset({0, 2, 5}), time(21, 25), time(20, 0),
           fixed={(5, 0): (3, 1_000_000), (4, 2): (4, 300_000), (4, 1): (5, 30_000), (3, 2): (6, 20_000),
                  (4, 0): (7, 10_000), (3, 1): (8, 1_500), (2, 2): (8, 1_500), (3, 0): (9, 500), (1, 2): (9, 500),
                  (2, 1): (9, 500), (0, 2): (9, 500)},
           floating={(5, 2): 1, (5, 1): 2})
FC3D = Game("fc3d", "福彩3D", (Pool(3, 0, 9, distinct=False),), frozenset(range(7)), time(21, 15), time(20, 0),
            fixed={(3,): (1, 104_000)}, floating={}, ordered=True)

GAMES = {g.code: g for g in (SSQ, DLT, FC3D)}


def game(code: str) -> Game:
    found = GAMES.get(code.lower())
    if found is None:
        raise errors.UnknownGame(f"no game {code!r}; games: {', '.join(GAMES)}", field="game")
    return found


def same_ticket_request(details: Mapping[str, Any], code: str, chosen: list[list[list[int]]], quick_picks: int,
                        multiplier: int) -> bool:
    """Whether a ticket bought with ``details`` answers this request (a retry with the same
    Idempotency-Key): the same game and multiplier, the same chosen bets first, then as many
    random bets as quick picks were asked for (those cannot be compared, only counted).
    Tickets bought before ``quick_picks`` was kept are compared by their number of bets."""
    bets = details.get("bets", [])
    asked = details.get("quick_picks", len(bets) - len(chosen))
    return (details.get("game") == code and details.get("multiplier") == multiplier and asked == quick_picks
            and len(bets) == len(chosen) + quick_picks and bets[:len(chosen)] == chosen)


def ticket_cost(bets: int, multiplier: int) -> int:
    if not 1 <= bets <= MAX_BETS:
        raise errors.InvalidNumbers(f"a ticket has 1 to {MAX_BETS} bets", field="bets")
    if type(multiplier) is not int or not 1 <= multiplier <= MAX_MULTIPLIER:
        raise errors.InvalidNumbers(f"the multiplier is 1 to {MAX_MULTIPLIER}", field="multiplier")
    return bets * multiplier * BET_PRICE
