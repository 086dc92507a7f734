"""Merchant API signatures: RSA2 (SHA256withRSA, PKCS#1 v1.5, base64 — Alipay's "RSA2") or
HMAC-SHA256 (hex) over ``model.signing_string``. The platform signs its responses and
notifications with its own RSA key; merchants verify with the platform's public key.
Keys are PEM; everything is done by the ``cryptography`` library."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mobipay.merchants import errors
from mobipay.merchants.model import signing_string


def sign_rsa2_text(text: str, private_key_pem: bytes) -> str:
    """SHA256withRSA of ``text`` (UTF-8), base64: the primitive under every RSA2 signature,
    whatever rule chose the text (sorted parameters, or an Alipay answer's JSON as written)."""
    key = serialization.load_pem_private_key(private_key_pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("RSA2 needs an RSA private key")
    return base64.b64encode(key.sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()


def sign_rsa2(params: Mapping[str, object], private_key_pem: bytes) -> str:
    return sign_rsa2_text(signing_string(params), private_key_pem)


def verify_rsa2_text(text: str, signature: str, public_key_pem: bytes) -> None:
    """Raise ``BAD_SIGNATURE`` unless ``signature`` is the key's RSA2 signature of ``text``
    (a missing or unreadable key verifies nothing)."""
    refused = errors.BadSignature("the RSA2 signature does not verify: sign the sorted parameter string with "
                                  "SHA256withRSA (see docs/merchant-signatures.md)", field="sign")
    try:
        key = serialization.load_pem_public_key(public_key_pem) if public_key_pem else None
    except ValueError:
        key = None
    if not isinstance(key, rsa.RSAPublicKey) or not signature.isascii():
        raise refused
    try:
        key.verify(base64.b64decode(signature, validate=True), text.encode(), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, binascii.Error, ValueError):
        raise refused from None


def verify_rsa2(params: Mapping[str, object], signature: str, public_key_pem: bytes) -> None:
    """Raise ``BAD_SIGNATURE`` unless ``signature`` is the key's RSA2 signature of ``params``."""
    verify_rsa2_text(signing_string(params), signature, public_key_pem)


def public_key_pem(text: str) -> str:
    """A merchant's RSA public key as PEM, from PEM or from the bare base64 that Alipay's key
    tool writes ("应用公钥"); ``ValueError`` when it is not an RSA public key."""
    body = text.strip()
    if "BEGIN" not in body:
        body = "-----BEGIN PUBLIC KEY-----\n" + "".join(body.split()) + "\n-----END PUBLIC KEY-----\n"
    try:
        key = serialization.load_pem_public_key(body.encode())
    except ValueError:
        key = None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key (PEM, or the base64 of Alipay's key tool)")
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def sign_hmac(params: Mapping[str, object], key: bytes) -> str:
    return hmac.new(key, signing_string(params).encode(), hashlib.sha256).hexdigest()


def verify_hmac(params: Mapping[str, object], signature: str, key: bytes) -> None:
    """Raise ``BAD_SIGNATURE`` unless ``signature`` is the hex HMAC-SHA256 of ``params`` under
    ``key``, compared in constant time; an empty key (which anybody holds) verifies nothing."""
    given = signature.lower().encode() if signature.isascii() else b""
    if not key or not hmac.compare_digest(sign_hmac(params, key).encode(), given):
        raise errors.BadSignature("the HMAC-SHA256 signature does not verify (see docs/merchant-signatures.md)",
                                  field="sign")


def new_rsa_key() -> tuple[bytes, bytes]:
    """A fresh 2048-bit key pair as (private PEM, public PEM), for the platform or a merchant."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


def public_pem(private_key_pem: bytes) -> bytes:
    key = serialization.load_pem_private_key(private_key_pem, password=None)
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_or_create_key(path: Path) -> bytes:
    """The platform's signing key from ``path``, made (mode 0600) when missing: a
    development convenience; production points MOBIPAY_MERCHANT_KEY_FILE at its own key."""
    if not path.exists():
        private, _ = new_rsa_key()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(private)
        path.chmod(0o600)
    return path.read_bytes()


def aead_seal(key: str, plaintext: str, associated_data: str) -> tuple[str, str]:
    """AEAD_AES_256_GCM as WeChat Pay's notifications use it: the 32-character APIv3 key as
    the key, a fresh 12-character nonce; returns (nonce, base64 of ciphertext and tag)."""
    nonce = secrets.token_hex(6)
    sealed = AESGCM(key.encode()).encrypt(nonce.encode(), plaintext.encode(), associated_data.encode())
    return nonce, base64.b64encode(sealed).decode()
