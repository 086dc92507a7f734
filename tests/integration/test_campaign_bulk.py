"""Bulk disbursements on SQLite and PostgreSQL: the 300-student grant end to end (every
balance, the SMS, the claims of students without a wallet, the expiry back to the campaign),
a tampered file, duplicate rows, maker-checker, resubmission, and a run crashing halfway."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from mobipay.campaigns.bulk_model import Member
from mobipay.campaigns.bulk_service import BulkDisbursements
from mobipay.campaigns.tables import bulk_batches, bulk_rows
from mobipay.kernel.clock import ManualClock
from mobipay.kernel.errors import MobipayError
from mobipay.ledger.chart import SUSPENSE, SYSTEM_ACCOUNTS
from mobipay.ledger.service import Ledger
from mobipay.ledger.uow import UnitOfWorkRunner
from mobipay.platform.db import Database
from mobipay.platform.outbox import outbox
from mobipay.wallet.reference_data import number_segments
from mobipay.wallet.service import WalletService
from mobipay.wallet.tables import identities

GRANT = 50_000  # 500 CNY a student: 300 students, 150,000 CNY


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 12, 4, 2, 0, tzinfo=UTC))


class World:
    def __init__(self, bulk: BulkDisbursements, maker: Member, checker: Member, campaign_id: str,
                 campaign_account: str, funder_account: str) -> None:
        self.bulk, self.maker, self.checker = bulk, maker, checker
        self.campaign_id, self.campaign_account, self.funder_account = campaign_id, campaign_account, funder_account

    @property
    def ledger(self) -> Any:
        return self.bulk.uow.ledger

    async def balance(self, code: str) -> int:
        return int((await self.ledger.account(code)).balance)


@pytest.fixture
async def world(db: Database, ledger: Ledger, clock: ManualClock) -> World:
    await ledger.open_accounts(list(SYSTEM_ACCOUNTS))
    uow = UnitOfWorkRunner(db, clock, ledger)
    bulk = BulkDisbursements(uow, WalletService(uow, number_segments(), b"t"), sub_batch=64)
    funder = await bulk.create_funder("邵阳市教育基金会", "13800138000", actor="ops", reason="grant ceremony")
    maker, _ = await bulk.add_member(funder.id, "刘会计", ["maker"], actor="ops", reason="t")
    checker, _ = await bulk.add_member(funder.id, "陈主任", ["checker"], actor="ops", reason="t")
    assert await bulk.deposit(funder.id, 300 * GRANT, reference="BANK-2026-001", actor="ops") == 300 * GRANT
    campaign = await bulk.create_campaign(funder.id, "2026 助学金", actor="ops")
    assert await bulk.fund_campaign(campaign.id, 300 * GRANT, idempotency_key="fund-1", actor="ops") == 300 * GRANT
    return World(bulk, maker, checker, campaign.id, campaign.account_code, funder.account_code)


def students(count: int = 300, start: int = 0) -> list[str]:
    return [f"+86139{10_000_000 + start + i:08d}" for i in range(count)]


def grant_file(numbers: list[str], *, names: dict[str, str] | None = None, extra: str = "") -> bytes:
    lines = ["row_id,msisdn,name,amount_yuan,note"]
    for i, n in enumerate(numbers):
        lines.append(f"S{i + 1:04d},{n[3:]},{(names or {}).get(n, f'学生{i + 1}')},500.00,2026助学金")
    return ("\n".join(lines) + "\n" + extra).encode()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def code_of(coro: Any) -> str:
    with pytest.raises(MobipayError) as info:
        await coro
    return info.value.code


async def sms_sent(db: Database) -> list[dict[str, Any]]:
    async with db.begin() as conn:
        rows = await conn.execute(select(outbox.c.payload).where(outbox.c.topic == "sms.send"))
        return [json.loads(r.payload) for r in rows]


async def test_the_300_student_grant_end_to_end(world: World, db: Database, clock: ManualClock) -> None:
    wallet, bulk = world.bulk.wallet, world.bulk
    numbers = students()
    registered, unregistered = numbers[:280], numbers[280:]
    for n in registered:
        await wallet.create_user(n, actor="t", reason="t")
    verified = await wallet.user_by_msisdn(registered[0])
    async with db.begin() as conn:  # one student's real name is verified (bound a card): the file must match it
        await conn.execute(insert(identities).values(user_id=verified.id, name="王小明", id_masked="4305**********0012",
                                                     id_hmac="x" * 64, verified_at=clock.now(), verified_by="bank"))
    data = grant_file(numbers, names={registered[0]: "王 小明"})
    batch, replayed = await bulk.upload(world.maker, world.campaign_id, data, sha(data), idempotency_key="up-1",
                                        file_name="grant.csv")
    assert not replayed and batch.state == "awaiting_approval"
    assert (batch.summary.rows_total, batch.summary.rows_valid, batch.summary.amount_valid) == (300, 300, 300 * GRANT)
    assert batch.sub_batches == 5  # 64 rows each

    approved = await bulk.approve(world.checker, batch.id)
    assert approved.state == "approved" and approved.approved_by == world.checker.id
    seen: list[tuple[int, int]] = []
    done = await bulk.run(batch.id, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]
    s = done.summary
    assert done.state == "completed" and done.completed_at is not None
    assert (s.paid_rows, s.paid_amount, s.waiting_rows, s.waiting_amount, s.failed_rows) == (
        280, 280 * GRANT, 20, 20 * GRANT, 0)
    assert await world.balance(world.campaign_account) == 0
    assert await world.balance(SUSPENSE) == 20 * GRANT
    for n in registered[:5] + registered[-5:]:
        assert await world.balance(f"wallet:{n}") == GRANT
    texts = {m["to"]: m for m in await sms_sent(db) if m["template"].startswith("bulk.")}
    assert len(texts) == 300  # every recipient is told
    assert texts[registered[3]]["template"] == "bulk.paid" and texts[registered[3]]["params"]["amount_fen"] == GRANT
    assert texts[unregistered[0]]["template"] == "bulk.invite" and texts[unregistered[0]]["params"]["days"] == 7

    lines = [line async for line in bulk.results(batch.id)]
    assert len(lines) == 301 and lines[0].startswith("row_id,msisdn,name,amount_fen")
    assert lines[1].startswith(f"S0001,{registered[0]},王 小明,50000,2026助学金,paid,,bulk:{batch.id}:S0001")
    assert ",waiting_for_registration,," in lines[300]

    # one student registers: the waiting grant is paid in; after 7 days the others return to the campaign
    await wallet.create_user(unregistered[0], actor="t", reason="t")
    assert await world.balance(f"wallet:{unregistered[0]}") == GRANT
    clock.advance(timedelta(days=7, seconds=1).total_seconds())
    assert await wallet.return_expired_claims(limit=100) == 19
    assert await world.balance(world.campaign_account) == 19 * GRANT
    assert await world.balance(SUSPENSE) == 0
    after = await bulk.batch(batch.id, claims=True)
    assert (after.summary.claimed_rows, after.summary.returned_rows) == (1, 19)
    statuses = [r[6] for r in await bulk.rows(batch.id, after=280)]
    assert statuses == ["claimed"] + ["returned"] * 19
    assert (await world.ledger.verify()).ok


async def test_a_tampered_file_is_refused_and_nothing_stored(world: World, db: Database) -> None:
    data = grant_file(students(3))
    tampered = data.replace(b"500.00", b"5000.00", 1)
    assert await code_of(world.bulk.upload(world.maker, world.campaign_id, tampered, sha(data),
                                           idempotency_key="up-t")) == "BULK_FILE_HASH_MISMATCH"
    async with db.begin() as conn:
        assert (await conn.execute(select(func.count()).select_from(bulk_batches))).scalar_one() == 0
    assert await world.balance(world.campaign_account) == 300 * GRANT


async def test_duplicate_rows_are_invalid_and_never_paid(world: World) -> None:
    numbers = students(40)
    for n in numbers:
        await world.bulk.wallet.create_user(n, actor="t", reason="t")
    dup = f"S0001,{numbers[5][3:]},学生X,500.00,2026助学金\nS9999,{numbers[1][3:]},学生2,500.00,2026助学金\n"
    data = grant_file(numbers, extra=dup)
    batch, _ = await world.bulk.upload(world.maker, world.campaign_id, data, sha(data), idempotency_key="up-d",
                                       max_invalid_pct=5)
    assert batch.state == "awaiting_approval" and batch.summary.rows_valid == 40 and batch.summary.rows_invalid == 2
    bad = [(r[1], r[6], r[7]) for r in await world.bulk.rows(batch.id, after=40)]
    assert bad == [("S0001", "invalid", "BULK_DUPLICATE_ROW_ID"), ("S9999", "invalid", "BULK_DUPLICATE_ROW")]
    await world.bulk.approve(world.checker, batch.id)
    done = await world.bulk.run(batch.id)
    assert done.summary.paid_rows == 40 and await world.balance(f"wallet:{numbers[1]}") == GRANT
    assert await world.balance(f"wallet:{numbers[5]}") == GRANT
    assert await world.balance(world.campaign_account) == 260 * GRANT
    # too many invalid rows for the funder's threshold: the whole file is rejected, nothing paid
    strict = grant_file(students(40, start=100), extra=dup)
    rejected, _ = await world.bulk.upload(world.maker, world.campaign_id, strict, sha(strict),
                                          idempotency_key="up-s", max_invalid_pct=1)
    assert rejected.state == "rejected" and "1 of 42 rows are invalid" in rejected.reason
    assert await code_of(world.bulk.approve(world.checker, rejected.id)) == "BULK_BATCH_STATE"
    assert {r[6] for r in await world.bulk.rows(rejected.id, limit=40)} == {"not_paid"}
    assert await world.balance(world.campaign_account) == 260 * GRANT


async def test_approval_by_the_same_person_is_refused(world: World) -> None:
    both, _ = await world.bulk.add_member(world.maker.funder_id, "校长", ["maker", "checker"], actor="ops", reason="t")
    data = grant_file(students(3))
    batch, _ = await world.bulk.upload(both, world.campaign_id, data, sha(data), idempotency_key="up-m")
    assert await code_of(world.bulk.approve(both, batch.id)) == "BULK_SAME_APPROVER"
    assert await code_of(world.bulk.approve(world.maker, batch.id)) == "BULK_ROLE_REQUIRED"  # a maker only
    assert await code_of(world.bulk.run(batch.id)) == "BULK_BATCH_STATE"  # unapproved: never runs
    assert (await world.bulk.batch(batch.id)).state == "awaiting_approval"
    assert await world.balance(world.campaign_account) == 300 * GRANT
    assert (await world.bulk.approve(world.checker, batch.id)).state == "approved"


async def test_an_underfunded_batch_is_not_approved(world: World) -> None:
    data = grant_file(students(301))
    batch, _ = await world.bulk.upload(world.maker, world.campaign_id, data, sha(data), idempotency_key="up-u")
    assert await code_of(world.bulk.approve(world.checker, batch.id)) == "BULK_UNDERFUNDED"
    assert (await world.bulk.batch(batch.id)).state == "awaiting_approval"


async def test_resubmission_pays_nothing_twice(world: World) -> None:
    numbers = students(100)
    data = grant_file(numbers)
    first, replayed = await world.bulk.upload(world.maker, world.campaign_id, data, sha(data), idempotency_key="k1")
    again, replayed_again = await world.bulk.upload(world.maker, world.campaign_id, data, sha(data),
                                                    idempotency_key="k1")
    assert not replayed and replayed_again and again.id == first.id
    other = grant_file(numbers[:10])
    assert await code_of(world.bulk.upload(world.maker, world.campaign_id, other, sha(other),
                                           idempotency_key="k1")) == "IDEMPOTENCY_CONFLICT"
    assert await code_of(world.bulk.upload(world.maker, world.campaign_id, data, sha(data),
                                           idempotency_key="k2")) == "BULK_DUPLICATE_FILE"
    await world.bulk.approve(world.checker, first.id)
    # two runners at once (a worker redelivery and an operator's CLI), then a third run
    await asyncio.gather(world.bulk.run(first.id), world.bulk.run(first.id))
    done = await world.bulk.run(first.id)
    assert done.state == "completed" and done.summary.waiting_rows == 100
    assert await world.balance(world.campaign_account) == 200 * GRANT
    assert await world.balance(SUSPENSE) == 100 * GRANT
    assert len(await world.bulk.wallet.claim_states([f"bulk:{first.id}:S{i:04d}" for i in range(1, 101)])) == 100
    assert (await world.ledger.verify()).ok


async def test_a_crash_halfway_resumes_where_it_stopped(world: World, db: Database,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    numbers = students(300)
    for n in numbers[::2]:  # half have a wallet, half get a claim
        await world.bulk.wallet.create_user(n, actor="t", reason="t")
    data = grant_file(numbers)
    batch, _ = await world.bulk.upload(world.maker, world.campaign_id, data, sha(data), idempotency_key="up-c")
    await world.bulk.approve(world.checker, batch.id)
    real = world.bulk.wallet.hold_for_unregistered_in
    calls = 0

    async def crashing(tx: Any, claims: Any) -> None:
        nonlocal calls
        calls += 1
        await real(tx, claims)  # its rows are written, then the process "dies" before the commit
        if calls == 3:
            raise RuntimeError("killed")

    monkeypatch.setattr(world.bulk.wallet, "hold_for_unregistered_in", crashing)
    with pytest.raises(RuntimeError):
        await world.bulk.run(batch.id)
    halfway = await world.bulk.batch(batch.id)
    paid = halfway.summary.paid_rows + halfway.summary.waiting_rows
    # the sub-batches before the crash stand (on PostgreSQL the one after it may have been in
    # flight: committed before the run stopped, or rolled back), the crashed one left nothing
    assert halfway.state == "running" and paid in (128, 192) and halfway.summary.waiting_rows == paid // 2
    assert await world.balance(world.campaign_account) == (300 - paid) * GRANT
    assert await world.balance(SUSPENSE) == paid // 2 * GRANT
    monkeypatch.setattr(world.bulk.wallet, "hold_for_unregistered_in", real)
    part = await world.bulk.run(batch.id, limit=1)
    assert part.state == "running" and part.summary.paid_rows + part.summary.waiting_rows == paid + 64
    done = await world.bulk.run(batch.id)
    s = done.summary
    assert done.state == "completed" and (s.paid_rows, s.waiting_rows, s.failed_rows) == (150, 150, 0)
    assert await world.balance(world.campaign_account) == 0
    assert await world.balance(SUSPENSE) == 150 * GRANT
    for n in numbers[::2]:
        assert await world.balance(f"wallet:{n}") == GRANT  # each paid once
    async with db.begin() as conn:
        assert (await conn.execute(select(func.count()).select_from(bulk_rows).where(
            bulk_rows.c.batch_id == batch.id, bulk_rows.c.state == "pending"))).scalar_one() == 0
    texts = [m for m in await sms_sent(db) if m["template"].startswith("bulk.")]
    assert len(texts) == len({m["key"] for m in texts}) == 300  # one SMS a recipient, none from the rolled-back try
    assert (await world.ledger.verify()).ok


async def test_a_frozen_or_mismatched_recipient_fails_alone(world: World, db: Database, clock: ManualClock) -> None:
    numbers = students(4)
    for n in numbers:
        await world.bulk.wallet.create_user(n, actor="t", reason="t")
    await world.bulk.wallet.set_frozen(numbers[1], True, actor="ops", reason="fraud check")
    data = grant_file(numbers)
    batch, _ = await world.bulk.upload(world.maker, world.campaign_id, data, sha(data), idempotency_key="up-f")
    user = await world.bulk.wallet.user_by_msisdn(numbers[2])
    async with db.begin() as conn:  # verified after the upload, under another name
        await conn.execute(insert(identities).values(user_id=user.id, name="赵六", id_masked="x", id_hmac="y" * 64,
                                                     verified_at=clock.now(), verified_by="bank"))
    await world.bulk.approve(world.checker, batch.id)
    done = await world.bulk.run(batch.id)
    assert (done.summary.paid_rows, done.summary.failed_rows, done.summary.failed_amount) == (2, 2, 2 * GRANT)
    assert [(r[6], r[7]) for r in await world.bulk.rows(batch.id)] == [
        ("paid", None), ("failed", "BULK_RECIPIENT_UNAVAILABLE"), ("failed", "BULK_NAME_MISMATCH"), ("paid", None)]
    assert await world.balance(world.campaign_account) == 298 * GRANT
