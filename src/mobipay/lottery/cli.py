"""``mobipay lottery …``: draws."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from mobipay.kernel.money import yuan
from mobipay.platform.cli_support import run

if TYPE_CHECKING:
    from mobipay.lottery.service import DrawResult

app = typer.Typer(help="Lottery draws: the calendar, and importing held draws (the worker does it every "
                  "5 minutes). Example: mobipay lottery calendar --game ssq", no_args_is_help=True)


@app.command("draw")
def lottery_draw(
    game: Annotated[str, typer.Option(help="ssq, dlt or fc3d")],
    issue: Annotated[str, typer.Option(help="Draw number, e.g. 2026137")],
) -> None:
    """Import a held draw from the lottery centre and pay every winning ticket into its wallet,
    the prize tax withheld (safe to run again; refused before the draw time). Example:
    mobipay lottery draw --game ssq --issue 2026137"""
    result = run(lambda c: c.lottery.import_draw(game, issue))
    typer.echo(_imported(result))


def _imported(result: DrawResult) -> str:
    return (f"{result.game} {result.issue}: numbers {result.numbers}; {result.tickets} tickets settled, "
            f"{result.winners} winning, {yuan(result.paid)} CNY paid after {yuan(result.tax)} CNY tax"
            + (f", {result.claims} large prize(s) waiting for a claim" if result.claims else ""))


@app.command("import-due")
def lottery_import_due(
    days: Annotated[int, typer.Option(min=1, max=60, help="How many days back to look for held draws")] = 7,
) -> None:
    """Import every held draw of the last days not imported yet, as the worker does every 5
    minutes (a draw the centre has not published is left for later). Example:
    mobipay lottery import-due --days 3"""
    results = run(lambda c: c.lottery.import_due(days))
    for result in results:
        typer.echo(_imported(result))
    typer.echo(f"{len(results)} draw(s) imported")


@app.command("calendar")
def lottery_calendar(
    game: Annotated[str | None, typer.Option(help="ssq, dlt or fc3d (default: every game)")] = None,
    upcoming: Annotated[int, typer.Option(min=0, max=30, help="How many draws after the one on sale")] = 5,
) -> None:
    """The draw calendar in Beijing time: the last week's draws with their numbers, the one on
    sale with its sales cut-off, and the next ones. Example: mobipay lottery calendar --game ssq"""
    for d in run(lambda c: c.lottery.calendar(game, upcoming=upcoming)):
        numbers = " ".join("+".join(str(n) for n in part) for part in d.numbers) if d.numbers else ""
        typer.echo(f"{d.game:<5} {d.issue}  sales close {d.sales_close:%Y-%m-%d %H:%M}  drawn {d.draw_at:%H:%M}  "
                   f"{d.state:<16} {numbers}".rstrip())
