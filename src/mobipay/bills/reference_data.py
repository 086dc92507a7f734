"""The biller registry shipped with mobipay (``data/billers.csv``), read when asked for."""

from __future__ import annotations

from importlib.resources import files

from mobipay.bills.model import Biller, parse_billers


def shipped_billers() -> list[Biller]:
    return parse_billers(files("mobipay.bills").joinpath("data/billers.csv").read_text(encoding="utf-8"))
