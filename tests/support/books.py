"""The books after a reliability run, held to what the clients were told.

* Every acknowledged request is in the ledger exactly once, and nothing else is: each
  acknowledged transfer key is one ``p2p`` transfer (every 2xx answer for the key named
  it), each paid trade one ``merchant.payment``, each placed order one order with one hold
  and one resolution; refused or unanswered requests left nothing.
* Nothing is half-done: no open hold, no pending partner order, every order settled the
  same way at the partner (its simulator) as here.
* Every SMS of the outbox reached a handset through Kannel and every merchant
  notification reached the merchant's site; duplicates only of the documented kinds
  (docs/sms.md: an SMS re-sent after 30 s without a delivery report, ``sms_outbound.attempts
  > 1``; docs/merchant-signatures.md: the same ``notify_id`` again, at most one per crash
  of the sender).
* ``ledger verify`` is clean, and every subscriber's balance moved by exactly what
  succeeded for them.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import text

from mobipay.channels.sms.kannel import fit
from mobipay.channels.sms.texts import render
from mobipay.kernel.clock import SystemClock
from mobipay.ledger.service import Ledger
from mobipay.merchants.signing import verify_rsa2
from mobipay.platform.db import Database
from tests.support.load import FUNDING, Load, Merchant, Phone
from tests.support.stack import Stack


@dataclass
class Figures:
    """What a run did and what it left: the RESULT line."""

    tried: int = 0
    acknowledged: int = 0
    lost: int = 0
    duplicated: int = 0
    five_xx: int = 0
    retries: int = 0
    requests: int = 0
    transport_errors: int = 0
    sms: int = 0
    sms_commands: int = 0
    sms_duplicates: int = 0
    notifications: int = 0
    notify_duplicates: int = 0
    answered_pending: int = 0  # orders answered 202 (outcome not known yet), settled later by the worker
    verify_ok: bool = False
    problems: list[str] = field(default_factory=list)

    def result(self, **extra: Any) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "problems"}
        out["5xx"] = out.pop("five_xx")
        return {**extra, **out, "problems": len(self.problems)}


async def _rows(db: Database, query: str) -> list[Any]:
    async with db.begin() as conn:
        return list(await conn.execute(text(query)))


async def unsettled(url: str) -> dict[str, int]:
    """What the worker still has to do: open holds, pending orders, undelivered outbox
    messages and merchant notifications, SMS without a final delivery report."""
    db = Database(url, pool_size=1)
    try:
        out = {}
        for name, query in (
            ("holds", "SELECT count(*) FROM ledger_open_holds"),
            ("orders", "SELECT count(*) FROM partner_orders WHERE state = 'pending'"),
            ("outbox", "SELECT count(*) FROM outbox_messages WHERE status <> 'delivered'"),
            ("notifications", "SELECT count(*) FROM merchant_notifications WHERE state <> 'delivered'"),
            ("sms_reports", "SELECT count(*) FROM sms_outbound WHERE state NOT IN ('delivered', 'failed', "
                            "'rejected', 'opted_out')"),
        ):
            out[name] = int((await _rows(db, query))[0][0])
        for state, count in await _rows(db, "SELECT state, count(*) FROM sms_outbound WHERE state NOT IN "
                                           "('delivered', 'failed', 'rejected', 'opted_out') GROUP BY state"):
            out[f"sms_reports_{state}"] = int(count)
        out["sms_commands_unanswered"] = int((await _rows(
            db, "SELECT count(*) FROM sms_inbound WHERE state <> 'answered'"))[0][0])
        out["sms_commands_stored"] = int((await _rows(db, "SELECT count(*) FROM sms_inbound"))[0][0])
        out["sms_expected"] = int((await _rows(
            db, "SELECT count(*) FROM outbox_messages WHERE topic = 'sms.send'"))[0][0])
        return out
    finally:
        await db.dispose()


def outstanding(stack: Stack, load: Load) -> dict[str, int]:
    """What is still to happen after a run, by kind (empty once the worker has finished):
    :func:`unsettled`, and SMS not yet at a handset, SMS commands not yet stored."""
    left = asyncio.run(unsettled(stack.db_url))
    left["sms_not_received"] = max(0, left.pop("sms_expected") - len(stack.collect_sms()))
    left["sms_commands_missing"] = max(0, sum(load.texts.values()) - left.pop("sms_commands_stored"))
    return {k: v for k, v in left.items() if v}


def _msisdn(number: str) -> str:
    digits = number.lstrip("+")
    return "+" + (digits if digits.startswith("86") else "86" + digits)


async def transfers_exactly_once(db: Database, load: Load, phones: list[Phone],
                                 problems: list[str]) -> tuple[set[str], set[str]]:
    """Each acknowledged transfer key is one ``p2p`` transfer, named by every 2xx answer for
    it; a refused one left nothing; no other ``p2p`` transfer is stored. Returns (the
    acknowledged ones missing, the stored ones no client was told of); adds to ``problems``."""
    by_msisdn = {p.msisdn: p for p in phones}
    stored = {r[0] for r in await _rows(db, "SELECT id FROM ledger_transfers WHERE code = 'p2p'")}
    wanted: set[str] = set()
    for op in load.ops:
        if op.kind != "transfer":
            continue
        tid = f"p2p:{by_msisdn[op.payer].user_id}:{op.key}"
        if op.acked:
            wanted.add(tid)
            if op.ids != {tid}:
                problems.append(f"transfer {op.key}: its 2xx answers named {op.ids}, the ledger holds {tid}")
        elif tid in stored:
            problems.append(f"transfer {op.key} was refused ({op.status} {op.body.get('code')}) but is posted")
    missing, extra = wanted - stored, stored - wanted
    if missing:
        problems.append(f"{len(missing)} acknowledged transfers are not in the ledger, e.g. {sorted(missing)[:2]}")
    if extra:
        problems.append(f"{len(extra)} transfers in the ledger no client was told of, e.g. {sorted(extra)[:2]}")
    return missing, extra


async def audit(stack: Stack, load: Load, phones: list[Phone], merchant: Merchant, *, crashes: int) -> Figures:
    """Compare the database, the partners and the handsets with what the clients saw."""
    f = Figures(tried=load.tally.tried, five_xx=load.tally.five_xx, retries=load.tally.retries,
                requests=load.tally.requests, transport_errors=load.tally.transport_errors, lost=load.tally.lost)
    problems = f.problems
    db = Database(stack.db_url, pool_size=2)
    ledger = Ledger(db, SystemClock())
    try:
        report = await ledger.verify()
        f.verify_ok = report.ok
        if not report.ok:
            problems.append(f"ledger verify: {report.differences[:3]} {report.unbalanced[:3]}")
        unanswered = [op for op in load.ops if op.status is None]
        f.lost += len(unanswered)
        if unanswered:
            problems.append(f"{len(unanswered)} operations never answered, e.g. {unanswered[0]}")
        by_msisdn = {p.msisdn: p for p in phones}
        f.acknowledged = sum(1 for op in load.ops if op.acked and op.kind not in ("read", "sms"))

        missing, extra = await transfers_exactly_once(db, load, phones, problems)
        f.lost += len(missing)
        f.duplicated += len(extra)

        # trades: each paid trade is one merchant payment, and the merchant holds their sum
        paid = {op.trade_no: op for op in load.ops if op.kind == "trade" and op.acked}
        payments = {r[0] for r in await _rows(db, "SELECT id FROM ledger_transfers WHERE code = 'merchant.payment'")}
        trade_rows = {r[0]: r for r in await _rows(db, "SELECT id, state, payer_id, amount FROM merchant_trades")}
        for trade_no, op in paid.items():
            if f"trade:{trade_no}" not in payments:
                f.lost += 1
                problems.append(f"trade {trade_no} was answered paid but has no payment in the ledger")
            row = trade_rows.get(trade_no)
            if row is None or row[1] != "TRADE_SUCCESS" or row[2] != by_msisdn[op.payer].user_id:
                problems.append(f"trade {trade_no} answered paid is {row}")
        extra_payments = payments - {f"trade:{t}" for t in paid}
        f.duplicated += len(extra_payments)
        if extra_payments:
            problems.append(f"{len(extra_payments)} merchant payments no buyer was told of, e.g. "
                            f"{sorted(extra_payments)[:2]}")

        # partner orders: one per acknowledged key, settled, held and resolved once, as at the partner
        orders = {r[0]: r for r in await _rows(db, "SELECT id, kind, state, amount, details, partner FROM "
                                                   "partner_orders")}
        holds = {r[0]: r[1] for r in await _rows(
            db, "SELECT id, pending_id FROM ledger_transfers WHERE id LIKE 'order:%'")}
        acked_orders = {op.order_id: op for op in load.ops if op.order_id}
        f.answered_pending = sum(1 for op in acked_orders.values() if op.status == 202)
        for oid, op in acked_orders.items():
            row = orders.get(oid)
            if row is None:
                f.lost += 1
                problems.append(f"{op.kind} {op.key} was answered with order {oid}, which does not exist")
                continue
            state = row[2]
            told = op.body.get("state") if (op.status or 500) < 300 else "failed"
            if told in ("succeeded", "failed") and told != state:
                problems.append(f"{op.kind} {oid}: the client was told {told} ({op.status}), the order is {state}")
            if state == "pending":
                problems.append(f"{op.kind} {oid} is still pending")
            resolutions = [t for t, pending in holds.items() if pending == f"order:{oid}"]
            if f"order:{oid}" not in holds or len(resolutions) != 1:
                problems.append(f"order {oid}: hold {'present' if f'order:{oid}' in holds else 'missing'}, "
                                f"resolutions {resolutions}")
        extra_orders = set(orders) - set(acked_orders)
        f.duplicated += len(extra_orders)
        if extra_orders:
            problems.append(f"{len(extra_orders)} partner orders no client was told of, e.g. "
                            f"{sorted(extra_orders)[:2]}")
        await _partners_agree(stack, orders, problems)

        # balances: each wallet moved by exactly what succeeded for it
        expected = {p.account: FUNDING for p in phones}
        merchant_expected = 0
        for op in load.ops:
            if not op.acked or op.kind in ("read", "sms"):
                continue
            payer = by_msisdn[op.payer].account
            if op.kind == "transfer":
                expected[payer] -= op.amount
                expected[by_msisdn[op.to].account] += op.amount
            elif op.kind == "trade":
                expected[payer] -= op.amount
                merchant_expected += op.amount
            else:
                row = orders.get(op.order_id)
                if row is None or row[2] != "succeeded":
                    continue
                details = json.loads(row[4])
                expected[payer] += row[3] if op.kind == "cash_in" else -int(details.get("price", row[3]))
        found = await ledger.accounts([*expected, merchant.account])
        wrong = {code: (found[code].balance, want) for code, want in expected.items() if found[code].balance != want}
        if wrong:
            problems.append(f"{len(wrong)} wallets differ from what succeeded (balance, expected): "
                            f"{list(wrong.items())[:3]}")
        if found[merchant.account].balance != merchant_expected:
            problems.append(f"the merchant holds {found[merchant.account].balance}, paid trades {merchant_expected}")

        await _sms_answered(db, load, f)
        await _sms_delivered(stack, db, f)
        await _notifications_delivered(stack, db, f, crashes)
        return f
    finally:
        await ledger.stop()
        await db.dispose()


async def _partners_agree(stack: Stack, orders: dict[str, Any], problems: list[str]) -> None:
    """Each order settled here as its partner settled it (the simulators' order lists)."""
    seen: dict[str, str] = {}
    async with httpx.AsyncClient(timeout=30) as http:
        for sim in ("bank", "billing", "aggregator", "billers"):
            for o in (await http.get(f"{stack.sims[sim].url}/sim/orders")).json():
                seen[o["order_id"]] = o["status"]
    for oid, row in orders.items():
        there = seen.get(oid)
        if there is None and row[2] == "failed":
            continue  # refused before the partner took it (an error answer): nothing moved there either
        if there != row[2]:
            problems.append(f"order {oid} ({row[1]}) is {row[2]} here and {there} at the partner")


async def _sms_answered(db: Database, load: Load, f: Figures) -> None:
    """Every SMS command a handset sent was stored once and answered once."""
    rows = await _rows(db, "SELECT sender, state FROM sms_inbound")
    stored = Counter(_msisdn(r[0]) for r in rows)
    f.sms_commands = sum(load.texts.values())
    if stored != load.texts:
        f.problems.append(f"SMS commands sent {sum(load.texts.values())}, stored {len(rows)}: differences "
                          f"{list(((load.texts - stored) + (stored - load.texts)).items())[:3]}")
    unanswered = [r for r in rows if r[1] != "answered"]
    if unanswered:
        f.problems.append(f"{len(unanswered)} SMS commands not answered, e.g. {unanswered[:2]}")


async def _sms_delivered(stack: Stack, db: Database, f: Figures) -> None:
    rows = await _rows(db, "SELECT o.payload, s.attempts, s.state FROM outbox_messages o "
                           "LEFT JOIN sms_outbound s ON s.id = o.id WHERE o.topic = 'sms.send'")
    want: Counter[tuple[str, str]] = Counter()
    resent = 0
    for payload, attempts, state in rows:
        p = json.loads(payload)
        want[(_msisdn(p["to"]), fit(render(p["template"], p["params"] or {})))] += 1
        if state is None:
            f.problems.append(f"SMS to {p['to']} ({p['template']}) never reached sendsms")
        resent += max(0, (attempts or 1) - 1)
    got = Counter((_msisdn(m.to), m.text) for m in stack.collect_sms())
    f.sms = sum(want.values())
    missing = want - got
    dupes = got - want
    f.sms_duplicates = sum(dupes.values())
    if missing:
        f.problems.append(f"{sum(missing.values())} SMS never reached a handset, e.g. {list(missing)[:2]}")
    if f.sms_duplicates > resent:
        f.problems.append(f"{f.sms_duplicates} SMS arrived twice, only {resent} re-sent after 30 s without a "
                          f"report (the one duplicate docs/sms.md allows), e.g. {list(dupes)[:2]}")


async def _notifications_delivered(stack: Stack, db: Database, f: Figures, crashes: int) -> None:
    rows = await _rows(db, "SELECT id, state, payload FROM merchant_notifications")
    async with httpx.AsyncClient(timeout=30) as http:
        received = (await http.get(f"{stack.sims['site'].url}/sim/received")).json()
        platform_key = (await http.get(f"{stack.api}/v1/merchant/platform-key")).text.encode()
    got = Counter(n["notify_id"] for n in received)
    f.notifications = len(rows)
    f.notify_duplicates = sum(c - 1 for c in got.values())
    for nid, state, payload in rows:
        if got[nid] == 0:
            f.problems.append(f"notification {nid} ({state}) never reached the merchant")
        elif json.loads(payload)["trade_status"] != "TRADE_SUCCESS":
            f.problems.append(f"notification {nid} says {json.loads(payload)['trade_status']}")
    unknown = set(got) - {r[0] for r in rows}
    if unknown:
        f.problems.append(f"the merchant received notifications we never wrote: {sorted(unknown)[:2]}")
    for n in received[:50]:
        try:
            verify_rsa2(n, n["sign"], platform_key)
        except Exception as exc:
            f.problems.append(f"notification {n['notify_id']} is not signed by the platform: {exc}")
            break
    if f.notify_duplicates > crashes:
        f.problems.append(f"{f.notify_duplicates} notifications arrived twice; at most one per crash ({crashes}) "
                          "is the documented duplicate (docs/merchant-signatures.md)")


def run(coro: Any) -> Any:
    return asyncio.run(coro)
