"""The wallet's service: every wallet use case behind one object, as the channels and the
other contexts use it (``container.wallet``).

The use cases live by aggregate, each module building on the one before:
``accounts`` (codes, registration, operator actions) < ``pins`` < ``sessions`` <
``payments`` (transfers, authorisation, limits, claims, receipts) < ``requests``; their
rules and records are in ``model.py``, their rows behind ``store.py``. This module adds
what needs the database itself: on PostgreSQL, the batcher that gathers concurrent
password-free transfers (``transfer_batch``), built here with the service.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from argon2 import PasswordHasher

from mobipay.kernel.errors import MobipayError
from mobipay.kernel.ids import check_idempotency_key
from mobipay.kernel.money import check_amount
from mobipay.kernel.msisdn import normalize_msisdn
from mobipay.ledger.uow import Runner, Transaction, UnitOfWorkRunner
from mobipay.wallet.model import (
    REQUEST_TTL_DEFAULT,
    Claim,
    MoneyRequest,
    NumberSegments,
    OtpPolicy,
    OtpSent,
    PinPolicy,
    Principal,
    Receipt,
    Recipient,
    SessionInfo,
    Tokens,
    TransferDone,
    User,
    UserRegistered,
    WalletCredited,
    WalletLimits,
    check_not_self,
)
from mobipay.wallet.requests import MoneyRequests
from mobipay.wallet.store import WalletStore, sql_store
from mobipay.wallet.transfer_batch import TransferBatcher

#: What other contexts and the channels use of the wallet: this service and these values.
__all__ = ["Claim", "MoneyRequest", "OtpSent", "Principal", "Receipt", "Recipient", "SessionInfo", "Tokens",
           "TransferDone", "User", "UserRegistered", "WalletCredited", "WalletService", "check_not_self"]


class WalletService(MoneyRequests):
    """The wallet's commands; each runs in one unit of work."""

    def __init__(self, uow: Runner, segments: NumberSegments, secret: bytes, policy: OtpPolicy | None = None, *,
                 pin_hasher: PasswordHasher | None = None, pin_policy: PinPolicy | None = None,
                 limits: WalletLimits | None = None, store: Callable[[Transaction], WalletStore] = sql_store,
                 batch_writers: int = 0, request_ttl: timedelta = REQUEST_TTL_DEFAULT) -> None:
        super().__init__(uow, segments, secret, policy, pin_hasher=pin_hasher, pin_policy=pin_policy, limits=limits,
                         store=store)
        self.request_ttl = request_ttl  # how long a money request stays open (MOBIPAY_MONEY_REQUEST_DAYS)
        #: PostgreSQL with ``batch_writers``: concurrent password-free transfers share a commit.
        self.batcher: TransferBatcher | None = None
        if batch_writers and isinstance(uow, UnitOfWorkRunner) and uow.db.dialect == "postgresql":
            self.batcher = TransferBatcher(self, uow, writers=batch_writers)

    async def transfer_as(self, access_token: str, raw_to: str, amount: object, *, idempotency_key: str,
                          pin: str | None = None, note: str = "") -> TransferDone:
        """:meth:`transfer` for the bearer of ``access_token`` (the API). A password-free
        transfer goes to the batcher when there is one: its sign-in check, posting and
        commit are shared with the transfers arriving alongside (wallet/transfer_batch.py)."""
        if self.batcher is not None:
            try:
                fen = check_amount(amount)
                to = normalize_msisdn(raw_to)
                check_idempotency_key(idempotency_key)
            except MobipayError:
                await self.authenticate(access_token)  # who is asking comes first, as below
                raise
            if fen <= self.limits.password_free:
                return await self.batcher.submit(access_token, to, fen, idempotency_key, note)
        me = await self.authenticate(access_token)
        return await self.transfer(me, raw_to, amount, idempotency_key=idempotency_key, pin=pin, note=note)

    async def stop(self) -> None:
        """Finish the transfers the batcher holds (the process is stopping)."""
        if self.batcher is not None:
            await self.batcher.stop()
