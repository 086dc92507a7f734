"""Property-based: random transfers, holds, posts, voids, reversals, retries and expiry,
driven against the real ledger (SQLite and PostgreSQL) and a small reference model,
through two ledger instances (two "processes" with their own caches, one with group
commit) taking turns at random.

After every step the balances of every account equal the model's; at the end
``verify`` is clean (balances rebuilt from postings, books sum to zero).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from mobipay.kernel.clock import ManualClock
from mobipay.ledger.model import AccountKind, Leg, PostPending, Reverse, Transfer, VoidPending
from mobipay.ledger.service import AccountSpec, Ledger
from mobipay.platform.db import Database

WALLETS = ["w0", "w1", "w2", "w3"]
ALL = [*WALLETS, "bank"]
FUNDING = 1000


@dataclass
class RefHold:
    src: str
    dst: str
    amount: int
    expires_at: datetime | None
    state: str = "open"  # open | posted | voided


@dataclass
class RefModel:
    """An independent, deliberately plain model of what the ledger must do."""

    dp: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ALL, 0))
    cp: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ALL, 0))
    dpn: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ALL, 0))
    cpn: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ALL, 0))
    stored: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # id -> content
    kinds: dict[str, str] = field(default_factory=dict)  # id -> posted/pending/post/void/reversal
    legs: dict[str, tuple[str, str, int]] = field(default_factory=dict)  # id -> (debit acc, credit acc, amount)
    holds: dict[str, RefHold] = field(default_factory=dict)
    reversed: set[str] = field(default_factory=set)

    def can_debit(self, acc: str, amount: int) -> bool:
        return acc == "bank" or self.dp[acc] + self.dpn[acc] + amount <= self.cp[acc]

    def balance(self, acc: str) -> int:
        net = self.dp[acc] - self.cp[acc]
        return net if acc == "bank" else -net

    def retry(self, tid: str, content: tuple[Any, ...]) -> str | None:
        """None if ``tid`` is new; "" for a replay; the error code for a conflict."""
        if tid not in self.stored:
            return None
        return "" if self.stored[tid] == content else "IDEMPOTENCY_CONFLICT"

    def transfer(self, tid: str, src: str, dst: str, amount: int, pending: bool, timeout: int | None,
                 now: datetime, code: str = "move") -> str:
        content = ("t", src, dst, amount, pending, timeout, code)
        seen = self.retry(tid, content)
        if seen is not None:
            return seen
        if not self.can_debit(src, amount):
            return "INSUFFICIENT_FUNDS"
        if pending:
            self.dpn[src] += amount
            self.cpn[dst] += amount
            self.holds[tid] = RefHold(src, dst, amount, now + timedelta(seconds=timeout) if timeout else None)
        else:
            self.dp[src] += amount
            self.cp[dst] += amount
        self.stored[tid] = content
        self.kinds[tid] = "pending" if pending else "posted"
        self.legs[tid] = (src, dst, amount)
        return ""

    def _hold_error(self, hid: str, now: datetime) -> str | None:
        hold = self.holds.get(hid)
        if hold is None:
            return "PENDING_TRANSFER_NOT_FOUND"
        expired = hold.expires_at is not None and hold.expires_at <= now
        if hold.state == "posted":
            return "PENDING_TRANSFER_ALREADY_POSTED"
        if hold.state == "voided":
            return "PENDING_TRANSFER_EXPIRED" if expired else "PENDING_TRANSFER_ALREADY_VOIDED"
        return "PENDING_TRANSFER_EXPIRED" if expired else None

    def post(self, tid: str, hid: str, amount: int | None, now: datetime) -> str:
        hold = self.holds.get(hid)
        posted = amount if amount is not None else (hold.amount if hold else None)
        content = ("p", hid, posted)
        seen = self.retry(tid, content)
        if seen is not None:
            return seen
        error = self._hold_error(hid, now)
        if error:
            return error
        assert hold is not None and posted is not None
        if posted > hold.amount:
            return "EXCEEDS_PENDING_AMOUNT"
        self.dpn[hold.src] -= hold.amount
        self.cpn[hold.dst] -= hold.amount
        self.dp[hold.src] += posted
        self.cp[hold.dst] += posted
        hold.state = "posted"
        self.stored[tid] = content
        self.kinds[tid] = "post"
        self.legs[tid] = (hold.src, hold.dst, posted)
        return ""

    def void(self, tid: str, hid: str, now: datetime, *, expire: bool = False) -> str:
        content = ("v", hid)
        seen = self.retry(tid, content)
        if seen is not None:
            return seen
        error = self._hold_error(hid, now)
        if expire and error == "PENDING_TRANSFER_EXPIRED" and self.holds[hid].state == "open":
            error = None
        if error:
            return error
        hold = self.holds[hid]
        self.dpn[hold.src] -= hold.amount
        self.cpn[hold.dst] -= hold.amount
        hold.state = "voided"
        self.stored[tid] = content
        self.kinds[tid] = "void"
        return ""

    def reverse(self, tid: str, original: str) -> str:
        content = ("r", original)
        seen = self.retry(tid, content)
        if seen is not None:
            return seen
        if original not in self.kinds:
            return "TRANSFER_NOT_FOUND"
        if self.kinds[original] not in ("posted", "post"):
            return "NOT_REVERSIBLE"
        if original in self.reversed:
            return "ALREADY_REVERSED"
        src, dst, amount = self.legs[original]
        if not self.can_debit(dst, amount):
            return "INSUFFICIENT_FUNDS"
        self.dp[dst] += amount
        self.cp[src] += amount
        self.reversed.add(original)
        self.stored[tid] = content
        self.kinds[tid] = "reversal"
        self.legs[tid] = (dst, src, amount)
        return ""


accounts = st.sampled_from(ALL)
amounts = st.integers(min_value=1, max_value=600)


class LedgerMachine(RuleBasedStateMachine):
    url: str = ""
    loop: asyncio.AbstractEventLoop

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock()
        # Two ledgers on separate engines stand in for two processes: each keeps its own
        # cache of account state on PostgreSQL, and the second gathers posts by group commit.
        self.dbs = [Database(self.url, pool_size=2), Database(self.url, pool_size=2)]
        self.ledgers = [Ledger(self.dbs[0], self.clock, max_batch=7), Ledger(self.dbs[1], self.clock, max_batch=7)]
        self.ledger = self.ledgers[0]
        self.model = RefModel()
        self.p = uuid.uuid4().hex[:8] + ":"  # every example has its own accounts and ids
        self.ids: list[str] = []
        self.n = 0

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def acc(self, code: str) -> str:
        return self.p + code

    def new_id(self) -> str:
        self.n += 1
        return f"{self.p}t{self.n}"

    def leg_pair(self, src: str, dst: str, amount: int) -> tuple[Leg, Leg]:
        return (Leg.debit(self.acc(src), amount), Leg.credit(self.acc(dst), amount))

    def check(self, results: list[Any], expected: list[str]) -> None:
        got = [r.error.code if r.error else "" for r in results]
        assert got == expected, (got, expected)

    @rule(which=st.integers(min_value=0, max_value=1))
    def switch_process(self, which: int) -> None:
        self.ledger = self.ledgers[which]

    @initialize()
    def open_and_fund(self) -> None:
        async def start() -> None:  # the committer's tasks live on this loop
            self.ledgers[1].start_group_commit()

        self.run(start())
        specs = [AccountSpec(self.acc("bank"), AccountKind.ASSET)] + [
            AccountSpec(self.acc(w), AccountKind.LIABILITY, debits_must_not_exceed_credits=True) for w in WALLETS]
        self.run(self.ledger.open_accounts(specs))
        for w in WALLETS:
            tid = self.new_id()
            self.check([self.run(self.ledger.post(Transfer(tid, self.leg_pair("bank", w, FUNDING), "fund")))], [
                self.model.transfer(tid, "bank", w, FUNDING, False, None, self.clock.now(), "fund")])
            self.ids.append(tid)

    @rule(src=accounts, dst=accounts, amount=amounts, pending=st.booleans(),
          timeout=st.none() | st.integers(min_value=1, max_value=120))
    def transfer(self, src: str, dst: str, amount: int, pending: bool, timeout: int | None) -> None:
        if src == dst:
            return
        tid = self.new_id()
        timeout = timeout if pending else None
        result = self.run(self.ledger.post(Transfer(tid, self.leg_pair(src, dst, amount), "move",
                                                    pending=pending, timeout_s=timeout)))
        self.check([result], [self.model.transfer(tid, src, dst, amount, pending, timeout, self.clock.now())])
        self.ids.append(tid)

    @rule(moves=st.lists(st.tuples(accounts, accounts, amounts), min_size=2, max_size=12))
    def batch(self, moves: list[tuple[str, str, int]]) -> None:
        moves = [(s, d, a) for s, d, a in moves if s != d]
        commands, expected = [], []
        for src, dst, amount in moves:
            tid = self.new_id()
            commands.append(Transfer(tid, self.leg_pair(src, dst, amount), "move"))
            expected.append(self.model.transfer(tid, src, dst, amount, False, None, self.clock.now()))
            self.ids.append(tid)
        self.check(self.run(self.ledger.post_batch(commands)), expected)

    @precondition(lambda self: self.model.holds)
    @rule(data=st.data(), partial=st.none() | amounts)
    def post_hold(self, data: st.DataObject, partial: int | None) -> None:
        hid = data.draw(st.sampled_from(sorted(self.model.holds)))
        tid = self.new_id()
        result = self.run(self.ledger.post(PostPending(tid, hid, amount=partial)))
        self.check([result], [self.model.post(tid, hid, partial, self.clock.now())])
        self.ids.append(tid)

    @precondition(lambda self: self.model.holds)
    @rule(data=st.data())
    def void_hold(self, data: st.DataObject) -> None:
        hid = data.draw(st.sampled_from(sorted(self.model.holds)))
        tid = self.new_id()
        result = self.run(self.ledger.post(VoidPending(tid, hid)))
        self.check([result], [self.model.void(tid, hid, self.clock.now())])

    @precondition(lambda self: self.ids)
    @rule(data=st.data())
    def reverse(self, data: st.DataObject) -> None:
        original = data.draw(st.sampled_from(self.ids))
        tid = self.new_id()
        self.check([self.run(self.ledger.post(Reverse(tid, original)))], [self.model.reverse(tid, original)])
        self.ids.append(tid)

    @precondition(lambda self: self.model.stored)
    @rule(data=st.data(), tamper=st.booleans())
    def retry(self, data: st.DataObject, tamper: bool) -> None:
        """Resend a stored transfer (same id): the same content replays, other content conflicts."""
        tid = data.draw(st.sampled_from(sorted(t for t, c in self.model.stored.items() if c[0] == "t")))
        _, src, dst, amount, pending, timeout, code = self.model.stored[tid]
        amount = amount + 1 if tamper else amount
        result = self.run(self.ledger.post(Transfer(tid, self.leg_pair(src, dst, amount), code,
                                                    pending=pending, timeout_s=timeout)))
        if tamper:
            assert result.error is not None and result.error.code == "IDEMPOTENCY_CONFLICT"
        else:
            assert result.ok and result.replayed, result.error

    @rule(seconds=st.integers(min_value=1, max_value=90))
    def time_passes_and_holds_expire(self, seconds: int) -> None:
        self.clock.advance(seconds)
        swept = self.run(self.ledger.sweep_expired_holds())
        expected = 0
        now = self.clock.now()
        for hid, hold in self.model.holds.items():
            if hold.state == "open" and hold.expires_at is not None and hold.expires_at <= now:
                assert self.model.void(f"expire:{hid}", hid, now, expire=True) == ""
                expected += 1
        assert swept == expected

    @invariant()
    def balances_match_the_model(self) -> None:
        if not self.model.stored:
            return
        found = self.run(self.ledger.accounts([self.acc(code) for code in ALL]))
        for code in ALL:
            acc = found[self.acc(code)]
            assert acc.balance == self.model.balance(code), code
            assert (acc.debits_pending, acc.credits_pending) == (self.model.dpn[code], self.model.cpn[code]), code
            if code != "bank":
                assert acc.available >= 0

    def teardown(self) -> None:
        try:
            # Leave no open hold behind: the next example shares the database (and the
            # sweeper), with a clock that starts over.
            self.clock.advance(10**6)
            timed = sum(1 for h in self.model.holds.values() if h.state == "open" and h.expires_at is not None)
            assert self.run(self.ledger.sweep_expired_holds()) == timed
            for hid, hold in self.model.holds.items():
                if hold.state == "open" and hold.expires_at is None:
                    assert self.run(self.ledger.post(VoidPending(f"{hid}:cleanup", hid))).ok
            report = self.run(self.ledger.verify())
            assert report.ok, report
        finally:
            for ledger in self.ledgers:
                self.run(ledger.stop())
            for db in self.dbs:
                self.run(db.dispose())


def _run_machine(url: str, examples: int) -> None:
    loop = asyncio.new_event_loop()
    try:
        machine = type("Machine", (LedgerMachine,), {"url": url, "loop": loop})
        settings(max_examples=examples, stateful_step_count=30, deadline=None,
                 suppress_health_check=list(HealthCheck))(machine)
        machine.TestCase().runTest()
    finally:
        loop.close()


def test_ledger_matches_reference_model_on_sqlite(sqlite_url: str) -> None:
    _run_machine(sqlite_url, examples=40)


def test_ledger_matches_reference_model_on_postgres(pg_url: str) -> None:
    _run_machine(pg_url, examples=40)
