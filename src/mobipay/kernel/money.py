"""Money as an integer number of minor units (fen for CNY) with its currency.

Floats never enter: constructors refuse them, and splitting is done by allocating
remainders (largest-remainder method) so that no fen is created or lost.
"""

from __future__ import annotations

from dataclasses import dataclass

from mobipay.kernel.errors import InvalidAmount, InvalidCurrency

#: ISO 4217 currencies the platform knows, with their minor-unit exponent.
CURRENCIES: dict[str, int] = {"CNY": 2, "HKD": 2, "USD": 2, "EUR": 2, "JPY": 0}


def check_currency(currency: object) -> str:
    """Return ``currency`` if it is a known ISO 4217 code, else raise ``INVALID_CURRENCY``."""
    if not isinstance(currency, str) or currency not in CURRENCIES:
        raise InvalidCurrency(f"Unknown currency {currency!r}; use one of {sorted(CURRENCIES)}")
    return currency


def check_amount(amount: object, *, field: str = "amount", allow_zero: bool = False) -> int:
    """Return ``amount`` if it is an integer number of minor units > 0 (or >= 0).

    ``bool`` is an ``int`` subclass in Python, and a float or a numeric string is a
    classic source of lost fen: all are refused with ``INVALID_AMOUNT``.
    """
    if type(amount) is not int:
        raise InvalidAmount(
            f"{field} must be an integer number of fen, got {type(amount).__name__} {amount!r}",
            field=field,
        )
    if amount < 0 or (amount == 0 and not allow_zero):
        raise InvalidAmount(f"{field} must be greater than 0 fen, got {amount}", field=field)
    if amount > MAX_AMOUNT:
        raise InvalidAmount(f"{field} {amount} exceeds the largest amount {MAX_AMOUNT}", field=field)
    return amount


#: Largest single amount: well inside a signed 64-bit column even after summing many.
MAX_AMOUNT = 10**15


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
