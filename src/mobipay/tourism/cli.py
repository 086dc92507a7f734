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
        typer.echo(f"{o.badge}  {o.name}  {o.phone}  device {o.device_id}" + ("  DISABLED" if o.disabled else ""))


@app.command("officer-change")
def officer_change(
    badge: Annotated[str, typer.Argument(help="The officer's badge (执法证号), e.g. SN0001")],
    reason: Annotated[str, typer.Option(help="Why, for the audit trail")],
    disable: Annotated[bool | None, typer.Option("--disable/--enable", help="Disable (ends the officer's "
                                                                               "sessions) or enable again")] = None,
    device: Annotated[str, typer.Option(help="Bind the account to this new terminal (a lost or replaced "
                                             "phone)")] = "",
    new_password: Annotated[bool, typer.Option("--new-password", help="Set a new password (asked twice)")] = False,
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Disable or enable an officer, bind them to a new terminal, or set a new password; any of
    them ends the officer's sessions; audited.
    Example: mobipay tourism officer-change SN0003 --device SN-TERM-10 --reason "terminal lost"
    """
    if disable is None and not device and not new_password:
        raise typer.BadParameter("say what changes: --disable, --enable, --device or --new-password")
    password = typer.prompt("New password", hide_input=True, confirmation_prompt=True) if new_password else None
    o = run(lambda c: c.tourism.change_officer(badge, actor=actor, reason=reason, disabled=disable,
                                               password=password, device_id=device or None))
    typer.echo(f"{o.badge}  {o.name}  device {o.device_id}  {'DISABLED' if o.disabled else 'enabled'}"
               + ("  new password set" if new_password else ""))


@app.command("agency-account-add")
def agency_account_add(
    agency_id: Annotated[str, typer.Argument(help="The agency (tag_…)")],
    login: Annotated[str, typer.Argument(help="What the person signs in with, e.g. qingshan.chen")],
    name: Annotated[str, typer.Option(help="The person's name")],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True,
                                          help="At least 10 characters")],
    role: Annotated[str, typer.Option(help="manager (network and staff), staff (contracts) or guide (the guide "
                                           "assistant)")] = "manager",
    staff: Annotated[str, typer.Option(help="The guide's entry in the agency's staff (tst_…): required for a "
                                            "guide")] = "",
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Create an agency's own sign-in (its pages at /tourism/agency, or a guide's assistant at
    /tourism/guide); audited and in the agency's operations log.
    Example: mobipay tourism agency-account-add tag_… qingshan.chen --name 陈志强 --role manager"""
    a = run(lambda c: c.tourism.add_agency_account(agency_id, login, name, role, password, staff_id=staff or None,
                                                   actor=actor))
    typer.echo(f"{a.id}  {a.login}  {a.role}  {a.name}  {a.agency}" + (f"  staff {a.staff_id}" if a.staff_id else ""))


@app.command("agency-accounts")
def agency_accounts(agency_id: Annotated[str, typer.Argument(help="The agency (tag_…)")]) -> None:
    """An agency's sign-in accounts. Example: mobipay tourism agency-accounts tag_…"""
    for a in run(lambda c: c.tourism.agency_accounts_of(agency_id)):
        typer.echo(f"{a.login}  {a.role}  {a.name}" + (f"  staff {a.staff_id}" if a.staff_id else "")
                   + ("  DISABLED" if a.disabled else ""))


@app.command("agency-account-change")
def agency_account_change(
    login: Annotated[str, typer.Argument(help="The account's sign-in, e.g. lifang")],
    reason: Annotated[str, typer.Option(help="Why, for the audit trail")],
    disable: Annotated[bool | None, typer.Option("--disable/--enable", help="Disable (ends its sessions) or "
                                                                               "enable it again")] = None,
    new_password: Annotated[bool, typer.Option("--new-password", help="Set a new password (asked twice; ends "
                                                                       "its sessions and any lock)")] = False,
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Disable or enable an agency's account, or give it a new password; audited and in the
    agency's operations log.
    Example: mobipay tourism agency-account-change lifang --disable --reason "left the agency"
    Example: mobipay tourism agency-account-change qingshan --new-password --reason "forgot it"
    """
    if disable is None and not new_password:
        raise typer.BadParameter("say what changes: --disable, --enable or --new-password")
    password = typer.prompt("New password", hide_input=True, confirmation_prompt=True) if new_password else None
    a = run(lambda c: c.tourism.change_agency_account(login, actor=actor, reason=reason, disabled=disable,
                                                      password=password))
    typer.echo(f"{a.login}  {a.role}  {a.name}  {'DISABLED' if a.disabled else 'enabled'}"
               + ("  new password set" if new_password else ""))


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
