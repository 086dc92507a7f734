"""Merchant categories shipped with mobipay (``data/mcc.csv``), read when asked for."""

from __future__ import annotations

from importlib.resources import files

from mobipay.merchants.model import Category, parse_categories


def categories() -> dict[str, Category]:
    return parse_categories(files("mobipay.merchants").joinpath("data/mcc.csv").read_text(encoding="utf-8"))
