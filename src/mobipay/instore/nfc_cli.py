"""``mobipay instore token …``: support's view and actions on NFC device tokens (a subscriber
called about a lost phone). Suspending and resuming are audited and refused without --actor."""

from __future__ import annotations

from typing import Annotated

import typer

from mobipay.platform.cli_support import ACTOR, run

app = typer.Typer(help="In-store payments. Example: mobipay instore token list 13800138000", no_args_is_help=True)
tokens = typer.Typer(help="NFC device tokens. Example: mobipay instore token suspend nft_0192… --reason 'lost phone'",
                     no_args_is_help=True)
app.add_typer(tokens, name="token")


@tokens.command("list")
def token_list(msisdn: Annotated[str, typer.Argument(help="The wallet's number, e.g. 13800138000")]) -> None:
    """A wallet's NFC tokens: id, kind, state (and by whom suspended), highest ATC, current key.
    Example: mobipay instore token list 13800138000"""
    found = run(lambda c: c.nfc_tokens.find(msisdn))
    for t in found:
        by = f" by {t.suspended_by}" if t.suspended_by else ""
        typer.echo(f"{t.id}  {t.kind:<11}  {t.state}{by}  ATC {t.atc_high}  key {t.key_seq}  since "
                   f"{t.created_at:%Y-%m-%d}")
    if not found:
        typer.echo("this wallet has no NFC token", err=True)


@tokens.command("suspend")
def token_suspend(
    token_id: Annotated[str, typer.Argument(help="The token (nft_…), from mobipay instore token list")],
    reason: Annotated[str, typer.Option(help="Why (audited), e.g. 'subscriber called: phone lost'")],
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Suspend a token at once: online taps are refused and terminals get it on their deny list;
    only support resumes it. Example: mobipay instore token suspend nft_0192… --reason 'phone lost'"""
    t = run(lambda c: c.nfc_tokens.suspend_by_support(token_id, actor=actor, reason=reason))
    typer.echo(f"{t.id}: {t.state} by {t.suspended_by}")


@tokens.command("resume")
def token_resume(
    token_id: Annotated[str, typer.Argument(help="The token (nft_…)")],
    reason: Annotated[str, typer.Option(help="Why (audited), e.g. 'phone found, identity checked'")],
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Resume a suspended token. Example: mobipay instore token resume nft_0192… --reason 'phone found'"""
    t = run(lambda c: c.nfc_tokens.resume_by_support(token_id, actor=actor, reason=reason))
    typer.echo(f"{t.id}: {t.state}")
