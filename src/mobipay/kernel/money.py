"""Money as an integer number of minor units (fen for CNY) with its currency.

Floats never enter: constructors refuse them, and splitting is done by allocating
remainders (largest-remainder method) so that no fen is created or lost.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from iso4217 import Currency

from mobipay.kernel.errors import InvalidAmount, InvalidCurrency

#: ISO 4217 currencies with their minor-unit exponent, from the maintained list (the
#: ``iso4217`` package ships the maintenance agency's table). Funds, metals and testing
#: codes (XAU, XTS, XXX…) have no minor unit and are not money here.
CURRENCIES: dict[str, int] = {c.code: c.exponent for c in Currency if c.exponent is not None}


def check_currency(currency: object) -> str:
    """Return ``currency`` if it is an ISO 4217 currency code, else raise ``INVALID_CURRENCY``."""
    if not isinstance(currency, str) or currency not in CURRENCIES:
        raise InvalidCurrency(f"{currency!r} is not an ISO 4217 currency code (CNY, HKD, USD…)", field="currency")
    return currency


def check_amount(amount: object, *, field: str = "amount", allow_zero: bool = False) -> int:
    """Return ``amount`` if it is an integer number of minor units > 0 (or >= 0).

    ``bool`` is an ``int`` subclass in Python, and a float or a numeric string is a
    classic source of lost fen: all are refused with ``INVALID_AMOUNT``.
    """
    if type(amount) is not int:
        raise InvalidAmount(
            f"{field} is integer fen (1250 for 12.50 CNY), got {type(amount).__name__} {_shown(amount)}",
            field=field,
        )
    if amount < 0 or (amount == 0 and not allow_zero):
        raise InvalidAmount(f"{field} is integer fen greater than 0, got {amount}", field=field)
    if amount > MAX_AMOUNT:
        raise InvalidAmount(f"{field} is integer fen of at most {MAX_AMOUNT}, got {_shown(amount)}", field=field)
    return amount


#: Largest single amount: well inside a signed 64-bit column even after summing many.
MAX_AMOUNT = 10**15


def _shown(value: object) -> str:
    """A refused value for a message, cut short (a 5,000-digit number is not repeated back)."""
    text = repr(value) if not isinstance(value, int) or abs(value) < 10**30 else f"{str(value)[:20]}…"
    return text if len(text) <= 40 else text[:40] + "…"


def parse_fen(text: str, *, field: str = "amount") -> int:
    """Integer fen written as text (a merchant's ``total_amount``, a query parameter): ASCII
    digits only. Full-width ("１００") and other Unicode digits, which ``int()`` and
    ``str.isdigit`` accept, are refused with ``INVALID_AMOUNT``, as are signs and spaces."""
    if not (text.isascii() and text.isdigit() and len(text) <= 16):
        raise InvalidAmount(f"{field} is integer fen in ASCII digits, e.g. 8800 for 88.00 CNY, got {_shown(text)}",
                            field=field)
    return check_amount(int(text), field=field)


_YUAN = re.compile(r"(?P<yuan>[0-9]{1,13})(?:\.(?P<fen>[0-9]{1,2}))?", re.ASCII)


def parse_yuan(text: str, *, field: str = "amount", example: str = "50 or 12.50") -> int:
    """Yuan written as text, as people type them and Alipay's API sends them (``"12.50"`` →
    ``1250``): ASCII digits with at most two decimals, nothing else (no sign, exponent,
    spaces, separators or full-width digits), refused with ``INVALID_AMOUNT``."""
    found = _YUAN.fullmatch(text) if isinstance(text, str) else None
    if found is None:
        raise InvalidAmount(f"{field} is an amount in yuan with at most 2 decimals, e.g. {example}, "
                            f"got {_shown(text)}", field=field)
    fen = int(found["yuan"]) * 100 + int((found["fen"] or "0").ljust(2, "0"))
    return check_amount(fen, field=field)


def yuan(fen: int) -> str:
    """Fen as the yuan figure people read and Alipay's API writes: ``5000`` → ``50.00``."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in minor units with its currency; arithmetic only within one currency."""

    amount: int
    currency: str = "CNY"

    def __post_init__(self) -> None:
        if type(self.amount) is not int:
            raise InvalidAmount(f"Money amount must be an int of minor units, got {self.amount!r}")
        check_currency(self.currency)

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise InvalidCurrency(f"Cannot combine {self.currency} with {other.currency}")

    def allocate(self, ratios: list[int]) -> list[Money]:
        """Split by integer ratios; see :func:`allocate`."""
        return [Money(a, self.currency) for a in allocate(self.amount, ratios)]

    def format(self) -> str:
        """Display form, e.g. ``¥123.45``; for channels, never for storage."""
        exp = CURRENCIES[self.currency]
        sign = "-" if self.amount < 0 else ""
        units, minor = divmod(abs(self.amount), 10**exp) if exp else (abs(self.amount), 0)
        symbol = "¥" if self.currency == "CNY" else f"{self.currency} "
        return f"{sign}{symbol}{units:,}" + (f".{minor:0{exp}d}" if exp else "")


def allocate(amount: int, ratios: list[int]) -> list[int]:
    """Split ``amount`` in proportion to ``ratios`` so the parts sum exactly to ``amount``.

    Largest-remainder method: each part gets its floor share, then the leftover units go
    one by one to the parts with the largest remainders (earliest first on ties).
    """
    if not ratios or any(type(r) is not int or r < 0 for r in ratios) or sum(ratios) == 0:
        raise InvalidAmount("ratios must be non-negative integers with a positive sum")
    total = sum(ratios)
    shares = [amount * r // total for r in ratios]
    remainders = [(amount * r % total, -i) for i, r in enumerate(ratios)]
    leftover = amount - sum(shares)
    for _, neg_i in sorted(remainders, reverse=True)[:leftover]:
        shares[-neg_i] += 1
    return shares
