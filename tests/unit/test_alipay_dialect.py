"""The Alipay dialect without a server: the request rule, yuan at the edge, the common
parameters, the mapping of refusals, the answer envelope, notifications and the bill file."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest

from mobipay.kernel.errors import MobipayError, ServiceUnavailable, ValidationFailed
from mobipay.ledger.errors import InsufficientFunds
from mobipay.merchants import alipay
from mobipay.merchants import errors as merchant_errors
from mobipay.merchants.model import TradeRecord, TradeState

NOW = datetime(2026, 11, 25, 2, 30, tzinfo=UTC)  # 10:30 Beijing time
COMMON = {"app_id": "app_1", "method": "alipay.trade.query", "sign_type": "RSA2", "sign": "x",
          "timestamp": "2026-11-25 10:30:00", "charset": "utf-8", "version": "1.0"}


def refused(fn: object, *args: object) -> tuple[str, str]:
    with pytest.raises(alipay.GatewayRefusal) as info:
        fn(*args)  # type: ignore[operator]
    return info.value.code, info.value.sub_code


def test_the_request_rule_signs_sign_type_and_skips_empty_values() -> None:
    assert alipay.request_string({"b": "2", "a": "1", "sign": "s", "sign_type": "RSA2", "notify_url": ""}) == \
        "a=1&b=2&sign_type=RSA2"


@pytest.mark.parametrize(("text", "fen"), [("88.00", 8800), ("88", 8800), ("0.01", 1), ("88.5", 8850),
                                           ("100000000.00", 10_000_000_000)])
def test_yuan_amounts(text: str, fen: int) -> None:
    assert alipay.amount({"total_amount": text}, "total_amount") == fen


@pytest.mark.parametrize("text", ["88.001", "-1.00", "1e3", "８８", " 8.00", "0.00", "1,000.00", "", "0x10",
                                  "100000000.01"])
def test_bad_yuan_amounts_are_refused(text: str) -> None:
    code, sub = refused(alipay.amount, {"total_amount": text}, "total_amount")
    assert code == "40004" and sub in ("ACQ.INVALID_PARAMETER", "ACQ.TOTAL_FEE_EXCEED")


def test_numbers_in_biz_content_keep_their_digits() -> None:
    """A JSON number is read as its text, never a float (0.1 + 0.2 is not 0.3 in floats)."""
    biz = alipay.biz_content({"biz_content": '{"total_amount": 88.10, "n": 3, "subject": "书"}'})
    assert biz == {"total_amount": "88.10", "n": "3", "subject": "书"}
    assert alipay.amount(biz, "total_amount") == 8810
    assert refused(alipay.biz_content, {"biz_content": "[1]"}) == ("40002", "isv.invalid-parameter")
    assert refused(alipay.biz_content, {"biz_content": "{"}) == ("40002", "isv.invalid-parameter")


def test_timeout_express() -> None:
    assert [alipay.minutes({"timeout_express": t}) for t in ("90m", "2h", "1d", "")] == [90, 120, 1440, 90]
    for bad in ("0m", "2d", "15", "1.5h", "-5m"):
        assert refused(alipay.minutes, {"timeout_express": bad})[1] == "ACQ.INVALID_PARAMETER", bad


def test_common_parameters() -> None:
    assert alipay.check_common(COMMON, NOW) == "alipay.trade.query"
    assert alipay.check_common({**COMMON, "timestamp": "2026-11-25 10:59:59"}, NOW) == "alipay.trade.query"
    cases = {
        "isv.missing-app-id": {**COMMON, "app_id": ""},
        "isv.missing-signature": {k: v for k, v in COMMON.items() if k != "sign"},
        "isv.invalid-method": {**COMMON, "method": "alipay.trade.pay.later"},
        "isv.invalid-signature-type": {**COMMON, "sign_type": "RSA"},
        "isv.invalid-charset": {**COMMON, "charset": "gbk"},
        "isv.invalid-timestamp": {**COMMON, "timestamp": "2026-11-25 11:00:01"},
    }
    for sub, params in cases.items():
        assert refused(alipay.check_common, params, NOW)[1] == sub, sub
    assert refused(alipay.check_common, {**COMMON, "timestamp": "1795573800"}, NOW) == ("40002",
                                                                                       "isv.invalid-timestamp")


def test_refusals_in_alipay_words() -> None:
    cases: list[tuple[MobipayError, str, str]] = [
        (merchant_errors.TradeNotFound("x"), "40004", "ACQ.TRADE_NOT_EXIST"),
        (merchant_errors.RefundExceedsPaid("x"), "40004", "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"),
        (merchant_errors.TradeExists("x"), "40004", "ACQ.CONTEXT_INCONSISTENT"),
        (InsufficientFunds("x"), "40004", "ACQ.SELLER_BALANCE_NOT_ENOUGH"),
        (merchant_errors.MerchantNotActive("x"), "40004", "ACQ.ACCESS_FORBIDDEN"),
        (ValidationFailed("x"), "40004", "ACQ.INVALID_PARAMETER"),
        (ServiceUnavailable("x"), "20000", "isp.unknow-error"),
    ]
    for exc, code, sub in cases:
        refusal = alipay.refusal_of(exc)
        assert (refusal.code, refusal.sub_code, refusal.mobipay_code) == (code, sub, exc.code)
        content = alipay.failure_content(refusal)
        assert content["msg"] and content["mobipay_code"] == exc.code


def test_the_envelope_is_signed_text_cut_out_as_written() -> None:
    text = alipay.answer_text(alipay.success(trade_no="t", subject="三体 {全集}"))
    body = alipay.envelope("alipay.trade.query", text, "SIG")
    assert body == '{"alipay_trade_query_response":' + text + ',"sign":"SIG"}'
    assert json.loads(body)["alipay_trade_query_response"]["subject"] == "三体 {全集}"


def record(**overrides: object) -> TradeRecord:
    values: dict[str, object] = {
        "id": "trd_1", "merchant_id": "mch_1", "out_trade_no": "JD-1", "amount": 8800, "subject": "书",
        "state": TradeState.TRADE_SUCCESS, "app_id": "app_1", "notify_url": "https://shop.example/n",
        "created_at": NOW, "expires_at": NOW + timedelta(minutes=30), "paid_at": NOW, **overrides}
    return TradeRecord(**values)  # type: ignore[arg-type]


def test_notifications_as_alipay_posts_them() -> None:
    paid = alipay.notification(record(), TradeState.TRADE_SUCCESS, 0, notify_id="ntf_1", now=NOW, red_envelope=800)
    assert (paid["total_amount"], paid["buyer_pay_amount"], paid["red_envelope_amount"]) == ("88.00", "80.00", "8.00")
    assert paid["notify_time"] == paid["gmt_payment"] == "2026-11-25 10:30:00"
    assert all(isinstance(v, str) and v for v in paid.values())  # no empty fields: both verify rules agree
    back = alipay.notification(record(), TradeState.TRADE_CLOSED, 8800, notify_id="ntf_2", now=NOW,
                               refund=("R1", 8800))
    assert (back["out_biz_no"], back["refund_fee"], back["trade_status"]) == ("R1", "88.00", "TRADE_CLOSED")
    assert "gmt_close" in back


def test_the_bill_file() -> None:
    paid = [SimpleNamespace(id="trd_1", out_trade_no="JD-1", subject="书", created_at=NOW, paid_at=NOW,
                            store_id="sto_1", amount=8800, coupon_amount=800)]
    back = [SimpleNamespace(trade_id="trd_1", out_trade_no="JD-1", out_request_no="R1", amount=2000,
                            created_at=NOW)]
    text = alipay.bill("app_1", date(2026, 11, 25), paid, back)
    lines = text.splitlines()
    assert lines[0] == "#支付宝业务明细查询" and lines[4].split(",")[:3] == ["支付宝交易号", "商户订单号", "业务类型"]
    assert lines[5].split(",") == ["trd_1", "JD-1", "交易", "书", "2026-11-25 10:30:00", "2026-11-25 10:30:00",
                                   "sto_1", "88.00", "80.00", "8.00", "", ""]
    assert lines[6].split(",")[2] == "退款" and lines[6].split(",")[7] == "-20.00"
    assert "#交易合计：1笔，商家实收共80.00元" in lines and "#退款合计：1笔，退款共20.00元" in lines
    text.encode("gbk")  # what a shop's parser reads
