"""``mobipay groupbuy …``: the community's deals and figures for operators, and its worker
jobs on demand (the worker runs them by itself)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from mobipay.groupbuy.model import CATEGORIES, DealTerms
from mobipay.platform.cli_support import ACTOR, day_of, run

app = typer.Typer(help="The group-buy community (聚惠啦). Example: mobipay groupbuy deals 北京", no_args_is_help=True)


def _yuan(fen: int) -> str:
    return f"{fen / 100:,.2f}"


@app.command("open")
def open_deal(
    merchant_id: Annotated[str, typer.Argument(help="The deal merchant (mch_…), approved")],
    title: Annotated[str, typer.Option(help="What the voucher buys, e.g. '双人火锅套餐'")],
    city: Annotated[str, typer.Option(help="A city of GET /v1/groupbuy/cities, e.g. 北京")],
    price: Annotated[int, typer.Option(help="Fen, e.g. 9900 for 99.00 CNY")],
    market_price: Annotated[int, typer.Option(help="Fen: the shop's usual price")],
    stock: Annotated[int, typer.Option(help="Vouchers on sale")],
    store: Annotated[list[str], typer.Option(help="A store (sto_…) of the merchant where it is valid; repeat")],
    category: Annotated[str, typer.Option(help=f"One of {', '.join(CATEGORIES)}")] = "food",
    days: Annotated[int, typer.Option(help="Days on sale from now")] = 7,
    valid_days: Annotated[int, typer.Option(help="Days the vouchers are valid from now")] = 90,
    per_user: Annotated[int, typer.Option(help="Vouchers one buyer may buy")] = 5,
    refund_anytime: Annotated[bool, typer.Option(help="随时退")] = True,
    refund_on_expiry: Annotated[bool, typer.Option(help="过期自动退")] = True,
    group_min: Annotated[int, typer.Option(help="Buyers needed by the end of the sale (0: none)")] = 0,
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Open a deal (audited). Example: mobipay groupbuy open mch_0192… --title 双人火锅套餐 --city 北京
    --price 9900 --market-price 16800 --stock 500 --store sto_0192…"""
    now = datetime.now(UTC)
    end = now + timedelta(days=days)
    terms = DealTerms(title, city, category, price, market_price, stock, now, end, per_user, now,
                      now + timedelta(days=valid_days), refund_anytime, refund_on_expiry, group_min,
                      end if group_min else None)
    deal = run(lambda c: c.groupbuy.open_deal(merchant_id, terms, store, actor=actor))
    typer.echo(f"{deal.id}  {deal.terms.title}  {deal.terms.city}  {_yuan(deal.terms.price)} CNY  stock "
               f"{deal.terms.stock}  escrow liability:groupbuy:escrow:{deal.id}")


@app.command("deals")
def deals(
    city: Annotated[str, typer.Argument(help="A city, e.g. 北京")],
    category: Annotated[str, typer.Option(help="Only this category")] = "",
    limit: Annotated[int, typer.Option(min=1, max=50)] = 20,
) -> None:
    """Deals on sale in a city, newest first. Example: mobipay groupbuy deals 上海 --category food"""
    found, _ = run(lambda c: c.groupbuy.browse(city=city, category=category, limit=limit))
    for d in found:
        typer.echo(f"{d.id}  {d.terms.title}  {_yuan(d.terms.price)} (market {_yuan(d.terms.market_price)})  "
                   f"sold {d.sold}/{d.terms.stock}  group {d.group_state.value}  {d.merchant_name}")
    if not found:
        typer.echo(f"no deals on sale in {city}", err=True)


@app.command("spend")
def spend(day: Annotated[str, typer.Argument(help="A Beijing day, YYYY-MM-DD")]) -> None:
    """The community's spend on a day: orders, vouchers, paid, refunded, consumed, top cities.
    Example: mobipay groupbuy spend 2026-12-04"""
    s = run(lambda c: c.groupbuy.daily_spend(day_of(day)))
    typer.echo(f"{s.day}: {s.orders} orders, {s.vouchers} vouchers, paid {_yuan(s.amount)} CNY, refunded "
               f"{_yuan(s.refunded)} CNY, consumed {_yuan(s.consumed)} CNY")
    for city, fen in list(s.by_city.items())[:10]:
        typer.echo(f"  {city:<8} {_yuan(fen):>14} CNY")


@app.command("jobs")
def jobs() -> None:
    """Run the worker's group-buy jobs once: groups decided at their deadline, unused vouchers
    refunded at expiry (过期自动退), consumptions past the reversal window paid to merchants.
    Example: mobipay groupbuy jobs"""
    groups = run(lambda c: c.groupbuy.decide_groups())
    expired = run(lambda c: c.groupbuy.refund_expired())
    settled = run(lambda c: c.groupbuy.settle_consumed())
    typer.echo(f"groups refunded {groups} vouchers; expiry refunded {expired}; consumptions paid {settled}")
