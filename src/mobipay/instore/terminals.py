"""POS terminals: registered per store of an approved merchant, each with its own Ed25519
key, disabled and enabled by the merchant, and every request they send verified.

A terminal's private key is made on the terminal (the merchant sends its public key) or by
the platform at registration and rotation, shown once and never kept: the platform stores
the public half only, so its database cannot sign as a till (docs/instore.md). Each use case
is one transaction; registering, rotating, disabling and enabling are audited like the
merchant portal's other operator actions.

:meth:`Terminals.verify` is the gate of every terminal request (``terminals_api.terminal``
is its FastAPI dependency): the headers' form, the timestamp within ±5 minutes, a known and
active terminal, the signature, then the nonce (recorded only for a request that verified,
so nobody can spend a terminal's nonces). A refusal changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from mobipay.instore import errors
from mobipay.instore.signature import check_public_key, new_key, signing_string, verifies
from mobipay.instore.tables import terminal_nonces, terminals
from mobipay.kernel.clock import as_utc
from mobipay.kernel.ids import new_id
from mobipay.ledger.uow import UnitOfWork, UnitOfWorkRunner
from mobipay.merchants.service import MerchantService, StoreRecord

WINDOW_S = 300  # a request's Timestamp may be this far from the platform's clock, either way
NONCE_KEEP = timedelta(seconds=2 * WINDOW_S)  # longer than any accepted request can come back
ACTIVE, DISABLED = "active", "disabled"

_LABEL = re.compile(r"[\x20-\x7e]{1,25}", re.ASCII)  # as EMV template 62 prints a terminal label
_NONCE = re.compile(r"[A-Za-z0-9_\-]{8,64}", re.ASCII)
_TERMINAL_ID = re.compile(r"[A-Za-z0-9_\-]{1,40}", re.ASCII)


@dataclass(frozen=True, slots=True)
class Terminal:
    """A POS terminal as its merchant and the routes it calls see it (never its key)."""

    id: str
    merchant_id: str
    store_id: str
    label: str
    state: str
    public_key: str
    created_at: datetime
    key_rotated_at: datetime | None
    disabled_at: datetime | None
    last_seen_at: datetime | None

    @property
    def active(self) -> bool:
        return self.state == ACTIVE


def _terminal(row: Any) -> Terminal:
    def at(value: datetime | None) -> datetime | None:
        return as_utc(value) if value is not None else None

    return Terminal(row.id, row.merchant_id, row.store_id, row.label, row.state, row.public_key,
                    as_utc(row.created_at), at(row.key_rotated_at), at(row.disabled_at), at(row.last_seen_at))


def check_label(label: str) -> str:
    label = label.strip()
    if not _LABEL.fullmatch(label):
        raise errors.InvalidTerminalField("a terminal's label is 1 to 25 printable ASCII characters (it is printed "
                                          "in dynamic QR codes), e.g. POS-01", field="label")
    return label


def _key(public_key: str | None) -> tuple[str, str | None]:
    """(the public key to keep, the private key to show once or None when the merchant sent its own)."""
    if public_key is None or not public_key.strip():
        private, public = new_key()
        return public, private
    try:
        return check_public_key(public_key), None
    except ValueError as exc:
        raise errors.InvalidTerminalField(f"{exc}: or send none and the platform makes a key, shown once",
                                          field="public_key") from None


class Terminals:
    """The use cases of POS terminals, for the merchant API, the portal and the terminal routes."""

    def __init__(self, uow: UnitOfWorkRunner, merchants: MerchantService) -> None:
        self.uow = uow
        self.merchants = merchants

    # ------------------------------------------------------------------ the merchant's side

    async def register(self, merchant_id: str, store_id: str, label: str, *, actor: str,
                       public_key: str | None = None) -> tuple[Terminal, str | None]:
        """A new active terminal of one of an approved merchant's stores: (the terminal, its
        private key when the platform made it: shown this once, kept nowhere)."""
        label = check_label(label)
        keep, private = _key(public_key)
        await self.merchants.set_up_merchant(merchant_id)  # MERCHANT_NOT_FOUND / MERCHANT_NOT_APPROVED
        store: StoreRecord = await self.merchants.own_store(merchant_id, store_id)  # another's: not found
        terminal_id = new_id("trm")

        async def work(uow: UnitOfWork) -> Terminal:
            await uow.conn.execute(insert(terminals).values(
                id=terminal_id, merchant_id=merchant_id, store_id=store.id, label=label, public_key=keep,
                state=ACTIVE, created_at=uow.now))
            await uow.audit(actor=actor, action="instore.terminal.register", target=terminal_id,
                            reason=f"terminal {label} of store {store.id}",
                            after={"store_id": store.id, "label": label, "state": ACTIVE,
                                   "key": "made by the platform" if private else "the merchant's"})
            return await self._own(uow, merchant_id, terminal_id)

        return await self.uow.run("terminal_register", work), private

    async def rotate_key(self, merchant_id: str, terminal_id: str, *, actor: str,
                         public_key: str | None = None) -> tuple[Terminal, str | None]:
        """A new key for the terminal; the old one stops verifying at once (a till is
        re-keyed when it is out of service, so no overlap is needed)."""
        keep, private = _key(public_key)

        async def work(uow: UnitOfWork) -> Terminal:
            await self._own(uow, merchant_id, terminal_id, for_update=True)
            await uow.conn.execute(update(terminals).where(terminals.c.id == terminal_id).values(
                public_key=keep, key_rotated_at=uow.now))
            await uow.audit(actor=actor, action="instore.terminal.rotate_key", target=terminal_id,
                            reason="new terminal key",
                            after={"key": "made by the platform" if private else "the merchant's"})
            return await self._own(uow, merchant_id, terminal_id)

        return await self.uow.run("terminal_rotate_key", work), private

    async def disable(self, merchant_id: str, terminal_id: str, *, actor: str) -> Terminal:
        """The terminal's requests are refused from now on (a lost or stolen till); again is a no-op."""
        return await self._move(merchant_id, terminal_id, DISABLED, actor=actor)

    async def enable(self, merchant_id: str, terminal_id: str, *, actor: str) -> Terminal:
        """A disabled terminal works again, with its key (only for a merchant still approved)."""
        await self.merchants.set_up_merchant(merchant_id)
        return await self._move(merchant_id, terminal_id, ACTIVE, actor=actor)

    async def _move(self, merchant_id: str, terminal_id: str, to: str, *, actor: str) -> Terminal:
        async def work(uow: UnitOfWork) -> Terminal:
            current = await self._own(uow, merchant_id, terminal_id, for_update=True)
            if current.state == to:
                return current
            await uow.conn.execute(update(terminals).where(terminals.c.id == terminal_id).values(
                state=to, disabled_at=uow.now if to == DISABLED else None))
            await uow.audit(actor=actor, action=f"instore.terminal.{'disable' if to == DISABLED else 'enable'}",
                            target=terminal_id, reason=f"terminal {current.label}",
                            before={"state": current.state}, after={"state": to})
            return await self._own(uow, merchant_id, terminal_id)

        return await self.uow.run(f"terminal_{to}", work)

    async def find(self, merchant_id: str, store_id: str | None = None) -> list[Terminal]:
        """The merchant's terminals (of one store, when given), oldest first."""

        async def work(uow: UnitOfWork) -> list[Terminal]:
            query = select(terminals).where(terminals.c.merchant_id == merchant_id)
            if store_id is not None:
                query = query.where(terminals.c.store_id == store_id)
            rows = await uow.conn.execute(query.order_by(terminals.c.created_at, terminals.c.id))
            return [_terminal(r) for r in rows]

        return await self.uow.run("terminals", work)

    async def terminal(self, merchant_id: str, terminal_id: str) -> Terminal:
        async def work(uow: UnitOfWork) -> Terminal:
            return await self._own(uow, merchant_id, terminal_id)

        return await self.uow.run("terminal", work)

    @staticmethod
    async def _own(uow: UnitOfWork, merchant_id: str, terminal_id: str, *, for_update: bool = False) -> Terminal:
        """One of the merchant's terminals; another merchant's looks exactly like a missing one."""
        query = select(terminals).where(terminals.c.id == terminal_id, terminals.c.merchant_id == merchant_id)
        row = (await uow.conn.execute(query.with_for_update() if for_update else query)).first()
        if row is None:
            raise errors.TerminalNotFound("no such terminal of yours", field="terminal_id")
        return _terminal(row)

    # ------------------------------------------------------------------ the terminal's side

    async def verify(self, *, terminal_id: str, timestamp: str, nonce: str, signature: str, method: str,
                     path: str, body: bytes) -> Terminal:
        """The terminal that signed this request, its nonce now used and its last-seen time
        updated; or the refusal (each its own code), with nothing recorded."""
        if not (_TERMINAL_ID.fullmatch(terminal_id) and timestamp.isascii() and timestamp.isdigit()
                and len(timestamp) <= 12 and _NONCE.fullmatch(nonce) and signature):
            raise errors.TerminalNotSigned("send Terminal-Id, Timestamp (Unix seconds, ASCII digits), Nonce (8-64 of "
                                           "A-Z a-z 0-9 _ -) and Signature (base64)")
        skew = self.uow.clock.now().timestamp() - int(timestamp)
        if abs(skew) > WINDOW_S:
            raise errors.TerminalClockSkew(f"the Timestamp is {abs(skew):.0f} s {'behind' if skew > 0 else 'ahead of'} "
                                           f"the platform's clock; at most {WINDOW_S} s is accepted")
        text = signing_string(terminal_id, method, path, timestamp, nonce, body)

        async def work(uow: UnitOfWork) -> Terminal:
            row = (await uow.conn.execute(select(terminals).where(terminals.c.id == terminal_id))).first()
            if row is None:
                raise errors.TerminalUnknown(f"no terminal {terminal_id}", field="Terminal-Id")
            found = _terminal(row)
            if not found.active:
                raise errors.TerminalDisabled(f"terminal {terminal_id} is disabled", field="Terminal-Id")
            if not verifies(found.public_key, text, signature):
                raise errors.TerminalBadSignature(field="Signature")
            seen = select(terminal_nonces.c.nonce).where(terminal_nonces.c.terminal_id == terminal_id,
                                                         terminal_nonces.c.nonce == nonce)
            if (await uow.conn.execute(seen)).first() is not None:
                raise errors.TerminalNonceReplayed(field="Nonce")
            try:
                await uow.conn.execute(insert(terminal_nonces).values(terminal_id=terminal_id, nonce=nonce,
                                                                      seen_at=uow.now))
            except IntegrityError:  # the same request racing itself: the other one was first
                raise errors.TerminalNonceReplayed(field="Nonce") from None
            await uow.conn.execute(delete(terminal_nonces).where(terminal_nonces.c.terminal_id == terminal_id,
                                                                 terminal_nonces.c.seen_at < uow.now - NONCE_KEEP))
            await uow.conn.execute(update(terminals).where(terminals.c.id == terminal_id).values(
                last_seen_at=uow.now))
            return replace(found, last_seen_at=uow.now)

        return await self.uow.run("terminal_verify", work)
