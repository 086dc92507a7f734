"""mobipay merchant API client: a single module a shop can copy or install.

Signs every request (RSA2 with your private key, or HMAC with your app key) the way
docs/merchant-signatures.md describes, and verifies every answer in your app's own scheme
and every notification against the platform's RSA public key. The ``sign_type`` a message
names is never trusted: a message naming another scheme is refused. Needs ``httpx`` and
``cryptography``.

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
from collections.abc import Callable, Mapping
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


def load_platform_key(platform_key_pem: bytes) -> rsa.RSAPublicKey:
    """The platform's RSA public key from its PEM (``GET /v1/merchant/platform-key``)."""
    try:
        key = serialization.load_pem_public_key(platform_key_pem)
    except ValueError:
        key = None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("platform_key_pem must be the platform's RSA public key in PEM "
                         "(GET /v1/merchant/platform-key)")
    return key


def verify_notification(notification: Mapping[str, Any], platform_key: rsa.RSAPublicKey) -> bool:
    """Whether a notification POSTed to your notify URL is the platform's: RSA2 with the
    platform key, whatever ``sign_type`` the message names (anything but RSA2 is refused).
    For a site that only receives notifications; :class:`MerchantClient` does the same."""
    return _signed(notification, "RSA2", lambda text, sig: _rsa2_ok(platform_key, text, sig))


def _signed(message: Mapping[str, Any], scheme: str, check: Callable[[bytes, str], bool]) -> bool:
    """The checks every scheme shares: the message names no other scheme, its signature is a
    non-empty ASCII string; then ``check`` on the signing string."""
    named, sig = message.get("sign_type"), message.get("sign")
    if named not in (None, scheme) or not isinstance(sig, str) or not sig or not sig.isascii():
        return False
    return check(signing_string(message).encode(), sig)


def _rsa2_ok(key: rsa.RSAPublicKey, text: bytes, sig: str) -> bool:
    try:
        key.verify(base64.b64decode(sig, validate=True), text, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):  # binascii.Error is a ValueError
        return False
    return True


class MerchantClient:
    """A shop's client of the merchant API. The key it is given decides how it signs and how
    it checks what comes back, never the message: answers are checked with the app's own
    scheme (RSA2 against the platform key, or HMAC with the app key) and notifications always
    against the platform's RSA key, whatever ``sign_type`` the message names."""

    def __init__(self, base_url: str, app_id: str, *, private_key_pem: bytes | None = None,
                 hmac_key: str | None = None, platform_key_pem: bytes | None = None,
                 http: httpx.Client | None = None) -> None:
        if (private_key_pem is None) == (hmac_key is None):
            raise ValueError("give either private_key_pem (RSA2) or hmac_key (HMAC)")
        self.app_id = app_id
        self._key: rsa.RSAPrivateKey | None = None
        self._hmac = b""
        if private_key_pem is not None:
            key = serialization.load_pem_private_key(private_key_pem, password=None)
            if not isinstance(key, rsa.RSAPrivateKey):
                raise ValueError("private_key_pem must be an RSA private key (RSA2)")
            self.sign_type, self._key = "RSA2", key
        else:
            if not hmac_key:  # an empty key would let anyone sign
                raise ValueError("hmac_key is empty: give the app key shown when the app was made")
            self.sign_type, self._hmac = "HMAC", hmac_key.encode()
        self._platform = load_platform_key(platform_key_pem) if platform_key_pem is not None else None
        self.http = http or httpx.Client(base_url=base_url, timeout=10)

    def _sign(self, params: Mapping[str, Any]) -> str:
        text = signing_string(params).encode()
        if self._key is not None:
            return base64.b64encode(self._key.sign(text, padding.PKCS1v15(), hashes.SHA256())).decode()
        return hmac.new(self._hmac, text, hashlib.sha256).hexdigest()

    def verify(self, answer: Mapping[str, Any]) -> bool:
        """Whether an answer to this client's call carries a valid signature in the app's own
        scheme. A message naming another ``sign_type`` is refused, never checked its way."""
        return self._check(answer, self.sign_type)

    def verify_notification(self, notification: Mapping[str, Any]) -> bool:
        """Whether a notification POSTed to your notify URL is the platform's: always RSA2
        with the platform key, for RSA2 and HMAC apps alike (docs/merchant-signatures.md)."""
        return self._check(notification, "RSA2")

    def _check(self, message: Mapping[str, Any], scheme: str) -> bool:
        if scheme == "HMAC":
            key = self._hmac
            return _signed(message, scheme, lambda text, sig: bool(key) and hmac.compare_digest(
                hmac.new(key, text, hashlib.sha256).hexdigest().encode(), sig.lower().encode()))
        if self._platform is None:
            raise ValueError("give platform_key_pem (GET /v1/merchant/platform-key) to verify the platform's "
                             "RSA2 signatures")
        return verify_notification(message, self._platform)

    def _signed_body(self, params: Mapping[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {"app_id": self.app_id, "timestamp": str(int(time.time())),
                                "nonce": secrets.token_hex(12), "sign_type": self.sign_type,
                                **{k: str(v) for k, v in params.items() if v is not None}}
        body["sign"] = self._sign(body)
        return body

    def call(self, path: str, **params: Any) -> dict[str, Any]:
        """A signed call to a JSON endpoint; the answer, its signature checked. Amounts in it
        are integer fen. (The statements endpoint answers CSV: use :meth:`statement`.)"""
        response = self.http.post(path, json=self._signed_body(params))
        if not response.headers.get("content-type", "").startswith(("application/json", "application/problem+json")):
            raise MobipayError(response.status_code, {
                "code": "NOT_JSON", "detail": f"{path} answered {response.headers.get('content-type')!r}, not JSON"
                + (": use MerchantClient.statement(day)" if path.endswith("/statements") else "")})
        data: dict[str, Any] = response.json()
        if response.status_code >= 400:
            raise MobipayError(response.status_code, data)
        if not self.verify(data):
            raise MobipayError(response.status_code, {"code": "BAD_PLATFORM_SIGNATURE",
                                                      "detail": "the answer is not signed by mobipay"})
        return data

    def create_trade(self, out_trade_no: str, total_amount: int, subject: str, *, expire_minutes: int = 30,
                     notify_url: str | None = None, store_id: str | None = None) -> dict[str, Any]:
        """A trade of ``total_amount`` fen; ``store_id`` names the store it is taken in."""
        return self.call("/v1/merchant/trades", out_trade_no=out_trade_no, total_amount=total_amount,
                         subject=subject, expire_minutes=expire_minutes, notify_url=notify_url, store_id=store_id)

    def query(self, out_trade_no: str | None = None, *, trade_no: str | None = None) -> dict[str, Any]:
        """A trade by your number or by the platform's ``trade_no``."""
        if out_trade_no is None and trade_no is None:
            raise ValueError("give out_trade_no or trade_no")
        return self.call("/v1/merchant/trades/query", out_trade_no=out_trade_no, trade_no=trade_no)

    def close(self, out_trade_no: str) -> dict[str, Any]:
        return self.call("/v1/merchant/trades/close", out_trade_no=out_trade_no)

    def cancel(self, out_trade_no: str) -> dict[str, Any]:
        return self.call("/v1/merchant/trades/cancel", out_trade_no=out_trade_no)

    def refund(self, out_trade_no: str, out_request_no: str, refund_amount: int) -> dict[str, Any]:
        return self.call("/v1/merchant/refunds", out_trade_no=out_trade_no, out_request_no=out_request_no,
                         refund_amount=refund_amount)

    def refund_query(self, out_trade_no: str, out_request_no: str) -> dict[str, Any]:
        return self.call("/v1/merchant/refunds/query", out_trade_no=out_trade_no, out_request_no=out_request_no)

    def statement(self, day: str) -> str:
        """A business day's trade and refund file (CSV text; ``day`` is YYYY-MM-DD, Shanghai),
        checked: its SHA-256 and the platform's RSA2 signature over ``day`` and that digest."""
        response = self.http.post("/v1/merchant/statements", json=self._signed_body({"day": day}))
        if response.status_code >= 400:
            raise MobipayError(response.status_code, response.json())
        digest = hashlib.sha256(response.content).hexdigest()
        sign = response.headers.get("x-sign", "")
        if self._platform is None:
            raise ValueError("give platform_key_pem to check the statement's signature")
        if response.headers.get("x-sha256") != digest or not _rsa2_ok(
                self._platform, signing_string({"day": day, "sha256": digest}).encode(), sign):
            raise MobipayError(response.status_code, {"code": "BAD_PLATFORM_SIGNATURE",
                                                      "detail": "the statement is not the one mobipay signed"})
        return response.text
