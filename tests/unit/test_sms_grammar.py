"""SMS command grammar: Chinese and English keywords, case, full width, malformed input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobipay.channels.sms.grammar import Command, CommandNotUnderstood, parse


@pytest.mark.parametrize(("text", "expected"), [
    ("YE", Command("balance")),
    ("bal", Command("balance")),
    (" 余额 ", Command("balance")),
    ("ＹＥ", Command("balance")),  # full width
    ("ZZ 13800138000 50", Command("transfer", "+8613800138000", 5_000)),
    ("zz  138 0013 8000 12.5", None),  # spaces inside the number: malformed (too many parts)
    ("转账13800138000 12.50", Command("transfer", "+8613800138000", 1_250)),
    ("ＺＺ　１３８００１３８０００　５０", Command("transfer", "+8613800138000", 5_000)),
    ("CZ 100", Command("topup", None, 10_000)),
    ("cz 18600186000 ¥30", Command("topup", "+8618600186000", 3_000)),
    ("JF 电费", Command("bill", name="电费")),
    ("缴费 家里 水费", Command("bill", name="家里 水费")),
    ("MX", Command("history")),
    ("help", Command("help")),
    ("TD", Command("stop")),
    ("123456", Command("confirm", code="123456")),
    ("１２３４５６", Command("confirm", code="123456")),
])
def test_commands(text: str, expected: Command | None) -> None:
    if expected is None:
        with pytest.raises(CommandNotUnderstood):
            parse(text)
    else:
        assert parse(text) == expected


@pytest.mark.parametrize("text", ["", "hello", "ZZ 13800138000", "ZZ 12345 50", "ZZ 13800138000 0",
                                  "ZZ 13800138000 1e3", "ZZ 13800138000 12.345", "CZ", "CZ 1 2 3", "JF",
                                  "ZZ 13800138000 -5"])
def test_malformed_commands_get_a_helpful_reply(text: str) -> None:
    with pytest.raises(CommandNotUnderstood) as info:
        parse(text)
    assert info.value.detail and any("\u4e00" <= ch <= "\u9fff" for ch in info.value.detail)  # Chinese first


@given(st.text(max_size=40))
def test_any_text_parses_or_is_answered(text: str) -> None:
    """Never a crash, never silence: a command, or a refusal carrying the reply to send."""
    reply = ""
    try:
        parse(text)
        reply = "ok"
    except CommandNotUnderstood as exc:
        reply = exc.detail
    assert reply
