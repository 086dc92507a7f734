"""``mobipay sp …``: the SP registry, the billing run, governance decisions, settlement, the
statement and the exit report, for the operator's SP-management staff."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mobipay.kernel.money import yuan
from mobipay.platform.cli_support import ACTOR, choice, run
from mobipay.sp.model import Cycle, Measure

app = typer.Typer(help="Monternet SP governance: SPs and services, billing, cards and penalties, settlement. "
                  "Example: mobipay sp register --code 10661234 --name 天气通 --licence B2-20060001 "
                  "--hotline 4008101234 --share-bp 8500", no_args_is_help=True)


@app.command("register")
def sp_register(
    code: Annotated[str, typer.Option(help="The SP's service code: 1066 and 4-8 digits")],
    name: Annotated[str, typer.Option(help="The SP's name as subscribers see it")],
    licence: Annotated[str, typer.Option(help="Its value-added telecom licence number")],
    hotline: Annotated[str, typer.Option(help="Its customer hotline, digits")],
    share_bp: Annotated[int, typer.Option(help="Its share of information fees in basis points (8500 = 85%)")],
    account: Annotated[str, typer.Option(help="The bank account its settlements are paid to")] = "",
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Register an SP (its API key is made now: `mobipay sp api-key` shows it). Example:
    mobipay sp register --code 10661234 --name 天气通 --licence B2-20060001 --hotline 4008101234 --share-bp 8500"""
    sp = run(lambda c: c.sp.register_sp(code, name, licence=licence, hotline=hotline, share_bp=share_bp,
                                        actor=actor, settlement_account=account))
    typer.echo(f"SP {sp.code} {sp.name} registered ({sp.state.value})")


@app.command("service")
def sp_service(
    code: Annotated[str, typer.Option(help="The SP's service code")],
    keyword: Annotated[str, typer.Option(help="What subscribers send to order it, e.g. TQ")],
    name: Annotated[str, typer.Option(help="The service's name")],
    price: Annotated[int, typer.Option(help="Fen per message or per month (1 to 3000)")],
    cycle: Annotated[str, typer.Option(help="per_message or monthly")] = "monthly",
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Add a service to an SP. Example: mobipay sp service --code 10661234 --keyword TQ --name 天气预报 --price 500"""
    s = run(lambda c: c.sp.add_service(code, keyword, name, price=price, cycle=choice(Cycle, cycle, "--cycle"),
                                       actor=actor))
    typer.echo(f"{s.sp_code} {s.keyword} {s.name}: {s.price_words}")


@app.command("bill")
def sp_bill() -> None:
    """Run the billing: every fee due, to the phone bill or the wallet, once each (the worker
    does it every 10 minutes). Example: mobipay sp bill"""
    r = run(lambda c: c.sp.bill_all())
    typer.echo(f"{r.charged} charged ({yuan(r.amount)} CNY), {r.failed} refused, {r.skipped} skipped "
               f"(port shielded, exited or offline), {r.submitted} waiting for the billing system")


@app.command("violation")
def sp_violation(
    code: Annotated[str, typer.Option(help="The SP's service code")],
    cls: Annotated[str, typer.Option("--class", help="unconfirmed, pricing, spam, billing or complaints")],
    level: Annotated[str, typer.Option(help="minor, serious or grave")],
    reason: Annotated[str, typer.Option(help="What happened")],
    evidence: Annotated[str, typer.Option(help="Where the evidence is (case number, file)")],
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Record a violation: the catalogue's ladder gives the penalty (a red card or exit waits
    for a checker). Example: mobipay sp violation --code 10661234 --class pricing --level minor
    --reason "price not shown" --evidence case-17"""
    d = run(lambda c: c.sp_governance.record_violation(code, cls, level, reason=reason, evidence=evidence,
                                                       actor=actor))
    typer.echo(f"{d.id} {d.state}: rung {d.rung}: {d.summary}")


@app.command("review-complaints")
def sp_review_complaints(
    code: Annotated[str, typer.Option(help="The SP's service code")],
    period: Annotated[str, typer.Option(help="The month, YYYY-MM (Beijing time)")],
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """The month's complaint rate against the thresholds: a violation of the complaints class
    when it reaches one. Example: mobipay sp review-complaints --code 10661234 --period 2026-12"""
    d = run(lambda c: c.sp_governance.review_complaints(code, period, actor=actor))
    typer.echo("below the thresholds: no violation" if d is None else f"{d.id} {d.state}: {d.reason}: {d.summary}")


@app.command("check")
def sp_check(
    decision: Annotated[str, typer.Option(help="The proposed decision's id")],
    reason: Annotated[str, typer.Option(help="Why approved or rejected")],
    reject: Annotated[bool, typer.Option("--reject", help="Reject instead of approving")] = False,
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Check a red card or an exit proposed by someone else. Example: mobipay sp check --decision spd_… --reason ok"""
    d = run(lambda c: c.sp_governance.check(decision, approve=not reject, actor=actor, reason=reason))
    typer.echo(f"{d.id} {d.state}: {d.summary}")


@app.command("lift")
def sp_lift(
    code: Annotated[str, typer.Option(help="The SP's service code")],
    measure: Annotated[str, typer.Option(help="suspend_settlement, shield_port, force_confirmation, "
                                         "service_offline, yellow_card or red_card")],
    reason: Annotated[str, typer.Option(help="Why it is lifted")],
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Lift a measure in force. Example: mobipay sp lift --code 10661234 --measure suspend_settlement --reason fixed"""
    n = run(lambda c: c.sp_governance.lift(code, choice(Measure, measure, "--measure"), actor=actor, reason=reason))
    typer.echo(f"{n} measure(s) lifted")


@app.command("settle")
def sp_settle(period: Annotated[str, typer.Option(help="The month that ended, YYYY-MM")]) -> None:
    """Settle every SP for a month (held while its settlement is suspended). Example:
    mobipay sp settle --period 2026-12"""
    for s in run(lambda c: c.sp_settlements.settle(period)):
        typer.echo(f"{s.sp_code} {s.period}: fees {yuan(s.fees)}, refunds {yuan(s.refunds)}, operator "
                   f"{yuan(s.operator_share)}, deductions {yuan(s.deductions)}, net {yuan(s.net)} CNY: {s.state}")


@app.command("statement")
def sp_statement(
    code: Annotated[str, typer.Option(help="The SP's service code")],
    period: Annotated[str, typer.Option(help="The month settled, YYYY-MM")],
    out: Annotated[Path, typer.Option(help="Where to write the CSV")] = Path("sp-statement.csv"),
) -> None:
    """Write an SP's monthly statement as CSV. Example: mobipay sp statement --code 10661234 --period 2026-12"""
    out.write_text(run(lambda c: c.sp_settlements.statement(code, period)), encoding="utf-8")
    typer.echo(f"written {out}")


@app.command("exit-report")
def sp_exit_report(
    code: Annotated[str, typer.Option(help="The service code of an SP that exited")],
    out: Annotated[Path, typer.Option(help="Where to write the PDF")] = Path("sp-exit-report.pdf"),
) -> None:
    """Write the exit report to the provincial communications administration (PDF). Example:
    mobipay sp exit-report --code 10661234 --out exit-10661234.pdf"""
    out.write_bytes(run(lambda c: c.sp_governance.exit_report(code)))
    typer.echo(f"written {out}")


@app.command("api-key")
def sp_api_key(code: Annotated[str, typer.Option(help="The SP's service code")]) -> None:
    """Show the SP's HMAC key for its signed API calls (give it to the SP). Example:
    mobipay sp api-key --code 10661234"""
    typer.echo(run(lambda c: c.sp.api_key(code)))
