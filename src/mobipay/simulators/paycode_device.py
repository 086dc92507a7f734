"""SIMULATOR of the wallet app's payment-code applet (付款码): what the phone does offline.

It holds what ``POST /v1/instore/paycode/devices`` provisioned (the 20-byte secret in base32,
the 8-digit device number, the platform's clock), keeps the offset between its own clock and
the platform's (learned whenever it is online: the provisioning answer and the device list
carry ``server_time``), and shows the code of the current 30 s step, as docs/instore.md
publishes it: ``78`` + device number + the 8-digit TOTP (RFC 6238, HMAC-SHA1, 30 s steps
from the Unix epoch). It is written from the published description with ``cryptography``'s
TOTP, not from the platform's ``instore/paycode.py``, so the tests check one against the other.

The code is drawn as the till reads it: a QR code (``segno``, error correction M) and a
Code 128 barcode (``python-barcode``: 18 digits are 9 symbols of its numeric set C), each with
the digits under it. Usage for a person: ``python -m mobipay.simulators.paycode_device
--secret BASE32 --device-no 12345678 [--offset 0] [--png code.png]`` prints the current code.
"""

from __future__ import annotations

import argparse
import base64
import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import segno
from barcode import Code128  # type: ignore[import-untyped]  # python-barcode ships no type hints
from barcode.writer import ImageWriter, SVGWriter  # type: ignore[import-untyped]
from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor.totp import TOTP

PREFIX = "78"
DIGITS = 8
PERIOD = 30


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class PaycodeApplet:
    """One phone's applet: its secret, device number, clock and offset to the platform's clock."""

    secret: bytes
    device_no: str
    offset: timedelta = timedelta(0)  # platform's clock minus the phone's
    clock: Callable[[], datetime] = field(default=_now)  # the phone's own clock (a test's may run fast or slow)

    @classmethod
    def provisioned(cls, answer: Mapping[str, Any], *, clock: Callable[[], datetime] = _now) -> PaycodeApplet:
        """The applet from the provisioning answer (``secret`` base32 without padding,
        ``device_no``, ``server_time``), its offset taken from the answer's clock."""
        secret = str(answer["secret"])
        raw = base64.b32decode(secret + "=" * (-len(secret) % 8))
        applet = cls(raw, str(answer["device_no"]), clock=clock)
        applet.sync(int(answer["server_time"]))
        return applet

    def sync(self, server_time: int) -> None:
        """Keep the platform's clock (Unix seconds from any answer carrying ``server_time``)."""
        self.offset = timedelta(seconds=server_time - self.clock().timestamp())

    def platform_time(self) -> datetime:
        """What the applet believes the platform's clock reads now."""
        return self.clock() + self.offset

    def code(self) -> str:
        """The code to show now: 18 digits, offline."""
        return self.code_at(self.platform_time())

    def code_at(self, at: datetime) -> str:
        totp = TOTP(self.secret, DIGITS, SHA1(), PERIOD)  # noqa: S303 - RFC 6238's HMAC-SHA1
        return PREFIX + self.device_no + totp.generate(int(at.timestamp())).decode("ascii")

    @staticmethod
    def shown(code: str) -> str:
        """The digits as printed under the codes, in groups of four (the scanned text has no spaces)."""
        return " ".join(code[i:i + 4] for i in range(0, len(code), 4))

    # ------------------------------------------------------------------ drawings

    @staticmethod
    def qr_svg(code: str) -> str:
        out = io.BytesIO()
        segno.make_qr(code, error="m", boost_error=False).save(out, kind="svg", scale=6, border=4)
        return out.getvalue().decode()

    @staticmethod
    def qr_png(code: str) -> bytes:
        out = io.BytesIO()
        segno.make_qr(code, error="m", boost_error=False).save(out, kind="png", scale=8, border=4)
        return out.getvalue()

    @staticmethod
    def barcode_svg(code: str) -> str:
        out = io.BytesIO()
        Code128(code, writer=SVGWriter()).write(out, {"module_width": 0.3, "module_height": 18.0, "quiet_zone": 6.5})
        return out.getvalue().decode()

    @staticmethod
    def barcode_png(code: str) -> bytes:
        out = io.BytesIO()
        Code128(code, writer=ImageWriter()).write(out, {"module_width": 0.3, "module_height": 18.0,
                                                        "quiet_zone": 6.5, "dpi": 300})
        return out.getvalue()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The payment-code applet, offline (a SIMULATOR)")
    parser.add_argument("--secret", required=True, help="base32 secret from the provisioning answer")
    parser.add_argument("--device-no", required=True, help="8-digit device number")
    parser.add_argument("--offset", type=float, default=0.0, help="seconds the platform's clock is ahead of this one")
    parser.add_argument("--png", help="write the QR code and the barcode to this PNG path (…-barcode.png beside it)")
    args = parser.parse_args(argv)
    applet = PaycodeApplet.provisioned({"secret": args.secret, "device_no": args.device_no,
                                        "server_time": int(_now().timestamp() + args.offset)})
    code = applet.code()
    print(applet.shown(code))
    if args.png:
        with open(args.png, "wb") as f:
            f.write(applet.qr_png(code))
        with open(args.png.removesuffix(".png") + "-barcode.png", "wb") as f:
            f.write(applet.barcode_png(code))


if __name__ == "__main__":
    main()
