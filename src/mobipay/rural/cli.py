"""``mobipay rural …``: village agents and the rural marketplace for operators: onboard an
agent, list agents by place, the console's activity by county, flagged transactions and the
risk decision, the monthly commission run, price notices, and the worker's jobs on demand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from mobipay.platform.cli_support import ACTOR, run
from mobipay.rural.model import AgentKind, Location

app = typer.Typer(help="Rural e-commerce: village agents, float, commissions, the marketplace. "
                       "Example: mobipay rural agents --county 宁乡县", no_args_is_help=True)


def _yuan(fen: int) -> str:
    return f"{fen / 100:,.2f}"


@app.command("onboard")
def onboard(
    name: Annotated[str, typer.Argument(help="The store, e.g. 东鹜村便民店")],
    licence: Annotated[str, typer.Option(help="The agent's licence number")],
    msisdn: Annotated[str, typer.Option(help="The agent's number (customers send cash-outs to it)")],
    province: Annotated[str, typer.Option()],
    city: Annotated[str, typer.Option()],
    county: Annotated[str, typer.Option()],
    township: Annotated[str, typer.Option()],
    village: Annotated[str, typer.Option()],
    pin: Annotated[str, typer.Option(help="The owner's 6-digit staff PIN", prompt=True, hide_input=True)],
    super_agent: Annotated[bool, typer.Option("--super", help="A super-agent (aggregator)")] = False,
    super_id: Annotated[str, typer.Option(help="Its super-agent (agt_…)")] = "",
    bank_account: Annotated[str, typer.Option(help="Where float sold to the bank is paid")] = "",
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Onboard an agent (audited). Example: mobipay rural onboard 东鹜村便民店 --licence LIC001
    --msisdn 13600136001 --province 湖南省 --city 长沙市 --county 宁乡县 --township 灰汤镇 --village 东鹜村"""
    a = run(lambda c: c.rural.onboard(
        name=name, licence=licence, msisdn=msisdn, location=Location(province, city, county, township, village),
        owner_pin=pin, kind=AgentKind.SUPER if super_agent else AgentKind.AGENT, super_id=super_id or None,
        bank_account=bank_account or None, actor=actor))
    typer.echo(f"{a.id}  {a.kind}  {a.name}  {a.msisdn}  float liability:rural:float:{a.id}")


@app.command("agents")
def agents(
    county: Annotated[str, typer.Option()] = "",
    township: Annotated[str, typer.Option()] = "",
    village: Annotated[str, typer.Option()] = "",
) -> None:
    """The agent locator. Example: mobipay rural agents --township 灰汤镇"""
    found = run(lambda c: c.rural.locate(county=county, township=township, village=village))
    for a in found:
        typer.echo(f"{a.id}  {a.name}  {a.msisdn}  {a.location.township} {a.location.village}  {a.state}")
    if not found:
        typer.echo("no agents there", err=True)


@app.command("activity")
def activity(days: Annotated[int, typer.Option(min=1, max=366, help="The last N days")] = 1) -> None:
    """Agents' activity by county: cash-ins, cash-outs, flagged. Example: mobipay rural activity --days 7"""
    until = datetime.now(UTC)
    rows = run(lambda c: c.rural.activity_by_county(until - timedelta(days=days), until))
    typer.echo(f"{'county':<10} {'agents':>6} {'cash-ins':>9} {'CNY':>12} {'cash-outs':>9} {'CNY':>12} {'flagged':>7}")
    for r in rows:
        typer.echo(f"{r.county:<10} {r.agents:>6} {r.cash_ins:>9} {_yuan(r.cash_in_amount):>12} {r.cash_outs:>9} "
                   f"{_yuan(r.cash_out_amount):>12} {r.flagged:>7}")


@app.command("flags")
def flags(state: Annotated[str, typer.Option(help="open | cleared | confirmed")] = "open") -> None:
    """Transactions the fraud rules flagged. Example: mobipay rural flags"""
    for f in run(lambda c: c.rural.flagged(state)):
        typer.echo(f"{f.id}  {f.rule:<22} {f.txn_id}  {f.agent_id}  {f.created_at:%Y-%m-%d %H:%M}  {f.state}")


@app.command("decide")
def decide(
    flag_id: Annotated[str, typer.Argument(help="rfl_…")],
    fraud: Annotated[bool, typer.Option("--fraud/--clear", help="Fraud voids the commission; clear pays it")],
    note: Annotated[str, typer.Option()] = "",
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """The risk role's decision on a flag (audited). Example: mobipay rural decide rfl_… --clear --actor rita"""
    f = run(lambda c: c.rural.decide_flag(flag_id, actor=actor, fraud=fraud, note=note))
    typer.echo(f"{f.id}  {f.rule}  {f.state}  by {f.decided_by}")


@app.command("pay-commissions")
def pay_commissions(month: Annotated[str, typer.Argument(help="YYYY-MM")], actor: Annotated[str, ACTOR] = "") -> None:
    """Pay a month's accrued commissions into the earners' floats (one batch; a second run pays
    only what is left). Example: mobipay rural pay-commissions 2026-11"""
    r = run(lambda c: c.rural.pay_commissions(month, actor=actor))
    typer.echo(f"{r.month}: {r.lines} lines, {r.agents} agents, {_yuan(r.amount)} CNY paid into floats")


@app.command("price")
def price(
    product: Annotated[str, typer.Argument(help="e.g. 玉米")],
    county: Annotated[str, typer.Argument(help="e.g. 宁乡县")],
    fen: Annotated[int, typer.Argument(help="Fen per unit")],
    unit: Annotated[str, typer.Option()] = "斤",
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Publish an agricultural price; its subscribers are texted. Example: mobipay rural price 玉米 宁乡县 260"""
    n = run(lambda c: c.rural_market.publish_price(product, county, fen, unit, actor=actor))
    typer.echo(f"{county} {product} {_yuan(fen)} CNY/{unit}: {n} subscribers texted")


@app.command("jobs")
def jobs() -> None:
    """Run the worker's rural jobs once: shipments tracked, escrow released after N days,
    undecided disputes refunded, last month's commissions paid. Example: mobipay rural jobs"""
    tracked = run(lambda c: c.rural_market.track())
    released = run(lambda c: c.rural_market.release_due())
    paid = run(lambda c: c.rural.pay_last_month())
    typer.echo(f"carrier events {tracked}; orders released or refunded {released}; agents paid commissions {paid}")
