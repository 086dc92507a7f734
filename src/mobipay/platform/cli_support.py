"""What every context's command line shares, naming no context: the settings or a clear
exit, and running a piece of work on the container (which the root CLI builds: it
installs its builder here, so a context's ``cli.py`` never imports the root above it)."""

from __future__ import annotations

import asyncio
import datetime
import enum
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import typer

from mobipay.kernel.errors import MobipayError
from mobipay.platform.config import Settings

T = TypeVar("T")
Choice = TypeVar("Choice", bound=enum.Enum)

def _named(value: str | None) -> str:
    """Who does an audited command: given, or the login name; never nobody (an audit trail
    entry by "operator" names no one)."""
    if value is None or not value.strip():
        raise typer.BadParameter("say who does this for the audit trail: --actor NAME (the login name, $USER, is "
                                 "taken when it is set)")
    return value.strip()


#: The ``--actor`` option of every audited command (who does it; the login name by default,
#: refused when there is neither).
ACTOR = typer.Option("--actor", help="Who does this, for the audit trail (default: $USER; required without it)",
                     envvar="USER", callback=_named)

#: Builds the container from the settings; installed by ``mobipay.app.cli``.
_build: Callable[[Settings], Any] | None = None


def install(build: Callable[[Settings], Any]) -> None:
    """Name the composition root's builder (done once, by the root CLI)."""
    global _build
    _build = build


def built(settings: Settings) -> Any:
    """The container for ``settings``, from the installed builder."""
    if _build is None:
        raise RuntimeError("no container builder installed: run commands through mobipay.app.cli")
    return _build(settings)


def settings_or_exit() -> Settings:
    """The settings, or one line per wrong setting (its variable and what is wrong) and exit 2."""
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as exc:  # one line per setting: its variable and what is wrong
        for error in exc.errors():
            name = "MOBIPAY_" + "_".join(str(part) for part in error["loc"]).upper()
            message = str(error["msg"]).removeprefix("Value error, ")
            typer.secho(f"configuration error: {name}: {message}", fg="red", err=True)
        raise typer.Exit(2) from None


def run(work: Callable[[Any], Awaitable[T]]) -> T:
    """Build the container, run ``work``, close everything; map refusals to a clear exit."""
    from mobipay.platform.observability import configure_logging

    settings = settings_or_exit()
    configure_logging(settings.log_level, settings.log_json)

    async def main() -> T:
        container = built(settings)
        try:
            return await work(container)
        finally:
            await container.close()

    try:
        return asyncio.run(main())
    except MobipayError as exc:
        typer.secho(f"{exc.code}: {exc.detail}", fg="red", err=True)
        raise typer.Exit(1) from None


def choice(kind: type[Choice], value: str, option: str) -> Choice:
    """An option's value as one of ``kind``'s, or a usage error listing them."""
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(str(member.value) for member in kind)
        raise typer.BadParameter(f"{option} {value!r}: use one of {choices}") from None


def day_of(text: str) -> datetime.date:
    """A ``--date`` option's day, or a usage error with an example."""
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date; use YYYY-MM-DD, e.g. 2026-11-24") from None
