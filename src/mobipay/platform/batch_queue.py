"""A queue that writer tasks drain in batches: the shape of every group commit here (the
ledger's postings, the wallet's transfers). Callers put items and await their own futures;
each writer takes whatever has gathered, up to a size, while earlier batches are in flight."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class BatchQueue(Generic[T]):
    """Items in arrival order; :meth:`take` hands a writer the next batch."""

    def __init__(self, size: Callable[[T], int], limit: int) -> None:
        self._items: deque[T] = deque()
        self._wake = asyncio.Event()
        self._size = size
        self._limit = limit
        self.closing = False

    def put(self, item: T) -> None:
        self._items.append(item)
        self._wake.set()

    def close(self) -> None:
        """Writers finish what is queued, then :meth:`take` returns None."""
        self.closing = True
        self._wake.set()

    async def take(self) -> list[T] | None:
        """The next batch: items in order while their sizes add up to at most the limit (the
        first one always); None once closed and empty."""
        while not self._items:
            if self.closing:
                return None
            self._wake.clear()
            await self._wake.wait()
        first = self._items.popleft()
        batch, total = [first], self._size(first)
        while self._items and total + (size := self._size(self._items[0])) <= self._limit:
            batch.append(self._items.popleft())
            total += size
        return batch
