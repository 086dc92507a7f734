"""``mobipay lottery …``: draws."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from mobipay.platform.cli_support import run

if TYPE_CHECKING:
    pass

app = typer.Typer(help="Lottery draws. Example: mobipay lottery draw --game ssq --issue 2026137",
                  no_args_is_help=True)


@app.command("draw")
def lottery_draw(
    game: Annotated[str, typer.Option(help="ssq, dlt or fc3d")],
    issue: Annotated[str, typer.Option(help="Draw number, e.g. 2026137")],
) -> None:
    """Import a draw from the lottery centre and pay every winning ticket into its wallet
    (safe to run again). Example: mobipay lottery draw --game ssq --issue 2026137"""
    result = run(lambda c: c.lottery.import_draw(game, issue))
    typer.echo(f"{result.game} {result.issue}: numbers {result.numbers}; {result.tickets} tickets settled, "
               f"{result.winners} winning, {result.paid / 100:.2f} CNY paid")
