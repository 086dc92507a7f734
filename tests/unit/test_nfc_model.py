"""The NFC model without I/O: key derivation (SP 800-108 over AES-CMAC, checked against a
hand-built CMAC), the cryptogram's input layout and docs/instore.md's worked vector, RFC 4493's
CMAC vector, tampering, the ATC window and the limited-use key's limits."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.cmac import CMAC

from mobipay.instore import nfc
from mobipay.kernel.errors import MobipayError

IMK = bytes.fromhex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
TOKEN = "nft_00000000000000000000000000000001"
TERMINAL = "trm_0000000000000000000000000000001"
AT = datetime(2026, 11, 25, 2, 30, tzinfo=UTC)  # 10:30 in Beijing: the date is 261125
DATA_HEX = ("01" "000000002372" "0156" "261125" "1a2b3c4d" "0007" "00" "23"
            + TERMINAL.encode().hex())


def _cmac(key: bytes, data: bytes) -> bytes:
    mac = CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


def test_cmac_is_rfc_4493() -> None:
    key = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
    assert _cmac(key, bytes.fromhex("6bc1bee22e409f96e93d7e117393172a")).hex() == "070a16b46b4d4144f79bdd9dd04a287c"


def test_key_derivation_is_sp800_108_counter_mode_over_cmac() -> None:
    """K = CMAC(key, 00000001 | label | 00 | context | 00000080), as docs/instore.md writes it."""
    mk = nfc.token_master_key(IMK, TOKEN)
    assert mk == _cmac(IMK, b"\x00\x00\x00\x01MOBIPAY-NFC-MK\x00" + TOKEN.encode() + b"\x00\x00\x00\x80")
    assert mk.hex() == "df60a9797d374bc54cd59ecbef57e164"
    luk = nfc.limited_use_key(mk, TOKEN, 1)
    assert luk == _cmac(mk, b"\x00\x00\x00\x01MOBIPAY-NFC-LUK\x00" + TOKEN.encode() + b"\x00\x00\x00\x01"
                        + b"\x00\x00\x00\x80")
    assert luk.hex() == "c6a14b1643cfbc2703fc7faa18979604"
    assert nfc.limited_use_key(mk, TOKEN, 2) != luk  # each key its own
    assert nfc.token_master_key(IMK, TOKEN.replace("1", "2")) != mk  # each token its own
    assert nfc.issuer_master_key(b"a") != nfc.issuer_master_key(b"b") and len(nfc.issuer_master_key(b"a")) == 32


def _tap(**changes: object) -> nfc.Tap:
    tap = nfc.Tap(TOKEN, 1, 7, 2372, "156", AT, "1A2B3C4D", 0, TERMINAL, "D8DBE90358C52D53")
    return replace(tap, **changes)  # type: ignore[arg-type]


def test_worked_vector() -> None:
    data = nfc.tap_data(amount=2372, currency="156", day=date(2026, 11, 25), unpredictable_number="1A2B3C4D", atc=7,
                        cvm=0, terminal_id=TERMINAL)
    assert data.hex() == DATA_HEX and len(data) == 55
    luk = nfc.limited_use_key(nfc.token_master_key(IMK, TOKEN), TOKEN, 1)
    assert nfc.cryptogram(luk, data) == "D8DBE90358C52D53" == _cmac(luk, data)[:8].hex().upper()
    assert nfc.cryptogram_valid(luk, _tap())
    assert nfc.cryptogram_valid(luk, _tap(cryptogram="d8dbe90358c52d53"))  # hex in either case


@pytest.mark.parametrize("changes", [
    {"amount": 2373}, {"atc": 8}, {"terminal_id": TERMINAL[:-1] + "2"}, {"tapped_at": AT + timedelta(days=1)},
    {"unpredictable_number": "1A2B3C4E"}, {"cvm": 1}, {"cryptogram": "D8DBE90358C52D54"}, {"key_seq": 1},
])
def test_any_change_breaks_the_cryptogram(changes: dict[str, object]) -> None:
    luk = nfc.limited_use_key(nfc.token_master_key(IMK, TOKEN), TOKEN, 1)
    other = nfc.limited_use_key(nfc.token_master_key(IMK, TOKEN), TOKEN, 2)
    if changes == {"key_seq": 1}:  # the same tap under another key of the token
        assert not nfc.cryptogram_valid(other, _tap())
    else:
        assert not nfc.cryptogram_valid(luk, _tap(**changes))


def test_the_date_is_beijing_s() -> None:
    late = datetime(2026, 11, 24, 16, 30, tzinfo=UTC)  # 00:30 on the 25th in Beijing
    assert _tap(tapped_at=late).day == date(2026, 11, 25)


@pytest.mark.parametrize(("changes", "what"), [
    ({"atc": 70000}, "atc"), ({"amount": 0}, "amount"), ({"currency": "840"}, "currency"),
    ({"unpredictable_number": "XYZ12345"}, "unpredictable"), ({"cryptogram": "12"}, "cryptogram"),
    ({"cvm": 3}, "cvm"), ({"key_seq": 0}, "key_seq"),
])
def test_malformed(changes: dict[str, object], what: str) -> None:
    with pytest.raises(MobipayError) as caught:
        nfc.check_shape(_tap(**changes))
    assert caught.value.code == "NFC_TAP_MALFORMED" and what in caught.value.detail


def _code(fn: object, *args: object, **kwargs: object) -> str:
    try:
        fn(*args, **kwargs)  # type: ignore[operator]
    except MobipayError as exc:
        return exc.code
    return "ok"


def test_atc_rules() -> None:
    w = 500
    assert _code(nfc.check_atc, 11, 10, online=True, used=False, window=w) == "ok"
    assert _code(nfc.check_atc, 10, 10, online=True, used=True, window=w) == "NFC_ATC_REPLAYED"
    assert _code(nfc.check_atc, 9, 10, online=True, used=False, window=w) == "NFC_ATC_OUT_OF_WINDOW"  # decreasing
    assert _code(nfc.check_atc, 511, 10, online=True, used=False, window=w) == "NFC_ATC_OUT_OF_WINDOW"  # a jump
    assert _code(nfc.check_atc, 510, 10, online=True, used=False, window=w) == "ok"
    # offline taps arrive late and out of order: below the highest seen is fine, within the window
    assert _code(nfc.check_atc, 5, 10, online=False, used=False, window=w) == "ok"
    assert _code(nfc.check_atc, 5, 10, online=False, used=True, window=w) == "NFC_ATC_REPLAYED"
    assert _code(nfc.check_atc, 5, 600, online=False, used=False, window=w) == "NFC_ATC_OUT_OF_WINDOW"


def test_key_limits() -> None:
    key = nfc.KeyState(1, 3, 10_000, AT - timedelta(hours=1), AT + timedelta(days=1), None, 0, 0)
    tap = _tap()
    assert _code(nfc.check_key, key, tap, current_seq=1, online=True, now=AT) == "ok"
    assert _code(nfc.check_key, replace(key, used_taps=3), tap, current_seq=1, online=True, now=AT) == \
        "NFC_KEY_EXHAUSTED"
    assert _code(nfc.check_key, replace(key, used_amount=8000), tap, current_seq=1, online=True, now=AT) == \
        "NFC_KEY_EXHAUSTED"  # 80 + 23.72 > 100 CNY
    assert _code(nfc.check_key, key, tap, current_seq=1, online=False, now=AT, taps_before=3) == "NFC_KEY_EXHAUSTED"
    assert _code(nfc.check_key, key, tap, current_seq=1, online=True, now=AT + timedelta(days=1)) == "NFC_KEY_EXPIRED"
    assert _code(nfc.check_key, key, tap, current_seq=2, online=True, now=AT) == "NFC_KEY_EXPIRED"  # replaced
    # offline: a replaced key still pays the taps it made before it was replaced
    retired = replace(key, retired_at=AT + timedelta(hours=1))
    assert _code(nfc.check_key, retired, tap, current_seq=2, online=False, now=AT + timedelta(days=2)) == "ok"
    assert _code(nfc.check_key, retired, _tap(tapped_at=AT + timedelta(hours=2)), current_seq=2, online=False,
                 now=AT + timedelta(days=2)) == "NFC_KEY_EXPIRED"
    assert _code(nfc.check_key, None, tap, current_seq=1, online=True, now=AT) == "NFC_CRYPTOGRAM_INVALID"
