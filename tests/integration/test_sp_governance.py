"""SP governance on SQLite and PostgreSQL: every step of a penalty ladder put in force with
its cards, the confirmation rules reading them, maker-checker for a red card and an exit,
the SP's one appeal, measures lifted, cards expiring, the complaint-rate review, the role
required, the audit trail and the exit report's content (read back out of the PDF)."""

from __future__ import annotations

import io

import pypdf
import pytest
from sqlalchemy import select

from mobipay.kernel.clock import ManualClock
from mobipay.kernel.errors import MobipayError
from mobipay.kernel.roles import Roster
from mobipay.platform.audit import audit_log
from mobipay.sp.governance import SpGovernance
from mobipay.sp.model import Cycle, Measure, Step
from mobipay.sp.service import SpService
from tests.integration.test_sp import (  # noqa: F401 - fixtures
    ME,
    OTHER,
    SP,
    age,
    billing_url,
    clock,
    sp,
    sp_billing_sim,
)

STAFF = Roster("alice:sp_governance;bob:sp_governance;carol:support")


@pytest.fixture
def gov(sp: SpService) -> SpGovernance:  # noqa: F811
    return SpGovernance(sp.uow, sp, STAFF)


async def code_of(call: object) -> str:
    with pytest.raises(MobipayError) as info:
        await call  # type: ignore[misc]
    return info.value.code


async def flags(gov: SpGovernance) -> tuple[bool, bool, bool, bool]:
    s = await gov.sp.sp(SP)
    return s.port_shielded, s.settlement_suspended, s.forced_confirmation, s.exited


async def test_minor_ladder_step_by_step_with_cards_and_confirmation(gov: SpGovernance, sp: SpService,  # noqa: F811
                                                                    clock: ManualClock) -> None:  # noqa: F811
    await age(sp, clock, 400)
    await sp.subscribe(ME, SP, "TQ")
    await sp.reply(ME)
    d1 = await gov.record_violation(SP, "pricing", "minor", reason="price not shown", evidence="ad.png", actor="alice")
    assert (d1.state, d1.rung, d1.steps) == ("in_force", 1, (Step(Measure.DEDUCT_POINTS, 10),
                                                             Step(Measure.DEDUCT_FEES, 10)))
    assert (await sp.subscribe(ME, SP, "XH")).rule == "policy"  # no card yet: not asked
    clock.advance(3600)
    d2 = await gov.record_violation(SP, "pricing", "minor", reason="again", evidence="ad2.png", actor="alice")
    assert d2.rung == 2 and Step(Measure.YELLOW_CARD, 1) in d2.steps
    assert await gov.cards(SP) == {"yellow_level": 1, "red_card": False, "forced_confirmation": False}
    await sp.add_service(SP, "GP", "股票", price=200, cycle=Cycle.MONTHLY, actor="t")
    assert (await sp.subscribe(ME, SP, "GP")).rule == "yellow_card"
    d3 = await gov.record_violation(SP, "pricing", "minor", reason="third time", evidence="ad3.png", actor="bob")
    assert d3.rung == 3 and Step(Measure.YELLOW_CARD, 2) in d3.steps and Step(Measure.FORCE_CONFIRMATION) in d3.steps
    assert (await gov.cards(SP))["yellow_level"] == 2 and (await flags(gov))[2]
    record, decisions = await gov.record(SP)
    assert record.points(clock.now()) == 100 - 10 - 20 - 30 and len(decisions) == 3
    # cards and forced confirmation expire: level 2 after 180 days, forced after 90
    clock.advance(181 * 86400)
    assert await gov.cards(SP) == {"yellow_level": 0, "red_card": False, "forced_confirmation": False}
    async with sp.uow.db.engine.connect() as conn:
        actions = (await conn.execute(select(audit_log.c.action).where(audit_log.c.target == SP))).scalars().all()
    assert actions.count("sp.violation.in_force") == 3


async def test_role_required_and_bad_input_change_nothing(gov: SpGovernance) -> None:
    assert await code_of(gov.record_violation(SP, "pricing", "minor", reason="r", evidence="e",
                                              actor="carol")) == "ROLE_REQUIRED"
    assert await code_of(gov.record_violation(SP, "fraud", "minor", reason="r", evidence="e",
                                              actor="alice")) == "SP_INVALID"
    assert await code_of(gov.record_violation(SP, "spam", "minor", reason="r", evidence=" ",
                                              actor="alice")) == "SP_INVALID"
    assert await code_of(gov.record_violation("10669999", "spam", "minor", reason="r", evidence="e",
                                              actor="alice")) == "SP_NOT_FOUND"
    assert (await gov.record(SP))[1] == []


async def test_red_card_needs_a_checker_then_shields_and_suspends(gov: SpGovernance, sp: SpService) -> None:  # noqa: F811
    first = await gov.record_violation(SP, "billing", "grave", reason="wrong charges", evidence="cdr.csv",
                                       actor="alice")
    assert first.state == "in_force" and Step(Measure.SERVICE_OFFLINE) in first.steps
    assert [s.online for s in await sp.services(SP)] == [False, False]
    red = await gov.record_violation(SP, "billing", "grave", reason="again", evidence="cdr2.csv", actor="alice")
    assert red.state == "proposed" and Step(Measure.RED_CARD) in red.steps
    assert await code_of(gov.check(red.id, approve=True, actor="alice", reason="mine")) == "SP_DECISION_REFUSED"
    assert await code_of(gov.check(red.id, approve=True, actor="carol", reason="x")) == "ROLE_REQUIRED"
    assert (await gov.cards(SP))["red_card"] is False  # nothing in force before the check
    checked = await gov.check(red.id, approve=True, actor="bob", reason="evidence verified")
    assert (checked.state, checked.checker) == ("in_force", "bob")
    assert (await gov.cards(SP))["red_card"] is True
    shielded, suspended, _, exited = await flags(gov)
    assert shielded and suspended and not exited
    assert await code_of(sp.subscribe(OTHER, SP, "TQ")) == "SP_PORT_CLOSED"
    assert await code_of(gov.check(red.id, approve=True, actor="bob", reason="twice")) == "SP_DECISION_REFUSED"


async def test_a_rejected_proposal_applies_nothing(gov: SpGovernance) -> None:
    await gov.record_violation(SP, "spam", "grave", reason="spam", evidence="e", actor="alice")
    red = await gov.record_violation(SP, "spam", "grave", reason="spam again", evidence="e", actor="alice")
    await gov.check(red.id, approve=False, actor="bob", reason="not proven")
    assert (await gov.cards(SP))["red_card"] is False
    record, _ = await gov.record(SP)
    assert len(record.violations) == 1  # a rejected decision does not count towards the ladder


async def test_appeal_once_overturned_lifts_its_measures(gov: SpGovernance) -> None:
    d = await gov.record_violation(SP, "spam", "serious", reason="spam", evidence="logs", actor="alice")
    assert Step(Measure.FORCE_CONFIRMATION) in d.steps and (await flags(gov))[2]
    appealed = await gov.appeal(d.id, SP, "the messages were requested by the subscribers")
    assert appealed.appeal is not None
    assert await code_of(gov.appeal(d.id, SP, "once more")) == "SP_DECISION_REFUSED"
    assert await code_of(gov.appeal(d.id, "10669999", "not ours")) == "SP_DECISION_NOT_FOUND"
    assert await code_of(gov.decide_appeal(d.id, uphold=False, actor="alice", reason="own")) == "SP_DECISION_REFUSED"
    out = await gov.decide_appeal(d.id, uphold=False, actor="bob", reason="opt-in records shown")
    assert (out.state, out.appeal_outcome) == ("overturned", "overturned")
    assert not (await flags(gov))[2] and await gov.cards(SP) == {"yellow_level": 0, "red_card": False,
                                                                  "forced_confirmation": False}
    assert await code_of(gov.decide_appeal(d.id, uphold=True, actor="bob", reason="x")) == "SP_DECISION_REFUSED"


async def test_suspended_settlement_lifted(gov: SpGovernance) -> None:
    await gov.record_violation(SP, "spam", "serious", reason="spam", evidence="logs", actor="alice")
    d = await gov.record_violation(SP, "spam", "serious", reason="spam again", evidence="logs", actor="alice")
    assert Step(Measure.SUSPEND_SETTLEMENT) in d.steps and (await flags(gov))[1]
    assert await gov.lift(SP, Measure.SUSPEND_SETTLEMENT, actor="bob", reason="fixed") == 1
    assert not (await flags(gov))[1]
    assert await code_of(gov.lift(SP, Measure.DEDUCT_POINTS, actor="bob", reason="x")) == "SP_DECISION_REFUSED"


async def test_complaint_review_records_a_violation_at_the_rate_reached(gov: SpGovernance, sp: SpService) -> None:  # noqa: F811
    await sp.subscribe(ME, SP, "TQ")
    await sp.reply(ME)
    assert await gov.review_complaints(SP, "2026-12", actor="alice") is None
    await sp.complain(ME, SP, "charged without asking")
    d = await gov.review_complaints(SP, "2026-12", actor="alice")
    assert d is not None and (d.cls, d.level) == ("complaints", "grave") and "10000.0 per 10,000" in d.reason


async def test_exit_with_a_checker_and_the_report(gov: SpGovernance, sp: SpService) -> None:  # noqa: F811
    await gov.record_violation(SP, "unconfirmed", "minor", reason="subscribed without consent", evidence="cdr.csv",
                               actor="alice")
    assert await code_of(gov.exit_report(SP)) == "SP_DECISION_REFUSED"
    proposal = await gov.propose_exit(SP, reason="repeated fraud", evidence="case 2026-17", actor="alice")
    assert not (await flags(gov))[3]
    await gov.check(proposal.id, approve=True, actor="bob", reason="approved by the committee")
    shielded, suspended, _, exited = await flags(gov)
    assert shielded and suspended and exited
    assert await code_of(sp.subscribe(ME, SP, "TQ")) == "SP_PORT_CLOSED"
    assert await code_of(gov.record_violation(SP, "spam", "minor", reason="r", evidence="e",
                                              actor="alice")) == "SP_DECISION_REFUSED"
    pdf = await gov.exit_report(SP)
    assert pdf.startswith(b"%PDF")
    text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    words = "".join(text.replace("\x00", "").split())  # the extractor spaces and pads CJK glyphs
    for part in ("天气通", SP, "B2-20060001", "4008101234", "省通信管理局", "repeatedfraud", "case2026-17",
                 "subscribedwithoutconsent", "makeralice", "checkerbob", "天气预报"):
        assert part in words, part
