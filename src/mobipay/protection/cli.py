"""``mobipay protection …``: handset protection for staff at a terminal: the programme, an
IMEI check, enrolment at a business hall, the claims queue and each step of a claim, stock,
the blocklist, the monthly fee collection and the report (CSV). Every staff command acts as
``--actor``, whose roles come from the roster (MOBIPAY_OPERATORS)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mobipay.kernel.money import yuan
from mobipay.kernel.roles import Roster
from mobipay.platform.cli_support import day_of, run

if TYPE_CHECKING:
    from mobipay.protection.service import Claim

app = typer.Typer(help="Handset protection (手机保障服务): enrolments, claims, stock, blocklist, fees and the "
                  "report. Example: mobipay protection claims --state submitted", no_args_is_help=True)
ACTOR = typer.Option("--actor", help="Who acts (a name of MOBIPAY_OPERATORS with the role needed)")


@dataclass(frozen=True)
class RosterStaff:
    """A command-line actor: their roles are the roster's."""

    name: str
    roster: Roster

    def require(self, role: str) -> None:
        self.roster.require(self.name, role)


def _staff(c: Any, actor: str) -> RosterStaff:
    return RosterStaff(actor, Roster(c.settings.operators))


def _line(x: Claim) -> str:
    due = f"due {x.due_by:%Y-%m-%d %H:%M}" if x.due_by else ""
    flags = f" flags: {','.join(x.flags)}" if x.flags else ""
    return (f"{x.id}  {x.state.value:<16} {x.kind.value:<6} {x.city:<9} {x.model:<14} fee {yuan(x.fee):>7}  "
            f"{due}{flags}").rstrip()


@app.command("programme")
def programme() -> None:
    """The programmes: cities, period, window, waiting period, limits and fee tiers. Example:
    mobipay protection programme"""
    from mobipay.protection.reference_data import programmes

    for p in programmes().values():
        typer.echo(f"{p.code}: {p.name}; cities {', '.join(sorted(p.cities))}; {p.starts} to {p.ends}; enrol "
                   f"within {p.enrol_window_days} days of purchase; cover after {p.waiting_days} days; "
                   f"{p.claims_per_year} claims per 12 months")
        for t in p.tiers:
            typer.echo(f"  up to {yuan(t.max_price)} CNY: {yuan(t.monthly_fee)}/month, handling fee damage "
                       f"{yuan(t.damage_fee)}, loss/theft {yuan(t.loss_fee)}")
        for r in p.fraud_rules:
            typer.echo(f"  fraud rule {r.code}: {r.description}")


@app.command("enrol")
def enrol(
    msisdn: Annotated[str, typer.Option(help="The customer's number (a wallet)")],
    imei: Annotated[str, typer.Option(help="15 digits")],
    price: Annotated[int, typer.Option(help="The price on the receipt, in fen")],
    purchased: Annotated[str, typer.Option(help="Purchase date, YYYY-MM-DD")],
    receipt: Annotated[str, typer.Option(help="The receipt's number")],
    hall: Annotated[str, typer.Option(help="The business hall's code, e.g. CS01")],
    key: Annotated[str, typer.Option(help="Idempotency key: the same key again enrols once")],
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Enrol a phone the hall sold, for the customer at the counter (the monthly fee on the phone
    bill). Example: mobipay protection
    enrol --msisdn 13800138000 --imei 353281110000011 --price 399900 --purchased 2026-11-20
    --receipt FP-1 --hall CS01 --key counter-1 --actor operator"""
    bought = day_of(purchased)
    e = run(lambda c: c.protection.enrol_at_hall(_staff(c, actor), hall, msisdn, imei=imei, price=price,
                                                 purchased_on=bought, receipt=receipt, idempotency_key=key))
    typer.echo(f"{e.id}: {e.brand} {e.model} {e.imei} enrolled ({e.city}, {yuan(e.monthly_fee)} CNY a month by "
               f"{e.payment}), covered from {e.covered_from}" + (" (replayed)" if e.replayed else ""))


@app.command("claims")
def claims(
    state: Annotated[list[str] | None, typer.Option(help="Only these states (default: every open claim)")] = None,
    city: Annotated[str | None, typer.Option(help="Only this city")] = None,
) -> None:
    """The claims queue, the nearest deadline first. Example: mobipay protection claims --state submitted"""
    for x in run(lambda c: c.protection.queue(state or None, city=city)):
        typer.echo(_line(x))


@app.command("show")
def show(claim_id: Annotated[str, typer.Argument(help="The claim's id")]) -> None:
    """One claim with its history. Example: mobipay protection show pc_0123…"""
    async def both(c: Any) -> tuple[Any, list[Any], list[Any]]:
        claim, history = await c.protection.claim_for_staff(claim_id)
        return claim, history, await c.protection.photos(claim.photos)

    x, events, photos = run(both)
    typer.echo(_line(x))
    typer.echo(f"  {x.msisdn} IMEI {x.imei}, happened {x.occurred_on} in {x.region}; warranty {x.warranty}; "
               f"photos {len(x.photos)}; police report {x.police_report or '-'}")
    typer.echo(f"  {x.description}")
    for p in photos:
        typer.echo(f"  photo {p.id} {p.content_type} {p.size} bytes, uploaded {p.uploaded_at:%Y-%m-%d %H:%M}")
    for ev in events:
        typer.echo(f"  {ev.at:%Y-%m-%d %H:%M} {ev.actor}: {ev.from_state or '-'} -> {ev.to_state} {ev.note}".rstrip())


def _step(label: str, work: Any) -> None:
    x = run(work)
    typer.echo(f"{label}: {_line(x)}")


@app.command("ask")
def ask(claim_id: str, question: Annotated[str, typer.Option(help="What the customer is to send")],
        actor: Annotated[str, ACTOR] = "") -> None:
    """Ask the customer for more information (SMS). Example: mobipay protection ask pc_… --question
    "a photo of the IMEI" --actor operator"""
    _step("asked", lambda c: c.protection.ask_info(_staff(c, actor), claim_id, question=question))


@app.command("approve")
def approve(claim_id: str, note: Annotated[str, typer.Option(help="For the history")] = "",
            actor: Annotated[str, ACTOR] = "") -> None:
    """Approve a claim; a flagged one goes to a second reviewer (risk role, another person).
    Example: mobipay protection approve pc_… --actor operator"""
    _step("approved", lambda c: c.protection.approve(_staff(c, actor), claim_id, note=note))


@app.command("reject")
def reject(claim_id: str, reason: Annotated[str, typer.Option(help="Told to the customer by SMS")],
           actor: Annotated[str, ACTOR] = "") -> None:
    """Reject a claim with its reason. Example: mobipay protection reject pc_… --reason "…" --actor operator"""
    _step("rejected", lambda c: c.protection.reject(_staff(c, actor), claim_id, reason=reason))


@app.command("allocate")
def allocate(claim_id: str, hall: Annotated[str | None, typer.Option(help="A hall's code (default: the city's)")]
             = None, actor: Annotated[str, ACTOR] = "") -> None:
    """Reserve a phone of the same model at a business hall. Example: mobipay protection allocate pc_… --hall CS01
    --actor operator"""
    _step("allocated", lambda c: c.protection.allocate(_staff(c, actor), claim_id, hall=hall))


@app.command("ready")
def ready(claim_id: str, delivery: Annotated[bool, typer.Option(help="Sent by courier instead of picked up")]
          = False, actor: Annotated[str, ACTOR] = "") -> None:
    """The replacement is ready for pick-up (or out for delivery). Example: mobipay protection ready pc_…
    --actor operator"""
    _step("ready", lambda c: c.protection.ready(_staff(c, actor), claim_id, delivery=delivery))


@app.command("hand-over")
def hand_over(claim_id: str, old_phone_returned: Annotated[bool, typer.Option(
        help="The damaged phone was handed in (required for damage)")] = False,
              actor: Annotated[str, ACTOR] = "") -> None:
    """The customer has the replacement; a lost or stolen IMEI goes on the blocklist. Example:
    mobipay protection hand-over pc_… --old-phone-returned --actor operator"""
    _step("handed over", lambda c: c.protection.hand_over(_staff(c, actor), claim_id,
                                                          old_phone_returned=old_phone_returned))


@app.command("stock-add")
def stock_add(hall: Annotated[str, typer.Option(help="The hall's code")],
              imei: Annotated[list[str], typer.Option(help="One or more IMEIs of new phones")],
              actor: Annotated[str, ACTOR] = "") -> None:
    """Put replacement phones into a hall's stock (the model comes from the TAC). Example:
    mobipay protection stock-add --hall CS01 --imei 353281110000094 --actor operator"""

    async def work(c: Any) -> list[Any]:
        staff = _staff(c, actor)
        out = []
        with typer.progressbar(imei, label="stock") as numbers:
            for number in numbers:
                out.append(await c.protection.add_stock(staff, hall, number))
        return out

    for unit in run(work):
        typer.echo(f"{unit.hall} {unit.model} {unit.imei}")


@app.command("stock")
def stock_levels() -> None:
    """Phones available per business hall and model. Example: mobipay protection stock"""
    for (hall, model), n in sorted(run(lambda c: c.protection.stock_levels()).items()):
        typer.echo(f"{hall} {model}: {n}")


@app.command("block")
def block(imei: str, reason: Annotated[str, typer.Option(help="Why, for the audit trail")],
          actor: Annotated[str, ACTOR] = "") -> None:
    """Put an IMEI on the blocklist (risk role). Example: mobipay protection block 353281110000011
    --reason "stolen, police report CS-1" --actor operator"""
    run(lambda c: c.protection.block(_staff(c, actor), imei, reason=reason))
    typer.echo(f"{imei} is on the blocklist")


@app.command("unblock")
def unblock(imei: str, reason: Annotated[str, typer.Option(help="Why, for the audit trail")],
            actor: Annotated[str, ACTOR] = "") -> None:
    """Take an IMEI off the blocklist (risk role). Example: mobipay protection unblock 353281110000011
    --reason "found and checked" --actor operator"""
    removed = run(lambda c: c.protection.unblock(_staff(c, actor), imei, reason=reason))
    typer.echo(f"{imei} " + ("is off the blocklist" if removed else "was not on the blocklist"))


@app.command("collect")
def collect() -> None:
    """Collect the monthly fees due today, as the worker does every hour (safe to run again).
    Example: mobipay protection collect"""
    done = run(lambda c: c.protection.collect_due())
    typer.echo(f"{done.collected} fee(s) collected, {yuan(done.amount)} CNY; {done.lapsed} enrolment(s) lapsed")


@app.command("report")
def report(
    since: Annotated[str | None, typer.Option(help="First day, YYYY-MM-DD")] = None,
    until: Annotated[str | None, typer.Option(help="Last day, YYYY-MM-DD")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the CSV to this file instead of the terminal")] = None,
) -> None:
    """Enrolments, claims, approval rate and hours to replacement by city, as CSV. Example:
    mobipay protection report --since 2026-09-01 --out protection.csv"""
    from mobipay.protection.service import report_csv

    first, last = (day_of(since) if since else None), (day_of(until) if until else None)
    text = report_csv(run(lambda c: c.protection.report(first, last)))
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}")
