"""A merchant QR code as an image (SVG for the merchant portal, PNG for printing), drawn by ``segno``.

Error correction M (15% of the symbol may be lost: a scuffed sticker on a counter still reads),
fixed rather than boosted so every code of a payload looks the same; the 4-module quiet zone
the QR standard asks for, without which phone cameras often miss the finder patterns; byte mode
in UTF-8 always, so a Chinese name in template 64 is never put in Shift-JIS Kanji mode.
Only a payload :func:`mobipay.instore.model.parse` accepts is drawn: no unreadable code gets printed.
"""

from __future__ import annotations

import io

import segno

from mobipay.instore.model import parse

QUIET_ZONE = 4  # modules: the QR standard's quiet zone


def symbol(payload: str) -> segno.QRCode:
    """The QR symbol of a mobipay merchant payload (checked first)."""
    parse(payload)
    return segno.make_qr(payload, error="m", boost_error=False, mode="byte", encoding="utf-8")


def svg(payload: str, *, scale: int = 4) -> str:
    """An SVG document of the code, ``scale`` pixels a module, with its quiet zone."""
    out = io.BytesIO()
    symbol(payload).save(out, kind="svg", scale=scale, border=QUIET_ZONE, xmldecl=False)
    return out.getvalue().decode("utf-8")


def png(payload: str, *, scale: int = 8) -> bytes:
    """A PNG image of the code, ``scale`` pixels a module, with its quiet zone."""
    out = io.BytesIO()
    symbol(payload).save(out, kind="png", scale=scale, border=QUIET_ZONE)
    return out.getvalue()
