"""Alliances and brand privileges: the use cases over the unit of work.

* **The operator** (role ``operations``, every change audited): programmes with their
  validity and privilege rules, member stores (a merchant's stores, all or by city), the
  subscribers' brands and VIP levels imported from the CRM's export.
* **Payments**: :meth:`AllianceService.apply` is the one entry every in-store payment path
  calls in its paying transaction (QR codes, NFC taps; the payment code through it later);
  :meth:`AllianceService.privilege` adapts it to ``MerchantService.pay(privilege=…)``, and
  :meth:`apply_many` is the same for a batch (offline NFC uploads: a few queries a batch).
  :meth:`quote` is the same choice without writing, for the scan's preview.
* **The directory**: member stores by city, category (MCC) and brand, with their privileges.

The rules are the pure model's (``instore/alliances.py``); the rows are ``instore/tables.py``'s.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import delete, distinct, exists, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from mobipay.instore import errors
from mobipay.instore.alliances import (
    Brand,
    Kind,
    Privilege,
    Programme,
    Rule,
    best,
    check_level,
    check_programme_fields,
    check_rules,
    describe,
    parse_brand,
)
from mobipay.instore.tables import (
    alliance_members,
    alliance_privileges,
    alliance_programmes,
    alliance_rules,
    subscriber_brands,
)
from mobipay.kernel.clock import as_utc
from mobipay.kernel.errors import MobipayError
from mobipay.kernel.ids import new_id
from mobipay.kernel.msisdn import normalize_msisdn
from mobipay.ledger.uow import Transaction, UnitOfWork, UnitOfWorkRunner
from mobipay.merchants.directory import StoreEntry, store_page
from mobipay.merchants.service import MerchantService, Trade
from mobipay.merchants.service import Privilege as PrivilegeHook
from mobipay.platform.db import dialect_insert

CHANNELS = ("qr", "paycode", "nfc")
ROLE = "operations"
_CHUNK = 2_000
_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Applied:
    """What :meth:`AllianceService.apply` decided for one payment (the receipt's figures)."""

    amount: int  # the price, fen
    discount: int  # fen off, funded by the merchant (0 without a privilege)
    points: int
    privilege: Privilege | None  # programme, brand, level and rule; None when none applied

    @property
    def paid(self) -> int:
        return self.amount - self.discount


@dataclass(frozen=True, slots=True)
class Payment:
    """One payment of :meth:`AllianceService.apply_many`'s batch (the arguments of :meth:`apply`
    that differ per payment); ``at`` the time it was made (an offline tap's), None for now."""

    payer_id: str
    msisdn: str
    amount: int
    trade_id: str
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Recorded:
    """A privileged payment's row: what its receipt shows."""

    trade_id: str
    programme_id: str
    programme_name: str
    channel: str
    brand: Brand
    level: int
    kind: Kind
    value: int
    text: str  # the rule in words, as it was then
    amount: int
    discount: int
    points: int


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    """A member store in one programme, with the programme's rules for the brand asked."""

    store_id: str
    store_name: str
    merchant_id: str
    merchant_name: str
    city: str
    mcc: str
    programme_id: str
    programme_name: str
    rules: tuple[Rule, ...]


@dataclass(frozen=True, slots=True)
class BrandImport:
    imported: int
    refused: tuple[tuple[int, str], ...]  # (line number, why)


@dataclass(frozen=True, slots=True)
class DemoAlliances:
    programmes: int
    memberships: int
    subscribers: int


def _programme(r: Any, rules: Sequence[Rule]) -> Programme:
    return Programme(r.id, r.code, r.name, r.description, as_utc(r.valid_from), as_utc(r.valid_until), r.state,
                     tuple(rules))


def _rule(r: Any) -> Rule:
    return Rule(Brand(r.brand), int(r.min_level), Kind(r.kind), int(r.value), int(r.min_spend), int(r.cap))


def _rule_values(programme_id: str, rules: Sequence[Rule]) -> list[dict[str, Any]]:
    return [{"programme_id": programme_id, "seq": i, "brand": r.brand.value, "min_level": r.min_level,
             "kind": r.kind.value, "value": r.value, "min_spend": r.min_spend, "cap": r.cap}
            for i, r in enumerate(rules)]


def _audit_rules(rules: Sequence[Rule]) -> list[dict[str, Any]]:
    return [{"brand": r.brand.value, "min_level": r.min_level, "kind": r.kind.value, "value": r.value,
             "min_spend": r.min_spend, "cap": r.cap} for r in rules]


async def _load(conn: AsyncConnection, query: Any) -> list[Programme]:
    rows = list(await conn.execute(query))
    if not rows:
        return []
    rules: dict[str, list[Rule]] = {r.id: [] for r in rows}
    for r in await conn.execute(select(alliance_rules).where(alliance_rules.c.programme_id.in_(list(rules)))
                                .order_by(alliance_rules.c.programme_id, alliance_rules.c.seq)):
        rules[r.programme_id].append(_rule(r))
    return [_programme(r, rules[r.id]) for r in rows]


def _hash(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16)


class AllianceService:
    def __init__(self, uow: UnitOfWorkRunner, merchants: MerchantService) -> None:
        self.uow = uow
        self.merchants = merchants
        self.roster = merchants.roster

    # ------------------------------------------------------------------ programmes (the operator)

    async def create_programme(self, *, code: str, name: str, valid_from: datetime, valid_until: datetime,
                               rules: Iterable[Rule] = (), description: str = "", actor: str) -> Programme:
        """A programme with its validity and rules (``ALLIANCE_EXISTS`` for a code taken)."""
        self.roster.require(actor, ROLE)
        code, name = check_programme_fields(code, name, valid_from, valid_until)
        checked = check_rules(rules)
        programme_id = new_id("aln")

        async def work(tx: UnitOfWork) -> Programme:
            taken = await tx.conn.execute(select(alliance_programmes.c.id).where(alliance_programmes.c.code == code))
            if taken.first() is not None:
                raise errors.AllianceExists(f"programme code {code} is taken", field="code")
            await tx.conn.execute(insert(alliance_programmes).values(
                id=programme_id, code=code, name=name, description=description.strip()[:500],
                valid_from=valid_from, valid_until=valid_until, state="active", created_at=tx.now, updated_at=tx.now))
            if checked:
                await tx.conn.execute(insert(alliance_rules), _rule_values(programme_id, checked))
            await tx.audit(actor=actor, action="instore.alliance.create", target=programme_id, reason=name,
                           after={"code": code, "valid_from": valid_from.isoformat(),
                                  "valid_until": valid_until.isoformat(), "rules": _audit_rules(checked)})
            return await self._one(tx.conn, programme_id)

        return await self.uow.run("alliance_create", work)

    async def set_rules(self, programme_id: str, rules: Iterable[Rule], *, actor: str) -> Programme:
        """Replace the programme's rules (payments from now on use the new ones)."""
        self.roster.require(actor, ROLE)
        checked = check_rules(rules)

        async def work(tx: UnitOfWork) -> Programme:
            before = await self._one(tx.conn, programme_id, for_update=True)
            await tx.conn.execute(delete(alliance_rules).where(alliance_rules.c.programme_id == before.id))
            if checked:
                await tx.conn.execute(insert(alliance_rules), _rule_values(before.id, checked))
            await tx.conn.execute(update(alliance_programmes).where(alliance_programmes.c.id == before.id)
                                  .values(updated_at=tx.now))
            await tx.audit(actor=actor, action="instore.alliance.rules", target=before.id, reason=before.name,
                           before={"rules": _audit_rules(before.rules)}, after={"rules": _audit_rules(checked)})
            return await self._one(tx.conn, before.id)

        return await self.uow.run("alliance_rules", work)

    async def update_programme(self, programme_id: str, *, actor: str, name: str | None = None,
                               description: str | None = None, valid_from: datetime | None = None,
                               valid_until: datetime | None = None, state: str | None = None) -> Programme:
        """Change a programme's name, description, validity or state (``ended`` stops it at once;
        ``active`` starts it again)."""
        self.roster.require(actor, ROLE)
        if state is not None and state not in ("active", "ended"):
            raise errors.AllianceInvalid("state is active or ended", field="state")

        async def work(tx: UnitOfWork) -> Programme:
            p = await self._one(tx.conn, programme_id, for_update=True)
            new_name = p.name if name is None else name
            start, end = valid_from or p.valid_from, valid_until or p.valid_until
            _, new_name = check_programme_fields(p.code, new_name, start, end)
            values = {"name": new_name, "valid_from": start, "valid_until": end, "state": state or p.state,
                      "description": p.description if description is None else description.strip()[:500]}
            await tx.conn.execute(update(alliance_programmes).where(alliance_programmes.c.id == p.id)
                                  .values(updated_at=tx.now, **values))
            await tx.audit(actor=actor, action="instore.alliance.update", target=p.id, reason=new_name,
                           before={"name": p.name, "valid_from": p.valid_from.isoformat(),
                                   "valid_until": p.valid_until.isoformat(), "state": p.state},
                           after={"name": new_name, "valid_from": start.isoformat(),
                                  "valid_until": end.isoformat(), "state": values["state"]})
            return await self._one(tx.conn, p.id)

        return await self.uow.run("alliance_update", work)

    async def programme(self, programme_id: str) -> Programme:
        """A programme by its id or its code."""
        async def work(tx: UnitOfWork) -> Programme:
            return await self._one(tx.conn, programme_id)

        return await self.uow.run("alliance", work)

    async def programmes(self) -> list[tuple[Programme, int]]:
        """Every programme, oldest first, with its number of member stores."""
        async def work(tx: UnitOfWork) -> list[tuple[Programme, int]]:
            found = await _load(tx.conn, select(alliance_programmes).order_by(alliance_programmes.c.id))
            pid = alliance_members.c.programme_id
            counted = await tx.conn.execute(select(pid, func.count()).group_by(pid))
            counts: dict[str, int] = dict(counted.tuples().all())
            return [(p, int(counts.get(p.id, 0))) for p in found]

        return await self.uow.run("alliances", work)

    async def _one(self, conn: AsyncConnection, key: str, *, for_update: bool = False) -> Programme:
        c = alliance_programmes.c
        query = select(alliance_programmes).where((c.id == key) | (c.code == key))
        found = await _load(conn, query.with_for_update() if for_update else query)
        if not found:
            raise errors.AllianceNotFound(f"no programme {key}", field="programme_id")
        return found[0]

    # ------------------------------------------------------------------ member stores

    async def enrol(self, programme_id: str, merchant_id: str, *, actor: str, store_ids: Sequence[str] = (),
                    city: str = "") -> int:
        """Enrol a payable merchant's stores (those named, or all, or all in ``city``): the
        number newly enrolled (a store enrolled already stays as it is)."""
        self.roster.require(actor, ROLE)
        programme = await self.programme(programme_id)
        entries = await store_page(self.uow, merchant_id=merchant_id, limit=20_000)
        if not entries:
            raise errors.AllianceInvalid("no payable merchant with stores has this id", field="merchant_id")
        if store_ids:
            unknown = set(store_ids) - {e.store_id for e in entries}
            if unknown:
                raise errors.AllianceInvalid(f"not a store of this merchant: {', '.join(sorted(unknown))}",
                                             field="store_id")
            entries = [e for e in entries if e.store_id in set(store_ids)]
        if city.strip():
            entries = [e for e in entries if e.city == city.strip()]
            if not entries:
                raise errors.AllianceInvalid(f"this merchant has no store in {city.strip()}", field="city")

        async def work(tx: UnitOfWork) -> int:
            added = await self._add_members(tx, programme.id, entries)
            await tx.audit(actor=actor, action="instore.alliance.enrol", target=programme.id, reason=merchant_id,
                           after={"merchant_id": merchant_id, "stores": [e.store_id for e in entries][:100],
                                  "added": added, "city": city.strip()})
            return added

        return await self.uow.run("alliance_enrol", work)

    async def withdraw(self, programme_id: str, merchant_id: str, *, actor: str, store_ids: Sequence[str] = ()) -> int:
        """Take a merchant's stores (those named, or all) out of a programme: how many left."""
        self.roster.require(actor, ROLE)
        programme = await self.programme(programme_id)

        async def work(tx: UnitOfWork) -> int:
            m = alliance_members.c
            query = delete(alliance_members).where(m.programme_id == programme.id, m.merchant_id == merchant_id)
            if store_ids:
                query = query.where(m.store_id.in_(list(store_ids)))
            gone = (await tx.conn.execute(query)).rowcount or 0
            await tx.audit(actor=actor, action="instore.alliance.withdraw", target=programme.id, reason=merchant_id,
                           before={"merchant_id": merchant_id, "stores": list(store_ids)[:100], "removed": gone})
            return int(gone)

        return await self.uow.run("alliance_withdraw", work)

    async def _add_members(self, tx: UnitOfWork, programme_id: str, entries: Sequence[StoreEntry]) -> int:
        rows = [{"programme_id": programme_id, "store_id": e.store_id, "merchant_id": e.merchant_id,
                 "merchant_name": e.merchant_name[:128], "store_name": e.store_name[:128], "city": e.city[:32],
                 "mcc": e.mcc, "joined_at": tx.now} for e in entries]
        added = 0
        for i in range(0, len(rows), _CHUNK):
            chunk = rows[i:i + _CHUNK]
            ins = dialect_insert(tx.conn.dialect.name, alliance_members).on_conflict_do_nothing()
            before = await self._member_count(tx.conn, programme_id)
            await tx.conn.execute(ins, chunk)
            added += await self._member_count(tx.conn, programme_id) - before
        return added

    async def _member_count(self, conn: AsyncConnection, programme_id: str) -> int:
        return int((await conn.execute(select(func.count()).select_from(alliance_members).where(
            alliance_members.c.programme_id == programme_id))).scalar_one())

    # ------------------------------------------------------------------ subscriber brands (the CRM's)

    async def set_brand(self, msisdn: str, brand: str, level: int, *, actor: str, source: str = "operator") -> None:
        """Record a subscriber's brand and VIP level (as the CRM says); audited."""
        self.roster.require(actor, ROLE)
        number, b = normalize_msisdn(msisdn), parse_brand(brand)
        lvl = check_level(b, level)

        async def work(tx: UnitOfWork) -> None:
            before = await self._brand(tx.conn, number)
            await self._put_brands(tx, [(number, b, lvl)], source)
            await tx.audit(actor=actor, action="instore.alliance.brand", target=number, reason=source,
                           before={"brand": before[0].value, "level": before[1]} if before else None,
                           after={"brand": b.value, "level": lvl})

        await self.uow.run("alliance_brand", work)

    async def import_brands(self, text: str, *, actor: str) -> BrandImport:
        """The CRM's export, CSV with a header ``msisdn,brand,level`` (brand ``gotone``,
        ``mzone`` or ``easyown``, or 全球通 / 动感地带 / 神州行; level 0-4, GoTone only): the
        good lines are recorded (replacing what was known), the others refused by line."""
        self.roster.require(actor, ROLE)
        names = {"全球通": "gotone", "动感地带": "mzone", "神州行": "easyown"}
        reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
        if reader.fieldnames is None or not {"msisdn", "brand", "level"} <= {f.strip() for f in reader.fieldnames}:
            raise errors.AllianceInvalid("the CRM file is CSV with a header msisdn,brand,level", field="file")
        good: dict[str, tuple[str, Brand, int]] = {}
        refused: list[tuple[int, str]] = []
        for n, row in enumerate(reader, start=2):
            row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
            try:
                number = normalize_msisdn(row["msisdn"])
                b = parse_brand(names.get(row["brand"], row["brand"]))
                raw = row["level"] or "0"
                if not (raw.isascii() and raw.isdigit() and len(raw) <= 2):
                    raise errors.AllianceInvalid("a level is 0 to 4", field="level")
                good[number] = (number, b, check_level(b, int(raw)))
            except MobipayError as exc:
                refused.append((n, f"{exc.code}: {exc.detail}"))

        async def work(tx: UnitOfWork) -> None:
            await self._put_brands(tx, list(good.values()), "crm")
            await tx.audit(actor=actor, action="instore.alliance.brand_import", target="crm", reason="CRM import",
                           after={"imported": len(good), "refused": len(refused)})

        await self.uow.run("alliance_brand_import", work)
        return BrandImport(len(good), tuple(refused))

    async def brand_of(self, msisdn: str) -> tuple[Brand, int] | None:
        async def work(tx: UnitOfWork) -> tuple[Brand, int] | None:
            return await self._brand(tx.conn, msisdn)

        return await self.uow.run("alliance_brand_of", work)

    async def brands_of(self, msisdns: Sequence[str]) -> dict[str, tuple[Brand, int]]:
        """The brand and VIP level of each number the CRM knows (campaign segments select by
        them); a number it does not know is absent."""

        async def work(tx: UnitOfWork) -> dict[str, tuple[Brand, int]]:
            out: dict[str, tuple[Brand, int]] = {}
            for i in range(0, len(msisdns), _CHUNK):
                out |= {r.msisdn: (Brand(r.brand), int(r.level)) for r in await tx.conn.execute(
                    select(subscriber_brands).where(subscriber_brands.c.msisdn.in_(list(msisdns[i:i + _CHUNK]))))}
            return out

        return await self.uow.run("alliance_brands_of", work)

    async def _brand(self, conn: AsyncConnection, msisdn: str) -> tuple[Brand, int] | None:
        r = (await conn.execute(select(subscriber_brands).where(subscriber_brands.c.msisdn == msisdn))).first()
        return (Brand(r.brand), int(r.level)) if r is not None else None

    async def _put_brands(self, tx: UnitOfWork, rows: Sequence[tuple[str, Brand, int]], source: str) -> None:
        """Upsert in chunks: delete what is there, insert anew (the same on both databases)."""
        for i in range(0, len(rows), _CHUNK):
            chunk = rows[i:i + _CHUNK]
            numbers = [r[0] for r in chunk]
            await tx.conn.execute(delete(subscriber_brands).where(subscriber_brands.c.msisdn.in_(numbers)))
            await tx.conn.execute(insert(subscriber_brands), [
                {"msisdn": m, "brand": b.value, "level": lvl, "source": source, "updated_at": tx.now}
                for m, b, lvl in chunk])

    # ------------------------------------------------------------------ at payment

    async def apply(self, tx: Transaction, *, payer_id: str, msisdn: str, merchant_id: str, store_id: str | None,
                    amount: int, trade_id: str, channel: str) -> Applied:
        """THE entry every in-store payment path calls, in its paying transaction, before it
        posts: the best privilege for this payer at this store (``instore/alliances.py``'s rule
        of choice), recorded once per trade with its points (``instore_alliance_privileges``).

        Contract for callers (QR payments, the payment code, NFC taps):

        * ``tx``: the transaction that posts the payment; call it before posting and post
          ``Applied.paid`` from the payer (``amount - discount``) and credit the merchant the
          same: the merchant funds the discount, so it receives and is settled that much less.
          Record the discount on the trade (``privilege_amount``): ``MerchantService.pay`` does
          all this when given ``privilege=`` :meth:`privilege` (the simplest way).
        * ``amount``: the fen left to pay (after any red envelope), > 0; ``store_id`` the store
          the payment is taken in (a payment without a store gets no privilege); ``trade_id``
          unique per payment (the row's key: a second call for the same trade returns the first
          decision, never a second privilege); ``channel`` ``qr``, ``paycode`` or ``nfc``.
        * Returns :class:`Applied`: ``discount`` is 0 (and ``privilege`` None) when nothing
          applies; otherwise 1 <= paid. It never refuses a payment, and raising in the caller
          after it rolls its row back with the payment.
        """
        if channel not in CHANNELS:
            raise ValueError(f"channel is one of {CHANNELS}")
        conn = cast(UnitOfWork, tx).conn
        known = (await conn.execute(select(alliance_privileges).where(alliance_privileges.c.trade_id == trade_id)))
        row = known.first()
        if row is not None:  # decided before for this trade: the same figures, never a second privilege
            return Applied(int(row.amount), int(row.discount), int(row.points), None)
        found = await self._choose(conn, msisdn, merchant_id, store_id, amount, tx.now)
        if found is None:
            return Applied(amount, 0, 0, None)
        await conn.execute(insert(alliance_privileges).values(
            trade_id=trade_id, programme_id=found.programme_id, programme_name=found.programme_name,
            payer_id=payer_id, merchant_id=merchant_id, store_id=store_id or "", channel=channel,
            brand=found.brand.value, level=found.level, kind=found.rule.kind.value, rule_value=found.rule.value,
            rule_text=describe(found.rule)[:64], amount=amount, discount=found.discount, points=found.points,
            created_at=tx.now))
        return Applied(amount, found.discount, found.points, found)

    def privilege(self, *, payer_id: str, msisdn: str, channel: str) -> PrivilegeHook:
        """:meth:`apply` as ``MerchantService.pay(privilege=…)`` takes it: the merchant and store
        are the trade's, the amount what is left after any red envelope."""

        async def hook(tx: Transaction, trade: Trade, amount: int) -> int:
            applied = await self.apply(tx, payer_id=payer_id, msisdn=msisdn, merchant_id=trade.merchant_id,
                                       store_id=trade.store_id, amount=amount, trade_id=trade.id, channel=channel)
            return applied.discount

        return hook

    async def apply_many(self, tx: Transaction, payments: Sequence[Payment], *, merchant_id: str,
                         store_id: str | None, channel: str, fresh: bool = False) -> list[Applied]:
        """:meth:`apply` for many payments at one store in one transaction (an upload of offline
        NFC taps), with a handful of queries whatever their number: the trades decided before,
        the store's programmes and the payers' brands are read once, each payment's privilege
        is the pure model's (:func:`best`, at ``Payment.at``, else now), and the new rows are
        one multi-row insert. The same contract as :meth:`apply` (never refuses; once per
        trade: a trade decided before answers its first figures), in order. ``fresh``: the
        caller made every trade id just now (none can have been decided before), so the
        lookup of earlier decisions is skipped (an upload's chunk of thousands of new taps)."""
        if channel not in CHANNELS:
            raise ValueError(f"channel is one of {CHANNELS}")
        out = [Applied(p.amount, 0, 0, None) for p in payments]
        if not payments:
            return out
        conn = cast(UnitOfWork, tx).conn
        ids = sorted({p.trade_id for p in payments})
        known: dict[str, Any] = {}
        for i in range(0, 0 if fresh else len(ids), _CHUNK):
            known |= {r.trade_id: r for r in await conn.execute(select(alliance_privileges).where(
                alliance_privileges.c.trade_id.in_(ids[i:i + _CHUNK])))}
        programmes = await self._of_store(conn, merchant_id, store_id) if store_id else []
        numbers = sorted({p.msisdn for p in payments if p.trade_id not in known}) if programmes else []
        brands: dict[str, tuple[Brand, int]] = {}
        for i in range(0, len(numbers), _CHUNK):
            brands |= {r.msisdn: (Brand(r.brand), int(r.level)) for r in await conn.execute(
                select(subscriber_brands).where(subscriber_brands.c.msisdn.in_(numbers[i:i + _CHUNK])))}
        rows: dict[str, dict[str, Any]] = {}
        for n, p in enumerate(payments):
            row = known.get(p.trade_id)
            if row is not None:  # decided before for this trade: the same figures
                out[n] = Applied(int(row.amount), int(row.discount), int(row.points), None)
                continue
            if p.trade_id in rows:  # the same trade twice in the batch: one privilege
                first = rows[p.trade_id]
                out[n] = Applied(int(first["amount"]), int(first["discount"]), int(first["points"]), None)
                continue
            mine = brands.get(p.msisdn)
            if mine is None or p.amount < 2:
                continue
            found = best(programmes, mine[0], mine[1], p.amount, p.at or tx.now)
            if found is None:
                continue
            rows[p.trade_id] = {
                "trade_id": p.trade_id, "programme_id": found.programme_id, "programme_name": found.programme_name,
                "payer_id": p.payer_id, "merchant_id": merchant_id, "store_id": store_id or "", "channel": channel,
                "brand": found.brand.value, "level": found.level, "kind": found.rule.kind.value,
                "rule_value": found.rule.value, "rule_text": describe(found.rule)[:64], "amount": p.amount,
                "discount": found.discount, "points": found.points, "created_at": tx.now}
            out[n] = Applied(p.amount, found.discount, found.points, found)
        values = list(rows.values())
        for i in range(0, len(values), _CHUNK):
            await conn.execute(insert(alliance_privileges), values[i:i + _CHUNK])
        return out

    async def cancel(self, tx: Transaction, trade_ids: Sequence[str]) -> None:
        """Forget the privileges (and points) of payments decided but never made: an uploaded
        NFC tap its ledger batch refused after the check step had applied its privilege."""
        ids = sorted(set(trade_ids))
        conn = cast(UnitOfWork, tx).conn
        for i in range(0, len(ids), _CHUNK):
            await conn.execute(delete(alliance_privileges).where(alliance_privileges.c.trade_id.in_(ids[i:i + _CHUNK])))

    async def quote(self, msisdn: str, merchant_id: str, store_id: str | None, amount: int) -> Privilege | None:
        """What :meth:`apply` would give now, writing nothing (the scan's preview)."""
        async def work(tx: UnitOfWork) -> Privilege | None:
            return await self._choose(tx.conn, msisdn, merchant_id, store_id, amount, tx.now)

        return await self.uow.run("alliance_quote", work)

    async def offers(self, msisdn: str, merchant_id: str, store_id: str | None) -> list[tuple[Programme, Rule]]:
        """The rules this payer may get at this store now (a static code's scan: no amount yet)."""
        async def work(tx: UnitOfWork) -> list[tuple[Programme, Rule]]:
            mine = await self._brand(tx.conn, msisdn)
            if mine is None or not store_id:
                return []
            return [(p, r) for p in await self._of_store(tx.conn, merchant_id, store_id) if p.valid_at(tx.now)
                    for r in p.rules if r.brand is mine[0] and r.min_level <= mine[1]]

        return await self.uow.run("alliance_offers", work)

    async def applied(self, trade_id: str) -> Recorded | None:
        """A payment's privilege as recorded (the receipt), or None."""
        async def work(tx: UnitOfWork) -> Any:
            return (await tx.conn.execute(select(alliance_privileges).where(
                alliance_privileges.c.trade_id == trade_id))).first()

        r = await self.uow.run("alliance_applied", work)
        if r is None:
            return None
        return Recorded(r.trade_id, r.programme_id, r.programme_name, r.channel, Brand(r.brand), int(r.level),
                        Kind(r.kind), int(r.rule_value), r.rule_text, int(r.amount), int(r.discount), int(r.points))

    async def points(self, payer_id: str) -> int:
        """The payer's alliance points: the sum over their privileged payments."""
        async def work(tx: UnitOfWork) -> int:
            return int((await tx.conn.execute(select(func.coalesce(func.sum(alliance_privileges.c.points), 0))
                                              .where(alliance_privileges.c.payer_id == payer_id))).scalar_one())

        return await self.uow.run("alliance_points", work)

    async def _choose(self, conn: AsyncConnection, msisdn: str, merchant_id: str, store_id: str | None, amount: int,
                      at: datetime) -> Privilege | None:
        if not store_id or amount < 2:
            return None
        mine = await self._brand(conn, msisdn)
        if mine is None:
            return None
        return best(await self._of_store(conn, merchant_id, store_id), mine[0], mine[1], amount, at)

    async def _of_store(self, conn: AsyncConnection, merchant_id: str, store_id: str) -> list[Programme]:
        m = alliance_members.c
        ids = select(m.programme_id).where(m.store_id == store_id, m.merchant_id == merchant_id)
        return await _load(conn, select(alliance_programmes).where(alliance_programmes.c.id.in_(ids)))

    # ------------------------------------------------------------------ the directory

    async def directory(self, *, city: str = "", mcc: str = "", brand: Brand | None = None, level: int | None = None,
                        limit: int = 50, offset: int = 0) -> tuple[list[DirectoryEntry], bool]:
        """Member stores of the programmes valid now (city, then merchant, then store), with
        the programme's rules for ``brand`` (every brand when None) up to ``level`` (any when
        None); a store is listed only if a rule is left. Returns (a page, whether more follow)."""
        limit, offset = max(1, min(limit, 200)), max(0, offset)

        async def work(tx: UnitOfWork) -> tuple[list[DirectoryEntry], bool]:
            m, p, r = alliance_members.c, alliance_programmes.c, alliance_rules.c
            wanted = [r.programme_id == m.programme_id]
            if brand is not None:
                wanted.append(r.brand == brand.value)
            if level is not None:
                wanted.append(r.min_level <= level)
            query = (select(alliance_members, p.name.label("programme_name")).join(
                alliance_programmes, p.id == m.programme_id).where(
                p.state == "active", p.valid_from <= tx.now, p.valid_until > tx.now, exists().where(*wanted)))
            if city:
                query = query.where(m.city == city)
            if mcc:
                query = query.where(m.mcc == mcc)
            rows = list(await tx.conn.execute(query.order_by(m.city, m.merchant_name, m.store_id, m.programme_id)
                                              .limit(limit + 1).offset(offset)))
            more, rows = len(rows) > limit, rows[:limit]
            rules: dict[str, list[Rule]] = {row.programme_id: [] for row in rows}
            if rules:
                for x in await tx.conn.execute(select(alliance_rules).where(r.programme_id.in_(list(rules)))
                                               .order_by(r.programme_id, r.seq)):
                    rule = _rule(x)
                    if (brand is None or rule.brand is brand) and (level is None or rule.min_level <= level):
                        rules[x.programme_id].append(rule)
            return [DirectoryEntry(x.store_id, x.store_name, x.merchant_id, x.merchant_name, x.city, x.mcc,
                                   x.programme_id, x.programme_name, tuple(rules[x.programme_id])) for x in rows], more

        return await self.uow.run("alliance_directory", work)

    async def cities(self) -> list[str]:
        """The cities with member stores (the directory's filter)."""
        async def work(tx: UnitOfWork) -> list[str]:
            c = alliance_members.c.city
            return [str(x) for x in (await tx.conn.execute(select(distinct(c)).where(c != "").order_by(c))).scalars()]

        return await self.uow.run("alliance_cities", work)

    async def categories(self) -> list[tuple[str, str]]:
        """The categories (MCC, description) of member stores."""
        async def work(tx: UnitOfWork) -> list[str]:
            c = alliance_members.c.mcc
            return [str(x) for x in (await tx.conn.execute(select(distinct(c)).order_by(c))).scalars()]

        codes = await self.uow.run("alliance_categories", work)
        known = self.merchants.categories
        return [(code, known[code].description if code in known else code) for code in codes]

    # ------------------------------------------------------------------ demo data

    async def load_demo(self, msisdns: Iterable[str], *, actor: str = "demo") -> DemoAlliances:
        """The operator's four alliances (全球通 VIP, 动感地带 campus, 12580, remote and offline
        payment), valid a year from now, their member stores chosen from every store of a
        payable merchant (a hash of the store id: about half in 12580, a third in GoTone VIP, a
        quarter in M-Zone campus, all in the payment alliance), and brands for ``msisdns`` (a
        hash of the number: 40 % GoTone with VIP levels, 35 % M-Zone, 25 % Easy-own). Bulk
        inserts; safe to run again (what exists is kept). Not role-checked: demo data."""
        now = self.uow.clock.now()
        start, end = now.replace(microsecond=0) - _DAY, now.replace(microsecond=0) + 365 * _DAY
        made: dict[str, str] = {}
        for code, name, description, rules in DEMO_PROGRAMMES:
            async def make(tx: UnitOfWork, code: str = code, name: str = name, description: str = description,
                           rules: tuple[Rule, ...] = rules) -> str:
                found = (await tx.conn.execute(select(alliance_programmes.c.id).where(
                    alliance_programmes.c.code == code))).scalar_one_or_none()
                if found is not None:
                    return str(found)
                pid = new_id("aln")
                await tx.conn.execute(insert(alliance_programmes).values(
                    id=pid, code=code, name=name, description=description, valid_from=start, valid_until=end,
                    state="active", created_at=tx.now, updated_at=tx.now))
                await tx.conn.execute(insert(alliance_rules), _rule_values(pid, rules))
                await tx.audit(actor=actor, action="instore.alliance.create", target=pid, reason="demo data",
                               after={"code": code, "rules": _audit_rules(rules)})
                return pid

            made[code] = await self.uow.run("alliance_demo", make)
        members, after = 0, ""
        while True:
            page = await store_page(self.uow, after=after, limit=10_000)
            if not page:
                break
            after = page[-1].store_id
            picks: dict[str, list[StoreEntry]] = {code: [] for code in made}
            for e in page:
                h = _hash(e.store_id)
                picks["pay_alliance"].append(e)
                if h % 2 == 0:
                    picks["alliance_12580"].append(e)
                if h % 3 == 0:
                    picks["gotone_vip"].append(e)
                if h % 4 == 1:
                    picks["mzone_campus"].append(e)

            async def enrol(tx: UnitOfWork, picks: dict[str, list[StoreEntry]] = picks) -> int:
                return sum([await self._add_members(tx, made[code], entries) for code, entries in picks.items()])

            members += await self.uow.run("alliance_demo_members", enrol)
        brands = [(m, *_demo_brand(m)) for m in dict.fromkeys(normalize_msisdn(x) for x in msisdns)]

        async def subscribers(tx: UnitOfWork) -> None:
            await self._put_brands(tx, brands, "demo")

        await self.uow.run("alliance_demo_brands", subscribers)
        return DemoAlliances(len(made), members, len(brands))


def _demo_brand(msisdn: str) -> tuple[Brand, int]:
    h = _hash(msisdn)
    if h % 100 < 40:
        return Brand.GOTONE, (0, 0, 0, 0, 1, 1, 2, 2, 3, 4)[(h // 100) % 10]
    return (Brand.MZONE, 0) if h % 100 < 75 else (Brand.EASYOWN, 0)


_G, _M, _E = Brand.GOTONE, Brand.MZONE, Brand.EASYOWN
_P, _F, _X = Kind.PERCENT, Kind.FIXED, Kind.POINTS
#: The four alliances the operator merged (code, name, description, rules).
DEMO_PROGRAMMES: tuple[tuple[str, str, str, tuple[Rule, ...]], ...] = (
    ("gotone_vip", "全球通VIP联盟", "全球通客户专享：银卡95折、金卡92折、白金卡9折、钻石卡88折；普通客户双倍积分",
     (Rule(_G, 1, _P, 500, 0, 2_000), Rule(_G, 2, _P, 800, 0, 5_000), Rule(_G, 3, _P, 1_000, 0, 10_000),
      Rule(_G, 4, _P, 1_200, 0, 20_000), Rule(_G, 0, _X, 20))),
    ("mzone_campus", "动感地带校园联盟", "动感地带客户：满10元88折（最高优惠10元），满20元立减3元",
     (Rule(_M, 0, _P, 1_200, 1_000, 1_000), Rule(_M, 0, _F, 300, 2_000), Rule(_E, 0, _X, 15))),
    ("alliance_12580", "12580联盟", "12580商户：全球通满50元减5元，动感地带、神州行满30元减3元、减2元",
     (Rule(_G, 0, _F, 500, 5_000), Rule(_M, 0, _F, 300, 3_000), Rule(_E, 0, _F, 200, 3_000))),
    ("pay_alliance", "远程与线下支付联盟", "手机支付联盟商户：全球通3倍积分、其他品牌2倍积分，全球通金卡及以上97折",
     (Rule(_G, 0, _X, 30), Rule(_M, 0, _X, 20), Rule(_E, 0, _X, 20), Rule(_G, 2, _P, 300, 0, 3_000))),
)
