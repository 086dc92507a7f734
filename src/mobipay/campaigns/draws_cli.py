"""``mobipay campaigns segment|draw|prize|delivery …`` and ``mobipay campaigns verify-draw DIR``:
segments, auditable prize draws, the prize inventory and delivery to the door (role
``operations``; every change audited with ``--actor``). ``verify-draw`` needs no database:
anyone with the published files can run it (or ``python -m mobipay.campaigns.draw_model DIR``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mobipay.platform.cli_support import ACTOR, day_of, run

segment_app = typer.Typer(help="Segments: saved queries over subscribers. Example: mobipay campaigns segment "
                          "create 'M-Zone Shaoyang' --brand mzone --city 邵阳 --active this_month",
                          no_args_is_help=True)
draw_app = typer.Typer(help="Auditable prize draws. Example: mobipay campaigns draw create --name 'M-Zone draw' "
                       "--segment 'M-Zone Shaoyang' --game ssq --issue 2026141 --prize ipad --prize phone3g",
                       no_args_is_help=True)
prize_app = typer.Typer(help="The prize inventory and prizes won. Example: mobipay campaigns prize stock ipad "
                        "--name 'iPad 2' --add 10", no_args_is_help=True)
delivery_app = typer.Typer(help="Delivery runs to the winners' doors. Example: mobipay campaigns delivery plan "
                           "--vehicle 湘E·12345 --driver Wang --day 2026-11-26 --award awd_…", no_args_is_help=True)


def verify_draw(
    directory: Annotated[Path, typer.Argument(help="The draw's published files: entries.txt, commitment.json, "
                                              "reveal.json")],
) -> None:
    """Recompute a draw's winners from its published files and check them against the
    commitment (entry list hash and count, seed hash, the named lottery draw) and the reveal;
    exit 1 on any difference. Needs no database. Example:
    mobipay campaigns verify-draw ./drw_01HZX…"""
    from mobipay.campaigns.draw_model import verify_dir

    v = verify_dir(directory)
    for line in v.checks:
        typer.echo(f"ok       {line}")
    for line in v.problems:
        typer.secho(f"PROBLEM  {line}", fg="red")
    for w in v.winners:
        typer.echo(f"prize {w.prize_number}: entry {w.position} {w.entry}")
    if not v.ok:
        typer.secho("NOT VERIFIED", fg="red")
        raise typer.Exit(1)
    typer.secho("VERIFIED", fg="green")


# ---------------------------------------------------------------------- segments


def _criteria(brand: list[str], city: list[str], tier: list[int], min_level: int, alliance: str,
              active: str) -> dict[str, Any]:
    return {"brands": brand, "cities": city, "tiers": tier, "min_level": min_level, "alliance": alliance,
            "active": active}


@segment_app.command("create")
def segment_create(
    name: Annotated[str, typer.Argument(help="A unique name, e.g. 'M-Zone Shaoyang paid this month'")],
    brand: Annotated[list[str], typer.Option(help="gotone, mzone or easyown (repeat for several)")] = [],  # noqa: B006
    city: Annotated[list[str], typer.Option(help="The number's home city, e.g. 邵阳 (repeat)")] = [],  # noqa: B006
    tier: Annotated[list[int], typer.Option(help="KYC tier 1, 2 or 3 (repeat)")] = [],  # noqa: B006
    min_level: Annotated[int, typer.Option(help="The CRM's VIP level at least (GoTone 0-4)")] = 0,
    alliance: Annotated[str, typer.Option(help="An alliance programme's code: its rules admit the subscriber")] = "",
    active: Annotated[str, typer.Option(help="Paid at least once: this_month, last_7_days or last_30_days")] = "",
    actor: str = ACTOR,
) -> None:
    """Save a segment and count it. Example: mobipay campaigns segment create 'M-Zone Shaoyang'
    --brand mzone --city 邵阳 --active this_month"""
    crit = _criteria(brand, city, tier, min_level, alliance, active)
    seg = run(lambda c: c.segments.create(name, crit, actor=actor))
    typer.echo(f"{seg.id}  {seg.name}: {seg.criteria.describe()}; {seg.last_count} subscribers")


@segment_app.command("list")
def segment_list() -> None:
    """Every segment with its last count. Example: mobipay campaigns segment list"""
    async def work(c: Any) -> list[Any]:
        out, after = [], ""
        while True:
            page, nxt = await c.segments.page(after=after, limit=200)
            out += page
            if nxt is None:
                return out
            after = nxt

    for seg in run(work):
        counted = f"{seg.last_count} at {seg.counted_at:%Y-%m-%d %H:%M}" if seg.counted_at else "not counted"
        typer.echo(f"{seg.id}  {seg.name:<32} {counted:<26} {seg.criteria.describe()}")


@segment_app.command("count")
def segment_count(segment: Annotated[str, typer.Argument(help="The segment's id or name")]) -> None:
    """Count a segment's members now. Example: mobipay campaigns segment count 'M-Zone Shaoyang'"""
    seg = run(lambda c: c.segments.count(segment))
    typer.echo(f"{seg.name}: {seg.last_count} subscribers ({seg.criteria.describe()})")


@segment_app.command("members")
def segment_members(
    segment: Annotated[str, typer.Argument(help="The segment's id or name")],
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many")] = 50,
) -> None:
    """The members' numbers (masked), in order. Example: mobipay campaigns segment members seg_… --limit 20"""
    from mobipay.kernel.msisdn import mask_msisdn

    members = run(lambda c: c.segments.members(segment))
    for m in members[:limit]:
        typer.echo(mask_msisdn(m.msisdn))
    typer.echo(f"{len(members)} subscribers")


@segment_app.command("sms")
def segment_sms(
    segment: Annotated[str, typer.Argument(help="The segment's id or name")],
    text: Annotated[str, typer.Option(help="The message, at most 300 characters")],
    key: Annotated[str, typer.Option(help="An idempotency key: the same key again sends nothing twice")],
    actor: str = ACTOR,
) -> None:
    """Send an SMS to every member through the outbox, in batches; a retry with the same key
    sends only what was not written yet. Example: mobipay campaigns segment sms seg_… --text
    '动感地带校园音乐节本周六开幕' --key festival-1"""
    sent = run(lambda c: c.segments.send_sms(segment, text, idempotency_key=key, actor=actor, progress=_progress))
    typer.echo("", err=True)
    typer.echo(f"{sent.recipients} subscribers; {sent.batches} new batch(es) written to the outbox")


@segment_app.command("red-envelope")
def segment_red_envelope(
    segment: Annotated[str, typer.Argument(help="The segment's id or name")],
    campaign: Annotated[str, typer.Option(help="The merchant's red-envelope campaign id")],
    merchant: Annotated[str, typer.Option(help="The merchant's name as the SMS shows it")],
    name: Annotated[str, typer.Option(help="The envelope's name, e.g. 满20减5")],
    key: Annotated[str, typer.Option(help="An idempotency key")],
    actor: str = ACTOR,
) -> None:
    """Target a merchant's red envelopes at a segment: each member is invited by SMS. Example:
    mobipay campaigns segment red-envelope seg_… --campaign cmp_… --merchant 校园超市 --name 满20减5 --key e1"""
    sent = run(lambda c: c.segments.invite_to_red_envelopes(segment, campaign_id=campaign, merchant=merchant,
                                                            name=name, idempotency_key=key, actor=actor,
                                                            progress=_progress))
    typer.echo("", err=True)
    typer.echo(f"{sent.recipients} subscribers invited; {sent.batches} new batch(es)")


def _progress(done: int, total: int) -> None:
    typer.echo(f"\r{done:,} / {total:,} written to the outbox", nl=False, err=True)


# ---------------------------------------------------------------------- draws


def _draw_line(d: Any) -> str:
    return (f"{d.id}  {d.name}  {d.state}  {d.entry_count} entries  list {d.list_hash[:16]}…  seed hash "
            f"{d.seed_hash[:16]}…  randomness {d.game} {d.issue} ({d.draw_at:%Y-%m-%d %H:%M})  prizes "
            f"{', '.join(d.prizes)}")


@draw_app.command("create")
def draw_create(
    name: Annotated[str, typer.Option(help="The draw's name")],
    segment: Annotated[str, typer.Option(help="The segment whose members enter (id or name)")],
    game: Annotated[str, typer.Option(help="The lottery game whose future draw gives the randomness: ssq, dlt, fc3d")],
    issue: Annotated[str, typer.Option(help="That game's future issue, e.g. 2026141")],
    prize: Annotated[list[str], typer.Option(help="A prize's item code, prize 1 first (repeat)")],
    key: Annotated[str, typer.Option(help="An idempotency key: the same key returns the same draw")],
    claim_days: Annotated[int, typer.Option(help="Days a winner has to be delivered before the prize lapses")] = 30,
    actor: str = ACTOR,
) -> None:
    """Commit a draw: freeze the segment's members into the ordered entry list, reserve the
    prizes, commit to a secret seed and name a future lottery draw. Publish the commitment
    before that draw (draw publish). Example: mobipay campaigns draw create --name 'M-Zone draw'
    --segment 'M-Zone Shaoyang' --game ssq --issue 2026141 --prize ipad --prize phone3g --key mz-2026"""
    d = run(lambda c: c.draws.create(name=name, segment_id=segment, game=game, issue=issue, prizes=prize,
                                     idempotency_key=key, actor=actor, claim_days=claim_days))
    typer.echo(_draw_line(d))


@draw_app.command("list")
def draw_list() -> None:
    """Every draw. Example: mobipay campaigns draw list"""
    draws, _ = run(lambda c: c.draws.page(limit=500))
    for d in draws:
        typer.echo(_draw_line(d))


@draw_app.command("run")
def draw_run(draw: Annotated[str, typer.Argument(help="The draw's id")], actor: str = ACTOR) -> None:
    """Reveal the seed and derive the winners, once the named lottery draw is imported; winners
    are told by SMS (again: nothing new). Example: mobipay campaigns draw run drw_…"""
    from mobipay.kernel.msisdn import mask_msisdn

    async def work(c: Any) -> tuple[Any, list[Any]]:
        d = await c.draws.draw(draw, actor=actor)
        return d, await c.prizes.awards(draw_id=d.id, limit=1000)

    d, won = run(work)
    typer.echo(_draw_line(d))
    for a in sorted(won, key=lambda a: a.prize_number):
        typer.echo(f"prize {a.prize_number} {a.item:<10} entry {a.entry}  {mask_msisdn(a.msisdn)}  {a.state.value}")


@draw_app.command("publish")
def draw_publish(
    draw: Annotated[str, typer.Argument(help="The draw's id")],
    directory: Annotated[Path, typer.Argument(help="Where to write entries.txt, commitment.json (and reveal.json)")],
) -> None:
    """Write a draw's published files (the reveal once drawn), for anyone to verify with
    mobipay campaigns verify-draw. Example: mobipay campaigns draw publish drw_… ./public/drw"""
    for path in run(lambda c: c.draws.publish(draw, directory)):
        typer.echo(str(path))


# ---------------------------------------------------------------------- prizes


@prize_app.command("stock")
def prize_stock(
    code: Annotated[str, typer.Argument(help="The item's code, e.g. ipad, phone3g, bicycle")],
    add: Annotated[int, typer.Option(help="Units received")],
    name: Annotated[str, typer.Option(help="The item's name (needed the first time)")] = "",
    actor: str = ACTOR,
) -> None:
    """Add units of a prize to the inventory. Example: mobipay campaigns prize stock ipad --name 'iPad 2' --add 10"""
    item = run(lambda c: c.prizes.stock(code, name, add, actor=actor))
    typer.echo(f"{item.code}  {item.name}: {item.on_hand} on hand, {item.reserved} promised, {item.free} free")


@prize_app.command("list")
def prize_list() -> None:
    """The inventory. Example: mobipay campaigns prize list"""
    for item in run(lambda c: c.prizes.inventory()):
        typer.echo(f"{item.code:<12} {item.name:<24} {item.on_hand:>6} on hand {item.reserved:>6} promised "
                   f"{item.free:>6} free")


@prize_app.command("won")
def prize_won(
    draw: Annotated[str | None, typer.Option(help="Only this draw's")] = None,
    state: Annotated[str | None, typer.Option(help="won, scheduled, out_for_delivery, delivered, failed, "
                                              "unclaimed")] = None,
) -> None:
    """Prizes won with their delivery state. Example: mobipay campaigns prize won --state failed"""
    from mobipay.campaigns.prize_model import AwardState
    from mobipay.kernel.msisdn import mask_msisdn
    from mobipay.platform.cli_support import choice

    wanted = choice(AwardState, state, "--state") if state else None
    for a in run(lambda c: c.prizes.awards(draw_id=draw, state=wanted, limit=1000)):
        typer.echo(f"{a.id}  {a.draw_id} prize {a.prize_number} {a.item:<10} {mask_msisdn(a.msisdn)} "
                   f"{a.state.value:<17} by {a.claim_by:%Y-%m-%d}  {a.address}")


@prize_app.command("address")
def prize_address(
    award: Annotated[str, typer.Argument(help="The prize won (awd_…)")],
    address: Annotated[str, typer.Option(help="The delivery address the winner gave")],
    receiver: Annotated[str, typer.Option(help="Who receives it")],
    actor: str = ACTOR,
) -> None:
    """Record where a prize goes. Example: mobipay campaigns prize address awd_… --address '邵阳学院 3栋 402'
    --receiver 张三"""
    a = run(lambda c: c.prizes.set_address(award, address=address, receiver=receiver, actor=actor))
    typer.echo(f"{a.id}: {a.address} ({a.receiver})")


@prize_app.command("expire")
def prize_expire(actor: str = ACTOR) -> None:
    """Prizes not delivered by their deadline become unclaimed and go back to stock (the worker
    does it every 10 minutes). Example: mobipay campaigns prize expire"""
    typer.echo(f"{run(lambda c: c.prizes.expire_unclaimed(actor=actor))} prize(s) unclaimed")


# ---------------------------------------------------------------------- delivery


def _run_lines(r: Any) -> str:
    head = f"{r.id}  {r.vehicle}  {r.driver}  {r.day}  {r.state.value}"
    stops = [f"  {s.seq:>3}. {s.id}  {s.award_id}  {s.state.value}"
             + (f"  {s.reason}" if s.reason else "") + (f"  {s.proof_kind.value} {s.proof_sha256[:12]}…"
                                                        if s.proof_kind and s.proof_sha256 else "")
             for s in r.stops]
    return "\n".join([head, *stops])


@delivery_app.command("plan")
def delivery_plan(
    vehicle: Annotated[str, typer.Option(help="The vehicle, e.g. its plate")],
    driver: Annotated[str, typer.Option(help="Who drives")],
    day: Annotated[str, typer.Option(help="YYYY-MM-DD")],
    award: Annotated[list[str], typer.Option(help="A prize won to deliver, in stop order (repeat)")],
    actor: str = ACTOR,
) -> None:
    """Plan a run: one stop per prize (won, or failed before: a re-delivery), each with an
    address. Example: mobipay campaigns delivery plan --vehicle 湘E·12345 --driver Wang --day 2026-11-26
    --award awd_1 --award awd_2"""
    r = run(lambda c: c.prizes.plan_run(vehicle=vehicle, driver=driver, day=day_of(day), award_ids=award,
                                        actor=actor))
    typer.echo(_run_lines(r))


@delivery_app.command("depart")
def delivery_depart(run_id: Annotated[str, typer.Argument(help="The run (run_…)")], actor: str = ACTOR) -> None:
    """The vehicle leaves; each winner is told by SMS. Example: mobipay campaigns delivery depart run_…"""
    typer.echo(_run_lines(run(lambda c: c.prizes.depart(run_id, actor=actor))))


@delivery_app.command("done")
def delivery_done(
    stop: Annotated[str, typer.Argument(help="The stop (stp_…)")],
    receiver: Annotated[str, typer.Option(help="Who received it")],
    signature: Annotated[Path | None, typer.Option(help="The receiver's signature image")] = None,
    photo: Annotated[Path | None, typer.Option(help="A photo of the hand-over")] = None,
    sha256: Annotated[str | None, typer.Option(help="Only the proof's SHA-256 (the file stays on the device); "
                                               "with --kind")] = None,
    kind: Annotated[str, typer.Option(help="signature or photo, with --sha256")] = "signature",
    actor: str = ACTOR,
) -> None:
    """A stop delivered, with the receiver's signature or photo. Example: mobipay campaigns delivery
    done stp_… --receiver 张三 --signature sign.png"""
    file = signature or photo
    if (file is None) == (sha256 is None) or (signature and photo):
        raise typer.BadParameter("give one proof: --signature FILE, --photo FILE, or --sha256 HEX with --kind")
    data = file.read_bytes() if file else None
    proof_kind = "signature" if signature else "photo" if photo else kind
    s = run(lambda c: c.prizes.delivered(stop, receiver=receiver, proof_kind=proof_kind, proof=data,
                                         proof_sha256=sha256, actor=actor))
    typer.echo(f"{s.id} delivered to {s.receiver}; {s.proof_kind.value if s.proof_kind else ''} "
               f"{s.proof_sha256}")


@delivery_app.command("fail")
def delivery_fail(
    stop: Annotated[str, typer.Argument(help="The stop (stp_…)")],
    reason: Annotated[str, typer.Option(help="Why, e.g. 'nobody home'")],
    actor: str = ACTOR,
) -> None:
    """A stop not delivered; the prize waits for another run. Example: mobipay campaigns delivery fail
    stp_… --reason 'nobody home'"""
    s = run(lambda c: c.prizes.failed(stop, reason=reason, actor=actor))
    typer.echo(f"{s.id} failed: {s.reason}")


@delivery_app.command("close")
def delivery_close(run_id: Annotated[str, typer.Argument(help="The run (run_…)")], actor: str = ACTOR) -> None:
    """The vehicle is back: stops not done count as failed. Example: mobipay campaigns delivery close run_…"""
    typer.echo(_run_lines(run(lambda c: c.prizes.close_run(run_id, actor=actor))))


@delivery_app.command("show")
def delivery_show(run_id: Annotated[str, typer.Argument(help="The run (run_…)")]) -> None:
    """A run with its stops. Example: mobipay campaigns delivery show run_…"""
    typer.echo(_run_lines(run(lambda c: c.prizes.run(run_id))))


def mount(app: typer.Typer) -> None:
    """Put these commands under ``mobipay campaigns`` (the bulk commands mount beside them)."""
    app.add_typer(segment_app, name="segment")
    app.add_typer(draw_app, name="draw")
    app.add_typer(prize_app, name="prize")
    app.add_typer(delivery_app, name="delivery")
    app.command("verify-draw")(verify_draw)
