"""The signature of a POS terminal's request, without I/O: Ed25519 over one string.

The string is seven lines joined by ``\\n`` (no newline at the end)::

    MOBIPAY-TERMINAL-V1
    <Terminal-Id>
    <METHOD, upper case>
    <path as sent, with ?query if any>
    <Timestamp, Unix seconds>
    <Nonce>
    <lower-case hex SHA-256 of the body bytes (of b"" when there is none)>

The first line keeps a terminal's key from signing anything that could be read as another
kind of message; the terminal id ties the signature to the terminal that claims it. Keys
are the 32 raw bytes of Ed25519 (RFC 8032) in standard base64: the private key (the seed)
stays on the terminal, the platform keeps the public half only. Ed25519 signatures are
deterministic, so docs/instore.md's worked vector can be checked byte for byte.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

PREFIX = "MOBIPAY-TERMINAL-V1"


def signing_string(terminal_id: str, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    """What a terminal signs (module docstring); ``path`` includes ``?query`` when there is one."""
    return "\n".join((PREFIX, terminal_id, method.upper(), path, timestamp, nonce, hashlib.sha256(body).hexdigest()))


def new_key() -> tuple[str, str]:
    """A fresh key pair as (private seed, public key), each base64 of 32 raw bytes."""
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())
    return base64.b64encode(seed).decode(), public_of(base64.b64encode(seed).decode())


def public_of(private_seed: str) -> str:
    """The public key of a base64 seed (what the platform keeps of a key it made)."""
    key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(private_seed, validate=True))
    return base64.b64encode(key.public_key().public_bytes(serialization.Encoding.Raw,
                                                          serialization.PublicFormat.Raw)).decode()


def sign(private_seed: str, text: str) -> str:
    """A terminal's signature of ``text``: base64 of the 64-byte Ed25519 signature."""
    key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(private_seed, validate=True))
    return base64.b64encode(key.sign(text.encode())).decode()


def check_public_key(text: str) -> str:
    """A terminal's public key as the platform keeps it (base64 of 32 raw bytes), from that
    form or from PEM (SubjectPublicKeyInfo); ``ValueError`` when it is not an Ed25519 key."""
    body = text.strip()
    if "BEGIN" in body:
        try:
            key = serialization.load_pem_public_key(body.encode())
        except ValueError:
            key = None
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("not an Ed25519 public key")
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    else:
        try:
            raw = base64.b64decode(body, validate=True) if body.isascii() else b""
        except binascii.Error:
            raw = b""
        if len(raw) != 32:
            raise ValueError("an Ed25519 public key is 32 bytes, in base64 (44 characters) or PEM")
        try:
            Ed25519PublicKey.from_public_bytes(raw)
        except ValueError:
            raise ValueError("not an Ed25519 public key") from None
    return base64.b64encode(raw).decode()


def verifies(public_key: str, text: str, signature: str) -> bool:
    """Whether ``signature`` (base64) is the key's Ed25519 signature of ``text``; anything
    unreadable (not base64, not 64 bytes, a broken key) simply does not verify."""
    try:
        raw = base64.b64decode(signature, validate=True) if signature.isascii() else b""
        if len(raw) != 64:
            return False
        Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key, validate=True)).verify(raw, text.encode())
    except (InvalidSignature, binascii.Error, ValueError):
        return False
    return True
