"""A merchant's refund of an in-store payment, checked in the refund's transaction.

An offline NFC tap that the wallet could not pay when it was uploaded is a **debt**: the
platform paid the merchant from its receivable and the payer owes it until the next top-up.
A refund of that trade would credit the payer money they never paid, so it is refused
(``NFC_TAP_UNPAID``) until the debt is recovered; the tap row is locked, so a recovery and a
refund running at once are ordered (the refund then sees the debt paid)."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import select

from mobipay.instore import errors
from mobipay.instore.tables import nfc_taps
from mobipay.ledger.uow import Transaction, UnitOfWork

DEBT = "debt"


async def refund_guard(tx: Transaction, trade: Any) -> None:
    """``MerchantService.refund_guards``: refuse a refund of a tap still owed by its payer."""
    conn = cast(UnitOfWork, tx).conn
    query = select(nfc_taps.c.state, nfc_taps.c.recovered_at).where(nfc_taps.c.trade_id == trade.id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    if row is not None and row.state == DEBT and row.recovered_at is None:
        raise errors.NfcTapUnpaid(field="out_trade_no")
