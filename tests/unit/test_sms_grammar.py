"""SMS command grammar: Chinese and English keywords, case, full width, malformed input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobipay.channels.sms.errors import CommandNotUnderstood
from mobipay.channels.sms.grammar import Command, parse


@pytest.mark.parametrize(("text", "expected"), [
    ("YE", Command("balance")),
    ("bal", Command("balance")),
    (" 余额 ", Command("balance")),
    ("ＹＥ", Command("balance")),  # full width
    ("ZZ 13800138000 50", Command("transfer", "+8613800138000", 5_000)),
    ("zz  138 0013 8000 12.5", None),  # spaces inside the number: malformed (too many parts)
    ("转账13800138000 12.50", Command("transfer", "+8613800138000", 1_250)),
    ("ＺＺ　１３８００１３８０００　50", Command("transfer", "+8613800138000", 5_000)),
    ("ＺＺ　１３８００１３８０００　５０", None),  # an amount in full-width digits: refused, not guessed at
    ("ZZ 13800138000 5²", None),  # NFKC would make it 52
    ("CZ ١٠٠", None),  # Arabic-Indic digits, which int() accepts
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


def test_coding_and_parts_follow_gsm_and_ucs2_rules() -> None:
    from mobipay.channels.sms.kannel import coding_of, fit, parts_of

    assert coding_of("Balance 12.50") == 0 and coding_of("余额") == 2 and coding_of("ok 😀") == 2
    assert parts_of("a" * 160) == 1 and parts_of("a" * 161) == 2 and parts_of("a" * 306) == 2
    assert parts_of("{" * 80) == 1 and parts_of("{" * 81) == 2  # extension characters take two septets
    assert parts_of("余" * 70) == 1 and parts_of("余" * 71) == 2 and parts_of("余" * 134) == 2
    assert parts_of("😀" * 35) == 1 and parts_of("😀" * 36) == 2  # outside the BMP: two UTF-16 units
    cut = fit("余" * 1000, max_parts=3)
    assert parts_of(cut) == 3 and cut.endswith("…") and fit("short") == "short"


def test_error_codes_in_words() -> None:
    from mobipay.channels.words import both, say, yuan
    from mobipay.kernel.errors import RateLimited, ValidationFailed
    from mobipay.wallet.errors import LimitExceeded, PinIncorrect

    assert yuan(5) == "0.05" and yuan(-12_345) == "-123.45" and yuan(0) == "0.00"
    assert say(LimitExceeded("x", limit="day", remaining=12_345)) == "超出账户限额，剩余可用123.45元。"
    assert say(PinIncorrect("x", tries_left=2), "en") == "Wrong PIN; 2 tries left."
    assert say(PinIncorrect("x", tries_left=1), "en") == "Wrong PIN; 1 try left."
    assert say(LimitExceeded("x", limit="sms_payment_max", max=50_000), "en") == (
        "Payments confirmed by SMS are up to 500.00 CNY each; use the app for more.")
    assert say(PinIncorrect("x")) == "支付密码错误。"  # raised without the figure: the sense stays
    assert both(RateLimited("x")) == "操作太频繁，请稍后再试。 Too many requests; try again later."
    assert say(ValidationFailed("x")) == "操作未成功。"
    assert say(ValidationFailed("x"), "en") == "The request is not valid."


def test_stop_and_start_reminders() -> None:
    assert parse("td").action == "stop" and parse("退订").action == "stop"
    assert parse("KT").action == "start" and parse("ｓｔａｒｔ").action == "start" and parse("开通").action == "start"
