"""NFC device tokens: provisioned for a wallet on a bound device (an HCE phone's applet or a
SIM sticker card), their limited-use keys issued and replenished online, suspended at once
when the phone is lost (by the subscriber, by support, or by SMS ``GS``), and the deny list
terminals keep.

No key is stored: :meth:`NfcTokens.luk` derives any key of any token from the issuer key
(instore/nfc.py). A key row keeps its limits (count, cumulative amount, time to live) and its
use, so the platform refuses a tap past them whatever the device says.

The **deny list** holds every token that is suspended or whose wallet owes an offline tap
(a debt); each change has a version number, so a terminal asks for what changed since the
version it holds (:meth:`NfcTokens.deny_list`). :func:`relist` recomputes the listing of a
wallet's tokens in the caller's transaction, after anything that may change it.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from mobipay.instore import errors, nfc
from mobipay.instore.tables import nfc_deny_list, nfc_deny_version, nfc_keys, nfc_taps, nfc_tokens
from mobipay.kernel.clock import as_utc
from mobipay.kernel.errors import IdempotencyConflict, ValidationFailed
from mobipay.kernel.ids import check_idempotency_key, new_id
from mobipay.kernel.msisdn import normalize_msisdn
from mobipay.ledger.uow import UnitOfWork, UnitOfWorkRunner
from mobipay.platform.db import dialect_insert
from mobipay.wallet.service import Principal, WalletService

ACTIVE, SUSPENDED = "active", "suspended"
BY_SUBSCRIBER, BY_SUPPORT, BY_SMS = "subscriber", "support", "sms"


@dataclass(frozen=True, slots=True)
class Token:
    """A device token as its wallet, support and the tap routes see it (never a key)."""

    id: str
    user_id: str
    msisdn: str
    account_code: str
    kind: str
    device_id: str
    state: str
    suspended_by: str
    suspended_at: datetime | None
    atc_high: int
    key_seq: int
    created_at: datetime

    @property
    def active(self) -> bool:
        return self.state == ACTIVE


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A limited-use key as the device receives it: ``luk`` (base64 of 16 bytes) only in the
    answer to provisioning or replenishing, and again on a retry with the same key."""

    seq: int
    luk: str
    max_taps: int
    max_amount: int
    issued_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class DenyEntry:
    token_id: str
    listed: bool
    reason: str
    version: int


def token_of(row: Any) -> Token:
    return Token(row.id, row.user_id, row.msisdn, row.account_code, row.kind, row.device_id, row.state,
                 row.suspended_by, as_utc(row.suspended_at) if row.suspended_at else None, int(row.atc_high),
                 int(row.key_seq), as_utc(row.created_at))


def key_of(row: Any) -> nfc.KeyState:
    return nfc.KeyState(int(row.seq), int(row.max_taps), int(row.max_amount), as_utc(row.issued_at),
                        as_utc(row.expires_at), as_utc(row.retired_at) if row.retired_at else None,
                        int(row.used_taps), int(row.used_amount))


# ---------------------------------------------------------------------- the deny list


async def _next_version(conn: AsyncConnection) -> int:
    """The deny list's next version; the counter row's lock orders concurrent changes."""
    ins = dialect_insert(conn.dialect.name, nfc_deny_version)
    await conn.execute(ins.values(id=1, version=0).on_conflict_do_nothing())
    await conn.execute(update(nfc_deny_version).where(nfc_deny_version.c.id == 1)
                       .values(version=nfc_deny_version.c.version + 1))
    return int((await conn.execute(select(nfc_deny_version.c.version).where(nfc_deny_version.c.id == 1)))
               .scalar_one())


async def relist(conn: AsyncConnection, user_ids: Sequence[str], now: datetime) -> int:
    """Bring the deny list in line for the tokens of these wallets, in the caller's
    transaction: a suspended token is listed (``suspended``), any token of a wallet owing a
    tap is listed (``debt``), any other is not. Changes share one new version; answers how many
    entries changed."""
    if not user_ids:
        return 0
    users = sorted(set(user_ids))
    rows = list(await conn.execute(select(nfc_tokens.c.id, nfc_tokens.c.user_id, nfc_tokens.c.state)
                                   .where(nfc_tokens.c.user_id.in_(users))))
    owing = {r[0] for r in await conn.execute(select(nfc_taps.c.user_id).where(
        nfc_taps.c.user_id.in_(users), nfc_taps.c.state == "debt").distinct())}
    current = {r.token_id: r for r in await conn.execute(select(nfc_deny_list).where(
        nfc_deny_list.c.token_id.in_([r.id for r in rows])))} if rows else {}
    changes: list[tuple[str, str]] = []
    for r in rows:
        reason = "suspended" if r.state == SUSPENDED else "debt" if r.user_id in owing else ""
        now_row = current.get(r.id)
        if (now_row is None and not reason) or (now_row is not None and now_row.reason == reason):
            continue
        changes.append((r.id, reason))
    if not changes:
        return 0
    version = await _next_version(conn)
    for token_id, reason in changes:
        before = current.get(token_id)
        listed_at = (before.listed_at if before is not None and before.listed and reason else now if reason
                     else None)
        values = {"listed": 1 if reason else 0, "reason": reason, "version": version, "listed_at": listed_at,
                  "changed_at": now}
        if before is None:
            await conn.execute(insert(nfc_deny_list).values(token_id=token_id, **values))
        else:
            await conn.execute(update(nfc_deny_list).where(nfc_deny_list.c.token_id == token_id).values(**values))
    return len(changes)


class NfcTokens:
    """Provision, replenish, suspend and resume device tokens; the deny list."""

    def __init__(self, uow: UnitOfWorkRunner, wallet: WalletService, secret: bytes,
                 policy: nfc.NfcPolicy | None = None) -> None:
        self.uow = uow
        self.wallet = wallet
        self.policy = policy or nfc.NfcPolicy()
        self._issuer = nfc.issuer_master_key(secret)

    def luk(self, token_id: str, seq: int) -> bytes:
        """The limited-use key ``seq`` of a token, derived (never stored)."""
        return nfc.limited_use_key(nfc.token_master_key(self._issuer, token_id), token_id, seq)

    # ------------------------------------------------------------------ the subscriber's side

    async def _device(self, me: Principal) -> str:
        """The device the caller's session is on, when it is bound (opened with an SMS code)."""
        session = next((s for s in await self.wallet.devices(me.user_id) if s.id == me.session_id), None)
        if session is None or session.proven_by != "sms":
            raise errors.NfcDeviceNotBound("sign in on this device with an SMS code first")
        return session.device_id

    async def provision(self, me: Principal, kind: str, *, idempotency_key: str) -> tuple[Token, IssuedKey]:
        """A new token for the wallet on the caller's bound device, with its first key; a retry
        with the same Idempotency-Key answers the same token and key."""
        check_idempotency_key(idempotency_key)
        if kind not in nfc.KINDS:
            raise ValidationFailed(f"kind is one of {', '.join(nfc.KINDS)}", field="kind")
        device_id = await self._device(me)
        await self.wallet.authorize_payment(me, 0, None)  # an active wallet (USER_FROZEN otherwise)
        token_id = new_id("nft")

        async def work(uow: UnitOfWork) -> tuple[Token, IssuedKey]:
            known = (await uow.conn.execute(select(nfc_tokens).where(
                nfc_tokens.c.user_id == me.user_id, nfc_tokens.c.idempotency_key == idempotency_key))).first()
            if known is not None:
                if known.kind != kind:
                    raise IdempotencyConflict("this Idempotency-Key provisioned another kind of token",
                                                     field="Idempotency-Key")
                return token_of(known), await self._issued(uow, known.id, 1)
            live = (await uow.conn.execute(select(func.count()).select_from(nfc_tokens).where(
                nfc_tokens.c.user_id == me.user_id))).scalar_one()
            if int(live) >= self.policy.max_tokens:
                raise errors.NfcTokenLimit(f"at most {self.policy.max_tokens} NFC tokens a wallet")
            await uow.conn.execute(insert(nfc_tokens).values(
                id=token_id, user_id=me.user_id, msisdn=me.msisdn, account_code=me.account_code, kind=kind,
                device_id=device_id, state=ACTIVE, suspended_by="", atc_high=0, key_seq=0,
                idempotency_key=idempotency_key, created_at=uow.now))
            key = await self._new_key(uow, token_id, 1, idempotency_key)
            await relist(uow.conn, [me.user_id], uow.now)  # a wallet owing a tap: its new token is listed too
            return await self._token(uow, token_id), key

        return await self.uow.run("nfc_provision", work)

    async def replenish(self, me: Principal, token_id: str, *, idempotency_key: str) -> IssuedKey:
        """A new limited-use key for the token, from its own bound device; the previous key is
        retired at once (taps it made before still verify when uploaded). Same key: same answer."""
        check_idempotency_key(idempotency_key)
        device_id = await self._device(me)

        async def work(uow: UnitOfWork) -> IssuedKey:
            token = await self._own(uow, me.user_id, token_id, for_update=True)
            known = (await uow.conn.execute(select(nfc_keys.c.seq).where(
                nfc_keys.c.token_id == token_id, nfc_keys.c.idempotency_key == idempotency_key))).first()
            if known is not None:
                return await self._issued(uow, token_id, int(known.seq))
            if token.device_id != device_id:
                raise errors.NfcDeviceNotBound("keys are replenished on the token's own device")
            if not token.active:
                raise errors.NfcTokenSuspended("a suspended token gets no keys: resume it first")
            await uow.conn.execute(update(nfc_keys).where(nfc_keys.c.token_id == token_id,
                                                          nfc_keys.c.retired_at.is_(None)).values(retired_at=uow.now))
            return await self._new_key(uow, token_id, token.key_seq + 1, idempotency_key)

        return await self.uow.run("nfc_replenish", work)

    async def tokens(self, user_id: str) -> list[tuple[Token, nfc.KeyState | None, int]]:
        """The wallet's tokens, oldest first: each with its current key's state and the fen its
        wallet owes for offline taps."""

        async def work(uow: UnitOfWork) -> list[tuple[Token, nfc.KeyState | None, int]]:
            rows = [token_of(r) for r in await uow.conn.execute(select(nfc_tokens).where(
                nfc_tokens.c.user_id == user_id).order_by(nfc_tokens.c.created_at, nfc_tokens.c.id))]
            owed = int((await uow.conn.execute(select(func.coalesce(func.sum(nfc_taps.c.charged), 0)).where(
                nfc_taps.c.user_id == user_id, nfc_taps.c.state == "debt"))).scalar_one())
            out = []
            for t in rows:
                k = (await uow.conn.execute(select(nfc_keys).where(nfc_keys.c.token_id == t.id,
                                                                   nfc_keys.c.seq == t.key_seq))).first()
                out.append((t, key_of(k) if k is not None else None, owed))
            return out

        return await self.uow.run("nfc_tokens", work)

    async def suspend_mine(self, me: Principal, token_id: str) -> Token:
        """The subscriber suspends a token (a lost phone): refused everywhere at once, listed for terminals."""
        return await self._move(token_id, SUSPENDED, by=BY_SUBSCRIBER, actor=f"subscriber:{me.msisdn}",
                                reason="suspended by the subscriber", user_id=me.user_id)

    async def resume_mine(self, me: Principal, token_id: str) -> Token:
        """The subscriber resumes a token they suspended, from a bound device; one support
        suspended stays until support resumes it."""
        await self._device(me)
        return await self._move(token_id, ACTIVE, by=BY_SUBSCRIBER, actor=f"subscriber:{me.msisdn}",
                                reason="resumed by the subscriber", user_id=me.user_id)

    async def suspend_by_sms(self, raw_msisdn: str) -> list[Token]:
        """SMS ``GS`` (挂失) from the wallet's number: every live token of the wallet suspended."""
        msisdn = normalize_msisdn(raw_msisdn)

        async def work(uow: UnitOfWork) -> list[str]:
            return [r[0] for r in await uow.conn.execute(select(nfc_tokens.c.id).where(
                nfc_tokens.c.msisdn == msisdn, nfc_tokens.c.state == ACTIVE))]

        return [await self._move(t, SUSPENDED, by=BY_SMS, actor=f"sms:{msisdn}", reason="SMS GS (挂失)")
                for t in await self.uow.run("nfc_tokens_of", work)]

    async def suspend_by_support(self, token_id: str, *, actor: str, reason: str) -> Token:
        """Support suspends a token (the subscriber called): audited with the reason."""
        return await self._move(token_id, SUSPENDED, by=BY_SUPPORT, actor=actor, reason=reason)

    async def resume_by_support(self, token_id: str, *, actor: str, reason: str) -> Token:
        return await self._move(token_id, ACTIVE, by=BY_SUPPORT, actor=actor, reason=reason)

    async def find(self, raw_msisdn: str) -> list[Token]:
        """A wallet's tokens by its number (support)."""
        msisdn = normalize_msisdn(raw_msisdn)

        async def work(uow: UnitOfWork) -> list[Token]:
            return [token_of(r) for r in await uow.conn.execute(select(nfc_tokens).where(
                nfc_tokens.c.msisdn == msisdn).order_by(nfc_tokens.c.created_at))]

        return await self.uow.run("nfc_find", work)

    async def _move(self, token_id: str, to: str, *, by: str, actor: str, reason: str,
                    user_id: str | None = None) -> Token:
        if not actor.strip() or not reason.strip():
            raise ValidationFailed("say who and why (audited)", field="reason")

        async def work(uow: UnitOfWork) -> Token:
            token = (await self._own(uow, user_id, token_id, for_update=True) if user_id is not None
                     else await self._any(uow, token_id, for_update=True))
            if token.state == to:
                return token
            if to == ACTIVE and token.suspended_by == BY_SUPPORT and by != BY_SUPPORT:
                raise errors.NfcTokenSuspended("support suspended this token: call customer service to resume it")
            await uow.conn.execute(update(nfc_tokens).where(nfc_tokens.c.id == token_id).values(
                state=to, suspended_by=by if to == SUSPENDED else "",
                suspended_at=uow.now if to == SUSPENDED else None))
            await uow.audit(actor=actor, action=f"instore.nfc_token.{'suspend' if to == SUSPENDED else 'resume'}",
                            target=token_id, reason=reason, before={"state": token.state},
                            after={"state": to, "by": by})
            await relist(uow.conn, [token.user_id], uow.now)
            return await self._token(uow, token_id)

        return await self.uow.run(f"nfc_{to}", work)

    # ------------------------------------------------------------------ terminals

    async def deny_list(self, since: int = 0) -> tuple[int, list[DenyEntry]]:
        """(the current version, the entries changed after ``since``): from 0, every listed
        token; from a version a terminal holds, each change since (``listed`` false: remove)."""

        async def work(uow: UnitOfWork) -> tuple[int, list[DenyEntry]]:
            version = (await uow.conn.execute(select(nfc_deny_version.c.version).where(
                nfc_deny_version.c.id == 1))).scalar_one_or_none()
            query = select(nfc_deny_list).where(nfc_deny_list.c.version > since).order_by(
                nfc_deny_list.c.version, nfc_deny_list.c.token_id)
            if since <= 0:
                query = query.where(nfc_deny_list.c.listed == 1)
            entries = [DenyEntry(r.token_id, bool(r.listed), r.reason, int(r.version))
                       for r in await uow.conn.execute(query)]
            return int(version or 0), entries

        return await self.uow.run("nfc_deny_list", work)

    # ------------------------------------------------------------------ helpers

    async def _new_key(self, uow: UnitOfWork, token_id: str, seq: int, idempotency_key: str) -> IssuedKey:
        p = self.policy
        await uow.conn.execute(insert(nfc_keys).values(
            token_id=token_id, seq=seq, max_taps=p.key_taps, max_amount=p.key_amount, used_taps=0, used_amount=0,
            issued_at=uow.now, expires_at=uow.now + p.key_ttl, idempotency_key=idempotency_key))
        await uow.conn.execute(update(nfc_tokens).where(nfc_tokens.c.id == token_id).values(key_seq=seq))
        return await self._issued(uow, token_id, seq)

    async def _issued(self, uow: UnitOfWork, token_id: str, seq: int) -> IssuedKey:
        row = (await uow.conn.execute(select(nfc_keys).where(nfc_keys.c.token_id == token_id,
                                                             nfc_keys.c.seq == seq))).one()
        return IssuedKey(seq, base64.b64encode(self.luk(token_id, seq)).decode(), int(row.max_taps),
                         int(row.max_amount), as_utc(row.issued_at), as_utc(row.expires_at))

    @staticmethod
    async def _token(uow: UnitOfWork, token_id: str) -> Token:
        return token_of((await uow.conn.execute(select(nfc_tokens).where(nfc_tokens.c.id == token_id))).one())

    @staticmethod
    async def _any(uow: UnitOfWork, token_id: str, *, for_update: bool = False) -> Token:
        query = select(nfc_tokens).where(nfc_tokens.c.id == token_id)
        row = (await uow.conn.execute(query.with_for_update() if for_update else query)).first()
        if row is None:
            raise errors.NfcTokenUnknown(f"no NFC token {token_id}", field="token_id")
        return token_of(row)

    @staticmethod
    async def _own(uow: UnitOfWork, user_id: str, token_id: str, *, for_update: bool = False) -> Token:
        """One of the wallet's tokens; another wallet's looks exactly like a missing one."""
        query = select(nfc_tokens).where(nfc_tokens.c.id == token_id, nfc_tokens.c.user_id == user_id)
        row = (await uow.conn.execute(query.with_for_update() if for_update else query)).first()
        if row is None:
            raise errors.NfcTokenUnknown("no such NFC token in your wallet", field="token_id")
        return token_of(row)
