"""Bulk disbursement use cases: funders, their members and campaigns, batch upload with its
checks, maker-checker approval, the run in sub-batches, status and results.

Money: the funder's deposit (``liability:bulk_funder:<id>``, paid in from the bank) funds a
campaign account (``liability:bulk_campaign:<id>``); each row is one ledger transfer from the
campaign to the recipient's wallet, or to the suspense account with a wallet **claim** when
the number has no wallet yet (the wallet pays it in at registration, and its expiry job
returns it to the campaign account when nobody claims it within the batch's ``claim_days``).

The run: a batch's rows are cut into sub-batches of :data:`SUB_BATCH` rows by file order.
Each sub-batch is ONE transaction: it marks its own progress row ``done`` first (a
conditional update: a second runner waits on that row, then finds it done and skips it),
reads the recipients' wallets set-based, posts every row's transfer through the ledger's
batch path in the same unit of work (``Ledger.post_in``), records the claims, writes every
row's outcome, the SMS of every recipient (outbox, topic ``sms.send``) and the batch's
counters. A crash anywhere rolls the whole sub-batch back; running the batch again goes on
with the sub-batches still ``pending``. Transfer ids are the batch's and the row's
(``bulk:<batch>:<row id>``), so nothing is paid twice whatever runs it again.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from mobipay.campaigns import errors
from mobipay.campaigns.bulk_model import (
    APPROVED,
    AWAITING_APPROVAL,
    CLAIM_DAYS_DEFAULT,
    CLAIMED,
    COMPLETED,
    FAILED,
    INVALID,
    MAX_INVALID_PCT_DEFAULT,
    PAID,
    PENDING,
    REJECTED,
    RETURNED,
    RUNNING,
    SIGNATURE_WINDOW_S,
    SUB_BATCH,
    WAITING,
    Batch,
    Campaign,
    FileRow,
    Funder,
    Member,
    Summary,
    check_claim_days,
    check_hash,
    check_pct,
    check_roles,
    name_matches,
    parse_file,
    result_header,
    result_line,
    signature_valid,
    sub_batch_count,
    transfer_id,
    verdict,
)
from mobipay.campaigns.tables import (
    bulk_batches,
    bulk_campaigns,
    bulk_funders,
    bulk_members,
    bulk_nonces,
    bulk_rows,
    bulk_sub_batches,
)
from mobipay.kernel.clock import as_utc
from mobipay.kernel.errors import IdempotencyConflict, NotFound, Unauthorized, ValidationFailed
from mobipay.kernel.events import Event
from mobipay.kernel.ids import check_idempotency_key, new_id
from mobipay.kernel.money import check_amount
from mobipay.kernel.msisdn import mask_msisdn, normalize_msisdn
from mobipay.ledger.chart import BANK_SETTLEMENT, SUSPENSE
from mobipay.ledger.model import AccountKind, AccountSpec, Leg, Transfer
from mobipay.ledger.uow import UnitOfWork, UnitOfWorkRunner
from mobipay.platform.bulk import insert_many, update_many
from mobipay.platform.outbox import Message, outbox
from mobipay.wallet.service import Claim, WalletService

#: Rows written per statement at upload (and read per chunk for the result file).
WRITE_CHUNK = 10_000
Progress = Callable[[int, int], None]


@dataclass(frozen=True, kw_only=True)
class BulkApproved(Event):
    """A batch was approved: the worker runs it (``campaigns.bulk_approved``)."""

    topic = "campaigns.bulk_approved"


def _funder(row: Any) -> Funder:
    return Funder(row.id, row.name, row.contact, row.account_code, row.status)


def _member(row: Any) -> Member:
    return Member(row.id, row.funder_id, row.name, tuple(row.roles.split(",")))


def _campaign(row: Any) -> Campaign:
    return Campaign(row.id, row.funder_id, row.name, row.account_code)


def _batch(row: Any) -> Batch:
    summary = Summary(rows_total=row.rows_total, rows_valid=row.rows_valid,
                      rows_invalid=row.rows_total - row.rows_valid,
                      amount_valid=int(row.amount_valid), paid_rows=row.paid_rows, paid_amount=int(row.paid_amount),
                      waiting_rows=row.waiting_rows, waiting_amount=int(row.waiting_amount),
                      failed_rows=row.failed_rows, failed_amount=int(row.failed_amount))
    return Batch(row.id, row.campaign_id, row.funder_id, row.file_name, row.file_sha256, row.state, row.reason,
                 row.max_invalid_pct, row.claim_days, row.sub_batches, row.created_by, row.approved_by,
                 as_utc(row.created_at), as_utc(row.approved_at) if row.approved_at else None,
                 as_utc(row.completed_at) if row.completed_at else None, summary)


class BulkDisbursements:
    """The bulk disbursement use cases; each write runs in one unit of work."""

    def __init__(self, uow: UnitOfWorkRunner, wallet: WalletService, *, sub_batch: int = SUB_BATCH,
                 in_flight: int = 2) -> None:
        self.uow = uow
        self.wallet = wallet
        self.sub_batch = sub_batch
        self.in_flight = in_flight  # sub-batches at once on PostgreSQL

    # ------------------------------------------------------------------ funders, members, campaigns

    async def create_funder(self, name: str, contact: str, *, actor: str, reason: str) -> Funder:
        """An organisation that pays many people, with its deposit account. Audited."""
        name = name.strip()
        if not 1 <= len(name) <= 128:
            raise ValidationFailed("the funder's name is 1 to 128 characters", field="name")
        msisdn = normalize_msisdn(contact)
        funder_id = new_id("fnd")
        spec = AccountSpec(f"liability:bulk_funder:{funder_id}", AccountKind.LIABILITY,
                           name=f"Deposit of {name[:60]}", debits_must_not_exceed_credits=True)

        async def work(uow: UnitOfWork) -> Funder:
            await uow.open_account(spec)
            await uow.conn.execute(bulk_funders.insert().values(id=funder_id, name=name, contact=msisdn,
                                                                account_code=spec.code, status="active",
                                                                created_at=uow.now))
            await uow.audit(actor=actor, action="bulk_funder.create", target=funder_id, reason=reason,
                            after={"name": name, "contact": mask_msisdn(msisdn)})
            return Funder(funder_id, name, msisdn, spec.code, "active")

        return await self.uow.run("bulk_create_funder", work)

    async def add_member(self, funder_id: str, name: str, roles: Sequence[str], *, actor: str,
                         reason: str) -> tuple[Member, str]:
        """A person of the funder with their own HMAC key (shown once): the key id is who
        signs, so the maker and the checker of a batch are known apart. Audited."""
        chosen = check_roles(roles)
        name = name.strip()
        if not 1 <= len(name) <= 64:
            raise ValidationFailed("the member's name is 1 to 64 characters", field="name")
        await self.funder(funder_id)
        member = Member(new_id("fkm"), funder_id, name, chosen)
        key = secrets.token_hex(32)

        async def work(uow: UnitOfWork) -> None:
            await uow.conn.execute(bulk_members.insert().values(id=member.id, funder_id=funder_id, name=name,
                                                                roles=",".join(chosen), secret=key,
                                                                created_at=uow.now))
            await uow.audit(actor=actor, action="bulk_member.create", target=member.id, reason=reason,
                            after={"funder_id": funder_id, "name": name, "roles": list(chosen)})

        await self.uow.run("bulk_add_member", work)
        return member, key

    async def deposit(self, funder_id: str, amount: int, *, reference: str, actor: str) -> int:
        """Money the funder paid in at the bank, credited to its deposit (idempotent by the
        bank's reference); answers the deposit's balance."""
        amount = check_amount(amount)
        check_idempotency_key(reference)
        funder = await self.funder(funder_id)

        async def work(uow: UnitOfWork) -> None:
            [result] = await uow.post([Transfer(f"bulk-deposit:{funder.id}:{reference}",
                                                (Leg.debit(BANK_SETTLEMENT, amount),
                                                 Leg.credit(funder.account_code, amount)),
                                                "bulk.deposit", reference=reference)])
            if result.error is not None:
                raise result.error
            if not result.replayed:
                await uow.audit(actor=actor, action="bulk_funder.deposit", target=funder.id, reason=reference,
                                after={"amount": amount})

        await self.uow.run("bulk_deposit", work)
        return (await self.uow.ledger.account(funder.account_code)).balance

    async def create_campaign(self, funder_id: str, name: str, *, actor: str) -> Campaign:
        """A campaign (a grant, an aid round) with its own ledger account, paid from by its batches."""
        name = name.strip()
        if not 1 <= len(name) <= 64:
            raise ValidationFailed("the campaign's name is 1 to 64 characters", field="name")
        funder = await self.funder(funder_id)
        campaign = Campaign(new_id("bcp"), funder.id, name, "")
        spec = AccountSpec(f"liability:bulk_campaign:{campaign.id}", AccountKind.LIABILITY,
                           name=f"Campaign {name}", debits_must_not_exceed_credits=True)

        async def work(uow: UnitOfWork) -> None:
            await uow.open_account(spec)
            await uow.conn.execute(bulk_campaigns.insert().values(id=campaign.id, funder_id=funder.id, name=name,
                                                                  account_code=spec.code, created_at=uow.now))
            await uow.audit(actor=actor, action="bulk_campaign.create", target=campaign.id, reason=name,
                            after={"funder_id": funder.id})

        await self.uow.run("bulk_create_campaign", work)
        return Campaign(campaign.id, funder.id, name, spec.code)

    async def fund_campaign(self, campaign_id: str, amount: int, *, idempotency_key: str, actor: str) -> int:
        """Move money from the funder's deposit to the campaign account (idempotent by key);
        answers the campaign's balance. A deposit too small is ``INSUFFICIENT_FUNDS``."""
        amount = check_amount(amount)
        check_idempotency_key(idempotency_key)
        campaign = await self.campaign(campaign_id)
        funder = await self.funder(campaign.funder_id)

        async def work(uow: UnitOfWork) -> None:
            [result] = await uow.post([Transfer(f"bulk-fund:{campaign.id}:{idempotency_key}",
                                                (Leg.debit(funder.account_code, amount),
                                                 Leg.credit(campaign.account_code, amount)),
                                                "bulk.fund", reference=campaign.name)])
            if result.error is not None:
                raise result.error
            if not result.replayed:
                await uow.audit(actor=actor, action="bulk_campaign.fund", target=campaign.id,
                                reason=idempotency_key, after={"amount": amount})

        await self.uow.run("bulk_fund_campaign", work)
        return (await self.uow.ledger.account(campaign.account_code)).balance

    async def funder(self, funder_id: str) -> Funder:
        row = await self._one(select(bulk_funders).where(bulk_funders.c.id == funder_id))
        if row is None:
            raise NotFound(f"no funder {funder_id}", field="funder_id")
        return _funder(row)

    async def funders(self) -> list[Funder]:
        async def work(uow: UnitOfWork) -> list[Funder]:
            return [_funder(r) for r in await uow.conn.execute(select(bulk_funders).order_by(bulk_funders.c.id))]

        return await self.uow.run("bulk_funders", work)

    async def campaign(self, campaign_id: str, *, funder_id: str | None = None) -> Campaign:
        """A campaign; with ``funder_id`` only that funder's (another's looks missing)."""
        row = await self._one(select(bulk_campaigns).where(bulk_campaigns.c.id == campaign_id))
        if row is None or (funder_id is not None and row.funder_id != funder_id):
            raise NotFound(f"no campaign {campaign_id}", field="campaign_id")
        return _campaign(row)

    async def campaigns(self, funder_id: str) -> list[Campaign]:
        async def work(uow: UnitOfWork) -> list[Campaign]:
            return [_campaign(r) for r in await uow.conn.execute(
                select(bulk_campaigns).where(bulk_campaigns.c.funder_id == funder_id).order_by(bulk_campaigns.c.id))]

        return await self.uow.run("bulk_campaigns", work)

    async def member(self, member_id: str) -> Member:
        row = await self._one(select(bulk_members).where(bulk_members.c.id == member_id))
        if row is None:
            raise NotFound(f"no member {member_id}", field="member_id")
        return _member(row)

    async def authenticate(self, member_id: str, timestamp: str, nonce: str, signature: str, method: str,
                           path: str, body: bytes) -> Member:
        """The member behind a signed request (``X-Funder-Key``, ``X-Timestamp``, ``X-Nonce``,
        ``X-Signature``), or ``UNAUTHORIZED`` saying what is wrong."""
        if not (member_id and timestamp.isdigit() and 8 <= len(nonce) <= 64 and signature):
            raise Unauthorized("sign the request: X-Funder-Key, X-Timestamp, X-Nonce (8-64 chars), X-Signature")
        if abs(time.time() - int(timestamp)) > SIGNATURE_WINDOW_S:
            raise Unauthorized(f"X-Timestamp is more than {SIGNATURE_WINDOW_S} s away from our clock")

        async def work(uow: UnitOfWork) -> Member:
            row = (await uow.conn.execute(select(bulk_members).where(bulk_members.c.id == member_id))).first()
            if row is None:
                raise Unauthorized("unknown X-Funder-Key")
            if not signature_valid(row.secret, signature, timestamp, nonce, method, path, body):
                raise Unauthorized("bad X-Signature: HMAC-SHA256 of timestamp\\nnonce\\nMETHOD\\npath\\nbody")
            seen = (await uow.conn.execute(select(bulk_nonces.c.nonce).where(
                bulk_nonces.c.member_id == member_id, bulk_nonces.c.nonce == nonce))).first()
            if seen is not None:
                raise Unauthorized("X-Nonce was used already: a replayed request")
            await uow.conn.execute(bulk_nonces.insert().values(member_id=member_id, nonce=nonce, seen_at=uow.now))
            await uow.conn.execute(bulk_nonces.delete().where(
                bulk_nonces.c.seen_at < uow.now - timedelta(seconds=2 * SIGNATURE_WINDOW_S)))
            return _member(row)

        return await self.uow.run("bulk_authenticate", work)

    # ------------------------------------------------------------------ upload and approval

    async def upload(self, member: Member, campaign_id: str, data: bytes, file_sha256: str, *,
                     idempotency_key: str, file_name: str = "", max_invalid_pct: int = MAX_INVALID_PCT_DEFAULT,
                     claim_days: int = CLAIM_DAYS_DEFAULT) -> tuple[Batch, bool]:
        """A batch file checked row by row and stored, accepted (``awaiting_approval``) or
        rejected with every row's error; answers the batch and whether it is a replay (the
        same Idempotency-Key with the same file returns the first batch; another file with
        that key is ``IDEMPOTENCY_CONFLICT``). A file that is not its SHA-256, or no batch
        at all, is refused and nothing is stored."""
        check_idempotency_key(idempotency_key)
        if not member.may("maker"):
            raise errors.BulkRoleRequired("only a maker uploads batches", field="X-Funder-Key")
        max_invalid_pct, claim_days = check_pct(max_invalid_pct), check_claim_days(claim_days)
        campaign = await self.campaign(campaign_id, funder_id=member.funder_id)
        earlier = await self._by_key(member.funder_id, idempotency_key)
        if earlier is not None:
            return self._replay(earlier, campaign.id, file_sha256), True
        check_hash(data, file_sha256)
        twin = await self._one(select(bulk_batches.c.id).where(
            bulk_batches.c.campaign_id == campaign.id, bulk_batches.c.file_sha256 == file_sha256.strip().lower(),
            bulk_batches.c.state != REJECTED))
        if twin is not None:  # the same file again under a new key: it would pay everyone twice
            raise errors.BulkDuplicateFile(f"batch {twin.id} of this campaign is this very file; a new batch needs "
                                           "a new file", batch_id=twin.id)
        rows = parse_file(data)
        batch_id = new_id("bdb")

        async def work(uow: UnitOfWork) -> Batch:
            for start in range(0, len(rows), SUB_BATCH):  # the name against the wallet's verified real name
                part = [r for r in rows[start:start + SUB_BATCH] if r.valid]
                known = await self.wallet.recipients_in(uow, sorted({r.msisdn for r in part}))
                for r in part:
                    found = known.get(r.msisdn)
                    if found is not None and not name_matches(r.name, found.real_name):
                        r.error_code = errors.BulkNameMismatch.code
            judged = verdict(rows, max_invalid_pct)
            valid = [r for r in rows if r.valid]
            state = AWAITING_APPROVAL if judged.accepted else REJECTED
            subs = sub_batch_count(len(rows), self.sub_batch) if judged.accepted else 0
            await uow.conn.execute(bulk_batches.insert().values(
                id=batch_id, campaign_id=campaign.id, funder_id=member.funder_id, idempotency_key=idempotency_key,
                file_name=file_name[:128], file_sha256=file_sha256.strip().lower(), state=state,
                reason=judged.reason[:256], rows_total=len(rows), rows_valid=len(valid),
                amount_valid=sum(r.amount for r in valid), max_invalid_pct=max_invalid_pct, claim_days=claim_days,
                sub_batches=subs, created_by=member.id, created_at=uow.now))
            for start in range(0, len(rows), WRITE_CHUNK):
                await insert_many(uow.conn, bulk_rows, [_row(batch_id, r) for r in rows[start:start + WRITE_CHUNK]])
            await insert_many(uow.conn, bulk_sub_batches, [{"batch_id": batch_id, "n": n, "state": "pending"}
                                                           for n in range(subs)])
            await uow.audit(actor=f"funder:{member.id}", action="bulk_batch.upload", target=batch_id,
                            reason=file_name[:100] or file_sha256[:16],
                            after={"state": state, "rows": len(rows), "valid": len(valid)})
            return await self._batch_in(uow, batch_id)

        try:
            return await self.uow.run("bulk_upload", work), False
        except IntegrityError:  # the same key uploaded at the same moment: the other one won
            earlier = await self._by_key(member.funder_id, idempotency_key)
            if earlier is None:
                raise
            return self._replay(earlier, campaign.id, file_sha256), True

    @staticmethod
    def _replay(earlier: Batch, campaign_id: str, file_sha256: str) -> Batch:
        if earlier.campaign_id != campaign_id or earlier.file_sha256 != file_sha256.strip().lower():
            raise IdempotencyConflict("this Idempotency-Key uploaded another file: use a new key for a new file")
        return earlier

    async def approve(self, member: Member, batch_id: str) -> Batch:
        """The checker's approval (maker-checker): a second person of the funder, while the
        campaign holds the batch's total. The worker then runs it. Audited."""
        if not member.may("checker"):
            raise errors.BulkRoleRequired("only a checker approves batches", field="X-Funder-Key")
        batch = await self.batch(batch_id, funder_id=member.funder_id)
        if batch.created_by == member.id:
            raise errors.BulkSameApprover("you uploaded this batch: another member (a checker) approves it")
        if batch.state != AWAITING_APPROVAL:
            raise errors.BulkBatchState(f"the batch is {batch.state}; only a batch awaiting approval is approved")
        campaign = await self.campaign(batch.campaign_id)
        # (read before the transaction, which on SQLite holds the only writer's lock; money spent
        # meanwhile only makes rows fail INSUFFICIENT_FUNDS at the run, never overdraws)
        balance = (await self.uow.ledger.account(campaign.account_code)).balance
        if balance < batch.summary.amount_valid:
            raise errors.BulkUnderfunded(f"the campaign holds {balance / 100:.2f} CNY, the batch pays "
                                         f"{batch.summary.amount_valid / 100:.2f} CNY: fund it first")

        async def work(uow: UnitOfWork) -> Batch:
            done = await uow.conn.execute(update(bulk_batches).where(
                bulk_batches.c.id == batch.id, bulk_batches.c.state == AWAITING_APPROVAL).values(
                state=APPROVED, approved_by=member.id, approved_at=uow.now))
            if done.rowcount != 1:
                raise errors.BulkBatchState("the batch was approved meanwhile")
            await uow.emit(BulkApproved(key=batch.id))
            await uow.audit(actor=f"funder:{member.id}", action="bulk_batch.approve", target=batch.id,
                            reason="maker-checker", before={"state": AWAITING_APPROVAL}, after={"state": APPROVED})
            return await self._batch_in(uow, batch.id)

        return await self.uow.run("bulk_approve", work)

    # ------------------------------------------------------------------ the run

    async def on_approved(self, message: Message) -> None:
        """The worker's handler of ``campaigns.bulk_approved``: run the batch (at least once
        is fine: a second run skips what the first finished)."""
        await self.run(message.key)

    async def run(self, batch_id: str, *, progress: Progress | None = None, limit: int | None = None) -> Batch:
        """Pay an approved batch, sub-batch by sub-batch (``limit``: at most that many this
        call); run again after a crash, it goes on where it stopped. ``progress(done, total)``
        after each sub-batch."""
        batch = await self.batch(batch_id)
        if batch.state == COMPLETED:
            return batch
        if batch.state not in (APPROVED, RUNNING):
            raise errors.BulkBatchState(f"the batch is {batch.state}: only an approved batch runs")
        campaign = await self.campaign(batch.campaign_id)
        funder = await self.funder(batch.funder_id)
        if batch.state == APPROVED:
            await self._set_state(batch.id, APPROVED, RUNNING)

        async def todo(uow: UnitOfWork) -> list[int]:
            return [int(r.n) for r in await uow.conn.execute(select(bulk_sub_batches.c.n).where(
                bulk_sub_batches.c.batch_id == batch.id, bulk_sub_batches.c.state == "pending")
                .order_by(bulk_sub_batches.c.n))]

        pending = await self.uow.run("bulk_todo", todo)
        done = batch.sub_batches - len(pending)
        # On PostgreSQL two sub-batches are in flight: the next one reads its rows and wallets
        # and builds its commands while the one before posts and commits (both lock the
        # campaign account, so the writes stay one after the other). SQLite has one writer.
        gate = asyncio.Semaphore(self.in_flight if self.uow.db.dialect == "postgresql" else 1)

        async def one(n: int) -> None:
            nonlocal done
            async with gate:
                await self._sub_batch(batch, campaign, funder, n)
            done += 1
            if progress is not None:
                progress(done, batch.sub_batches)

        tasks = [asyncio.ensure_future(one(n)) for n in (pending[:limit] if limit is not None else pending)]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        if not await self.uow.run("bulk_todo", todo):
            await self._set_state(batch.id, RUNNING, COMPLETED)
        return await self.batch(batch.id)

    async def _sub_batch(self, batch: Batch, campaign: Campaign, funder: Funder, n: int) -> None:
        lo, hi = n * self.sub_batch + 1, (n + 1) * self.sub_batch
        expires = timedelta(days=batch.claim_days)

        async def work(uow: UnitOfWork) -> None:
            mine = await uow.conn.execute(update(bulk_sub_batches).where(
                bulk_sub_batches.c.batch_id == batch.id, bulk_sub_batches.c.n == n,
                bulk_sub_batches.c.state == "pending").values(state="done", done_at=uow.now))
            if mine.rowcount != 1:  # another runner did it (or is doing it: we waited for its commit)
                return
            rows = list(await uow.conn.execute(select(
                bulk_rows.c.seq, bulk_rows.c.row_id, bulk_rows.c.msisdn, bulk_rows.c.name, bulk_rows.c.amount,
                bulk_rows.c.note).where(bulk_rows.c.batch_id == batch.id, bulk_rows.c.seq >= lo,
                                        bulk_rows.c.seq <= hi, bulk_rows.c.state == PENDING)
                .order_by(bulk_rows.c.seq)))
            if not rows:
                return
            wallets = await self.wallet.recipients_in(uow, sorted({r.msisdn for r in rows}))
            outcome: dict[int, tuple[str, str | None, str | None]] = {}  # seq -> state, code, transfer id
            commands: list[Transfer] = []
            posted: list[tuple[Any, bool]] = []  # (row, waiting)
            for r in rows:
                found = wallets.get(r.msisdn)
                if found is not None and found.status != "active":
                    outcome[r.seq] = (FAILED, errors.BulkRecipientUnavailable.code, None)
                    continue
                if found is not None and not name_matches(r.name, found.real_name):  # verified since the upload
                    outcome[r.seq] = (FAILED, errors.BulkNameMismatch.code, None)
                    continue
                to, fen = found.account_code if found is not None else SUSPENSE, int(r.amount)
                commands.append(Transfer(transfer_id(batch.id, r.row_id),
                                         (Leg.debit(campaign.account_code, fen), Leg.credit(to, fen)),
                                         "bulk.payment", reference=f"{batch.id}:{r.row_id}",
                                         metadata={"for": r.msisdn} if found is None else None))
                posted.append((r, found is None))
            results = await uow.post(commands)
            claims: list[Claim] = []
            sms: list[dict[str, Any]] = []
            for (r, waiting), command, result in zip(posted, commands, results, strict=True):
                if result.error is not None:
                    outcome[r.seq] = (FAILED, result.error.code, None)
                    continue
                outcome[r.seq] = (WAITING if waiting else PAID, None, command.id)
                if waiting and not result.replayed:
                    claims.append(Claim(new_id("clm"), command.id, campaign.id, funder.contact, r.msisdn,
                                        int(r.amount), "waiting", uow.now, uow.now + expires))
                params: dict[str, Any] = {"funder": funder.name, "amount_fen": int(r.amount), "note": r.note}
                if waiting:
                    params["days"] = batch.claim_days
                sms.append(_sms(f"{command.id}:to", r.msisdn, "bulk.invite" if waiting else "bulk.paid", params,
                                uow.now))
            if claims:
                await self.wallet.hold_for_unregistered_in(uow, claims)
            await update_many(uow.conn, bulk_rows, [
                {"batch_id": batch.id, "seq": seq, "state": s, "error_code": code, "transfer_id": tid}
                for seq, (s, code, tid) in outcome.items()], keys=("batch_id", "seq"))
            await insert_many(uow.conn, outbox, sms)
            amounts = {r.seq: int(r.amount) for r in rows}
            figures = {"paid_rows": 0, "paid_amount": 0, "waiting_rows": 0, "waiting_amount": 0, "failed_rows": 0,
                       "failed_amount": 0}
            for seq, (s, _, _) in outcome.items():
                kind = "paid" if s == PAID else "waiting" if s == WAITING else "failed"
                figures[f"{kind}_rows"] += 1
                figures[f"{kind}_amount"] += amounts[seq]
            await uow.conn.execute(update(bulk_batches).where(bulk_batches.c.id == batch.id).values(
                {bulk_batches.c[k]: bulk_batches.c[k] + v for k, v in figures.items()}))

        await self.uow.run("bulk_sub_batch", work)

    async def _set_state(self, batch_id: str, before: str, after: str) -> None:
        async def work(uow: UnitOfWork) -> None:
            values: dict[str, Any] = {"state": after}
            if after == COMPLETED:
                values["completed_at"] = uow.now
            await uow.conn.execute(update(bulk_batches).where(bulk_batches.c.id == batch_id,
                                                              bulk_batches.c.state == before).values(**values))

        await self.uow.run("bulk_state", work)

    # ------------------------------------------------------------------ reads

    async def batch(self, batch_id: str, *, funder_id: str | None = None, claims: bool = False) -> Batch:
        """A batch with its summary; with ``funder_id`` only that funder's (another's looks
        missing); ``claims``: also count the waiting rows claimed or returned since."""
        row = await self._one(select(bulk_batches).where(bulk_batches.c.id == batch_id))
        if row is None or (funder_id is not None and row.funder_id != funder_id):
            raise NotFound(f"no batch {batch_id}", field="batch_id")
        batch = _batch(row)
        if claims and batch.summary.waiting_rows:
            async def waiting(uow: UnitOfWork) -> list[str]:
                return [r.transfer_id for r in await uow.conn.execute(select(bulk_rows.c.transfer_id).where(
                    bulk_rows.c.batch_id == batch_id, bulk_rows.c.state == WAITING))]

            states = await self.wallet.claim_states(await self.uow.run("bulk_waiting", waiting))
            batch.summary.claimed_rows = sum(1 for s in states.values() if s == CLAIMED)
            batch.summary.returned_rows = sum(1 for s in states.values() if s == RETURNED)
        return batch

    async def batches(self, *, funder_id: str | None = None, limit: int = 50) -> list[Batch]:
        """The latest batches (of one funder), newest first."""
        query = select(bulk_batches).order_by(bulk_batches.c.created_at.desc(), bulk_batches.c.id.desc()).limit(limit)
        if funder_id is not None:
            query = query.where(bulk_batches.c.funder_id == funder_id)

        async def work(uow: UnitOfWork) -> list[Batch]:
            return [_batch(r) for r in await uow.conn.execute(query)]

        return await self.uow.run("bulk_batches", work)

    async def rows(self, batch_id: str, *, after: int = 0, limit: int = 100,
                   state: str | None = None) -> list[tuple[int, str, str, str, int, str, str, str | None, str | None]]:
        """Rows of a batch in file order after ``seq`` ``after``: (seq, row id, number, name,
        fen, note, status, error code, transfer id); a waiting row reads ``claimed`` or
        ``returned`` once the wallet's claim says so, a valid row of a rejected file
        ``not_paid``."""
        batch = await self.batch(batch_id)
        query = (select(bulk_rows).where(bulk_rows.c.batch_id == batch_id, bulk_rows.c.seq > after)
                 .order_by(bulk_rows.c.seq).limit(limit))
        if state is not None:
            query = query.where(bulk_rows.c.state == state)

        async def work(uow: UnitOfWork) -> list[Any]:
            return list(await uow.conn.execute(query))

        found = await self.uow.run("bulk_rows", work)
        states = await self.wallet.claim_states([r.transfer_id for r in found if r.state == WAITING])
        out = []
        for r in found:
            status = r.state
            if status == WAITING:
                status = {CLAIMED: CLAIMED, RETURNED: RETURNED}.get(states.get(r.transfer_id, ""), WAITING)
            elif status == PENDING and batch.state == REJECTED:
                status = "not_paid"
            out.append((int(r.seq), r.row_id, r.msisdn, r.name, int(r.amount), r.note, status, r.error_code,
                        r.transfer_id))
        return out

    async def results(self, batch_id: str, *, funder_id: str | None = None) -> AsyncIterator[str]:
        """The result file (CSV, file order): every row with its status, code and transfer id."""
        await self.batch(batch_id, funder_id=funder_id)

        async def rows() -> AsyncIterator[tuple[str, str, str, int, str, str, str | None, str | None]]:
            after = 0
            while True:
                chunk = await self.rows(batch_id, after=after, limit=WRITE_CHUNK)
                for r in chunk:
                    yield r[1:]
                if len(chunk) < WRITE_CHUNK:
                    return
                after = chunk[-1][0]

        yield result_header()
        async for row in rows():
            yield result_line(row)

    async def _batch_in(self, uow: UnitOfWork, batch_id: str) -> Batch:
        return _batch((await uow.conn.execute(select(bulk_batches).where(bulk_batches.c.id == batch_id))).one())

    async def _by_key(self, funder_id: str, key: str) -> Batch | None:
        row = await self._one(select(bulk_batches).where(bulk_batches.c.funder_id == funder_id,
                                                         bulk_batches.c.idempotency_key == key))
        return None if row is None else _batch(row)

    async def _one(self, query: Any) -> Any:
        async def work(uow: UnitOfWork) -> Any:
            return (await uow.conn.execute(query)).first()

        return await self.uow.run("bulk_read", work)

    async def counts(self, batch_id: str) -> dict[str, int]:
        """Rows per stored state (the console's and the CLI's view of a run)."""
        async def work(uow: UnitOfWork) -> dict[str, int]:
            return {r.state: int(r.n) for r in await uow.conn.execute(
                select(bulk_rows.c.state, func.count().label("n")).where(bulk_rows.c.batch_id == batch_id)
                .group_by(bulk_rows.c.state))}

        return await self.uow.run("bulk_counts", work)


def _row(batch_id: str, r: FileRow) -> dict[str, Any]:
    return {"batch_id": batch_id, "seq": r.seq, "row_id": r.row_id, "msisdn": r.msisdn, "name": r.name,
            "amount": r.amount, "note": r.note, "state": PENDING if r.valid else INVALID,
            "error_code": r.error_code, "transfer_id": None}


def _sms(key: str, to: str, template: str, params: dict[str, Any], now: datetime) -> dict[str, Any]:
    """An outbox row of the SMS channel's topic (as ``outbox.emit`` of an ``SmsRequested``
    writes it), for a set-based insert of a sub-batch's thousands."""
    payload = json.dumps({"key": key, "to": to, "template": template, "params": params}, ensure_ascii=False)
    return {"id": new_id("msg"), "topic": "sms.send", "key": key, "payload": payload, "headers": "{}",
            "available_at": now, "created_at": now}
