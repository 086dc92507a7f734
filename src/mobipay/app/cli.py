"""``mobipay``: the operator's command-line tool.

Every command reads MOBIPAY_DATABASE_URL (default: SQLite under ./var) and the other
MOBIPAY_* settings. ``mobipay COMMAND --help`` shows an example for each.
"""

from __future__ import annotations

import asyncio
import datetime
import enum
import importlib
import importlib.util
import json
import signal
import sys
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from mobipay.app.bootstrap import Container, build
from mobipay.channels.sms import cli as sms_cli
from mobipay.channels.voice import cli as voice_cli
from mobipay.channels.web.console import cli as operator_cli
from mobipay.kernel.clock import SHANGHAI
from mobipay.kernel.errors import CATALOGUE, MobipayError
from mobipay.orders.service import ReconReport
from mobipay.platform import cli_support
from mobipay.platform.cli_support import run, settings_or_exit
from mobipay.platform.config import Settings
from mobipay.platform.db import safe_url
from mobipay.platform.periodic import every

T = TypeVar("T")

app = typer.Typer(help="mobipay operator tool. Example: mobipay db upgrade && mobipay demo && mobipay serve",
                  no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database schema. Example: mobipay db upgrade", no_args_is_help=True)
ledger_app = typer.Typer(help="Ledger checks and queries. Example: mobipay ledger verify", no_args_is_help=True)
outbox_app = typer.Typer(help="Outbox status and dead letters. Example: mobipay outbox status",
                         no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks. Example: mobipay bench ledger --seconds 10", no_args_is_help=True)
docs_app = typer.Typer(help="Generated documentation. Example: mobipay docs errors", no_args_is_help=True)
user_app = typer.Typer(help="Subscribers. Example: mobipay user show 13800138000", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(db_app, name="db")
app.add_typer(ledger_app, name="ledger")
app.add_typer(outbox_app, name="outbox")
app.add_typer(bench_app, name="bench")
app.add_typer(docs_app, name="docs")
recon_app = typer.Typer(help="Reconciliation with partners' daily files. Example: mobipay recon bank --date 2026-11-24",
                        no_args_is_help=True)
bank_app = typer.Typer(help="Orders at the partner bank. Example: mobipay bank resolve", no_args_is_help=True)
app.add_typer(recon_app, name="recon")
billers_app = typer.Typer(help="The bill zone's biller registry. Example: mobipay billers list --city 北京",
                          no_args_is_help=True)
app.add_typer(billers_app, name="billers")
complaints_app = typer.Typer(help="Complaints about bill payments. Example: mobipay complaints list --overdue",
                             no_args_is_help=True)
app.add_typer(complaints_app, name="complaints")
lottery_app = typer.Typer(help="Lottery draws. Example: mobipay lottery draw --game ssq --issue 2026137",
                          no_args_is_help=True)
app.add_typer(lottery_app, name="lottery")
partners_app = typer.Typer(help="Internet partners selling top-up. Example: mobipay partners list",
                           no_args_is_help=True)
app.add_typer(partners_app, name="partners")
report_app = typer.Typer(help="Operator reports. Example: mobipay report volumes --from 2026-11-01 --by product",
                         no_args_is_help=True)
app.add_typer(report_app, name="report")
merchants_app = typer.Typer(help="Merchants. Example: mobipay merchants queue", no_args_is_help=True)
app.add_typer(merchants_app, name="merchants")
app.add_typer(bank_app, name="bank")
app.add_typer(sms_cli.app, name="sms")
app.add_typer(voice_cli.app, name="voice")
app.add_typer(operator_cli.app, name="operator")

cli_support.install(build)  # the contexts' commands run on the container this root builds

REPO = Path(__file__).resolve().parents[3]


def _ready_database(settings: Settings) -> None:
    """Refuse to start a long-running process on a database it cannot use: one sentence
    (not reachable, not migrated), before anything says it is listening."""
    from mobipay.app.migrate import head_revision
    from mobipay.platform.db import Database, connection_problem

    async def revision() -> str | None:
        db = Database(settings.database_url)
        try:
            async with db.engine.connect() as conn:
                from sqlalchemy import text

                try:
                    return (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
                except Exception:
                    return None
        finally:
            await db.dispose()

    try:
        at = asyncio.run(revision())
    except Exception as exc:
        problem = connection_problem(exc, settings.database_url)
        if problem is None:
            raise
        typer.secho(problem, fg="red", err=True)
        raise typer.Exit(2) from None
    needed = head_revision()
    if at != needed:
        typer.secho(f"the database at {safe_url(settings.database_url)} is at schema {at or 'none'}, this version "
                    f"needs {needed}: run mobipay db upgrade", fg="red", err=True)
        raise typer.Exit(2)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes (PostgreSQL only)")] = 1,
) -> None:
    """Serve the HTTP API and the pages (docs at /docs); once listening, print where to sign
    in (in development: the demo numbers and sign-ins too). Behind a reverse proxy, name it in
    MOBIPAY_TRUSTED_PROXIES so its X-Forwarded-For is believed (nothing else's is).
    Example: mobipay serve --port 8000"""
    import uvicorn

    from mobipay.kernel.urls import parse_networks

    settings = settings_or_exit()
    if workers > 1 and settings.is_sqlite:
        typer.secho("several workers need PostgreSQL; SQLite has a single writer", fg="red", err=True)
        raise typer.Exit(2)
    _ready_database(settings)
    loop = "uvloop" if sys.platform != "win32" else "asyncio"
    # Forwarded headers are believed only from the proxies the operator names: uvicorn's
    # default trusts any local process, which could then reset per-address limits at will.
    proxies = ",".join(str(n) for n in parse_networks(settings.trusted_proxies))
    forwarded: dict[str, Any] = {"proxy_headers": bool(proxies), "forwarded_allow_ips": proxies or None}
    if workers > 1:
        typer.echo(f"mobipay on http://{host}:{port}  (API docs: http://{host}:{port}/docs)", err=True)
        uvicorn.run("mobipay.app.http:create_served_app", factory=True, host=host, port=port, workers=workers,
                    log_level="warning", loop=loop, **forwarded)
        return
    from mobipay.app.http import create_served_app

    app = create_served_app()
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", loop=loop,
                                           **forwarded))

    async def announce() -> None:
        while not server.started:
            if server.should_exit:
                return
            await asyncio.sleep(0.05)
        typer.echo(await _startup_summary(app.state.container, f"http://{host}:{port}"), err=True)

    async def main() -> None:
        told = asyncio.create_task(announce())
        try:
            await server.serve()
        finally:
            told.cancel()

    if loop == "uvloop":
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())


async def _startup_summary(c: Container, base: str) -> str:
    """What a newcomer needs after ``make run``: where each front door is, and in
    development the demo numbers and sign-ins; a few short lines."""
    from mobipay.app.demo import DEMO_WALLETS
    from mobipay.app.demo_accounts import (
        CONSOLE_OPERATOR,
        CONSOLE_PASSWORD,
        SHOP_OWNER,
        SHOP_PASSWORD,
        demo_accounts,
    )
    from mobipay.platform.config import DEMO_ADMIN_TOKEN, Environment

    s = c.settings
    dev = s.env is Environment.DEVELOPMENT
    accounts = await demo_accounts(c)
    token = s.admin_token.get_secret_value()
    portal = (f"{accounts.shop_id} / {SHOP_OWNER} / {SHOP_PASSWORD}" if accounts.shop_id
              else "accounts: mobipay merchants operator-create")
    console = f"{CONSOLE_OPERATOR} / {CONSOLE_PASSWORD}" if accounts.console else "accounts: mobipay operator create"
    lines = [f"mobipay on {base}  ({s.env.value}, {c.db.dialect})",
             f"  business hall    {base}/           top up a phone, pay a bill (pay by SMS code)",
             f"  mobile wallet    {base}/m          a demo number, then the SMS code printed here",
             f"  merchant portal  {base}/merchant   {portal}",
             f"  console          {base}/console    {console}",
             f"  API docs         {base}/docs       ledger API: Authorization: Bearer "
             + (token if token == DEMO_ADMIN_TOKEN else "$MOBIPAY_ADMIN_TOKEN")]
    if dev:
        numbers = []
        for msisdn, _ in DEMO_WALLETS:
            try:
                account = await c.ledger.account(f"wallet:{msisdn}")
            except MobipayError:
                continue  # no demo loaded
            numbers.append(f"{msisdn.removeprefix('+86')} (¥{account.balance // 100:,}.{account.balance % 100:02d})")
        if numbers:
            lines.append("  demo numbers     " + ", ".join(numbers))
        if s.kannel_sendsms_url:
            lines.append(f"  SMS              through Kannel at {s.kannel_sendsms_url}")
        else:
            lines.append(f"  SMS              codes print here in full (development only); every SMS: "
                         f"{s.sms_console_file}")
    return "\n".join(lines)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision")] = "head") -> None:
    """Create or migrate the schema. Example: MOBIPAY_DATABASE_URL=postgresql+asyncpg://u@h/db mobipay db upgrade"""
    from mobipay.app.migrate import upgrade

    settings = settings_or_exit()
    upgrade(settings.database_url, revision)
    typer.echo(f"database at {safe_url(settings.database_url)} is at revision {revision}")


@db_app.command("current")
def db_current() -> None:
    """Show the schema revision. Example: mobipay db current"""
    from mobipay.app.migrate import current

    current(settings_or_exit().database_url)


@app.command()
def demo(
    users: Annotated[int, typer.Option(help="How many subscribers (at least the 5 named ones)")] = 200,
    merchants: Annotated[int | None, typer.Option(help="How many shops in the red-envelope zone (default 1000; "
                                                  "0 with --transactions)")] = None,
    transactions: Annotated[int, typer.Option(help="Big demo: this many payments over 90 days for --users more "
                                              "subscribers (bulk load for the console's performance work)")] = 0,
    days: Annotated[int, typer.Option(min=1, max=366, help="Big demo: days of history")] = 90,
    history_days: Annotated[int, typer.Option(min=0, max=366, help="Days of payment history for the console's "
                                              "dashboard (1,000 more subscribers, 12,000 payments; 0: none)")] = 90,
) -> None:
    """Load demo data: system accounts, subscribers with funded wallets and a history of
    transfers, the biller registry, shops with red-envelope campaigns; safe to run again.
    Example: mobipay demo --users 200 --merchants 1000;
    big data: mobipay demo --users 100000 --transactions 1000000 (a few minutes on PostgreSQL)"""
    from mobipay.app.demo import load_demo, load_demo_merchants
    from mobipay.app.demo_big import BigDemoReport, load_big_demo, load_demo_history
    from mobipay.bills.reference_data import shipped_billers

    shops_wanted = merchants if merchants is not None else (0 if transactions else 1000)
    small = 200 if transactions else users
    _ready_database(settings_or_exit())
    typer.echo(f"demo data: {small} subscribers, {shops_wanted} shops (the first run takes a minute) …", err=True)

    async def work(c: Container) -> tuple[Any, tuple[int, int], int, BigDemoReport | None, BigDemoReport | None]:
        from mobipay.app.demo_accounts import ensure_demo_accounts

        report = await load_demo(c.ledger, c.wallet, users=max(5, small))
        billers = await c.bills.import_billers(shipped_billers(), actor="demo", reason="shipped registry")
        shops = await load_demo_merchants(c.merchants, c.red_envelopes, c.ledger, shops_wanted,
                                          progress=lambda n: typer.echo(f"  … {n} shops", err=True))
        history = None
        if history_days:
            history = await load_demo_history(c.db, c.ledger, c.clock, days=history_days,
                                              home_operator=c.settings.home_operator)
        big = None
        if transactions:
            typer.echo(f"big demo: {users:,} subscribers, {transactions:,} payments over {days} days …", err=True)
            big = await load_big_demo(c.db, c.ledger, c.clock, users_count=users, transactions=transactions,
                                      days=days, home_operator=c.settings.home_operator,
                                      progress=lambda line: typer.echo(line, err=True))
        await ensure_demo_accounts(c)  # the console's and the first shop's sign-ins (not in production)
        return report, billers, shops, history, big

    report, (added, updated), shops, history, big = run(work)
    typer.echo(f"demo data: {report.users_total} subscribers ({report.users_created} new), "
               f"{report.transfers_created} transfers created, {report.transfers_replayed} already there; "
               f"billers: {added} added, {updated} updated; {shops} new shops with red-envelope offers")
    if history is not None and not history.skipped:
        paid = history.orders + history.trades + history.kinds.get("p2p", 0)
        typer.echo(f"history: {history.users:,} more subscribers, {paid:,} payments over {history_days} days, "
                   f"in {history.seconds:.0f} s")
    if big is not None and big.skipped:
        typer.echo("big demo: already loaded (its first subscriber exists); nothing added")
    elif big is not None:
        typer.echo(f"big demo: {big.users:,} subscribers, {big.merchants:,} merchants, {big.orders:,} partner orders, "
                   f"{big.trades:,} merchant trades, {big.transfers:,} ledger transfers in {big.seconds:.0f} s")


@app.command()
def worker(
    idle: Annotated[float, typer.Option(help="Seconds to sleep when nothing is due")] = 0.5,
) -> None:
    """Deliver outbox messages and expire holds until stopped (Ctrl-C). Example: mobipay worker"""

    from mobipay.reporting import rollups

    _ready_database(settings_or_exit())

    async def work(c: Container) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        typer.echo("worker: delivering outbox messages, expiring holds, returning unclaimed transfers, "
                   "settling pending partner orders, checking saved bills, escalating complaints, notifying merchants, "
                   "folding the KPI rollups "
                   "(Ctrl-C stops)",
                   err=True)
        await c.ensure_system_accounts()
        await asyncio.gather(
            c.outbox_worker().run(stop, idle_s=idle),
            c.ledger.run_hold_sweeper(c.settings.hold_sweep_interval_s, stop),
            every(60.0, stop, c.wallet.return_expired_claims, "wallet.return_claims"),
            every(c.settings.bank_resolve_interval_s, stop, c.orders.resolve_pending, "orders.resolve"),
            every(600.0, stop, c.saved_bills.check_due, "bills.saved"),
            every(300.0, stop, c.complaints.escalate_overdue, "bills.complaints_escalate"),
            every(2.0, stop, c.merchant_notifier.deliver_due, "merchants.notify"),
            every(300.0, stop, c.red_envelopes.expire_due, "merchants.red_envelopes_expire"),
            every(600.0, stop, lambda: rollups.fold(c.db, c.clock, c.ledger), "kpi.fold"),
            every(60.0, stop, lambda: rollups.refresh(c.db, c.clock, c.ledger), "kpi.recent"),
        )

    run(work)


OPERATOR = typer.Option("--actor", help="Who does this, for the audit trail", envvar="USER")


@user_app.command("create")
def user_create(
    msisdn: Annotated[str, typer.Argument(help="Mobile number, e.g. 13800138000")],
    reason: Annotated[str, typer.Option(help="Why, for the audit trail")] = "created by an operator",
    actor: Annotated[str, OPERATOR] = "operator",
) -> None:
    """Open a wallet for a number without an SMS code (audited). Example: mobipay user create 13800138000"""
    user = run(lambda c: c.wallet.create_user(msisdn, actor=actor, reason=reason))
    typer.echo(f"{user.id}  {user.msisdn}  {user.operator}  tier {int(user.tier)}  account {user.account_code}")


@user_app.command("show")
def user_show(msisdn: Annotated[str, typer.Argument(help="Mobile number")]) -> None:
    """A subscriber and their balance. Example: mobipay user show 13800138000"""

    async def work(c: Container) -> None:
        user = await c.wallet.user_by_msisdn(msisdn)
        acc = await c.ledger.account(user.account_code)
        typer.echo(f"id        {user.id}\nnumber    {user.msisdn} ({user.operator}"
                   f"{', virtual operator' if user.virtual_operator else ''})\nstatus    {user.status.value}\n"
                   f"tier      {int(user.tier)}\nbalance   {acc.balance} fen (available {acc.available})\n"
                   f"since     {user.created_at:%Y-%m-%d %H:%M} UTC")

    run(work)


@user_app.command("close")
def user_close(
    msisdn: Annotated[str, typer.Argument(help="Mobile number")],
    reason: Annotated[str, typer.Option(help="Why (required, audited)")],
    actor: Annotated[str, OPERATOR] = "operator",
) -> None:
    """Close a wallet for good; its balance is paid out to its bank card first (no fee).
    Example: mobipay user close 13800138000 --reason 'subscriber asked, ticket 4711'"""

    async def work(c: Container) -> None:
        user, order = await c.banking.close_user(msisdn, actor=actor, reason=reason)
        if order is None:
            typer.echo(f"{user.msisdn}: {user.status.value} (balance was zero)")
        else:
            typer.echo(f"{user.msisdn}: {user.status.value}; payout of {order.amount / 100:.2f} CNY to card "
                       f"{order.details['card_id']} is {order.state.value} (order {order.id})")

    run(work)


@user_app.command("tier3")
def user_tier3(
    msisdn: Annotated[str, typer.Argument(help="Mobile number")],
    reason: Annotated[str, typer.Option(help="How the identity was checked (required, audited)")],
    actor: Annotated[str, OPERATOR] = "operator",
) -> None:
    """Raise a Tier II wallet to Tier III after a further identity check.
    Example: mobipay user tier3 13800138000 --reason 'ID checked face to face, Xidan service hall'"""
    user = run(lambda c: c.wallet.verify_tier3(msisdn, actor=actor, reason=reason))
    typer.echo(f"{user.msisdn}: tier {int(user.tier)}")


@recon_app.command("bank")
def recon_bank(
    date: Annotated[str, typer.Option("--date", help="Business day (Shanghai), YYYY-MM-DD")],
) -> None:
    """Fetch the bank's daily file, settle pending orders from it and report differences.
    Example: mobipay recon bank --date 2026-11-24"""
    _report(run(lambda c: c.banking.reconcile(_day(date))))


E = TypeVar("E", bound=enum.Enum)


def _choice(kind: type[E], value: str, option: str) -> E:
    """An option's value as one of ``kind``'s, or a usage error listing them."""
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(str(member.value) for member in kind)
        raise typer.BadParameter(f"{option} {value!r}: use one of {choices}") from None


def _day(text: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date; use YYYY-MM-DD, e.g. 2026-11-24") from None


def _report(report: ReconReport) -> None:
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


@billers_app.command("import")
def billers_import(
    file: Annotated[Path, typer.Argument(help="Registry CSV (the shipped one: src/mobipay/bills/data/billers.csv)",
                                         exists=True, dir_okay=False)],
    reason: Annotated[str, typer.Option(help="Why (audited)")] = "registry update",
    actor: Annotated[str, OPERATOR] = "operator",
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


@billers_app.command("list")
def billers_list(
    city: Annotated[str | None, typer.Option(help="City, e.g. 北京")] = None,
    category: Annotated[str | None, typer.Option(help="water, electricity, gas, telecom, bus_card, …")] = None,
    q: Annotated[str | None, typer.Option(help="Part of the name or code")] = None,
) -> None:
    """Billers by city, category or name. Example: mobipay billers list --city 上海 --category gas"""
    from mobipay.bills.model import Category

    cat = _choice(Category, category, "--category") if category else None
    for b in run(lambda c: c.bills.find(city=city, category=cat, q=q, limit=1000)):
        typer.echo(f"{b.code:<12} {b.category.value:<18} {b.city:<6} {b.name}  (fetch {b.fetch.value}, "
                   f"{b.amount_rule.value})")


@recon_app.command("bills")
def recon_bills(
    date: Annotated[str, typer.Option("--date", help="Business day (Shanghai), YYYY-MM-DD")],
    biller: Annotated[str | None, typer.Option(help="One biller's code (default: every biller)")] = None,
) -> None:
    """Fetch each biller's daily file, settle pending payments from it and report differences
    (paid here but unknown there, there but not here, amount mismatch).
    Example: mobipay recon bills --date 2026-11-24"""
    day = _day(date)
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


@complaints_app.command("list")
def complaints_list(
    overdue: Annotated[bool, typer.Option(help="Only those past their deadline")] = False,
    biller: Annotated[str | None, typer.Option(help="One biller's code")] = None,
) -> None:
    """Open complaints, oldest deadline first. Example: mobipay complaints list --overdue"""
    for c in run(lambda ctx: ctx.complaints.queue(overdue_only=overdue, biller=biller)):
        typer.echo(f"{c.id}  {c.state.value:<11} {c.assignee:<10} due {c.due_at:%Y-%m-%d %H:%M}  {c.biller:<10} "
                   f"{c.reason.value}  payment {c.payment_id}")


@complaints_app.command("move")
def complaints_move(
    complaint_id: Annotated[str, typer.Argument(help="Complaint id (cmp_…)")],
    state: Annotated[str, typer.Option(help="in_progress, resolved or rejected")],
    note: Annotated[str, typer.Option(help="What was done (required to resolve or reject; audited)")] = "",
    actor: Annotated[str, OPERATOR] = "operator",
) -> None:
    """Move a complaint on; the subscriber is told by SMS.
    Example: mobipay complaints move cmp_0192… --state resolved --note 'biller credited the account'"""
    from mobipay.bills.model import ComplaintState

    to = _choice(ComplaintState, state, "--state")
    c = run(lambda ctx: ctx.complaints.move(complaint_id, to, actor=actor, note=note))
    typer.echo(f"{c.id}: {c.state.value}")


@complaints_app.command("escalate")
def complaints_escalate() -> None:
    """Escalate every complaint past its deadline now (the worker does it every 5 minutes).
    Example: mobipay complaints escalate"""
    typer.echo(f"escalated {run(lambda c: c.complaints.escalate_overdue())} complaint(s)")


@billers_app.command("remind")
def billers_remind() -> None:
    """Check saved bills for new bills now: SMS reminders and autopay (the worker does it
    continuously). Example: mobipay billers remind"""
    typer.echo(f"checked {run(lambda c: c.saved_bills.check_due(limit=100_000))} saved bill(s)")


@lottery_app.command("draw")
def lottery_draw(
    game: Annotated[str, typer.Option(help="ssq, dlt or fc3d")],
    issue: Annotated[str, typer.Option(help="Draw number, e.g. 2026137")],
) -> None:
    """Import a draw from the lottery centre and pay every winning ticket into its wallet
    (safe to run again). Example: mobipay lottery draw --game ssq --issue 2026137"""
    result = run(lambda c: c.lottery.import_draw(game, issue))
    typer.echo(f"{result.game} {result.issue}: numbers {result.numbers}; {result.tickets} tickets settled, "
               f"{result.winners} winning, {result.paid / 100:.2f} CNY paid")


@partners_app.command("create")
def partners_create(
    name: Annotated[str, typer.Argument(help="The partner's name")],
    commission_bps: Annotated[int, typer.Option(help="Commission in basis points of the face value")] = 100,
    reason: Annotated[str, typer.Option(help="Why (audited)")] = "new partner",
    actor: Annotated[str, OPERATOR] = "operator",
) -> None:
    """Register an internet partner selling top-up; prints its app id and key (once).
    Example: mobipay partners create 'Example Shop' --commission-bps 150"""
    partner, key = run(lambda c: c.topup_partners.create(name, commission_bps, actor=actor, reason=reason))
    typer.echo(f"partner {partner.id} ({partner.name}), commission {partner.commission_bps} bps\n"
               f"key: {key}\n(shown once: give it to the partner over a safe channel)")


@partners_app.command("fund")
def partners_fund(
    partner_id: Annotated[str, typer.Argument(help="App id (ptn_…)")],
    amount: Annotated[int, typer.Option(help="Fen received from the partner")],
    reference: Annotated[str, typer.Option(help="The bank reference of their payment (idempotency key)")],
    actor: Annotated[str, OPERATOR] = "operator",
) -> None:
    """Credit a partner's prepaid deposit with a payment received.
    Example: mobipay partners fund ptn_0192… --amount 1000000 --reference B20261125-0042"""
    balance = run(lambda c: c.topup_partners.fund(partner_id, amount, reference=reference, actor=actor))
    typer.echo(f"{partner_id}: deposit {balance / 100:.2f} CNY")


@partners_app.command("list")
def partners_list() -> None:
    """Top-up partners and their deposits. Example: mobipay partners list"""

    async def work(c: Container) -> list[str]:
        out = []
        for p in await c.topup_partners.all():
            balance = (await c.ledger.account(p.account_code)).balance
            out.append(f"{p.id}  {p.status:<9} {p.commission_bps:>4} bps  deposit {balance / 100:>12.2f}  {p.name}")
        return out

    for line in run(work):
        typer.echo(line)


@report_app.command("volumes")
def report_volumes(
    first: Annotated[str, typer.Option("--from", help="First day (Shanghai), YYYY-MM-DD")],
    last: Annotated[str | None, typer.Option("--to", help="Last day, inclusive (default: --from)")] = None,
    by: Annotated[str, typer.Option(help="product, category, city or day")] = "product",
) -> None:
    """Volume and count of partner payments (top-up, bills, cash-in/out, products,
    insurance, lottery) by product, bill category, city or day: a CSV file and a PNG chart
    in MOBIPAY_REPORT_DIR. Example: mobipay report volumes --from 2026-11-01 --to 2026-11-30 --by day"""
    from mobipay.channels.words import CATEGORY_WORDS, kind_name
    from mobipay.reporting.reports import DIMENSIONS, volumes, write

    if by not in DIMENSIONS:
        raise typer.BadParameter(f"--by {by!r}: use one of {', '.join(DIMENSIONS)}")
    start, end = _day(first), _day(last or first)
    rows = run(lambda c: volumes(c.uow, start, end, by))
    for r in rows:
        typer.echo(f"{r.key:<24} {r.count:>8} {r.amount / 100:>14.2f} CNY")
    settings = settings_or_exit()
    label = {"product": kind_name, "category": lambda k: CATEGORY_WORDS[k][0] if k in CATEGORY_WORDS else kind_name(k)
             }.get(by, str)
    csv_path, png_path = write(rows, by, start, end, settings.report_dir, font=settings.chart_font, label=label)
    typer.echo(f"{len(rows)} rows; report: {csv_path}, chart: {png_path}")


@recon_app.command("resolve")
def recon_resolve(
    order_id: Annotated[str, typer.Argument(help="The order a reconciliation listed")],
    action: Annotated[str, typer.Option(help="repush (send it again) or refund (reverse it to the payer)")],
    reason: Annotated[str, typer.Option(help="Why (audited)")],
    actor: Annotated[str, OPERATOR] = "operator",
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


@merchants_app.command("list")
def merchants_list(
    q: Annotated[str, typer.Option("--q", help="A piece of the name, merchant id or credit code")] = "",
    state: Annotated[str | None, typer.Option(help="submitted, more_info, approved, rejected, suspended, "
                                                    "settlement_suspended or terminated")] = None,
    mcc: Annotated[str | None, typer.Option(help="Merchant category code, e.g. 5942 (book stores)")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first")] = 20,
) -> None:
    """Merchants, newest first: id, state, MCC, name, credit code; filter by name, state or
    category. Example: mobipay merchants list --q 书店 --state approved --limit 5"""
    from mobipay.merchants.model import MerchantState

    wanted = _choice(MerchantState, state, "--state") if state else None
    found = run(lambda c: c.merchants.find(state=wanted, q=q or None, mcc=mcc, limit=limit))
    for m in found:
        typer.echo(f"{m.id}  {m.state.value:<20}  MCC {m.mcc}  {m.name}  ({m.credit_code})")
    if not found:
        typer.echo("no merchant matches; try fewer filters (mobipay merchants list --help)", err=True)


@merchants_app.command("queue")
def merchants_queue() -> None:
    """Applications waiting for review, oldest first. Example: mobipay merchants queue"""
    for m in run(lambda c: c.merchants.review_queue()):
        typer.echo(f"{m.id}  {m.credit_code}  MCC {m.mcc}  {m.name}")


@merchants_app.command("review")
def merchants_review(
    merchant_id: Annotated[str, typer.Argument(help="Merchant id (mch_…)")],
    state: Annotated[str, typer.Option(help="approved, rejected, more_info, suspended, settlement_suspended, "
                                            "terminated")],
    reason: Annotated[str, typer.Option(help="Why (audited; the merchant sees it)")],
    actor: Annotated[str, OPERATOR] = "operator",
) -> None:
    """Review or change a merchant (merchant-review role).
    Example: mobipay merchants review mch_0192… --state approved --reason 'licence checked'"""
    from mobipay.merchants.model import MerchantState

    to = _choice(MerchantState, state, "--state")
    m = run(lambda c: c.merchants.review(merchant_id, to, actor=actor, reason=reason))
    typer.echo(f"{m.id}: {m.state.value}")


@merchants_app.command("operator-create")
def merchants_operator_create(
    merchant_id: Annotated[str, typer.Argument(help="Merchant id (mch_…)")],
    name: Annotated[str, typer.Argument(help="The operator's sign-in name (2-64 letters, digits, . _ -)")],
    role: Annotated[str, typer.Option(help="owner (also API keys and notify URLs) or staff")] = "staff",
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True,
                                          envvar="MOBIPAY_MERCHANT_OPERATOR_PASSWORD",
                                          help="At least 10 characters (asked when not given)")] = "",
    refund_pin: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True,
                                            envvar="MOBIPAY_MERCHANT_REFUND_PIN",
                                            help="6 digits, asked again for every refund")] = "",
    actor: Annotated[str, OPERATOR] = "operator",
) -> None:
    """A merchant portal account (/merchant) for a merchant's staff: password and refund
    PIN kept as argon2id hashes; audited.
    Example: mobipay merchants operator-create mch_0192… cashier1 --role staff"""
    op = run(lambda c: c.merchant_operators.create(merchant_id, name, password, refund_pin, role=role, actor=actor,
                                                   reason="operator-create"))
    typer.echo(f"{op.id}: {op.merchant_id}/{op.name} ({op.role})")


@merchants_app.command("operator-unlock")
def merchants_operator_unlock(
    merchant_id: Annotated[str, typer.Argument(help="Merchant id (mch_…)")],
    name: Annotated[str, typer.Argument(help="The portal operator's name")],
    reason: Annotated[str, typer.Option(help="Why (audited)")],
    actor: Annotated[str, OPERATOR] = "operator",
) -> None:
    """End a merchant portal account's sign-in lock (5 wrong passwords within 15 minutes lock
    it for 15 minutes). Example: mobipay merchants operator-unlock mch_0192… cashier1 --reason 'owner asked'"""
    op = run(lambda c: c.merchant_operators.unlock(merchant_id, name, actor=actor, reason=reason))
    typer.echo(f"{op.merchant_id}/{op.name}: unlocked")


@merchants_app.command("notifications")
def merchants_notifications(
    merchant_id: Annotated[str | None, typer.Option("--merchant", help="Only this merchant (mch_…)")] = None,
    state: Annotated[list[str] | None, typer.Option(help="refused (address not allowed), failed (out of tries) "
                                                    "or pending (being retried); repeat for several")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """Notifications that did not reach merchants, newest first, with the reason: a refused
    one (its notify URL leads to a private or loopback address) is never retried; tell the
    merchant to set a public notify URL. Example: mobipay merchants notifications --state refused"""
    wanted = tuple(state or ("refused", "failed"))
    unknown = set(wanted) - {"refused", "failed", "pending"}
    if unknown:
        raise typer.BadParameter(f"unknown state {', '.join(sorted(unknown))}: refused, failed or pending",
                                 param_hint="--state")
    rows = run(lambda c: c.merchant_notifier.undelivered(merchant_id, states=wanted, limit=limit))
    for n in rows:
        typer.echo(f"{n.created_at:%Y-%m-%d %H:%M}  {n.id}  {n.merchant_id}  {n.trade_id}  {n.state}  "
                   f"tries {n.attempts}  {n.url}  {n.last_error}")
    if not rows:
        typer.echo("no undelivered notifications")


@merchants_app.command("settle")
def merchants_settle(
    date: Annotated[str | None, typer.Option("--date", help="Settle this business day (Shanghai), YYYY-MM-DD")] = None,
    due: Annotated[str | None, typer.Option("--due", help="Settle what is due on this day: T+n per merchant")] = None,
) -> None:
    """Settlement: for each merchant with activity on a day, gross, refunds, fee and net, paid
    out to its bank account; reports in MOBIPAY_REPORT_DIR. Only a day that has ended can be
    settled (from 00:05 Beijing time the next day). Safe to run again: a settled day prints
    what was settled and paid. Run it daily with --due (each merchant's cycle from its
    category), or for one day with --date.
    Example: mobipay merchants settle --due 2026-11-25"""
    if (date is None) == (due is None):
        raise typer.BadParameter("give --date DAY or --due TODAY")
    if due is not None:
        today = _day(due)
        results = run(lambda c: c.settlements.settle_due(today))
    else:
        day = _day(date or "")
        results = run(lambda c: c.settlements.settle(day))
    for s in results:
        typer.echo(f"{s.merchant_id}  gross {s.gross / 100:.2f}  refunds {s.refunds / 100:.2f}  fee {s.fee / 100:.2f}"
                   f"  net {s.net / 100:.2f}  {s.state}  {s.report}")
        if s.unsettled:
            typer.secho(f"  {s.unsettled / 100:.2f} CNY of {s.day} was paid after this day was settled and is not in "
                        "it (the day was settled before it ended): listed as not_settled in the report; the money "
                        "waits in the merchant's payable account for a payout by hand",
                        fg="yellow")


@merchants_app.command("app")
def merchants_app_create(
    merchant_id: Annotated[str, typer.Argument(help="Merchant id (mch_…)")],
    sign_type: Annotated[str, typer.Option(help="RSA2 or HMAC")] = "RSA2",
    public_key: Annotated[Path | None, typer.Option(help="RSA2: the merchant's public key (PEM file)")] = None,
) -> None:
    """Give a merchant an API app id (and, for HMAC, a key shown once).
    Example: mobipay merchants app mch_0192… --sign-type RSA2 --public-key merchant_pub.pem"""
    pem = public_key.read_text() if public_key else None
    app_id, key = run(lambda c: c.merchants.create_app(merchant_id, sign_type, public_key=pem))
    typer.echo(f"app_id {app_id}" + (f"\nHMAC key (shown once): {key}" if key else ""))


@recon_app.command("topup")
def recon_topup(
    date: Annotated[str, typer.Option("--date", help="Business day (Shanghai), YYYY-MM-DD")],
    partner: Annotated[str, typer.Option(help="operator_billing or topup_aggregator")] = "operator_billing",
) -> None:
    """Fetch a top-up partner's daily file, settle pending top-ups from it and report
    differences. Example: mobipay recon topup --partner topup_aggregator --date 2026-11-24"""
    from mobipay.topup.model import Route

    route = _choice(Route, partner, "--partner")
    day = _day(date)
    _report(run(lambda c: c.topup.reconcile(route, day)))


@bank_app.command("resolve")
def bank_resolve() -> None:
    """Ask partners once about every pending order that is due (the worker does this all the
    time). Example: mobipay bank resolve"""
    asked = run(lambda c: c.orders.resolve_pending(limit=10_000))
    typer.echo(f"asked partners about {asked} pending order(s)")


def _freeze(msisdn: str, frozen: bool, reason: str, actor: str) -> None:
    user = run(lambda c: c.wallet.set_frozen(msisdn, frozen, actor=actor, reason=reason))
    typer.echo(f"{user.msisdn} is now {user.status.value}")


@user_app.command("freeze")
def user_freeze(
    msisdn: Annotated[str, typer.Argument(help="Mobile number")],
    reason: Annotated[str, typer.Option(help="Why (required, audited)")],
    actor: Annotated[str, OPERATOR] = "operator",
) -> None:
    """Stop all payments in and out of a wallet. Example: mobipay user freeze 13800138000 --reason 'lost phone'"""
    _freeze(msisdn, True, reason, actor)


@user_app.command("unfreeze")
def user_unfreeze(
    msisdn: Annotated[str, typer.Argument(help="Mobile number")],
    reason: Annotated[str, typer.Option(help="Why (required, audited)")],
    actor: Annotated[str, OPERATOR] = "operator",
) -> None:
    """Allow payments again. Example: mobipay user unfreeze 13800138000 --reason 'phone found'"""
    _freeze(msisdn, False, reason, actor)


@app.command("balance")
def balance(msisdn: Annotated[str, typer.Argument(help="Mobile number")]) -> None:
    """A subscriber's wallet balance. Example: mobipay balance 13800138000"""

    async def work(c: Container) -> str:
        acc = await c.ledger.account((await c.wallet.user_by_msisdn(msisdn)).account_code)
        return f"{acc.balance} fen ({acc.balance / 100:.2f} CNY), available {acc.available} fen"

    typer.echo(run(work))


@app.command("statement")
def statement(
    msisdn: Annotated[str, typer.Argument(help="Mobile number")],
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Payments per page: the newest N")] = 20,
    before: Annotated[int | None, typer.Option(help="Cursor: older than this seq (printed as 'more:')")] = None,
) -> None:
    """A subscriber's wallet history, newest first, one line per payment with its state (an
    order's hold and its settlement are one line), as the subscriber sees it in the app.
    The raw postings are `mobipay ledger statement wallet:+86…`.
    Example: mobipay statement 13800138000 --limit 5"""

    async def work(c: Container) -> tuple[list[dict[str, Any]], int | None]:
        code = (await c.wallet.user_by_msisdn(msisdn)).account_code
        return await c.wallet.history(code, before=before, limit=limit, newest_first=True)

    items, nxt = run(work)
    typer.echo(f"{'seq':>6}  {'time (Beijing)':<16} {'kind':<20} {'in/out':>6} {'amount':>12} {'balance':>12}  state")
    for e in items:
        when, way = e["created_at"].astimezone(SHANGHAI), "out" if e["amount"] > 0 else "in"
        typer.echo(f"{e['account_seq']:>6}  {when:%Y-%m-%d %H:%M} {e['code']:<20} {way:>6} "
                   f"{abs(e['amount']) / 100:>12.2f} {e['balance_after'] / 100:>12.2f}  {e['state']}")
    if not items:
        typer.echo("no payments yet")
    if nxt is not None:
        typer.echo(f"more: mobipay statement {msisdn} --limit {limit} --before {nxt}")


@ledger_app.command("verify")
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


@ledger_app.command("balance")
def ledger_balance(code: Annotated[str, typer.Argument(help="Account code, e.g. wallet:+8613800138000")]) -> None:
    """Show an account's balances. Example: mobipay ledger balance wallet:+8613800138000"""
    acc = run(lambda c: c.ledger.account(code))
    typer.echo(f"{acc.code} ({acc.kind.value}, {acc.currency}{', FROZEN' if acc.frozen else ''})")
    typer.echo(f"  balance   {acc.balance} fen\n  available {acc.available} fen")
    typer.echo(f"  pending   debits {acc.debits_pending} / credits {acc.credits_pending} fen")


@ledger_app.command("statement")
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


@ledger_app.command("sweep-holds")
def ledger_sweep() -> None:
    """Void holds past their timeout now (the worker does this continuously). Example: mobipay ledger sweep-holds"""
    count = run(lambda c: c.ledger.sweep_expired_holds())
    typer.echo(f"expired holds voided: {count}")


@outbox_app.command("status")
def outbox_status() -> None:
    """Count outbox messages by state. Example: mobipay outbox status"""
    counts = run(lambda c: c.outbox_worker().counts())
    for status in ("pending", "delivered", "dead"):
        typer.echo(f"{status:<10} {counts.get(status, 0)}")


@outbox_app.command("requeue")
def outbox_requeue(
    message_id: Annotated[str | None, typer.Argument(help="One message id; all dead letters if omitted")] = None,
) -> None:
    """Give dead-lettered messages a fresh set of tries. Example: mobipay outbox requeue"""
    count = run(lambda c: c.outbox_worker().requeue_dead(message_id))
    typer.echo(f"requeued: {count}")


@bench_app.command("ledger")
def bench_ledger(
    seconds: Annotated[int, typer.Option(help="Seconds per scenario (pgbench runs as long)")] = 10,
) -> None:
    """Ledger throughput vs pgbench on the same PostgreSQL. Example:
    MOBIPAY_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1/bench mobipay bench ledger --seconds 10"""
    module = _bench_module("ledger_bench")
    result: dict[str, Any] = module.main(settings_or_exit().database_url, seconds,
                                         lambda line: typer.echo(line, err=True))
    if not result.get("verify_ok"):
        raise typer.Exit(1)


@bench_app.command("api")
def bench_api(
    seconds: Annotated[int, typer.Option(min=1, max=600, help="Seconds of P2P load (pgbench runs as long, the PIN "
                                         "phase half as long); at most 600: access tokens are not refreshed")] = 10,
    workers: Annotated[int, typer.Option(min=1, max=16, help="uvicorn worker processes of the server")] = 1,
) -> None:
    """HTTP API throughput (authenticated P2P transfers through uvicorn, driven by wrk) vs pgbench on the
    same PostgreSQL. Example: MOBIPAY_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1/mobipay_bench_api
    mobipay bench api --seconds 10"""
    module = _bench_module("api_bench")
    result: dict[str, Any] = module.main(settings_or_exit().database_url, seconds,
                                         lambda line: typer.echo(line, err=True), workers=workers)
    if not result.get("ok"):
        raise typer.Exit(1)


@bench_app.command("console")
def bench_console(
    requests: Annotated[int, typer.Option(min=1, max=1000, help="Timed requests per page (after one warm-up)")] = 20,
    http: Annotated[bool, typer.Option(help="Also time the pages through a uvicorn server")] = True,
    users: Annotated[int, typer.Option(min=1000, help="Subscribers of the big demo, if it is loaded first")] = 100_000,
    transactions: Annotated[int, typer.Option(min=10_000, help="Payments of the big demo, when it is loaded first")
                            ] = 1_000_000,
) -> None:
    """Console page times (p50/p95/max of every page and the dashboard's JSON, target p95 < 300 ms)
    on PostgreSQL with the big demo, loaded first when it is missing (a few minutes). Example:
    MOBIPAY_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1/mobipay_big mobipay bench console --requests 30"""
    module = _bench_module("console")
    result: dict[str, Any] = module.main(settings_or_exit().database_url, requests,
                                         lambda line: typer.echo(line, err=True), http=http, users=users,
                                         transactions=transactions)
    if not result.get("all_under_300ms"):
        raise typer.Exit(1)


@docs_app.command("errors")
def docs_errors(
    out: Annotated[Path, typer.Option(help="File to write")] = Path("docs/errors.md"),
) -> None:
    """Write the error-code catalogue from the error tree. Example: mobipay docs errors"""
    _import_error_modules()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(error_catalogue(), encoding="utf-8")
    typer.echo(f"wrote {out} ({len(CATALOGUE)} codes)")


@docs_app.command("settings")
def docs_settings(
    out: Annotated[Path, typer.Option(help="File to write")] = Path("docs/settings.md"),
) -> None:
    """Write the table of every MOBIPAY_* setting from Settings. Example: mobipay docs settings"""
    from mobipay.platform.config import settings_table

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(settings_table(), encoding="utf-8")
    typer.echo(f"wrote {out} ({len(Settings.model_fields)} settings)")


@docs_app.command("openapi")
def docs_openapi(
    out: Annotated[Path, typer.Option(help="File to write")] = Path("docs/openapi.json"),
) -> None:
    """Write the OpenAPI document of the HTTP API. Example: mobipay docs openapi"""
    from mobipay.app.http import create_app

    spec = create_app(Settings(_env_file=None)).openapi()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(spec, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    typer.echo(f"wrote {out} ({len(spec.get('paths', {}))} paths)")


def _import_error_modules() -> None:
    """Error classes register themselves when their module is imported: import every
    context's ``errors`` and ``api`` module so the catalogue is complete."""
    import pkgutil

    import mobipay

    importlib.import_module("mobipay.app.http")  # every router, the composition root and what they use
    for info in pkgutil.iter_modules(mobipay.__path__):
        if info.ispkg:
            for name in ("errors", "api"):
                if importlib.util.find_spec(f"mobipay.{info.name}.{name}") is not None:
                    importlib.import_module(f"mobipay.{info.name}.{name}")


def error_catalogue() -> str:
    lines = [
        "# Error codes",
        "",
        "Generated by `mobipay docs errors` from the error tree in code; do not edit by hand.",
        "Every refusal carries one of these stable codes: in problem+json on the API, mapped to",
        "words on SMS and voice.",
        "",
        "| code | HTTP status | meaning | defined in |",
        "|---|---|---|---|",
    ]
    for code, cls in sorted(CATALOGUE.items()):
        lines.append(f"| `{code}` | {cls.status} | {cls.title} | `{cls.__module__}` |")
    return "\n".join(lines) + "\n"


def _bench_module(name: str) -> Any:
    path = REPO / "bench" / f"{name}.py"
    if not path.exists():
        typer.secho(f"benchmark {path} not found: run mobipay from a source checkout", fg="red", err=True)
        raise typer.Exit(2)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses in the module look themselves up there
    spec.loader.exec_module(module)
    return module


def main() -> None:
    """The ``mobipay`` command: a database that cannot be reached or used is one sentence
    saying what to do (exit 2), whichever command met it, never a traceback."""
    from mobipay.platform.db import connection_problem

    try:
        app()
    except Exception as exc:
        try:
            url = Settings().database_url
        except Exception:
            raise exc from None
        problem = connection_problem(exc, url)
        if problem is None:
            raise
        typer.secho(problem, fg="red", err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":  # pragma: no cover
    main()
