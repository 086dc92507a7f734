"""``mobipay user …``, ``balance``, ``statement``, ``recon bank``: the wallet from the command line."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from mobipay.kernel.clock import SHANGHAI, as_utc
from mobipay.orders.cli import print_recon
from mobipay.platform.cli_support import ACTOR, day_of, run

if TYPE_CHECKING:
    from mobipay.app.bootstrap import Container

users = typer.Typer(help="Subscribers. Example: mobipay user show 13800138000", no_args_is_help=True)


@users.command("create")
def user_create(
    msisdn: Annotated[str, typer.Argument(help="Mobile number, e.g. 13800138000")],
    reason: Annotated[str, typer.Option(help="Why, for the audit trail")] = "created by an operator",
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Open a wallet for a number without an SMS code (audited). Example: mobipay user create 13800138000"""
    user = run(lambda c: c.wallet.create_user(msisdn, actor=actor, reason=reason))
    typer.echo(f"{user.id}  {user.msisdn}  {user.operator}  tier {int(user.tier)}  account {user.account_code}")


@users.command("show")
def user_show(msisdn: Annotated[str, typer.Argument(help="Mobile number")]) -> None:
    """A subscriber and their balance. Example: mobipay user show 13800138000"""

    async def work(c: Container) -> None:
        user = await c.wallet.user_by_msisdn(msisdn)
        acc = await c.ledger.account(user.account_code)
        typer.echo(f"id        {user.id}\nnumber    {user.msisdn} ({user.operator}"
                   f"{', virtual operator' if user.virtual_operator else ''})\nstatus    {user.status.value}\n"
                   f"tier      {int(user.tier)}\nbalance   {acc.balance} fen (available {acc.available})\n"
                   f"since     {as_utc(user.created_at).astimezone(SHANGHAI):%Y-%m-%d %H:%M} Beijing time")

    run(work)


@users.command("close")
def user_close(
    msisdn: Annotated[str, typer.Argument(help="Mobile number")],
    reason: Annotated[str, typer.Option(help="Why (required, audited)")],
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Close a wallet for good; its balance is paid out to its bank card first (no fee).
    Example: mobipay user close 13800138000 --reason 'subscriber asked, ticket 4711'"""

    async def work(c: Container) -> None:
        user, order = await c.banking.close_user(msisdn, actor=actor, reason=reason)
        if order is None:
            typer.echo(f"{user.msisdn}: {user.status.value} (balance was zero)")
        else:
            typer.echo(f"{user.msisdn}: {user.status.value}; payout of {order.amount / 100:.2f} CNY to card "
                       f"{order.details['card_id']} is {order.state.value} (order {order.id})")

    run(work)


@users.command("tier3")
def user_tier3(
    msisdn: Annotated[str, typer.Argument(help="Mobile number")],
    reason: Annotated[str, typer.Option(help="How the identity was checked (required, audited)")],
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Raise a Tier II wallet to Tier III after a further identity check.
    Example: mobipay user tier3 13800138000 --reason 'ID checked face to face, Xidan service hall'"""
    user = run(lambda c: c.wallet.verify_tier3(msisdn, actor=actor, reason=reason))
    typer.echo(f"{user.msisdn}: tier {int(user.tier)}")


def _freeze(msisdn: str, frozen: bool, reason: str, actor: str) -> None:
    user = run(lambda c: c.wallet.set_frozen(msisdn, frozen, actor=actor, reason=reason))
    typer.echo(f"{user.msisdn} is now {user.status.value}")


@users.command("freeze")
def user_freeze(
    msisdn: Annotated[str, typer.Argument(help="Mobile number")],
    reason: Annotated[str, typer.Option(help="Why (required, audited)")],
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Stop all payments in and out of a wallet. Example: mobipay user freeze 13800138000 --reason 'lost phone'"""
    _freeze(msisdn, True, reason, actor)


@users.command("unfreeze")
def user_unfreeze(
    msisdn: Annotated[str, typer.Argument(help="Mobile number")],
    reason: Annotated[str, typer.Option(help="Why (required, audited)")],
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Allow payments again. Example: mobipay user unfreeze 13800138000 --reason 'phone found'"""
    _freeze(msisdn, False, reason, actor)


def balance(msisdn: Annotated[str, typer.Argument(help="Mobile number")]) -> None:
    """A subscriber's wallet balance. Example: mobipay balance 13800138000"""

    async def work(c: Container) -> str:
        acc = await c.ledger.account((await c.wallet.user_by_msisdn(msisdn)).account_code)
        return f"{acc.balance} fen ({acc.balance / 100:.2f} CNY), available {acc.available} fen"

    typer.echo(run(work))


def statement(
    msisdn: Annotated[str, typer.Argument(help="Mobile number")],
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Payments per page: the newest N")] = 20,
    before: Annotated[int | None, typer.Option(help="Cursor: older than this seq (printed as 'more:')")] = None,
) -> None:
    """A subscriber's wallet history, newest first, one line per payment with its state (an
    order's hold and its settlement are one line), as the subscriber sees it in the app.
    The raw postings are `mobipay ledger statement wallet:+86…`.
    Example: mobipay statement 13800138000 --limit 5"""

    async def work(c: Container) -> tuple[list[dict[str, Any]], int | None]:
        code = (await c.wallet.user_by_msisdn(msisdn)).account_code
        return await c.wallet.history(code, before=before, limit=limit, newest_first=True)

    items, nxt = run(work)
    typer.echo(f"{'seq':>6}  {'time (Beijing)':<16} {'kind':<20} {'in/out':>6} {'amount':>12} {'balance':>12}  state")
    for e in items:
        when, way = e["created_at"].astimezone(SHANGHAI), "out" if e["amount"] > 0 else "in"
        typer.echo(f"{e['account_seq']:>6}  {when:%Y-%m-%d %H:%M} {e['code']:<20} {way:>6} "
                   f"{abs(e['amount']) / 100:>12.2f} {e['balance_after'] / 100:>12.2f}  {e['state']}")
    if not items:
        typer.echo("no payments yet")
    if nxt is not None:
        typer.echo(f"more: mobipay statement {msisdn} --limit {limit} --before {nxt}")


def recon_bank(
    date: Annotated[str, typer.Option("--date", help="Business day (Shanghai), YYYY-MM-DD")],
) -> None:
    """Fetch the bank's daily file, settle pending orders from it and report differences.
    Example: mobipay recon bank --date 2026-11-24"""
    print_recon(run(lambda c: c.banking.reconcile(day_of(date))))
