"""``mobipay cinema …``: cinemas, halls, films and shows for operators and cinema staff, a
show's seat map in the terminal, cancelling a show (refunds in full), and the worker's cinema
jobs on demand (the worker runs them by itself)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from mobipay.cinema.model import discount_percent
from mobipay.cinema.service import escrow_account
from mobipay.kernel.clock import SHANGHAI
from mobipay.platform.cli_support import ACTOR, day_of, run

app = typer.Typer(help="Cinema e-tickets (电子电影票). Example: mobipay cinema cinemas --city 北京",
                  no_args_is_help=True)

MARKS = {"free": "□", "taken": "■", "unavailable": "×", "aisle": " "}


def _yuan(fen: int) -> str:
    return f"{fen / 100:,.2f}"


def _beijing(at: datetime) -> str:
    return at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


@app.command("open")
def open_cinema(
    merchant_id: Annotated[str, typer.Argument(help="The cinema's merchant (mch_…, MCC 7832), approved")],
    store: Annotated[str, typer.Option(help="The merchant's store (sto_…) the cinema is; its terminals are kiosks")],
    name: Annotated[str, typer.Option(help="e.g. 万达影城 CBD店")],
    city: Annotated[str, typer.Option(help="e.g. 北京")],
    address: Annotated[str, typer.Option(help="Street address")] = "",
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Open a cinema at a merchant's store (audited). Example: mobipay cinema open mch_0192… --store sto_0192…
    --name 万达影城CBD店 --city 北京"""
    c = run(lambda x: x.cinema.open_cinema(merchant_id, store, name=name, city=city, address=address, actor=actor))
    typer.echo(f"{c.id}  {c.name}  {c.city}  escrow {escrow_account(c.id)}")


@app.command("cinemas")
def list_cinemas(city: Annotated[str, typer.Option(help="Only this city")] = "") -> None:
    """Cinemas selling e-tickets. Example: mobipay cinema cinemas --city 北京"""
    found = run(lambda x: x.cinema.find_cinemas(city))
    for c in found:
        typer.echo(f"{c.id}  {c.name}  {c.city}  {c.address}")
    if not found:
        typer.echo("no cinemas" + (f" in {city}" if city else ""), err=True)


@app.command("hall")
def add_hall(
    cinema_id: Annotated[str, typer.Argument(help="The cinema (cin_…)")],
    name: Annotated[str, typer.Option(help="e.g. 1号厅")],
    layout: Annotated[Path, typer.Option(help="A text file: one line per row from the screen back; S a seat, "
                                               "X a seat not sold, . an aisle", exists=True, dir_okay=False)],
) -> None:
    """Add a hall with its seat map. Example: mobipay cinema hall cin_0192… --name 1号厅 --layout hall1.txt"""
    text = layout.read_text(encoding="utf-8")
    hall = run(lambda x: x.cinema.add_hall(cinema_id, name, text))
    typer.echo(f"{hall.id}  {hall.name}  {hall.capacity} seats on sale")


@app.command("film")
def add_film(
    title: Annotated[str, typer.Argument(help="The film's title")],
    minutes: Annotated[int, typer.Option(help="Running time")],
) -> None:
    """Add a film. Example: mobipay cinema film 流浪地球3 --minutes 150"""
    film = run(lambda x: x.cinema.add_film(title, minutes))
    typer.echo(f"{film.id}  {film.title}  {film.minutes} min")


@app.command("show")
def add_show(
    hall_id: Annotated[str, typer.Argument(help="The hall (hal_…)")],
    film_id: Annotated[str, typer.Argument(help="The film (flm_…)")],
    at: Annotated[str, typer.Option(help="Beijing time, YYYY-MM-DD HH:MM")],
    list_price: Annotated[int, typer.Option(help="Fen: the box-office price, e.g. 8000")],
    price: Annotated[int, typer.Option(help="Fen: the mobipay price, at least 30% of the list price")],
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Put a show on sale. Example: mobipay cinema show hal_0192… flm_0192… --at "2026-12-24 19:30"
    --list-price 8000 --price 3990"""
    try:
        starts = datetime.strptime(at, "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI)
    except ValueError:
        typer.echo("--at is Beijing time as YYYY-MM-DD HH:MM, e.g. 2026-12-24 19:30", err=True)
        raise typer.Exit(2) from None
    show = run(lambda x: x.cinema.add_show(hall_id, film_id, starts, list_price=list_price, price=price, actor=actor))
    typer.echo(f"{show.id}  {show.film_title}  {_beijing(show.starts_at)}  {show.hall_name}  "
               f"{_yuan(show.price)} CNY ({discount_percent(show.list_price, show.price)}% off)")


@app.command("shows")
def list_shows(
    cinema_id: Annotated[str, typer.Argument(help="The cinema (cin_…)")],
    day: Annotated[str, typer.Option(help="Only this Beijing day, YYYY-MM-DD")] = "",
) -> None:
    """A cinema's shows on sale. Example: mobipay cinema shows cin_0192… --day 2026-12-24"""
    found = run(lambda x: x.cinema.shows(cinema_id, day_of(day) if day else None))
    for s in found:
        typer.echo(f"{s.id}  {_beijing(s.starts_at)}  {s.film_title}  {s.hall_name}  {_yuan(s.price)} (list "
                   f"{_yuan(s.list_price)})  {s.seats_left}/{s.capacity} seats left")
    if not found:
        typer.echo("no shows on sale", err=True)


@app.command("seats")
def seats(show_id: Annotated[str, typer.Argument(help="The show (shw_…)")]) -> None:
    """A show's seat map: □ free, ■ taken, × not sold. Example: mobipay cinema seats shw_0192…"""
    view = run(lambda x: x.cinema.seat_map(show_id))
    typer.echo(f"{view.show.film_title}  {_beijing(view.show.starts_at)}  {view.show.hall_name}  "
               f"{view.show.seats_left} left")
    typer.echo("        银幕 SCREEN")
    for row in view.rows:
        number = next((c.row for c in row if c.label), 0)
        typer.echo(f"{number or '':>3} " + "".join(MARKS[c.state] for c in row))


@app.command("cancel")
def cancel(
    show_id: Annotated[str, typer.Argument(help="The show (shw_…), before it starts")],
    reason: Annotated[str, typer.Option(help="Why, for the audit trail")],
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Cancel a show: every ticket refunded in full, told by SMS (audited). Example: mobipay cinema cancel
    shw_0192… --reason 放映设备故障"""
    n = run(lambda x: x.cinema.cancel_show(show_id, actor=actor or "cli", reason=reason))
    typer.echo(f"cancelled: {n} orders refunded in full")


@app.command("jobs")
def jobs() -> None:
    """Run the worker's cinema jobs once: unpaid locks that ran out freed, the cinemas' money
    (started shows, refund fees) moved to their payables for T+1. Example: mobipay cinema jobs"""
    expired = run(lambda x: x.cinema.expire_locks())
    settled = run(lambda x: x.cinema.settle_due())
    typer.echo(f"locks expired {expired}; orders settled to cinemas {settled}")
