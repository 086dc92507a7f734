"""Prizes: the inventory (iPads, 3G phones, bicycles), the prizes won, and their delivery to
the door: runs with a vehicle and stops, each stop delivered with the receiver's signature
or photo (the file kept under its SHA-256, or only the hash when the file stays on the
driver's device) or failed with its reason, re-delivery on a later run, and prizes nobody
claimed by their deadline going back to stock (the worker's ``campaigns.unclaimed``).

Stock is counted twice so a promise is never more than what is on the shelf: ``reserved``
grows when a draw commits its prizes (a CHECK keeps it within ``on_hand``), a delivery
takes one off both, an unclaimed prize gives its reservation back.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, update

from mobipay.campaigns import errors
from mobipay.campaigns.prize_model import (
    EXPIRABLE,
    SCHEDULABLE,
    AwardState,
    ProofKind,
    RunState,
    StopState,
    check_item_code,
    check_proof,
    check_text,
    move,
)
from mobipay.campaigns.tables import awards, delivery_runs, delivery_stops, prize_items
from mobipay.kernel.clock import SHANGHAI, as_utc
from mobipay.kernel.events import SmsRequested
from mobipay.kernel.ids import new_id
from mobipay.kernel.roles import Roster
from mobipay.ledger.uow import UnitOfWork, UnitOfWorkRunner

ROLE = "operations"
MAX_PROOF_BYTES = 5_000_000
MAX_STOPS = 200


@dataclass(frozen=True, slots=True)
class Item:
    code: str
    name: str
    on_hand: int
    reserved: int

    @property
    def free(self) -> int:
        return self.on_hand - self.reserved


@dataclass(frozen=True, slots=True)
class Award:
    id: str
    draw_id: str
    prize_number: int
    item: str
    entry: str
    msisdn: str
    state: AwardState
    address: str
    receiver: str
    claim_by: datetime
    attempts: int


@dataclass(frozen=True, slots=True)
class Stop:
    id: str
    run_id: str
    seq: int
    award_id: str
    state: StopState
    reason: str
    proof_kind: ProofKind | None
    proof_sha256: str | None
    proof_file: str | None
    receiver: str
    done_at: datetime | None


@dataclass(frozen=True, slots=True)
class Run:
    id: str
    vehicle: str
    driver: str
    day: date
    state: RunState
    stops: tuple[Stop, ...]


def _item(r: Any) -> Item:
    return Item(r.code, r.name, int(r.on_hand), int(r.reserved))


def _award(r: Any) -> Award:
    return Award(r.id, r.draw_id, int(r.prize_number), r.item, r.entry, r.msisdn, AwardState(r.state), r.address,
                 r.receiver, as_utc(r.claim_by), int(r.attempts))


def _stop(r: Any) -> Stop:
    return Stop(r.id, r.run_id, int(r.seq), r.award_id, StopState(r.state), r.reason,
                ProofKind(r.proof_kind) if r.proof_kind else None, r.proof_sha256, r.proof_file, r.receiver,
                as_utc(r.done_at) if r.done_at else None)


class Prizes:
    """Inventory, awards and delivery runs; each operator or driver action is audited."""

    def __init__(self, uow: UnitOfWorkRunner, proof_dir: Path, roster: Roster) -> None:
        self.uow = uow
        self.roster = roster  # operators (and drivers) need the operations role
        self.proof_dir = proof_dir  # signatures and photos, each named by its SHA-256

    # ------------------------------------------------------------------ inventory

    async def stock(self, code: object, name: object, add: object, *, actor: str) -> Item:
        """Add ``add`` units of a prize to the inventory (a new code needs its name)."""
        self.roster.require(actor, ROLE)
        item = check_item_code(code)
        if type(add) is not int or not 1 <= add <= 100_000:
            raise errors.PrizeItemInvalid("add 1 to 100,000 units", field="add")

        async def work(tx: UnitOfWork) -> Item:
            row = (await tx.conn.execute(select(prize_items).where(prize_items.c.code == item)
                                         .with_for_update())).first()
            if row is None:
                title = check_text(name, "name", most=64) if name else ""
                if not title:
                    raise errors.PrizeItemInvalid(f"{item} is new: give its name, e.g. 'iPad 2'", field="name")
                await tx.conn.execute(insert(prize_items).values(code=item, name=title, on_hand=add, reserved=0,
                                                                 updated_at=tx.now))
            else:
                await tx.conn.execute(update(prize_items).where(prize_items.c.code == item).values(
                    on_hand=prize_items.c.on_hand + add, updated_at=tx.now))
            after = _item((await tx.conn.execute(select(prize_items).where(prize_items.c.code == item))).one())
            await tx.audit(actor=actor, action="campaigns.prize.stock", target=item, reason=f"+{add}",
                           before=None if row is None else {"on_hand": int(row.on_hand)},
                           after={"on_hand": after.on_hand})
            return after

        return await self.uow.run("prize_stock", work)

    async def inventory(self) -> list[Item]:
        async def work(tx: UnitOfWork) -> list[Item]:
            return [_item(r) for r in await tx.conn.execute(select(prize_items).order_by(prize_items.c.code))]

        return await self.uow.run("prize_inventory", work)

    # ------------------------------------------------------------------ awards

    async def awards(self, *, draw_id: str | None = None, state: AwardState | None = None, msisdn: str | None = None,
                     after: str = "", limit: int = 100) -> list[Award]:
        async def work(tx: UnitOfWork) -> list[Award]:
            query = select(awards).where(awards.c.id > after)
            if msisdn:
                query = query.where(awards.c.msisdn == msisdn)
            if draw_id:
                query = query.where(awards.c.draw_id == draw_id)
            if state is not None:
                query = query.where(awards.c.state == state.value)
            return [_award(r) for r in await tx.conn.execute(query.order_by(awards.c.id).limit(limit))]

        return await self.uow.run("awards", work)

    async def award(self, award_id: str) -> Award:
        async def work(tx: UnitOfWork) -> Award:
            return await _award_row(tx, award_id)

        return await self.uow.run("award", work)

    async def set_address(self, award_id: str, *, address: object, receiver: object, actor: str) -> Award:
        """The winner's delivery address and name (as they gave it on the phone or by SMS)."""
        self.roster.require(actor, ROLE)
        where, who = check_text(address, "address", most=200, least=4), check_text(receiver, "receiver", most=64)

        async def work(tx: UnitOfWork) -> Award:
            a = await _award_row(tx, award_id, for_update=True)
            if a.state not in SCHEDULABLE:
                raise errors.AwardState(f"a prize {a.state.value.replace('_', ' ')} keeps its address", field="state")
            await tx.conn.execute(update(awards).where(awards.c.id == a.id).values(
                address=where, receiver=who, updated_at=tx.now))
            await tx.audit(actor=actor, action="campaigns.award.address", target=a.id, reason="winner's address",
                           before={"address": a.address}, after={"address": where, "receiver": who})
            return await _award_row(tx, a.id)

        return await self.uow.run("award_address", work)

    async def expire_unclaimed(self, *, actor: str = "worker") -> int:
        """Prizes still waiting (won, or failed and not rescheduled) at their deadline become
        unclaimed, their reservation goes back to stock, and the winner is told once."""
        async def work(tx: UnitOfWork) -> int:
            rows = await tx.conn.execute(select(awards).where(
                awards.c.state.in_([s.value for s in EXPIRABLE]), awards.c.claim_by <= tx.now).with_for_update())
            n = 0
            for a in [_award(r) for r in rows]:
                move(a.state, AwardState.UNCLAIMED)
                done = await tx.conn.execute(update(awards).where(awards.c.id == a.id, awards.c.state == a.state.value)
                                             .values(state=AwardState.UNCLAIMED.value, updated_at=tx.now))
                if done.rowcount != 1:
                    continue
                await tx.conn.execute(update(prize_items).where(prize_items.c.code == a.item).values(
                    reserved=prize_items.c.reserved - 1, updated_at=tx.now))
                await tx.emit(SmsRequested(key=f"{a.id}:unclaimed", to=a.msisdn, template="campaign.prize_unclaimed",
                                           params={"prize": await _item_name(tx, a.item), "until": _day(a.claim_by)}))
                await tx.audit(actor=actor, action="campaigns.award.unclaimed", target=a.id, reason="deadline passed",
                               before={"state": a.state.value}, after={"state": AwardState.UNCLAIMED.value})
                n += 1
            return n

        return await self.uow.run("awards_unclaimed", work)

    # ------------------------------------------------------------------ delivery runs

    async def plan_run(self, *, vehicle: object, driver: object, day: date, award_ids: Sequence[str],
                       actor: str) -> Run:
        """A run of ``vehicle`` on ``day`` with one stop per prize, in the order given; each
        prize must be waiting (won, or failed before: a re-delivery) and have an address."""
        self.roster.require(actor, ROLE)
        car, who = check_text(vehicle, "vehicle", most=32), check_text(driver, "driver", most=64)
        if not 1 <= len(award_ids) <= MAX_STOPS or len(set(award_ids)) != len(award_ids):
            raise errors.DeliveryInvalid(f"a run has 1 to {MAX_STOPS} different prizes", field="award_ids")

        async def work(tx: UnitOfWork) -> str:
            run_id = new_id("run")
            await tx.conn.execute(insert(delivery_runs).values(id=run_id, vehicle=car, driver=who, day=day,
                                                               state=RunState.PLANNED.value, created_at=tx.now,
                                                               updated_at=tx.now))
            for seq, award_id in enumerate(award_ids, start=1):
                a = await _award_row(tx, award_id, for_update=True)
                move(a.state, AwardState.SCHEDULED)
                if a.claim_by <= tx.now:
                    raise errors.AwardState(f"prize {a.id} passed its deadline ({_day(a.claim_by)})", field="award_ids")
                if not a.address:
                    raise errors.DeliveryInvalid(f"prize {a.id} has no delivery address yet", field="award_ids")
                await tx.conn.execute(update(awards).where(awards.c.id == a.id).values(
                    state=AwardState.SCHEDULED.value, updated_at=tx.now))
                await tx.conn.execute(insert(delivery_stops).values(
                    id=new_id("stp"), run_id=run_id, seq=seq, award_id=a.id, state=StopState.PENDING.value))
            await tx.audit(actor=actor, action="campaigns.delivery.plan", target=run_id, reason=f"{car} {day}",
                           before=None, after={"vehicle": car, "driver": who, "stops": list(award_ids)})
            return run_id

        return await self.run(await self.uow.run("delivery_plan", work))

    async def run(self, run_id: str) -> Run:
        async def work(tx: UnitOfWork) -> Run:
            return await _run_row(tx, run_id)

        return await self.uow.run("delivery_run", work)

    async def runs(self, *, after: str = "", limit: int = 50) -> list[Run]:
        async def work(tx: UnitOfWork) -> list[Run]:
            ids = [r[0] for r in await tx.conn.execute(select(delivery_runs.c.id).where(delivery_runs.c.id > after)
                                                       .order_by(delivery_runs.c.id).limit(limit))]
            return [await _run_row(tx, i) for i in ids]

        return await self.uow.run("delivery_runs", work)

    async def depart(self, run_id: str, *, actor: str) -> Run:
        """The vehicle leaves: every prize on it is out for delivery, each winner told by SMS."""
        self.roster.require(actor, ROLE)
        async def work(tx: UnitOfWork) -> None:
            r = await _run_row(tx, run_id, for_update=True)
            if r.state is not RunState.PLANNED:
                raise errors.DeliveryRunState(f"run {run_id} is {r.state.value}, not planned", field="run_id")
            await tx.conn.execute(update(delivery_runs).where(delivery_runs.c.id == run_id).values(
                state=RunState.OUT.value, updated_at=tx.now))
            for s in r.stops:
                a = await _award_row(tx, s.award_id, for_update=True)
                move(a.state, AwardState.OUT)
                await tx.conn.execute(update(awards).where(awards.c.id == a.id).values(
                    state=AwardState.OUT.value, updated_at=tx.now))
                await tx.emit(SmsRequested(key=f"{s.id}:out", to=a.msisdn, template="campaign.delivery_out",
                                           params={"prize": await _item_name(tx, a.item), "vehicle": r.vehicle}))
            await tx.audit(actor=actor, action="campaigns.delivery.depart", target=run_id, reason=r.vehicle,
                           before={"state": "planned"}, after={"state": "out"})

        await self.uow.run("delivery_depart", work)
        return await self.run(run_id)

    async def delivered(self, stop_id: str, *, receiver: object, proof_kind: object, proof: bytes | None = None,
                        proof_sha256: str | None = None, actor: str) -> Stop:
        """A stop delivered: the receiver's name and their signature or photo, either the file
        (kept under its SHA-256) or its SHA-256 alone. The prize leaves the inventory."""
        self.roster.require(actor, ROLE)
        who = check_text(receiver, "receiver", most=64)
        if proof is not None:
            if not proof or len(proof) > MAX_PROOF_BYTES:
                raise errors.DeliveryProofRequired(f"the proof file is 1 byte to {MAX_PROOF_BYTES // 1_000_000} MB",
                                                   field="proof")
            digest = hashlib.sha256(proof).hexdigest()
            if proof_sha256 is not None and proof_sha256 != digest:
                raise errors.DeliveryProofRequired(f"the proof file's SHA-256 is {digest}, not {proof_sha256}",
                                                   field="proof_sha256")
            proof_sha256 = digest
        kind, sha = check_proof(proof_kind, proof_sha256)
        path = None
        if proof is not None:  # kept before the row names it; a file named by its hash is written once
            target = self.proof_dir / f"{sha}.{'png' if kind is ProofKind.SIGNATURE else 'jpg'}"
            await asyncio.to_thread(_keep, target, proof)
            path = str(target)

        async def work(tx: UnitOfWork) -> Stop:
            s, a = await self._open_stop(tx, stop_id)
            move(a.state, AwardState.DELIVERED)
            await tx.conn.execute(update(delivery_stops).where(delivery_stops.c.id == s.id).values(
                state=StopState.DELIVERED.value, proof_kind=kind.value, proof_sha256=sha, proof_file=path,
                receiver=who, done_at=tx.now))
            await tx.conn.execute(update(awards).where(awards.c.id == a.id).values(
                state=AwardState.DELIVERED.value, attempts=a.attempts + 1, updated_at=tx.now))
            await tx.conn.execute(update(prize_items).where(prize_items.c.code == a.item).values(
                on_hand=prize_items.c.on_hand - 1, reserved=prize_items.c.reserved - 1, updated_at=tx.now))
            await tx.emit(SmsRequested(key=f"{s.id}:delivered", to=a.msisdn, template="campaign.delivered",
                                       params={"prize": await _item_name(tx, a.item), "receiver": who}))
            await tx.audit(actor=actor, action="campaigns.delivery.delivered", target=a.id, reason=s.id,
                           before={"state": a.state.value},
                           after={"state": "delivered", "proof": kind.value, "sha256": sha, "receiver": who})
            return await _stop_row(tx, s.id)

        return await self.uow.run("delivery_delivered", work)

    async def failed(self, stop_id: str, *, reason: object, actor: str) -> Stop:
        """A stop not delivered (nobody home, wrong address…): the prize waits for another run."""
        self.roster.require(actor, ROLE)
        why = check_text(reason, "reason", most=200)

        async def work(tx: UnitOfWork) -> Stop:
            s, a = await self._open_stop(tx, stop_id)
            await self._fail(tx, s, a, why)
            await tx.audit(actor=actor, action="campaigns.delivery.failed", target=a.id, reason=why,
                           before={"state": a.state.value}, after={"state": "failed"})
            return await _stop_row(tx, s.id)

        return await self.uow.run("delivery_failed", work)

    async def close_run(self, run_id: str, *, actor: str) -> Run:
        """The vehicle is back: stops still pending count as failed ("not reached")."""
        self.roster.require(actor, ROLE)
        async def work(tx: UnitOfWork) -> None:
            r = await _run_row(tx, run_id, for_update=True)
            if r.state is not RunState.OUT:
                raise errors.DeliveryRunState(f"run {run_id} is {r.state.value}, not out", field="run_id")
            for s in r.stops:
                if s.state is StopState.PENDING:
                    await self._fail(tx, s, await _award_row(tx, s.award_id, for_update=True), "not reached")
            await tx.conn.execute(update(delivery_runs).where(delivery_runs.c.id == run_id).values(
                state=RunState.CLOSED.value, updated_at=tx.now))
            await tx.audit(actor=actor, action="campaigns.delivery.close", target=run_id, reason=r.vehicle,
                           before={"state": "out"}, after={"state": "closed"})

        await self.uow.run("delivery_close", work)
        return await self.run(run_id)

    async def _open_stop(self, tx: UnitOfWork, stop_id: str) -> tuple[Stop, Award]:
        row = (await tx.conn.execute(select(delivery_stops).where(delivery_stops.c.id == stop_id)
                                     .with_for_update())).first()
        if row is None:
            raise errors.DeliveryStopNotFound(f"no stop {stop_id!r}", field="stop_id")
        s = _stop(row)
        r = (await tx.conn.execute(select(delivery_runs.c.state).where(delivery_runs.c.id == s.run_id))).one()
        if r.state != RunState.OUT.value:
            raise errors.DeliveryRunState(f"run {s.run_id} is {r.state}: a stop is done while the run is out",
                                          field="stop_id")
        if s.state is not StopState.PENDING:
            raise errors.DeliveryRunState(f"stop {s.id} is already {s.state.value}", field="stop_id")
        return s, await _award_row(tx, s.award_id, for_update=True)

    async def _fail(self, tx: UnitOfWork, s: Stop, a: Award, why: str) -> None:
        move(a.state, AwardState.FAILED)
        await tx.conn.execute(update(delivery_stops).where(delivery_stops.c.id == s.id).values(
            state=StopState.FAILED.value, reason=why, done_at=tx.now))
        await tx.conn.execute(update(awards).where(awards.c.id == a.id).values(
            state=AwardState.FAILED.value, attempts=a.attempts + 1, updated_at=tx.now))
        await tx.emit(SmsRequested(key=f"{s.id}:failed", to=a.msisdn, template="campaign.delivery_failed",
                                   params={"prize": await _item_name(tx, a.item), "reason": why,
                                           "until": _day(a.claim_by)}))

    async def counts(self) -> dict[str, int]:
        """Prizes won by state (the console's figures)."""
        async def work(tx: UnitOfWork) -> dict[str, int]:
            rows = await tx.conn.execute(select(awards.c.state, func.count()).group_by(awards.c.state))
            return {r[0]: int(r[1]) for r in rows}

        return await self.uow.run("award_counts", work)


async def _award_row(tx: UnitOfWork, award_id: str, *, for_update: bool = False) -> Award:
    query = select(awards).where(awards.c.id == award_id)
    row = (await tx.conn.execute(query.with_for_update() if for_update else query)).first()
    if row is None:
        raise errors.AwardNotFound(f"no prize won {award_id!r}", field="award_id")
    return _award(row)


async def _stop_row(tx: UnitOfWork, stop_id: str) -> Stop:
    return _stop((await tx.conn.execute(select(delivery_stops).where(delivery_stops.c.id == stop_id))).one())


async def _run_row(tx: UnitOfWork, run_id: str, *, for_update: bool = False) -> Run:
    query = select(delivery_runs).where(delivery_runs.c.id == run_id)
    row = (await tx.conn.execute(query.with_for_update() if for_update else query)).first()
    if row is None:
        raise errors.DeliveryRunNotFound(f"no delivery run {run_id!r}", field="run_id")
    stops = await tx.conn.execute(select(delivery_stops).where(delivery_stops.c.run_id == run_id)
                                  .order_by(delivery_stops.c.seq))
    day = row.day if isinstance(row.day, date) else date.fromisoformat(str(row.day))
    return Run(row.id, row.vehicle, row.driver, day, RunState(row.state), tuple(_stop(s) for s in stops))


def _keep(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        tmp = target.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.replace(target)


async def _item_name(tx: UnitOfWork, code: str) -> str:
    row = (await tx.conn.execute(select(prize_items.c.name).where(prize_items.c.code == code))).first()
    return code if row is None else str(row[0])


def _day(at: datetime) -> str:
    return f"{at.astimezone(SHANGHAI):%Y-%m-%d}"
