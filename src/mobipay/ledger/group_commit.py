"""Group commit: many concurrent callers, few transactions.

Each caller awaits its own durable commit, but callers that arrive while a transaction is
in flight are gathered into the next one. A few writer tasks run side by side so that one
batch is being decided and written while another waits for its commit to reach disk. The
database still fsyncs every commit (no ``synchronous_commit=off``); we just make each
fsync carry many transfers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from mobipay.ledger import errors
from mobipay.ledger.model import Command, Result
from mobipay.platform.batch_queue import BatchQueue

Flush = Callable[[list[Command]], Awaitable[list[Result]]]


class GroupCommitter:
    """Queue of submissions drained by ``writers`` tasks, each flushing up to ``max_batch``."""

    def __init__(self, flush: Flush, *, max_batch: int = 2000, writers: int = 2) -> None:
        self._flush = flush
        self._writers = writers
        self._queue: BatchQueue[tuple[Sequence[Command], asyncio.Future[list[Result]]]] = BatchQueue(
            lambda item: len(item[0]), max_batch)

    def start(self) -> None:
        self._queue.start(self._writer, self._writers, "ledger-writer")

    async def stop(self) -> None:
        """Finish what is queued, then stop the writers."""
        await self._queue.stop()

    async def submit(self, commands: Sequence[Command]) -> list[Result]:
        """Post ``commands`` (one linked chain or independent transfers); wait for the commit."""
        if not commands:
            return []
        if commands[-1].linked:
            return [Result(c.id, error=errors.LinkedChainOpen()) for c in commands]
        self.start()
        fut: asyncio.Future[list[Result]] = asyncio.get_running_loop().create_future()
        self._queue.put((commands, fut))
        return await fut

    async def _writer(self) -> None:
        while (taken := await self._queue.take()) is not None:
            batch = [command for commands, _ in taken for command in commands]
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
