"""Asynchronous notifications to merchants, as Alipay sends them: when a trade is paid or
refunded, a signed POST to the merchant's notify URL, repeated on a published schedule
until the merchant answers the text ``success``; after the last try it is ``failed`` and
the merchant can always query the trade instead.

The notification row is written in the unit of work that changes the trade, so none is
lost and none is sent for a change that did not commit. The sender (the worker) posts
due rows outside any transaction and records the outcome.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import structlog
from sqlalchemy import insert, select, update

from mobipay.kernel.ids import new_id
from mobipay.merchants.model import TradeState
from mobipay.merchants.signing import sign_rsa2
from mobipay.merchants.tables import notifications
from mobipay.platform.uow import UnitOfWork, UnitOfWorkRunner

log = structlog.get_logger(__name__)

#: Seconds to wait before each retry (published in docs/merchant-signatures.md).
SCHEDULE_S = (15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600)


async def queue_notification(uow: UnitOfWork, trade: Any, state: TradeState, refunded: int, *,
                             red_envelope: int = 0, refund: tuple[str, int] | None = None) -> None:
    """In the caller's unit of work: a notification of the trade's new state, if it has a URL:
    what the buyer paid and what a red envelope paid of the total, and for a refund its
    request number (``out_request_no``) and amount."""
    if not trade.notify_url:
        return
    notify_id = new_id("ntf")
    payload = {"notify_id": notify_id, "notify_type": "trade_status_sync", "notify_time": uow.now.isoformat(),
               "app_id": trade.app_id, "trade_no": trade.id, "out_trade_no": trade.out_trade_no,
               "trade_status": state.value, "total_amount": str(trade.amount),
               "buyer_pay_amount": str(trade.amount - red_envelope), "red_envelope_amount": str(red_envelope),
               "refunded_amount": str(refunded)}
    if refund is not None:
        payload |= {"out_request_no": refund[0], "refund_amount": str(refund[1])}
    await uow.conn.execute(insert(notifications).values(
        id=notify_id, merchant_id=trade.merchant_id, trade_id=trade.id, url=trade.notify_url,
        payload=json.dumps(payload, ensure_ascii=False), state="pending", next_at=uow.now, created_at=uow.now))


class MerchantNotifier:
    def __init__(self, uow: UnitOfWorkRunner, platform_key: bytes, *, timeout_s: float = 5.0) -> None:
        self.uow = uow
        self.platform_key = platform_key
        self.timeout_s = timeout_s

    async def deliver_due(self, limit: int = 100) -> int:
        """Send the notifications that are due; returns how many were tried."""

        async def due(uow: UnitOfWork) -> list[Any]:
            return list(await uow.conn.execute(select(notifications).where(
                notifications.c.state == "pending", notifications.c.next_at <= uow.now)
                .order_by(notifications.c.next_at).limit(limit)))

        rows = await self.uow.run("notifications_due", due)
        async with httpx.AsyncClient(timeout=self.timeout_s) as client:
            for row in rows:
                await self._send(client, row)
        return len(rows)

    async def _send(self, client: httpx.AsyncClient, row: Any) -> None:
        payload = json.loads(row.payload)
        body = {**payload, "sign_type": "RSA2", "sign": sign_rsa2(payload, self.platform_key)}
        try:
            response = await client.post(row.url, json=body)
            ok = response.status_code == 200 and response.text.strip() == "success"
            error = "" if ok else f"HTTP {response.status_code}: {response.text[:100]!r}"
        except httpx.HTTPError as exc:
            ok, error = False, f"{type(exc).__name__}: {exc}"[:256]

        async def record(uow: UnitOfWork) -> None:
            attempts = row.attempts + 1
            if ok:
                values: dict[str, Any] = {"state": "delivered", "attempts": attempts, "delivered_at": uow.now}
            elif attempts > len(SCHEDULE_S):
                values = {"state": "failed", "attempts": attempts, "last_error": error}
            else:
                values = {"attempts": attempts, "last_error": error,
                          "next_at": uow.now + timedelta(seconds=SCHEDULE_S[attempts - 1])}
            await uow.conn.execute(update(notifications).where(notifications.c.id == row.id).values(**values))

        await self.uow.run("notification_sent", record)
        if not ok:
            log.info("merchant.notify_failed", notification=row.id, attempt=row.attempts + 1, error=error)

    async def state(self, notification_id: str) -> tuple[str, int]:
        async def work(uow: UnitOfWork) -> tuple[str, int]:
            row = (await uow.conn.execute(select(notifications).where(notifications.c.id == notification_id))).one()
            return row.state, row.attempts

        return await self.uow.run("notification", work)
