"""Request rate limits per client address, for the endpoints guessing attacks aim at.

One-time codes and PINs already count wrong tries per number; these limits stop one
address from walking through many numbers (or sending SMS to many). Counting is done by
the ``limits`` library with a moving window; its storage is a URI from settings:
``async+memory://`` (one process, the default) or ``async+redis://host:6379`` so every
API node shares the counts (needs ``pip install 'limits[async-redis]'``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from mobipay.kernel.errors import RateLimited


@dataclass(frozen=True, slots=True)
class RatePolicy:
    """Named limits in the ``limits`` notation (``"10/minute"``), one per guarded action."""

    otp: str = "10/minute"  # SMS codes asked for, any number
    pin: str = "30/minute"  # PIN or code checks: sign-up, sign-in, PIN set/change/reset, card binding
    lookup: str = "60/minute"  # who is behind a number (recipient confirmation)
    sms: str = "10/minute"  # commands one number sends by SMS
    sms_throttle_notice: str = "1/10minutes"  # "too many messages" replies to one number


class RateLimiter:
    """Counts hits per (action, client address) and refuses past the policy's limit."""

    def __init__(self, storage_uri: str = "async+memory://", policy: RatePolicy | None = None) -> None:
        self.policy = policy or RatePolicy()
        self.items: dict[str, RateLimitItem] = {
            name: parse(getattr(self.policy, name)) for name in RatePolicy.__dataclass_fields__
        }
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))

    async def hit(self, action: str, client: str) -> None:
        """Count one request; raise ``RATE_LIMITED`` (with Retry-After) past the limit."""
        item = self.items[action]
        if await self._limiter.hit(item, action, client):
            return
        stats = await self._limiter.get_window_stats(item, action, client)
        wait = max(1, math.ceil(stats.reset_time - time.time()))
        raise RateLimited(f"too many {action} requests from this address: at most {item.amount} per "
                          f"{item.get_expiry()} s; try again in {wait} s", retry_after_s=wait)
