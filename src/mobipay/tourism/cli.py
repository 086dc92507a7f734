"""``mobipay tourism …``: the county bureaus' set-up and work orders from the command line
(directory loaded from the shipped data, terminals issued to officers, an agency's account
paid in, the work orders and their route replays, evidence checked, overdue orders escalated)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from mobipay.kernel.clock import SHANGHAI
from mobipay.platform.cli_support import ACTOR, run
from mobipay.tourism.service import Viewer, counties

app = typer.Typer(help="Tourism enforcement (旅游通). Example: mobipay tourism orders 430527", no_args_is_help=True)

CONSOLE = Viewer("cli", None)


@app.command("counties")
def list_counties() -> None:
    """The counties whose bureaus use the terminal. Example: mobipay tourism counties"""
    for c in counties().values():
        typer.echo(f"{c.code}  {c.name}  {c.prefecture} {c.province}")


@app.command("load-directory")
def load_directory(county: Annotated[str, typer.Argument(help="County code, e.g. 430527 (绥宁县)")],
                   actor: Annotated[str, ACTOR] = "") -> None:
    """Load a county's shipped directory (places, contacts, agencies and staff, news,
    policies, scenic spots from its map); again adds nothing. Example: mobipay tourism
    load-directory 430527"""
    n = run(lambda c: c.tourism.load_directory(county, actor=actor))
    typer.echo(", ".join(f"{k} {v}" for k, v in n.items()))


@app.command("officer-add")
def officer_add(
    county: Annotated[str, typer.Argument(help="County code, e.g. 430527")],
    badge: Annotated[str, typer.Argument(help="执法证号, e.g. SN0001")],
    name: Annotated[str, typer.Option(help="The officer's name")],
    phone: Annotated[str, typer.Option(help="The officer's mobile number")],
    device: Annotated[str, typer.Option(help="The id of the terminal issued (shown by the app at first start)")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True,
                                          help="At least 10 characters")],
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Issue a terminal to an officer: sign-in works only from that device (audited).
    Example: mobipay tourism officer-add 430527 SN0001 --name 唐明 --phone 13907391001 --device SN-TERM-01"""
    o = run(lambda c: c.tourism.add_officer(county, badge, name, phone, device, password, actor=actor))
    typer.echo(f"{o.id}  {o.badge}  {o.name}  {o.county}  device {o.device_id}")


@app.command("officers")
def officers(county: Annotated[str, typer.Argument(help="County code")]) -> None:
    """A county's officers and their terminals. Example: mobipay tourism officers 430527"""
    for o in run(lambda c: c.tourism.officers_of(county)):
        typer.echo(f"{o.badge}  {o.name}  {o.phone}  device {o.device_id}")


@app.command("agency-fund")
def agency_fund(
    agency_id: Annotated[str, typer.Argument(help="The agency (tag_…)")],
    amount: Annotated[int, typer.Argument(help="Fen, e.g. 500000 for 5,000.00 CNY")],
    key: Annotated[str, typer.Option(help="Idempotency key (the bank's reference)")],
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Record an agency's payment from its bank into its account (refunds come from it).
    Example: mobipay tourism agency-fund tag_… 500000 --key BANK-20261003-001"""
    fen = run(lambda c: c.tourism.fund_agency(agency_id, amount, idempotency_key=key, actor=actor))
    typer.echo(f"{agency_id}: +{fen / 100:,.2f} CNY")


@app.command("orders")
def orders(county: Annotated[str, typer.Argument(help="County code ('' for all)")] = "",
           state: Annotated[str, typer.Option(help="Only this state")] = "") -> None:
    """Work orders with their deadlines. Example: mobipay tourism orders 430527 --state received"""
    viewer = Viewer("cli", county or None)
    found = run(lambda c: c.tourism.work_orders(viewer, state))
    for o in found:
        due = o.deadlines.accept_by if o.state.value == "received" else o.deadlines.mediate_by
        typer.echo(f"{o.id}  {o.county}  {o.state.value:<11} {o.complainant_name}  {o.cause}  tour {o.tour_date}  "
                   f"due {due.astimezone(SHANGHAI):%Y-%m-%d}" + (f"  escalated {o.escalation}" if o.escalation else "")
                   + ("  group" if o.group_id else ""))
    if not found:
        typer.echo("no work orders", err=True)


@app.command("order")
def order(order_id: Annotated[str, typer.Argument(help="The work order (two_…)")]) -> None:
    """One work order with its steps. Example: mobipay tourism order two_…"""
    o = run(lambda c: c.tourism.work_order(CONSOLE, order_id))
    typer.echo(f"{o.id}  {o.state.value}  {o.complainant_name} {o.complainant_phone}  agency {o.agency_id}")
    for s in o.steps:
        typer.echo(f"  {s.at.astimezone(SHANGHAI):%Y-%m-%d %H:%M}  {s.actor:<16} {s.step:<14} {s.detail}")


@app.command("replay")
def replay(order_id: Annotated[str, typer.Argument(help="The work order (two_…)")],
           subject: Annotated[str, typer.Option(help="guide or driver")] = "guide",
           distance: Annotated[float, typer.Option(help="Stay distance, metres")] = 200.0,
           minutes: Annotated[int, typer.Option(help="Stay duration, minutes")] = 20) -> None:
    """Replay the guide's or coach's route over the tour's hours and print each promised
    spot's verdict. Example: mobipay tourism replay two_… --minutes 30"""
    r = run(lambda c: c.tourism.replay_route(CONSOLE, order_id, subject=subject, stay_distance_m=distance,
                                            stay_duration=timedelta(minutes=minutes)))
    typer.echo(f"{len(r.track)} fixes, {len(r.stops)} stops")
    for v in r.verdicts:
        if v.visited and v.arrived and v.left:
            arrived, left = v.arrived.astimezone(SHANGHAI), v.left.astimezone(SHANGHAI)
            typer.echo(f"  VISITED      {v.spot.name}: {arrived:%H:%M}-{left:%H:%M} Beijing time ({v.minutes:.0f} min)")
        else:
            typer.echo(f"  NOT VISITED  {v.spot.name}: closest {v.closest_m:.0f} m")


@app.command("verify")
def verify(evidence_id: Annotated[str, typer.Argument(help="The evidence (tev_…)")]) -> None:
    """Re-hash a kept evidence file against its capture hash (recorded in its custody).
    Example: mobipay tourism verify tev_…"""
    r = run(lambda c: c.tourism.verify_evidence(CONSOLE, evidence_id))
    typer.echo(f"{evidence_id}: {'intact' if r.intact else 'NOT INTACT'} (recorded {r.recorded_sha256}, "
               f"file {r.file_sha256 or 'missing'})")
    if not r.intact:
        raise typer.Exit(1)


@app.command("escalate")
def escalate() -> None:
    """Escalate the work orders past a deadline once (the worker does it every few minutes).
    Example: mobipay tourism escalate"""
    typer.echo(f"escalated {run(lambda c: c.tourism.escalate_overdue())} work orders")
