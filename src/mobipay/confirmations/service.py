"""Secondary confirmation as a service of its own (SMS money commands now, service-provider
subscriptions later): ``request`` stores what to do and sends a code by SMS through the
outbox; ``confirm`` with the right code, in time, returns it exactly once. A newer request
replaces an older one for the same number. Wrong or late codes change nothing but the
count of wrong tries, which voids the request past the limit.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, select, update

from mobipay.confirmations.errors import ConfirmationRefused
from mobipay.confirmations.model import ConfirmationPolicy, Pending, judge
from mobipay.confirmations.tables import confirmations
from mobipay.kernel.clock import as_utc
from mobipay.kernel.events import SmsRequested
from mobipay.kernel.ids import new_id
from mobipay.kernel.msisdn import normalize_msisdn
from mobipay.ledger.uow import UnitOfWork, UnitOfWorkRunner


@dataclass(frozen=True, slots=True)
class Confirmed:
    id: str
    purpose: str
    payload: dict[str, Any]


class Confirmations:
    def __init__(self, uow: UnitOfWorkRunner, secret: bytes, policy: ConfirmationPolicy | None = None) -> None:
        self.uow = uow
        self.secret = secret
        self.policy = policy or ConfirmationPolicy()

    def _hash(self, confirmation_id: str, code: str) -> str:
        return hmac.new(self.secret, f"{confirmation_id}|{code}".encode(), hashlib.sha256).hexdigest()

    async def request(self, raw_msisdn: str, purpose: str, payload: dict[str, Any], summary: str, *,
                      key: str | None = None) -> str:
        """Ask the number to confirm ``summary`` with a fresh code; returns the request id.
        With ``key`` (e.g. the inbound SMS asking), asking again is a no-op: one code per key."""
        msisdn = normalize_msisdn(raw_msisdn)
        confirmation_id = "cnf_" + hashlib.sha256(key.encode()).hexdigest()[:32] if key else new_id("cnf")
        code = f"{secrets.randbelow(10**6):06d}"

        async def work(uow: UnitOfWork) -> str:
            if key and (await uow.conn.execute(select(confirmations.c.id).where(
                    confirmations.c.id == confirmation_id))).first():
                return confirmation_id
            await uow.conn.execute(update(confirmations).where(confirmations.c.msisdn == msisdn,
                                                               confirmations.c.state == "pending")
                                   .values(state="void"))  # only the newest request can be confirmed
            await uow.conn.execute(insert(confirmations).values(
                id=confirmation_id, msisdn=msisdn, purpose=purpose, payload=json.dumps(payload, ensure_ascii=False),
                code_hash=self._hash(confirmation_id, code), state="pending", created_at=uow.now,
                expires_at=uow.now + timedelta(seconds=self.policy.ttl_s)))
            await uow.emit(SmsRequested(key=confirmation_id, to=msisdn, template="confirm.request",
                                        params={"summary": summary, "code": code,
                                                "minutes": self.policy.ttl_s // 60}))
            return confirmation_id

        return await self.uow.run("request_confirmation", work)

    async def confirm(self, raw_msisdn: str, code: str, *, by: str | None = None) -> Confirmed:
        """What the number's newest request asked for, once, if ``code`` is its code in time.
        ``by`` names the reply: the same reply processed again gets the same answer."""
        msisdn = normalize_msisdn(raw_msisdn)

        async def work(uow: UnitOfWork) -> Confirmed | ConfirmationRefused:
            if by is not None:
                done = (await uow.conn.execute(select(confirmations).where(
                    confirmations.c.msisdn == msisdn, confirmations.c.used_by == by))).first()
                if done is not None:
                    return Confirmed(done.id, done.purpose, json.loads(done.payload))
            row = (await uow.conn.execute(select(confirmations).where(  # at most one: a request voids older ones
                confirmations.c.msisdn == msisdn, confirmations.c.state == "pending").with_for_update())).first()
            pending = Pending(row.id, row.code_hash, as_utc(row.expires_at), row.wrong, row.state) if row else None
            try:
                judge(pending, self._hash(row.id, code) if row else "", uow.now, self.policy)
            except ConfirmationRefused as exc:
                if exc.extra.get("wrong") and row is not None:  # counted, so guessing ends
                    await uow.conn.execute(update(confirmations).where(confirmations.c.id == row.id)
                                           .values(wrong=row.wrong + 1))
                return exc
            assert row is not None
            await uow.conn.execute(update(confirmations).where(confirmations.c.id == row.id)
                                   .values(state="used", used_by=by))
            return Confirmed(row.id, row.purpose, json.loads(row.payload))

        outcome = await self.uow.run("confirm", work)
        if isinstance(outcome, ConfirmationRefused):
            raise outcome
        return outcome

