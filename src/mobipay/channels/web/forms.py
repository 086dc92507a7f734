"""Form fields of the server-rendered pages: amounts typed in yuan, turned into fen strictly.

People type ``50``, ``12.5`` or ``12.50``; the platform counts integer fen. Anything else
(exponents, more than two decimals, signs, thousands separators, full-width digits) is
refused with ``INVALID_AMOUNT`` before any service is called, so a typo never moves money.
The fen then go through :func:`mobipay.kernel.money.check_amount` as the API's do.
Lottery numbers and counts are parsed as strictly (``INVALID_NUMBERS``).
"""

from __future__ import annotations

from mobipay.kernel.money import parse_yuan as _parse_yuan
from mobipay.kernel.money import yuan as yuan_text
from mobipay.lottery.errors import InvalidNumbers

__all__ = ["parse_bets", "parse_count", "parse_yuan", "yuan_text"]


def parse_yuan(text: str, *, field: str = "amount") -> int:
    """``" 12.50"`` → ``1250``: what was typed, without the spaces around it."""
    return _parse_yuan(text.strip(), field=field)


def parse_bets(text: str, *, max_bets: int = 5, field: str = "numbers") -> list[list[list[int]]]:
    """Chosen lottery numbers as typed, bets apart by ``;`` (or lines), groups joined by ``+``,
    numbers apart by spaces or commas: ``01 05 12 19 27 33 + 09``. Only the digits 0-9 (a
    full-width or superscript digit is refused, never guessed at); the game checks the rest."""
    bets: list[list[list[int]]] = []
    for line in text.replace(";", "\n").replace("；", "\n").splitlines():
        if not line.strip():
            continue
        bet = []
        for group in line.split("+"):
            tokens = group.replace(",", " ").replace("，", " ").split()
            if not tokens or not all(t.isascii() and t.isdigit() and len(t) <= 2 for t in tokens):
                raise InvalidNumbers("type each bet's numbers with the digits 0-9, e.g. 01 05 12 19 27 33 + 09",
                                     field=field)
            bet.append([int(t) for t in tokens])
        bets.append(bet)
    if len(bets) > max_bets:
        raise InvalidNumbers(f"a ticket has at most {max_bets} bets", field=field)
    return bets


def parse_count(text: str, low: int, high: int, *, field: str) -> int:
    """A small whole number typed or chosen in a form (quick picks, multiplier), ``low``..``high``."""
    clean = text.strip() or str(low)
    if not (clean.isascii() and clean.isdigit() and len(clean) <= 3 and low <= int(clean) <= high):
        raise InvalidNumbers(f"{field.replace('_', ' ')} is a whole number from {low} to {high}", field=field)
    return int(clean)
