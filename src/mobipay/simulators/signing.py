"""SIMULATORS' side of the signed HTTP scheme (see ``orders/signed_http.py``): check a
request's signature, timestamp window and nonce; sign a reply bound to the request."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from fastapi import Request, Response

WINDOW_S = 300


def _mac(secret: bytes, *parts: str | bytes) -> str:
    message = b"\n".join(p.encode() if isinstance(p, str) else p for p in parts)
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


class Signer:
    """Verifies callers and signs replies for one simulated partner."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret
        self.nonces: dict[str, float] = {}

    def refusal(self, method: str, path: str, headers: Any, body: bytes) -> str | None:
        """Why the request is refused, or None for a fresh, correctly signed request."""
        ts, nonce, sig = (headers.get(h, "") for h in ("x-bank-timestamp", "x-bank-nonce", "x-bank-signature"))
        if not (ts.isdigit() and nonce and sig):
            return "unsigned request"
        now = time.time()
        if abs(now - int(ts)) > WINDOW_S:
            return "timestamp outside the window"
        for old in [n for n, at in self.nonces.items() if now - at > WINDOW_S]:
            del self.nonces[old]
        if nonce in self.nonces:
            return "nonce reused"
        if not hmac.compare_digest(_mac(self.secret, ts, nonce, method, path, body), sig):
            return "bad signature"
        self.nonces[nonce] = now
        return None

    def reply(self, nonce: str, status: int, payload: dict[str, Any] | bytes, media_type: str = "application/json"
              ) -> Response:
        body = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()
        ts = str(int(time.time()))
        return Response(body, status_code=status, media_type=media_type,
                        headers={"X-Bank-Timestamp": ts, "X-Bank-Signature": _mac(self.secret, ts, nonce, body)})

    async def read(self, request: Request) -> tuple[str, dict[str, Any] | Response]:
        """The request's nonce and JSON body, or a signed 401 to return."""
        body = await request.body()
        nonce = request.headers.get("x-bank-nonce", "")
        refusal = self.refusal(request.method, request.url.path, request.headers, body)
        if refusal is not None:
            return nonce, self.reply(nonce, 401, {"error": "unauthorized", "reason": refusal})
        return nonce, json.loads(body or b"{}")
