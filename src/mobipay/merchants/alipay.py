"""The Alipay dialect of the merchant API, without I/O: what a shop's existing Alipay code
sends to ``/gateway.do`` and expects back, translated to and from the merchants' own
rules. Amounts are yuan strings here only (``"88.00"``, at most two decimals) and integer
fen everywhere else; times are ``yyyy-MM-dd HH:mm:ss`` in Beijing time.

Two signing rules, as Alipay's open platform has them (docs/merchant-signatures.md):

* a **request** is signed over every parameter except ``sign`` (so ``sign_type`` is
  signed) and the empty ones, sorted by name, ``k=v`` joined by ``&``;
* an **answer** is signed over the JSON text of ``<method>_response`` exactly as written;
* a **notification** (and the cashier's return to the shop) is signed over every
  parameter except ``sign`` and ``sign_type``: :func:`mobipay.merchants.model.signing_string`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from mobipay.kernel.clock import SHANGHAI, as_utc
from mobipay.kernel.errors import MobipayError
from mobipay.kernel.money import parse_yuan, yuan
from mobipay.merchants.model import Trade, TradeRecord, TradeState

#: The trade methods the gateway answers, and the statements' download URL.
METHODS = frozenset({
    "alipay.trade.create", "alipay.trade.precreate", "alipay.trade.page.pay", "alipay.trade.wap.pay",
    "alipay.trade.query", "alipay.trade.close", "alipay.trade.cancel", "alipay.trade.refund",
    "alipay.trade.fastpay.refund.query", "alipay.data.dataservice.bill.downloadurl.query",
})
#: Methods a browser is sent to (a redirect to the hosted cashier, not a JSON answer).
BROWSER_METHODS = frozenset({"alipay.trade.page.pay", "alipay.trade.wap.pay"})
#: How far a request's timestamp may be from our clock: Alipay's requests expire after 30 minutes.
TIMESTAMP_WINDOW = timedelta(minutes=30)
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
#: Alipay's range for an amount: 0.01 to 100,000,000.00 yuan.
MAX_FEN = 100_000_000_00


class GatewayRefusal(Exception):
    """A refusal in Alipay's words: ``code`` (40001, 40002, 40004…), ``sub_code``, ``sub_msg``."""

    def __init__(self, code: str, sub_code: str, sub_msg: str, mobipay_code: str = "") -> None:
        super().__init__(f"{code} {sub_code}: {sub_msg}")
        self.code, self.sub_code, self.sub_msg, self.mobipay_code = code, sub_code, sub_msg, mobipay_code


MESSAGES = {"10000": "Success", "20000": "Service Currently Unavailable", "40001": "Missing Required Arguments",
            "40002": "Invalid Arguments", "40004": "Business Failed", "40006": "Insufficient Permissions"}


def missing(name: str) -> GatewayRefusal:
    return GatewayRefusal("40001", f"isv.missing-{name.replace('_', '-')}", f"send {name}")


def invalid(name: str, why: str) -> GatewayRefusal:
    return GatewayRefusal("40002", f"isv.invalid-{name.replace('_', '-')}", why)


def request_string(params: Mapping[str, object]) -> str:
    """What an Alipay client signs a request over: every parameter except ``sign`` and the
    empty ones, sorted by name (byte order), ``k=v`` joined by ``&``, values as sent."""
    items = sorted((k, v) for k, v in params.items() if k != "sign" and v not in (None, ""))
    return "&".join(f"{k}={v}" for k, v in items)


def check_common(params: Mapping[str, str], now: datetime) -> str:
    """The common parameters every gateway request carries; returns the method. Refusals
    are Alipay's 40001 (missing) and 40002 (invalid) with their ``isv.*`` sub-codes."""
    for name in ("app_id", "method", "sign_type", "sign", "timestamp"):
        if not params.get(name):
            raise missing("signature" if name == "sign" else name)
    method = params["method"]
    if method not in METHODS:
        raise invalid("method", f"{method[:64]} is not a method of this gateway: "
                      f"{', '.join(sorted(METHODS))}")
    if params["sign_type"] != "RSA2":
        raise invalid("signature_type", "sign_type is RSA2 (SHA256withRSA): RSA (SHA1) is not accepted")
    if params.get("charset", "utf-8").lower() != "utf-8":
        raise invalid("charset", "charset is utf-8")
    if params.get("format", "JSON").upper() != "JSON":
        raise invalid("format", "format is JSON")
    if params.get("version", "1.0") != "1.0":
        raise invalid("parameter", "version is 1.0")
    try:
        sent = datetime.strptime(params["timestamp"], TIME_FORMAT).replace(tzinfo=SHANGHAI)
    except ValueError:
        raise invalid("timestamp", "timestamp is yyyy-MM-dd HH:mm:ss in Beijing time (UTC+8)") from None
    if abs(sent - now) > TIMESTAMP_WINDOW:
        raise invalid("timestamp", f"timestamp is more than 30 minutes from our clock "
                      f"({now.astimezone(SHANGHAI):{TIME_FORMAT}} Beijing time): is your server's clock "
                      "in Beijing time?")
    return method


def biz_content(params: Mapping[str, str]) -> dict[str, str]:
    """The business fields (``biz_content``, a JSON object), every value as the text sent:
    numbers keep their digits (``88.00`` stays ``"88.00"``, never a float)."""
    raw = params.get("biz_content", "")
    if not raw:
        return {}
    try:
        data = json.loads(raw, parse_float=str, parse_int=str)
    except (ValueError, RecursionError):
        raise invalid("parameter", "biz_content is not a JSON object") from None
    if not isinstance(data, dict):
        raise invalid("parameter", "biz_content is a JSON object")
    return {str(k): v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for k, v in data.items()}


def field(biz: Mapping[str, str], name: str) -> str:
    value = biz.get(name, "")
    if not value:
        raise GatewayRefusal("40004", "ACQ.INVALID_PARAMETER", f"send {name} in biz_content")
    return value


def amount(biz: Mapping[str, str], name: str) -> int:
    """A yuan amount of ``biz_content`` as fen: ASCII digits, at most two decimals, 0.01 to
    100,000,000.00; anything else is ``ACQ.INVALID_PARAMETER`` and nothing is done."""
    text = field(biz, name)
    try:
        fen = parse_yuan(text, field=name, example="88.00")
    except MobipayError as exc:
        raise GatewayRefusal("40004", "ACQ.INVALID_PARAMETER", exc.detail, exc.code) from None
    if fen > MAX_FEN:
        raise GatewayRefusal("40004", "ACQ.TOTAL_FEE_EXCEED", f"{name} is at most 100000000.00 yuan")
    return fen


def minutes(biz: Mapping[str, str]) -> int:
    """``timeout_express`` (``90m``, ``2h``, ``1d``; Alipay's default 90 minutes, here at
    most one day), as the minutes the buyer has to pay."""
    text = biz.get("timeout_express", "") or "90m"
    unit = {"m": 1, "h": 60, "d": 1440}.get(text[-1:])
    digits = text[:-1]
    if unit is None or not (digits.isascii() and digits.isdigit() and 0 < len(digits) <= 4):
        raise GatewayRefusal("40004", "ACQ.INVALID_PARAMETER", "timeout_express is minutes, hours or days: 90m, 2h, 1d")
    total = int(digits) * unit
    if not 1 <= total <= 1440:
        raise GatewayRefusal("40004", "ACQ.INVALID_PARAMETER", "timeout_express is from 1m to 1d")
    return total


#: Our stable codes (docs/errors.md) as Alipay's business sub-codes, which shops' code handles.
SUB_CODES = {
    "TRADE_NOT_FOUND": "ACQ.TRADE_NOT_EXIST",
    "TRADE_STATE_INVALID": "ACQ.TRADE_STATUS_ERROR",
    "REFUND_EXCEEDS_PAID": "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL",
    "TRADE_EXISTS": "ACQ.CONTEXT_INCONSISTENT",
    "IDEMPOTENCY_CONFLICT": "ACQ.CONTEXT_INCONSISTENT",
    "MERCHANT_NOT_ACTIVE": "ACQ.ACCESS_FORBIDDEN",
    "MERCHANT_NOT_FOUND": "ACQ.INVALID_PARAMETER",
    "MERCHANT_LIMIT_EXCEEDED": "ACQ.TOTAL_FEE_EXCEED",
    "INSUFFICIENT_FUNDS": "ACQ.SELLER_BALANCE_NOT_ENOUGH",
    "ACCOUNT_FROZEN": "ACQ.SELLER_BALANCE_NOT_ENOUGH",
}


def refusal_of(exc: MobipayError) -> GatewayRefusal:
    """A merchants' refusal as Alipay answers it: 40004 with the ``ACQ.*`` sub-code (our own
    code kept in ``mobipay_code``); the platform not answering is 20000."""
    if exc.status >= 500:
        return GatewayRefusal("20000", "isp.unknow-error", "try again in a moment", exc.code)
    return GatewayRefusal("40004", SUB_CODES.get(exc.code, "ACQ.INVALID_PARAMETER"), exc.detail, exc.code)


def failure_content(refusal: GatewayRefusal, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    content = {"code": refusal.code, "msg": MESSAGES.get(refusal.code, "Business Failed"),
               "sub_code": refusal.sub_code, "sub_msg": refusal.sub_msg, **(extra or {})}
    if refusal.mobipay_code:
        content["mobipay_code"] = refusal.mobipay_code
    return content


def success(**fields: str) -> dict[str, str]:
    return {"code": "10000", "msg": "Success", **{k: v for k, v in fields.items() if v not in (None, "")}}


def beijing(at: datetime | None) -> str:
    return at.astimezone(SHANGHAI).strftime(TIME_FORMAT) if at is not None else ""


def answer_text(content: Mapping[str, str]) -> str:
    """The JSON text of ``<method>_response`` that is signed and sent as written."""
    return json.dumps(dict(content), ensure_ascii=False, separators=(",", ":"))


def envelope(method: str, content_text: str, sign: str) -> str:
    """Alipay's answer: ``{"alipay_trade_query_response":{…},"sign":"…"}``, the inner JSON
    exactly as signed (clients cut it out of the text to verify it)."""
    key = method.replace(".", "_") + "_response"
    return f'{{"{key}":{content_text},"sign":"{sign}"}}'


@dataclass(frozen=True, slots=True)
class TradeView:
    """What Alipay's query answers say of a trade, from the merchants' trade."""

    trade: Trade

    def query(self) -> dict[str, str]:
        t = self.trade
        paid = t.amount - t.red_envelope - t.privilege
        fields = {"trade_no": t.id, "out_trade_no": t.out_trade_no, "trade_status": t.state.value,
                  "total_amount": yuan(t.amount), "subject": t.subject}
        if t.paid_at is not None:
            fields |= {"buyer_pay_amount": yuan(paid), "receipt_amount": yuan(paid),
                       "invoice_amount": yuan(paid), "point_amount": "0.00", "send_pay_date": beijing(t.paid_at),
                       "red_envelope_amount": yuan(t.red_envelope), "refund_fee": yuan(t.refunded)}
        return success(**fields)


def notification(trade: TradeRecord, state: TradeState, refunded: int, *, notify_id: str, now: datetime,
                 red_envelope: int = 0, refund: tuple[str, int] | None = None) -> dict[str, str]:
    """A trade-state notification as Alipay posts it (form fields, yuan, Beijing time): what
    Alipay handlers read. ``receipt_amount`` is what the buyer's wallet paid (a red envelope
    of the shop's own is not received again); empty fields are left out, as Alipay does."""
    paid = trade.amount - red_envelope - trade.privilege_amount
    payload = {"notify_id": notify_id, "notify_type": "trade_status_sync", "notify_time": beijing(now),
               "charset": "utf-8", "version": "1.0", "app_id": trade.app_id, "auth_app_id": trade.app_id,
               "trade_no": trade.id, "out_trade_no": trade.out_trade_no, "trade_status": state.value,
               "subject": trade.subject, "total_amount": yuan(trade.amount), "buyer_pay_amount": yuan(paid),
               "receipt_amount": yuan(paid), "invoice_amount": yuan(paid), "point_amount": "0.00",
               "gmt_create": beijing(trade.created_at), "gmt_payment": beijing(trade.paid_at or now)}
    if red_envelope:
        payload["red_envelope_amount"] = yuan(red_envelope)
    if trade.privilege_amount:  # the merchant's own discount (an alliance privilege), as Alipay's mdiscount_amount
        payload["mdiscount_amount"] = yuan(trade.privilege_amount)
    if refund is not None:
        payload |= {"out_biz_no": refund[0], "refund_fee": yuan(refunded), "gmt_refund": beijing(now)}
    if state is TradeState.TRADE_CLOSED:
        payload["gmt_close"] = beijing(trade.closed_at or now)
    return payload


def return_params(trade: Trade, app_id: str, seller_id: str, method: str, now: datetime) -> dict[str, str]:
    """What the cashier adds to the shop's ``return_url`` after paying, as Alipay's
    synchronous return has it (signed like a notification)."""
    return {"charset": "utf-8", "out_trade_no": trade.out_trade_no, "method": f"{method}.return",
            "total_amount": yuan(trade.amount), "trade_no": trade.id, "auth_app_id": app_id, "version": "1.0",
            "app_id": app_id, "seller_id": seller_id, "timestamp": beijing(now)}



BILL_COLUMNS = ("支付宝交易号", "商户订单号", "业务类型", "商品名称", "创建时间", "完成时间", "门店编号",
                "订单金额（元）", "商家实收（元）", "商家红包消费金额（元）", "退款批次号/请求号", "备注")


def bill(app_id: str, day: date, paid: Sequence[Any], refunded: Sequence[Any]) -> str:
    """A day's trades and refunds as Alipay's "业务明细" file lays it out (the column names a
    shop's parser looks for, yuan, Beijing time, ``#`` header and footer lines): payments
    (``trade_no, out_trade_no, subject, amount, coupon_amount, created_at, paid_at,
    store_id``) and refunds (``trade_id, out_trade_no, out_request_no, amount, created_at``)."""
    out = io.StringIO()
    out.write(f"#支付宝业务明细查询\n#账号：[{app_id}]\n#起始日期：[{day:%Y年%m月%d日} 00:00:00]   "
              f"终止日期：[{day + timedelta(days=1):%Y年%m月%d日} 00:00:00]\n#-----------------------------------------"
              "业务明细列表----------------------------------------\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(BILL_COLUMNS)
    total_in = total_back = 0
    for t in paid:
        coupon = int(t.coupon_amount or 0)
        writer.writerow([t.id, t.out_trade_no, "交易", t.subject, beijing(as_utc(t.created_at)),
                         beijing(as_utc(t.paid_at)), t.store_id or "", yuan(t.amount), yuan(t.amount - coupon),
                         yuan(coupon), "", ""])
        total_in += t.amount - coupon
    for r in refunded:
        writer.writerow([r.trade_id, r.out_trade_no, "退款", "", beijing(as_utc(r.created_at)),
                         beijing(as_utc(r.created_at)), "", yuan(-r.amount), yuan(-r.amount), "0.00",
                         r.out_request_no, ""])
        total_back += r.amount
    out.write(f"#-----------------------------------------业务明细列表结束------------------------------------\n"
              f"#交易合计：{len(paid)}笔，商家实收共{yuan(total_in)}元\n#退款合计：{len(refunded)}笔，"
              f"退款共{yuan(total_back)}元\n#导出时间：[{day + timedelta(days=1):%Y年%m月%d日} 00:00:00]\n")
    return out.getvalue()
