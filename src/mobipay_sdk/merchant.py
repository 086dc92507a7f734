"""mobipay merchant API client: a single module a shop can copy or install.

Signs every request (RSA2 with your private key, or HMAC with your app key) the way
docs/merchant-signatures.md describes, and verifies every answer and notification with the
platform's public key. Needs ``httpx`` and ``cryptography``.

    client = MerchantClient("https://pay.example", app_id, private_key_pem=open("key.pem", "rb").read(),
                            platform_key_pem=open("platform.pem", "rb").read())
    trade = client.create_trade("JD-1001", 8800, "图书")           # amounts in fen
    ...   # send the buyer to trade["pay_url"]; then on the notification:
    if client.verify_notification(request_json): ...              # answer the text "success"
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from typing import Any

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


class MobipayError(Exception):
    """The platform refused: ``code`` is its stable error code (docs/errors.md)."""

    def __init__(self, status: int, body: Mapping[str, Any]) -> None:
        super().__init__(f"{status} {body.get('code')}: {body.get('detail')}")
        self.status, self.code, self.body = status, str(body.get("code", "")), dict(body)


def signing_string(params: Mapping[str, Any]) -> str:
    items = sorted((k, v) for k, v in params.items() if k not in ("sign", "sign_type") and v not in (None, ""))
    return "&".join(f"{k}={v}" for k, v in items)


class MerchantClient:
    def __init__(self, base_url: str, app_id: str, *, private_key_pem: bytes | None = None,
                 hmac_key: str | None = None, platform_key_pem: bytes | None = None,
                 http: httpx.Client | None = None) -> None:
        if (private_key_pem is None) == (hmac_key is None):
            raise ValueError("give either private_key_pem (RSA2) or hmac_key (HMAC)")
        self.app_id = app_id
        self.sign_type = "RSA2" if private_key_pem else "HMAC"
        self._key = serialization.load_pem_private_key(private_key_pem, password=None) if private_key_pem else None
        self._hmac = hmac_key.encode() if hmac_key else b""
        self._platform = serialization.load_pem_public_key(platform_key_pem) if platform_key_pem else None
        self.http = http or httpx.Client(base_url=base_url, timeout=10)

    def _sign(self, params: Mapping[str, Any]) -> str:
        text = signing_string(params).encode()
        if isinstance(self._key, rsa.RSAPrivateKey):
            return base64.b64encode(self._key.sign(text, padding.PKCS1v15(), hashes.SHA256())).decode()
        return hmac.new(self._hmac, text, hashlib.sha256).hexdigest()

    def verify(self, answer: Mapping[str, Any]) -> bool:
        """Whether an answer or notification carries the platform's valid signature."""
        text, sig = signing_string(answer).encode(), str(answer.get("sign", ""))
        if answer.get("sign_type") == "HMAC":
            return hmac.compare_digest(hmac.new(self._hmac, text, hashlib.sha256).hexdigest(), sig)
        if not isinstance(self._platform, rsa.RSAPublicKey):
            raise ValueError("give platform_key_pem to verify RSA2 answers")
        try:
            self._platform.verify(base64.b64decode(sig), text, padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, ValueError):
            return False
        return True

    verify_notification = verify

    def call(self, path: str, **params: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"app_id": self.app_id, "timestamp": str(int(time.time())),
                                "nonce": secrets.token_hex(12), "sign_type": self.sign_type,
                                **{k: str(v) for k, v in params.items() if v is not None}}
        body["sign"] = self._sign(body)
        response = self.http.post(path, json=body)
        data: dict[str, Any] = response.json()
        if response.status_code >= 400:
            raise MobipayError(response.status_code, data)
        if not self.verify(data):
            raise MobipayError(response.status_code, {"code": "BAD_PLATFORM_SIGNATURE",
                                                      "detail": "the answer is not signed by mobipay"})
        return data

    def create_trade(self, out_trade_no: str, total_amount: int, subject: str, *, expire_minutes: int = 30,
                     notify_url: str | None = None) -> dict[str, Any]:
        return self.call("/v1/merchant/trades", out_trade_no=out_trade_no, total_amount=total_amount,
                         subject=subject, expire_minutes=expire_minutes, notify_url=notify_url)

    def query(self, out_trade_no: str) -> dict[str, Any]:
        return self.call("/v1/merchant/trades/query", out_trade_no=out_trade_no)

    def close(self, out_trade_no: str) -> dict[str, Any]:
        return self.call("/v1/merchant/trades/close", out_trade_no=out_trade_no)

    def cancel(self, out_trade_no: str) -> dict[str, Any]:
        return self.call("/v1/merchant/trades/cancel", out_trade_no=out_trade_no)

    def refund(self, out_trade_no: str, out_request_no: str, refund_amount: int) -> dict[str, Any]:
        return self.call("/v1/merchant/refunds", out_trade_no=out_trade_no, out_request_no=out_request_no,
                         refund_amount=refund_amount)

    def refund_query(self, out_trade_no: str, out_request_no: str) -> dict[str, Any]:
        return self.call("/v1/merchant/refunds/query", out_trade_no=out_trade_no, out_request_no=out_request_no)
