"""``mobipay merchants …``: onboarding review, portal accounts, notifications, settlement."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mobipay.platform.cli_support import ACTOR, choice, day_of, run

if TYPE_CHECKING:
    pass

app = typer.Typer(help="Merchants. Example: mobipay merchants queue", no_args_is_help=True)


@app.command("list")
def merchants_list(
    q: Annotated[str, typer.Option("--q", help="A piece of the name, merchant id or credit code")] = "",
    state: Annotated[str | None, typer.Option(help="submitted, more_info, approved, rejected, suspended, "
                                                    "settlement_suspended or terminated")] = None,
    mcc: Annotated[str | None, typer.Option(help="Merchant category code, e.g. 5942 (book stores)")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first")] = 20,
) -> None:
    """Merchants, newest first: id, state, MCC, name, credit code; filter by name, state or
    category. Example: mobipay merchants list --q 书店 --state approved --limit 5"""
    from mobipay.merchants.model import MerchantState

    wanted = choice(MerchantState, state, "--state") if state else None
    found = run(lambda c: c.merchants.find(state=wanted, q=q or None, mcc=mcc, limit=limit))
    for m in found:
        typer.echo(f"{m.id}  {m.state.value:<20}  MCC {m.mcc}  {m.name}  ({m.credit_code})")
    if not found:
        typer.echo("no merchant matches; try fewer filters (mobipay merchants list --help)", err=True)


@app.command("queue")
def merchants_queue() -> None:
    """Applications waiting for review, oldest first. Example: mobipay merchants queue"""
    for m in run(lambda c: c.merchants.review_queue()):
        typer.echo(f"{m.id}  {m.credit_code}  MCC {m.mcc}  {m.name}")


@app.command("review")
def merchants_review(
    merchant_id: Annotated[str, typer.Argument(help="Merchant id (mch_…)")],
    state: Annotated[str, typer.Option(help="approved, rejected, more_info, suspended, settlement_suspended, "
                                            "terminated")],
    reason: Annotated[str, typer.Option(help="Why (audited; the merchant sees it)")],
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Review or change a merchant (merchant-review role).
    Example: mobipay merchants review mch_0192… --state approved --reason 'licence checked'"""
    from mobipay.merchants.model import MerchantState

    to = choice(MerchantState, state, "--state")
    m = run(lambda c: c.merchants.review(merchant_id, to, actor=actor, reason=reason))
    typer.echo(f"{m.id}: {m.state.value}")


@app.command("operator-create")
def merchants_operator_create(
    merchant_id: Annotated[str, typer.Argument(help="Merchant id (mch_…)")],
    name: Annotated[str, typer.Argument(help="The operator's sign-in name (2-64 letters, digits, . _ -)")],
    role: Annotated[str, typer.Option(help="owner (also API keys and notify URLs) or staff")] = "staff",
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True,
                                          envvar="MOBIPAY_MERCHANT_OPERATOR_PASSWORD",
                                          help="At least 10 characters (asked when not given)")] = "",
    refund_pin: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True,
                                            envvar="MOBIPAY_MERCHANT_REFUND_PIN",
                                            help="6 digits, asked again for every refund")] = "",
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """A merchant portal account (/merchant) for a merchant's staff: password and refund
    PIN kept as argon2id hashes; audited.
    Example: mobipay merchants operator-create mch_0192… cashier1 --role staff"""
    op = run(lambda c: c.merchant_operators.create(merchant_id, name, password, refund_pin, role=role, actor=actor,
                                                   reason="operator-create"))
    typer.echo(f"{op.id}: {op.merchant_id}/{op.name} ({op.role})")


@app.command("operator-unlock")
def merchants_operator_unlock(
    merchant_id: Annotated[str, typer.Argument(help="Merchant id (mch_…)")],
    name: Annotated[str, typer.Argument(help="The portal operator's name")],
    reason: Annotated[str, typer.Option(help="Why (audited)")],
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """End a merchant portal account's sign-in lock (5 wrong passwords within 15 minutes lock
    it for 15 minutes). Example: mobipay merchants operator-unlock mch_0192… cashier1 --reason 'owner asked'"""
    op = run(lambda c: c.merchant_operators.unlock(merchant_id, name, actor=actor, reason=reason))
    typer.echo(f"{op.merchant_id}/{op.name}: unlocked")


@app.command("notifications")
def merchants_notifications(
    merchant_id: Annotated[str | None, typer.Option("--merchant", help="Only this merchant (mch_…)")] = None,
    state: Annotated[list[str] | None, typer.Option(help="refused (address not allowed), failed (out of tries) "
                                                    "or pending (being retried); repeat for several")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """Notifications that did not reach merchants, newest first, with the reason: a refused
    one (its notify URL leads to a private or loopback address) is never retried; tell the
    merchant to set a public notify URL. Example: mobipay merchants notifications --state refused"""
    wanted = tuple(state or ("refused", "failed"))
    unknown = set(wanted) - {"refused", "failed", "pending"}
    if unknown:
        raise typer.BadParameter(f"unknown state {', '.join(sorted(unknown))}: refused, failed or pending",
                                 param_hint="--state")
    rows = run(lambda c: c.merchant_notifier.undelivered(merchant_id, states=wanted, limit=limit))
    for n in rows:
        typer.echo(f"{n.created_at:%Y-%m-%d %H:%M}  {n.id}  {n.merchant_id}  {n.trade_id}  {n.state}  "
                   f"tries {n.attempts}  {n.url}  {n.last_error}")
    if not rows:
        typer.echo("no undelivered notifications")


@app.command("settle")
def merchants_settle(
    date: Annotated[str | None, typer.Option("--date", help="Settle this business day (Shanghai), YYYY-MM-DD")] = None,
    due: Annotated[str | None, typer.Option("--due", help="Settle what is due on this day: T+n per merchant")] = None,
) -> None:
    """Settlement: for each merchant with activity on a day, gross, refunds, fee and net, paid
    out to its bank account; reports in MOBIPAY_REPORT_DIR. Only a day that has ended can be
    settled (from 00:05 Beijing time the next day). Safe to run again: a settled day prints
    what was settled and paid. Run it daily with --due (each merchant's cycle from its
    category), or for one day with --date.
    Example: mobipay merchants settle --due 2026-11-25"""
    if (date is None) == (due is None):
        raise typer.BadParameter("give --date DAY or --due TODAY")
    if due is not None:
        today = day_of(due)
        results = run(lambda c: c.settlements.settle_due(today))
    else:
        day = day_of(date or "")
        results = run(lambda c: c.settlements.settle(day))
    for s in results:
        if s.state == "refused":
            typer.secho(f"{s.merchant_id}  not settled: {s.problem}; nothing was paid, fix it and run this again",
                        fg="red", err=True)
            continue
        typer.echo(f"{s.merchant_id}  gross {s.gross / 100:.2f}  refunds {s.refunds / 100:.2f}  fee {s.fee / 100:.2f}"
                   f"  net {s.net / 100:.2f}  {s.state}  {s.report}")
        if s.unsettled:
            typer.secho(f"  {s.unsettled / 100:.2f} CNY of {s.day} was paid after this day was settled and is not in "
                        "it (the day was settled before it ended): listed as not_settled in the report; the money "
                        "waits in the merchant's payable account for a payout by hand",
                        fg="yellow")
    if any(s.state == "refused" for s in results):
        raise typer.Exit(1)


@app.command("app")
def merchants_app_create(
    merchant_id: Annotated[str, typer.Argument(help="Merchant id (mch_…)")],
    sign_type: Annotated[str, typer.Option(help="RSA2 or HMAC")] = "RSA2",
    public_key: Annotated[Path | None, typer.Option(help="RSA2: the merchant's public key (PEM file)")] = None,
    protocol: Annotated[str, typer.Option(help="mobipay (JSON API, fen), alipay (/gateway.do: the shop's Alipay "
                                                "code) or wechat (/v3: its WeChat Pay v3 code); notifications as "
                                                "that platform writes them")] = "mobipay",
) -> None:
    """Give a merchant an API app id (and, for HMAC, a key shown once).
    Example: mobipay merchants app mch_0192… --sign-type RSA2 --public-key merchant_pub.pem --protocol alipay"""
    pem = public_key.read_text() if public_key else None
    app_id, key = run(lambda c: c.merchants.create_app(merchant_id, sign_type, public_key=pem, protocol=protocol))
    kind = "APIv3 key" if protocol == "wechat" else "HMAC key"
    typer.echo(f"app_id {app_id}" + (f"\n{kind} (shown once): {key}" if key else ""))
