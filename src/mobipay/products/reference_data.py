"""Product catalogues shipped with mobipay (``data/*.csv``), read when asked for."""

from __future__ import annotations

from importlib.resources import files

from mobipay.products.model import (
    InsuranceProduct,
    OperatorProduct,
    parse_insurance_products,
    parse_operator_products,
)


def _text(name: str) -> str:
    return files("mobipay.products").joinpath(f"data/{name}").read_text(encoding="utf-8")


def operator_products() -> dict[str, OperatorProduct]:
    return parse_operator_products(_text("operator_products.csv"))


def insurance_products() -> dict[str, InsuranceProduct]:
    return parse_insurance_products(_text("insurance_products.csv"))
