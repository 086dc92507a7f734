"""The merchant-presented QR code of a mobipay shop (EMV QRCPS Merchant-Presented Mode), without I/O.

A payload is a run of data objects: a two-digit tag, a two-digit length and that many
characters of value. The length counts characters, not bytes (``最佳运输`` is ``04``), as
EMVCo's own example has it. Templates (26-51 merchant accounts, 62 additional data, 64 the
local-language name) hold data objects of their own. The last object is the CRC (63):
CRC-16/CCITT-FALSE over the UTF-8 bytes of everything before its value, its own ``6304``
included, written as 4 upper-case hex digits.

A mobipay code names mobipay in a merchant account template (tag 26, sub-tag 00
:data:`MOBIPAY_GUID`) with the merchant id (01) and the store id (02). A static code (``11``)
is printed once per store and the payer types the amount; a dynamic one (``12``) is made for
one order and carries its amount (54) and the order number (62, sub-tag 01). Amounts are
integer fen here and yuan text in the code (``2372`` ↔ ``"23.72"``), never floats.

Parsing refuses with a specific code (docs/instore.md): a damaged code (the CRC) is told
apart from a broken structure (tags, lengths, duplicates), another scheme's code
(``QR_NOT_OURS``) and a code mobipay will not pay (no amount, another currency).
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from mobipay.instore import errors
from mobipay.kernel.errors import InvalidAmount
from mobipay.kernel.money import check_amount, parse_yuan, yuan

#: mobipay's globally unique identifier in its merchant account template (a reverse domain
#: name, as EMV QRCPS allows besides an AID or a UUID): a wallet that knows it pays mobipay.
MOBIPAY_GUID = "cn.mobipay"
ACCOUNT_TAG = "26"  # the first of the templates 26-51 that schemes fill with their own GUID
CURRENCY_CNY = "156"  # ISO 4217 numeric, as tag 53 writes currencies
COUNTRY_CN = "CN"
PAYLOAD_FORMAT = "01"

MAX_PAYLOAD = 512  # characters: the specification's bound on a whole payload
MAX_NAME = 25
MAX_CITY = 15
MAX_AMOUNT_TEXT = 13
MAX_LABEL = 25  # bill number, store and terminal labels in template 62
MAX_ID = 36  # a merchant or store id (``mch_`` and 32 hex digits) inside template 26's 99 characters

MANDATORY = ("00", "01", "52", "53", "58", "59", "60")  # 01 is optional in EMV; mobipay needs static or dynamic
_ACCOUNT_TAGS = tuple(f"{n:02d}" for n in range(26, 52))

# CRC-16/CCITT-FALSE is the catalogue's CRC-16/IBM-3740: poly 0x1021, init 0xFFFF, no reflection, no xorout.
_ID = re.compile(r"[A-Za-z0-9_.\-]{1,36}", re.ASCII)
_ANS = re.compile(r"[\x20-\x7e]+", re.ASCII)  # EMV's "ans": the printable ASCII of the common character set


class Initiation(StrEnum):
    """Tag 01: whether the code stays on the counter or was made for one order."""

    STATIC = "11"
    DYNAMIC = "12"


@dataclass(frozen=True, slots=True)
class AdditionalData:
    """Template 62: what the payer's receipt and the merchant's reconciliation need to match the payment."""

    bill_number: str | None = None  # 01: the order a dynamic code was made for
    store_label: str | None = None  # 03
    terminal_label: str | None = None  # 07: the till

    def is_empty(self) -> bool:
        return self.bill_number is None and self.store_label is None and self.terminal_label is None


@dataclass(frozen=True, slots=True)
class LocalName:
    """Template 64: the merchant's name (and city) in the local language, since tag 59 is Latin only."""

    language: str  # 00: ISO 639 two letters, "ZH"
    name: str  # 01
    city: str | None = None  # 02


@dataclass(frozen=True, slots=True)
class MerchantQr:
    """What a mobipay merchant QR code says; :func:`encode` writes it and :func:`parse` reads it back."""

    initiation: Initiation
    merchant_id: str
    mcc: str  # ISO 18245 merchant category code, 4 digits
    name: str  # tag 59, Latin letters (pinyin): the local name goes in ``local``
    city: str
    amount: int | None = None  # fen; required on a dynamic code
    store_id: str | None = None
    currency: str = CURRENCY_CNY
    country: str = COUNTRY_CN
    additional: AdditionalData = field(default_factory=AdditionalData)
    local: LocalName | None = None


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE of ``data``, the checksum of tag 63 (``b"123456789"`` → ``0x29B1``):
    the standard library's CRC-CCITT (XMODEM polynomial, no reflection) started at 0xFFFF."""
    return binascii.crc_hqx(data, 0xFFFF)


def encode(qr: MerchantQr) -> str:
    """The payload for ``qr``, checked by the rules :func:`parse` applies, so no code is printed that we refuse."""
    _check(qr, strict=True)
    account = {"00": MOBIPAY_GUID, "01": qr.merchant_id, "02": qr.store_id}
    parts = [_tlv("00", PAYLOAD_FORMAT), _tlv("01", qr.initiation.value), _tlv(ACCOUNT_TAG, _template(account)),
             _tlv("52", qr.mcc), _tlv("53", qr.currency)]
    if qr.amount is not None:
        parts.append(_tlv("54", yuan(qr.amount)))
    parts += [_tlv("58", qr.country), _tlv("59", qr.name), _tlv("60", qr.city)]
    if not qr.additional.is_empty():
        extra = qr.additional
        parts.append(_tlv("62", _template({"01": extra.bill_number, "03": extra.store_label,
                                           "07": extra.terminal_label})))
    if qr.local is not None:
        parts.append(_tlv("64", _template({"00": qr.local.language, "01": qr.local.name, "02": qr.local.city})))
    body = "".join(parts) + "6304"
    return body + f"{crc16(body.encode('utf-8')):04X}"


def parse(payload: str) -> MerchantQr:
    """Read a scanned payload: structure first, then the CRC, then whose code it is, then each value."""
    if not isinstance(payload, str) or not payload:
        raise errors.QrBadValue("the QR code is empty", field="payload")
    if len(payload) > MAX_PAYLOAD:
        raise errors.QrBadLength(f"a merchant QR code has at most {MAX_PAYLOAD} characters, this one {len(payload)}",
                                 field="payload")
    try:
        data = payload.encode("utf-8")
    except UnicodeEncodeError:
        raise errors.QrBadValue("the QR code is not valid Unicode text", field="payload") from None
    top = objects(payload)
    _check_crc(top, data)
    account = _our_account(top)  # before the mandatory tags: another scheme's code is "not ours", whatever it lacks
    for tag in MANDATORY:
        if tag not in top:
            raise errors.QrMissingTag(f"the QR code has no tag {tag} ({_NAMES[tag]})", tag=tag)
    if next(iter(top)) != "00":
        raise errors.QrBadValue("a merchant QR code begins with its payload format indicator (00)", tag="00")
    if top["00"] != PAYLOAD_FORMAT:
        raise errors.QrBadValue(f"payload format indicator {top['00']!r} is not {PAYLOAD_FORMAT!r}", tag="00")
    try:
        initiation = Initiation(top["01"])
    except ValueError:
        raise errors.QrBadValue(f"point of initiation {top['01']!r} is neither 11 (static) nor 12 (dynamic)",
                                tag="01") from None
    additional = objects(top["62"], where="template 62") if "62" in top else {}
    local = objects(top["64"], where="template 64") if "64" in top else None
    if local is not None:
        for sub in ("00", "01"):
            if sub not in local:
                raise errors.QrMissingTag(f"template 64 has no sub-tag {sub} ({_LOCAL_NAMES[sub]})", tag=f"64.{sub}")
    qr = MerchantQr(
        initiation=initiation, merchant_id=account["01"], store_id=account.get("02"), mcc=top["52"],
        name=top["59"], city=top["60"], amount=_amount(top.get("54")), currency=top["53"], country=top["58"],
        additional=AdditionalData(additional.get("01"), additional.get("03"), additional.get("07")),
        local=None if local is None else LocalName(local["00"], local["01"], local.get("02")),
    )
    _check(qr, strict=False)
    return qr


def objects(text: str, *, where: str = "the QR code") -> dict[str, str]:
    """The data objects of a payload or template in order, tag → value, refusing a broken structure."""
    found: dict[str, str] = {}
    at = 0
    while at < len(text):
        tag, size = text[at:at + 2], text[at + 2:at + 4]
        if not _digits(tag, 2):
            raise errors.QrBadTag(f"{where} has {tag!r} where a two-digit tag belongs (character {at + 1})",
                                  field="payload")
        if not _digits(size, 2) or size == "00":
            raise errors.QrBadLength(f"tag {tag} in {where} has length {size!r}: two digits from 01 to 99",
                                     field="payload", tag=tag)
        end = at + 4 + int(size)
        if end > len(text):
            raise errors.QrBadLength(f"tag {tag} in {where} says {int(size)} characters but only "
                                     f"{len(text) - at - 4} are left", field="payload", tag=tag)
        if tag in found:
            raise errors.QrDuplicateTag(f"tag {tag} appears twice in {where}", field="payload", tag=tag)
        found[tag] = text[at + 4:end]
        at = end
    return found


_NAMES: Mapping[str, str] = {
    "00": "payload format indicator", "01": "point of initiation", "52": "merchant category code", "53": "currency",
    "58": "country", "59": "merchant name", "60": "merchant city", "63": "CRC",
}
_LOCAL_NAMES: Mapping[str, str] = {"00": "language", "01": "merchant name"}


def _check_crc(top: dict[str, str], data: bytes) -> None:
    """Tag 63 is the last object, 4 hex digits, the CRC of everything before them."""
    if "63" not in top:
        raise errors.QrMissingTag("the QR code has no CRC (tag 63)", tag="63")
    written = top["63"]
    if next(reversed(top)) != "63" or not re.fullmatch(r"[0-9A-F]{4}", written, re.ASCII):
        raise errors.QrBadCrc("the CRC (tag 63) is the last field of the code, 4 upper-case hex digits", tag="63")
    expected = crc16(data[:-4])
    if int(written, 16) != expected:
        raise errors.QrBadCrc(f"the code's CRC is {written} but its content gives {expected:04X}", tag="63")


def _our_account(top: dict[str, str]) -> dict[str, str]:
    """mobipay's merchant account template among 26-51, or ``QR_NOT_OURS``; two of them are ambiguous."""
    ours = [(tag, sub) for tag in _ACCOUNT_TAGS if tag in top
            for sub in [objects(top[tag], where=f"template {tag}")] if sub.get("00") == MOBIPAY_GUID]
    if not ours:
        raise errors.QrNotOurs(f"the code names no {MOBIPAY_GUID} merchant account (tags 26-51)")
    if len(ours) > 1:
        raise errors.QrDuplicateTag(f"templates {ours[0][0]} and {ours[1][0]} both name {MOBIPAY_GUID}",
                                    field="payload", tag=ours[1][0])
    tag, account = ours[0]
    if "01" not in account:
        raise errors.QrMissingTag(f"template {tag} has no merchant id (sub-tag 01)", tag=f"{tag}.01")
    return account


def _amount(text: str | None) -> int | None:
    """Tag 54's yuan text as fen, refusing what is not yuan with at most 2 decimals or over 13 characters."""
    if text is None:
        return None
    if len(text) > MAX_AMOUNT_TEXT:
        raise errors.QrBadAmount(f"the amount has at most {MAX_AMOUNT_TEXT} characters", field="amount", tag="54")
    try:
        return parse_yuan(text, field="amount", example="23.72")
    except InvalidAmount as exc:
        raise errors.QrBadAmount(exc.detail, field="amount", tag="54") from None


def _check(qr: MerchantQr, *, strict: bool) -> None:
    """The rules both ways. ``strict`` (encoding) also keeps Latin fields to EMV's printable ASCII:
    a code from elsewhere with UTF-8 in tag 59 is read, but mobipay prints none."""
    if qr.initiation is Initiation.DYNAMIC and qr.amount is None:
        raise errors.QrAmountRequired("a dynamic code (12) is for one order and carries its amount (tag 54)",
                                      field="amount", tag="54")
    if qr.amount is not None:
        try:
            check_amount(qr.amount)
        except InvalidAmount as exc:
            raise errors.QrBadAmount(exc.detail, field="amount", tag="54") from None
        if len(yuan(qr.amount)) > MAX_AMOUNT_TEXT:
            raise errors.QrBadAmount(f"the amount is written in at most {MAX_AMOUNT_TEXT} characters",
                                     field="amount", tag="54")
    if qr.currency != CURRENCY_CNY:
        raise errors.QrBadCurrency(f"currency {qr.currency!r}: mobipay codes are in yuan ({CURRENCY_CNY})",
                                   field="currency", tag="53")
    if not _digits(qr.mcc, 4):
        raise errors.QrBadValue(f"merchant category code {qr.mcc!r} is not 4 digits", field="mcc", tag="52")
    if not re.fullmatch(r"[A-Z]{2}", qr.country, re.ASCII):
        raise errors.QrBadValue(f"country {qr.country!r} is not ISO 3166 two capital letters", field="country",
                                tag="58")
    for value, name, tag in ((qr.merchant_id, "merchant_id", "26.01"), (qr.store_id, "store_id", "26.02")):
        if value is not None and not _ID.fullmatch(value):
            raise errors.QrBadValue(f"{name} is 1 to {MAX_ID} letters, digits, '_', '.' or '-'", field=name, tag=tag)
    extra = qr.additional
    local = qr.local
    texts: list[tuple[str | None, int, str, str, bool]] = [
        (qr.name, MAX_NAME, "name", "59", True), (qr.city, MAX_CITY, "city", "60", True),
        (extra.bill_number, MAX_LABEL, "bill_number", "62.01", True),
        (extra.store_label, MAX_LABEL, "store_label", "62.03", True),
        (extra.terminal_label, MAX_LABEL, "terminal_label", "62.07", True),
    ]
    if local is not None:
        if not re.fullmatch(r"[A-Za-z]{2}", local.language, re.ASCII):
            raise errors.QrBadValue(f"language {local.language!r} is not ISO 639 two letters", field="language",
                                    tag="64.00")
        texts += [(local.name, MAX_NAME, "local_name", "64.01", False),
                  (local.city, MAX_CITY, "local_city", "64.02", False)]
    for value, limit, name, tag, latin in texts:
        _check_text(value, limit, name, tag, latin=latin and strict, printable=strict)


def _check_text(value: str | None, limit: int, name: str, tag: str, *, latin: bool, printable: bool) -> None:
    if value is None:
        return
    if len(value) > limit:
        raise errors.QrValueTooLong(f"{name} has {len(value)} characters; EMV allows {limit}", field=name, tag=tag)
    if not value or (latin and not _ANS.fullmatch(value)) or (printable and not value.isprintable()):
        kind = "printable ASCII (put Chinese in the local-language name, tag 64)" if latin else "printable text"
        raise errors.QrBadValue(f"{name} is 1 to {limit} characters of {kind}", field=name, tag=tag)


def _digits(text: str, count: int) -> bool:
    """Exactly ``count`` ASCII digits (``str.isdigit`` alone accepts full-width and other digits)."""
    return len(text) == count and text.isascii() and text.isdigit()


def _tlv(tag: str, value: str) -> str:
    return f"{tag}{len(value):02d}{value}"


def _template(fields: Mapping[str, str | None]) -> str:
    """Sub-objects in tag order, leaving out the absent ones."""
    return "".join(_tlv(tag, value) for tag, value in fields.items() if value is not None)
