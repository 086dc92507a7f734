"""Prize draws: commit (freeze a segment's members into the ordered entry list, reserve the
prizes, draw a secret seed, name a future lottery draw, publish the commitment), then draw
once that lottery draw has been imported (reveal the seed, derive the winners by the
published procedure of ``draw_model``, tell them by SMS) and publish the files anyone can
verify with ``mobipay campaigns verify-draw DIR``.

The seed stays in the database until the reveal; the commitment published before the
lottery draw binds it (its SHA-256), so neither the seed nor the list can be chosen once the
numbers are known.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from mobipay.campaigns import draw_model, errors
from mobipay.campaigns.prize_model import CLAIM_DAYS_DEFAULT, AwardState, check_claim_days, check_item_code
from mobipay.campaigns.segments import ROLE, Segments
from mobipay.campaigns.tables import awards, draw_entries, draw_prizes, draws, prize_items
from mobipay.kernel.clock import SHANGHAI, as_utc
from mobipay.kernel.errors import IdempotencyConflict
from mobipay.kernel.events import SmsRequested
from mobipay.kernel.ids import check_idempotency_key, new_id
from mobipay.kernel.msisdn import mask_msisdn
from mobipay.ledger.uow import UnitOfWork, UnitOfWorkRunner
from mobipay.lottery.service import LotteryService

MAX_PRIZES = 1_000
_CHUNK = 1_000


@dataclass(frozen=True, slots=True)
class Draw:
    id: str
    name: str
    segment_id: str
    state: str  # committed | drawn
    game: str
    issue: str
    draw_at: datetime
    seed_hash: str
    list_hash: str
    entry_count: int
    prizes: tuple[str, ...]  # item codes in prize order (prize 1 first)
    claim_days: int
    created_at: datetime
    drawn_at: datetime | None


@dataclass(frozen=True, slots=True)
class Published:
    entries: list[str]
    commitment: dict[str, Any]
    reveal: dict[str, Any] | None


def _draw(r: Any, prizes: Sequence[str]) -> Draw:
    return Draw(r.id, r.name, r.segment_id, r.state, r.game, r.issue, as_utc(r.draw_at), r.seed_hash, r.list_hash,
                int(r.entry_count), tuple(prizes), int(r.claim_days), as_utc(r.created_at),
                as_utc(r.drawn_at) if r.drawn_at else None)


class Draws:
    """Prize-draw use cases; every operator action is audited."""

    def __init__(self, uow: UnitOfWorkRunner, segments: Segments, lottery: LotteryService) -> None:
        self.uow = uow
        self.segments = segments
        self.lottery = lottery

    async def create(self, *, name: object, segment_id: str, game: str, issue: str, prizes: Sequence[object],
                     idempotency_key: str, actor: str, claim_days: object = CLAIM_DAYS_DEFAULT) -> Draw:
        """Commit a draw: entries frozen from the segment now, prizes reserved from stock, the
        seed drawn and hashed, the future lottery draw named. The same Idempotency-Key with
        the same request returns the draw committed first (its list is not frozen again)."""
        self.segments.roster.require(actor, ROLE)
        check_idempotency_key(idempotency_key)
        if not isinstance(name, str) or not 1 <= len(name.strip()) <= 64:
            raise errors.DrawInvalid("a draw's name is 1 to 64 characters", field="name")
        title = name.strip()
        if not isinstance(prizes, list | tuple) or not 1 <= len(prizes) <= MAX_PRIZES:
            raise errors.DrawInvalid(f"a draw has 1 to {MAX_PRIZES} prizes (item codes, prize 1 first)",
                                     field="prizes")
        items = [check_item_code(p) for p in prizes]
        days = check_claim_days(claim_days)
        request = {"name": title, "segment_id": segment_id, "game": game, "issue": issue, "prizes": items,
                   "claim_days": days}
        known = await self._by_key(idempotency_key)
        if known is not None:
            return await self._replay(known, request)
        draw_at, numbers = await self.lottery.drawn(game, issue)
        if numbers is not None or draw_at <= self.uow.clock.now():
            raise errors.DrawRandomnessNotFuture(
                f"{game} {issue} is drawn at {draw_at.astimezone(SHANGHAI):%Y-%m-%d %H:%M} Beijing time, already held "
                "or imported; name a lottery draw still to come",
                field="issue")
        seg = await self.segments.get(segment_id)
        draw_id = new_id("drw")
        members = await self.segments.evaluate(seg.criteria)
        if len(members) < len(items):
            raise errors.DrawTooFewEntries(f"segment {seg.name} has {len(members)} members for {len(items)} prizes",
                                           field="prizes")
        salt = secrets.token_bytes(16)  # the entry codes' key: kept, never published
        entries = [draw_model.entry_code(salt, m.msisdn) for m in members]
        seed = draw_model.new_seed()
        catalogue = await self._items(items)
        commitment = draw_model.commitment_doc(
            draw_id, title, entries, draw_model.seed_hash(seed), game.lower(), issue,
            draw_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            [{"item": i, "name": catalogue[i]} for i in items])
        needed: dict[str, int] = {}
        for i in items:
            needed[i] = needed.get(i, 0) + 1

        async def work(tx: UnitOfWork) -> None:
            again = (await tx.conn.execute(select(draws.c.id).where(
                draws.c.idempotency_key == idempotency_key))).first()
            if again is not None:
                return  # a concurrent twin committed it: the replay below answers
            # the row first: a twin with the same key waits on its unique key, then replays
            await tx.conn.execute(insert(draws).values(
                id=draw_id, name=title, segment_id=seg.id, criteria=seg.criteria.to_json(), state="committed",
                game=game.lower(), issue=issue, draw_at=draw_at, seed=seed.hex(), entry_salt=salt.hex(),
                seed_hash=commitment["seed_hash"],
                list_hash=commitment["list_hash"], entry_count=len(entries), claim_days=days,
                commitment=json.dumps(commitment, ensure_ascii=False), reveal=None, idempotency_key=idempotency_key,
                created_by=actor, created_at=tx.now, drawn_at=None))
            for item, n in sorted(needed.items()):
                done = await tx.conn.execute(update(prize_items).where(
                    prize_items.c.code == item, prize_items.c.on_hand - prize_items.c.reserved >= n).values(
                    reserved=prize_items.c.reserved + n, updated_at=tx.now))
                if done.rowcount != 1:
                    raise errors.PrizeOutOfStock(f"the inventory has fewer than {n} {item} free", field="prizes")
            rows = [{"draw_id": draw_id, "position": n, "entry": e, "msisdn": m.msisdn}
                    for n, (e, m) in enumerate(zip(entries, members, strict=True))]
            for i in range(0, len(rows), _CHUNK):
                await tx.conn.execute(insert(draw_entries), rows[i:i + _CHUNK])
            await tx.conn.execute(insert(draw_prizes), [{"draw_id": draw_id, "number": n, "item": i}
                                                        for n, i in enumerate(items, start=1)])
            await tx.audit(actor=actor, action="campaigns.draw.commit", target=draw_id, reason=title, before=None,
                           after={"segment": seg.id, "count": len(entries), "list_hash": commitment["list_hash"],
                                  "seed_hash": commitment["seed_hash"], "randomness": f"{game} {issue}",
                                  "prizes": items})

        try:
            await self.uow.run("draw_commit", work)
        except IntegrityError:  # a concurrent twin with the same key committed first (the unique key)
            if await self._by_key(idempotency_key) is None:
                raise
        found = await self._by_key(idempotency_key)
        assert found is not None
        return await self._replay(found, request)

    async def _items(self, items: Sequence[str]) -> dict[str, str]:
        async def work(tx: UnitOfWork) -> dict[str, str]:
            rows = await tx.conn.execute(select(prize_items.c.code, prize_items.c.name).where(
                prize_items.c.code.in_(sorted(set(items)))))
            return {r.code: r.name for r in rows}

        found = await self.uow.run("draw_items", work)
        missing = sorted(set(items) - set(found))
        if missing:
            raise errors.PrizeItemNotFound(f"no prize {missing[0]!r} in the inventory", field="prizes")
        return found

    async def _by_key(self, key: str) -> Draw | None:
        async def work(tx: UnitOfWork) -> Draw | None:
            row = (await tx.conn.execute(select(draws.c.id).where(draws.c.idempotency_key == key))).first()
            return None if row is None else await self._get(tx, row[0])

        return await self.uow.run("draw_by_key", work)

    async def _replay(self, known: Draw, request: dict[str, Any]) -> Draw:
        mine = {"name": known.name, "segment_id": known.segment_id, "game": known.game, "issue": known.issue,
                "prizes": list(known.prizes), "claim_days": known.claim_days}
        asked = dict(request, game=str(request["game"]).lower())
        seg = await self.segments.get(str(request["segment_id"]))
        asked["segment_id"] = seg.id
        if mine != asked:
            raise IdempotencyConflict("this Idempotency-Key committed another draw", field="idempotency_key")
        return known

    async def get(self, draw_id: str) -> Draw:
        async def work(tx: UnitOfWork) -> Draw:
            return await self._get(tx, draw_id)

        return await self.uow.run("draw_get", work)

    async def _get(self, tx: UnitOfWork, draw_id: str, *, for_update: bool = False) -> Draw:
        query = select(draws).where(draws.c.id == draw_id)
        row = (await tx.conn.execute(query.with_for_update() if for_update else query)).first()
        if row is None:
            raise errors.DrawNotFound(f"no prize draw {draw_id!r}", field="draw_id")
        prizes = await tx.conn.execute(select(draw_prizes.c.item).where(draw_prizes.c.draw_id == draw_id)
                                       .order_by(draw_prizes.c.number))
        return _draw(row, [p[0] for p in prizes])

    async def page(self, *, after: str = "", limit: int = 50) -> tuple[list[Draw], str | None]:
        async def work(tx: UnitOfWork) -> list[Draw]:
            rows = await tx.conn.execute(select(draws.c.id).where(draws.c.id > after).order_by(draws.c.id)
                                         .limit(limit + 1))
            return [await self._get(tx, r[0]) for r in rows]

        found = await self.uow.run("draw_page", work)
        return found[:limit], found[limit - 1].id if len(found) > limit else None

    async def draw(self, draw_id: str, *, actor: str) -> Draw:
        """Reveal and derive the winners once the named lottery draw is imported; each winner's
        award is written and told by SMS in the same transaction. Drawing again returns the
        same draw and writes nothing (the winners follow from published inputs anyway)."""
        self.segments.roster.require(actor, ROLE)
        return await self._reveal(draw_id, actor)

    async def _reveal(self, draw_id: str, actor: str) -> Draw:
        known = await self.get(draw_id)
        if known.state == "drawn":
            return known
        _, numbers = await self.lottery.drawn(known.game, known.issue)
        if numbers is None:
            raise errors.DrawRandomnessPending(
                f"{known.game} {known.issue} (drawn {known.draw_at.astimezone(SHANGHAI):%Y-%m-%d %H:%M} Beijing "
                f"time) is not imported yet; run "
                f"mobipay lottery draw --game {known.game} --issue {known.issue} after the draw", field="draw_id")

        async def work(tx: UnitOfWork) -> None:
            d = await self._get(tx, draw_id, for_update=True)
            if d.state == "drawn":
                return
            row = (await tx.conn.execute(select(draws.c.seed, draws.c.commitment).where(draws.c.id == draw_id))).one()
            entries = [(r.entry, r.msisdn) for r in await tx.conn.execute(
                select(draw_entries.c.entry, draw_entries.c.msisdn).where(draw_entries.c.draw_id == draw_id)
                .order_by(draw_entries.c.position))]
            reveal = draw_model.reveal_doc(draw_id, bytes.fromhex(row.seed), d.game, d.issue, numbers,
                                           [e for e, _ in entries], len(d.prizes))
            names = {p["number"]: p["name"] for p in json.loads(row.commitment)["prizes"]}
            until = tx.now + timedelta(days=d.claim_days)
            for w in reveal["winners"]:
                k, pos = w["prize_number"], w["position"]
                msisdn = entries[pos][1]
                award_id = new_id("awd")
                await tx.conn.execute(insert(awards).values(
                    id=award_id, draw_id=draw_id, prize_number=k, item=d.prizes[k - 1], position=pos, entry=w["entry"],
                    msisdn=msisdn, state=AwardState.WON.value, claim_by=until, attempts=0, updated_at=tx.now))
                await tx.emit(SmsRequested(key=f"{award_id}:won", to=msisdn, template="campaign.prize_won", params={
                    "draw": d.name, "prize": names[k], "number": k, "entry": w["entry"],
                    "until": f"{until.astimezone(SHANGHAI):%Y-%m-%d}"}))
            await tx.conn.execute(update(draws).where(draws.c.id == draw_id).values(
                state="drawn", reveal=json.dumps(reveal, ensure_ascii=False), drawn_at=tx.now))
            await tx.audit(actor=actor, action="campaigns.draw.reveal", target=draw_id, reason=d.name,
                           before={"state": "committed"},
                           after={"state": "drawn", "randomness": reveal["randomness"],
                                  "winners": [f"{w['prize_number']}:{mask_msisdn(entries[w['position']][1])}"
                                              for w in reveal["winners"]]})

        await self.uow.run("draw_reveal", work)
        return await self.get(draw_id)

    async def draw_due(self, *, actor: str = "worker") -> list[Draw]:
        """The worker's round: draw every committed draw whose lottery draw is imported."""
        async def work(tx: UnitOfWork) -> list[str]:
            rows = await tx.conn.execute(select(draws.c.id).where(draws.c.state == "committed",
                                                                  draws.c.draw_at <= tx.now))
            return [r[0] for r in rows]

        done = []
        for draw_id in await self.uow.run("draws_due", work):
            try:
                done.append(await self._reveal(draw_id, actor))
            except errors.DrawRandomnessPending:
                continue  # the lottery import has not run yet: next round
        return done

    async def published(self, draw_id: str) -> Published:
        """The files of a draw as published: the entry list and commitment from the commit,
        the reveal once drawn."""
        async def work(tx: UnitOfWork) -> Published:
            row = (await tx.conn.execute(select(draws.c.commitment, draws.c.reveal).where(
                draws.c.id == draw_id))).first()
            if row is None:
                raise errors.DrawNotFound(f"no prize draw {draw_id!r}", field="draw_id")
            entries = [r[0] for r in await tx.conn.execute(
                select(draw_entries.c.entry).where(draw_entries.c.draw_id == draw_id)
                .order_by(draw_entries.c.position))]
            return Published(entries, json.loads(row.commitment), json.loads(row.reveal) if row.reveal else None)

        return await self.uow.run("draw_published", work)

    async def publish(self, draw_id: str, directory: str | Path) -> list[Path]:
        """Write the draw's files into ``directory`` (entries.txt, commitment.json, reveal.json)."""
        p = await self.published(draw_id)
        return draw_model.write_files(directory, p.entries, p.commitment, p.reveal)

    async def entry_of(self, draw_id: str, msisdn: str) -> tuple[int, str] | None:
        """A subscriber's position and entry code in a draw (None: not an entrant)."""
        async def work(tx: UnitOfWork) -> tuple[int, str] | None:
            row = (await tx.conn.execute(select(draw_entries.c.position, draw_entries.c.entry).where(
                draw_entries.c.draw_id == draw_id, draw_entries.c.msisdn == msisdn))).first()
            return None if row is None else (int(row.position), str(row.entry))

        return await self.uow.run("draw_entry_of", work)
