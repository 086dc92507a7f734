"""The EMV merchant-presented QR code: the CRC against public vectors, the round trip, and every refusal."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobipay.instore import errors
from mobipay.instore.model import (
    MANDATORY,
    MOBIPAY_GUID,
    AdditionalData,
    Initiation,
    LocalName,
    MerchantQr,
    crc16,
    encode,
    objects,
    parse,
)
from mobipay.kernel.errors import MobipayError

# Public payloads with their CRCs as published (the CRC is the last 4 characters).
KUNTHEAS_1FF2 = ("00020101021252044131153137210116372101160123456789ABCDE6016Banteay Meanchey5913Kuntheas Shop"
                 "5802KH540510.005303840621201081234567863041FF2")  # phannaly/emv-qr-code's tests and README (KHQR)
PROMPTPAY_9B3B = ("00020101021129370016A000000677010111011300669245317755802TH54076000.00530376463049B3B")  # PromptPay
EMVCO_A13A = ("00020101021229300012D156000000000510A93FO3230Q31280012D15600000001030812345678520441115802CN"
              "5914BEST TRANSPORT6007BEIJING64200002ZH0104最佳运输0202北京540523.7253031565502016233030412340603***"
              "0708A60086670902ME91320016A0112233449988770708123456786304A13A")  # EMVCo QRCPS MPM's own example
MERCHANT_SHOP_A0BA = ("00020101021252044131153137210116372101160123456789ABCDE6010Phnom Penh5913Merchant Shop5802KH"
                      "540510.005303840622501081234567802090124444446304A0BA")  # phannaly/emv-qr-code README, later
PUBLIC = [KUNTHEAS_1FF2, PROMPTPAY_9B3B, EMVCO_A13A, MERCHANT_SHOP_A0BA]

MERCHANT = "mch_0192f3c4aa5b7c8d9e0f112233445566"
STORE = "str_0192f3c4aa5b7c8d9e0f112233445566"


def refused(payload: str) -> MobipayError:
    with pytest.raises(MobipayError) as info:
        parse(payload)
    return info.value


def code(payload: str) -> str:
    return refused(payload).code


def tlv(tag: str, value: str) -> str:
    return f"{tag}{len(value):02d}{value}"


def signed(body: str) -> str:
    """``body`` with its CRC field appended, as an encoder (ours or a broken one) would."""
    body += "6304"
    return body + f"{crc16(body.encode()):04X}"


def build(**tags: str | None) -> str:
    """A signed mobipay payload from the base fields, each replaceable (``t59="…"``) or removable (``t59=None``)."""
    fields: dict[str, str | None] = {
        "00": "01", "01": "12", "26": tlv("00", MOBIPAY_GUID) + tlv("01", MERCHANT) + tlv("02", STORE),
        "52": "5812", "53": "156", "54": "23.72", "58": "CN", "59": "BEST TRANSPORT", "60": "BEIJING",
        "62": tlv("01", "ord_1") + tlv("07", "T01"), "64": tlv("00", "ZH") + tlv("01", "最佳运输") + tlv("02", "北京"),
    }
    for key, value in tags.items():
        fields[key.removeprefix("t")] = value
    return signed("".join(tlv(tag, value) for tag, value in fields.items() if value is not None))


def dynamic(**overrides: Any) -> MerchantQr:
    fields: dict[str, Any] = {
        "initiation": Initiation.DYNAMIC, "merchant_id": MERCHANT, "store_id": STORE, "mcc": "5812",
        "name": "BEST TRANSPORT", "city": "BEIJING", "amount": 2372,
        "additional": AdditionalData(bill_number="ord_1", terminal_label="T01"),
        "local": LocalName("ZH", "最佳运输", "北京"),
    }
    return MerchantQr(**(fields | overrides))


# --- the CRC and the public vectors -------------------------------------------------------

def test_crc_is_ccitt_false_by_its_check_value() -> None:
    assert crc16(b"123456789") == 0x29B1  # the catalogue's check value of CRC-16/CCITT-FALSE (IBM-3740)
    assert crc16(b"") == 0xFFFF  # init 0xFFFF, no xorout


@pytest.mark.parametrize("payload", PUBLIC)
def test_public_payloads_carry_the_crc_we_compute(payload: str) -> None:
    body, written = payload[:-4], payload[-4:]
    assert body.endswith("6304")  # the CRC covers its own tag and length
    assert f"{crc16(body.encode('utf-8')):04X}" == written


def test_the_emvco_example_counts_characters_not_bytes() -> None:
    top = objects(EMVCO_A13A)
    assert objects(top["64"]) == {"00": "ZH", "01": "最佳运输", "02": "北京"}  # 64 is 20 characters (32 bytes)
    assert objects(top["62"]) == {"03": "1234", "06": "***", "07": "A6008667", "09": "ME"}
    assert top["54"] == "23.72" and top["53"] == "156" and top["63"] == "A13A"


@pytest.mark.parametrize("payload", PUBLIC)
def test_other_schemes_codes_are_not_ours(payload: str) -> None:
    assert code(payload) == "QR_NOT_OURS"  # sound codes, but no cn.mobipay account template


# --- encode and parse --------------------------------------------------------------------

def test_a_dynamic_code_reads_back_and_is_laid_out_as_emv_says() -> None:
    qr = dynamic()
    payload = encode(qr)
    assert parse(payload) == qr
    top = objects(payload)
    assert next(iter(top)) == "00" and list(top)[-1] == "63" and payload[-8:-4] == "6304"
    assert top["01"] == "12" and top["54"] == "23.72" and top["53"] == "156" and top["58"] == "CN"
    assert objects(top["26"]) == {"00": MOBIPAY_GUID, "01": MERCHANT, "02": STORE}
    assert objects(top["64"]) == {"00": "ZH", "01": "最佳运输", "02": "北京"}
    assert payload == build()  # the hand-built layout above is the encoder's


def test_a_static_code_has_no_amount_and_the_payer_types_it() -> None:
    qr = MerchantQr(Initiation.STATIC, MERCHANT, "5411", "HUAXIN MART", "SHANGHAI", store_id=STORE)
    payload = encode(qr)
    assert "54" not in objects(payload) and "62" not in objects(payload) and objects(payload)["01"] == "11"
    assert parse(payload) == qr
    fixed = MerchantQr(Initiation.STATIC, MERCHANT, "5411", "HUAXIN MART", "SHANGHAI", amount=500)  # a fixed price
    assert objects(encode(fixed))["54"] == "5.00" and parse(encode(fixed)) == fixed


@pytest.mark.parametrize(("text", "fen"), [("23.72", 2372), ("23.7", 2370), ("23", 2300), ("0.01", 1),
                                            ("9999999999.99", 999_999_999_999)])
def test_amounts_are_yuan_text_read_as_integer_fen(text: str, fen: int) -> None:
    assert parse(build(t54=text)).amount == fen


ans = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1)
ids = st.from_regex(r"[A-Za-z0-9_.\-]{1,36}", fullmatch=True)
han = st.text(st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF), min_size=1)


@st.composite
def merchant_codes(draw: st.DrawFn) -> MerchantQr:
    initiation = draw(st.sampled_from(Initiation))
    amounts = st.integers(1, 999_999_999_999)
    return MerchantQr(
        initiation=initiation, merchant_id=draw(ids), store_id=draw(st.none() | ids),
        mcc=draw(st.from_regex(r"[0-9]{4}", fullmatch=True)),
        name=draw(ans.filter(lambda s: len(s) <= 25)), city=draw(ans.filter(lambda s: len(s) <= 15)),
        amount=draw(amounts if initiation is Initiation.DYNAMIC else st.none() | amounts),
        additional=AdditionalData(*(draw(st.none() | ans.filter(lambda s: len(s) <= 25)) for _ in range(3))),
        local=draw(st.none() | st.builds(LocalName, st.sampled_from(["ZH", "zh", "EN"]),
                                         han.filter(lambda s: len(s) <= 25),
                                         st.none() | han.filter(lambda s: len(s) <= 15))),
    )


@given(merchant_codes())
def test_any_valid_code_encodes_then_parses_to_the_same(qr: MerchantQr) -> None:
    payload = encode(qr)
    assert parse(payload) == qr
    assert len(payload) <= 512


@given(merchant_codes().map(lambda qr: MerchantQr(**{**_fields(qr), "local": None})), st.data())
def test_one_character_changed_anywhere_is_refused(qr: MerchantQr, data: st.DataObject) -> None:
    payload = encode(qr)  # all ASCII without template 64: one character is one byte, a burst CRC-16 always detects
    at = data.draw(st.integers(0, len(payload) - 1))
    other = data.draw(st.characters(min_codepoint=0x20, max_codepoint=0x7E).filter(lambda c: c != payload[at]))
    with pytest.raises(MobipayError):
        parse(payload[:at] + other + payload[at + 1:])


def _fields(qr: MerchantQr) -> dict[str, Any]:
    return {name: getattr(qr, name) for name in MerchantQr.__dataclass_fields__}


# --- refusals ----------------------------------------------------------------------------

def test_a_damaged_code_is_a_bad_crc() -> None:
    payload = build()
    assert code(payload.replace("BEST", "BEXT")) == "QR_BAD_CRC"  # content changed after signing
    last = payload[-1]
    assert code(payload[:-1] + ("0" if last != "0" else "1")) == "QR_BAD_CRC"
    crc = payload[-4:]
    if crc.lower() != crc:
        assert code(payload[:-4] + crc.lower()) == "QR_BAD_CRC"  # 4 upper-case hex digits
    assert code(payload[:-4] + "12G4") == "QR_BAD_CRC"
    wrong_place = build(t59=None) + tlv("59", "BEST TRANSPORT")  # 63 not last
    assert code(wrong_place) == "QR_BAD_CRC"
    assert code(build()[:-8] + "6303ABC") == "QR_BAD_CRC"


def test_a_code_without_its_crc_misses_tag_63() -> None:
    unsigned = build()[:-8]
    error = refused(unsigned)
    assert (error.code, error.extra["tag"]) == ("QR_MISSING_TAG", "63")


@pytest.mark.parametrize("tag", MANDATORY)
def test_each_mandatory_tag_missing_is_named(tag: str) -> None:
    error = refused(build(**{f"t{tag}": None}))
    assert (error.code, error.extra["tag"]) == ("QR_MISSING_TAG", tag)
    assert tag in error.detail


def test_missing_sub_tags_are_named() -> None:
    no_merchant = build(t26=tlv("00", MOBIPAY_GUID) + tlv("02", STORE))
    assert (refused(no_merchant).code, refused(no_merchant).extra["tag"]) == ("QR_MISSING_TAG", "26.01")
    no_name = build(t64=tlv("00", "ZH") + tlv("02", "北京"))
    assert (refused(no_name).code, refused(no_name).extra["tag"]) == ("QR_MISSING_TAG", "64.01")
    no_language = build(t64=tlv("01", "最佳运输"))
    assert refused(no_language).extra["tag"] == "64.00"


def test_lengths_that_are_not_digits_or_run_past_the_end() -> None:
    good = build()
    assert code(good[:-3]) == "QR_BAD_LENGTH"  # the CRC says 4 characters, 1 is left
    assert code(good[:-5]) == "QR_BAD_LENGTH"  # "63" and one length digit
    assert code(good[:-7]) == "QR_BAD_TAG"  # half a tag
    assert code(signed("000201010212" + "59AB" + "BEST")) == "QR_BAD_LENGTH"
    assert code(signed("0002010102125900")) == "QR_BAD_LENGTH"  # lengths are 01 to 99
    assert code(signed("00020101021259２５BEST")) == "QR_BAD_LENGTH"  # full-width digits are not digits
    assert code(build(t26=tlv("00", MOBIPAY_GUID) + "0140mch_1")) == "QR_BAD_LENGTH"  # inside a template
    assert code(build(t62="0109ord_1")) == "QR_BAD_LENGTH"
    assert code("0" * 513) == "QR_BAD_LENGTH"  # longer than any EMV code


def test_a_tag_that_is_not_two_digits() -> None:
    assert code(signed("0002015A04BEST")) == "QR_BAD_TAG"
    assert code(build(t62="X105ord_1")) == "QR_BAD_TAG"


def test_duplicate_tags_are_refused() -> None:
    unsigned = build()[:-8]
    assert code(signed(unsigned + tlv("59", "OTHER NAME"))) == "QR_DUPLICATE_TAG"
    assert code(build(t62=tlv("01", "ord_1") + tlv("01", "ord_2"))) == "QR_DUPLICATE_TAG"
    two_accounts = build(t27=tlv("00", MOBIPAY_GUID) + tlv("01", "mch_other"))
    assert code(two_accounts) == "QR_DUPLICATE_TAG"  # which merchant would be paid?


def test_a_dynamic_code_needs_a_good_amount() -> None:
    assert code(build(t54=None)) == "QR_AMOUNT_REQUIRED"
    for bad in ("23.725", "-1", "0", "0.00", "1e3", "23,72", "２３", ".5", "23.", " 23", "99999999999.00"):
        assert code(build(t54=bad)) == "QR_BAD_AMOUNT", bad
    assert code(build(t01="11", t54="abc")) == "QR_BAD_AMOUNT"  # a static code's amount is checked too


def test_only_yuan_is_accepted() -> None:
    for currency in ("840", "CNY", "15"):
        assert code(build(t53=currency)) == "QR_BAD_CURRENCY", currency


def test_a_code_without_our_account_template_is_not_ours() -> None:
    assert code(build(t26=tlv("00", "com.example.pay") + tlv("01", MERCHANT))) == "QR_NOT_OURS"
    assert code(build(t26=None, t02="4000123456789012")) == "QR_NOT_OURS"  # a card network's primitive account
    assert code(build(t26=None, t31=tlv("00", MOBIPAY_GUID.upper()) + tlv("01", MERCHANT))) == "QR_NOT_OURS"
    moved = build(t26=None, t40=tlv("00", MOBIPAY_GUID) + tlv("01", MERCHANT))
    assert parse(moved).merchant_id == MERCHANT  # any of 26-51 is ours when it names us


def test_too_long_values() -> None:
    assert code(build(t59="B" * 26)) == "QR_VALUE_TOO_LONG"
    assert parse(build(t59="B" * 25)).name == "B" * 25
    assert code(build(t60="C" * 16)) == "QR_VALUE_TOO_LONG"
    assert code(build(t64=tlv("00", "ZH") + tlv("01", "最" * 26))) == "QR_VALUE_TOO_LONG"
    assert code(build(t64=tlv("00", "ZH") + tlv("01", "最佳") + tlv("02", "北" * 16))) == "QR_VALUE_TOO_LONG"
    assert code(build(t62=tlv("01", "9" * 26))) == "QR_VALUE_TOO_LONG"


def test_values_out_of_form() -> None:
    assert code(build(t00="02")) == "QR_BAD_VALUE"
    assert code(build(t01="13")) == "QR_BAD_VALUE"
    assert code(build(t52="58A2")) == "QR_BAD_VALUE"
    assert code(build(t52="５８１２")) == "QR_BAD_VALUE"
    assert code(build(t58="cn")) == "QR_BAD_VALUE"
    assert code(build(t64=tlv("00", "Z1") + tlv("01", "最佳"))) == "QR_BAD_VALUE"
    assert code(build(t26=tlv("00", MOBIPAY_GUID) + tlv("01", "mch 1"))) == "QR_BAD_VALUE"
    assert code(signed(build(t00=None)[:-8] + tlv("00", "01"))) == "QR_BAD_VALUE"  # 00 comes first
    assert code("") == "QR_BAD_VALUE"
    assert code(build().replace("BEST", "BES\ud800")) == "QR_BAD_VALUE"  # a lone surrogate is no text a scanner sends


def test_the_encoder_refuses_what_the_parser_would() -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"amount": None}, "QR_AMOUNT_REQUIRED"), ({"amount": 0}, "QR_BAD_AMOUNT"),
        ({"amount": 23.72}, "QR_BAD_AMOUNT"), ({"amount": True}, "QR_BAD_AMOUNT"),
        ({"amount": 1_000_000_000_000}, "QR_BAD_AMOUNT"),  # 10000000000.00 is 14 characters
        ({"currency": "840"}, "QR_BAD_CURRENCY"), ({"name": "B" * 26}, "QR_VALUE_TOO_LONG"),
        ({"city": "C" * 16}, "QR_VALUE_TOO_LONG"), ({"name": "最佳运输"}, "QR_BAD_VALUE"),  # 59 is Latin: use 64
        ({"name": ""}, "QR_BAD_VALUE"), ({"mcc": "581"}, "QR_BAD_VALUE"), ({"country": "China"}, "QR_BAD_VALUE"),
        ({"merchant_id": "m" * 37}, "QR_BAD_VALUE"), ({"local": LocalName("ZH", "最佳\n运输")}, "QR_BAD_VALUE"),
        ({"additional": AdditionalData(bill_number="9" * 26)}, "QR_VALUE_TOO_LONG"),
    ]
    for overrides, expected in cases:
        with pytest.raises(MobipayError) as info:
            encode(dynamic(**overrides))
        assert info.value.code == expected, overrides


def test_every_error_has_a_stable_code_a_status_and_a_sentence() -> None:
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, MobipayError)
               and c is not MobipayError]
    reading = {"QR_BAD_CRC", "QR_MISSING_TAG", "QR_BAD_TAG", "QR_BAD_LENGTH", "QR_DUPLICATE_TAG", "QR_BAD_VALUE",
               "QR_VALUE_TOO_LONG", "QR_AMOUNT_REQUIRED", "QR_BAD_AMOUNT", "QR_BAD_CURRENCY", "QR_NOT_OURS"}
    paying = {"QR_MERCHANT_UNKNOWN", "QR_MERCHANT_NOT_ACTIVE", "QR_STORE_NOT_FOUND", "QR_TRADE_NOT_FOUND",
              "QR_TRADE_EXPIRED", "QR_TRADE_CLOSED", "QR_TRADE_PAID", "QR_AMOUNT_FIXED", "QR_AMOUNT_MISSING",
              "QR_SCAN_MISMATCH", "QR_STATIC_DAILY_LIMIT", "QR_DYNAMIC_DAILY_LIMIT"}
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes))  # each code once
    assert {c for c in codes if c.startswith("QR_")} == reading | paying  # (the terminals' codes are theirs)
    for cls in classes:
        # a code that cannot be read is the scanner's problem (400), one mobipay will not pay 422; a locked
        # payment-code device 423
        assert cls.status in ((400, 422) if cls.code in reading else (400, 401, 403, 404, 409, 422, 423, 429)), cls
        assert cls.title[0].isupper() and " " in cls.title and not cls.title.endswith("."), cls
