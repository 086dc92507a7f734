"""Lottery rules without I/O: the games (welfare and sports lottery style), their draw
calendars and sales cut-off, bets chosen or picked at random, and the prize tiers.

Prizes are taxed as Chinese law has it for lottery winnings (偶然所得): a single prize (one
bet at multiplier 1) up to 10,000 CNY is free of tax; above that, 20% of the whole prize
is withheld by the payer. Each multiple of a ticket is a bet of its own, so the test is
per bet and the tax is multiplied with the prize.

A bet is one selection (``[[1, 5, 12, 19, 27, 33], [9]]`` for 双色球: six red balls and a
blue one); a ticket is up to 5 bets with a multiplier, for the game's next draw whose
sales have not closed. Fixed prizes are in the tables below; the top tiers float and come
with the draw from the lottery centre.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from mobipay.lottery import errors

BET_PRICE = 200  # fen: every game here costs 2 CNY a bet
MAX_BETS = 5
MAX_MULTIPLIER = 99
TAX_FREE_PRIZE = 1_000_000  # fen: a single prize up to 10,000 CNY is not taxed
PRIZE_TAX_PERCENT = 20  # of the whole prize, once it is above TAX_FREE_PRIZE
CLAIM_DAYS = 60  # a prize is claimed within 60 days of its draw or is forfeit


def prize_tax(unit_prize: int) -> int:
    """The tax withheld on one bet's prize at multiplier 1, in fen (rounded down to the fen)."""
    return unit_prize * PRIZE_TAX_PERCENT // 100 if unit_prize > TAX_FREE_PRIZE else 0


@dataclass(frozen=True, slots=True)
class Winnings:
    """What a ticket won: the gross prize, the tax withheld and what the winner is paid."""

    gross: int
    tax: int
    tier: int  # the best tier won, 0 for none

    @property
    def net(self) -> int:
        return self.gross - self.tax


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

    def winnings(self, bets: list[tuple[tuple[int, ...], ...]], drawn: tuple[tuple[int, ...], ...],
                 floating: dict[int, int], multiplier: int) -> Winnings:
        """A ticket's prize and tax: each bet is taxed on its own prize, each multiple alike."""
        won = [self.prize(b, drawn, floating) for b in bets]
        gross = sum(amount for _, amount in won) * multiplier
        tax = sum(prize_tax(amount) for _, amount in won) * multiplier
        return Winnings(gross, tax, min((t for t, amount in won if amount), default=0))

    def draws_from(self, now: datetime) -> Iterator[tuple[str, datetime, datetime]]:
        """The draws whose sales close after ``now`` (Beijing time), in order: (issue, sales
        close, draw time)."""
        day = now.date()
        nth = self._nth_draw(day - timedelta(days=1)) if day.timetuple().tm_yday > 1 else 0  # draws before today
        while True:
            if day.timetuple().tm_yday == 1:
                nth = 0  # issues are numbered per year
            if day.weekday() in self.weekdays:
                nth += 1
                close = datetime.combine(day, self.sales_close, now.tzinfo)
                if now < close:
                    yield f"{day.year}{nth:03d}", close, datetime.combine(day, self.draw_at, now.tzinfo)
            day += timedelta(days=1)

    def draws_between(self, start: datetime, end: datetime) -> list[tuple[str, datetime, datetime]]:
        """The draws held from ``start`` to ``end`` (Beijing time), oldest first."""
        out: list[tuple[str, datetime, datetime]] = []
        for issue, close, draw_at in self.draws_from(start - timedelta(days=1)):
            if draw_at > end:
                return out
            if draw_at >= start:
                out.append((issue, close, draw_at))
        return out  # pragma: no cover - the generator is endless

    def draw_of(self, issue: str, tz: tzinfo) -> tuple[datetime, datetime]:
        """(sales close, draw time) of an issue such as 2026137, or ``UNKNOWN_ISSUE``."""
        if not (isinstance(issue, str) and len(issue) == 7 and issue.isascii() and issue.isdigit()):
            raise errors.UnknownIssue("an issue is the year and the draw's number in it, e.g. 2026137",
                                      field="issue")
        year, nth = int(issue[:4]), int(issue[4:])
        if not 2000 <= year <= 2099 or nth < 1:
            raise errors.UnknownIssue(f"{self.name} has no issue {issue}", field="issue")
        day, count = date(year, 1, 1), 0
        while day.year == year:
            if day.weekday() in self.weekdays:
                count += 1
                if count == nth:
                    return (datetime.combine(day, self.sales_close, tz), datetime.combine(day, self.draw_at, tz))
            day += timedelta(days=1)
        raise errors.UnknownIssue(f"{self.name} has {count} draws in {year}, not {nth}", field="issue")

    def next_draw(self, now: datetime) -> tuple[str, datetime, datetime]:
        """The draw on sale at ``now`` (Beijing time): (issue, sales close, draw time).
        Issues are numbered per year: 2026001 is the year's first draw of the game."""
        return next(self.draws_from(now))

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
