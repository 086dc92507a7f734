"""Handset protection's data shipped with mobipay (``data/``), read when asked for."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from mobipay.protection.model import Hall, Handset, Programme, parse_halls, parse_handsets, parse_programmes


def _text(name: str) -> str:
    return files("mobipay.protection").joinpath(f"data/{name}").read_text(encoding="utf-8")


@cache
def programmes() -> dict[str, Programme]:
    return parse_programmes(_text("programmes.json"))


@cache
def handsets() -> dict[str, Handset]:
    return parse_handsets(_text("tac.csv"))


@cache
def halls() -> dict[str, Hall]:
    return parse_halls(_text("halls.csv"))
