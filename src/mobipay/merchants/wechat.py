"""The WeChat Pay API v3 dialect of the merchant API, without I/O: what a shop's WeChat Pay
code (``wechatpayv3`` and the like) sends to ``/v3/...`` and expects back, translated to and
from the merchants' own rules. JSON bodies, integer fen (``amount.total``), RFC 3339 times
in Beijing time.

The rules (WeChat Pay's "API v3" signing, public-key mode):

* a **request** carries ``Authorization: WECHATPAY2-SHA256-RSA2048 mchid="…",nonce_str="…",
  signature="…",timestamp="…",serial_no="…"``, the signature SHA256withRSA by the merchant's
  key over ``METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n``;
* an **answer** and a **notification** carry ``Wechatpay-Timestamp``, ``-Nonce``,
  ``-Signature`` (the platform key over ``TIMESTAMP\\nNONCE\\nBODY\\n``) and ``-Serial`` (the
  platform public key's id);
* a notification's ``resource`` is the event, encrypted with AEAD_AES_256_GCM under the
  merchant's APIv3 key.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mobipay.kernel.clock import SHANGHAI
from mobipay.kernel.errors import MobipayError
from mobipay.merchants.model import Trade, TradeRecord, TradeState

SCHEME = "WECHATPAY2-SHA256-RSA2048"
#: How far a request's timestamp may be from our clock (WeChat Pay: 5 minutes).
TIMESTAMP_WINDOW_S = 300
_AUTH_PART = re.compile(r'(\w+)="([^"]*)"')


class WechatRefusal(Exception):
    """A refusal in WeChat Pay's words: HTTP status, ``code`` (PARAM_ERROR…) and ``message``."""

    def __init__(self, status: int, code: str, message: str, mobipay_code: str = "") -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.mobipay_code = status, code, message, mobipay_code

    def body(self) -> dict[str, str]:
        out = {"code": self.code, "message": self.message}
        if self.mobipay_code:
            out["detail"] = self.mobipay_code
        return out


@dataclass(frozen=True, slots=True)
class Authorization:
    mchid: str
    nonce: str
    signature: str
    timestamp: str
    serial_no: str


def parse_authorization(header: str, now: datetime) -> Authorization:
    """The ``Authorization`` header of a v3 request, checked for shape and time (``SIGN_ERROR``
    401 otherwise, as WeChat Pay answers)."""
    scheme, _, rest = header.partition(" ")
    if scheme != SCHEME:
        raise WechatRefusal(401, "SIGN_ERROR", f"Authorization is {SCHEME} mchid=…,nonce_str=…,signature=…,"
                            "timestamp=…,serial_no=…")
    parts = dict(_AUTH_PART.findall(rest))
    missing = [k for k in ("mchid", "nonce_str", "signature", "timestamp", "serial_no") if not parts.get(k)]
    if missing:
        raise WechatRefusal(401, "SIGN_ERROR", f"Authorization lacks {', '.join(missing)}")
    ts, nonce = parts["timestamp"], parts["nonce_str"]
    if not (ts.isascii() and ts.isdigit() and len(ts) <= 12):
        raise WechatRefusal(401, "SIGN_ERROR", "timestamp is Unix seconds")
    if abs(now.timestamp() - int(ts)) > TIMESTAMP_WINDOW_S:
        raise WechatRefusal(401, "SIGN_ERROR", f"timestamp is more than {TIMESTAMP_WINDOW_S} s from our clock")
    if not 8 <= len(nonce) <= 64:
        raise WechatRefusal(401, "SIGN_ERROR", "nonce_str has 8 to 64 characters")
    return Authorization(parts["mchid"], nonce, parts["signature"], ts, parts["serial_no"])


def request_message(method: str, path_and_query: str, auth: Authorization, body: str) -> str:
    return f"{method}\n{path_and_query}\n{auth.timestamp}\n{auth.nonce}\n{body}\n"


def answer_message(timestamp: str, nonce: str, body: str) -> str:
    return f"{timestamp}\n{nonce}\n{body}\n"


def public_key_id(public_pem: bytes) -> str:
    """The platform public key's id, as WeChat Pay names its keys (``PUB_KEY_ID_…``)."""
    return "PUB_KEY_ID_" + hashlib.sha256(public_pem).hexdigest()[:32].upper()


def rfc3339(at: datetime | None) -> str:
    return at.astimezone(SHANGHAI).isoformat(timespec="seconds") if at is not None else ""


def text_field(data: Mapping[str, Any], name: str, *, max_length: int = 128) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise WechatRefusal(400, "PARAM_ERROR", f"{name} is text of 1 to {max_length} characters")
    return value


def fen(data: Mapping[str, Any], name: str) -> int:
    """An integer fen field (``amount.total``): a JSON integer, never a float or a string."""
    value = data.get(name)
    if type(value) is not int or value <= 0:
        raise WechatRefusal(400, "PARAM_ERROR", f"amount.{name} is integer fen greater than 0, e.g. 8800")
    return value


def currency(amount: Mapping[str, Any]) -> None:
    if amount.get("currency", "CNY") != "CNY":
        raise WechatRefusal(400, "PARAM_ERROR", "amount.currency is CNY")


def expire_minutes(body: Mapping[str, Any], now: datetime) -> int:
    """``time_expire`` (RFC 3339) as the minutes the buyer has (default 2 hours; at most a day)."""
    raw = body.get("time_expire")
    if not raw:
        return 120
    try:
        until = datetime.fromisoformat(str(raw))
    except ValueError:
        raise WechatRefusal(400, "PARAM_ERROR", "time_expire is RFC 3339, e.g. 2026-11-25T12:00:00+08:00") from None
    if until.tzinfo is None:
        raise WechatRefusal(400, "PARAM_ERROR", "time_expire carries its offset, e.g. +08:00")
    minutes = int((until - now) / timedelta(minutes=1))
    if not 1 <= minutes <= 1440:
        raise WechatRefusal(400, "PARAM_ERROR", "time_expire is from 1 minute to 1 day ahead")
    return minutes


#: Our stable codes (docs/errors.md) as WeChat Pay's error codes and statuses.
CODES: dict[str, tuple[int, str]] = {
    "TRADE_NOT_FOUND": (404, "ORDER_NOT_EXIST"),
    "TRADE_STATE_INVALID": (400, "INVALID_REQUEST"),
    "REFUND_EXCEEDS_PAID": (400, "INVALID_REQUEST"),
    "TRADE_EXISTS": (403, "OUT_TRADE_NO_USED"),
    "IDEMPOTENCY_CONFLICT": (400, "INVALID_REQUEST"),
    "MERCHANT_NOT_ACTIVE": (403, "NO_AUTH"),
    "MERCHANT_NOT_FOUND": (400, "PARAM_ERROR"),
    "MERCHANT_LIMIT_EXCEEDED": (400, "INVALID_REQUEST"),
    "INSUFFICIENT_FUNDS": (403, "NOT_ENOUGH"),
    "ACCOUNT_FROZEN": (403, "NOT_ENOUGH"),
    "RATE_LIMITED": (429, "FREQUENCY_LIMITED"),
}


def refusal_of(exc: MobipayError) -> WechatRefusal:
    if exc.status >= 500:
        return WechatRefusal(500, "SYSTEM_ERROR", "try again in a moment", exc.code)
    status, code = CODES.get(exc.code, (400, "PARAM_ERROR"))
    return WechatRefusal(status, code, exc.detail, exc.code)


def trade_state(trade: Trade) -> str:
    """WeChat Pay's ``trade_state``: NOTPAY, SUCCESS, REFUND (refunds made), CLOSED."""
    if trade.paid_at is not None:
        return "REFUND" if trade.refunded else "SUCCESS"
    return "NOTPAY" if trade.state is TradeState.WAIT_BUYER_PAY else "CLOSED"


_STATE_WORDS = {"NOTPAY": "未支付", "SUCCESS": "支付成功", "REFUND": "转入退款", "CLOSED": "已关闭"}


def transaction(trade: Trade, appid: str, mchid: str) -> dict[str, Any]:
    """A trade as WeChat Pay's query answers and payment notifications describe it."""
    state = trade_state(trade)
    out: dict[str, Any] = {
        "appid": appid, "mchid": mchid, "out_trade_no": trade.out_trade_no, "transaction_id": trade.id,
        "trade_type": "NATIVE", "trade_state": state, "trade_state_desc": _STATE_WORDS[state],
        "amount": {"total": trade.amount, "currency": "CNY"}}
    if trade.paid_at is not None:
        paid = trade.wallet_paid
        out |= {"success_time": rfc3339(trade.paid_at), "bank_type": "OTHERS",
                "amount": {"total": trade.amount, "payer_total": paid, "currency": "CNY", "payer_currency": "CNY"}}
        if trade.red_envelope:
            out["promotion_detail"] = [{"coupon_id": "red_envelope", "name": "红包", "scope": "SINGLE",
                                        "type": "CASH", "amount": trade.red_envelope}]
    return out


def refund(trade: Trade, out_refund_no: str, amount: int, created_at: datetime, refund_id: str) -> dict[str, Any]:
    """A refund as WeChat Pay answers it: every refund here succeeds at once."""
    return {"refund_id": refund_id, "out_refund_no": out_refund_no, "transaction_id": trade.id,
            "out_trade_no": trade.out_trade_no, "channel": "ORIGINAL", "user_received_account": "支付用户零钱",
            "success_time": rfc3339(created_at), "create_time": rfc3339(created_at), "status": "SUCCESS",
            "amount": {"total": trade.amount, "refund": amount,
                       "payer_total": trade.wallet_paid,
                       "payer_refund": amount, "currency": "CNY"}}


def event(notify_id: str, trade: TradeRecord, state: TradeState, refunded: int, now: datetime, *,
          red_envelope: int, refund: tuple[str, int] | None) -> tuple[str, str, dict[str, Any]]:
    """(event_type, summary, resource before encryption) of a notification."""
    seen = Trade(trade.id, trade.merchant_id, trade.out_trade_no, trade.amount, trade.subject, state, refunded,
                 trade.expires_at, trade.created_at, trade.paid_at or now, red_envelope,
                 privilege=trade.privilege_amount)
    if refund is None:
        return "TRANSACTION.SUCCESS", "支付成功", transaction(seen, trade.app_id, trade.app_id)
    request_no, amount = refund
    body = {"mchid": trade.app_id, "out_trade_no": trade.out_trade_no, "transaction_id": trade.id,
            "out_refund_no": request_no, "refund_id": f"{trade.id}:{request_no}", "refund_status": "SUCCESS",
            "success_time": rfc3339(now), "user_received_account": "支付用户零钱",
            "amount": {"total": trade.amount, "refund": amount,
                       "payer_total": trade.amount - red_envelope - trade.privilege_amount,
                       "payer_refund": amount}}
    return "REFUND.SUCCESS", "退款成功", body
