"""The payment-code pieces without a database: the sealing of device secrets at rest
(AES-256-GCM, bound to its row, the key named), and the phone applet SIMULATOR (written from
the published description) agreeing with the platform's model, keeping its clock offset, and
drawing codes a scanner reads back (QR and Code 128, with zxing-cpp)."""

from __future__ import annotations

import base64
import io
import os
from datetime import UTC, datetime, timedelta

import pytest
import zxingcpp
from PIL import Image

from mobipay.instore import errors, paycode
from mobipay.instore.micropay import SecretBox
from mobipay.simulators.paycode_device import PaycodeApplet

SECRET = b"12345678901234567890"  # RFC 4226 / 6238's test secret
AT = datetime(2026, 6, 1, 2, 0, 7, tzinfo=UTC)


def test_a_sealed_secret_opens_on_its_own_row_with_its_own_key() -> None:
    box = SecretBox(os.urandom(32))
    sealed = box.seal(SECRET, "pcd_1|01234567|usr_1")
    assert SECRET not in base64.b64decode(sealed) and len(base64.b64decode(sealed)) == 12 + 20 + 16
    assert box.seal(SECRET, "pcd_1|01234567|usr_1") != sealed  # a fresh nonce each time
    assert box.open(sealed, box.key_id, "pcd_1|01234567|usr_1") == SECRET
    with pytest.raises(RuntimeError, match="altered"):
        box.open(sealed, box.key_id, "pcd_2|01234567|usr_1")  # copied onto another row
    other = SecretBox(os.urandom(32))
    with pytest.raises(RuntimeError, match="sealed with key"):
        other.open(sealed, box.key_id, "pcd_1|01234567|usr_1")  # started with another key: said, not "wrong code"


def test_the_key_comes_from_settings() -> None:
    derived = SecretBox.from_settings("", "a-secret-key-of-the-platform-that-is-long")
    assert derived.key_id == SecretBox.from_settings("", "a-secret-key-of-the-platform-that-is-long").key_id
    assert derived.key_id != SecretBox.from_settings("", "another-secret-key-of-the-platform").key_id
    key = os.urandom(32)
    assert SecretBox.from_settings(base64.b64encode(key).decode(), "ignored").key_id == SecretBox(key).key_id
    for bad in ("not base64!", base64.b64encode(os.urandom(16)).decode()):
        with pytest.raises(ValueError, match="32 bytes"):
            SecretBox.from_settings(bad, "x")


def test_the_applet_makes_the_platforms_codes() -> None:
    device = PaycodeApplet(SECRET, "01234567")
    for seconds in range(0, 24 * 3600, 997):
        at = AT + timedelta(seconds=seconds)
        code = device.code_at(at)
        assert code == paycode.generate(SECRET, "01234567", at)
        assert paycode.verify(SECRET, code, at) == paycode.step_of(at)
    # RFC 6238 appendix B, T = 59 s: 94287082 (SHA-1, 8 digits)
    assert PaycodeApplet(SECRET, "00000000").code_at(datetime(1970, 1, 1, 0, 0, 59, tzinfo=UTC)) == \
        "78" + "00000000" + "94287082"


def test_the_applet_keeps_its_offset_to_the_platforms_clock() -> None:
    phone_now = AT + timedelta(seconds=437)  # the phone's clock is 437 s fast
    answer = {"secret": base64.b32encode(SECRET).decode().rstrip("="), "device_no": "76543210",
              "server_time": int(AT.timestamp())}
    device = PaycodeApplet.provisioned(answer, clock=lambda: phone_now)
    assert device.secret == SECRET and device.offset == timedelta(seconds=-437)
    assert device.platform_time() == AT
    assert paycode.verify(SECRET, device.code(), AT) == paycode.step_of(AT)  # accepted despite the fast clock
    naive = PaycodeApplet(SECRET, "76543210", clock=lambda: phone_now)  # one that never synced
    with pytest.raises(errors.PaycodeInvalid):
        paycode.verify(SECRET, naive.code(), AT)
    device.sync(int(AT.timestamp()) + 30)  # online again: the platform says 30 s later
    assert device.offset == timedelta(seconds=-407)


def test_the_code_is_drawn_as_a_qr_code_and_a_code_128_barcode() -> None:
    device = PaycodeApplet(SECRET, "01234567")
    code = device.code_at(AT)
    assert device.shown(code) == " ".join((code[:4], code[4:8], code[8:12], code[12:16], code[16:]))
    [qr] = zxingcpp.read_barcodes(Image.open(io.BytesIO(device.qr_png(code))))
    assert (qr.text, qr.format) == (code, zxingcpp.BarcodeFormat.QRCode)
    [bar] = zxingcpp.read_barcodes(Image.open(io.BytesIO(device.barcode_png(code))))
    assert (bar.text, bar.format) == (code, zxingcpp.BarcodeFormat.Code128)
    assert device.qr_svg(code).lstrip().startswith("<?xml") and "<svg" in device.qr_svg(code)
    assert "<svg" in device.barcode_svg(code)
