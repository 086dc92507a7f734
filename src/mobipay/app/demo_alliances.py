"""Demo alliances: the operator's four alliance programmes, their member stores and the demo
subscribers' brands, loaded after the demo merchants and subscribers (``AllianceService.load_demo``
does the work in bulk; this picks the subscribers)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from mobipay.app.demo import demo_numbers
from mobipay.instore.alliance_service import DemoAlliances

if TYPE_CHECKING:
    from mobipay.app.bootstrap import Container


async def load_demo_alliances(container: Container, *, msisdns: Iterable[str] | None = None,
                              users: int = 200) -> DemoAlliances:
    """Create the four programmes (全球通VIP联盟, 动感地带校园联盟, 12580联盟, 远程与线下支付联盟),
    enrol every store of a payable merchant by a hash of its id, and give brands and VIP levels
    to ``msisdns`` (default: the first ``users`` demo numbers of ``app/demo.py``). Safe to run
    again: what exists is kept."""
    numbers = list(msisdns) if msisdns is not None else [m for m, _ in demo_numbers(users)]
    return await container.alliances.load_demo(numbers)
