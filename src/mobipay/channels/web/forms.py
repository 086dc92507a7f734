"""Form fields of the server-rendered pages: amounts typed in yuan, turned into fen strictly.

People type ``50``, ``12.5`` or ``12.50``; the platform counts integer fen. Anything else
(exponents, more than two decimals, signs, thousands separators, full-width digits) is
refused with ``INVALID_AMOUNT`` before any service is called, so a typo never moves money.
The fen then go through :func:`mobipay.kernel.money.check_amount` as the API's do.
"""

from __future__ import annotations

import re

from mobipay.kernel.errors import InvalidAmount
from mobipay.kernel.money import check_amount

_YUAN = re.compile(r"(?P<yuan>[0-9]{1,13})(?:\.(?P<fen>[0-9]{1,2}))?", re.ASCII)


def parse_yuan(text: str, *, field: str = "amount") -> int:
    """``"12.50"`` → ``1250``; refuses what is not a plain positive yuan amount."""
    found = _YUAN.fullmatch(text.strip())
    if found is None:
        raise InvalidAmount("type the amount in yuan, e.g. 50 or 12.50 (at most 2 decimals)", field=field)
    fen = int(found["yuan"]) * 100 + int((found["fen"] or "0").ljust(2, "0"))
    return check_amount(fen, field=field)


def yuan_text(fen: int) -> str:
    """Fen as a form value (``1250`` → ``"12.50"``)."""
    return f"{fen // 100}.{fen % 100:02d}"
