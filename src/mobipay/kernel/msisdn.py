"""Mobile numbers and the people behind them: every subscriber, recipient and SMS sender
*is* a number, so the whole platform reads them one way (E.164, ``+8613800138000``) and
shows them, and real names, masked the same way."""

from __future__ import annotations

import unicodedata

from mobipay.kernel.errors import InvalidMsisdn

_SEPARATORS = str.maketrans("", "", " -()\u00a0\t")


def normalize_msisdn(raw: object) -> str:
    """Any common way of writing a mainland mobile number, as E.164.

    Accepts ``13800138000``, ``138 0013 8000``, ``+86 138-0013-8000``, ``0086…``, ``86…``
    and full-width digits (``１３８…``, as typed on some phones); refuses everything else
    with ``INVALID_MSISDN``.
    """
    if not isinstance(raw, str):
        raise InvalidMsisdn(f"a phone number is text, got {type(raw).__name__}", field="msisdn")
    text = unicodedata.normalize("NFKC", raw).translate(_SEPARATORS)
    if text.startswith("+86"):
        national = text[3:]
    elif text.startswith("0086"):
        national = text[4:]
    elif text.startswith("86") and len(text) == 13:
        national = text[2:]
    else:
        national = text
    if not (len(national) == 11 and national.isascii() and national.isdigit()
            and national[0] == "1" and national[1] in "3456789"):
        raise InvalidMsisdn(
            f"{raw!r} is not a mainland mobile number (11 digits starting 13-19, optionally +86)",
            field="msisdn",
        )
    return "+86" + national


def national_number(msisdn: str) -> str:
    """``+8613800138000`` → ``13800138000``."""
    return msisdn[3:] if msisdn.startswith("+86") else msisdn


def mask_msisdn(msisdn: str) -> str:
    """``+8613800138000`` → ``138****8000``: enough to recognise, not to dial."""
    n = national_number(msisdn)
    return f"{n[:3]}****{n[-4:]}"


def mask_name(name: str) -> str:
    """A real name with all but its last character hidden: ``王小明`` → ``**明``."""
    name = name.strip()
    if len(name) <= 1:
        return "*"
    return "*" * (len(name) - 1) + name[-1]
