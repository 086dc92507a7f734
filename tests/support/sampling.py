"""Samples of the processes' resources while a suite runs: resident memory and open file
descriptors of the server and the worker, and the database connections (PostgreSQL's
pg_stat_activity for the suite's database). A thread takes one sample every ``every_s``.

:func:`growth` compares the last third of the samples after warm-up with the first third:
a leak shows as a later third above an earlier one by more than noise.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.support.postgres import OwnPostgres
from tests.support.stack import Stack, open_fds, rss_kb


@dataclass(frozen=True)
class Sample:
    at: float  # seconds since the sampler started
    server_rss_kb: int
    worker_rss_kb: int
    server_fds: int
    worker_fds: int
    connections: int  # -1 when there is no server to ask (SQLite)


@dataclass
class Sampler:
    stack: Stack
    pg: OwnPostgres | None
    database: str
    every_s: float = 5.0
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)

    def take(self) -> Sample:
        server = self.stack.pid("server") if self.stack.alive("server") else 0
        worker = self.stack.pid("worker") if self.stack.alive("worker") else 0
        connections = -1
        if self.pg is not None:
            try:
                connections = asyncio.run(self.pg.connections(self.database))
            except OSError:  # the server is restarting
                connections = -1
        sample = Sample(time.monotonic() - self._t0, rss_kb(server) if server else 0, rss_kb(worker) if worker else 0,
                        open_fds(server) if server else 0, open_fds(worker) if worker else 0, connections)
        self.samples.append(sample)
        return sample

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):  # a process between lives: the next sample will do
                self.take()
            self._stop.wait(self.every_s)

    def max_connections(self) -> int:
        return max((s.connections for s in self.samples), default=-1)


@dataclass(frozen=True)
class Growth:
    what: str
    first: float  # median of the first third after warm-up
    last: float  # median of the last third
    allowed: float

    @property
    def ok(self) -> bool:
        return self.last <= self.allowed

    def __str__(self) -> str:
        return f"{self.what}: first third {self.first:.0f}, last third {self.last:.0f} (allowed {self.allowed:.0f})"


def growth(samples: list[Sample], warmup_s: float, what: str, value: Callable[[Sample], float], *,
           ratio: float, slack: float) -> Growth:
    """The last third against the first third of the samples after ``warmup_s``: the last
    may exceed the first by ``ratio`` (relative) plus ``slack`` (absolute), no more."""
    steady = [value(s) for s in samples if s.at >= warmup_s and value(s) > 0]
    if len(steady) < 6:
        raise AssertionError(f"{what}: only {len(steady)} samples after the warm-up; run longer")
    third = len(steady) // 3
    first, last = statistics.median(steady[:third]), statistics.median(steady[-third:])
    return Growth(what, first, last, first * (1 + ratio) + slack)
