"""Segments, prize draws and delivery on SQLite and PostgreSQL, against the lottery centre
SIMULATOR: M-Zone students in Shaoyang who paid this month, frozen into a committed entry
list; a draw named on 双色球's next issue, refused before that draw is imported, then
drawn and recomputed by the verifier from the published files (a changed list detected);
prizes from stock, delivered to the door with a signature, failed, re-delivered, and
unclaimed by the deadline; a bulk SMS to a segment written once however often it is sent."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text, update

from mobipay.campaigns import draw_model
from mobipay.campaigns.delivery import Prizes
from mobipay.campaigns.draw_service import Draws
from mobipay.campaigns.prize_model import AwardState, RunState, StopState
from mobipay.campaigns.segments import Segments
from mobipay.campaigns.tables import prize_items
from mobipay.instore.alliance_service import AllianceService
from mobipay.instore.alliances import Brand, Kind, Rule
from mobipay.kernel.clock import SHANGHAI, ManualClock
from mobipay.kernel.errors import MobipayError
from mobipay.kernel.roles import Roster
from mobipay.ledger.chart import BANK_SETTLEMENT, SYSTEM_ACCOUNTS
from mobipay.ledger.model import Leg, Transfer
from mobipay.ledger.service import Ledger
from mobipay.ledger.uow import UnitOfWorkRunner
from mobipay.lottery.gateway_http import HttpLotteryCentre
from mobipay.lottery.service import LotteryService
from mobipay.merchants.reference_data import categories
from mobipay.merchants.service import MerchantService
from mobipay.merchants.signing import new_rsa_key
from mobipay.orders.service import OrderBook
from mobipay.platform.db import Database
from mobipay.wallet.reference_data import number_segments
from mobipay.wallet.service import WalletService
from mobipay.wallet.tables import users
from tests.conftest import LOTTERY_SECRET

OPS = "ops.li"
NUMBERS = [[3, 7, 12, 19, 27, 33], [9]]


@dataclass
class World:
    db: Database
    clock: ManualClock
    ledger: Ledger
    wallet: WalletService
    alliances: AllianceService
    lottery: LotteryService
    segments: Segments
    draws: Draws
    prizes: Prizes
    url: str


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 24, 12, 0, tzinfo=SHANGHAI))  # Tuesday noon: 双色球 draws tonight


@pytest.fixture
async def world(db: Database, ledger: Ledger, clock: ManualClock, lottery_url: str, tmp_path: Path
                ) -> AsyncIterator[World]:
    await ledger.open_accounts(list(SYSTEM_ACCOUNTS))
    uow = UnitOfWorkRunner(db, clock, ledger)
    wallet = WalletService(uow, number_segments(), b"t")
    merchants = MerchantService(uow, wallet, new_rsa_key()[0], categories(),
                                Roster(f"{OPS}:operations;driver:operations;sue:support"))
    alliances = AllianceService(uow, merchants)
    centre = HttpLotteryCentre(lottery_url, LOTTERY_SECRET.encode(), timeout_s=2.0)
    lottery = LotteryService(uow, wallet, OrderBook(uow, tmp_path), centre)
    segments = Segments(uow, wallet, alliances, ledger)
    yield World(db, clock, ledger, wallet, alliances, lottery, segments, Draws(uow, segments, lottery),
                Prizes(uow, tmp_path / "proofs", merchants.roster), lottery_url)
    await centre.close()


async def subscriber(w: World, msisdn: str, *, brand: str | None, city: str, level: int = 0,
                     paid: str | None = None) -> str:
    """A wallet with a home city, a brand from the CRM and (``paid``) a payment of that code."""
    user = await w.wallet.create_user(msisdn, actor=OPS, reason="t")
    async with w.db.begin() as conn:
        await conn.execute(update(users).where(users.c.id == user.id).values(home_city=city))
    if brand:
        await w.alliances.set_brand(msisdn, brand, level, actor=OPS)
    assert (await w.ledger.post(Transfer(f"in{msisdn}", (Leg.debit(BANK_SETTLEMENT, 10_000),
                                                         Leg.credit(user.account_code, 10_000)), "cash_in"))).ok
    if paid:
        assert (await w.ledger.post(Transfer(f"pay{msisdn}", (Leg.debit(user.account_code, 500),
                                                              Leg.credit(BANK_SETTLEMENT, 500)), paid))).ok
    return user.msisdn


async def town(w: World) -> list[str]:
    """Shaoyang's M-Zone students who paid this month (5 of them), and those who do not count."""
    members = [await subscriber(w, f"+86138{n:08d}", brand="mzone", city="邵阳", paid="p2p") for n in range(5)]
    await subscriber(w, "+8613900000001", brand="mzone", city="邵阳")  # paid nothing
    await subscriber(w, "+8613900000002", brand="mzone", city="邵阳", paid="cash_out")  # a cash-out is no payment
    await subscriber(w, "+8613900000003", brand="gotone", city="邵阳", level=3, paid="p2p")  # another brand
    await subscriber(w, "+8613900000004", brand="mzone", city="长沙", paid="p2p")  # another city
    await subscriber(w, "+8613900000005", brand=None, city="邵阳", paid="p2p")  # the CRM does not know the brand
    return members


async def refused(coro: Any) -> str:
    with pytest.raises(MobipayError) as info:
        await coro
    return info.value.code


async def sms(db: Database, template: str) -> list[dict[str, Any]]:
    async with db.begin() as conn:
        rows = await conn.execute(text("SELECT payload FROM outbox_messages WHERE topic = 'sms.send' ORDER BY id"))
        return [p for p in (json.loads(r[0]) for r in rows) if p["template"] == template]


MZONE_SHAOYANG = {"brands": ["mzone"], "cities": ["邵阳"], "active": "this_month"}


async def test_segments_select_by_brand_city_activity_and_alliance(world: World) -> None:
    w = world
    members = await town(w)
    seg = await w.segments.create("M-Zone 邵阳 paid this month", MZONE_SHAOYANG, actor=OPS)
    assert seg.last_count == 5 and seg.criteria.describe() == "brand mzone, city 邵阳, paid at least once this month"
    assert [m.msisdn for m in await w.segments.members(seg.id)] == members
    assert (await w.segments.count(seg.name)).last_count == 5
    everyone = await w.segments.create("all", {}, actor=OPS)
    assert everyone.last_count == 10
    # next month nobody has paid yet
    w.clock.set(datetime(2026, 12, 1, 0, 5, tzinfo=SHANGHAI))
    assert (await w.segments.count(seg.id)).last_count == 0
    w.clock.set(datetime(2026, 11, 24, 12, 0, tzinfo=SHANGHAI))
    await w.alliances.create_programme(
        code="vip", name="GoTone VIP", valid_from=datetime(2026, 1, 1, tzinfo=SHANGHAI),
        valid_until=datetime(2027, 1, 1, tzinfo=SHANGHAI), actor=OPS,
        rules=[Rule(Brand.GOTONE, 3, Kind.PERCENT, 500)])
    vip = await w.segments.create("vip", {"alliance": "vip"}, actor=OPS)
    assert [m.msisdn for m in await w.segments.members(vip.id)] == ["+8613900000003"]
    # refusals change nothing
    assert await refused(w.segments.create("x", {"brands": ["vodafone"]}, actor=OPS)) == "SEGMENT_INVALID"
    assert await refused(w.segments.create("x", {"tiers": [4]}, actor=OPS)) == "SEGMENT_INVALID"
    assert await refused(w.segments.create("x", {"active": "yesterday"}, actor=OPS)) == "SEGMENT_INVALID"
    assert await refused(w.segments.create("x", {"colour": "red"}, actor=OPS)) == "SEGMENT_INVALID"
    assert await refused(w.segments.create("x", {"alliance": "nope"}, actor=OPS)) == "ALLIANCE_NOT_FOUND"
    assert await refused(w.segments.create("all", {}, actor=OPS)) == "SEGMENT_NAME_TAKEN"
    assert await refused(w.segments.create("sue's", {}, actor="sue")) == "ROLE_REQUIRED"  # operations only
    assert await refused(w.segments.send_sms(vip.id, "hi", idempotency_key="s", actor="sue")) == "ROLE_REQUIRED"
    page, nxt = await w.segments.page(limit=10)
    assert len(page) == 3 and nxt is None


async def test_bulk_sms_to_a_segment_is_written_once(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    w = world
    members = await town(w)
    seg = await w.segments.create("mz", MZONE_SHAOYANG, actor=OPS)
    monkeypatch.setattr("mobipay.campaigns.segments.SMS_BATCH", 2)  # 5 members: batches of 2, 2 and 1
    sent = await w.segments.send_sms(seg.id, "M-Zone night at the campus: free concert", idempotency_key="k1",
                                     actor=OPS)
    assert (sent.recipients, sent.batches) == (5, 3)
    again = await w.segments.send_sms(seg.id, "M-Zone night at the campus: free concert", idempotency_key="k1",
                                      actor=OPS)
    assert (again.recipients, again.batches) == (5, 0)  # a retry writes nothing twice
    got = await sms(w.db, "campaign.message")
    assert sorted(p["to"] for p in got) == members and len(got) == 5
    invited = await w.segments.invite_to_red_envelopes(seg.id, campaign_id="cmp_1", merchant="校园超市",
                                                       name="满20减5", idempotency_key="e1", actor=OPS)
    assert invited.recipients == 5 and len(await sms(w.db, "campaign.red_envelope")) == 5
    assert await refused(w.segments.send_sms(seg.id, "", idempotency_key="k2", actor=OPS)) == "SEGMENT_INVALID"


async def stocked(w: World) -> None:
    await w.prizes.stock("ipad", "iPad 2", 1, actor=OPS)
    await w.prizes.stock("phone3g", "3G phone", 2, actor=OPS)
    await w.prizes.stock("bicycle", "Bicycle", 1, actor=OPS)


async def committed(w: World) -> tuple[Any, str]:
    await town(w)
    seg = await w.segments.create("mz", MZONE_SHAOYANG, actor=OPS)
    await stocked(w)
    _, issue, _, _ = w.lottery.on_sale("ssq")
    d = await w.draws.create(name="M-Zone prize draw", segment_id=seg.id, game="ssq", issue=issue,
                             prizes=["ipad", "phone3g", "phone3g"], idempotency_key="d1", actor=OPS, claim_days=10)
    return d, issue


async def import_numbers(w: World, issue: str) -> None:
    async with httpx.AsyncClient() as client:
        (await client.put(f"{w.url}/sim/draws/ssq/{issue}", json={"numbers": NUMBERS})).raise_for_status()
    _, draw_at = w.lottery.on_sale("ssq")[0].draw_of(issue, SHANGHAI)
    w.clock.set(draw_at + timedelta(minutes=30))
    await w.lottery.import_draw("ssq", issue)


async def free(w: World) -> dict[str, tuple[int, int]]:
    return {i.code: (i.on_hand, i.reserved) for i in await w.prizes.inventory()}


async def test_a_draw_committed_drawn_and_recomputed_by_the_verifier(world: World, tmp_path: Path) -> None:
    w = world
    d, issue = await committed(w)
    assert (d.state, d.entry_count, d.prizes) == ("committed", 5, ("ipad", "phone3g", "phone3g"))
    assert await free(w) == {"bicycle": (1, 0), "ipad": (1, 1), "phone3g": (2, 2)}
    again = await w.draws.create(name="M-Zone prize draw", segment_id="mz", game="SSQ", issue=issue,
                                 prizes=["ipad", "phone3g", "phone3g"], idempotency_key="d1", actor=OPS, claim_days=10)
    assert again.id == d.id and await free(w) == {"bicycle": (1, 0), "ipad": (1, 1), "phone3g": (2, 2)}
    assert await refused(w.draws.create(name="other", segment_id="mz", game="ssq", issue=issue, prizes=["ipad"],
                                        idempotency_key="d1", actor=OPS)) == "IDEMPOTENCY_CONFLICT"
    assert await refused(w.draws.create(name="more", segment_id="mz", game="ssq", issue=issue, prizes=["ipad"],
                                        idempotency_key="d2", actor=OPS)) == "PRIZE_OUT_OF_STOCK"
    assert await refused(w.draws.create(name="many", segment_id="mz", game="ssq", issue=issue,
                                        prizes=["bicycle"] * 6, idempotency_key="d3", actor=OPS)
                         ) == "CAMPAIGN_DRAW_TOO_FEW_ENTRIES"
    assert await refused(w.draws.create(name="past", segment_id="mz", game="ssq", issue="2026130", prizes=["bicycle"],
                                        idempotency_key="d4", actor=OPS)) == "CAMPAIGN_DRAW_RANDOMNESS_NOT_FUTURE"
    assert await refused(w.draws.create(name="none", segment_id="mz", game="ssq", issue=issue, prizes=["scooter"],
                                        idempotency_key="d5", actor=OPS)) == "PRIZE_ITEM_NOT_FOUND"
    assert await refused(w.draws.create(name="sue", segment_id="mz", game="ssq", issue=issue, prizes=["bicycle"],
                                        idempotency_key="d6", actor="sue")) == "ROLE_REQUIRED"
    assert await refused(w.prizes.stock("bicycle", "", 5, actor="sue")) == "ROLE_REQUIRED"
    assert await free(w) == {"bicycle": (1, 0), "ipad": (1, 1), "phone3g": (2, 2)}  # refusals reserved nothing
    # the commitment is published before the lottery draw: no reveal yet
    before = await w.draws.published(d.id)
    assert before.reveal is None and before.commitment["count"] == 5
    assert before.commitment["randomness"] == {"source": "lottery", "game": "ssq", "issue": issue,
                                               "draw_at": before.commitment["randomness"]["draw_at"]}
    assert before.commitment["list_hash"] == draw_model.list_hash(draw_model.entries_bytes(before.entries))
    assert await refused(w.draws.draw(d.id, actor=OPS)) == "CAMPAIGN_DRAW_RANDOMNESS_PENDING"

    await import_numbers(w, issue)
    assert await refused(w.draws.draw(d.id, actor="sue")) == "ROLE_REQUIRED"
    drawn = await w.draws.draw(d.id, actor=OPS)
    assert drawn.state == "drawn"
    assert (await w.draws.draw(d.id, actor=OPS)).drawn_at == drawn.drawn_at  # again: nothing new
    won = await w.prizes.awards(draw_id=d.id)
    assert len(won) == 3 and len({a.msisdn for a in won}) == 3 and all(a.state is AwardState.WON for a in won)
    told = await sms(w.db, "campaign.prize_won")
    assert sorted(p["to"] for p in told) == sorted(a.msisdn for a in won)

    out = tmp_path / "published"
    await w.draws.publish(d.id, out)
    verdict = draw_model.verify_dir(out)
    assert verdict.ok, verdict.problems
    by_prize = {a.prize_number: a for a in won}
    assert [(v.prize_number, v.entry) for v in verdict.winners] == [(k, by_prize[k].entry) for k in (1, 2, 3)]
    reveal = json.loads((out / draw_model.REVEAL_FILE).read_text())
    assert reveal["randomness"] == f"ssq:{issue}:03,07,12,19,27,33|09"
    for a in won:  # each winner finds their own entry code at their position
        assert await w.draws.entry_of(d.id, a.msisdn) == (next(v.position for v in verdict.winners
                                                              if v.prize_number == a.prize_number), a.entry)
    # a changed entry list is detected: an entrant dropped and another put in
    entries = (out / draw_model.ENTRIES_FILE).read_text().splitlines()
    entries[0] = draw_model.entry_code(b"an outsider", "+8613999999999")
    (out / draw_model.ENTRIES_FILE).write_text("".join(e + "\n" for e in entries))
    changed = draw_model.verify_dir(out)
    assert not changed.ok and any("the entry list was changed" in p for p in changed.problems)


async def test_delivery_to_the_door_redelivery_and_unclaimed(world: World) -> None:
    w = world
    d, issue = await committed(w)
    await import_numbers(w, issue)
    await w.draws.draw(d.id, actor=OPS)
    won = {a.prize_number: a for a in await w.prizes.awards(draw_id=d.id)}
    ipad, phone, phone2 = won[1], won[2], won[3]
    # no address yet: the run is refused and nothing changes
    assert await refused(w.prizes.plan_run(vehicle="湘E·12345", driver="Wang", day=date(2026, 11, 26),
                                           award_ids=[ipad.id], actor=OPS)) == "DELIVERY_INVALID"
    assert (await w.prizes.award(ipad.id)).state is AwardState.WON and await w.prizes.runs() == []
    for a in (ipad, phone):
        await w.prizes.set_address(a.id, address="邵阳学院 3栋 402", receiver="张三", actor=OPS)
    run = await w.prizes.plan_run(vehicle="湘E·12345", driver="Wang", day=date(2026, 11, 26),
                                  award_ids=[ipad.id, phone.id], actor=OPS)
    assert run.state is RunState.PLANNED and [s.award_id for s in run.stops] == [ipad.id, phone.id]
    first, second = run.stops
    assert await refused(w.prizes.failed(first.id, reason="x", actor=OPS)) == "DELIVERY_RUN_STATE"  # not out yet
    run = await w.prizes.depart(run.id, actor=OPS)
    assert run.state is RunState.OUT and (await w.prizes.award(ipad.id)).state is AwardState.OUT
    assert len(await sms(w.db, "campaign.delivery_out")) == 2
    # delivered with a signature: the file is kept under its SHA-256, the iPad leaves the stock
    assert await refused(w.prizes.delivered(first.id, receiver="张三", proof_kind="stamp", proof=b"x",
                                            actor="driver")) == "DELIVERY_PROOF_REQUIRED"
    signature = b"\x89PNG signature strokes"
    stop = await w.prizes.delivered(first.id, receiver="张三", proof_kind="signature", proof=signature,
                                    actor="driver")
    assert stop.state is StopState.DELIVERED and stop.proof_file
    assert stop.proof_sha256 == hashlib.sha256(signature).hexdigest()
    assert stop.proof_file.endswith(f"{stop.proof_sha256}.png")
    assert await asyncio.to_thread(Path(stop.proof_file).read_bytes) == signature
    assert (await w.prizes.award(ipad.id)).state is AwardState.DELIVERED
    assert (await free(w))["ipad"] == (0, 0)
    assert await refused(w.prizes.delivered(first.id, receiver="张三", proof_kind="photo", proof_sha256="a" * 64,
                                            actor="driver")) == "DELIVERY_RUN_STATE"  # a stop is done once
    # the phone: nobody home; the run closes
    failed = await w.prizes.failed(second.id, reason="nobody home", actor="driver")
    assert failed.state is StopState.FAILED and (await w.prizes.award(phone.id)).state is AwardState.FAILED
    assert (await w.prizes.close_run(run.id, actor=OPS)).state is RunState.CLOSED
    assert len(await sms(w.db, "campaign.delivery_failed")) == 1
    # re-delivery on a later run; delivered this time with a photo named only by its hash
    again = await w.prizes.plan_run(vehicle="湘E·12345", driver="Wang", day=date(2026, 11, 27),
                                    award_ids=[phone.id], actor=OPS)
    await w.prizes.depart(again.id, actor=OPS)
    done = await w.prizes.delivered(again.stops[0].id, receiver="李四 (roommate)", proof_kind="photo",
                                    proof_sha256="b" * 64, actor="driver")
    assert done.proof_file is None and done.proof_sha256 == "b" * 64
    assert (await w.prizes.award(phone.id)).attempts == 2
    assert (await free(w))["phone3g"] == (1, 1)  # one delivered, one still promised to prize 3
    # prize 3 never gets an address: unclaimed at its deadline, back in stock
    assert await w.prizes.expire_unclaimed() == 0
    w.clock.advance(timedelta(days=11).total_seconds())
    await w.prizes.set_address(phone2.id, address="邵阳学院 5栋 101", receiver="王五", actor=OPS)
    assert await refused(w.prizes.plan_run(vehicle="湘E·12345", driver="Wang", day=date(2026, 12, 6),
                                           award_ids=[phone2.id], actor=OPS)) == "AWARD_STATE"  # too late
    assert await w.prizes.expire_unclaimed() == 1
    assert (await w.prizes.award(phone2.id)).state is AwardState.UNCLAIMED
    assert (await free(w))["phone3g"] == (1, 0)
    assert await w.prizes.expire_unclaimed() == 0  # once
    assert len(await sms(w.db, "campaign.prize_unclaimed")) == 1
    assert await refused(w.prizes.set_address(phone2.id, address="somewhere far", receiver="x", actor=OPS)
                         ) == "AWARD_STATE"
    assert await w.prizes.counts() == {"delivered": 2, "unclaimed": 1}
    async with w.db.begin() as conn:  # every step audited
        n = (await conn.execute(text("SELECT count(*) FROM audit_log WHERE action LIKE 'campaigns.%'"))).scalar_one()
    assert n >= 12
    async with w.db.begin() as conn:
        assert (await conn.execute(select(func.sum(prize_items.c.reserved)))).scalar_one() == 0


async def test_concurrent_commits_reserve_stock_once(world: World) -> None:
    """The same request twice at once commits one draw; two draws for the last iPad: one."""
    w = world
    await town(w)
    seg = await w.segments.create("mz", MZONE_SHAOYANG, actor=OPS)
    await stocked(w)
    _, issue, _, _ = w.lottery.on_sale("ssq")

    def commit(key: str, name: str = "twin") -> Any:
        return w.draws.create(name=name, segment_id=seg.id, game="ssq", issue=issue, prizes=["ipad"],
                              idempotency_key=key, actor=OPS)

    a, b = await asyncio.gather(commit("same"), commit("same"))
    assert a.id == b.id and (await free(w))["ipad"] == (1, 1)
    await w.prizes.stock("ipad", "", 1, actor=OPS)
    results = await asyncio.gather(commit("x1", "one"), commit("x2", "two"), commit("x3", "three"),
                                   return_exceptions=True)
    codes = sorted(getattr(r, "code", "ok") for r in results)
    assert codes == ["PRIZE_OUT_OF_STOCK", "PRIZE_OUT_OF_STOCK", "ok"], results
    assert (await free(w))["ipad"] == (2, 2)
    draws, _ = await w.draws.page()
    assert len(draws) == 2
