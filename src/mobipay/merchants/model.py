"""Merchant rules without I/O, so far: the unified social credit code (GB 32100-2015) a
business registers with, and the string a merchant API request is signed over.
"""

from __future__ import annotations

from collections.abc import Mapping

from mobipay.merchants import errors as E

#: GB 32100 characters (no I, O, Z, S, V) and the weights of the first 17 positions.
_CODE_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CODE_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def credit_code_check_char(first17: str) -> str:
    """The GB 32100 check character for the first 17 characters."""
    total = sum(_CODE_CHARS.index(c) * w for c, w in zip(first17, _CODE_WEIGHTS, strict=True))
    return _CODE_CHARS[(31 - total % 31) % 31]


def check_credit_code(value: object) -> str:
    """An 18-character unified social credit code with a correct check character (upper-cased)."""
    if not isinstance(value, str):
        raise E.InvalidCreditCode("a credit code is text", field="credit_code")
    code = value.strip().upper()
    if len(code) != 18 or any(c not in _CODE_CHARS for c in code):
        raise E.InvalidCreditCode("a unified social credit code has 18 characters (digits and letters "
                                  "except I, O, Z, S, V)", field="credit_code")
    if not code[2:8].isdigit():
        raise E.InvalidCreditCode("characters 3 to 8 are the region code (digits)", field="credit_code")
    if credit_code_check_char(code[:17]) != code[17]:
        raise E.InvalidCreditCode("the check character does not match (a typo?)", field="credit_code")
    return code


def signing_string(params: Mapping[str, object]) -> str:
    """What a request is signed over, as Alipay does: every parameter except ``sign`` and
    ``sign_type`` and the empty ones, sorted by name (byte order), as ``k=v`` joined by
    ``&``, values as sent (not URL-encoded)."""
    items = sorted((k, v) for k, v in params.items() if k not in ("sign", "sign_type") and v not in (None, ""))
    return "&".join(f"{k}={v}" for k, v in items)
