"""Asynchronous notifications to merchants, as Alipay sends them: when a trade is paid or
refunded, a signed POST to the merchant's notify URL (JSON; for an app of the Alipay
protocol Alipay's form fields; for WeChat Pay's, its encrypted JSON signed in headers), repeated on a published schedule
until the merchant answers the text ``success``; after the last try it is ``failed`` and
the merchant can always query the trade instead.

The notification row is written in the unit of work that changes the trade, so none is
lost and none is sent for a change that did not commit. The sender (the worker) posts
due rows outside any transaction and records the outcome.

The URL is the merchant's choice, so the POST goes through
:func:`mobipay.platform.outbound.checked_client`: only to public addresses, checked after
DNS when connecting, no redirects followed, at most 1 KB of the answer read. A
notification whose URL is refused (not http(s), or leading to a loopback, private,
link-local or metadata address) is not retried: it is ``refused`` at once, with the
reason in ``last_error`` for the merchant's portal and the operator's
``mobipay merchants notifications``.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import structlog
from sqlalchemy import select, update

from mobipay.kernel.clock import as_utc
from mobipay.kernel.urls import AddressRefused, DestinationPolicy
from mobipay.ledger.uow import UnitOfWork, UnitOfWorkRunner
from mobipay.merchants import wechat
from mobipay.merchants.signing import public_pem, sign_rsa2, sign_rsa2_text
from mobipay.merchants.tables import notifications
from mobipay.platform.outbound import DestinationRefused, Resolver, checked_client, system_resolver

log = structlog.get_logger(__name__)

#: Seconds to wait before each retry (published in docs/merchant-signatures.md).
SCHEDULE_S = (15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600)
#: How much of the merchant's answer is read: "success" is all that counts.
ANSWER_MAX = 1024


@dataclass(frozen=True, slots=True)
class Undelivered:
    """A notification that did not reach the merchant (yet), as the portal and the CLI show it."""

    id: str
    merchant_id: str
    trade_id: str
    url: str
    state: str  # pending (being retried) | failed (out of tries) | refused (address not allowed)
    attempts: int
    last_error: str
    created_at: datetime


class MerchantNotifier:
    def __init__(self, uow: UnitOfWorkRunner, platform_key: bytes, *, timeout_s: float = 5.0,
                 policy: DestinationPolicy | None = None, resolver: Resolver = system_resolver) -> None:
        self.uow = uow
        self.platform_key = platform_key
        self.public_key_id = wechat.public_key_id(public_pem(platform_key))
        self.timeout_s = timeout_s
        self.policy = policy or DestinationPolicy()  # public addresses only
        self.resolver = resolver

    async def deliver_due(self, limit: int = 100) -> int:
        """Send the notifications that are due; returns how many were tried."""

        async def due(uow: UnitOfWork) -> list[Any]:
            return list(await uow.conn.execute(select(notifications).where(
                notifications.c.state == "pending", notifications.c.next_at <= uow.now)
                .order_by(notifications.c.next_at).limit(limit)))

        rows = await self.uow.run("notifications_due", due)
        async with checked_client(self.policy, timeout_s=self.timeout_s, resolver=self.resolver) as client:
            for row in rows:
                await self._send(client, row)
        return len(rows)

    async def _post(self, client: httpx.AsyncClient, url: str, sent: dict[str, Any], *, any_2xx: bool = False
                    ) -> tuple[bool, str]:
        """(delivered, why not); AddressRefused or DestinationRefused when the URL may not be called.
        ``sent``: the body as httpx takes it (``json``, form ``data``, or ``content`` and
        ``headers``); ``any_2xx``: a 2xx answer is delivered (WeChat Pay's rule), else the
        text ``success`` (Alipay's)."""
        address = self.policy.check(url)  # a URL stored before the rules, or changed since
        async with client.stream("POST", str(address), **sent) as response:
            answer = b""
            async for chunk in response.aiter_bytes():
                answer += chunk
                if len(answer) > ANSWER_MAX:
                    break
        text = answer[:ANSWER_MAX].decode("utf-8", "replace")
        if response.status_code == 200 and text.strip() == "success":
            return True, ""
        if any_2xx and 200 <= response.status_code < 300:
            return True, ""
        if response.is_redirect:
            return False, f"HTTP {response.status_code}: redirects are not followed; answer at the notify URL itself"
        return False, f"HTTP {response.status_code}: {text[:100]!r}"

    def _body(self, row: Any) -> dict[str, Any]:
        """The notification as its app's protocol posts it, signed: JSON or Alipay's form with
        ``sign`` (RSA2 over the sorted fields), or WeChat Pay's JSON signed in headers."""
        payload = json.loads(row.payload)
        if row.encoding == "wechat":
            text = json.dumps({**payload, "resource": json.loads(payload["resource"])}, ensure_ascii=False,
                              separators=(",", ":"))
            timestamp, nonce = str(int(self.uow.clock.now().timestamp())), secrets.token_hex(16)
            return {"content": text.encode(), "headers": {
                "Content-Type": "application/json", "Wechatpay-Timestamp": timestamp, "Wechatpay-Nonce": nonce,
                "Wechatpay-Signature": sign_rsa2_text(wechat.answer_message(timestamp, nonce, text), self.platform_key),
                "Wechatpay-Serial": self.public_key_id, "Wechatpay-Signature-Type": wechat.SCHEME}}
        body = {**payload, "sign_type": "RSA2", "sign": sign_rsa2(payload, self.platform_key)}
        return {"data": body} if row.encoding == "form" else {"json": body}

    async def _send(self, client: httpx.AsyncClient, row: Any) -> None:
        refused = False
        try:
            ok, error = await self._post(client, row.url, self._body(row), any_2xx=row.encoding == "wechat")
        except (AddressRefused, DestinationRefused) as exc:
            ok, error, refused = False, f"refused: {exc}", True
        except httpx.HTTPError as exc:
            ok, error = False, f"{type(exc).__name__}: {exc}"
        error = error[:256]

        async def record(uow: UnitOfWork) -> None:
            attempts = row.attempts + 1
            if ok:
                values: dict[str, Any] = {"state": "delivered", "attempts": attempts, "delivered_at": uow.now}
            elif refused:  # retrying would not make the address acceptable: say so at once
                values = {"state": "refused", "attempts": attempts, "last_error": error}
            elif attempts > len(SCHEDULE_S):
                values = {"state": "failed", "attempts": attempts, "last_error": error}
            else:
                values = {"attempts": attempts, "last_error": error,
                          "next_at": uow.now + timedelta(seconds=SCHEDULE_S[attempts - 1])}
            await uow.conn.execute(update(notifications).where(notifications.c.id == row.id).values(**values))

        await self.uow.run("notification_sent", record)
        if refused:
            log.warning("merchant.notify_refused", notification=row.id, merchant=row.merchant_id, error=error)
        elif not ok:
            log.info("merchant.notify_failed", notification=row.id, attempt=row.attempts + 1, error=error)

    async def undelivered(self, merchant_id: str | None = None, *, states: tuple[str, ...] = ("refused", "failed"),
                          limit: int = 50) -> list[Undelivered]:
        """Notifications in ``states`` (with at least one try for ``pending``), newest first;
        one merchant's, or every merchant's for the operator."""

        async def work(uow: UnitOfWork) -> list[Undelivered]:
            query = select(notifications).where(notifications.c.state.in_(states), notifications.c.attempts > 0)
            if merchant_id is not None:
                query = query.where(notifications.c.merchant_id == merchant_id)
            rows = await uow.conn.execute(query.order_by(notifications.c.created_at.desc()).limit(limit))
            return [Undelivered(r.id, r.merchant_id, r.trade_id, r.url, r.state, r.attempts, r.last_error,
                                as_utc(r.created_at)) for r in rows]

        return await self.uow.run("notifications_undelivered", work)

    async def state(self, notification_id: str) -> tuple[str, int]:
        async def work(uow: UnitOfWork) -> tuple[str, int]:
            row = (await uow.conn.execute(select(notifications).where(notifications.c.id == notification_id))).one()
            return row.state, row.attempts

        return await self.uow.run("notification", work)
