"""``mobipay rural …``: village agents and the rural marketplace for operators: onboard an
agent, list agents by place, the console's activity by county, flagged transactions and the
risk decision, the monthly commission run, price notices, marketplace disputes and their
decision, a seller's products and shipping done for a seller (operations role, audited),
and the worker's jobs on demand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mobipay.platform.cli_support import ACTOR, run
from mobipay.rural.model import AgentKind, Location

if TYPE_CHECKING:  # the marketplace's module is imported when a command runs, not at every mobipay start
    from mobipay.rural.market import MarketOrder, Product

app = typer.Typer(help="Rural e-commerce: village agents, float, commissions, the marketplace. "
                       "Example: mobipay rural agents --county 宁乡县", no_args_is_help=True)


def _yuan(fen: int) -> str:
    return f"{fen / 100:,.2f}"


@app.command("onboard")
def onboard(
    name: Annotated[str, typer.Argument(help="The store, e.g. 东鹜村便民店")],
    licence: Annotated[str, typer.Option(help="The agent's licence number")],
    msisdn: Annotated[str, typer.Option(help="The agent's number (customers send cash-outs to it)")],
    province: Annotated[str, typer.Option()],
    city: Annotated[str, typer.Option()],
    county: Annotated[str, typer.Option()],
    township: Annotated[str, typer.Option()],
    village: Annotated[str, typer.Option()],
    pin: Annotated[str, typer.Option(help="The owner's 6-digit staff PIN", prompt=True, hide_input=True)],
    super_agent: Annotated[bool, typer.Option("--super", help="A super-agent (aggregator)")] = False,
    super_id: Annotated[str, typer.Option(help="Its super-agent (agt_…)")] = "",
    bank_account: Annotated[str, typer.Option(help="Where float sold to the bank is paid")] = "",
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Onboard an agent (audited). Example: mobipay rural onboard 东鹜村便民店 --licence LIC001
    --msisdn 13600136001 --province 湖南省 --city 长沙市 --county 宁乡县 --township 灰汤镇 --village 东鹜村"""
    a = run(lambda c: c.rural.onboard(
        name=name, licence=licence, msisdn=msisdn, location=Location(province, city, county, township, village),
        owner_pin=pin, kind=AgentKind.SUPER if super_agent else AgentKind.AGENT, super_id=super_id or None,
        bank_account=bank_account or None, actor=actor))
    typer.echo(f"{a.id}  {a.kind}  {a.name}  {a.msisdn}  float liability:rural:float:{a.id}")


@app.command("agents")
def agents(
    county: Annotated[str, typer.Option()] = "",
    township: Annotated[str, typer.Option()] = "",
    village: Annotated[str, typer.Option()] = "",
) -> None:
    """The agent locator. Example: mobipay rural agents --township 灰汤镇"""
    found = run(lambda c: c.rural.locate(county=county, township=township, village=village))
    for a in found:
        typer.echo(f"{a.id}  {a.name}  {a.msisdn}  {a.location.township} {a.location.village}  {a.state}")
    if not found:
        typer.echo("no agents there", err=True)


@app.command("activity")
def activity(days: Annotated[int, typer.Option(min=1, max=366, help="The last N days")] = 1) -> None:
    """Agents' activity by county: cash-ins, cash-outs, flagged. Example: mobipay rural activity --days 7"""
    until = datetime.now(UTC)
    rows = run(lambda c: c.rural.activity_by_county(until - timedelta(days=days), until))
    typer.echo(f"{'county':<10} {'agents':>6} {'cash-ins':>9} {'CNY':>12} {'cash-outs':>9} {'CNY':>12} {'flagged':>7}")
    for r in rows:
        typer.echo(f"{r.county:<10} {r.agents:>6} {r.cash_ins:>9} {_yuan(r.cash_in_amount):>12} {r.cash_outs:>9} "
                   f"{_yuan(r.cash_out_amount):>12} {r.flagged:>7}")


@app.command("flags")
def flags(state: Annotated[str, typer.Option(help="open | cleared | confirmed")] = "open") -> None:
    """Transactions the fraud rules flagged. Example: mobipay rural flags"""
    for f in run(lambda c: c.rural.flagged(state)):
        typer.echo(f"{f.id}  {f.rule:<22} {f.txn_id}  {f.agent_id}  {f.created_at:%Y-%m-%d %H:%M}  {f.state}")


@app.command("decide")
def decide(
    flag_id: Annotated[str, typer.Argument(help="rfl_…")],
    fraud: Annotated[bool, typer.Option("--fraud/--clear", help="Fraud voids the commission; clear pays it")],
    note: Annotated[str, typer.Option()] = "",
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """The risk role's decision on a flag (audited). Example: mobipay rural decide rfl_… --clear --actor rita"""
    f = run(lambda c: c.rural.decide_flag(flag_id, actor=actor, fraud=fraud, note=note))
    typer.echo(f"{f.id}  {f.rule}  {f.state}  by {f.decided_by}")


@app.command("pay-commissions")
def pay_commissions(month: Annotated[str, typer.Argument(help="YYYY-MM")], actor: Annotated[str, ACTOR] = "") -> None:
    """Pay a month's accrued commissions into the earners' floats (one batch; a second run pays
    only what is left). Example: mobipay rural pay-commissions 2026-11"""
    r = run(lambda c: c.rural.pay_commissions(month, actor=actor))
    typer.echo(f"{r.month}: {r.lines} lines, {r.agents} agents, {_yuan(r.amount)} CNY paid into floats")


@app.command("price")
def price(
    product: Annotated[str, typer.Argument(help="e.g. 玉米")],
    county: Annotated[str, typer.Argument(help="e.g. 宁乡县")],
    fen: Annotated[int, typer.Argument(help="Fen per unit")],
    unit: Annotated[str, typer.Option()] = "斤",
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Publish an agricultural price; its subscribers are texted. Example: mobipay rural price 玉米 宁乡县 260"""
    n = run(lambda c: c.rural_market.publish_price(product, county, fen, unit, actor=actor))
    typer.echo(f"{county} {product} {_yuan(fen)} CNY/{unit}: {n} subscribers texted")


@app.command("jobs")
def jobs() -> None:
    """Run the worker's rural jobs once: shipments tracked, escrow released after N days,
    undecided disputes refunded, last month's commissions paid. Example: mobipay rural jobs"""
    tracked = run(lambda c: c.rural_market.track())
    released = run(lambda c: c.rural_market.release_due())
    paid = run(lambda c: c.rural.pay_last_month())
    typer.echo(f"carrier events {tracked}; orders released or refunded {released}; agents paid commissions {paid}")


@app.command("disputes")
def disputes(actor: Annotated[str, ACTOR] = "") -> None:
    """Open marketplace disputes, nearest deadline first (operations role); undecided, the
    buyer is refunded at the deadline. Example: mobipay rural disputes --actor olga"""
    found = run(lambda c: c.rural_market.disputes(actor=actor))
    for d in found:
        typer.echo(f"{d.order_id}  {_yuan(d.amount):>10} CNY  {d.paid_by:<6} decide by {d.decide_by:%Y-%m-%d %H:%M} "
                   f"UTC  {d.title}  ({d.seller})  buyer: {d.reason}")
    if not found:
        typer.echo("no open disputes", err=True)


@app.command("dispute-decide")
def dispute_decide(
    order_id: Annotated[str, typer.Argument(help="The disputed order (rmo_…)")],
    refund: Annotated[bool, typer.Option("--refund/--release", help="Refund the buyer (money and stock back) or "
                                         "release to the seller (less the fee)")],
    reason: Annotated[str, typer.Option(help="Why, 2 to 200 characters (audited)")],
    key: Annotated[str, typer.Option(help="Idempotency key (default: one per order and decision, so running the "
                                     "same command again answers the first decision)")] = "",
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Decide a marketplace dispute, once (operations role, audited). Example: mobipay rural
    dispute-decide rmo_… --refund --reason "照片显示大米发霉" --actor olga"""
    decision = "refund" if refund else "release"
    o = run(lambda c: c.rural_market.decide_dispute(order_id, actor=actor, refund=refund, note=reason,
                                                    idempotency_key=key or f"cli-{decision}"))
    again = "  (already decided so: nothing changed)" if o.replayed else ""
    typer.echo(f"{o.id}  {o.state}  {_yuan(o.amount)} CNY  by {actor}{again}")


def _product_line(p: Product) -> str:
    where = "everywhere" if "*" in p.delivery else ", ".join(p.delivery)
    return (f"{p.id}  {_yuan(p.price):>9} CNY/{p.unit}  stock {p.stock:>5}  {p.title}  from {p.origin}  "
            f"to {where}  photos {len(p.photos)}")


@app.command("seller-products")
def seller_products(seller: Annotated[str, typer.Argument(help="The seller's number or id (rsl_…)")]) -> None:
    """A seller's products, sold out too, newest first. Example: mobipay rural seller-products 13500135001"""
    found = run(lambda c: _seller_products(c, seller))
    for p in found:
        typer.echo(_product_line(p))
    if not found:
        typer.echo("this seller lists no products", err=True)


async def _seller_products(c: Any, ref: str) -> list[Product]:
    market = c.rural_market
    return list(await market.seller_products((await market.seller(ref)).id))


@app.command("product-add")
def product_add(
    seller: Annotated[str, typer.Argument(help="The seller's number or id (rsl_…)")],
    title: Annotated[str, typer.Option(help="2 to 80 characters, e.g. 灰汤贡米 5kg")],
    price: Annotated[int, typer.Option(help="Fen per unit, e.g. 6800")],
    unit: Annotated[str, typer.Option(help="e.g. 袋, 斤, 盒")],
    stock: Annotated[int, typer.Option(help="How many units are for sale")],
    origin: Annotated[str, typer.Option(help="Where it comes from, e.g. 湖南宁乡灰汤镇")],
    photo: Annotated[list[str] | None, typer.Option(help="A photo's https:// or /path URL (repeat, up to 9)")] = None,
    deliver_to: Annotated[list[str] | None, typer.Option(help="A county delivered to (repeat; none: everywhere)")]
    = None,
    key: Annotated[str, typer.Option(help="Idempotency key: the same key again answers the first product")] = "",
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """List a product for a seller (operations role, audited). Example: mobipay rural product-add
    13500135001 --title "灰汤贡米 5kg" --price 6800 --unit 袋 --stock 200 --origin 湖南宁乡灰汤镇
    --deliver-to 宁乡县 --key rice-2026 --actor olga"""
    p = run(lambda c: _product_add(c, seller, title=title, price=price, unit=unit, stock=stock, origin=origin,
                                   photos=photo or [], delivery=deliver_to or ["*"], key=key or None, actor=actor))
    typer.echo(_product_line(p) + ("  (listed before with this key: nothing changed)" if p.replayed else ""))


async def _product_add(c: Any, ref: str, *, title: str, price: int, unit: str, stock: int, origin: str,
                       photos: list[str], delivery: list[str], key: str | None, actor: str) -> Product:
    market = c.rural_market
    seller = await market.seller(ref)
    p: Product = await market.list_product(seller.id, title=title, price=price, unit=unit, stock=stock, origin=origin,
                                           photos=photos, delivery=delivery, idempotency_key=key, actor=actor)
    return p


@app.command("ship")
def ship(
    order_id: Annotated[str, typer.Argument(help="The seller's paid order (rmo_…)")],
    seller: Annotated[str, typer.Option(help="The seller's number or id (rsl_…): the order must be theirs")],
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Hand a seller's order to the carrier (operations role, audited; again: the same
    shipment). Example: mobipay rural ship rmo_… --seller 13500135001 --actor olga"""
    o = run(lambda c: _ship(c, seller, order_id, actor))
    again = "  (shipped before: nothing changed)" if o.replayed else ""
    typer.echo(f"{o.id}  {o.state}  tracking {o.tracking_no}{again}")


async def _ship(c: Any, ref: str, order_id: str, actor: str) -> MarketOrder:
    market = c.rural_market
    o: MarketOrder = await market.ship((await market.seller(ref)).id, order_id, actor=actor)
    return o
