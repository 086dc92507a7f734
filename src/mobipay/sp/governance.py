"""SP governance by the operator's staff: violations recorded with a reason and evidence,
the penalty the catalogue's ladder gives (model.rule), put in force at once or, for a red
card or an exit, only when a second member of staff checks it (maker-checker); the SP's
one appeal and its outcome; measures lifted; the complaint-rate review; the exit report
to the provincial communications administration (a PDF).

Every decision needs the ``sp_governance`` role (``MOBIPAY_OPERATORS``, or a console account
holding it) and is audited in the transaction that makes it. Measures in force are rows in
``sp_penalties`` with their expiry, so points and cards stop counting by themselves; the
flags on the SP (port shielded, settlement suspended, exited) are what the subscription
and settlement paths read, set and cleared here only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Any

from sqlalchemy import insert, select, update

from mobipay.kernel.clock import as_utc
from mobipay.kernel.ids import new_id
from mobipay.kernel.roles import Roster
from mobipay.ledger.uow import UnitOfWork, UnitOfWorkRunner
from mobipay.sp import errors
from mobipay.sp.model import (
    CATALOGUE,
    Measure,
    Penalty,
    Record,
    Step,
    complaint_violation,
    describe,
    expiry,
    period_of,
    rule,
)
from mobipay.sp.report import render_pdf, report_lines
from mobipay.sp.service import SpService
from mobipay.sp.tables import sp_decisions, sp_penalties, sp_providers, sp_services

ROLE = "sp_governance"
_FLAGS = {Measure.SHIELD_PORT: "port_shielded", Measure.SUSPEND_SETTLEMENT: "settlement_suspended"}


@dataclass(frozen=True, slots=True)
class SpDecision:
    id: str
    sp_code: str
    kind: str  # violation | lift
    cls: str
    level: str
    rung: int
    steps: tuple[Step, ...]
    reason: str
    evidence: str
    maker: str
    checker: str | None
    state: str  # proposed | in_force | rejected | overturned
    appeal: str | None
    appeal_outcome: str | None
    created_at: datetime

    @property
    def summary(self) -> str:
        return describe(self.steps)


def _decision(row: Any) -> SpDecision:
    steps = tuple(Step(Measure(m), v) for m, v in json.loads(row.measures))
    return SpDecision(row.id, row.sp_code, row.kind, row.cls, row.level, row.rung, steps, row.reason, row.evidence,
                      row.maker, row.checker, row.state, row.appeal, row.appeal_outcome, as_utc(row.created_at))


def _penalty(row: Any) -> Penalty:
    return Penalty(Measure(row.measure), row.value, as_utc(row.decided_at),
                   as_utc(row.expires_at) if row.expires_at is not None else None)


class SpGovernance:
    def __init__(self, uow: UnitOfWorkRunner, sp: SpService, roster: Roster) -> None:
        self.uow = uow
        self.sp = sp
        self.roster = roster
        sp.cards = self.cards  # the confirmation rules read the cards in force

    # ------------------------------------------------------------------ reads

    async def record(self, sp_code: str) -> tuple[Record, list[SpDecision]]:
        """The SP's record: violations and penalties (as the ladder sees them) and every decision."""

        async def work(uow: UnitOfWork) -> tuple[Record, list[SpDecision]]:
            return await self._record(uow, sp_code)

        return await self.uow.run("sp_record", work)

    async def _record(self, uow: UnitOfWork, sp_code: str) -> tuple[Record, list[SpDecision]]:
        decisions = [_decision(r) for r in await uow.conn.execute(select(sp_decisions).where(
            sp_decisions.c.sp_code == sp_code).order_by(sp_decisions.c.created_at, sp_decisions.c.id))]
        penalties = [_penalty(r) for r in await uow.conn.execute(select(sp_penalties).where(
            sp_penalties.c.sp_code == sp_code, sp_penalties.c.lifted_at.is_(None)))]
        violations = [(d.cls, d.created_at) for d in decisions
                      if d.kind == "violation" and d.state == "in_force"]
        return Record(violations, penalties), decisions

    async def cards(self, sp_code: str) -> dict[str, Any]:
        """The cards and forced confirmation in force now (expired ones no longer count), for
        the confirmation rules."""
        record, _ = await self.record(sp_code)
        now = self.uow.clock.now()
        return {"yellow_level": record.yellow_level(now), "red_card": record.red(now),
                "forced_confirmation": any(p.measure is Measure.FORCE_CONFIRMATION for p in record.in_force(now))}

    # ------------------------------------------------------------------ decisions

    async def record_violation(self, sp_code: str, cls: str, level: str, *, reason: str, evidence: str,
                               actor: str) -> SpDecision:
        """A violation found by staff: the ladder's rung for this SP's record, in force at once,
        or proposed for a checker when it is a red card or an exit."""
        self.roster.require(actor, ROLE)
        if (cls, level) not in CATALOGUE:
            raise errors.SpInvalid(f"no violation {cls}/{level}: classes are "
                                   f"{', '.join(sorted({c for c, _ in CATALOGUE}))}; levels minor, serious, grave",
                                   field="cls")
        if not reason.strip() or not evidence.strip():
            raise errors.SpInvalid("a decision needs a reason and its evidence", field="evidence")

        async def work(uow: UnitOfWork) -> SpDecision:
            sp_row = await self._sp_row(uow, sp_code)
            if sp_row.exited_at is not None:
                raise errors.SpDecisionRefused(f"SP {sp_code} has exited: no further decisions")
            record, _ = await self._record(uow, sp_code)
            ruling = rule(cls, level, record, uow.now)
            did = new_id("spd")
            state = "proposed" if ruling.needs_checker else "in_force"
            full_reason = reason.strip() + (f" ({'; '.join(ruling.escalated)})" if ruling.escalated else "")
            await uow.conn.execute(insert(sp_decisions).values(
                id=did, sp_code=sp_code, kind="violation", cls=cls, level=level, rung=ruling.rung,
                measures=json.dumps([[s.measure.value, s.value] for s in ruling.steps]), reason=full_reason,
                evidence=evidence.strip(), maker=actor, state=state, created_at=uow.now,
                decided_at=uow.now if state == "in_force" else None))
            if state == "in_force":
                await self._apply(uow, sp_code, did, ruling.steps)
            await uow.audit(actor=actor, action=f"sp.violation.{state}", target=sp_code, reason=full_reason,
                            after={"decision": did, "class": cls, "level": level, "rung": ruling.rung,
                                   "measures": describe(ruling.steps), "evidence": evidence.strip()})
            return await self._get(uow, did)

        return await self.uow.run("sp_violation", work)

    async def propose_exit(self, sp_code: str, *, reason: str, evidence: str, actor: str) -> SpDecision:
        """Staff propose that the SP exits (beyond the ladder: a grave case); a second member
        of staff checks it, and the report to the provincial administration follows."""
        self.roster.require(actor, ROLE)
        if not reason.strip() or not evidence.strip():
            raise errors.SpInvalid("a decision needs a reason and its evidence", field="evidence")

        async def work(uow: UnitOfWork) -> SpDecision:
            if (await self._sp_row(uow, sp_code)).exited_at is not None:
                raise errors.SpDecisionRefused(f"SP {sp_code} has exited already")
            did = new_id("spd")
            await uow.conn.execute(insert(sp_decisions).values(
                id=did, sp_code=sp_code, kind="exit", measures=json.dumps([[Measure.EXIT.value, 0]]),
                reason=reason.strip(), evidence=evidence.strip(), maker=actor, state="proposed", created_at=uow.now))
            await uow.audit(actor=actor, action="sp.exit.proposed", target=sp_code, reason=reason,
                            after={"decision": did, "evidence": evidence.strip()})
            return await self._get(uow, did)

        return await self.uow.run("sp_exit_propose", work)

    async def exit_report(self, sp_code: str) -> bytes:
        """The report to the provincial communications administration on an SP that exited:
        the SP, its services, its record and every decision, as a PDF."""

        async def work(uow: UnitOfWork) -> tuple[Any, list[Any], Record, list[SpDecision]]:
            row = await self._sp_row(uow, sp_code)
            if row.exited_at is None:
                raise errors.SpDecisionRefused(f"SP {sp_code} has not exited: the report follows an exit")
            services = list(await uow.conn.execute(select(sp_services).where(sp_services.c.sp_code == sp_code)))
            record, decisions = await self._record(uow, sp_code)
            return row, services, record, decisions

        row, services, record, decisions = await self.uow.run("sp_exit_report", work)
        now = self.uow.clock.now()
        lines = report_lines(row, services, record, decisions, await self.sp.complaint_rate(
            sp_code, period_of(as_utc(row.exited_at))), now)
        return render_pdf(f"SP {sp_code} exit report", lines)

    async def check(self, decision_id: str, *, approve: bool, actor: str, reason: str) -> SpDecision:
        """The second member of staff on a red card or an exit: in force, or rejected."""
        self.roster.require(actor, ROLE)
        if not reason.strip():
            raise errors.SpInvalid("a check needs a reason", field="reason")

        async def work(uow: UnitOfWork) -> SpDecision:
            d = await self._get(uow, decision_id)
            if d.state != "proposed":
                raise errors.SpDecisionRefused(f"decision {decision_id} is {d.state}: only a proposed one is checked")
            if d.maker == actor:
                raise errors.SpDecisionRefused("the maker of a decision cannot check it: another member of staff must")
            state = "in_force" if approve else "rejected"
            await uow.conn.execute(update(sp_decisions).where(
                sp_decisions.c.id == decision_id, sp_decisions.c.state == "proposed").values(
                state=state, checker=actor, decided_at=uow.now))
            if approve:
                await self._apply(uow, d.sp_code, decision_id, d.steps)
            await uow.audit(actor=actor, action=f"sp.check.{state}", target=d.sp_code, reason=reason,
                            before={"decision": decision_id, "state": "proposed"}, after={"state": state})
            return await self._get(uow, decision_id)

        return await self.uow.run("sp_check", work)

    async def appeal(self, decision_id: str, sp_code: str, text: str) -> SpDecision:
        """The SP's appeal against a decision in force: once per decision."""
        if not text.strip():
            raise errors.SpInvalid("an appeal says why", field="text")

        async def work(uow: UnitOfWork) -> SpDecision:
            d = await self._get(uow, decision_id)
            if d.sp_code != sp_code:
                raise errors.SpDecisionNotFound(f"no decision {decision_id} for SP {sp_code}", field="decision_id")
            if d.appeal is not None:
                raise errors.SpDecisionRefused("this decision was appealed already: an SP appeals once")
            if d.state != "in_force":
                raise errors.SpDecisionRefused(f"decision {decision_id} is {d.state}: only one in force is appealed")
            await uow.conn.execute(update(sp_decisions).where(sp_decisions.c.id == decision_id).values(
                appeal=text.strip()[:2000]))
            await uow.audit(actor=f"sp:{sp_code}", action="sp.appeal", target=sp_code, reason=text.strip()[:500],
                            after={"decision": decision_id})
            return await self._get(uow, decision_id)

        return await self.uow.run("sp_appeal", work)

    async def decide_appeal(self, decision_id: str, *, uphold: bool, actor: str, reason: str) -> SpDecision:
        """Staff answer the appeal: upheld (the decision stands) or overturned (its measures are
        lifted and it no longer counts towards the ladder)."""
        self.roster.require(actor, ROLE)
        if not reason.strip():
            raise errors.SpInvalid("an appeal's outcome needs a reason", field="reason")

        async def work(uow: UnitOfWork) -> SpDecision:
            d = await self._get(uow, decision_id)
            if d.appeal is None or d.appeal_outcome is not None:
                raise errors.SpDecisionRefused("there is no open appeal on this decision")
            if d.maker == actor:
                raise errors.SpDecisionRefused("the maker of a decision cannot judge its appeal")
            outcome = "upheld" if uphold else "overturned"
            values: dict[str, Any] = {"appeal_outcome": outcome}
            if not uphold:
                values["state"] = "overturned"
                await self._lift_decision(uow, d)
            await uow.conn.execute(update(sp_decisions).where(sp_decisions.c.id == decision_id).values(**values))
            await uow.audit(actor=actor, action=f"sp.appeal.{outcome}", target=d.sp_code, reason=reason,
                            after={"decision": decision_id})
            return await self._get(uow, decision_id)

        return await self.uow.run("sp_appeal_decide", work)

    async def lift(self, sp_code: str, measure: Measure, *, actor: str, reason: str) -> int:
        """Lift a measure in force (settlement suspension, port shield, forced confirmation, a
        service offline); how many penalty rows it ended. Lifting a suspended settlement
        releases the settlements held (sp.settlement reads the flag)."""
        self.roster.require(actor, ROLE)
        if not reason.strip():
            raise errors.SpInvalid("lifting a measure needs a reason", field="reason")
        if measure in (Measure.EXIT, Measure.DEDUCT_POINTS, Measure.DEDUCT_FEES):
            raise errors.SpDecisionRefused(f"{measure.value} cannot be lifted: it is a record, not a state")

        async def work(uow: UnitOfWork) -> int:
            sp_row = await self._sp_row(uow, sp_code)
            if sp_row.exited_at is not None:
                raise errors.SpDecisionRefused(f"SP {sp_code} has exited")
            done = await uow.conn.execute(update(sp_penalties).where(
                sp_penalties.c.sp_code == sp_code, sp_penalties.c.measure == measure.value,
                sp_penalties.c.lifted_at.is_(None)).values(lifted_at=uow.now))
            await self._set_flag(uow, sp_code, measure, False)
            await uow.conn.execute(insert(sp_decisions).values(
                id=new_id("spd"), sp_code=sp_code, kind="lift", measures=json.dumps([[measure.value, 0]]),
                reason=reason.strip(), evidence="", maker=actor, state="in_force", created_at=uow.now,
                decided_at=uow.now))
            await uow.audit(actor=actor, action="sp.lift", target=sp_code, reason=reason,
                            before={"measure": measure.value}, after={"lifted": int(done.rowcount or 0)})
            return int(done.rowcount or 0)

        return await self.uow.run("sp_lift", work)

    async def review_complaints(self, sp_code: str, period: str, *, actor: str,
                                evidence: str = "") -> SpDecision | None:
        """The month's complaint rate against the thresholds: a violation of the complaints
        class at the level the rate reaches, or None below them."""
        n, subs, rate = await self.sp.complaint_rate(sp_code, period)
        found = complaint_violation(Fraction(n * 10_000, max(subs, 1)))
        if found is None:
            return None
        cls, level = found
        return await self.record_violation(
            sp_code, cls, level, actor=actor, reason=f"complaint rate {rate} per 10,000 subscribers in {period} "
            f"({n} complaints, {subs} subscribers)", evidence=evidence or f"complaints of {period}")

    # ------------------------------------------------------------------ applying

    async def _apply(self, uow: UnitOfWork, sp_code: str, decision_id: str, steps: tuple[Step, ...]) -> None:
        for step in steps:
            await uow.conn.execute(insert(sp_penalties).values(
                id=new_id("spp"), decision_id=decision_id, sp_code=sp_code, measure=step.measure.value,
                value=step.value, decided_at=uow.now, expires_at=expiry(step, uow.now)))
            await self._set_flag(uow, sp_code, step.measure, True)

    async def _set_flag(self, uow: UnitOfWork, sp_code: str, measure: Measure, on: bool) -> None:
        if measure in _FLAGS:
            await uow.conn.execute(update(sp_providers).where(sp_providers.c.code == sp_code).values(
                **{_FLAGS[measure]: on}))
        elif measure is Measure.FORCE_CONFIRMATION:
            await uow.conn.execute(update(sp_providers).where(sp_providers.c.code == sp_code).values(
                forced_confirmation=on))
        elif measure is Measure.SERVICE_OFFLINE:
            await uow.conn.execute(update(sp_services).where(sp_services.c.sp_code == sp_code).values(online=not on))
        elif measure is Measure.EXIT and on:
            await uow.conn.execute(update(sp_providers).where(sp_providers.c.code == sp_code).values(
                exited_at=uow.now, port_shielded=True, settlement_suspended=True))

    async def _lift_decision(self, uow: UnitOfWork, d: SpDecision) -> None:
        await uow.conn.execute(update(sp_penalties).where(
            sp_penalties.c.decision_id == d.id, sp_penalties.c.lifted_at.is_(None)).values(lifted_at=uow.now))
        for step in d.steps:
            if step.measure is Measure.EXIT:
                continue  # an exit is final
            still = (await uow.conn.execute(select(sp_penalties.c.id).where(
                sp_penalties.c.sp_code == d.sp_code, sp_penalties.c.measure == step.measure.value,
                sp_penalties.c.lifted_at.is_(None)))).first()
            if still is None:
                await self._set_flag(uow, d.sp_code, step.measure, False)

    async def _get(self, uow: UnitOfWork, decision_id: str) -> SpDecision:
        row = (await uow.conn.execute(select(sp_decisions).where(sp_decisions.c.id == decision_id))).first()
        if row is None:
            raise errors.SpDecisionNotFound(f"no decision {decision_id}", field="decision_id")
        return _decision(row)

    async def _sp_row(self, uow: UnitOfWork, code: str) -> Any:
        row = (await uow.conn.execute(select(sp_providers).where(sp_providers.c.code == code))).first()
        if row is None:
            raise errors.SpNotFound(f"no SP with the service code {code}", field="sp_code")
        return row
