"""``mobipay``: the operator's command-line tool.

Every command reads MOBIPAY_DATABASE_URL (default: SQLite under ./var) and the other
MOBIPAY_* settings. ``mobipay COMMAND --help`` shows an example for each.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import signal
import sys
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from mobipay.app.bootstrap import Container, build
from mobipay.bills import cli as bills_cli
from mobipay.campaigns import bulk_cli as campaigns_bulk_cli
from mobipay.campaigns import draws_cli as campaigns_draws_cli
from mobipay.channels.sms import cli as sms_cli
from mobipay.channels.voice import cli as voice_cli
from mobipay.channels.web.console import cli as operator_cli
from mobipay.cinema import cli as cinema_cli
from mobipay.enterprise import cli as enterprise_cli
from mobipay.groupbuy import cli as groupbuy_cli
from mobipay.instore import alliances_cli
from mobipay.instore import nfc_cli as instore_cli
from mobipay.kernel.errors import CATALOGUE, MobipayError
from mobipay.ledger import cli as ledger_cli
from mobipay.lottery import cli as lottery_cli
from mobipay.merchants import cli as merchants_cli
from mobipay.orders import cli as orders_cli
from mobipay.platform import cli_support
from mobipay.platform.cli_support import day_of, run, settings_or_exit
from mobipay.platform.config import Settings
from mobipay.platform.db import safe_url
from mobipay.platform.periodic import every
from mobipay.protection import cli as protection_cli
from mobipay.rural import cli as rural_cli
from mobipay.sp import cli as sp_cli
from mobipay.topup import cli as topup_cli
from mobipay.tourism import cli as tourism_cli
from mobipay.transit import cli as transit_cli
from mobipay.wallet import cli as wallet_cli

T = TypeVar("T")

app = typer.Typer(help="mobipay operator tool. Example: mobipay db upgrade && mobipay demo && mobipay serve",
                  no_args_is_help=True, add_completion=False)
db_app = typer.Typer(help="Database schema. Example: mobipay db upgrade", no_args_is_help=True)
outbox_app = typer.Typer(help="Outbox status and dead letters. Example: mobipay outbox status",
                         no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks. Example: mobipay bench ledger --seconds 10", no_args_is_help=True)
docs_app = typer.Typer(help="Generated documentation. Example: mobipay docs errors", no_args_is_help=True)
recon_app = typer.Typer(help="Reconciliation with partners' daily files. Example: mobipay recon bank --date 2026-11-24",
                        no_args_is_help=True)
bank_app = typer.Typer(help="Orders at the partner bank. Example: mobipay bank resolve", no_args_is_help=True)

# Each context's commands, mounted (the root knows where they go, not what they do).
app.add_typer(wallet_cli.users, name="user")
app.command("balance")(wallet_cli.balance)
app.command("statement")(wallet_cli.statement)
app.add_typer(db_app, name="db")
app.add_typer(ledger_cli.app, name="ledger")
app.add_typer(outbox_app, name="outbox")
app.add_typer(bench_app, name="bench")
app.add_typer(docs_app, name="docs")
app.add_typer(recon_app, name="recon")
recon_app.command("bank")(wallet_cli.recon_bank)
recon_app.command("bills")(bills_cli.recon_bills)
recon_app.command("topup")(topup_cli.recon_topup)
recon_app.command("resolve")(orders_cli.recon_resolve)
app.add_typer(bills_cli.billers, name="billers")
app.add_typer(bills_cli.complaints, name="complaints")
app.add_typer(lottery_cli.app, name="lottery")
app.add_typer(protection_cli.app, name="protection")
app.add_typer(sp_cli.app, name="sp")
app.add_typer(topup_cli.partners, name="partners")
report_app = typer.Typer(help="Operator reports. Example: mobipay report volumes --from 2026-11-01 --by product",
                         no_args_is_help=True)
app.add_typer(report_app, name="report")
app.add_typer(merchants_cli.app, name="merchants")
app.add_typer(alliances_cli.app, name="alliances")
app.add_typer(bank_app, name="bank")
bank_app.command("resolve")(orders_cli.bank_resolve)
app.add_typer(sms_cli.app, name="sms")
app.add_typer(voice_cli.app, name="voice")
app.add_typer(operator_cli.app, name="operator")
app.add_typer(instore_cli.app, name="instore")
app.add_typer(groupbuy_cli.app, name="groupbuy")
app.add_typer(rural_cli.app, name="rural")
app.add_typer(tourism_cli.app, name="tourism")
app.add_typer(cinema_cli.app, name="cinema")
app.add_typer(enterprise_cli.app, name="enterprise")
app.add_typer(transit_cli.app, name="transit")
campaigns_app = typer.Typer(help="Campaigns: segments, auditable prize draws, prizes delivered to the door, bulk "
                            "disbursements. Example: mobipay campaigns segment list", no_args_is_help=True)
campaigns_draws_cli.mount(campaigns_app)  # segment, draw, prize, delivery, verify-draw
campaigns_bulk_cli.mount(campaigns_app)  # bulk: funders, campaigns, batch files, runs
app.add_typer(campaigns_app, name="campaigns")

cli_support.install(build)  # the contexts' commands run on the container this root builds

REPO = Path(__file__).resolve().parents[3]


def _ready_database(settings: Settings) -> None:
    """Refuse to start a long-running process on a database it cannot use: one sentence
    (not reachable, not migrated), before anything says it is listening."""
    from mobipay.app.migrate import head_revision
    from mobipay.platform.db import Database, connection_problem

    async def revision() -> str | None:
        db = Database(settings.database_url, pgbouncer=settings.database_pgbouncer)
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
    offline_merchants: Annotated[int, typer.Option(min=0, max=99_999, help="Offline merchants in the 50 cities, "
                                                   "with stores and POS terminals (not in production)")] = 15_000,
) -> None:
    """Load demo data: system accounts, subscribers with funded wallets and a history of
    transfers, the biller registry, shops with red-envelope campaigns; safe to run again.
    Example: mobipay demo --users 200 --merchants 1000;
    big data: mobipay demo --users 100000 --transactions 1000000 (a few minutes on PostgreSQL)"""
    from mobipay.app.demo import load_demo, load_demo_merchants
    from mobipay.app.demo_alliances import load_demo_alliances
    from mobipay.app.demo_big import BigDemoReport, load_big_demo, load_demo_history
    from mobipay.app.demo_cinema import load_demo_cinema
    from mobipay.app.demo_enterprise import load_demo_enterprise
    from mobipay.app.demo_groupbuy import load_demo_groupbuy
    from mobipay.app.demo_offline import OfflineReport, load_offline_merchants
    from mobipay.app.demo_protection import load_demo_protection
    from mobipay.app.demo_rural import load_demo_rural
    from mobipay.app.demo_sp import load_demo_sp
    from mobipay.app.demo_tourism import load_demo_tourism
    from mobipay.app.demo_transit import load_demo_transit
    from mobipay.bills.reference_data import shipped_billers
    from mobipay.instore.alliance_service import DemoAlliances

    shops_wanted = merchants if merchants is not None else (0 if transactions else 1000)
    small = 200 if transactions else users
    _ready_database(settings_or_exit())
    typer.echo(f"demo data: {small} subscribers, {shops_wanted} shops (the first run takes a minute) …", err=True)

    async def work(c: Container) -> tuple[Any, tuple[int, int], int, BigDemoReport | None, BigDemoReport | None,
                                          OfflineReport, DemoAlliances]:
        from mobipay.app.demo_accounts import ensure_demo_accounts

        report = await load_demo(c.ledger, c.wallet, users=max(5, small))
        billers = await c.bills.import_billers(shipped_billers(), actor="demo", reason="shipped registry")
        shops = await load_demo_merchants(c.merchants, c.red_envelopes, c.ledger, shops_wanted,
                                          progress=lambda n: typer.echo(f"  … {n} shops", err=True))
        offline = await load_offline_merchants(c, offline_merchants, progress=lambda line: typer.echo(line, err=True))
        alliances = await load_demo_alliances(c, users=max(5, small))  # after the stores it enrols
        protection = await load_demo_protection(c)  # after the subscribers it enrols
        typer.echo(f"handset protection: {protection.stock} phones into the halls' stock, {protection.enrolled} "
                   f"phones enrolled, {protection.claims} claims (mobipay protection claims)"
                   if not protection.skipped else f"handset protection: skipped ({protection.skipped})")
        groupbuy = await load_demo_groupbuy(c)  # 聚惠啦: a deal in each of its cities
        cinema = await load_demo_cinema(c)  # 电子电影票: a cinema, two halls, eight shows, a kiosk
        typer.echo(f"cinema: {cinema.cinema_id} with {cinema.shows} shows; kiosk {cinema.kiosk_id} key "
                   f"{cinema.kiosk_key} (mobipay cinema cinemas)" if not cinema.skipped
                   else f"cinema: skipped ({cinema.skipped})")
        typer.echo((await load_demo_enterprise(c)).summary())  # 企业一卡通: an employer, its canteen, five employees
        typer.echo((await load_demo_transit(c)).summary())  # 公交一卡通: an operator in each of three cities
        sps = await load_demo_sp(c)  # 移动梦网: three SPs, a subscription and an order awaiting 是
        typer.echo(f"SP governance: {sps.sps} new SPs with {sps.services} services, {sps.orders} orders "
                   "(/console/sp, /m/sp)")
        typer.echo(f"group-buy: {groupbuy.merchants} new deal merchants, {groupbuy.deals} new deals "
                   "(mobipay groupbuy deals 北京)")
        typer.echo((await load_demo_tourism(c)).summary())  # 旅游通: 绥宁县's bureau, 9 officers, the seed's tour
        typer.echo((await load_demo_rural(c)).summary())  # 助农: a super-agent, 3 village agents, a rice co-op
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
        return report, billers, shops, history, big, offline, alliances

    report, (added, updated), shops, history, big, offline, alliances = run(work)
    typer.echo(f"demo data: {report.users_total} subscribers ({report.users_created} new), "
               f"{report.transfers_created} transfers created, {report.transfers_replayed} already there; "
               f"billers: {added} added, {updated} updated; {shops} new shops with red-envelope offers")
    if offline.merchants_created:
        typer.echo(f"offline merchants: {offline.merchants_created:,} new ({offline.merchants_total:,} in all) in "
                   f"{min(offline.merchants_total, 50)} cities, {offline.stores:,} stores, {offline.terminals:,} POS "
                   f"terminals, in {offline.seconds:.1f} s (a terminal's key: mobipay instore demo-terminal-key "
                   "<terminal_id>)")
    if alliances.memberships or alliances.subscribers:
        typer.echo(f"alliances: {alliances.programmes} programmes, {alliances.memberships:,} member stores, "
                   f"{alliances.subscribers} subscribers with a brand (mobipay alliances list)")
    if history is not None and not history.skipped:
        paid = history.orders + history.trades + history.kinds.get("p2p", 0)
        typer.echo(f"history: {history.users:,} more subscribers, {paid:,} payments over {history_days} days, "
                   f"in {history.seconds:.0f} s")
    if big is not None and big.skipped:
        typer.echo("big demo: already loaded (its first subscriber exists); nothing added")
    elif big is not None:
        typer.echo(f"big demo: {big.users:,} subscribers, {big.merchants:,} merchants, {big.orders:,} partner orders, "
                   f"{big.trades:,} merchant trades, {big.transfers:,} ledger transfers in {big.seconds:.0f} s")


@instore_cli.app.command("demo-terminal-key")  # the demo's, so mounted here on the in-store commands
def demo_terminal_key(
    terminal_id: Annotated[str, typer.Argument(help="A demo terminal's id (trm_off…, from mobipay demo)")],
) -> None:
    """Print a demo terminal's private key (base64 Ed25519 seed, derived from its id: docs/instore.md,
    "Demo data"), to sign terminal requests against the demo. Example: mobipay instore demo-terminal-key
    trm_off0000000"""
    from mobipay.app.demo_offline import demo_terminal_key as derive

    key = run(lambda c: derive(c, terminal_id))
    if not key.registered:
        typer.secho(f"no terminal {terminal_id} here (the demo's are trm_off…: run mobipay demo)", fg="red", err=True)
        raise typer.Exit(1)
    if not key.matches:
        typer.secho(f"terminal {terminal_id} is not a demo terminal or was re-keyed: its key is not derived from "
                    "its id", fg="red", err=True)
        raise typer.Exit(1)
    typer.echo(f"terminal     {terminal_id}\nprivate key  {key.private_key}\npublic key   {key.public_key}")


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
                   "importing held lottery draws, collecting handset protection fees, "
                   "closing micropay orders past their window, "
                   "folding the KPI rollups "
                   "(Ctrl-C stops)",
                   err=True)
        await c.ensure_system_accounts()
        await asyncio.gather(
            c.outbox_worker().run(stop, idle_s=idle),
            c.ledger.run_hold_sweeper(c.settings.hold_sweep_interval_s, stop),
            every(60.0, stop, c.wallet.return_expired_claims, "wallet.return_claims"),
            every(60.0, stop, c.wallet.expire_due_requests, "wallet.expire_requests"),
            every(c.settings.bank_resolve_interval_s, stop, c.orders.resolve_pending, "orders.resolve"),
            every(600.0, stop, c.saved_bills.check_due, "bills.saved"),
            every(300.0, stop, c.products.renew_due, "products.renew"),
            every(300.0, stop, c.complaints.escalate_overdue, "bills.complaints_escalate"),
            every(2.0, stop, c.merchant_notifier.deliver_due, "merchants.notify"),
            every(300.0, stop, c.red_envelopes.expire_due, "merchants.red_envelopes_expire"),
            every(300.0, stop, c.lottery.import_due, "lottery.import_draws"),
            every(300.0, stop, c.draws.draw_due, "campaigns.draws"),  # prize draws whose lottery draw is imported
            every(600.0, stop, c.prizes.expire_unclaimed, "campaigns.unclaimed"),  # prizes past their deadline
            every(3600.0, stop, c.protection.collect_due, "protection.collect_fees"),
            every(5.0, stop, c.micropay.expire_due, "instore.micropay_expire"),
            every(60.0, stop, c.groupbuy.decide_groups, "groupbuy.groups"),  # thresholds missed: refund all
            every(300.0, stop, c.groupbuy.refund_expired, "groupbuy.expiry_refunds"),  # 过期自动退
            every(60.0, stop, c.groupbuy.settle_consumed, "groupbuy.settle"),  # consumptions past the window
            every(60.0, stop, c.rural_market.track, "rural.track"),  # carrier events, an SMS at each step
            every(300.0, stop, c.rural_market.release_due, "rural.escrow"),  # N days held: seller paid
            every(3600.0, stop, c.rural.pay_last_month, "rural.commissions"),  # last month's, once
            every(300.0, stop, c.tourism.escalate_overdue, "tourism.escalate"),  # work orders past a deadline
            every(30.0, stop, c.cinema.expire_locks, "cinema.expire_locks"),  # unpaid seat locks that ran out
            every(60.0, stop, c.cinema.settle_due, "cinema.settle"),  # started shows, refund fees: to T+1
            every(3600.0, stop, c.enterprise.close_due, "enterprise.month_end"),  # allowances: rollover/expiry
            every(600.0, stop, c.transit.close_open, "transit.close_open"),  # metro taps unpaired: max fare
            every(300.0, stop, c.transit.repost, "transit.repost"),  # uploads interrupted after pricing
            every(3600.0, stop, c.transit.clear_due, "transit.clearing"),  # each operator's due days, paid out
            every(300.0, stop, c.sp.lapse_due, "sp.lapse"),  # SP orders unconfirmed after 24 h lapse, unbilled
            every(600.0, stop, c.sp.bill_all, "sp.bill"),  # SP fees due: phone bill or wallet, once each
            every(600.0, stop, lambda: rollups.fold(c.db, c.clock, c.ledger), "kpi.fold"),
            every(60.0, stop, lambda: rollups.refresh(c.db, c.clock, c.ledger), "kpi.recent"),
        )

    run(work)


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


# The report's labels are the channels' words, so the command that draws it lives up here.
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
    start, end = day_of(first), day_of(last or first)
    rows = run(lambda c: volumes(c.reads, start, end, by))  # a replica when MOBIPAY_DATABASE_READ_URL is set
    for r in rows:
        typer.echo(f"{r.key:<24} {r.count:>8} {r.amount / 100:>14.2f} CNY")
    settings = settings_or_exit()
    label = {"product": kind_name, "category": lambda k: CATEGORY_WORDS[k][0] if k in CATEGORY_WORDS else kind_name(k)
             }.get(by, str)
    csv_path, png_path = write(rows, by, start, end, settings.report_dir, font=settings.chart_font, label=label)
    typer.echo(f"{len(rows)} rows; report: {csv_path}, chart: {png_path}")


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


@bench_app.command("instore")
def bench_instore(
    seconds: Annotated[int, typer.Option(min=1, max=25, help="Seconds of micropay load (pgbench runs as long); at "
                                         "most 25: a payment code is good for 30 s and requests are made first")] = 10,
    devices: Annotated[int, typer.Option(min=100, max=100_000, help="Subscribers with a payment-code device: one "
                                         "payment each per run, so the phase ends when they are spent")] = 4000,
    taps: Annotated[int, typer.Option(min=1000, max=100_000, help="Offline NFC taps in the upload")] = 100_000,
) -> None:
    """In-store payments vs pgbench on the same PostgreSQL: micropay over HTTP (16 tills, signed
    requests, one payment code each) and an upload of offline NFC taps. Example:
    MOBIPAY_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1/mobipay_bench_instore mobipay bench instore"""
    module = _bench_module("instore_bench")
    result: dict[str, Any] = module.main(settings_or_exit().database_url, seconds,
                                         lambda line: typer.echo(line, err=True), devices=devices, taps=taps)
    if not result.get("ok"):
        raise typer.Exit(1)


@bench_app.command("transit")
def bench_transit(
    seconds: Annotated[int, typer.Option(min=1, max=600, help="Seconds of pgbench TPC-B (the reference)")] = 10,
    taps: Annotated[int, typer.Option(min=1000, max=5_000_000, help="Taps uploaded (5% of them duplicates, the "
                                      "fares of three cities, 1% of riders unable to pay)")] = 1_000_000,
) -> None:
    """The transit one-card's tap upload (verified, deduplicated, priced, posted in ledger
    batches) vs pgbench on the same PostgreSQL; ledger verify after. Example:
    MOBIPAY_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1/mobipay_bench_transit mobipay bench transit"""
    module = _bench_module("transit_bench")
    result: dict[str, Any] = module.main(settings_or_exit().database_url, seconds,
                                         lambda line: typer.echo(line, err=True), taps=taps)
    if not result.get("ok"):
        raise typer.Exit(1)


@bench_app.command("evidence")
def bench_evidence(
    captures: Annotated[int, typer.Option(min=1, max=100_000, help="Photos and recordings taken in all")] = 180,
    officers: Annotated[int, typer.Option(min=1, max=9, help="Officers' terminals capturing at once")] = 9,
    interval: Annotated[float, typer.Option(min=0.05, max=60, help="Seconds between one terminal's captures")] = 1.0,
    outage: Annotated[float, typer.Option(min=0, max=600, help="Seconds the network is cut")] = 10.0,
    outage_at: Annotated[float, typer.Option(min=0, max=600, help="Seconds after the first capture the cut "
                                             "begins")] = 5.0,
    retry: Annotated[float, typer.Option(min=0.1, max=60, help="Seconds between a terminal's retries of its "
                                         "queue (the field app: 3)")] = 3.0,
    database_url: Annotated[str, typer.Option(help="A database to use (default: a fresh SQLite in a temporary "
                                              "folder)")] = "",
) -> None:
    """旅游通's evidence from capture to visible in the back office, through the app's API path
    with a network outage (a loopback proxy cut) and the terminals' queues flushed after it;
    prints p50/p95 and a RESULT line (target p95 <= 60 s). Example: mobipay bench evidence --outage 10"""
    module = _bench_module("evidence_bench")
    result: dict[str, Any] = module.main(database_url, lambda line: typer.echo(line, err=True), captures=captures,
                                         officers=officers, interval_s=interval, outage_at_s=outage_at,
                                         outage_s=outage, retry_s=retry)
    if not result.get("ok"):
        raise typer.Exit(1)


@bench_app.command("spbilling")
def bench_spbilling(
    seconds: Annotated[int, typer.Option(min=1, max=600, help="Seconds of pgbench TPC-B (the reference)")] = 10,
    subscriptions: Annotated[int, typer.Option(min=100, max=5_000_000, help="Subscriptions in the run (some "
                                               "lapsed, cancelled within 72 h or of a shielded SP)")] = 1_000_000,
    chunk: Annotated[int, typer.Option(min=10, max=20_000, help="Subscriptions per billing chunk")] = 5000,
) -> None:
    """The SP monthly billing run (charges to the phone bill through the operator-billing
    SIMULATOR, posted through the ledger's batch path) vs pgbench on the same PostgreSQL. Example:
    MOBIPAY_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1/mobipay_bench_sp mobipay bench spbilling"""
    module = _bench_module("spbilling_bench")
    result: dict[str, Any] = module.main(settings_or_exit().database_url, seconds,
                                         lambda line: typer.echo(line, err=True), subscriptions=subscriptions,
                                         chunk=chunk)
    if not result.get("ok"):
        raise typer.Exit(1)


@bench_app.command("flashsale")
def bench_flashsale(
    seconds: Annotated[int, typer.Option(min=1, max=600, help="Seconds of pgbench TPC-B (the reference)")] = 10,
    buyers: Annotated[int, typer.Option(min=2, max=100_000, help="Subscribers, each trying once at once")] = 10_000,
    stock: Annotated[int, typer.Option(min=1, max=100_000, help="Vouchers on sale (at most --buyers)")] = 1_000,
    connections: Annotated[int, typer.Option(min=1, max=5_000, help="Keep-alive HTTP connections carrying the "
                                             "buyers' requests")] = 100,
    workers: Annotated[int, typer.Option(min=1, max=16, help="uvicorn worker processes")] = 2,
) -> None:
    """A group-buy flash sale vs pgbench on the same PostgreSQL: every buyer POSTs
    /v1/groupbuy/orders at once; exactly --stock sold, the rest SOLD_OUT. Example:
    MOBIPAY_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1/mobipay_bench_flashsale mobipay bench flashsale"""
    module = _bench_module("flashsale_bench")
    result: dict[str, Any] = module.main(settings_or_exit().database_url, seconds,
                                         lambda line: typer.echo(line, err=True), buyers=buyers, stock=stock,
                                         connections=connections, workers=workers)
    if not result.get("ok"):
        raise typer.Exit(1)


@bench_app.command("bulk")
def bench_bulk(
    rows: Annotated[int, typer.Option(min=100, max=1_000_000, help="Rows of the batch file (2% invalid, 5% numbers "
                                      "without a wallet)")] = 1_000_000,
    seconds: Annotated[int, typer.Option(min=1, max=600, help="Seconds of pgbench TPC-B (the reference)")] = 10,
) -> None:
    """A bulk disbursement validated and paid, rows/s vs pgbench on the same PostgreSQL. Example:
    MOBIPAY_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1/mobipay_bench_bulk mobipay bench bulk --rows 20000"""
    module = _bench_module("bulk_bench")
    result: dict[str, Any] = module.main(settings_or_exit().database_url, rows, seconds,
                                         lambda line: typer.echo(line, err=True))
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
    if str(path.parent) not in sys.path:
        sys.path.append(str(path.parent))  # a benchmark imports the ones it builds on by name
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
