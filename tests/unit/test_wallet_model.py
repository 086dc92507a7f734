"""Wallet rules: numbers, operators, PINs, identity cards, bank cards, masking."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mobipay.kernel.errors import MobipayError
from mobipay.kernel.msisdn import mask_msisdn, mask_name, normalize_msisdn
from mobipay.wallet.model import (
    NumberSegments,
    Operator,
    check_card_number,
    check_id_card,
    check_pin,
    id_card_check_char,
)
from mobipay.wallet.reference_data import number_segments


@pytest.mark.parametrize("raw", ["13800138000", "+86 138 0013 8000", "0086 13800138000", "8613800138000",
                                 "+86-138-0013-8000", "(+86) 138 0013 8000", "１３８００１３８０００"])
def test_common_spellings_normalise_to_e164(raw: str) -> None:
    assert normalize_msisdn(raw) == "+8613800138000"


@pytest.mark.parametrize("raw", ["", "1380013800", "138001380001", "23800138000", "12800138000", "+1 415 555 0100",
                                 "1380013800a", "+86 010 1234 5678", "٣٨٠٠١٣٨٠٠٠", None, 13800138000])
def test_anything_else_is_invalid_msisdn(raw: object) -> None:
    with pytest.raises(MobipayError) as info:
        normalize_msisdn(raw)
    assert info.value.code == "INVALID_MSISDN" and info.value.field == "msisdn"


@pytest.mark.parametrize(("number", "operator", "virtual"), [
    ("+8613800138000", Operator.CHINA_MOBILE, False),
    ("+8613490001234", Operator.CHINA_TELECOM, False),  # 1349: the satellite block inside 134
    ("+8618600186000", Operator.CHINA_UNICOM, False),
    ("+8618900189000", Operator.CHINA_TELECOM, False),
    ("+8619200192000", Operator.CHINA_BROADNET, False),
    ("+8617050001234", Operator.CHINA_MOBILE, True),
    ("+8617090001234", Operator.CHINA_UNICOM, True),
    ("+8616200001234", Operator.CHINA_TELECOM, True),
])
def test_operator_comes_from_the_segment_table(number: str, operator: Operator, virtual: bool) -> None:
    segment = number_segments().lookup(number)
    assert (segment.operator, segment.virtual) == (operator, virtual)


def test_unknown_segment_is_refused() -> None:
    with pytest.raises(MobipayError) as info:
        number_segments().lookup("+8614000140000")
    assert info.value.code == "UNKNOWN_NUMBER_SEGMENT"


def test_segment_table_rejects_bad_rows() -> None:
    assert len(NumberSegments.from_csv("prefix,operator,virtual\n138,china_mobile,0\n")) == 1
    with pytest.raises(ValueError, match="prefix"):
        NumberSegments.from_csv("prefix,operator,virtual\n38,china_mobile,0\n")
    with pytest.raises(ValueError, match="nowhere"):
        NumberSegments.from_csv("prefix,operator,virtual\n138,nowhere,0\n")


@pytest.mark.parametrize("pin", ["000000", "999999", "123456", "654321", "345678", "121212", "123123",
                                 "138000"])
def test_weak_pins_are_refused(pin: str) -> None:
    with pytest.raises(MobipayError) as info:
        check_pin(pin, "+8613912138000")
    assert info.value.code == "WEAK_PIN"


@pytest.mark.parametrize("pin", ["12345", "1234567", "12a456", "１２３４５６", 135790, None])
def test_malformed_pins_are_invalid(pin: object) -> None:
    with pytest.raises(MobipayError) as info:
        check_pin(pin)
    assert info.value.code == "INVALID_PIN"


def test_a_good_pin_passes() -> None:
    assert check_pin("739154", "+8613800138000") == "739154"


def test_id_card_checksum_date_and_region() -> None:
    assert check_id_card("11010519491231002x") == "11010519491231002X"  # the standard's own example
    base = "43010219900307123"
    valid = base + id_card_check_char(base)
    assert check_id_card(valid) == valid
    wrong = base + ("0" if valid[-1] != "0" else "1")
    for bad in (wrong, "4301021990030712", "9301021990030712" + "3X", "430102199002301234",
                "43010220990307123" + id_card_check_char("43010220990307123")):
        with pytest.raises(MobipayError) as info:
            check_id_card(bad, today=date(2026, 11, 25))
        assert info.value.code == "INVALID_ID_CARD"


@given(st.text(alphabet="0123456789", min_size=17, max_size=17).filter(lambda s: s[0] in "12345678"))
def test_check_char_always_validates_when_the_date_is_real(first17: str) -> None:
    number = first17 + id_card_check_char(first17)
    try:
        date(int(first17[6:10]), int(first17[10:12]), int(first17[12:14]))
    except ValueError:
        return
    if not 1900 <= int(first17[6:10]) <= 2025:
        return
    assert check_id_card(number) == number


def test_bank_card_luhn() -> None:
    assert check_card_number("6011 1111 1111 1117") == "6011111111111117"
    assert check_card_number("3530111333300000") == "3530111333300000"
    assert check_card_number("4111 1111 1111 1111") == "4111111111111111"
    for bad in ("4111 1111 1111 1112", "4111", "41111111111111111111", "4111-1111-1111-1111"):
        with pytest.raises(MobipayError) as info:
            check_card_number(bad)
        assert info.value.code == "INVALID_CARD_NUMBER"


def test_masking() -> None:
    assert mask_msisdn("+8613800138000") == "138****8000"
    assert mask_name("王小明") == "**明"
    assert mask_name("李明") == "*明"
    assert mask_name("明") == "*"
