"""One policy for the secrets people and devices hold: how they are made, kept and checked.

- Passwords and PINs (subscribers' payment PIN, operators' and merchant staff's passwords,
  the merchant refund PIN) are kept as argon2id hashes at OWASP's minimum (19 MiB, 2
  passes: ~40 ms here), hashed and checked off the event loop so a sign-in never stalls
  other requests.
- Tokens (sessions, refresh tokens) are 32 random bytes, URL-safe; only their SHA-256 is
  kept: they are random, so no salt or slow hash is needed, and a database leak grants
  nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError


def password_hasher() -> PasswordHasher:
    """The one argon2id setting for every password and PIN."""
    return PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


async def hash_secret(hasher: PasswordHasher, secret: str) -> str:
    """The hash to keep for a password or PIN (computed off the event loop)."""
    return await asyncio.to_thread(hasher.hash, secret)


async def verify_secret(hasher: PasswordHasher, stored: str, secret: str) -> bool:
    """Whether ``secret`` is the one ``stored`` was made from (off the event loop); a
    malformed stored hash is a mismatch, never an error."""
    try:
        return await asyncio.to_thread(hasher.verify, stored, secret)
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    """A fresh session or refresh token, shown once to its holder."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """How a token is kept and looked up: its SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()
