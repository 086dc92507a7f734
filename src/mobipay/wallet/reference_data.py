"""Reference data shipped with the wallet (number segments, card BINs), read when asked
for, not at import time."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from mobipay.wallet.model import CardBins, NumberSegments


@cache
def number_segments() -> NumberSegments:
    """The number-segment table in ``wallet/data/number_segments.csv``."""
    text = files("mobipay.wallet").joinpath("data/number_segments.csv").read_text(encoding="utf-8")
    return NumberSegments.from_csv(text)


@cache
def card_bins() -> CardBins:
    """The issuer table in ``wallet/data/card_bins.csv``."""
    return CardBins.from_csv(files("mobipay.wallet").joinpath("data/card_bins.csv").read_text(encoding="utf-8"))
