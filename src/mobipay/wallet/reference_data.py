"""Reference data shipped with the wallet (number segments), read when asked for, not at
import time."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from mobipay.wallet.model import NumberSegments


@cache
def number_segments() -> NumberSegments:
    """The number-segment table in ``wallet/data/number_segments.csv``."""
    text = files("mobipay.wallet").joinpath("data/number_segments.csv").read_text(encoding="utf-8")
    return NumberSegments.from_csv(text)
