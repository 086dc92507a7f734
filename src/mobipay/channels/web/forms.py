"""Form fields of the server-rendered pages: amounts typed in yuan, turned into fen strictly.

People type ``50``, ``12.5`` or ``12.50``; the platform counts integer fen. Anything else
(exponents, more than two decimals, signs, thousands separators, full-width digits) is
refused with ``INVALID_AMOUNT`` before any service is called, so a typo never moves money.
The fen then go through :func:`mobipay.kernel.money.check_amount` as the API's do.
"""

from __future__ import annotations

from mobipay.kernel.money import parse_yuan as _parse_yuan
from mobipay.kernel.money import yuan as yuan_text

__all__ = ["parse_yuan", "yuan_text"]


def parse_yuan(text: str, *, field: str = "amount") -> int:
    """``" 12.50"`` → ``1250``: what was typed, without the spaces around it."""
    return _parse_yuan(text.strip(), field=field)
