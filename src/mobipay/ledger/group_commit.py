"""Group commit: many concurrent callers, few transactions.

Each caller awaits its own durable commit, but callers that arrive while a transaction is
in flight are gathered into the next one. A few writer tasks run side by side so that one
batch is being decided and written while another waits for its commit to reach disk. The
database still fsyncs every commit (no ``synchronous_commit=off``); we just make each
fsync carry many transfers.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence

from mobipay.ledger import errors as E
from mobipay.ledger.model import Command, Result

Flush = Callable[[list[Command]], Awaitable[list[Result]]]


class GroupCommitter:
    """Queue of submissions drained by ``writers`` tasks, each flushing up to ``max_batch``."""

    def __init__(self, flush: Flush, *, max_batch: int = 2000, writers: int = 2) -> None:
        self._flush = flush
        self._max_batch = max_batch
        self._writers = writers
        self._queue: deque[tuple[Sequence[Command], asyncio.Future[list[Result]]]] = deque()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False

    def start(self) -> None:
        if not self._tasks:
            self._closing = False
            self._tasks = [asyncio.create_task(self._writer(), name=f"ledger-writer-{i}")
                           for i in range(self._writers)]

    async def stop(self) -> None:
        """Finish what is queued, then stop the writers."""
        self._closing = True
        self._wake.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def submit(self, commands: Sequence[Command]) -> list[Result]:
        """Post ``commands`` (one linked chain or independent transfers); wait for the commit."""
        if not commands:
            return []
        if commands[-1].linked:
            return [Result(c.id, error=E.LinkedChainOpen()) for c in commands]
        if not self._tasks:
            self.start()
        fut: asyncio.Future[list[Result]] = asyncio.get_running_loop().create_future()
        self._queue.append((commands, fut))
        self._wake.set()
        return await fut

    async def _writer(self) -> None:
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            taken: list[tuple[Sequence[Command], asyncio.Future[list[Result]]]] = []
            batch: list[Command] = []
            while self._queue and (not batch or len(batch) + len(self._queue[0][0]) <= self._max_batch):
                item = self._queue.popleft()
                taken.append(item)
                batch.extend(item[0])
            try:
                results = await self._flush(batch)
            except BaseException as exc:  # hand the failure to every waiting caller
                for _, fut in taken:
                    if not fut.done():
                        fut.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            pos = 0
            for commands, fut in taken:
                if not fut.done():
                    fut.set_result(results[pos : pos + len(commands)])
                pos += len(commands)
