"""SMS texts: a refusal's code reads as words in each half of the message, never as the code."""

from __future__ import annotations

import mobipay.app.bootstrap  # noqa: F401 - every context's errors in the catalogue
from mobipay.channels.sms.texts import render


def test_a_code_in_a_text_reads_as_words_in_both_languages() -> None:
    text = render("bill.autopay_refused", {"biller": "国家电网", "code": "INSUFFICIENT_FUNDS"})
    assert text.startswith("国家电网自动缴费未成功（余额不足）") and "failed (Not enough balance)" in text
    unworded = render("bill.autopay_refused", {"biller": "国家电网", "code": "DRAW_NOT_DUE"})
    assert "DRAW_NOT_DUE" not in unworded and "（操作未成功）" in unworded
    assert "123456" in render("otp.login", {"code": "123456", "minutes": 5})  # a one-time code stays itself


def test_prize_texts_say_the_tax() -> None:
    text = render("lottery.won_taxed", {"game": "双色球", "issue": "2026141", "tier": 2, "amount_fen": 12_000_000,
                                        "tax_fen": 3_000_000})
    assert "代扣个人所得税30000.00元" in text and "120000.00 CNY paid after 30000.00 CNY income tax" in text
    claim = render("lottery.claim", {"game": "双色球", "issue": "2026141", "tier": 1, "amount_fen": 500_000_000,
                                     "tax_fen": 100_000_000, "until": "2027-01-23"})
    assert "2027-01-23" in claim and "身份证" in claim
