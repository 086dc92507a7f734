"""The NFC wallet's cryptography and rules, without I/O: limited-use keys, the per-tap
application cryptogram, and the ATC and key-limit checks (docs/instore.md, "NFC wallet").

A **device token** (an HCE phone's applet or a SIM sticker card) stands for a wallet at the
reader. The platform holds no key of any token in its database: each token's **master key**
is derived from the issuer master key (a platform secret) and the token id, and each
**limited-use key** (LUK) from the token's master key and the key's sequence number, with
NIST SP 800-108 KDF in counter mode over AES-CMAC (``cryptography``'s ``KBKDFCMAC``). The
phone receives only LUKs, each good for a number of taps, a cumulative amount and a time to
live, and replaced online (replenished) before it runs out.

Every tap makes an **application cryptogram** (AC, as an EMV ARQC/TC): the first 8 bytes of
AES-CMAC (RFC 4493) under the LUK over the tap's data in a fixed layout (:func:`tap_data`):
amount, currency, date, the terminal's unpredictable number, the application transaction
counter (ATC), the CVM result and the terminal id. The platform recomputes it; a changed
byte anywhere (another amount, terminal or day) does not verify.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.cmac import CMAC
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.kbkdf import KBKDFCMAC, CounterLocation, Mode

from mobipay.instore import errors
from mobipay.kernel.clock import SHANGHAI

VERSION = 0x01  # the first byte of the cryptogram input: its layout
CURRENCY_CNY = "156"
KINDS = ("hce", "sim_sticker")
CVM_NONE, CVM_CDCVM = 0, 1  # no cardholder verification; verified on the device (screen lock, fingerprint)
ATC_MAX = 0xFFFF  # two bytes, as EMV tag 9F36: a token at the end of its counter is replaced
AC_LEN = 8  # bytes of the CMAC kept: EMV's 8-byte cryptogram
KEY_SKEW = timedelta(minutes=5)  # a device's clock may be this far off a key's window


@dataclass(frozen=True, slots=True)
class NfcPolicy:
    """The limits of NFC taps (fen, counts, durations), as the platform issues keys."""

    key_taps: int = 10  # taps a limited-use key makes
    key_amount: int = 100_000  # fen all taps of a key may add up to (1,000 CNY)
    key_ttl: timedelta = timedelta(days=3)
    offline_limit: int = 20_000  # fen a terminal may accept without the network, per tap (200 CNY)
    atc_window: int = 500  # how far an ATC may jump ahead of (or, offline, lag behind) the highest seen
    deny_grace: timedelta = timedelta(hours=12)  # a terminal refreshes its deny list at least this often
    max_tokens: int = 5  # live tokens of one wallet


@dataclass(frozen=True, slots=True)
class Tap:
    """One tap as the terminal read it from the device (what the cryptogram covers, and the AC)."""

    token_id: str
    key_seq: int
    atc: int
    amount: int  # fen
    currency: str
    tapped_at: datetime  # the terminal's clock; its Beijing date is in the cryptogram
    unpredictable_number: str  # 8 hex digits, the terminal's random (EMV 9F37)
    cvm: int
    terminal_id: str
    cryptogram: str  # 16 hex digits

    @property
    def day(self) -> date:
        return self.tapped_at.astimezone(SHANGHAI).date()


@dataclass(frozen=True, slots=True)
class KeyState:
    """A limited-use key as the platform keeps it (never the key itself: it is derived)."""

    seq: int
    max_taps: int
    max_amount: int
    issued_at: datetime
    expires_at: datetime
    retired_at: datetime | None
    used_taps: int
    used_amount: int


# ---------------------------------------------------------------------- keys


def _kbkdf(key: bytes, label: bytes, context: bytes) -> bytes:
    """SP 800-108 counter mode, AES-CMAC PRF, 32-bit counter before the fixed data, 128 bits out."""
    return KBKDFCMAC(algorithms.AES, Mode.CounterMode, 16, 4, 4, CounterLocation.BeforeFixed, label, context,
                     None).derive(key)


def issuer_master_key(secret: bytes) -> bytes:
    """The issuer master key (AES-256) from a platform secret, by HKDF-SHA256 with its own label,
    so it is never the secret itself and no other use of the secret can produce it."""
    return HKDF(hashes.SHA256(), 32, None, b"mobipay nfc issuer master key v1").derive(secret)


def token_master_key(issuer_key: bytes, token_id: str) -> bytes:
    """A token's master key (AES-128): never stored, never sent to the device."""
    return _kbkdf(issuer_key, b"MOBIPAY-NFC-MK", token_id.encode("ascii"))


def limited_use_key(master_key: bytes, token_id: str, seq: int) -> bytes:
    """The LUK number ``seq`` of a token (AES-128): what the device holds and taps with."""
    if not 1 <= seq <= 0xFFFFFFFF:
        raise ValueError("a key's sequence number is 1 to 2^32-1")
    return _kbkdf(master_key, b"MOBIPAY-NFC-LUK", token_id.encode("ascii") + seq.to_bytes(4, "big"))


# ---------------------------------------------------------------------- the cryptogram


def tap_data(*, amount: int, currency: str, day: date, unpredictable_number: str, atc: int, cvm: int,
             terminal_id: str) -> bytes:
    """The bytes the cryptogram covers, in this order (docs/instore.md has a worked vector)::

        1  version 01
        6  amount, fen, 12 BCD digits (EMV 9F02)
        2  currency, 4 BCD digits: 0156 (5F2A)
        3  date YYMMDD in Beijing, BCD (9A)
        4  unpredictable number (9F37)
        2  ATC, big-endian (9F36)
        1  CVM result: 00 none, 01 verified on the device
        1  length of the terminal id, then its ASCII bytes
    """
    if not 0 <= amount <= 999_999_999_999:
        raise ValueError("amount out of range")
    if not 0 <= atc <= ATC_MAX:
        raise ValueError("ATC out of range")
    terminal = terminal_id.encode("ascii")
    if not 1 <= len(terminal) <= 64:
        raise ValueError("terminal id of 1 to 64 characters")
    un = bytes.fromhex(unpredictable_number)
    if len(un) != 4:
        raise ValueError("unpredictable number of 4 bytes")
    code = int(currency)
    if not 0 <= code <= 9999:
        raise ValueError(f"{code} does not fit 4 digits")
    # the BCD fields in one hex string: this runs once per tap of an upload (a hot path)
    head = bytes.fromhex(f"{VERSION:02x}{amount:012d}{code:04d}{day.year % 100:02d}{day.month:02d}{day.day:02d}")
    return head + un + bytes((atc >> 8, atc & 0xFF, cvm & 0xFF, len(terminal))) + terminal


def cryptogram(luk: bytes | CMAC, data: bytes) -> str:
    """The AC: the first 8 bytes of AES-CMAC under the LUK, 16 upper-case hex digits.
    ``luk`` may be :func:`keyed`'s CMAC of the key (copied, never used up)."""
    mac = luk.copy() if isinstance(luk, CMAC) else CMAC(algorithms.AES(luk))
    mac.update(data)
    return mac.finalize()[:AC_LEN].hex().upper()


def keyed(luk: bytes) -> CMAC:
    """A CMAC keyed with the LUK, for :func:`cryptogram` and :func:`cryptogram_valid` to copy:
    verifying many taps of one key (an upload) sets the key up once instead of per tap."""
    return CMAC(algorithms.AES(luk))


def data_of(tap: Tap) -> bytes:
    return tap_data(amount=tap.amount, currency=tap.currency, day=tap.day,
                    unpredictable_number=tap.unpredictable_number, atc=tap.atc, cvm=tap.cvm,
                    terminal_id=tap.terminal_id)


def cryptogram_valid(luk: bytes | CMAC, tap: Tap) -> bool:
    """Whether the tap's AC is the LUK's over its data (compared in constant time)."""
    try:
        expected = cryptogram(luk, data_of(tap))
    except ValueError:
        return False
    return hmac.compare_digest(expected, tap.cryptogram.upper())


# ---------------------------------------------------------------------- rules


def check_shape(tap: Tap) -> None:
    """A tap whose fields cannot be what a device makes: ``NFC_TAP_MALFORMED``."""
    problems = []
    if not (isinstance(tap.atc, int) and 0 <= tap.atc <= ATC_MAX):
        problems.append("atc is 0 to 65535")
    if not (isinstance(tap.key_seq, int) and tap.key_seq >= 1):
        problems.append("key_seq is a positive number")
    if not (isinstance(tap.amount, int) and not isinstance(tap.amount, bool) and 0 < tap.amount <= 999_999_999_999):
        problems.append("amount is a positive whole number of fen")
    if tap.currency != CURRENCY_CNY:
        problems.append("currency is 156 (yuan)")
    if not (len(tap.unpredictable_number) == 8 and _hex(tap.unpredictable_number)):
        problems.append("unpredictable_number is 8 hex digits")
    if not (len(tap.cryptogram) == 2 * AC_LEN and _hex(tap.cryptogram)):
        problems.append("cryptogram is 16 hex digits")
    if tap.cvm not in (CVM_NONE, CVM_CDCVM):
        problems.append("cvm is 0 or 1")
    if problems:
        raise errors.NfcTapMalformed("; ".join(problems))


_HEX = frozenset("0123456789abcdefABCDEF")


def _hex(text: str) -> bool:
    return _HEX.issuperset(text)


def check_atc(atc: int, high: int, *, online: bool, used: bool, window: int) -> None:
    """The ATC rules: never twice (``NFC_ATC_REPLAYED``); online, above the highest seen and at
    most ``window`` above it; offline (taps arrive late and out of order), within ``window`` of
    the highest either way (``NFC_ATC_OUT_OF_WINDOW``)."""
    if used:
        raise errors.NfcAtcReplayed(f"ATC {atc} was used already", field="atc")
    if online and atc <= high:
        raise errors.NfcAtcOutOfWindow(f"online, the ATC must exceed {high}, the highest seen: {atc} is not",
                                       field="atc")
    if atc > high + window or atc < high - window:
        raise errors.NfcAtcOutOfWindow(f"ATC {atc} is more than {window} away from {high}, the highest seen",
                                       field="atc")


def check_key(key: KeyState | None, tap: Tap, *, current_seq: int, online: bool, now: datetime,
              taps_before: int = 0, amount_before: int = 0) -> None:
    """The limited-use key's limits. Online: the current key, before it expires. Offline: a key
    of the token live when the tap was made (it may have been replaced since). Both: within its
    count and cumulative amount, counting ``taps_before`` / ``amount_before`` of the same batch."""
    if key is None or key.seq > current_seq:
        raise errors.NfcCryptogramInvalid(f"no key {tap.key_seq} was issued to this token", field="key_seq")
    if online:
        if key.seq != current_seq or key.retired_at is not None:
            raise errors.NfcKeyExpired("this key was replaced: the device replenishes its keys online",
                                       field="key_seq")
        if now >= key.expires_at:
            raise errors.NfcKeyExpired(f"the key expired at {key.expires_at.isoformat()}", field="key_seq")
    else:
        ends = min(key.expires_at, key.retired_at) if key.retired_at is not None else key.expires_at
        if not key.issued_at - KEY_SKEW <= tap.tapped_at <= ends + KEY_SKEW:
            raise errors.NfcKeyExpired("the tap was made outside its key's lifetime", field="tapped_at")
    if key.used_taps + taps_before >= key.max_taps:
        raise errors.NfcKeyExhausted(f"the key made its {key.max_taps} taps", field="key_seq")
    if key.used_amount + amount_before + tap.amount > key.max_amount:
        left = max(0, key.max_amount - key.used_amount - amount_before)
        raise errors.NfcKeyExhausted(f"the key has {left / 100:.2f} CNY left of {key.max_amount / 100:.2f}",
                                     field="amount")
