"""Merchant rules without I/O: the unified social credit code (GB 32100-2015) a business
registers with, the merchant and trade state machines, refund bounds, and the string a
merchant API request is signed over.
"""

from __future__ import annotations

import csv
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from stdnum.cn import uscc

from mobipay.kernel.clock import SHANGHAI
from mobipay.kernel.urls import AddressRefused, DestinationPolicy, WebAddress, parse_web_address
from mobipay.merchants import errors

#: GB 32100 characters (no I, O, Z, S, V).
_CODE_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def credit_code_check_char(first17: str) -> str:
    """The GB 32100 check character for the first 17 characters (python-stdnum's cn.uscc)."""
    return uscc.calc_check_digit(first17)


def check_credit_code(value: object) -> str:
    """An 18-character unified social credit code with a correct check character (upper-cased)."""
    if not isinstance(value, str):
        raise errors.InvalidCreditCode("a credit code is text", field="credit_code")
    code = value.strip().upper()
    if len(code) != 18 or any(c not in _CODE_CHARS for c in code):
        raise errors.InvalidCreditCode("a unified social credit code has 18 characters (digits and letters "
                                       "except I, O, Z, S, V)", field="credit_code")
    if not code[2:8].isdigit():
        raise errors.InvalidCreditCode("characters 3 to 8 are the region code (digits)", field="credit_code")
    if credit_code_check_char(code[:17]) != code[17]:
        raise errors.InvalidCreditCode("the check character does not match (a typo?)", field="credit_code")
    return code


def signing_string(params: Mapping[str, object]) -> str:
    """What a request is signed over, as Alipay does: every parameter except ``sign`` and
    ``sign_type`` and the empty ones, sorted by name (byte order), as ``k=v`` joined by
    ``&``, values as sent (not URL-encoded)."""
    items = sorted((k, v) for k, v in params.items() if k not in ("sign", "sign_type") and v not in (None, ""))
    return "&".join(f"{k}={v}" for k, v in items)


#: The dialects an app's notifications (and cashier returns) are written in.
PROTOCOLS = ("mobipay", "alipay", "wechat")

NOTIFY_URL_MAX = 512


def check_notify_url(raw: object, policy: DestinationPolicy) -> str:
    """A notify URL as stored: empty (none), or an http(s) address the platform may POST to
    (docs/merchant-signatures.md), written as a browser would; ``NOTIFY_URL_REFUSED`` saying
    why not. The delivery checks the resolved address again."""
    if raw is None or raw == "":
        return ""
    text = raw.strip() if isinstance(raw, str) else raw
    try:
        url = str(policy.check(text, max_length=NOTIFY_URL_MAX))
    except AddressRefused as exc:
        raise errors.NotifyUrlRefused(f"notify_url: {exc}", field="notify_url") from None
    if len(url) > NOTIFY_URL_MAX:  # an international host grows in its xn-- form
        raise errors.NotifyUrlRefused(f"notify_url: longer than {NOTIFY_URL_MAX} characters written out",
                                      field="notify_url")
    return url


def check_website(raw: str) -> str:
    """A merchant's website as registered: empty, or an unambiguous http(s) address (it is
    what the cashier's return URLs are compared with), written as a browser would."""
    if not raw.strip():
        return ""
    try:
        return str(parse_web_address(raw.strip(), max_length=256))
    except AddressRefused as exc:
        raise errors.InvalidMerchantField(f"website: {exc}", field="website") from None


def check_return_url(raw: object, website: str) -> WebAddress:
    """Where the hosted cashier may send the buyer back to: an http(s) address whose host, as
    a browser reads it, is the host of the merchant's registered website. Anything a browser
    could read differently (userinfo, backslashes, encoded hosts, control characters…) is
    refused, so the host compared is the host the browser goes to (``RETURN_URL_REFUSED``)."""
    try:
        address = parse_web_address(raw)
    except AddressRefused as exc:
        raise errors.ReturnUrlRefused(f"return_url: {exc}", field="return_url") from None
    try:
        site = parse_web_address(website) if website else None
    except AddressRefused:
        site = None
    if site is None:
        raise errors.ReturnUrlRefused("the merchant has no valid registered website to return to: ask the platform "
                                      "to record it (return URLs must be on it)", field="return_url")
    if address.host != site.host:
        raise errors.ReturnUrlRefused(f"return_url must be on the merchant's registered website ({site.host}), "
                                      f"not {address.host}", field="return_url")
    return address


class MerchantState(enum.StrEnum):
    SUBMITTED = "submitted"
    MORE_INFO = "more_info"  # the reviewer asked for more information
    APPROVED = "approved"  # active: may take payments
    REJECTED = "rejected"
    SUSPENDED = "suspended"  # no new payments
    SETTLEMENT_SUSPENDED = "settlement_suspended"  # takes payments, is not paid out
    TERMINATED = "terminated"


MERCHANT_MOVES: dict[MerchantState, frozenset[MerchantState]] = {
    MerchantState.SUBMITTED: frozenset({MerchantState.APPROVED, MerchantState.REJECTED, MerchantState.MORE_INFO}),
    MerchantState.MORE_INFO: frozenset({MerchantState.SUBMITTED, MerchantState.REJECTED}),
    MerchantState.APPROVED: frozenset({MerchantState.SUSPENDED, MerchantState.SETTLEMENT_SUSPENDED,
                                       MerchantState.TERMINATED}),
    MerchantState.SUSPENDED: frozenset({MerchantState.APPROVED, MerchantState.TERMINATED}),
    MerchantState.SETTLEMENT_SUSPENDED: frozenset({MerchantState.APPROVED, MerchantState.TERMINATED}),
    MerchantState.REJECTED: frozenset(),
    MerchantState.TERMINATED: frozenset(),
}


def check_merchant_move(current: MerchantState, to: MerchantState) -> None:
    if to not in MERCHANT_MOVES[current]:
        raise errors.StateInvalid(f"a merchant {current.value} cannot become {to.value}", field="state")


#: States of a merchant that was approved (suspended ones keep what they had and may tidy
#: it); before approval, and after a rejection or termination, nothing may be set up.
SET_UP_STATES = frozenset({MerchantState.APPROVED, MerchantState.SUSPENDED, MerchantState.SETTLEMENT_SUSPENDED})

#: The reviewer's decisions on an application, each told to the applicant by SMS.
DECISIONS = frozenset({MerchantState.APPROVED, MerchantState.REJECTED, MerchantState.MORE_INFO})


def check_may_set_up(merchant_id: str, state: MerchantState) -> None:
    """Refuse API apps, stores and portal accounts for a merchant not (yet, or any more)
    approved: a rejected applicant must not end up with working credentials."""
    if state not in SET_UP_STATES:
        raise errors.MerchantNotApproved(f"merchant {merchant_id} is {state.value}: it must be approved first",
                                         field="merchant_id")


def is_decision(current: MerchantState, to: MerchantState) -> bool:
    """Whether a move is a review decision on an application (the applicant is told)."""
    return current in (MerchantState.SUBMITTED, MerchantState.MORE_INFO) and to in DECISIONS


class TradeState(enum.StrEnum):
    """Alipay's names, which merchants' developers know."""

    WAIT_BUYER_PAY = "WAIT_BUYER_PAY"
    TRADE_SUCCESS = "TRADE_SUCCESS"  # paid (refunds possible)
    TRADE_CLOSED = "TRADE_CLOSED"  # closed unpaid, expired, or refunded in full


TRADE_MOVES: dict[TradeState, frozenset[TradeState]] = {
    TradeState.WAIT_BUYER_PAY: frozenset({TradeState.TRADE_SUCCESS, TradeState.TRADE_CLOSED}),
    TradeState.TRADE_SUCCESS: frozenset({TradeState.TRADE_CLOSED}),
    TradeState.TRADE_CLOSED: frozenset(),
}


def check_trade_move(current: TradeState, to: TradeState, *, why: str) -> None:
    if to not in TRADE_MOVES[current]:
        raise errors.TradeStateInvalid(f"cannot {why}: the trade is {current.value}", field="out_trade_no")


def check_refund(paid: int, refunded: int, amount: int) -> None:
    """A refund never takes back more than was paid, over all refunds of the trade."""
    if amount > paid - refunded:
        raise errors.RefundExceedsPaid(f"{(paid - refunded) / 100:.2f} CNY of {paid / 100:.2f} CNY is left to refund",
                                       field="refund_amount")


def check_mcc(value: object) -> str:
    if not (isinstance(value, str) and len(value) == 4 and value.isdigit()):
        raise errors.InvalidMerchantField("an MCC is 4 digits (ISO 18245), e.g. 5311 department stores", field="mcc")
    return value


@dataclass(frozen=True, slots=True)
class Category:
    """What the platform's data file says about a merchant category."""

    mcc: str
    description: str
    fee_bps: int
    risk: str  # low | standard | high
    settlement_days: int
    per_trade_limit: int
    daily_limit: int


def parse_categories(text: str) -> dict[str, Category]:
    rows = csv.DictReader(line for line in text.splitlines() if line.strip() and not line.startswith("#"))
    out = {}
    for r in rows:
        c = Category(r["mcc"], r["description"], int(r["fee_bps"]), r["risk"], int(r["settlement_days"]),
                     int(r["per_trade_limit"]), int(r["daily_limit"]))
        if c.risk not in ("low", "standard", "high") or not 0 <= c.fee_bps < 10_000 or c.settlement_days < 1:
            raise ValueError(f"bad merchant category {c.mcc}")
        out[c.mcc] = c
    return out


#: A business day can be settled this long after it ended (midnight, Shanghai): a payment
#: whose transaction began before midnight commits within it, so none is left out of its day.
SETTLEMENT_CUTOFF = timedelta(minutes=5)


def day_window(day: date) -> tuple[datetime, datetime]:
    """A Shanghai business day as [start, end) in UTC, the way times are stored."""
    start = datetime.combine(day, datetime.min.time(), SHANGHAI).astimezone(UTC)
    return start, start + timedelta(days=1)


def check_day_closed(day: date, now: datetime) -> None:
    """Refuse to settle a business day before it ended (and the cut-off passed): a payment
    made later that day would never be paid out, and the figures would not be the day's."""
    opens = day_window(day)[1] + SETTLEMENT_CUTOFF
    if now < opens:
        local = opens.astimezone(SHANGHAI)
        raise errors.SettlementDayOpen(
            f"{day.isoformat()} (Shanghai) has not ended: settle it from {local:%Y-%m-%d %H:%M} Beijing time, "
            f"e.g. mobipay merchants settle --due {local.date().isoformat()}", field="date")


# ---------------------------------------------------------------------- the merchants' records
# What the merchant use cases (service.py) keep through the merchants' store (store.py).


@dataclass(frozen=True, slots=True)
class Merchant:
    id: str
    name: str
    credit_code: str
    mcc: str
    state: MerchantState
    reason: str
    fee_bps: int
    account_code: str
    website: str


@dataclass(frozen=True, slots=True)
class MerchantFile:
    """A merchant as stored: what the API shows (:attr:`merchant`) and what only the
    platform uses (contact, settlement account, cycle and limits)."""

    merchant: Merchant
    legal_person: str
    contact_msisdn: str
    settlement_account: str
    settlement_days: int
    per_trade_limit: int
    daily_limit: int
    created_at: datetime
    #: SHA-256 of the token the applicant reads and resubmits the application with (None:
    #: applied through the CLI or the demo, which have no applicant to answer).
    application_token_hash: str | None = None
    applicant_note: str = ""  # what the applicant said with a resubmission
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class App:
    """An API app of a merchant and its keys (HMAC, or RSA2 with the previous key during a
    rotation), and the protocol its notifications are written in."""

    app_id: str
    merchant_id: str
    sign_type: str  # RSA2 | HMAC
    public_key: str | None
    hmac_key: str | None
    notify_url: str
    created_at: datetime
    previous_key: str | None = None
    previous_until: datetime | None = None
    protocol: str = "mobipay"  # mobipay: JSON in fen | alipay: Alipay's form, yuan | wechat: WeChat Pay v3
    apiv3_key: str | None = None  # wechat: the key its notifications are encrypted with (AES-256-GCM)


@dataclass(frozen=True, slots=True)
class Trade:
    id: str
    merchant_id: str
    out_trade_no: str
    amount: int
    subject: str
    state: TradeState
    refunded: int
    expires_at: datetime
    created_at: datetime
    paid_at: datetime | None
    red_envelope: int = 0  # fen of the amount a red envelope paid (the wallet paid the rest)
    payer_id: str | None = None  # the subscriber who paid it (in-store scans tell "paid by you" from "by another")
    store_id: str | None = None  # the store it was taken in (its QR code prints the store's city)
    privilege: int = 0  # fen the merchant gave off the amount (an alliance privilege): paid by nobody

    @property
    def wallet_paid(self) -> int:
        """The cash the payer's wallet pays: the price less the red envelope's share and the
        merchant's privilege (as :attr:`TradeRecord.wallet_paid`)."""
        return self.amount - self.red_envelope - self.privilege


@dataclass(frozen=True, slots=True)
class TradeRecord:
    """A trade as stored; :meth:`seen_at` is the trade as its buyer and merchant see it then."""

    id: str
    merchant_id: str
    out_trade_no: str
    amount: int
    subject: str
    state: TradeState
    app_id: str
    notify_url: str
    created_at: datetime
    expires_at: datetime
    store_id: str | None = None
    refunded: int = 0
    coupon_id: str | None = None
    coupon_amount: int = 0
    payer_id: str | None = None
    transfer_id: str | None = None
    paid_at: datetime | None = None
    closed_at: datetime | None = None
    privilege_amount: int = 0  # given off by the merchant (an alliance privilege): not paid, not settled

    def seen_at(self, now: datetime | None = None) -> Trade:
        state = self.state
        if state is TradeState.WAIT_BUYER_PAY and now is not None and self.expires_at <= now:
            state = TradeState.TRADE_CLOSED  # expired unpaid
        return Trade(self.id, self.merchant_id, self.out_trade_no, self.amount, self.subject, state, self.refunded,
                     self.expires_at, self.created_at, self.paid_at, self.coupon_amount, self.payer_id,
                     self.store_id, self.privilege_amount)

    @property
    def wallet_paid(self) -> int:
        """The cash the payer's wallet pays: the price less the red envelope's share (not cash)
        and the merchant's privilege (never paid)."""
        return self.amount - self.coupon_amount - self.privilege_amount

    @property
    def refundable(self) -> int:
        """What is left to refund: the cash paid less refunds."""
        return self.wallet_paid - self.refunded


@dataclass(frozen=True, slots=True)
class Refund:
    id: str
    trade_id: str
    out_request_no: str
    amount: int
    transfer_id: str
    created_at: datetime


def trade_notification(trade: TradeRecord, state: TradeState, refunded: int, *, notify_id: str, now: datetime,
                       red_envelope: int = 0, refund: tuple[str, int] | None = None) -> dict[str, str | int]:
    """The payload of a trade-state notification to the merchant: what the buyer paid and
    what a red envelope paid of the total, and for a refund its request number and amount."""
    payload: dict[str, str | int] = {
        "notify_id": notify_id, "notify_type": "trade_status_sync", "notify_time": now.isoformat(),
        "app_id": trade.app_id, "trade_no": trade.id, "out_trade_no": trade.out_trade_no, "trade_status": state.value,
        "total_amount": trade.amount, "buyer_pay_amount": trade.amount - red_envelope - trade.privilege_amount,
        "red_envelope_amount": red_envelope, "refunded_amount": refunded}  # amounts: integer fen
    if trade.privilege_amount:  # an alliance privilege the merchant gave: it receives that much less
        payload["privilege_amount"] = trade.privilege_amount
    if refund is not None:
        payload |= {"out_request_no": refund[0], "refund_amount": refund[1]}
    return payload


@dataclass(frozen=True, slots=True)
class StoreRecord:
    """A merchant's store as other contexts see it (in-store terminals are registered per store)."""

    id: str
    merchant_id: str
    name: str
    address: str
    created_at: datetime
    city: str = ""  # printed on the store's QR code
