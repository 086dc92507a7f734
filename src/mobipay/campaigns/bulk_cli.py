"""``mobipay campaigns bulk …``: the operator's side of bulk disbursements (funders, their
members and deposits, campaigns and their funding), and a funder's batch from the command
line (upload, approve, run with progress, status, results). Operator actions are audited
with ``--actor``; upload and approve act as the funder's member named by ``--member``."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from mobipay.campaigns.bulk_model import CLAIM_DAYS_DEFAULT, MAX_INVALID_PCT_DEFAULT, Batch
from mobipay.campaigns.bulk_service import BulkDisbursements
from mobipay.kernel.money import yuan
from mobipay.platform.cli_support import ACTOR, run

bulk_app = typer.Typer(help="Bulk disbursements (a school's grant to 300 students). Example: mobipay campaigns "
                       "bulk upload bcp_… grant.csv --member fkm_… --key grant-2026", no_args_is_help=True)


def _show(b: Batch) -> None:
    s = b.summary
    typer.echo(f"{b.id}  {b.state}  campaign {b.campaign_id}  file {b.file_name or '-'} sha256 {b.file_sha256[:16]}…")
    if b.reason:
        typer.echo(f"  rejected: {b.reason}")
    typer.echo(f"  rows {s.rows_total}: valid {s.rows_valid} ({yuan(s.amount_valid)} CNY), invalid {s.rows_invalid}")
    typer.echo(f"  paid {s.paid_rows} ({yuan(s.paid_amount)} CNY), waiting for registration {s.waiting_rows} "
               f"({yuan(s.waiting_amount)} CNY; claimed since {s.claimed_rows}, returned {s.returned_rows}), "
               f"failed {s.failed_rows} ({yuan(s.failed_amount)} CNY), pending {s.pending_rows}")


@bulk_app.command("funder-create")
def funder_create(
    name: Annotated[str, typer.Argument(help="The organisation, e.g. 邵阳市教育基金会")],
    contact: Annotated[str, typer.Argument(help="Its contact mobile number")],
    reason: Annotated[str, typer.Option(help="Why (audit trail)")] = "bulk disbursement funder",
    actor: str = ACTOR,
) -> None:
    """Register a funder with its deposit account. Example: mobipay campaigns bulk funder-create
    邵阳市教育基金会 13800138000"""
    f = run(lambda c: c.bulk.create_funder(name, contact, actor=actor, reason=reason))
    typer.echo(f"{f.id}  {f.name}  deposit {f.account_code}")


@bulk_app.command("member-add")
def member_add(
    funder_id: Annotated[str, typer.Argument(help="fnd_…")],
    name: Annotated[str, typer.Argument(help="The person, e.g. 刘会计")],
    role: Annotated[list[str], typer.Option(help="maker (uploads) and/or checker (approves); repeat")],
    reason: Annotated[str, typer.Option(help="Why (audit trail)")] = "funder member",
    actor: str = ACTOR,
) -> None:
    """Add a person of a funder with their own API key (printed once). Example: mobipay campaigns
    bulk member-add fnd_… 陈主任 --role checker"""
    m, key = run(lambda c: c.bulk.add_member(funder_id, name, role, actor=actor, reason=reason))
    typer.echo(f"{m.id}  {m.name}  roles {','.join(m.roles)}")
    typer.echo(f"key (shown once, sign requests with it): {key}")


@bulk_app.command("deposit")
def deposit(
    funder_id: Annotated[str, typer.Argument(help="fnd_…")],
    amount: Annotated[int, typer.Argument(help="Integer fen, e.g. 15000000 for 150,000.00 CNY")],
    reference: Annotated[str, typer.Option(help="The bank transfer's reference (the idempotency key)")],
    actor: str = ACTOR,
) -> None:
    """Credit money the funder paid in at the bank. Example: mobipay campaigns bulk deposit fnd_…
    15000000 --reference BANK-2026-001"""
    balance = run(lambda c: c.bulk.deposit(funder_id, amount, reference=reference, actor=actor))
    typer.echo(f"deposit balance {yuan(balance)} CNY")


@bulk_app.command("campaign-create")
def campaign_create(
    funder_id: Annotated[str, typer.Argument(help="fnd_…")],
    name: Annotated[str, typer.Argument(help="e.g. 2026 助学金")],
    actor: str = ACTOR,
) -> None:
    """Open a campaign account of a funder. Example: mobipay campaigns bulk campaign-create fnd_… '2026 助学金'"""
    k = run(lambda c: c.bulk.create_campaign(funder_id, name, actor=actor))
    typer.echo(f"{k.id}  {k.name}  account {k.account_code}")


@bulk_app.command("fund")
def fund(
    campaign_id: Annotated[str, typer.Argument(help="bcp_…")],
    amount: Annotated[int, typer.Argument(help="Integer fen from the funder's deposit")],
    key: Annotated[str, typer.Option(help="Idempotency key: the same key funds once")],
    actor: str = ACTOR,
) -> None:
    """Move money from the funder's deposit to the campaign. Example: mobipay campaigns bulk fund
    bcp_… 15000000 --key fund-1"""
    balance = run(lambda c: c.bulk.fund_campaign(campaign_id, amount, idempotency_key=key, actor=actor))
    typer.echo(f"campaign balance {yuan(balance)} CNY")


@bulk_app.command("upload")
def upload(
    campaign_id: Annotated[str, typer.Argument(help="bcp_…")],
    file: Annotated[Path, typer.Argument(help="CSV: row_id,msisdn,name,amount_yuan,note (or amount_fen)",
                                         exists=True, dir_okay=False)],
    member: Annotated[str, typer.Option(help="The maker's key id (fkm_…)")],
    key: Annotated[str, typer.Option(help="Idempotency key: the same key and file return the first batch")],
    sha256: Annotated[str, typer.Option(help="The file's SHA-256 as the funder sent it (default: computed here)")] = "",
    max_invalid_pct: Annotated[int, typer.Option(help="Reject the file above this share of invalid rows")] = (
        MAX_INVALID_PCT_DEFAULT),
    claim_days: Annotated[int, typer.Option(help="Days money waits for a number without a wallet")] = (
        CLAIM_DAYS_DEFAULT),
) -> None:
    """Upload a batch file for a maker: every row checked; accepted or rejected with each row's
    error. Example: mobipay campaigns bulk upload bcp_… grant.csv --member fkm_… --key grant-2026"""
    data = file.read_bytes()

    async def work(c: Any) -> tuple[Batch, bool]:
        bulk: BulkDisbursements = c.bulk
        m = await bulk.member(member)
        return await bulk.upload(m, campaign_id, data, sha256 or hashlib.sha256(data).hexdigest(),
                                   idempotency_key=key, file_name=file.name, max_invalid_pct=max_invalid_pct,
                                   claim_days=claim_days)

    batch, replayed = run(work)
    if replayed:
        typer.echo("(the batch this key uploaded before)")
    _show(batch)


@bulk_app.command("approve")
def approve(
    batch_id: Annotated[str, typer.Argument(help="bdb_…")],
    member: Annotated[str, typer.Option(help="The checker's key id (fkm_…): not the maker")],
) -> None:
    """Approve a batch as the funder's second person (the worker then pays it, or run it here).
    Example: mobipay campaigns bulk approve bdb_… --member fkm_…"""
    async def work(c: Any) -> Batch:
        bulk: BulkDisbursements = c.bulk
        return await bulk.approve(await bulk.member(member), batch_id)

    _show(run(work))


@bulk_app.command("run")
def run_batch(batch_id: Annotated[str, typer.Argument(help="bdb_…")]) -> None:
    """Pay an approved batch now, sub-batch by sub-batch with progress; run it again after a
    crash and it goes on where it stopped (nothing is paid twice). Example: mobipay campaigns
    bulk run bdb_…"""
    async def work(c: Any) -> Batch:
        with typer.progressbar(length=1, label="paying", file=sys.stderr) as bar:
            seen = [0]

            def progress(done: int, total: int) -> None:
                bar.length = total
                bar.update(done - seen[0])
                seen[0] = done

            bulk: BulkDisbursements = c.bulk
            return await bulk.run(batch_id, progress=progress)

    _show(run(work))


@bulk_app.command("status")
def status(batch_id: Annotated[str, typer.Argument(help="bdb_…")]) -> None:
    """A batch's state and summary. Example: mobipay campaigns bulk status bdb_…"""
    _show(run(lambda c: c.bulk.batch(batch_id, claims=True)))


@bulk_app.command("results")
def results(
    batch_id: Annotated[str, typer.Argument(help="bdb_…")],
    out: Annotated[Path | None, typer.Option(help="Write the CSV here (default: standard output)")] = None,
) -> None:
    """The result file: every row with its status, error code and transfer id. Example:
    mobipay campaigns bulk results bdb_… --out results.csv"""
    async def work(c: Any) -> int:
        n = 0
        sink = out.open("w", encoding="utf-8") if out is not None else sys.stdout
        try:
            async for line in c.bulk.results(batch_id):
                sink.write(line)
                n += 1
        finally:
            if out is not None:
                sink.close()
        return n

    lines = run(work)
    if out is not None:
        typer.echo(f"{lines - 1} rows written to {out}", err=True)


def mount(app: typer.Typer) -> None:
    """Put these commands under ``mobipay campaigns bulk``."""
    app.add_typer(bulk_app, name="bulk")
