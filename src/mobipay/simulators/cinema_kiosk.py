"""SIMULATOR of a cinema's self-service ticket kiosk (自助取票机).

The cinema's own device, which nobody can run here: a screen with a keypad where the buyer
types the code string (串码) the SMS brought, and a ticket printer. It is registered as an
in-store terminal of the cinema's store and signs every request with its Ed25519 key as
docs/instore.md ("A signed terminal request") says; the API it calls
(``POST /v1/cinema/kiosk/checks``) is the platform's real code. Each press of "取票" is one
check with a new request id; a check whose answer was lost is sent again with the same id
(the platform answers the same tickets, never prints them twice). ``http`` is anything with
``request(method, url, content=..., headers=...)``: an httpx client, or the tests' TestClient.

Run against a server: ``python -m mobipay.simulators.cinema_kiosk --url http://127.0.0.1:8000
--terminal trm_… --seed <base64 private key> 1234 5678 9012``.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from mobipay.instore.signature import sign, signing_string
from mobipay.kernel.clock import Clock, SystemClock

CHECKS = "/v1/cinema/kiosk/checks"
BEIJING = ZoneInfo("Asia/Shanghai")


@dataclass
class CinemaKiosk:
    http: Any
    terminal_id: str
    seed: str  # the terminal's Ed25519 private key (base64), made at registration
    clock: Clock
    display: str = ""
    printed: list[str] = field(default_factory=list)  # every ticket the printer has printed, as printed
    last_request_id: str = ""

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """A signed terminal request (the response object of ``http``)."""
        raw = b"" if body is None else json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        stamp, nonce = str(int(self.clock.now().timestamp())), secrets.token_hex(12)
        headers = {"Terminal-Id": self.terminal_id, "Timestamp": stamp, "Nonce": nonce,
                   "Signature": sign(self.seed, signing_string(self.terminal_id, method, path, stamp, nonce, raw))}
        if raw:
            headers["Content-Type"] = "application/json"
        return self.http.request(method, path, content=raw, headers=headers)

    def type_code(self, typed: str) -> Any:
        """The buyer types the code and presses 取票: a new check (a new request id)."""
        self.last_request_id = "kc-" + secrets.token_hex(8)
        return self._check(typed)

    def retry(self, typed: str) -> Any:
        """The answer to the last check was lost (the network): the same check again."""
        return self._check(typed)

    def _check(self, typed: str) -> Any:
        r = self.request("POST", CHECKS, {"code": typed, "request_id": self.last_request_id})
        body = r.json()
        if r.status_code in (200, 201):
            if r.status_code == 201 or not self._printed_already(body):
                self.printed.extend(self._print(body))
            self.display = f"请取票：{len(body['tickets'])}张"
        else:
            self.display = f"{body.get('code', r.status_code)}: {body.get('detail', '')}"
        return r

    def _printed_already(self, body: dict[str, Any]) -> bool:
        return any(body["order_id"] in line for line in self.printed)

    @staticmethod
    def _print(body: dict[str, Any]) -> list[str]:
        """One ticket per seat, as the printer writes it."""
        at = datetime.fromisoformat(body["starts_at"].replace("Z", "+00:00")).astimezone(BEIJING)
        return [f"{body['cinema']} | {body['hall']} | {body['film']} | {at:%Y-%m-%d %H:%M} | {t['label']} | "
                f"¥{t['price']['amount'] / 100:.2f} | {body['order_id']}" for t in body["tickets"]]


def main(argv: list[str] | None = None) -> int:
    """Check one code against a running server and print the tickets (or the refusal)."""
    import httpx

    parser = argparse.ArgumentParser(description="SIMULATOR of a cinema's ticket kiosk")
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--terminal", required=True, help="the kiosk's terminal id (trm_…)")
    parser.add_argument("--seed", required=True, help="the terminal's private key (base64)")
    parser.add_argument("code", nargs="+", help="the code string as typed, e.g. 1234 5678 9012")
    args = parser.parse_args(argv)
    with httpx.Client(base_url=args.url, timeout=10) as client:
        kiosk = CinemaKiosk(client, args.terminal, args.seed, SystemClock())
        kiosk.type_code(" ".join(args.code))
    print(kiosk.display)
    for line in kiosk.printed:
        print(line)
    return 0 if kiosk.printed else 1


if __name__ == "__main__":
    sys.exit(main())
