"""``mobipay recon resolve``, ``bank resolve``, and how every reconciliation prints."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from mobipay.platform.cli_support import ACTOR, run

if TYPE_CHECKING:
    from mobipay.orders.service import ReconReport



def recon_resolve(
    order_id: Annotated[str, typer.Argument(help="The order a reconciliation listed")],
    action: Annotated[str, typer.Option(help="repush (send it again) or refund (reverse it to the payer)")],
    reason: Annotated[str, typer.Option(help="Why (audited)")],
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Resolve "paid here but unknown there": send the order again (same id, so the partner
    cannot do it twice) or refund the payer.
    Example: mobipay recon resolve bp_… --action refund --reason 'biller lost it'"""
    if action not in ("repush", "refund"):
        raise typer.BadParameter("--action repush or --action refund")
    if action == "repush":
        order = run(lambda c: c.orders.repush(order_id, actor=actor, reason=reason))
    else:
        order = run(lambda c: c.orders.refund(order_id, actor=actor, reason=reason))
    typer.echo(f"{order.id}: {action} done ({order.amount / 100:.2f} CNY, {order.partner})")


def bank_resolve() -> None:
    """Ask partners once about every pending order that is due (the worker does this all the
    time). Example: mobipay bank resolve"""
    asked = run(lambda c: c.orders.resolve_pending(limit=10_000))
    typer.echo(f"asked partners about {asked} pending order(s)")


def print_recon(report: ReconReport) -> None:
    """Print a reconciliation's summary and exceptions; exit 1 while there is anything to look at."""
    typer.echo(f"{report.partner} file {report.day}: {report.lines} lines, {report.matched} matched, "
               f"{report.settled_from_file} pending orders settled from the file, "
               f"{len(report.exceptions)} exceptions to investigate")
    for item in report.exceptions:
        typer.echo(f"  {item['kind']:<16} {item['order_id']}  ours={item['our_state']}/{item['our_amount']}  "
                   f"theirs={item['partner_status']}/{item['partner_amount']}")
    typer.echo(f"report: {report.report_path}")
    if report.exceptions:
        raise typer.Exit(1)
