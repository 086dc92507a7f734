"""``mobipay ledger …``: checks and queries of the books."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from mobipay.platform.cli_support import run

if TYPE_CHECKING:
    pass

app = typer.Typer(help="Ledger checks and queries. Example: mobipay ledger verify", no_args_is_help=True)


@app.command("verify")
def ledger_verify(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Recompute every balance from postings; exit 1 on any difference. Example: mobipay ledger verify"""
    report = run(lambda c: c.ledger.verify())
    if as_json:
        typer.echo(json.dumps({"ok": report.ok, "accounts": report.accounts, "totals": report.totals,
                               "differences": report.differences, "unbalanced": report.unbalanced,
                               "orphan_postings": report.orphan_postings}, indent=2, default=str))
    else:
        typer.echo(f"accounts checked: {report.accounts}")
        for currency, total in sorted(report.totals.items()):
            typer.echo(f"sum of balances, {currency}: {total} fen" + ("" if total == 0 else "  <-- must be 0"))
        for diff in report.differences:
            typer.secho(f"DIFFERENCE {json.dumps(diff, default=str)}", fg="red")
        for tid, currency, total in report.unbalanced:
            typer.secho(f"UNBALANCED transfer {tid}: {currency} off by {total}", fg="red")
        if report.orphan_postings:
            typer.secho(f"ORPHAN postings: {report.orphan_postings}", fg="red")
        typer.secho("ledger verify: clean" if report.ok else "ledger verify: DIFFERENCES FOUND",
                    fg="green" if report.ok else "red")
    if not report.ok:
        raise typer.Exit(1)


@app.command("balance")
def ledger_balance(code: Annotated[str, typer.Argument(help="Account code, e.g. wallet:+8613800138000")]) -> None:
    """Show an account's balances. Example: mobipay ledger balance wallet:+8613800138000"""
    acc = run(lambda c: c.ledger.account(code))
    typer.echo(f"{acc.code} ({acc.kind.value}, {acc.currency}{', FROZEN' if acc.frozen else ''})")
    typer.echo(f"  balance   {acc.balance} fen\n  available {acc.available} fen")
    typer.echo(f"  pending   debits {acc.debits_pending} / credits {acc.credits_pending} fen")


@app.command("statement")
def ledger_statement(
    code: Annotated[str, typer.Argument(help="Account code")],
    limit: Annotated[int, typer.Option(help="Entries per page")] = 20,
    after: Annotated[int, typer.Option(help="Cursor: the last seq already seen")] = 0,
) -> None:
    """Print an account's entries. Example: mobipay ledger statement wallet:+8613800138000 --limit 5"""
    items, nxt = run(lambda c: c.ledger.statement(code, after=after, limit=limit))
    typer.echo(f"{'seq':>6}  {'time (UTC)':<20} {'transfer':<40} {'D/C':>3} {'amount':>12} {'balance':>12}")
    for e in items:
        side = "D" if e["amount"] > 0 else "C"
        typer.echo(f"{e['account_seq']:>6}  {e['created_at']:%Y-%m-%d %H:%M:%S} {e['transfer_id']:<40} "
                   f"{side:>3} {abs(e['amount']):>12} {e['balance_after']:>12}{'  (pending)' if e['pending'] else ''}")
    if nxt is not None:
        typer.echo(f"more: mobipay ledger statement {code} --after {nxt}")


@app.command("sweep-holds")
def ledger_sweep() -> None:
    """Void holds past their timeout now (the worker does this continuously). Example: mobipay ledger sweep-holds"""
    count = run(lambda c: c.ledger.sweep_expired_holds())
    typer.echo(f"expired holds voided: {count}")
