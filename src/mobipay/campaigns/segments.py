"""Segments: saved queries over subscribers (brand, city, tier, activity, alliance), their
members and counts, and what they are for: a prize draw's entries, a red-envelope invitation
and a bulk SMS through the outbox.

Why the query is evaluated here and not in one SQL statement: its parts belong to three
contexts (the wallet's subscribers, the CRM's brands kept by the in-store alliances, the
ledger's payments), each reached through its service, so the members are read page by page
from the wallet and narrowed by the others in chunks. The result is ordered by number, so
the same query on the same data gives the same list (a draw freezes exactly that list).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update

from mobipay.campaigns import errors
from mobipay.campaigns.segment_model import NOT_PAYMENTS, Criteria, activity_window, admits, check_name, parse_criteria
from mobipay.campaigns.tables import segments, sms_batches
from mobipay.instore.alliance_service import AllianceService
from mobipay.kernel.clock import as_utc
from mobipay.kernel.events import SmsRequested
from mobipay.kernel.ids import check_idempotency_key, new_id
from mobipay.ledger.service import Ledger
from mobipay.ledger.uow import UnitOfWork, UnitOfWorkRunner
from mobipay.wallet.service import WalletService

ROLE = "operations"
Progress = Callable[[int, int], None]  # (members done, members in all): the CLI's progress line
_PAGE = 5_000
SMS_BATCH = 500  # messages written to the outbox per transaction
MAX_SMS_TEXT = 300


@dataclass(frozen=True, slots=True)
class Segment:
    id: str
    name: str
    criteria: Criteria
    last_count: int | None
    counted_at: datetime | None
    created_by: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Member:
    msisdn: str
    user_id: str
    account_code: str


@dataclass(frozen=True, slots=True)
class SmsSent:
    segment_id: str
    recipients: int
    batches: int


def _segment(r: Any) -> Segment:
    return Segment(r.id, r.name, parse_criteria(json.loads(r.criteria)), r.last_count,
                   as_utc(r.counted_at) if r.counted_at else None, r.created_by, as_utc(r.created_at))


class Segments:
    """Segment use cases; operator actions are audited."""

    def __init__(self, uow: UnitOfWorkRunner, wallet: WalletService, alliances: AllianceService,
                 ledger: Ledger) -> None:
        self.uow = uow
        self.wallet = wallet
        self.alliances = alliances
        self.ledger = ledger
        self.roster = alliances.roster  # the operators' roles (the console vouches for its own)

    async def create(self, name: object, criteria: dict[str, Any] | None, *, actor: str) -> Segment:
        """Save a segment (its name unique); counted at once."""
        self.roster.require(actor, ROLE)
        title, crit = check_name(name), parse_criteria(criteria)
        if crit.alliance:
            await self.alliances.programme(crit.alliance)  # ALLIANCE_NOT_FOUND before anything is saved
        count = len(await self.evaluate(crit))

        async def work(tx: UnitOfWork) -> Segment:
            taken = (await tx.conn.execute(select(segments.c.id).where(segments.c.name == title))).first()
            if taken is not None:
                raise errors.SegmentNameTaken(f"a segment named {title!r} exists ({taken[0]})", field="name")
            sid = new_id("seg")
            await tx.conn.execute(insert(segments).values(
                id=sid, name=title, criteria=crit.to_json(), last_count=count, counted_at=tx.now, created_by=actor,
                created_at=tx.now, updated_at=tx.now))
            await tx.audit(actor=actor, action="campaigns.segment.create", target=sid, reason=title,
                           before=None, after={"name": title, "criteria": crit.to_dict(), "count": count})
            return await self._get(tx, sid)

        return await self.uow.run("segment_create", work)

    async def get(self, segment_id: str) -> Segment:
        async def work(tx: UnitOfWork) -> Segment:
            return await self._get(tx, segment_id)

        return await self.uow.run("segment_get", work)

    async def _get(self, tx: UnitOfWork, key: str) -> Segment:
        row = (await tx.conn.execute(select(segments).where((segments.c.id == key) | (segments.c.name == key)))).first()
        if row is None:
            raise errors.SegmentNotFound(f"no segment {key!r}", field="segment_id")
        return _segment(row)

    async def page(self, *, after: str = "", limit: int = 50) -> tuple[list[Segment], str | None]:
        """Segments by id (keyset: ``after`` the last id of the page before)."""
        async def work(tx: UnitOfWork) -> list[Segment]:
            rows = await tx.conn.execute(select(segments).where(segments.c.id > after).order_by(segments.c.id)
                                         .limit(limit + 1))
            return [_segment(r) for r in rows]

        found = await self.uow.run("segment_list", work)
        return found[:limit], found[limit - 1].id if len(found) > limit else None

    async def count(self, segment_id: str) -> Segment:
        """Count a segment's members now, and keep the count with its time."""
        seg = await self.get(segment_id)
        n = len(await self.evaluate(seg.criteria))

        async def work(tx: UnitOfWork) -> Segment:
            await tx.conn.execute(update(segments).where(segments.c.id == seg.id).values(
                last_count=n, counted_at=tx.now, updated_at=tx.now))
            return await self._get(tx, seg.id)

        return await self.uow.run("segment_count", work)

    async def members(self, segment_id: str) -> list[Member]:
        return await self.evaluate((await self.get(segment_id)).criteria)

    async def contains(self, segment_id: str, msisdn: str) -> bool:
        """Whether a number is a member now (a red-envelope or offer page can ask)."""
        return any(m.msisdn == msisdn for m in await self.members(segment_id))

    async def evaluate(self, crit: Criteria) -> list[Member]:
        """The subscribers the criteria select now, ordered by number."""
        rules: tuple[tuple[str, int], ...] = ()
        if crit.alliance:
            programme = await self.alliances.programme(crit.alliance)
            rules = tuple((r.brand.value, r.min_level) for r in programme.rules)
        since, until = activity_window(crit.active, self.uow.clock.now()) if crit.active else (None, None)
        out: list[Member] = []
        after = ""
        while True:
            page = await self.wallet.subscribers(after=after, limit=_PAGE, cities=crit.cities, tiers=crit.tiers)
            if not page:
                break
            after = page[-1][0].msisdn
            users = [u for u, _ in page]
            if crit.needs_brand:
                brands = await self.alliances.brands_of([u.msisdn for u in users])
                users = [u for u in users if _brand_ok(crit, rules, brands.get(u.msisdn))]
            if since is not None and until is not None and users:
                paid = await self.ledger.debited_between([u.account_code for u in users], since, until,
                                                         excluding=NOT_PAYMENTS)
                users = [u for u in users if u.account_code in paid]
            out.extend(Member(u.msisdn, u.id, u.account_code) for u in users)
            if len(page) < _PAGE:
                break
        return out

    async def send_sms(self, segment_id: str, text: object, *, idempotency_key: str, actor: str,
                       progress: Progress | None = None) -> SmsSent:
        """One SMS to every member through the outbox, written in batches of ``SMS_BATCH``
        (so a million members are not one transaction). Each message's key derives from the
        request key and the number, and a batch already written is skipped: a retry with
        the same key after a crash sends the rest, never a second copy."""
        self.roster.require(actor, ROLE)
        check_idempotency_key(idempotency_key)
        if not isinstance(text, str) or not 1 <= len(text.strip()) <= MAX_SMS_TEXT:
            raise errors.SegmentInvalid(f"the message is 1 to {MAX_SMS_TEXT} characters", field="text")
        return await self._broadcast(segment_id, "campaign.message", {"text": text.strip()},
                                     f"sms:{idempotency_key}", actor, progress)

    async def invite_to_red_envelopes(self, segment_id: str, *, campaign_id: str, merchant: str, name: str,
                                      idempotency_key: str, actor: str, progress: Progress | None = None) -> SmsSent:
        """Target a merchant's red-envelope campaign at a segment: each member is told by SMS
        where to claim it (the envelope zone of the wallet), in batches, once per key."""
        self.roster.require(actor, ROLE)
        check_idempotency_key(idempotency_key)
        for value, field in ((campaign_id, "campaign_id"), (merchant, "merchant"), (name, "name")):
            if not isinstance(value, str) or not 1 <= len(value.strip()) <= 64:
                raise errors.SegmentInvalid(f"{field} is 1 to 64 characters", field=field)
        return await self._broadcast(segment_id, "campaign.red_envelope",
                                     {"campaign": campaign_id, "merchant": merchant.strip(), "name": name.strip()},
                                     f"envelope:{idempotency_key}", actor, progress)

    async def _broadcast(self, segment_id: str, template: str, params: dict[str, Any], key: str,
                         actor: str, progress: Progress | None) -> SmsSent:
        seg = await self.get(segment_id)
        members = await self.evaluate(seg.criteria)
        batches = 0
        for i in range(0, len(members), SMS_BATCH):
            part = members[i:i + SMS_BATCH]
            marker = f"campaign:{seg.id}:{key}:{i // SMS_BATCH}"

            async def work(tx: UnitOfWork, part: Sequence[Member] = part, marker: str = marker) -> bool:
                done = (await tx.conn.execute(select(sms_batches.c.key).where(sms_batches.c.key == marker))).first()
                if done is not None:
                    return False
                for m in part:
                    await tx.emit(SmsRequested(key=f"{marker}:{m.msisdn}", to=m.msisdn, template=template,
                                               params=params))
                await tx.conn.execute(insert(sms_batches).values(key=marker, segment_id=seg.id, template=template,
                                                                 recipients=len(part), written_at=tx.now))
                return True

            batches += await self.uow.run("segment_sms_batch", work)
            if progress is not None:
                progress(min(i + SMS_BATCH, len(members)), len(members))
        await self._audit(actor, f"campaigns.segment.{template.split('.')[1]}", seg.id, key, len(members))
        return SmsSent(seg.id, len(members), batches)

    async def _audit(self, actor: str, action: str, target: str, reason: str, recipients: int) -> None:
        async def work(tx: UnitOfWork) -> None:
            await tx.audit(actor=actor, action=action, target=target, reason=reason, before=None,
                           after={"recipients": recipients})

        await self.uow.run("segment_audit", work)


def _brand_ok(crit: Criteria, rules: tuple[tuple[str, int], ...], found: tuple[Any, int] | None) -> bool:
    if found is None:
        return False
    brand, level = found[0].value, found[1]
    if crit.brands and brand not in crit.brands:
        return False
    if level < crit.min_level:
        return False
    return not crit.alliance or admits(rules, brand, level)
