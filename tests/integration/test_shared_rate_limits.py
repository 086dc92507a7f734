"""The API nodes behind HAProxy are stateless: the per-address request limits, the one
thing a node kept in memory, are counted in Redis when MOBIPAY_RATE_LIMIT_STORAGE says so
(deploy/templates/mobipay.env.in), so two nodes share one allowance. Uses the machine's
Redis on 127.0.0.1:6379 (a key per run, expiring with the window)."""

from __future__ import annotations

import secrets
import socket

import pytest

from mobipay.kernel.errors import RateLimited
from mobipay.platform.ratelimit import RateLimiter, RatePolicy

REDIS = "async+redis://127.0.0.1:6379"


def _redis_answers() -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", 6379)) == 0


pytestmark = pytest.mark.skipif(not _redis_answers(), reason="needs Redis on 127.0.0.1:6379")


async def test_two_nodes_share_one_allowance() -> None:
    node_a = RateLimiter(REDIS, RatePolicy(pin="3/minute"))
    node_b = RateLimiter(REDIS, RatePolicy(pin="3/minute"))
    client = f"198.51.100.{secrets.randbelow(250)}-{secrets.token_hex(4)}"
    await node_a.hit("pin", client)
    await node_b.hit("pin", client)
    await node_a.hit("pin", client)
    with pytest.raises(RateLimited):
        await node_b.hit("pin", client)  # the fourth try, on the other node
    await node_b.hit("pin", f"{client}-other")  # another address has its own allowance


async def test_in_memory_counts_are_per_node() -> None:
    node_a = RateLimiter("async+memory://", RatePolicy(pin="1/minute"))
    node_b = RateLimiter("async+memory://", RatePolicy(pin="1/minute"))
    await node_a.hit("pin", "203.0.113.7")
    await node_b.hit("pin", "203.0.113.7")  # a second node does not know: why deploy/ uses Redis
    with pytest.raises(RateLimited):
        await node_a.hit("pin", "203.0.113.7")
