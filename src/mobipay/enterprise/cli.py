"""``mobipay enterprise …``: employers, their employees and allowances, closed-loop
merchants, readers, the month end and the monthly reports, for operations (the worker runs
the month end by itself)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mobipay.enterprise.model import DEFAULT_RULES, previous_month, rules_from
from mobipay.enterprise.service import MonthClose, Report
from mobipay.platform.cli_support import ACTOR, run

app = typer.Typer(help="The enterprise one-card (企业一卡通): employers, allowances, attendance. "
                  "Example: mobipay enterprise employees mch_0192…", no_args_is_help=True)


def _yuan(fen: int) -> str:
    return f"{fen / 100:,.2f}"


def _rules_file(path: Path | None) -> str:
    if path is None:
        return ""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {path}: {exc.strerror}") from None


@app.command("register")
def register(
    merchant_id: Annotated[str, typer.Argument(help="The company's merchant account (mch_…), approved")],
    rules: Annotated[Path | None, typer.Option(help="Spending rules as JSON (docs/enterprise.md); default: "
                                                    "three meals, 30 CNY a meal, 60 a day, expiry")] = None,
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Make an approved merchant account an employer (audited). Example:
    mobipay enterprise register mch_0192… --rules rules.json"""
    parsed = rules_from(_rules_file(rules)) if rules else DEFAULT_RULES
    e = run(lambda c: c.enterprise.register(merchant_id, parsed, actor=actor))
    typer.echo(f"{e.id}  {e.name}  funds {e.funds_account}  month end {e.rules.month_end.value}")


@app.command("rules")
def set_rules(
    employer_id: Annotated[str, typer.Argument(help="The employer (mch_…)")],
    rules: Annotated[Path, typer.Argument(help="Spending rules as JSON")],
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Replace an employer's spending rules (audited). Example: mobipay enterprise rules mch_0192… rules.json"""
    parsed = rules_from(_rules_file(rules))
    e = run(lambda c: c.enterprise.set_rules(employer_id, parsed, actor=actor))
    typer.echo(f"{e.id}  rules {e.rules.to_json()}")


@app.command("deposit")
def deposit(
    employer_id: Annotated[str, typer.Argument(help="The employer (mch_…)")],
    amount: Annotated[int, typer.Argument(help="Fen received from the employer's bank, e.g. 10000000")],
    bank_reference: Annotated[str, typer.Option(help="The bank's receipt reference (the idempotency key)")],
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Record the employer's bank transfer into its funds (twice the same reference: once).
    Example: mobipay enterprise deposit mch_0192… 10000000 --bank-reference ICBC20261207001"""
    balance = run(lambda c: c.enterprise.deposit(employer_id, amount, bank_reference=bank_reference, actor=actor))
    typer.echo(f"employer funds: {_yuan(balance)} CNY")


@app.command("enrol")
def enrol(
    employer_id: Annotated[str, typer.Argument(help="The employer (mch_…)")],
    phone: Annotated[str, typer.Argument(help="The employee's mobile number (a mobipay wallet)")],
    name: Annotated[str, typer.Option(help="The employee's name")] = "",
    employee_no: Annotated[str, typer.Option(help="The employer's staff number")] = "",
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Enrol one employee by phone number. Example: mobipay enterprise enrol mch_0192… 13800138000 --name 张三"""
    e = run(lambda c: c.enterprise.enrol(employer_id, phone, name=name, employee_no=employee_no, actor=actor))
    typer.echo(f"{e.id}  {e.msisdn}  {e.name}  allowance {e.allowance_account}")


@app.command("import")
def import_csv(
    employer_id: Annotated[str, typer.Argument(help="The employer (mch_…)")],
    file: Annotated[Path, typer.Argument(help="CSV: phone,name,employee_no (header optional)")],
    key: Annotated[str, typer.Option(help="Idempotency key: the same key and file import once")],
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Enrol employees from a CSV file; every refused row is listed with its reason.
    Example: mobipay enterprise import mch_0192… staff.csv --key staff-2026-12"""
    text = _rules_file(file)
    result = run(lambda c: c.enterprise.import_csv(employer_id, text, idempotency_key=key, actor=actor))
    for r in result.rows:
        if not r.ok:
            typer.echo(f"  line {r.line}: {r.phone}: {r.code}: {r.detail}")
    typer.echo(f"{result.enrolled} enrolled, {result.failed} refused" + (" (answered before)" if result.replayed
                                                                          else ""))


@app.command("employees")
def list_employees(employer_id: Annotated[str, typer.Argument(help="The employer (mch_…)")]) -> None:
    """Active employees with their allowance balances. Example: mobipay enterprise employees mch_0192…"""
    for e in run(lambda c: c.enterprise.employees(employer_id)):
        typer.echo(f"{e.id}  {e.msisdn}  {e.name or '-'}  {e.employee_no or '-'}  allowance {_yuan(e.balance)} CNY")


@app.command("leave")
def leave(
    employer_id: Annotated[str, typer.Argument(help="The employer (mch_…)")],
    employee_id: Annotated[str, typer.Argument(help="The employee (emp_…)")],
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """An employee leaves: the allowance left goes back to the employer.
    Example: mobipay enterprise leave mch_0192… emp_0192…"""
    e = run(lambda c: c.enterprise.leave(employer_id, employee_id, actor=actor))
    typer.echo(f"{e.id}  {e.msisdn}  {e.state}")


@app.command("merchant")
def name_merchant(
    employer_id: Annotated[str, typer.Argument(help="The employer (mch_…)")],
    merchant_id: Annotated[str, typer.Argument(help="The merchant accepting the allowance (mch_…), approved")],
    label: Annotated[str, typer.Option(help="canteen, shop, …")] = "canteen",
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Name a closed-loop merchant (canteen, company shop) that accepts the allowance.
    Example: mobipay enterprise merchant mch_employer… mch_canteen… --label canteen"""
    run(lambda c: c.enterprise.name_merchant(employer_id, merchant_id, label=label, actor=actor))
    typer.echo(f"{merchant_id} accepts {employer_id}'s allowance ({label})")


@app.command("fund")
def fund(
    employer_id: Annotated[str, typer.Argument(help="The employer (mch_…)")],
    amount: Annotated[int, typer.Argument(help="Fen per employee, e.g. 60000 for 600.00 CNY")],
    month: Annotated[str, typer.Option(help="The month it is for, YYYY-MM")],
    key: Annotated[str, typer.Option(help="Idempotency key: the same key funds once")],
    purpose: Annotated[str, typer.Option(help="meal, transport, …")] = "meal",
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """A funding run: the amount to every active employee's allowance from the employer's
    funds, in one ledger batch. Example: mobipay enterprise fund mch_0192… 60000 --month 2026-12 --key meal-2026-12"""

    def progress(done: int, total: int) -> None:
        typer.echo(f"  … {done}/{total} transfers", err=True)

    r = run(lambda c: c.enterprise.fund(employer_id, month, amount, idempotency_key=key, actor=actor,
                                        purpose=purpose, progress=progress))
    typer.echo(f"{r.id}  {r.month}  {r.purpose}  {r.employees} employees  {_yuan(r.total)} CNY"
               + ("  (answered before)" if r.replayed else ""))


@app.command("close-month")
def close_month(
    employer_id: Annotated[str, typer.Argument(help="One employer (mch_…); none: every employer")] = "",
    month: Annotated[str, typer.Option(help="YYYY-MM, ended; default: last month")] = "",
) -> None:
    """Month end: what is left of a month's allowance rolls over or goes back to the employer
    (its rule), once per employer and month; the worker runs it by itself.
    Example: mobipay enterprise close-month mch_0192… --month 2026-11"""
    if not employer_id:
        done = run(lambda c: c.enterprise.close_due())
        typer.echo(f"{done} employers' last month closed")
        return

    async def one(c: Any) -> MonthClose:
        closed: MonthClose = await c.enterprise.close_month(employer_id, month or previous_month(c.clock.now()))
        return closed

    m = run(one)
    typer.echo(f"{m.employer_id} {m.month}: {m.rule}, {m.employees} employees, kept {_yuan(m.kept)} CNY, "
               f"returned {_yuan(m.returned)} CNY" + (" (closed before)" if m.replayed else ""))


@app.command("reader")
def reader(
    employer_id: Annotated[str, typer.Argument(help="The employer (mch_…)")],
    label: Annotated[str, typer.Argument(help="Where it is, e.g. '南门闸机'")],
    kind: Annotated[str, typer.Option(help="door or attendance")] = "attendance",
    public_key: Annotated[str, typer.Option(help="The reader's Ed25519 public key (base64); none: one is made "
                                                 "and its private half shown once")] = "",
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Register a company reader (door or attendance) that signs its uploads.
    Example: mobipay enterprise reader mch_0192… 南门闸机 --kind door"""
    r, seed = run(lambda c: c.enterprise.register_reader(employer_id, label, kind=kind, public_key=public_key or None,
                                                         actor=actor))
    typer.echo(f"{r.id}  {r.label}  {r.kind}  public key {r.public_key}")
    if seed:
        typer.echo(f"private key (shown once, install it on the reader): {seed}")


@app.command("report")
def report(
    employer_id: Annotated[str, typer.Argument(help="The employer (mch_…)")],
    month: Annotated[str, typer.Option(help="YYYY-MM; default: this month")] = "",
) -> None:
    """The employer's month: funds, funding runs, spending per employee and attendance.
    Example: mobipay enterprise report mch_0192… --month 2026-12"""

    async def work(c: Any) -> Report:
        found: Report = await c.enterprise.report(employer_id, month or c.enterprise.this_month())
        return found

    r = run(work)
    typer.echo(f"{r.employer.name} {r.month}: funds {_yuan(r.funds)} CNY, {len(r.employees)} employees")
    for run_ in r.runs:
        typer.echo(f"  funding {run_.id} {run_.purpose}: {run_.employees} × {_yuan(run_.total // run_.employees)} = "
                   f"{_yuan(run_.total)} CNY")
    typer.echo("  employee                 funded   allowance    wallet  payments   balance")
    for s in r.by_employee:
        typer.echo(f"  {s.msisdn:<16} {_yuan(s.funded):>14} {_yuan(s.allowance):>11} {_yuan(s.wallet):>9} "
                   f"{s.payments:>9} {_yuan(s.balance):>9}")
    typer.echo("  attendance: employee, days, late, hours")
    for a in r.attendance:
        typer.echo(f"  {a.msisdn:<16} {a.days:>4} {a.late:>4} {a.minutes / 60:>7.1f}")
