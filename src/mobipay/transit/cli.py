"""``mobipay transit …``: operators, lines, stations and validators for the transit staff; the
fares in force; the deny list; the daily clearing, its reconciliation and disputes on demand
(the worker clears due days, closes unpaired metro taps and posts interrupted uploads itself)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from mobipay.platform.cli_support import ACTOR, day_of, run
from mobipay.transit.model import FareTable
from mobipay.transit.model import day_of as beijing_day

app = typer.Typer(help="The transit one-card (公交一卡通). Example: mobipay transit operators 北京",
                  no_args_is_help=True)


def _yuan(fen: int) -> str:
    return f"{fen / 100:,.2f}"


@app.command("fares")
def fares(city: Annotated[str, typer.Argument(help="A city of transit/data/fares.json, e.g. 北京")],
          on: Annotated[str, typer.Option("--date", help="YYYY-MM-DD (default today)")] = "") -> None:
    """The fares in force in a city on a day. Example: mobipay transit fares 北京 --date 2026-12-07"""
    day = day_of(on) if on else beijing_day(datetime.now(UTC))
    table = FareTable.load()
    if city not in table.cities or table.cities[city][0].effective > day:
        typer.secho(f"no fares for {city} on {day}: the cities are {', '.join(table.cities)}", fg="red", err=True)
        raise typer.Exit(1)
    r = table.rules(city, day)
    typer.echo(f"{city} from {r.effective}: bus {_yuan(r.bus_flat)} CNY")
    if r.metro:
        bands = ", ".join(f"<= {km} km {_yuan(f)}" for km, f in r.metro.bands)
        typer.echo(f"  metro: {bands}; then +{_yuan(r.metro.beyond_step_fare)} per {r.metro.beyond_step_km} km or "
                   f"part; missing exit {_yuan(r.metro.missing_exit_fare)}")
    if r.transfer:
        typer.echo(f"  transfer: {_yuan(r.transfer.discount)} off within {r.transfer.window}")
    typer.echo(f"  monthly tiers ({', '.join(r.tier_modes) or 'none'}): "
               + ", ".join(f"from {_yuan(a)} pay {p}%" for a, p in r.tiers))
    typer.echo(f"  daily cap: {_yuan(r.daily_cap) if r.daily_cap is not None else 'none'}")


@app.command("add-operator")
def add_operator(city: Annotated[str, typer.Argument(help="e.g. 北京")],
                 name: Annotated[str, typer.Argument(help="e.g. 北京公交")],
                 mode: Annotated[str, typer.Option(help="bus or metro")],
                 bank_account: Annotated[str, typer.Option(help="Where its clearing is paid (digits)")]) -> None:
    """A transit operator of a city. Example: mobipay transit add-operator 北京 北京公交 --mode bus
    --bank-account 6222020000111100002"""
    op = run(lambda c: c.transit.add_operator(city, name, mode, bank_account))
    typer.echo(f"{op.id}  {op.city} {op.name} ({op.mode})  account {op.account_code}")


@app.command("operators")
def operators(city: Annotated[str, typer.Argument(help="Only this city")] = "") -> None:
    """Transit operators. Example: mobipay transit operators 北京"""
    for op in run(lambda c: c.transit.operators(city or None)):
        typer.echo(f"{op.id}  {op.city} {op.name} ({op.mode})")


@app.command("add-line")
def add_line(operator_id: Annotated[str, typer.Argument(help="top_…")],
             name: Annotated[str, typer.Argument(help="e.g. 1号线")]) -> None:
    """A line of an operator. Example: mobipay transit add-line top_0192… 1号线"""
    line = run(lambda c: c.transit.add_line(operator_id, name))
    typer.echo(f"{line.id}  {line.name}")


@app.command("add-station")
def add_station(line_id: Annotated[str, typer.Argument(help="tln_…")],
                name: Annotated[str, typer.Argument(help="e.g. 西单")],
                position_m: Annotated[int, typer.Option(help="Meters along the line from its first station")]) -> None:
    """A station (or stop) on a line. Example: mobipay transit add-station tln_0192… 西单 --position-m 14000"""
    st = run(lambda c: c.transit.add_station(line_id, name, position_m))
    typer.echo(f"{st.id}  {st.name}  at {st.position_m} m")


@app.command("register-validator")
def register_validator(operator_id: Annotated[str, typer.Argument(help="top_…")],
                       line_id: Annotated[str, typer.Argument(help="tln_…")],
                       label: Annotated[str, typer.Argument(help="e.g. '西单 进站 3号闸机'")],
                       role: Annotated[str, typer.Option(help="flat (a bus reader), entry or exit")] = "flat",
                       station_id: Annotated[str, typer.Option(help="A metro gate's station (tst_…)")] = "",
                       public_key: Annotated[str, typer.Option(help="The validator's Ed25519 public key (base64); "
                                                               "omitted: one is made and its seed shown once")] = "",
                       ) -> None:
    """A validator with its own key. Example: mobipay transit register-validator top_… tln_… '1路 京A12345'"""
    v, seed = run(lambda c: c.transit.register_validator(operator_id, line_id, role, label,
                                                         station_id=station_id or None,
                                                         public_key=public_key or None))
    typer.echo(f"{v.id}  {v.label} ({v.role})  public key {v.public_key}")
    if seed:
        typer.echo(f"private seed (shown once; load it into the validator): {seed}")


@app.command("deny-list")
def deny_list(since: Annotated[str, typer.Option(help="A version a validator holds, e.g. 12.3")] = "") -> None:
    """The deny list validators download. Example: mobipay transit deny-list"""
    version, items = run(lambda c: c.transit.deny_list(since))
    typer.echo(f"version {version}: {len(items)} entries")
    for i in items:
        typer.echo(f"{'+' if i.listed else '-'} {i.token_id}  {i.reason}")


@app.command("clear")
def clear(on: Annotated[str, typer.Option("--date", help="The Beijing day to clear, YYYY-MM-DD")],
          operator_id: Annotated[str, typer.Option(help="One operator (default: every one)")] = "") -> None:
    """Clear a day (the file, the payout through the bank). Example: mobipay transit clear --date 2026-12-06"""
    day = day_of(on)
    done = run(lambda c: c.transit.clear(operator_id, day)) if operator_id else None
    for cl in [done] if done else run(lambda c: c.transit.clear_all(day)):
        typer.echo(f"{cl.id}  taps {cl.taps}  trips {cl.trips}  fares {_yuan(cl.fares)}  discounts "
                   f"{_yuan(cl.discounts)}  debts {_yuan(cl.debts)}  net {_yuan(cl.net)}  {cl.state}")


@app.command("reconcile")
def reconcile(operator_id: Annotated[str, typer.Argument(help="top_…")],
              on: Annotated[str, typer.Option("--date", help="The cleared day, YYYY-MM-DD")]) -> None:
    """Compare a clearing with the operator's own count. Example: mobipay transit reconcile top_… --date 2026-12-06"""
    cl = run(lambda c: c.transit.reconcile(operator_id, day_of(on)))
    typer.echo(f"{cl.id}  ours taps {cl.taps} fares {_yuan(cl.fares)}; theirs taps {cl.operator_taps} fares "
               f"{'-' if cl.operator_fares is None else _yuan(cl.operator_fares)}: {cl.reconciled}")


@app.command("disputes")
def disputes() -> None:
    """Open disputes on taps. Example: mobipay transit disputes"""
    for d in run(lambda c: c.transit.disputes_open()):
        typer.echo(f"{d.id}  tap {d.tap_id}  trip {d.trip_id}  {d.reason}")


@app.command("decide")
def decide(dispute_id: Annotated[str, typer.Argument(help="tdp_…")],
           uphold: Annotated[bool, typer.Option("--uphold/--reject", help="Refund the fare, or not")],
           actor: Annotated[str, ACTOR] = "") -> None:
    """Decide a dispute (audited). Example: mobipay transit decide tdp_0192… --uphold"""
    d = run(lambda c: c.transit.decide_dispute(dispute_id, uphold, actor=actor))
    typer.echo(f"{d.id}  {d.state}  refund {_yuan(d.refund)} CNY")
