"""SIMULATOR of a store's POS terminal: a contactless card reader with a keypad.

The cashier keys in the amount (yuan, as on the keypad); the payer holds a phone
(:class:`~mobipay.simulators.nfc_device.NfcDevice`) to the reader. Online, the terminal sends
the tap to the platform at once; offline (the network is down), it accepts a tap under the
offline limit when the token is not on its deny list and that list is fresh, stores it, and
uploads its stored taps later in one batch. Every request is signed with the terminal's
Ed25519 key as docs/instore.md ("A signed terminal request") says. ``http`` is anything with
``request(method, url, content=..., headers=...)``: an httpx client, or the tests' TestClient.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from mobipay.instore.signature import sign, signing_string
from mobipay.kernel.clock import Clock
from mobipay.kernel.money import parse_yuan
from mobipay.simulators.nfc_device import NfcDevice

DENY_LIST_MAX_AGE = timedelta(hours=12)  # older than this, the terminal takes no offline tap


@dataclass
class PosTerminal:
    http: Any
    terminal_id: str
    seed: str  # the terminal's Ed25519 private key (base64), made at registration
    clock: Clock
    offline_limit: int = 20_000  # fen
    online: bool = True
    stored: list[dict[str, Any]] = field(default_factory=list)
    deny: dict[str, str] = field(default_factory=dict)  # token id -> reason
    deny_version: int = 0
    deny_fetched_at: datetime | None = None
    display: str = ""

    # ------------------------------------------------------------------ the wire

    def request(self, method: str, path: str, body: Any = None, *, idempotency_key: str | None = None) -> Any:
        """A signed terminal request (the response object of ``http``)."""
        raw = b"" if body is None else json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        stamp, nonce = str(int(self.clock.now().timestamp())), secrets.token_hex(12)
        headers = {"Terminal-Id": self.terminal_id, "Timestamp": stamp, "Nonce": nonce,
                   "Signature": sign(self.seed, signing_string(self.terminal_id, method, path, stamp, nonce, raw))}
        if raw:
            headers["Content-Type"] = "application/json"
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        return self.http.request(method, path, content=raw, headers=headers)

    # ------------------------------------------------------------------ the counter

    def key_in(self, typed: str) -> int:
        """The amount the cashier keyed in (yuan, e.g. 23.50) in fen."""
        return parse_yuan(typed)

    def read(self, device: NfcDevice, amount: int, *, force: bool = False) -> dict[str, Any]:
        """Hold the phone to the reader: the terminal's random number, the device's cryptogram."""
        return device.tap(terminal_id=self.terminal_id, amount=amount, unpredictable_number=secrets.token_hex(4),
                          at=self.clock.now(), force=force)

    def online_tap(self, device: NfcDevice, typed: str, *, force: bool = False) -> Any:
        """Key in, tap, pay online now; the display shows the answer."""
        tap = self.read(device, self.key_in(typed), force=force)
        r = self.request("POST", "/v1/terminal/nfc/taps", tap, idempotency_key=f"{tap['token_id']}:{tap['atc']}")
        body = r.json()
        self.display = "APPROVED" if r.status_code == 200 else f"DECLINED {body.get('code', r.status_code)}"
        return r

    def offline_tap(self, device: NfcDevice, typed: str, *, force: bool = False) -> str:
        """Key in, tap, accept without the network when the rules allow; stored for upload.
        Answers what the display shows."""
        amount = self.key_in(typed)
        if amount > self.offline_limit:
            self.display = "DECLINED OFFLINE LIMIT: ONLINE ONLY"
        elif self.deny_fetched_at is None or self.clock.now() - self.deny_fetched_at > DENY_LIST_MAX_AGE:
            self.display = "DECLINED DENY LIST TOO OLD"
        elif device.token_id in self.deny:
            self.display = f"DECLINED CARD DENIED ({self.deny[device.token_id]})"
        else:
            self.stored.append(self.read(device, amount, force=force))
            self.display = "APPROVED OFFLINE"
        return self.display

    def upload(self) -> Any:
        """Send the stored taps in one batch; they are forgotten once the platform answered
        each (whatever it answered: a resend would be a duplicate)."""
        r = self.request("POST", "/v1/terminal/nfc/uploads", {"taps": self.stored})
        if r.status_code == 200:
            self.stored = []
        return r

    def refresh_deny_list(self) -> int:
        """Fetch the deny list's changes since the version held; answers the new version."""
        r = self.request("GET", f"/v1/terminal/deny-list?since={self.deny_version}")
        if r.status_code != 200:
            raise RuntimeError(f"deny list: {r.status_code} {r.text}")
        body = r.json()
        if body["full"]:
            self.deny = {}
        for e in body["entries"]:
            if e["listed"]:
                self.deny[e["token_id"]] = e["reason"]
            else:
                self.deny.pop(e["token_id"], None)
        self.deny_version, self.deny_fetched_at = int(body["version"]), self.clock.now()
        return self.deny_version
