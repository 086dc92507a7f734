"""The WeChat Pay v3 dialect without a server: the Authorization header, integer fen only,
expiry times, the mapping of refusals and the trade states."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mobipay.kernel.errors import ServiceUnavailable
from mobipay.merchants import errors as merchant_errors
from mobipay.merchants import wechat
from mobipay.merchants.model import Trade, TradeState

NOW = datetime(2026, 11, 25, 2, 30, tzinfo=UTC)
TS = str(int(NOW.timestamp()))


def header(**parts: str) -> str:
    values = {"mchid": "app_1", "nonce_str": "N" * 32, "signature": "c2ln", "timestamp": TS,
              "serial_no": "5157F09E", **parts}
    return wechat.SCHEME + " " + ",".join(f'{k}="{v}"' for k, v in values.items())


def refusal(fn: object, *args: object) -> tuple[int, str]:
    with pytest.raises(wechat.WechatRefusal) as info:
        fn(*args)  # type: ignore[operator]
    return info.value.status, info.value.code


def test_the_authorization_header() -> None:
    auth = wechat.parse_authorization(header(), NOW)
    assert (auth.mchid, auth.timestamp, auth.signature) == ("app_1", TS, "c2ln")
    message = wechat.request_message("GET", "/v3/x?mchid=app_1", auth, "")
    assert message == f"GET\n/v3/x?mchid=app_1\n{TS}\n{'N' * 32}\n\n"
    for bad in (header().replace(wechat.SCHEME, "Bearer"), header(signature=""), header(timestamp="1e9"),
                header(timestamp=str(int(NOW.timestamp()) - 301)), header(nonce_str="short"), ""):
        assert refusal(wechat.parse_authorization, bad, NOW) == (401, "SIGN_ERROR"), bad


def test_amounts_are_integer_fen_only() -> None:
    assert wechat.fen({"total": 8800}, "total") == 8800
    for bad in (88.0, "8800", 0, -1, True, None):
        assert refusal(wechat.fen, {"total": bad}, "total") == (400, "PARAM_ERROR"), bad
    assert refusal(wechat.currency, {"currency": "USD"}) == (400, "PARAM_ERROR")


def test_time_expire() -> None:
    assert wechat.expire_minutes({}, NOW) == 120
    assert wechat.expire_minutes({"time_expire": "2026-11-25T11:00:00+08:00"}, NOW) == 30
    for bad in ("2026-11-25T11:00:00", "tomorrow", "2026-11-27T11:00:00+08:00", "2026-11-25T10:00:00+08:00"):
        assert refusal(wechat.expire_minutes, {"time_expire": bad}, NOW) == (400, "PARAM_ERROR"), bad


def test_refusals_in_wechat_pay_words() -> None:
    assert (wechat.refusal_of(merchant_errors.TradeNotFound("x")).status,
            wechat.refusal_of(merchant_errors.TradeNotFound("x")).code) == (404, "ORDER_NOT_EXIST")
    assert wechat.refusal_of(merchant_errors.RefundExceedsPaid("x")).code == "INVALID_REQUEST"
    assert wechat.refusal_of(merchant_errors.TradeExists("x")).code == "OUT_TRADE_NO_USED"
    unavailable = wechat.refusal_of(ServiceUnavailable("x"))
    assert (unavailable.status, unavailable.code, unavailable.body()["detail"]) == (500, "SYSTEM_ERROR",
                                                                                  "SERVICE_UNAVAILABLE")


def trade(state: TradeState, *, paid: bool, refunded: int = 0) -> Trade:
    return Trade("trd_1", "mch_1", "WX-1", 8800, "书", state, refunded, NOW + timedelta(hours=2), NOW,
                 NOW if paid else None)


def test_trade_states() -> None:
    assert wechat.trade_state(trade(TradeState.WAIT_BUYER_PAY, paid=False)) == "NOTPAY"
    assert wechat.trade_state(trade(TradeState.TRADE_CLOSED, paid=False)) == "CLOSED"
    assert wechat.trade_state(trade(TradeState.TRADE_SUCCESS, paid=True)) == "SUCCESS"
    assert wechat.trade_state(trade(TradeState.TRADE_CLOSED, paid=True, refunded=8800)) == "REFUND"
    view = wechat.transaction(trade(TradeState.TRADE_SUCCESS, paid=True), "app_1", "app_1")
    assert view["amount"] == {"total": 8800, "payer_total": 8800, "currency": "CNY", "payer_currency": "CNY"}
    assert view["success_time"] == "2026-11-25T10:30:00+08:00"
