"""The payment code (付款码): the RFC 4226/6238 vectors through our primitive, the 18-digit layout,
the 60 s validity and every refusal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor.totp import TOTP
from hypothesis import given
from hypothesis import strategies as st

from mobipay.instore import paycode
from mobipay.instore.paycode import LENGTH, PREFIX, STEP, generate, otp, parse, step_of, verify
from mobipay.kernel.errors import MobipayError

RFC_SECRET = b"12345678901234567890"  # RFC 4226 appendix D and RFC 6238 appendix B (SHA-1)
# RFC 4226 appendix D: count -> the 31-bit truncated value in decimal; its last 6 digits are the
# RFC's HOTP column, its last 8 digits what an 8-digit HOTP gives.
RFC_4226 = [1284755224, 1094287082, 137359152, 1726969429, 1640338314,
            868254676, 1918287922, 82162583, 673399871, 645520489]
RFC_4226_HOTP = ["755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"]
# RFC 6238 appendix B, SHA-1, 8 digits, step 30 s.
RFC_6238 = [(59, "94287082"), (1111111109, "07081804"), (1111111111, "14050471"),
            (1234567890, "89005924"), (2000000000, "69279037"), (20000000000, "65353130")]

SECRET = bytes(range(1, 21))  # 20 bytes, as the platform provisions
OTHER = bytes(range(101, 121))
DEVICE = "00421337"
AT = datetime(2026, 11, 25, 2, 30, tzinfo=UTC)  # 10:30 Beijing, Unix 1795573800: a step's first second


def refused(call: object, *args: object, **kwargs: object) -> str:
    with pytest.raises(MobipayError) as info:
        call(*args, **kwargs)  # type: ignore[operator]
    return info.value.code


# ---------------------------------------------------------------------- the RFC vectors


@pytest.mark.parametrize("count", range(10))
def test_rfc_4226_appendix_d(count: int) -> None:
    assert otp(RFC_SECRET, count) == f"{RFC_4226[count] % 10**8:08d}"
    assert otp(RFC_SECRET, count)[-6:] == RFC_4226_HOTP[count]


@pytest.mark.parametrize(("unix", "expected"), RFC_6238)
def test_rfc_6238_appendix_b_sha1(unix: int, expected: str) -> None:
    at = datetime.fromtimestamp(unix, UTC)
    assert step_of(at) == unix // 30
    assert otp(RFC_SECRET, step_of(at)) == expected
    assert TOTP(RFC_SECRET, 8, SHA1(), 30).generate(unix).decode() == expected  # the library's TOTP agrees
    assert generate(RFC_SECRET, DEVICE, at) == PREFIX + DEVICE + expected


# ---------------------------------------------------------------------- the layout


def test_the_layout_is_prefix_device_and_password_in_18_ascii_digits() -> None:
    code = generate(SECRET, DEVICE, AT)
    assert len(code) == LENGTH == 18
    assert code.isascii() and code.isdigit()
    assert code.startswith("78") and code[2:10] == DEVICE
    assert code[10:] == otp(SECRET, step_of(AT))
    assert parse(code) == (DEVICE, code[10:])
    assert parse(code).device_no == DEVICE


def test_a_device_number_is_eight_ascii_digits() -> None:
    for bad in ("4213370", "004213370", "0042133a", "００421337", ""):
        with pytest.raises(ValueError, match="8 ASCII digits"):
            generate(SECRET, bad, AT)


def test_the_library_refuses_a_short_secret() -> None:
    with pytest.raises(ValueError, match="128 bits"):
        generate(b"too short", DEVICE, AT)


# ---------------------------------------------------------------------- validity


def test_accepted_when_made_and_59_s_later_in_the_step_it_was_made_in() -> None:
    code = generate(SECRET, DEVICE, AT)
    step = step_of(AT)
    for later in (0, 1, 29, 30, 45, 59):
        assert verify(SECRET, code, AT + timedelta(seconds=later)) == step, later
    assert verify(SECRET, code, AT + timedelta(seconds=59, microseconds=999_999)) == step


@pytest.mark.parametrize("later", [60, 61, 90, 300, 599])
def test_expired_after_60_s(later: int) -> None:
    code = generate(SECRET, DEVICE, AT)
    assert refused(verify, SECRET, code, AT + timedelta(seconds=later)) == "PAYCODE_EXPIRED"


def test_never_older_than_60_s_and_at_least_30_s_whatever_second_of_its_step_it_was_made() -> None:
    for offset in range(STEP):
        made = AT + timedelta(seconds=offset)
        code = generate(SECRET, DEVICE, made)
        assert verify(SECRET, code, made + timedelta(seconds=STEP - 1)) == step_of(AT)  # 29 s later, always
        assert verify(SECRET, code, AT + timedelta(seconds=59)) == step_of(AT)
        assert refused(verify, SECRET, code, AT + timedelta(seconds=60)) == "PAYCODE_EXPIRED"


def test_a_phone_clock_up_to_10_s_ahead_is_accepted_further_is_not() -> None:
    phone = AT + timedelta(seconds=STEP)  # the phone is in the next step already
    code = generate(SECRET, DEVICE, phone)
    assert verify(SECRET, code, phone - timedelta(seconds=10)) == step_of(phone)
    assert verify(SECRET, code, phone - timedelta(seconds=1)) == step_of(phone)
    assert refused(verify, SECRET, code, phone - timedelta(seconds=11)) == "PAYCODE_INVALID"
    assert refused(verify, SECRET, code, phone - timedelta(seconds=10), drift=0) == "PAYCODE_INVALID"


def test_the_window_is_the_callers_to_narrow() -> None:
    code = generate(SECRET, DEVICE, AT)
    assert refused(verify, SECRET, code, AT + timedelta(seconds=STEP), window=0) == "PAYCODE_EXPIRED"


def test_a_code_far_older_than_the_lookback_reads_as_invalid() -> None:
    code = generate(SECRET, DEVICE, AT)
    assert refused(verify, SECRET, code, AT + timedelta(hours=1)) == "PAYCODE_INVALID"


def test_codes_of_successive_steps_are_told_apart_by_their_step() -> None:
    """The step is what the store records to use a code once: the next code of the device has another."""
    first = generate(SECRET, DEVICE, AT)
    second = generate(SECRET, DEVICE, AT + timedelta(seconds=STEP))
    now = AT + timedelta(seconds=STEP + 5)
    assert first != second
    assert verify(SECRET, second, now) == verify(SECRET, first, now) + 1


# ---------------------------------------------------------------------- refusals


def test_a_changed_digit_is_invalid() -> None:
    code = generate(SECRET, DEVICE, AT)
    for position in range(10, LENGTH):  # every digit of the password
        digit = str((int(code[position]) + 1) % 10)
        changed = code[:position] + digit + code[position + 1:]
        assert refused(verify, SECRET, changed, AT) == "PAYCODE_INVALID", position


def test_another_devices_secret_is_invalid() -> None:
    code = generate(SECRET, DEVICE, AT)
    assert refused(verify, OTHER, code, AT) == "PAYCODE_INVALID"
    assert refused(verify, OTHER, code, AT + timedelta(seconds=30)) == "PAYCODE_INVALID"


@pytest.mark.parametrize("code", [
    "", "78", "7800421337123456", "78004213371234567", "7800421337123456789",  # too short, too long
    "78004213371234567a", "78 0042133712345678", "780042133712345678\n", " 780042133712345678",
    "７８００４２１３３７１２３４５６７８",  # fullwidth digits
    "78004213371234567٣",  # an Arabic-Indic digit: str.isdigit says yes, we do not
])
def test_malformed(code: str) -> None:
    assert refused(parse, code) == "PAYCODE_MALFORMED"
    assert refused(verify, SECRET, code, AT) == "PAYCODE_MALFORMED"


@pytest.mark.parametrize("code", [
    "134567890123456789",  # WeChat Pay 10-15
    "284567890123456789",  # Alipay 25-30
    "624567890123456789",  # UnionPay
    "004567890123456789", "774567890123456789", "874567890123456789",
])
def test_another_wallets_code_is_not_ours(code: str) -> None:
    assert refused(parse, code) == "PAYCODE_NOT_OURS"
    assert refused(verify, SECRET, code, AT) == "PAYCODE_NOT_OURS"


def test_the_refusals_are_the_instore_errors() -> None:
    with pytest.raises(paycode.errors.PaycodeMalformed):
        parse("x")
    with pytest.raises(paycode.errors.PaycodeNotOurs):
        parse("1" * 18)


# ---------------------------------------------------------------------- properties

devices = st.text(alphabet="0123456789", min_size=8, max_size=8)
secrets = st.binary(min_size=16, max_size=64)
moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))


@given(secrets, devices, moments)
def test_any_generated_code_parses_back_to_its_device_and_verifies_then(secret: bytes, device: str,
                                                                         at: datetime) -> None:
    code = generate(secret, device, at)
    assert len(code) == LENGTH and code.startswith(PREFIX) and code.isascii() and code.isdigit()
    assert parse(code).device_no == device
    assert verify(secret, code, at) == step_of(at)


@given(st.one_of(st.text(max_size=24), st.from_regex(r"[0-9]{18}", fullmatch=True),
                 st.from_regex(r"78[0-9]{16}", fullmatch=True)))
def test_any_text_is_read_or_refused_with_a_payment_code_error(text: str) -> None:
    readable = len(text) == LENGTH and text.isascii() and text.isdigit()
    if readable and text.startswith(PREFIX):
        assert parse(text) == (text[2:10], text[10:])
    else:
        assert refused(parse, text) == ("PAYCODE_NOT_OURS" if readable else "PAYCODE_MALFORMED")
