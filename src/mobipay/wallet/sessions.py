"""Wallet use cases of signed-in devices: sign in by SMS code or PIN, the access token's
check on every request, refresh-token rotation (a reused refresh token revokes its
session), the device list and sign-out.

Tokens follow ``platform.credentials``: random, shown once, kept only as SHA-256.
"""

from __future__ import annotations

from mobipay.kernel.errors import MobipayError
from mobipay.kernel.ids import new_id
from mobipay.ledger.uow import Transaction
from mobipay.platform.credentials import new_token, token_hash
from mobipay.wallet import errors
from mobipay.wallet.model import (
    ACCESS_TTL,
    REFRESH_TTL,
    OtpPurpose,
    Principal,
    Session,
    SessionInfo,
    Tokens,
    check_session,
)
from mobipay.wallet.pins import Pins


class Sessions(Pins):
    """The subscriber's sessions."""

    async def login(self, raw_msisdn: str, *, device_id: str, device_name: str = "", code: str | None = None,
                    pin: str | None = None) -> Tokens:
        """Open a session on a device, proven by an SMS code (purpose login) or the PIN."""
        if (code is None) == (pin is None):
            raise errors.LoginMethodRequired("send either code or pin", field="code")
        user = await self.user_by_msisdn(raw_msisdn)
        if pin is not None:
            await self.verify_pin(user.msisdn, pin)
        access, refresh = new_token(), new_token()

        async def work(tx: Transaction) -> Tokens | MobipayError:
            if code is not None:
                refused = await self._consume_otp(tx, user.msisdn, OtpPurpose.LOGIN, code)
                if refused is not None:
                    return refused
            session = Session(new_id("ses"), user.id, device_id[:128], device_name[:128], token_hash(access),
                              tx.now + ACCESS_TTL, token_hash(refresh), tx.now + REFRESH_TTL, tx.now, tx.now,
                              proven_by="sms" if code is not None else "pin")
            await self.store(tx).add_session(session)
            return Tokens(session.id, access, int(ACCESS_TTL.total_seconds()), refresh)

        outcome = await self.uow.run("login", work)
        if isinstance(outcome, MobipayError):
            raise outcome
        return outcome

    async def authenticate(self, access_token: str) -> Principal:
        """Who is behind an access token; refused once expired or its session revoked."""

        async def work(tx: Transaction) -> Principal:
            found = await self.store(tx).signed_in(token_hash(access_token))
            check_session(found.access_expires_at if found else None, found.revoked_at if found else None, tx.now)
            assert found is not None
            return Principal(found.user_id, found.session_id, found.msisdn, found.account_code)

        return await self.uow.run("authenticate", work)

    async def refresh(self, refresh_token: str) -> Tokens:
        """Rotate a session's tokens. A refresh token works once: presenting an old one again
        means it was copied, and the whole session is revoked."""
        access, refresh = new_token(), new_token()
        presented = token_hash(refresh_token)

        async def work(tx: Transaction) -> Tokens | MobipayError:
            store = self.store(tx)
            session = await store.session_by_refresh(presented)
            if session is None:
                reused = await store.revoke_reused(presented, tx.now)
                return errors.SessionInvalid("this refresh token was already used: the session is revoked" if reused
                                             else "unknown refresh token")
            if session.revoked_at is not None or session.refresh_expires_at <= tx.now:
                return errors.SessionInvalid("the session has ended; sign in again")
            await store.rotate(session.id, access_hash=token_hash(access), access_expires_at=tx.now + ACCESS_TTL,
                               refresh_hash=token_hash(refresh), previous_refresh_hash=presented,
                               refresh_expires_at=tx.now + REFRESH_TTL, at=tx.now)
            return Tokens(session.id, access, int(ACCESS_TTL.total_seconds()), refresh)

        outcome = await self.uow.run("refresh", work)
        if isinstance(outcome, MobipayError):
            raise outcome
        return outcome

    async def device_bound(self, me: Principal) -> bool:
        """Whether the caller's session is on a device bound to the wallet: live, and opened with
        an SMS code sent to the number (the device proved it holds the SIM: a possession factor,
        which a session opened with the PIN alone is not). A standing instruction has no device."""
        return any(s.id == me.session_id and s.proven_by == "sms" for s in await self.devices(me.user_id))

    async def devices(self, user_id: str) -> list[SessionInfo]:
        async def work(tx: Transaction) -> list[SessionInfo]:
            return await self.store(tx).live_sessions(user_id, tx.now)

        return await self.uow.run("devices", work)

    async def logout(self, user_id: str, session_id: str | None = None) -> int:
        """End one session of the user, or all of them (``session_id=None``): returns how many."""

        async def work(tx: Transaction) -> int:
            return await self.store(tx).revoke(user_id, session_id, tx.now)

        return await self.uow.run("logout", work)
