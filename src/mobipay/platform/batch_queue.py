"""A queue that writer tasks drain in batches: the shape of every group commit here (the
ledger's postings, the wallet's transfers). Callers put items and await their own futures;
each writer takes whatever has gathered, up to a size, while earlier batches are in flight."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class BatchQueue(Generic[T]):
    """Items in arrival order; :meth:`take` hands a writer the next batch. The queue also
    runs its writer tasks (:meth:`start`, :meth:`stop`)."""

    def __init__(self, size: Callable[[T], int], limit: int) -> None:
        self._items: deque[T] = deque()
        self._wake = asyncio.Event()
        self._size = size
        self._limit = limit
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, writer: Callable[[], Coroutine[Any, Any, None]], count: int, name: str) -> None:
        """Run ``count`` tasks of ``writer`` (each looping on :meth:`take`), unless they run."""
        if not self._tasks:
            self._closing = False
            self._tasks = [asyncio.create_task(writer(), name=f"{name}-{i}") for i in range(count)]

    async def stop(self) -> None:
        """The writers finish what is queued (then :meth:`take` returns None); wait for them."""
        self._closing = True
        self._wake.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def put(self, item: T) -> None:
        self._items.append(item)
        self._wake.set()

    async def take(self) -> list[T] | None:
        """The next batch: items in order while their sizes add up to at most the limit (the
        first one always); None once closed and empty."""
        while not self._items:
            if self._closing:
                return None
            self._wake.clear()
            await self._wake.wait()
        first = self._items.popleft()
        batch, total = [first], self._size(first)
        while self._items and total + (size := self._size(self._items[0])) <= self._limit:
            batch.append(self._items.popleft())
            total += size
        return batch
