"""``mobipay partners …``, ``recon topup``: top-up partners from the command line."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from mobipay.orders.cli import print_recon
from mobipay.platform.cli_support import ACTOR, choice, day_of, run

if TYPE_CHECKING:
    from mobipay.app.bootstrap import Container

partners = typer.Typer(help="Internet partners selling top-up. Example: mobipay partners list",
                       no_args_is_help=True)


@partners.command("create")
def partners_create(
    name: Annotated[str, typer.Argument(help="The partner's name")],
    commission_bps: Annotated[int, typer.Option(help="Commission in basis points of the face value")] = 100,
    reason: Annotated[str, typer.Option(help="Why (audited)")] = "new partner",
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Register an internet partner selling top-up; prints its app id and key (once).
    Example: mobipay partners create 'Example Shop' --commission-bps 150"""
    partner, key = run(lambda c: c.topup_partners.create(name, commission_bps, actor=actor, reason=reason))
    typer.echo(f"partner {partner.id} ({partner.name}), commission {partner.commission_bps} bps\n"
               f"key: {key}\n(shown once: give it to the partner over a safe channel)")


@partners.command("fund")
def partners_fund(
    partner_id: Annotated[str, typer.Argument(help="App id (ptn_…)")],
    amount: Annotated[int, typer.Option(help="Fen received from the partner")],
    reference: Annotated[str, typer.Option(help="The bank reference of their payment (idempotency key)")],
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Credit a partner's prepaid deposit with a payment received.
    Example: mobipay partners fund ptn_0192… --amount 1000000 --reference B20261125-0042"""
    balance = run(lambda c: c.topup_partners.fund(partner_id, amount, reference=reference, actor=actor))
    typer.echo(f"{partner_id}: deposit {balance / 100:.2f} CNY")


@partners.command("list")
def partners_list() -> None:
    """Top-up partners and their deposits. Example: mobipay partners list"""

    async def work(c: Container) -> list[str]:
        out = []
        for p in await c.topup_partners.all():
            balance = (await c.ledger.account(p.account_code)).balance
            out.append(f"{p.id}  {p.status:<9} {p.commission_bps:>4} bps  deposit {balance / 100:>12.2f}  {p.name}")
        return out

    for line in run(work):
        typer.echo(line)


def recon_topup(
    date: Annotated[str, typer.Option("--date", help="Business day (Shanghai), YYYY-MM-DD")],
    partner: Annotated[str, typer.Option(help="operator_billing or topup_aggregator")] = "operator_billing",
) -> None:
    """Fetch a top-up partner's daily file, settle pending top-ups from it and report
    differences. Example: mobipay recon topup --partner topup_aggregator --date 2026-11-24"""
    from mobipay.topup.model import Route

    route = choice(Route, partner, "--partner")
    day = day_of(date)
    print_recon(run(lambda c: c.topup.reconcile(route, day)))
