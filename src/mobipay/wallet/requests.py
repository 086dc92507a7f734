"""Wallet use cases of money requests: ask a number for an amount; the payer pays it (one
transfer per request, however often they press pay) or declines it; unpaid, the worker
expires it after :attr:`MoneyRequests.request_ttl` (``MOBIPAY_MONEY_REQUEST_DAYS``) and
tells both sides by SMS.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from mobipay.kernel.errors import IdempotencyConflict, NotFound
from mobipay.kernel.events import SmsRequested
from mobipay.kernel.ids import check_idempotency_key
from mobipay.kernel.money import check_amount
from mobipay.kernel.msisdn import mask_msisdn, normalize_msisdn
from mobipay.ledger.uow import Transaction
from mobipay.platform.credentials import token_hash
from mobipay.wallet import errors
from mobipay.wallet.model import REQUEST_TTL_DEFAULT, MoneyRequest, Principal, StoredRequest, TransferDone
from mobipay.wallet.payments import Payments


class MoneyRequests(Payments):
    """Asking for money and answering."""

    #: How long a request stays open (WalletService takes it from the settings).
    request_ttl: timedelta = REQUEST_TTL_DEFAULT

    async def request_money(self, me: Principal, raw_payer: str, amount: object, *, idempotency_key: str,
                            note: str = "") -> MoneyRequest:
        """Ask a number for an amount; the payer is told by SMS and pays or declines in the app."""
        amount = check_amount(amount)
        payer = normalize_msisdn(raw_payer)
        if payer == me.msisdn:
            raise errors.SelfRequest("ask another number", field="from")
        check_idempotency_key(idempotency_key)
        request_id = "mrq_" + token_hash(f"{me.user_id}|{idempotency_key}")[:32]

        async def work(tx: Transaction) -> MoneyRequest:
            store = self.store(tx)
            known = await store.money_request(request_id)
            if known is not None:
                if (known.payer_msisdn, known.amount, known.note) != (payer, amount, note):
                    raise IdempotencyConflict("this Idempotency-Key was used for another request", field="id")
                return known.seen_at(tx.now)
            request = StoredRequest(request_id, me.user_id, me.msisdn, payer, amount, note, "open", tx.now,
                                    tx.now + self.request_ttl)
            await store.add_money_request(request)
            await tx.emit(SmsRequested(key=request_id, to=payer, template="request.received",
                                       params={"from": mask_msisdn(me.msisdn), "amount_fen": amount}))
            return request.seen_at(tx.now)

        return await self.uow.run("request_money", work)

    async def money_requests(self, me: Principal) -> tuple[list[MoneyRequest], list[MoneyRequest]]:
        """(asked of me, asked by me), newest first."""

        async def work(tx: Transaction) -> tuple[list[MoneyRequest], list[MoneyRequest]]:
            store = self.store(tx)
            incoming = await store.requests_of_payer(me.msisdn, 100)
            outgoing = await store.requests_by(me.user_id, 100)
            return [r.seen_at(tx.now) for r in incoming], [r.seen_at(tx.now) for r in outgoing]

        return await self.uow.run("money_requests", work)

    async def pay_request(self, me: Principal, request_id: str, *, pin: str | None = None) -> TransferDone:
        """Pay a request asked of me: one transfer per request, however often this is called.
        The request id is the idempotency key (the transfer's key derives from it), so a
        client needs no key of its own to retry safely: a retry returns the first payment."""

        async def load(tx: Transaction) -> StoredRequest:
            request = await self.store(tx).money_request(request_id)
            if request is None or request.payer_msisdn != me.msisdn:
                raise NotFound("no such money request for you", field="request_id")
            state = request.seen_at(tx.now).state
            if state not in ("open", "paid"):  # paid: let a retry replay the payment it made
                raise errors.RequestNotOpen(f"the request is {state}", field="request_id")
            return request

        request = await self.uow.run("load_request", load)

        async def settle(tx: Transaction, done: TransferDone) -> None:
            store = self.store(tx)
            now = await store.money_request(request_id, for_update=True)
            assert now is not None
            if now.state == "paid" and now.transfer_id == done.id:
                return  # a retry of the payment that settled it
            if (state := now.seen_at(tx.now).state) != "open":
                raise errors.RequestNotOpen(f"the request is {state}", field="request_id")
            await store.settle_request(request_id, "paid", tx.now, transfer_id=done.id)

        return await self.transfer(me, request.requester_msisdn, request.amount,
                                   idempotency_key=f"request-{request_id}", pin=pin, note=request.note, then=settle)

    async def decline_request(self, me: Principal, request_id: str) -> MoneyRequest:
        async def work(tx: Transaction) -> MoneyRequest:
            store = self.store(tx)
            request = await store.money_request(request_id, for_update=True)
            if request is None or request.payer_msisdn != me.msisdn:
                raise NotFound("no such money request for you", field="request_id")
            if (state := request.seen_at(tx.now).state) != "open":
                raise errors.RequestNotOpen(f"the request is {state}", field="request_id")
            await store.settle_request(request_id, "declined", tx.now)
            await tx.emit(SmsRequested(key=f"declined:{request_id}", to=request.requester_msisdn,
                                       template="request.declined", params={"by": mask_msisdn(me.msisdn)}))
            return replace(request, state="declined").seen_at(tx.now)

        return await self.uow.run("decline_request", work)

    async def expire_due_requests(self, limit: int = 500) -> int:
        """The worker's job: store every open request past its window as expired and tell the
        requester and the payer; returns how many. Idempotent and safe with two workers: each
        row moves by a conditional UPDATE (only an open, due request), and only the
        transaction that moved it sends the SMS (keyed by the request, deduplicated again
        by the SMS channel)."""

        async def work(tx: Transaction) -> int:
            store = self.store(tx)
            expired = 0
            for request in await store.requests_due(tx.now, limit):
                if not await store.expire_request(request.id, tx.now):
                    continue  # paid, declined or expired by the other worker meanwhile
                days = max(1, round((request.expires_at - request.created_at) / timedelta(days=1)))
                await tx.emit(SmsRequested(key=f"expired:{request.id}:requester", to=request.requester_msisdn,
                                           template="request.expired",
                                           params={"payer": mask_msisdn(request.payer_msisdn),
                                                   "amount_fen": request.amount, "days": days}))
                await tx.emit(SmsRequested(key=f"expired:{request.id}:payer", to=request.payer_msisdn,
                                           template="request.expired_payer",
                                           params={"from": mask_msisdn(request.requester_msisdn),
                                                   "amount_fen": request.amount, "days": days}))
                expired += 1
            return expired

        return await self.uow.run("expire_money_requests", work)
