"""Group commit without a database: gathering, order, limits and failure hand-off."""

from __future__ import annotations

import asyncio

import pytest

from mobipay.ledger.group_commit import GroupCommitter
from mobipay.ledger.model import Command, Leg, Result, Transfer


def t(tid: str, linked: bool = False) -> Transfer:
    return Transfer(tid, (Leg.debit("a", 1), Leg.credit("b", 1)), "p2p", linked=linked)


async def test_concurrent_submissions_share_flushes_and_get_their_own_results() -> None:
    batches: list[list[str]] = []

    async def flush(commands: list[Command]) -> list[Result]:
        batches.append([c.id for c in commands])
        await asyncio.sleep(0.01)  # a commit in flight: others gather meanwhile
        return [Result(c.id) for c in commands]

    committer = GroupCommitter(flush, max_batch=5, writers=1)
    results = await asyncio.gather(*(committer.submit([t(f"x{i}"), t(f"y{i}")]) for i in range(6)))
    await committer.stop()
    assert [[r.id for r in rs] for rs in results] == [[f"x{i}", f"y{i}"] for i in range(6)]
    assert len(batches) < 6  # gathered
    assert all(len(b) <= 5 for b in batches)  # never over the limit, submissions never split
    assert sorted(i for b in batches for i in b) == sorted(f"{p}{i}" for i in range(6) for p in "xy")


async def test_an_open_linked_chain_is_refused_without_flushing() -> None:
    async def flush(commands: list[Command]) -> list[Result]:
        raise AssertionError("must not be called")

    committer = GroupCommitter(flush)
    results = await committer.submit([t("a", linked=True), t("b", linked=True)])
    assert [r.error.code for r in results if r.error] == ["LINKED_CHAIN_OPEN", "LINKED_CHAIN_OPEN"]
    await committer.stop()


async def test_a_failed_flush_reaches_every_caller_in_it_and_the_writer_goes_on() -> None:
    calls = 0

    async def flush(commands: list[Command]) -> list[Result]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("database went away")
        return [Result(c.id) for c in commands]

    committer = GroupCommitter(flush, writers=1)
    with pytest.raises(ConnectionError):
        await committer.submit([t("a")])
    assert [r.id for r in await committer.submit([t("b")])] == ["b"]
    await committer.stop()
