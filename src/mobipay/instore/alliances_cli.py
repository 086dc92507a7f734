"""``mobipay alliances …``: the operator's alliance programmes, member stores and the CRM's
subscriber brands (role ``operations``; every change audited with ``--actor``)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Annotated

import typer

from mobipay.platform.cli_support import ACTOR, day_of, run

app = typer.Typer(help="Alliances and brand privileges. Example: mobipay alliances list", no_args_is_help=True)

RULE_HELP = ("A rule as brand:min_level:kind:value[:min_spend[:cap]], kind percent (value basis points off), "
             "fixed (fen off) or points (multiplier in tenths); e.g. gotone:2:percent:800:0:5000")


def _beijing(text: str, *, end: bool = False) -> datetime:
    """A --from/--until date as the Beijing midnight starting it (or, ``end``, ending it)."""
    from mobipay.kernel.clock import SHANGHAI

    day = day_of(text) + (timedelta(days=1) if end else timedelta())
    return datetime.combine(day, time(), SHANGHAI)


def _rules(specs: list[str]) -> list[object]:
    from mobipay.instore.alliances import Kind, Rule, parse_brand

    out: list[object] = []
    for spec in specs:
        parts = spec.split(":")
        try:
            brand, level, kind, *numbers = parts
            values = [int(x) for x in numbers]
            out.append(Rule(parse_brand(brand), int(level), Kind(kind), *values))
        except (ValueError, TypeError):
            raise typer.BadParameter(f"--rule {spec!r}: {RULE_HELP}") from None
    return out


@app.command("list")
def alliances_list() -> None:
    """Every programme: id, code, state, validity, member stores, rules. Example: mobipay alliances list"""
    from mobipay.instore.alliances import describe

    for p, members in run(lambda c: c.alliances.programmes()):
        typer.echo(f"{p.id}  {p.code:<16} {p.state:<7} {p.valid_from:%Y-%m-%d}..{p.valid_until:%Y-%m-%d}  "
                   f"{members} stores  {p.name}")
        for r in p.rules:
            spec = f"{r.brand.value}:{r.min_level}:{r.kind.value}:{r.value}:{r.min_spend}:{r.cap}"
            typer.echo(f"    {spec}  {describe(r)}")


@app.command("create")
def alliances_create(
    code: Annotated[str, typer.Argument(help="A short code, e.g. gotone_vip")],
    name: Annotated[str, typer.Option(help="The programme's name, e.g. 全球通VIP联盟")],
    valid_from: Annotated[str, typer.Option("--from", help="First day (Beijing), YYYY-MM-DD")],
    valid_until: Annotated[str, typer.Option("--until", help="Last day (Beijing), YYYY-MM-DD")],
    rule: Annotated[list[str] | None, typer.Option(help=RULE_HELP)] = None,
    description: Annotated[str, typer.Option(help="What subscribers read")] = "",
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """A programme with its rules (audited). Example: mobipay alliances create gotone_vip --name 全球通VIP联盟
    --from 2026-12-01 --until 2027-11-30 --rule gotone:1:percent:500:0:2000 --rule gotone:0:points:20"""
    start, end = _beijing(valid_from), _beijing(valid_until, end=True)
    rules = _rules(rule or [])
    p = run(lambda c: c.alliances.create_programme(code=code, name=name, valid_from=start, valid_until=end,
                                                   rules=rules, description=description, actor=actor))
    typer.echo(f"{p.id}: {p.code} ({len(p.rules)} rules)")


@app.command("rules")
def alliances_rules(
    programme: Annotated[str, typer.Argument(help="Programme id (aln_…) or code")],
    rule: Annotated[list[str], typer.Option(help=RULE_HELP)],
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Replace a programme's rules (audited). Example: mobipay alliances rules gotone_vip --rule gotone:0:points:30"""
    rules = _rules(rule)
    p = run(lambda c: c.alliances.set_rules(programme, rules, actor=actor))
    typer.echo(f"{p.id}: {len(p.rules)} rules")


@app.command("update")
def alliances_update(
    programme: Annotated[str, typer.Argument(help="Programme id (aln_…) or code")],
    state: Annotated[str | None, typer.Option(help="active or ended (ended stops it at once)")] = None,
    valid_from: Annotated[str | None, typer.Option("--from", help="First day (Beijing)")] = None,
    valid_until: Annotated[str | None, typer.Option("--until", help="Last day (Beijing)")] = None,
    name: Annotated[str | None, typer.Option(help="A new name")] = None,
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Change a programme's state, validity or name (audited).
    Example: mobipay alliances update gotone_vip --state ended"""
    start = _beijing(valid_from) if valid_from else None
    end = _beijing(valid_until, end=True) if valid_until else None
    p = run(lambda c: c.alliances.update_programme(programme, state=state, valid_from=start, valid_until=end,
                                                   name=name, actor=actor))
    typer.echo(f"{p.id}: {p.state} {p.valid_from:%Y-%m-%d}..{p.valid_until:%Y-%m-%d}")


@app.command("enrol")
def alliances_enrol(
    programme: Annotated[str, typer.Argument(help="Programme id (aln_…) or code")],
    merchant_id: Annotated[str, typer.Argument(help="Merchant id (mch_…)")],
    store: Annotated[list[str] | None, typer.Option(help="A store id (sto_…); default: all its stores")] = None,
    city: Annotated[str, typer.Option(help="Only its stores in this city, e.g. 上海")] = "",
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Enrol a merchant's stores (audited). Example: mobipay alliances enrol gotone_vip mch_0192… --city 上海"""
    added = run(lambda c: c.alliances.enrol(programme, merchant_id, store_ids=store or [], city=city, actor=actor))
    typer.echo(f"{added} stores enrolled")


@app.command("withdraw")
def alliances_withdraw(
    programme: Annotated[str, typer.Argument(help="Programme id (aln_…) or code")],
    merchant_id: Annotated[str, typer.Argument(help="Merchant id (mch_…)")],
    store: Annotated[list[str] | None, typer.Option(help="A store id; default: all its stores")] = None,
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Take a merchant's stores out of a programme (audited). Example: mobipay alliances withdraw 12580 mch_0192…"""
    gone = run(lambda c: c.alliances.withdraw(programme, merchant_id, store_ids=store or [], actor=actor))
    typer.echo(f"{gone} stores withdrawn")


@app.command("brand")
def alliances_brand(
    msisdn: Annotated[str, typer.Argument(help="The subscriber's number")],
    brand: Annotated[str, typer.Argument(help="gotone, mzone or easyown")],
    level: Annotated[int, typer.Option(help="GoTone VIP level: 0 standard, 1 silver, 2 gold, 3 platinum, "
                                            "4 diamond")] = 0,
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Record one subscriber's brand (audited). Example: mobipay alliances brand 13900139000 gotone --level 2"""
    run(lambda c: c.alliances.set_brand(msisdn, brand, level, actor=actor))
    typer.echo(f"{msisdn}: {brand} {level}")


@app.command("import-brands")
def alliances_import_brands(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The CRM's CSV: msisdn,brand,level")],
    actor: Annotated[str, ACTOR] = "",
) -> None:
    """Import the CRM's export of brands and VIP levels (audited); bad lines are listed, the
    others recorded. Example: mobipay alliances import-brands crm-2026-12-01.csv"""
    text = file.read_text(encoding="utf-8")
    report = run(lambda c: c.alliances.import_brands(text, actor=actor))
    for line, why in report.refused:
        typer.echo(f"line {line}: {why}", err=True)
    typer.echo(f"{report.imported} subscribers imported, {len(report.refused)} lines refused")
