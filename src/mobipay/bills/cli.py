"""``mobipay billers …``, ``complaints …``, ``recon bills``: the bill zone from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mobipay.platform.cli_support import ACTOR, choice, day_of, run

if TYPE_CHECKING:
    pass

billers = typer.Typer(help="The bill zone's biller registry. Example: mobipay billers list --city 北京",
                      no_args_is_help=True)
complaints = typer.Typer(help="Complaints about bill payments. Example: mobipay complaints list --overdue",
                         no_args_is_help=True)


@billers.command("import")
def billers_import(
    file: Annotated[Path, typer.Argument(help="Registry CSV (the shipped one: src/mobipay/bills/data/billers.csv)",
                                         exists=True, dir_okay=False)],
    reason: Annotated[str, typer.Option(help="Why (audited)")] = "registry update",
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Add or update billers from a registry file; a bad row stops the import, naming it.
    Example: mobipay billers import billers.csv --reason 'new gas company in Suzhou'"""
    from mobipay.bills.model import parse_billers

    try:
        rows = parse_billers(file.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise typer.BadParameter(f"{exc}; fix the file and run again (nothing was imported)") from None
    added, updated = run(lambda c: c.bills.import_billers(rows, actor=actor, reason=reason))
    typer.echo(f"billers: {added} added, {updated} updated from {file}")


@billers.command("list")
def billers_list(
    city: Annotated[str | None, typer.Option(help="City, e.g. 北京")] = None,
    category: Annotated[str | None, typer.Option(help="water, electricity, gas, telecom, bus_card, …")] = None,
    q: Annotated[str | None, typer.Option(help="Part of the name or code")] = None,
) -> None:
    """Billers by city, category or name. Example: mobipay billers list --city 上海 --category gas"""
    from mobipay.bills.model import Category

    cat = choice(Category, category, "--category") if category else None
    for b in run(lambda c: c.bills.find(city=city, category=cat, q=q, limit=1000)):
        typer.echo(f"{b.code:<12} {b.category.value:<18} {b.city:<6} {b.name}  (fetch {b.fetch.value}, "
                   f"{b.amount_rule.value})")


def recon_bills(
    date: Annotated[str, typer.Option("--date", help="Business day (Shanghai), YYYY-MM-DD")],
    biller: Annotated[str | None, typer.Option(help="One biller's code (default: every biller)")] = None,
) -> None:
    """Fetch each biller's daily file, settle pending payments from it and report differences
    (paid here but unknown there, there but not here, amount mismatch).
    Example: mobipay recon bills --date 2026-11-24"""
    day = day_of(date)
    reports = run(lambda c: c.bills.reconcile(day, biller))
    exceptions = 0
    for report in reports:
        if report.lines or report.exceptions:
            typer.echo(f"{report.partner}: {report.lines} lines, {report.matched} matched, "
                       f"{report.settled_from_file} settled from the file, {len(report.exceptions)} exceptions")
        for item in report.exceptions:
            typer.echo(f"  {item['kind']:<16} {item['order_id']}  ours={item['our_state']}/{item['our_amount']}  "
                       f"theirs={item['partner_status']}/{item['partner_amount']}")
        exceptions += len(report.exceptions)
    typer.echo(f"{len(reports)} billers reconciled for {day}; {exceptions} exceptions; reports in "
               f"{reports[0].report_path.parent if reports and reports[0].report_path else '-'}")
    if exceptions:
        raise typer.Exit(1)


@complaints.command("list")
def complaints_list(
    overdue: Annotated[bool, typer.Option(help="Only those past their deadline")] = False,
    biller: Annotated[str | None, typer.Option(help="One biller's code")] = None,
) -> None:
    """Open complaints, oldest deadline first. Example: mobipay complaints list --overdue"""
    for c in run(lambda ctx: ctx.complaints.queue(overdue_only=overdue, biller=biller)):
        typer.echo(f"{c.id}  {c.state.value:<11} {c.assignee:<10} due {c.due_at:%Y-%m-%d %H:%M}  {c.biller:<10} "
                   f"{c.reason.value}  payment {c.payment_id}")


@complaints.command("move")
def complaints_move(
    complaint_id: Annotated[str, typer.Argument(help="Complaint id (cmp_…)")],
    state: Annotated[str, typer.Option(help="in_progress, resolved or rejected")],
    note: Annotated[str, typer.Option(help="What was done (required to resolve or reject; audited)")] = "",
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Move a complaint on; the subscriber is told by SMS.
    Example: mobipay complaints move cmp_0192… --state resolved --note 'biller credited the account'"""
    from mobipay.bills.model import ComplaintState

    to = choice(ComplaintState, state, "--state")
    c = run(lambda ctx: ctx.complaints.move(complaint_id, to, actor=actor, note=note))
    typer.echo(f"{c.id}: {c.state.value}")


@complaints.command("escalate")
def complaints_escalate() -> None:
    """Escalate every complaint past its deadline now (the worker does it every 5 minutes).
    Example: mobipay complaints escalate"""
    typer.echo(f"escalated {run(lambda c: c.complaints.escalate_overdue())} complaint(s)")


@billers.command("remind")
def billers_remind() -> None:
    """Check saved bills for new bills now: SMS reminders and autopay (the worker does it
    continuously). Example: mobipay billers remind"""
    typer.echo(f"checked {run(lambda c: c.saved_bills.check_due(limit=100_000))} saved bill(s)")
