"""The payment code a wallet shows for the till to scan (付款码), without I/O.

The phone makes the code offline from a per-device secret, as an authenticator app makes its
one-time passwords, so it works in a basement shop without network. 18 ASCII digits::

    78 DDDDDDDD OOOOOOOO
    |  |        `-- 8-digit TOTP (RFC 6238: HOTP-SHA1, RFC 4226, over 30 s steps from the Unix epoch)
    |  `----------- device number: 8 digits the platform gave this device's secret
    `-------------- mobipay's prefix

- **Prefix ``78``.** Tills and acquirers route a scanned code by its first two digits and its
  length; there is no registry, only de facto ranges (as acquirers' integration guides list
  them): WeChat Pay 10-15, JD 18, Alipay 25-30, UnionPay 62 (19 digits), QQ Wallet 91. ``78``
  is outside all of them and, unlike a 3x prefix (Diners Club's card numbers start with 36 and
  run to 19 digits), outside the card ranges a till may also see: ISO/IEC 7812 gives 7 to
  petroleum and future industries.
- **Device number.** Opaque: allocated by the platform (at random, so it tells neither the
  wallet, nor the number of devices, nor a neighbour's) when it provisions the secret. It finds
  the secret at the platform and says nothing of whose wallet it is; it is the same on every
  code of one device, so a till can tell two visits of one device apart from others (not who).
- **One-time password.** ``cryptography``'s HOTP (RFC 4226) at the counter ``T = unix // 30``,
  which is RFC 6238's TOTP; 8 digits, the most the library makes (RFC 4226 asks for 6 at least;
  its reference code goes to 8), so a guess is right once in 10^8.

**Validity.** A code is accepted in the step it was made in and the next one
(:data:`WINDOW` = 1 previous step): at most 60 s after its step began, so never older than 60 s
and at least 30 s after it was made. The applet shows a new code every 30 s, at each step, so a
code on the screen has 30 s left at least. A phone clock running up to :data:`MAX_DRIFT` = 10 s
ahead of the platform's is accepted (a code from the next step, when that step starts within
10 s); one further ahead makes codes the platform refuses as invalid, and one behind shortens
its codes' life by as much. A code that verifies for a step older than the window is
``PAYCODE_EXPIRED``; one that verifies for no step near now is ``PAYCODE_INVALID``.

**Single use is the caller's.** :func:`verify` returns the time step the code was made in; the
store records "device D used step S" (unique), so a code is paid once however often it is
scanned, and a later code of the same device (a later step) is still accepted. The store should
also count wrong codes per device and lock it after a few, since each try is a 2-3 in 10^8 guess.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor import InvalidToken
from cryptography.hazmat.primitives.twofactor.hotp import HOTP

from mobipay.instore import errors

PREFIX = "78"  # mobipay's range, outside every wallet's and card scheme's (module docstring)
DEVICE_DIGITS = 8
OTP_DIGITS = 8  # the most cryptography's HOTP makes (6-8)
LENGTH = len(PREFIX) + DEVICE_DIGITS + OTP_DIGITS  # 18, as Alipay's and WeChat Pay's codes
STEP = 30  # seconds: RFC 6238's default time step
WINDOW = 1  # previous steps accepted besides the current one: 60 s at most
MAX_DRIFT = 10  # seconds a phone's clock may run ahead of the platform's
SECRET_BYTES = 20  # what the platform provisions: 160 bits, RFC 4226's recommendation (R6)
EXPIRED_LOOKBACK = 20  # steps (10 min) searched to say "expired" rather than "invalid"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CODE = re.compile(rf"[0-9]{{{LENGTH}}}", re.ASCII)  # ASCII only: no fullwidth or other scripts' digits
_DEVICE = re.compile(rf"[0-9]{{{DEVICE_DIGITS}}}", re.ASCII)


class Paycode(NamedTuple):
    """What a payment code says before it is verified: whose secret to fetch, and the password."""

    device_no: str  # 8 ASCII digits, leading zeros kept
    otp: str  # 8 ASCII digits


def step_of(at: datetime) -> int:
    """The TOTP time step of ``at`` (aware), ``floor(unix / 30)``, in integers (no float rounding)."""
    return (at - _EPOCH) // timedelta(seconds=STEP)


def otp(secret: bytes, step: int) -> str:
    """The 8-digit one-time password of ``step``: RFC 4226 HOTP-SHA1 with the step as the counter
    (so RFC 6238 TOTP); the library refuses a secret under 128 bits."""
    return _hotp(secret).generate(step).decode("ascii")


def generate(secret: bytes, device_no: str, at: datetime) -> str:
    """The code the phone's applet shows at ``at`` (its own clock), offline."""
    if _DEVICE.fullmatch(device_no) is None:
        raise ValueError(f"a device number is {DEVICE_DIGITS} ASCII digits")
    return PREFIX + device_no + otp(secret, step_of(at))


def parse(code: str) -> Paycode:
    """The device number and password of ``code``, refusing a misread code (``PAYCODE_MALFORMED``)
    before another wallet's (``PAYCODE_NOT_OURS``). The channel trims what a scanner adds (CR/LF)."""
    if _CODE.fullmatch(code) is None:
        raise errors.PaycodeMalformed(f"a payment code is {LENGTH} ASCII digits", field="auth_code")
    if not code.startswith(PREFIX):
        raise errors.PaycodeNotOurs(f"mobipay payment codes start with {PREFIX}", field="auth_code")
    device_end = len(PREFIX) + DEVICE_DIGITS
    return Paycode(code[len(PREFIX):device_end], code[device_end:])


def verify(secret: bytes, code: str, at: datetime, *, window: int = WINDOW, drift: int = MAX_DRIFT) -> int:
    """The time step ``code`` was made in, checked with the device's ``secret`` at the platform's ``at``.

    Accepted: the current step and ``window`` steps before it, and the next step when it begins
    within ``drift`` seconds (a phone clock that runs ahead). Refused: ``PAYCODE_EXPIRED`` when the
    password is that of an older step (up to 10 minutes back), else ``PAYCODE_INVALID`` (a digit
    changed, another device's secret, a phone clock far off). Every comparison is the library's
    constant-time one. The step is what the caller stores to use the code once (module docstring).
    """
    password = parse(code).otp.encode("ascii")
    now = step_of(at)
    accepted = list(range(now - window, now + 1))
    if (now + 1) * STEP - (at - _EPOCH).total_seconds() <= drift:
        accepted.append(now + 1)
    hotp = _hotp(secret)
    if (step := _matching(hotp, password, accepted)) is not None:
        return step
    older = range(now - window - EXPIRED_LOOKBACK, now - window)
    if (step := _matching(hotp, password, older)) is not None:
        raise errors.PaycodeExpired(f"the code was made {now - step} steps of {STEP} s ago", field="auth_code")
    raise errors.PaycodeInvalid(field="auth_code")


def _hotp(secret: bytes) -> HOTP:
    """RFC 4226's HOTP as every authenticator applet has it; SHA-1 is its default and, inside HMAC,
    not weakened by SHA-1's collisions (RFC 6194)."""
    return HOTP(secret, OTP_DIGITS, SHA1())  # noqa: S303 - HMAC-SHA1, which collisions do not break


def _matching(hotp: HOTP, password: bytes, steps: range | list[int]) -> int | None:
    """The newest of ``steps`` whose password is ``password``; every step is compared, in constant time."""
    found = None
    for step in steps:
        if step < 0:
            continue
        try:
            hotp.verify(password, step)
        except InvalidToken:
            continue
        found = step
    return found
