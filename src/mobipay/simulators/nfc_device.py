"""SIMULATOR of the phone's NFC applet (an HCE wallet or a SIM sticker card).

It plays the far side nobody can run here: a phone held to a reader. It holds what the
platform gave it when the token was provisioned or replenished (the token id and its
limited-use keys), keeps the application transaction counter (ATC), and answers the
reader's GENERATE AC with the tap's cryptogram, computed as the applet would
(instore/nfc.py's layout, AES-CMAC under the current key). Like a real applet it refuses
locally when its key is spent or expired (:class:`DeviceRefused`); ``force`` taps anyway so
tests can show the platform refusing what a tampered device sends.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mobipay.instore import nfc
from mobipay.kernel.clock import SHANGHAI


class DeviceRefused(Exception):
    """The applet will not tap (no key, key spent or expired): the phone says replenish online."""


@dataclass
class DeviceKey:
    seq: int
    luk: bytes
    max_taps: int
    max_amount: int
    expires_at: datetime
    taps: int = 0
    amount: int = 0


@dataclass
class NfcDevice:
    """The applet: one token, its keys (the newest is used), the ATC."""

    token_id: str
    kind: str = "hce"
    atc: int = 0
    keys: dict[int, DeviceKey] = field(default_factory=dict)
    cdcvm: bool = False  # the phone is unlocked (fingerprint, screen lock) for this tap

    @classmethod
    def provisioned(cls, answer: dict[str, Any]) -> NfcDevice:
        """The applet from the platform's answer to ``POST /v1/me/nfc/tokens``."""
        device = cls(answer["token_id"], answer["kind"], atc=int(answer.get("atc_high", 0)))
        device.load_key(answer["key"])
        return device

    def load_key(self, key: dict[str, Any]) -> None:
        """A key from a provisioning or replenishing answer (``luk`` base64, limits, expiry)."""
        expires = key["expires_at"]
        self.keys[int(key["seq"])] = DeviceKey(int(key["seq"]), base64.b64decode(key["luk"]), int(key["max_taps"]),
                                               int(key["max_amount"]), datetime.fromisoformat(expires)
                                               if isinstance(expires, str) else expires)

    @property
    def key(self) -> DeviceKey:
        if not self.keys:
            raise DeviceRefused("no key: provision or replenish online")
        return self.keys[max(self.keys)]

    def tap(self, *, terminal_id: str, amount: int, unpredictable_number: str, at: datetime,
            force: bool = False) -> dict[str, Any]:
        """GENERATE AC: the next ATC and the cryptogram over the tap, as the reader receives them
        (the fields of a terminal's ``TapIn``)."""
        key = self.key
        if not force:
            if at >= key.expires_at:
                raise DeviceRefused("the key expired: replenish online")
            if key.taps >= key.max_taps or key.amount + amount > key.max_amount:
                raise DeviceRefused("the key is spent: replenish online")
        self.atc += 1
        key.taps += 1
        key.amount += amount
        cvm = nfc.CVM_CDCVM if self.cdcvm else nfc.CVM_NONE
        day = at.astimezone(SHANGHAI).date()
        data = nfc.tap_data(amount=amount, currency=nfc.CURRENCY_CNY, day=day,
                            unpredictable_number=unpredictable_number, atc=self.atc, cvm=cvm, terminal_id=terminal_id)
        return {"token_id": self.token_id, "key_seq": key.seq, "atc": self.atc, "amount": amount,
                "currency": nfc.CURRENCY_CNY, "tapped_at": int(at.timestamp()),
                "unpredictable_number": unpredictable_number, "cvm": cvm, "cryptogram": nfc.cryptogram(key.luk, data)}
