"""Reference data shipped with top-up (price rules), read when asked for."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from mobipay.topup.model import PriceRules


@cache
def price_rules() -> PriceRules:
    """The discounts in ``topup/data/price_rules.csv``."""
    return PriceRules.from_csv(files("mobipay.topup").joinpath("data/price_rules.csv").read_text(encoding="utf-8"))
