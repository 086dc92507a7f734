"""``mobipay operator …``: console operator accounts (create, list, disable, enable).
The first admin is created here; every change is audited with the actor and reason."""

from __future__ import annotations

from typing import Annotated

import typer

from mobipay.kernel.roles import ROLES
from mobipay.platform.cli_support import ACTOR, run

app = typer.Typer(help="Console operator accounts. Example: mobipay operator create alice --role admin",
                  no_args_is_help=True)

Actor = Annotated[str, ACTOR]


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Sign-in name: 2-64 letters, digits, '.', '_' or '-'")],
    role: Annotated[list[str], typer.Option("--role", help=f"A role, repeatable: {', '.join(ROLES)}")],
    password: Annotated[str | None, typer.Option(help="At least 10 characters; asked for (hidden) when omitted")]
    = None,
    reason: Annotated[str, typer.Option(help="Why (audited)")] = "operator account created on the command line",
    actor: Actor = "",
) -> None:
    """Create an operator account with one or more roles.

    Example: mobipay operator create alice --role risk --role support
    """
    secret = password if password is not None else typer.prompt("Password", hide_input=True,
                                                                confirmation_prompt=True)
    op = run(lambda c: c.operators.create(name, secret, role, actor=actor, reason=reason))
    typer.echo(f"{op.name}: {', '.join(sorted(op.roles))} (id {op.id})")


@app.command("list")
def list_() -> None:
    """Every operator account with its roles. Example: mobipay operator list"""
    for op in run(lambda c: c.operators.list()):
        typer.echo(f"{op.name:<24} {','.join(sorted(op.roles)):<40} {'disabled' if op.disabled else 'active'}")


@app.command("disable")
def disable(
    name: Annotated[str, typer.Argument(help="The operator's name")],
    reason: Annotated[str, typer.Option(help="Why (audited)")],
    actor: Actor = "",
) -> None:
    """Disable an account: it cannot sign in, its sessions end at once.
    Example: mobipay operator disable alice --reason 'left the company'"""
    op = run(lambda c: c.operators.set_disabled(name, True, actor=actor, reason=reason))
    typer.echo(f"{op.name}: disabled")


@app.command("enable")
def enable(
    name: Annotated[str, typer.Argument(help="The operator's name")],
    reason: Annotated[str, typer.Option(help="Why (audited)")],
    actor: Actor = "",
) -> None:
    """Enable a disabled account again. Example: mobipay operator enable alice --reason 'back from leave'"""
    op = run(lambda c: c.operators.set_disabled(name, False, actor=actor, reason=reason))
    typer.echo(f"{op.name}: enabled")


@app.command("unlock")
def unlock(
    name: Annotated[str, typer.Argument(help="The operator's name")],
    reason: Annotated[str, typer.Option(help="Why (audited)")],
    actor: Actor = "",
) -> None:
    """End a sign-in lock (5 wrong passwords within 15 minutes lock an account for 15
    minutes) and forget the wrong passwords counted so far.
    Example: mobipay operator unlock alice --reason 'called the help desk, identity checked'"""
    op = run(lambda c: c.operators.unlock(name, actor=actor, reason=reason))
    typer.echo(f"{op.name}: unlocked")
