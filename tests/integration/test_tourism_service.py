"""Tourism enforcement on SQLite and PostgreSQL, the operator's location platform as its
SIMULATOR (in process, through the real signed adapter): the seed's Suining story end to end
(a complaint on National Day, the route replayed, a promised spot not visited, the agency's
manager looked up, the refund from the agency's account to the tourist's wallet, penalties),
every balance asserted; an officer of another county refused at every step; the group
complaint; an overdue acceptance escalated once; the rules' refusals; device-bound sign-in;
evidence with a wrong hash refused and a file tampered with on disk found out."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from hashlib import sha256
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from mobipay.kernel.clock import SHANGHAI, ManualClock
from mobipay.kernel.errors import MobipayError
from mobipay.ledger.chart import SYSTEM_ACCOUNTS
from mobipay.ledger.service import Ledger
from mobipay.ledger.uow import UnitOfWorkRunner
from mobipay.platform.db import Database
from mobipay.platform.outbox import outbox
from mobipay.simulators.location_platform import create_location_app
from mobipay.tourism.location_http import HttpLocationPlatform
from mobipay.tourism.model import OrderState
from mobipay.tourism.service import Complaint, Officer, TourismService, agency_account
from mobipay.wallet.reference_data import number_segments
from mobipay.wallet.service import WalletService
from tests.support.images import png

SECRET = "test-location-secret"
SUINING, CHENGBU = "430527", "430529"
QINGSHAN = "tag_" + sha256(b"L-HUN-CJ00527").hexdigest()[:20]  # 青山国际旅行社 (data/430527.json)
TOURIST = "+8613800138000"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 10, 3, 14, 0, tzinfo=SHANGHAI))  # National Day, the afternoon after the tour


@dataclass
class World:
    svc: TourismService
    ledger: Ledger
    clock: ManualClock
    officer: Officer
    other: Officer
    contract: str
    guide: str
    driver: str
    sim: Any


@pytest.fixture
async def world(db: Database, ledger: Ledger, clock: ManualClock, tmp_path: Path) -> AsyncIterator[World]:
    await ledger.open_accounts(list(SYSTEM_ACCOUNTS))
    uow = UnitOfWorkRunner(db, clock, ledger)
    sim = create_location_app(SECRET)
    location = HttpLocationPlatform("http://location", SECRET.encode(), transport=httpx.ASGITransport(app=sim))
    svc = TourismService(uow, WalletService(uow, number_segments(), b"t"), location, evidence_dir=tmp_path / "ev",
                         hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    loaded = await svc.load_directory(SUINING)
    assert loaded["agencies"] == 2 and loaded["spots"] == 5
    assert await svc.load_directory(SUINING) == loaded  # again: nothing new (ids are derived)
    officer = await svc.add_officer(SUINING, "SN0001", "唐明", "13907391001", "dev-sn-1", "officer-pass-1", actor="t")
    other = await svc.add_officer(CHENGBU, "CB0001", "杨林", "13907392001", "dev-cb-1", "officer-pass-2", actor="t")
    entries = {e.name: e for e in await svc.directory(officer.viewer, kind="guide")}
    guide = entries["李芳"].id
    driver = (await svc.directory(officer.viewer, q="王军"))[0].id
    await svc.fund_agency(QINGSHAN, 100_000, idempotency_key="fund-1", actor="t")
    await svc.wallet.create_user(TOURIST, actor="t", reason="t")
    contract = await svc.file_contract(
        QINGSHAN, "张伟", TOURIST, datetime(2026, 10, 3, 7, 30, tzinfo=SHANGHAI),
        datetime(2026, 10, 3, 13, 0, tzinfo=SHANGHAI), ["spot_huangsang", "spot_shangbao"], guide_id=guide,
        driver_id=driver, price=38_000, people=2)
    yield World(svc, ledger, clock, officer, other, contract, guide, driver, sim)
    await location.close()


async def refused(coro: Any) -> str:
    with pytest.raises(MobipayError) as info:
        await coro
    return info.value.code


async def balance(w: World, code: str) -> int:
    return (await w.ledger.account(code)).balance


async def sms(w: World) -> list[tuple[str, str]]:
    async def work(uow: Any) -> list[Any]:
        return list(await uow.conn.execute(select(outbox.c.payload).where(outbox.c.topic == "sms.send")))

    return [(json.loads(r.payload)["to"], json.loads(r.payload)["template"]) for r in await w.svc.uow.run("t", work)]


def complaint(w: World, **kw: Any) -> Complaint:
    base: dict[str, Any] = {
        "complainant_name": "张伟", "complainant_phone": "138 0013 8000", "cause": "itinerary_skipped",
        "facts": "合同约定游览上堡侗寨，导游未带团前往，改去购物店停留一个多小时。",
        "demands": "退还上堡侗寨部分团费 300 元",
        "location_consent": True, "contract_id": w.contract}
    base.update(kw)
    return Complaint(**base)


async def test_the_seeds_story_end_to_end(world: World) -> None:
    w, me = world, world.officer.viewer
    wallet = (await w.svc.wallet.user_by_msisdn(TOURIST)).account_code
    order = await w.svc.complain(w.officer, complaint(w), idempotency_key="wo-1")
    assert order.state is OrderState.RECEIVED and order.agency_id == QINGSHAN and order.guide_id == w.guide
    assert order.itinerary == ("spot_huangsang", "spot_shangbao")  # from the filed contract
    # National Day: received Sat 3 Oct; working days are 8, 9, 10 (a Saturday made a working day), 12, 13 Oct
    assert order.deadlines.accept_by.astimezone(SHANGHAI).date() == date(2026, 10, 13)
    again = await w.svc.complain(w.officer, complaint(w), idempotency_key="wo-1")  # the phone's queue resends
    assert again.id == order.id and again.replayed
    assert len(await w.svc.work_orders(me)) == 1

    accepted = await w.svc.accept(me, order.id)
    assert accepted.state is OrderState.ACCEPTED
    assert accepted.deadlines.reply_by is not None and accepted.deadlines.mediate_by is not None
    assert accepted.deadlines.reply_by.astimezone(SHANGHAI).date() == date(2026, 10, 13)
    assert accepted.deadlines.mediate_by.astimezone(SHANGHAI).date() == date(2026, 12, 2)

    replay = await w.svc.replay_route(me, order.id, subject="guide")
    by_spot = {v.spot.id: v for v in replay.verdicts}
    hs, sb = by_spot["spot_huangsang"], by_spot["spot_shangbao"]
    assert hs.visited and hs.arrived is not None and hs.left is not None and 80 <= hs.minutes <= 100
    assert hs.arrived.astimezone(SHANGHAI).strftime("%H") in ("08", "09")
    assert not sb.visited and 2_000 < sb.closest_m < 4_500  # the coach passed the turn, never went
    assert replay.not_visited == ["上堡侗寨"]
    assert any(70 <= s.minutes <= 90 for s in replay.stops)  # the shop
    saved = await w.svc.replays_of(me, order.id)
    assert saved[0]["verdicts"][1]["visited"] is False and len(saved[0]["track"]) > 200

    agency = await w.svc.agency(me, order.agency_id)  # the officer calls the manager
    assert agency.detail["manager"] == "陈志强" and agency.detail["manager_phone"] == "+8613907390100"
    assert agency.detail["balance"] == 100_000

    await w.svc.record_reply(me, order.id, "导游称因道路施工改道，但无法提供证据。")
    # a refund before the mediation concluded changes nothing
    assert await refused(w.svc.refund(me, order.id, 30_000, idempotency_key="r-1")) == "WORK_ORDER_STATE_CONFLICT"
    done = await w.svc.mediate(me, order.id, "upheld", "旅行社退还上堡侗寨门票及服务费 300 元，并向游客致歉。")
    assert done.state is OrderState.MEDIATED and done.outcome == "upheld"
    # more than the agency's account holds: refused, nothing moves
    assert await refused(w.svc.refund(me, order.id, 100_001, idempotency_key="r-big")) == "TOURISM_AGENCY_FUNDS_SHORT"
    assert await balance(w, agency_account(QINGSHAN)) == 100_000 and await balance(w, wallet) == 0
    paid = await w.svc.refund(me, order.id, 30_000, idempotency_key="r-1")
    assert paid.transfer_id is not None and not paid.replayed
    assert (await w.svc.refund(me, order.id, 30_000, idempotency_key="r-1")).replayed  # a retry pays once
    assert await balance(w, agency_account(QINGSHAN)) == 70_000
    assert await balance(w, wallet) == 30_000

    await w.svc.penalise(me, order.id, "guide", "points", "未按合同行程带团", points=2)
    await w.svc.penalise(me, order.id, "agency", "warning", "擅自变更行程")
    assert [p.points for p in await w.svc.penalties_of(w.guide)] == [2]
    assert (await w.svc.directory(me, q="李芳"))[0].detail["penalty_points"] == 2
    texts = await sms(w)
    assert ("+8613907390100", "tourism.notice") in texts  # the agency's manager told to reply in writing
    assert ("+8613800138000", "tourism.refunded") in texts  # the tourist told of the refund, once
    assert texts.count(("+8613800138000", "tourism.refunded")) == 1
    steps = [s.step for s in (await w.svc.work_order(me, order.id)).steps]
    assert steps == ["received", "accepted", "route_replayed", "replied", "mediated", "refunded", "penalised",
                     "penalised"]


async def test_an_officer_of_another_county_cannot_see_the_order(world: World) -> None:
    w = world
    order = await w.svc.complain(w.officer, complaint(w), idempotency_key="wo-1")
    other = w.other.viewer
    assert await refused(w.svc.work_order(other, order.id)) == "TOURISM_OTHER_COUNTY"
    assert await refused(w.svc.accept(other, order.id)) == "TOURISM_OTHER_COUNTY"
    assert await refused(w.svc.replay_route(other, order.id)) == "TOURISM_OTHER_COUNTY"
    assert await refused(w.svc.refund(other, order.id, 100, idempotency_key="x")) == "TOURISM_OTHER_COUNTY"
    assert await w.svc.work_orders(other) == []
    assert await refused(w.svc.agency(other, QINGSHAN)) == "TOURISM_DIRECTORY_NOT_FOUND"
    assert (await w.svc.work_order(w.officer.viewer, order.id)).state is OrderState.RECEIVED  # unchanged


async def test_four_complainants_with_one_cause_are_a_group_complaint(world: World) -> None:
    w = world
    ids = []
    for n in range(3):
        o = await w.svc.complain(w.officer, complaint(w, complainant_phone=f"1380013800{n + 1}"),
                                 idempotency_key=f"g-{n}")
        ids.append(o.id)
        assert o.group_id is None  # 1, 2, 3 complainants: not yet a group
    other_cause = await w.svc.complain(w.officer, complaint(w, cause="forced_shopping"), idempotency_key="g-x")
    fourth = await w.svc.complain(w.officer, complaint(w, complainant_phone="13800138009"), idempotency_key="g-3")
    assert fourth.group_id is not None
    for oid in ids:
        assert (await w.svc.work_order(w.officer.viewer, oid)).group_id == fourth.group_id
    assert (await w.svc.work_order(w.officer.viewer, other_cause.id)).group_id is None
    signed_by_four = await w.svc.complain(w.officer, complaint(w, cause="extra_charges", complainants=4),
                                          idempotency_key="g-4")
    assert signed_by_four.group_id is not None and signed_by_four.group_id != fourth.group_id


async def test_overdue_acceptance_is_escalated_once(world: World) -> None:
    w = world
    w.clock.set(datetime(2026, 9, 30, 10, 0, tzinfo=SHANGHAI))
    order = await w.svc.complain(w.officer, complaint(w), idempotency_key="late")
    assert order.deadlines.accept_by.astimezone(SHANGHAI).date() == date(2026, 10, 13)  # across National Day
    w.clock.set(datetime(2026, 10, 13, 23, 0, tzinfo=SHANGHAI))
    assert await w.svc.escalate_overdue() == 0  # still in time
    w.clock.set(datetime(2026, 10, 14, 0, 30, tzinfo=SHANGHAI))
    assert await w.svc.escalate_overdue() == 1
    assert await w.svc.escalate_overdue() == 0  # once per missed step
    late = await w.svc.work_order(w.officer.viewer, order.id)
    assert late.escalation == 1 and late.steps[-1].step == "escalated"


async def test_the_rules_refusals(world: World) -> None:
    w, me = world, world.officer.viewer
    old = await w.svc.complain(w.officer, complaint(w, contract_id=None, agency_id=QINGSHAN,
                                                    tour_date=date(2026, 6, 20)), idempotency_key="old")
    assert await refused(w.svc.accept(me, old.id)) == "WORK_ORDER_STATE_CONFLICT"  # > 90 days after the tour
    assert await refused(w.svc.refuse(me, old.id, [], "")) == "WORK_ORDER_REFUSAL_REASON"
    done = await w.svc.refuse(me, old.id, ["time_barred"], "旅游合同结束已超过 90 天。")
    assert done.state is OrderState.REFUSED and done.refusal == {"grounds": ["time_barred"],
                                                                  "words": "旅游合同结束已超过 90 天。"}
    court = await w.svc.complain(w.officer, complaint(w, before_court=True), idempotency_key="court")
    assert await refused(w.svc.accept(me, court.id)) == "WORK_ORDER_STATE_CONFLICT"
    elsewhere = await w.svc.complain(w.officer, complaint(w), idempotency_key="far")
    moved = await w.svc.refuse(me, elsewhere.id, ["no_jurisdiction"], "移交被投诉者所在地旅游投诉处理机构。")
    assert moved.state is OrderState.TRANSFERRED
    assert await refused(w.svc.accept(me, moved.id)) == "WORK_ORDER_STATE_CONFLICT"  # final
    no_consent = await w.svc.complain(w.officer, complaint(w, location_consent=False), idempotency_key="nc")
    assert await refused(w.svc.replay_route(me, no_consent.id)) == "LOCATION_CONSENT_REQUIRED"
    assert await refused(w.svc.complain(w.officer, complaint(w, complainant_phone="12345"),
                                        idempotency_key="bad")) == "COMPLAINT_INVALID"
    assert await refused(w.svc.complain(w.officer, complaint(w, cause="weather"),
                                        idempotency_key="bad2")) == "COMPLAINT_INVALID"


async def test_sign_in_is_bound_to_the_officers_terminal(world: World) -> None:
    w = world
    assert await refused(w.svc.sign_in("SN0001", "officer-pass-1", "someone-elses-phone")) == "OFFICER_DEVICE_NOT_BOUND"
    assert await refused(w.svc.sign_in("SN0001", "wrong-password", "dev-sn-1")) == "OFFICER_SIGN_IN_FAILED"
    me, token = await w.svc.sign_in("SN0001", "officer-pass-1", "dev-sn-1")
    assert (await w.svc.officer(token)).id == me.id == w.officer.id
    await w.svc.sign_out(token)
    assert await refused(w.svc.officer(token)) == "OFFICER_SESSION_INVALID"


async def test_a_lost_terminal_disabled_rebound_and_a_new_password(world: World) -> None:
    """The bureau's hand on an officer's account: each change ends the live sessions, is
    audited, and a refusal (no reason, nothing to change, a short password) changes nothing."""
    w = world
    _me, token = await w.svc.sign_in("SN0001", "officer-pass-1", "dev-sn-1")
    assert await refused(w.svc.change_officer("SN0001", actor="t", reason=" ", disabled=True)) == "OFFICER_INVALID"
    assert await refused(w.svc.change_officer("SN0001", actor="t", reason="x")) == "OFFICER_INVALID"
    assert await refused(w.svc.change_officer("SN0001", actor="t", reason="x", password="short")) == "OFFICER_INVALID"
    assert await refused(w.svc.change_officer("NOPE01", actor="t", reason="x", disabled=True)) == "OFFICER_INVALID"
    assert (await w.svc.officer(token)).badge == "SN0001"  # nothing changed

    done = await w.svc.change_officer("SN0001", actor="t", reason="terminal lost", device_id="dev-sn-9")
    assert done.device_id == "dev-sn-9" and not done.disabled
    assert await refused(w.svc.officer(token)) == "OFFICER_SESSION_INVALID"
    assert await refused(w.svc.sign_in("SN0001", "officer-pass-1", "dev-sn-1")) == "OFFICER_DEVICE_NOT_BOUND"
    _me, token = await w.svc.sign_in("SN0001", "officer-pass-1", "dev-sn-9")

    assert (await w.svc.change_officer("SN0001", actor="t", reason="on leave", disabled=True)).disabled
    assert await refused(w.svc.officer(token)) == "OFFICER_SESSION_INVALID"
    assert await refused(w.svc.sign_in("SN0001", "officer-pass-1", "dev-sn-9")) == "OFFICER_SIGN_IN_FAILED"
    await w.svc.change_officer("SN0001", actor="t", reason="back", disabled=False, password="a-new-pass-22")
    assert await refused(w.svc.sign_in("SN0001", "officer-pass-1", "dev-sn-9")) == "OFFICER_SIGN_IN_FAILED"
    await w.svc.sign_in("SN0001", "a-new-pass-22", "dev-sn-9")


async def test_evidence_hash_checked_and_a_tampered_file_detected(world: World) -> None:
    w = world
    order = await w.svc.complain(w.officer, complaint(w), idempotency_key="ev")
    photo = png(7)
    at = w.clock.now() - timedelta(minutes=2)
    kw: dict[str, Any] = {"captured_at": at, "device_id": "dev-sn-1", "lat": 26.4, "lon": 110.03}
    assert await refused(w.svc.upload_evidence(w.officer, order.id, photo, sha256="0" * 64, client_id="c0",
                                               **kw)) == "EVIDENCE_HASH_MISMATCH"
    assert await refused(w.svc.upload_evidence(w.officer, order.id, b"not a photo at all", client_id="c9",
                                               sha256=sha256(b"not a photo at all").hexdigest(),
                                               **kw)) == "EVIDENCE_NOT_MEDIA"
    ev = await w.svc.upload_evidence(w.officer, order.id, photo, sha256=sha256(photo).hexdigest(), client_id="c1", **kw)
    assert ev.kind == "photo" and ev.sha256 == sha256(photo).hexdigest() and ev.lat == 26.4
    assert (await w.svc.upload_evidence(w.officer, order.id, photo, sha256=ev.sha256, client_id="c1", **kw)).replayed
    audio = b"OggS\x00\x02" + bytes(range(200))
    await w.svc.upload_evidence(w.officer, order.id, audio, sha256=sha256(audio).hexdigest(), client_id="c2", **kw)
    assert [e.kind for e in await w.svc.evidence_of(w.officer.viewer, order.id)] == ["photo", "audio"]

    assert (await w.svc.verify_evidence(w.officer.viewer, ev.id)).intact
    _, data = await w.svc.open_evidence(w.officer.viewer, ev.id)
    assert data == photo
    kept = w.svc.evidence_dir / ev.filename
    kept.write_bytes(photo[:-1] + b"\x00")  # someone edits the kept file
    check = await w.svc.verify_evidence(w.officer.viewer, ev.id)
    assert not check.intact and check.file_sha256 != check.recorded_sha256
    await w.svc.open_evidence(w.officer.viewer, ev.id, export=True)
    trail = await w.svc.custody_of(w.officer.viewer, ev.id)
    assert [c.action for c in trail] == ["captured", "uploaded", "verified", "viewed", "verified", "exported"]
    assert trail[0].at == at and trail[0].device == "dev-sn-1" and "NOT INTACT" in trail[4].detail
    assert await refused(w.svc.custody_of(w.other.viewer, ev.id)) == "EVIDENCE_NOT_FOUND"
    assert await refused(w.svc.upload_evidence(w.officer, order.id, photo, sha256=ev.sha256, client_id="c3",
                                               captured_at=at, device_id="stolen")) == "OFFICER_DEVICE_NOT_BOUND"


async def test_the_agency_back_office_the_bureau_supervises(world: World) -> None:
    w, me = world, world.officer.viewer
    network = await w.svc.network(me, QINGSHAN)
    assert [(o["kind"], o["name"]) for o in network["outlets"]] == [("branch", "青山国旅 黄桑分社"),
                                                                    ("outlet", "青山国旅 长铺门市部")]
    assert {(p["role"], p["licence"]) for p in network["staff"]} >= {("guide", "D-4305-001234")}
    [customer] = await w.svc.customers(me, QINGSHAN)
    assert customer["phone"] == TOURIST and customer["tours"][0]["itinerary"] == ["spot_huangsang", "spot_shangbao"]

    [tour] = await w.svc.todays_tour(w.guide, date(2026, 10, 3))  # the guide assistant
    assert tour["contract_id"] == w.contract and tour["checked_in"] == []
    there = await w.svc.check_in(w.guide, w.contract, "spot_huangsang", 26.3953, 110.0349)
    away = await w.svc.check_in(w.guide, w.contract, "spot_shangbao", 26.5690, 110.1395)  # from the shop in town
    assert there["at_spot"] and there["distance_m"] < 50
    assert not away["at_spot"] and away["distance_m"] > 15_000
    assert await refused(w.svc.check_in(w.guide, w.contract, "spot_dayuan", 26.45, 109.95)) == "VALIDATION_FAILED"
    assert await refused(w.svc.check_in(w.driver, w.contract, "spot_huangsang", 26.39, 110.03)) == \
        "TOURISM_CONTRACT_NOT_FOUND"
    assert [c["at_spot"] for c in (await w.svc.todays_tour(w.guide, date(2026, 10, 3)))[0]["checked_in"]] == [
        True, False]
    log = await w.svc.operations(me, QINGSHAN)
    assert [e["action"] for e in log][:3] == ["checked_in", "checked_in", "contract_filed"]
    assert "NOT at the spot" in log[0]["detail"]
    assert await refused(w.svc.operations(w.other.viewer, QINGSHAN)) == "TOURISM_DIRECTORY_NOT_FOUND"
