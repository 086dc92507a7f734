"""The merchants' store: the rows the merchant use cases (``service.py``: onboarding, apps
and keys, signed-request nonces, stores, trades, refunds, notifications) read and write,
behind one Protocol.

:class:`SqlMerchantStore` runs on the unit of work's connection (SQLite and PostgreSQL);
the tests' in-memory store (``tests/support/memory.py``) is the other. ``for_update`` reads
lock the row until the transaction ends.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any, Protocol, cast

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from mobipay.kernel.clock import as_utc
from mobipay.ledger.uow import Transaction, UnitOfWork
from mobipay.merchants.model import (
    App,
    Merchant,
    MerchantFile,
    MerchantState,
    Refund,
    StoreRecord,
    TradeRecord,
    TradeState,
)
from mobipay.merchants.tables import (
    daily_paid,
    merchant_apps,
    merchant_nonces,
    merchants,
    notifications,
    refunds,
    stores,
    trades,
)
from mobipay.platform.bulk import insert_many
from mobipay.platform.db import dialect_insert


class MerchantStore(Protocol):
    """What the merchants keep, read and written inside one transaction."""

    # merchants
    async def merchant(self, merchant_id: str, *, for_update: bool = False) -> MerchantFile | None: ...
    async def credit_code_taken(self, credit_code: str) -> bool: ...
    async def add_merchant(self, merchant: MerchantFile) -> None: ...
    async def set_state(self, merchant_id: str, state: MerchantState, reason: str, at: datetime) -> None: ...
    async def put_application(self, merchant: MerchantFile, at: datetime) -> None: ...
    async def find(self, *, state: MerchantState | None, q: str | None, mcc: str | None,
                   limit: int | None, oldest_first: bool = False) -> list[Merchant]: ...

    # API apps, keys and nonces
    async def add_app(self, app: App) -> None: ...
    async def app(self, app_id: str) -> App | None: ...
    async def rotate_key(self, app_id: str, public_key: str, previous_key: str | None, until: datetime) -> None: ...
    async def use_nonce(self, app_id: str, nonce: str, at: datetime, forget_before: datetime) -> bool: ...

    # stores
    async def add_store(self, store_id: str, merchant_id: str, name: str, address: str, at: datetime,
                        city: str = "") -> None: ...
    async def store_owner(self, store_id: str) -> str | None: ...
    async def store_by_id(self, store_id: str) -> StoreRecord | None: ...
    async def stores_of(self, merchant_id: str) -> list[StoreRecord]: ...

    # trades, refunds, notifications
    async def trade(self, trade_id: str, *, for_update: bool = False) -> TradeRecord | None: ...
    async def trade_by_out_no(self, merchant_id: str, out_trade_no: str) -> TradeRecord | None: ...
    async def add_trade(self, trade: TradeRecord) -> None: ...
    async def add_trades(self, trades: Sequence[TradeRecord]) -> None: ...
    async def put_trade(self, trade: TradeRecord) -> None: ...
    async def count_paid(self, merchant_id: str, day: date, amount: int, limit: int) -> int | None: ...
    async def refund(self, trade_id: str, out_request_no: str) -> Refund | None: ...
    async def refund_by_request_no(self, merchant_id: str, out_request_no: str
                                   ) -> tuple[TradeRecord, Refund] | None: ...
    async def add_refund(self, refund: Refund) -> None: ...
    async def add_notification(self, notify_id: str, trade: TradeRecord, payload: Mapping[str, str | int],
                               at: datetime, *, encoding: str = "json") -> None: ...


def sql_store(tx: Transaction) -> MerchantStore:
    """The store of a database unit of work (the only transaction the SQL store runs in)."""
    return SqlMerchantStore(cast(UnitOfWork, tx).conn)


class SqlMerchantStore:
    """:class:`MerchantStore` on the unit of work's connection."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def _first(self, query: Any) -> Any:
        return (await self.conn.execute(query)).first()

    # ------------------------------------------------------------------ merchants

    async def merchant(self, merchant_id: str, *, for_update: bool = False) -> MerchantFile | None:
        query = select(merchants).where(merchants.c.id == merchant_id)
        row = await self._first(query.with_for_update() if for_update else query)
        return None if row is None else merchant_file(row)

    async def credit_code_taken(self, credit_code: str) -> bool:
        return await self._first(select(merchants.c.id).where(merchants.c.credit_code == credit_code)) is not None

    async def add_merchant(self, merchant: MerchantFile) -> None:
        m = merchant.merchant
        await self.conn.execute(insert(merchants).values(
            id=m.id, name=m.name, credit_code=m.credit_code, legal_person=merchant.legal_person,
            contact_msisdn=merchant.contact_msisdn, mcc=m.mcc, website=m.website,
            settlement_account=merchant.settlement_account, state=m.state.value, reason=m.reason, fee_bps=m.fee_bps,
            settlement_days=merchant.settlement_days, per_trade_limit=merchant.per_trade_limit,
            daily_limit=merchant.daily_limit, account_code=m.account_code, created_at=merchant.created_at,
            updated_at=merchant.created_at, application_token_hash=merchant.application_token_hash))

    async def set_state(self, merchant_id: str, state: MerchantState, reason: str, at: datetime) -> None:
        await self.conn.execute(update(merchants).where(merchants.c.id == merchant_id).values(
            state=state.value, reason=reason, updated_at=at))

    async def put_application(self, merchant: MerchantFile, at: datetime) -> None:
        """An application as resubmitted: what the applicant may change, its terms and state."""
        m = merchant.merchant
        await self.conn.execute(update(merchants).where(merchants.c.id == m.id).values(
            name=m.name, legal_person=merchant.legal_person, contact_msisdn=merchant.contact_msisdn, mcc=m.mcc,
            website=m.website, settlement_account=merchant.settlement_account, state=m.state.value, reason=m.reason,
            fee_bps=m.fee_bps, settlement_days=merchant.settlement_days, per_trade_limit=merchant.per_trade_limit,
            daily_limit=merchant.daily_limit, applicant_note=merchant.applicant_note, updated_at=at))

    async def find(self, *, state: MerchantState | None, q: str | None, mcc: str | None,
                   limit: int | None, oldest_first: bool = False) -> list[Merchant]:
        """Newest first (``oldest_first``: by application time, oldest first); ``limit`` None: all."""
        order = (merchants.c.created_at,) if oldest_first else (merchants.c.created_at.desc(), merchants.c.id.desc())
        query = select(merchants).order_by(*order).limit(limit)
        if state is not None:
            query = query.where(merchants.c.state == state.value)
        if mcc:
            query = query.where(merchants.c.mcc == mcc)
        if q:
            like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            query = query.where(merchants.c.name.ilike(like, escape="\\") | merchants.c.id.ilike(like, escape="\\")
                                | merchants.c.credit_code.ilike(like, escape="\\"))
        return [merchant_of(r) for r in await self.conn.execute(query)]

    # ------------------------------------------------------------------ apps, keys, nonces

    async def add_app(self, app: App) -> None:
        await self.conn.execute(insert(merchant_apps).values(
            app_id=app.app_id, merchant_id=app.merchant_id, sign_type=app.sign_type, public_key=app.public_key,
            hmac_key=app.hmac_key, notify_url=app.notify_url, created_at=app.created_at, protocol=app.protocol,
            apiv3_key=app.apiv3_key))

    async def app(self, app_id: str) -> App | None:
        r = await self._first(select(merchant_apps).where(merchant_apps.c.app_id == app_id))
        if r is None:
            return None
        return App(r.app_id, r.merchant_id, r.sign_type, r.public_key, r.hmac_key, r.notify_url, as_utc(r.created_at),
                   r.previous_key, as_utc(r.previous_until) if r.previous_until else None, r.protocol, r.apiv3_key)

    async def rotate_key(self, app_id: str, public_key: str, previous_key: str | None, until: datetime) -> None:
        await self.conn.execute(update(merchant_apps).where(merchant_apps.c.app_id == app_id).values(
            public_key=public_key, previous_key=previous_key, previous_until=until))

    async def use_nonce(self, app_id: str, nonce: str, at: datetime, forget_before: datetime) -> bool:
        if await self._first(select(merchant_nonces.c.nonce).where(merchant_nonces.c.app_id == app_id,
                                                                   merchant_nonces.c.nonce == nonce)):
            return False
        await self.conn.execute(insert(merchant_nonces).values(app_id=app_id, nonce=nonce, seen_at=at))
        await self.conn.execute(delete(merchant_nonces).where(merchant_nonces.c.seen_at < forget_before))
        return True

    # ------------------------------------------------------------------ stores

    async def add_store(self, store_id: str, merchant_id: str, name: str, address: str, at: datetime,
                        city: str = "") -> None:
        await self.conn.execute(insert(stores).values(id=store_id, merchant_id=merchant_id, name=name,
                                                      address=address, created_at=at, city=city))

    async def store_by_id(self, store_id: str) -> StoreRecord | None:
        r = await self._first(select(stores).where(stores.c.id == store_id))
        return None if r is None else StoreRecord(r.id, r.merchant_id, r.name, r.address, as_utc(r.created_at),
                                                  r.city)

    async def store_owner(self, store_id: str) -> str | None:
        found = await self.conn.execute(select(stores.c.merchant_id).where(stores.c.id == store_id))
        return cast(str | None, found.scalar_one_or_none())

    async def stores_of(self, merchant_id: str) -> list[StoreRecord]:
        rows = await self.conn.execute(select(stores.c.id, stores.c.merchant_id, stores.c.name, stores.c.address,
                                              stores.c.created_at, stores.c.city)
                                       .where(stores.c.merchant_id == merchant_id)
                                       .order_by(stores.c.created_at, stores.c.id))
        return [StoreRecord(r.id, r.merchant_id, r.name, r.address, as_utc(r.created_at), r.city) for r in rows]

    # ------------------------------------------------------------------ trades

    async def trade(self, trade_id: str, *, for_update: bool = False) -> TradeRecord | None:
        query = select(trades).where(trades.c.id == trade_id)
        row = await self._first(query.with_for_update() if for_update else query)
        return None if row is None else trade_record(row)

    async def trade_by_out_no(self, merchant_id: str, out_trade_no: str) -> TradeRecord | None:
        row = await self._first(select(trades).where(trades.c.merchant_id == merchant_id,
                                                     trades.c.out_trade_no == out_trade_no))
        return None if row is None else trade_record(row)

    async def add_trade(self, trade: TradeRecord) -> None:
        await self.conn.execute(insert(trades).values(**_trade_values(trade)))

    async def add_trades(self, records: Sequence[TradeRecord]) -> None:
        """Many trades in one statement (on PostgreSQL one ``INSERT … SELECT FROM unnest``,
        platform/bulk.py): in-store taps uploaded in a batch."""
        await insert_many(self.conn, trades, [_trade_values(t) for t in records])

    async def put_trade(self, trade: TradeRecord) -> None:
        values = _trade_values(trade)
        del values["id"]
        await self.conn.execute(update(trades).where(trades.c.id == trade.id).values(**values))

    async def count_paid(self, merchant_id: str, day: date, amount: int, limit: int) -> int | None:
        """Add ``amount`` to the merchant's ``day`` if that keeps it within ``limit``: None when
        counted, else what the day holds already (the payment is refused, nothing counted)."""
        await self.conn.execute(dialect_insert(self.conn.dialect.name, daily_paid).values(
            merchant_id=merchant_id, day=day, paid_fen=0).on_conflict_do_nothing())
        c = daily_paid.c
        where = (c.merchant_id == merchant_id) & (c.day == day)
        moved = await self.conn.execute(update(daily_paid).where(where, c.paid_fen + amount <= limit)
                                        .values(paid_fen=c.paid_fen + amount))
        if moved.rowcount:
            return None
        return int((await self.conn.execute(select(c.paid_fen).where(where))).scalar_one())

    async def refund(self, trade_id: str, out_request_no: str) -> Refund | None:
        r = await self._first(select(refunds).where(refunds.c.trade_id == trade_id,
                                                    refunds.c.out_request_no == out_request_no))
        return None if r is None else Refund(r.id, r.trade_id, r.out_request_no, r.amount, r.transfer_id,
                                             as_utc(r.created_at))

    async def refund_by_request_no(self, merchant_id: str, out_request_no: str
                                   ) -> tuple[TradeRecord, Refund] | None:
        """A merchant's refund by its request number alone (the newest, should two trades share it)."""
        r = await self._first(select(refunds.c.id.label("refund_id"), refunds.c.amount.label("refund_amount"),
                                     refunds.c.transfer_id.label("refund_transfer"),
                                     refunds.c.created_at.label("refund_at"), trades)
                              .join(trades, trades.c.id == refunds.c.trade_id)
                              .where(trades.c.merchant_id == merchant_id, refunds.c.out_request_no == out_request_no)
                              .order_by(refunds.c.created_at.desc()).limit(1))
        if r is None:
            return None
        return trade_record(r), Refund(r.refund_id, r.id, out_request_no, r.refund_amount, r.refund_transfer,
                                       as_utc(r.refund_at))

    async def add_refund(self, refund: Refund) -> None:
        await self.conn.execute(insert(refunds).values(
            id=refund.id, trade_id=refund.trade_id, out_request_no=refund.out_request_no, amount=refund.amount,
            transfer_id=refund.transfer_id, created_at=refund.created_at))

    async def add_notification(self, notify_id: str, trade: TradeRecord, payload: Mapping[str, str | int],
                               at: datetime, *, encoding: str = "json") -> None:
        await self.conn.execute(insert(notifications).values(
            id=notify_id, merchant_id=trade.merchant_id, trade_id=trade.id, url=trade.notify_url,
            payload=json.dumps(payload, ensure_ascii=False), encoding=encoding, state="pending", next_at=at,
            created_at=at))


def merchant_of(r: Any) -> Merchant:
    """The merchant of a ``merchants`` row."""
    return Merchant(r.id, r.name, r.credit_code, r.mcc, MerchantState(r.state), r.reason, r.fee_bps, r.account_code,
                    r.website)


def merchant_file(r: Any) -> MerchantFile:
    return MerchantFile(merchant_of(r), r.legal_person, r.contact_msisdn, r.settlement_account, r.settlement_days,
                        r.per_trade_limit, r.daily_limit, as_utc(r.created_at), r.application_token_hash,
                        r.applicant_note or "", as_utc(r.updated_at))


def trade_record(r: Any) -> TradeRecord:
    """The trade of a ``merchant_trades`` row (the portal and settlement read them too)."""
    return TradeRecord(r.id, r.merchant_id, r.out_trade_no, r.amount, r.subject, TradeState(r.state), r.app_id,
                       r.notify_url, as_utc(r.created_at), as_utc(r.expires_at), r.store_id, r.refunded, r.coupon_id,
                       int(r.coupon_amount or 0), r.payer_id, r.transfer_id,
                       as_utc(r.paid_at) if r.paid_at else None, as_utc(r.closed_at) if r.closed_at else None,
                       int(r.privilege_amount or 0))


def _trade_values(t: TradeRecord) -> dict[str, Any]:
    return {"id": t.id, "merchant_id": t.merchant_id, "out_trade_no": t.out_trade_no, "amount": t.amount,
            "subject": t.subject, "state": t.state.value, "app_id": t.app_id, "notify_url": t.notify_url,
            "created_at": t.created_at, "expires_at": t.expires_at, "store_id": t.store_id, "refunded": t.refunded,
            "coupon_id": t.coupon_id, "coupon_amount": t.coupon_amount, "payer_id": t.payer_id,
            "transfer_id": t.transfer_id, "paid_at": t.paid_at, "closed_at": t.closed_at,
            "privilege_amount": t.privilege_amount}
