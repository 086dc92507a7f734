"""The stores of payable merchants, a page at a time: what other contexts read to enrol many
stores at once (in-store alliances enrol thousands of demo stores in one run) without a query
per merchant. A read of the merchants' own tables, kept beside them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from mobipay.ledger.uow import UnitOfWork, UnitOfWorkRunner
from mobipay.merchants.model import MerchantState
from mobipay.merchants.tables import merchants, stores

#: Merchants that may be paid (as ``MerchantService.pay`` accepts them).
PAYABLE = (MerchantState.APPROVED.value, MerchantState.SETTLEMENT_SUSPENDED.value)


@dataclass(frozen=True, slots=True)
class StoreEntry:
    """A store with what a directory shows of its merchant."""

    store_id: str
    store_name: str
    city: str
    merchant_id: str
    merchant_name: str
    mcc: str


async def store_page(uow: UnitOfWorkRunner, *, after: str = "", limit: int = 5_000,
                     merchant_id: str | None = None) -> list[StoreEntry]:
    """Stores of payable merchants with an id after ``after``, in id order (keyset paging:
    pass the last id of a page to get the next), optionally of one merchant."""

    async def work(tx: UnitOfWork) -> list[StoreEntry]:
        query = (select(stores.c.id, stores.c.name, stores.c.city, merchants.c.id.label("mid"),
                        merchants.c.name.label("mname"), merchants.c.mcc)
                 .join(merchants, merchants.c.id == stores.c.merchant_id)
                 .where(stores.c.id > after, merchants.c.state.in_(PAYABLE)))
        if merchant_id is not None:
            query = query.where(stores.c.merchant_id == merchant_id)
        rows = await tx.conn.execute(query.order_by(stores.c.id).limit(max(1, min(limit, 20_000))))
        return [StoreEntry(r.id, r.name, r.city, r.mid, r.mname, r.mcc) for r in rows]

    return await uow.run("merchant_store_page", work)
