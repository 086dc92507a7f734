"""SMS GS (挂失): the keyword suspending a wallet's NFC tokens, typed as subscribers type."""

from __future__ import annotations

import pytest

from mobipay.channels.sms.errors import CommandNotUnderstood
from mobipay.channels.sms.grammar import KEYWORDS, parse


@pytest.mark.parametrize("text", ["GS", "gs", " ＧＳ ", "挂失"])
def test_gs(text: str) -> None:
    assert parse(text).action == "nfc_suspend"


def test_gs_takes_nothing_after_it() -> None:
    with pytest.raises(CommandNotUnderstood) as caught:
        parse("GS 1234")
    assert "GS" in caught.value.detail


def test_gs_is_no_other_keyword() -> None:
    words = [w for ws in KEYWORDS.values() for w in ws]
    assert words.count("GS") == 1 and words.count("挂失") == 1
