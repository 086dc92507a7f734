"""In-memory doubles for the fast tier of use-case tests (tests/fast/): a transaction, a
runner, a ledger and the wallet's store, all in dictionaries.

They keep the real rules: the ledger decides with the ledger's own :func:`decide` (the same
function the database path runs), and a failed use case rolls every dictionary back, as a
database transaction would. What they do not have is a database: no SQL, no locks, no
concurrency. Those are tested against SQLite and PostgreSQL in tests/integration.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from mobipay.kernel.clock import ManualClock
from mobipay.kernel.events import Event
from mobipay.ledger import errors
from mobipay.ledger.decide import decide
from mobipay.ledger.model import (
    AccountSpec,
    AccountState,
    Command,
    HoldState,
    PostPending,
    Result,
    Reverse,
    Side,
    StoredTransfer,
    VoidPending,
)
from mobipay.merchants.model import App, Merchant, MerchantFile, MerchantState, Refund, StoreRecord, TradeRecord
from mobipay.merchants.store import MerchantStore
from mobipay.wallet.model import (
    Claim,
    KycTier,
    OtpChallenge,
    OtpPurpose,
    Payer,
    PinState,
    Recipient,
    Session,
    SessionInfo,
    SignedIn,
    StoredPin,
    StoredRequest,
    Usage,
    User,
    UserStatus,
)
from mobipay.wallet.store import WalletStore

T = TypeVar("T")


class MemoryLedger:
    """Accounts and transfers in dictionaries, decided by the ledger's :func:`decide`."""

    def __init__(self) -> None:
        self.accounts: dict[str, AccountState] = {}
        self.transfers: dict[str, StoredTransfer] = {}

    def open(self, spec: AccountSpec) -> AccountState:
        if spec.code not in self.accounts:
            self.accounts[spec.code] = AccountState(
                id=len(self.accounts) + 1, code=spec.code, kind=spec.kind, currency=spec.currency,
                debits_must_not_exceed_credits=spec.debits_must_not_exceed_credits,
                credits_must_not_exceed_debits=spec.credits_must_not_exceed_debits, credit_limit=spec.credit_limit,
                frozen=False, debits_posted=0, credits_posted=0, debits_pending=0, credits_pending=0, version=0)
        return self.accounts[spec.code]

    def post(self, commands: Sequence[Command], now: datetime) -> list[Result]:
        named = {c.pending_id for c in commands if isinstance(c, PostPending | VoidPending)}
        holds = {i: HoldState(self.transfers[i], None) for i in named if i in self.transfers}
        originals = {c.original_id: self.transfers[c.original_id] for c in commands
                     if isinstance(c, Reverse) and c.original_id in self.transfers}
        existing = {c.id: self.transfers[c.id] for c in commands if c.id in self.transfers}
        outcome = decide(commands, self.accounts, now=now, existing=existing, holds=holds, originals=originals)
        for stored in outcome.transfers:
            self.transfers[stored.id] = stored
        return outcome.results

    # the reads use cases make outside their transaction (LedgerReads)
    async def account(self, code: str) -> AccountState:
        if code not in self.accounts:
            raise errors.AccountNotFound(f"no account {code}")
        return self.accounts[code]

    async def transfer(self, transfer_id: str) -> StoredTransfer:
        if transfer_id not in self.transfers:
            raise errors.TransferNotFound(f"no transfer {transfer_id}")
        return self.transfers[transfer_id]

    async def history(self, code: str, *, after: int = 0, before: int | None = None, limit: int = 50,
                      codes: Sequence[str] | None = None, side: Side | None = None, since: datetime | None = None,
                      until: datetime | None = None, newest_first: bool = False
                      ) -> tuple[list[dict[str, Any]], int | None]:
        """The transfers touching ``code``, oldest first (no cursors: the fast tier's needs)."""
        lines = [{"id": t.id, "code": t.code, "amount": leg.amount, "side": leg.side.value}
                 for t in self.transfers.values() for leg in t.legs if leg.account == code]
        return (lines[::-1] if newest_first else lines)[:limit], None

    def balance(self, code: str) -> int:
        return self.accounts[code].balance


@dataclass
class MemoryTransaction:
    """:class:`~mobipay.ledger.uow.Transaction` in memory: events and audit entries in lists."""

    now: datetime
    ledger: MemoryLedger
    events: list[Event]
    audits: list[dict[str, Any]]

    async def post(self, commands: Sequence[Command]) -> list[Result]:
        return self.ledger.post(commands, self.now)

    async def open_account(self, spec: AccountSpec) -> AccountState:
        return self.ledger.open(spec)

    async def set_frozen(self, code: str, frozen: bool) -> None:
        self.ledger.accounts[code].frozen = frozen

    async def emit(self, event: Event) -> str:
        self.events.append(event)
        return event.key

    async def audit(self, *, actor: str, action: str, target: str, reason: str,
                    before: dict[str, Any] | None = None, after: dict[str, Any] | None = None) -> str:
        self.audits.append({"actor": actor, "action": action, "target": target, "reason": reason,
                            "before": before, "after": after})
        return f"aud_{len(self.audits)}"


@dataclass
class MemoryRunner:
    """:class:`~mobipay.ledger.uow.Runner` in memory: a use case that raises leaves every
    dictionary (ledger, store, events) as it found it."""

    clock: ManualClock
    ledger: MemoryLedger = field(default_factory=MemoryLedger)
    store: MemoryWalletStore = field(default_factory=lambda: MemoryWalletStore())
    merchant_store: MemoryMerchantStore = field(default_factory=lambda: MemoryMerchantStore())
    events: list[Event] = field(default_factory=list)
    audits: list[dict[str, Any]] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)

    async def run(self, use_case: str, work: Callable[[Any], Awaitable[T]]) -> T:
        saved = copy.deepcopy((self.ledger.accounts, self.ledger.transfers, self.store.__dict__,
                               self.merchant_store.__dict__, self.events, self.audits))
        self.runs.append(use_case)
        try:
            return await work(MemoryTransaction(self.clock.now(), self.ledger, self.events, self.audits))
        except BaseException:
            accounts, transfers, store, merchant_store, events, audits = saved
            self.ledger.accounts, self.ledger.transfers = accounts, transfers
            self.store.__dict__.update(store)
            self.merchant_store.__dict__.update(merchant_store)
            self.events[:], self.audits[:] = events, audits
            raise

    def stores(self, tx: Any) -> WalletStore:
        """The wallet's store factory (every transaction shares the one in memory)."""
        return self.store

    def merchant_stores(self, tx: Any) -> MerchantStore:
        """The merchants' store factory."""
        return self.merchant_store


class MemoryWalletStore:
    """:class:`~mobipay.wallet.store.WalletStore` in dictionaries."""

    def __init__(self) -> None:
        self.users: dict[str, User] = {}  # by id
        self.id_hmacs: dict[str, str] = {}
        self.real_names: dict[str, str] = {}
        self.otps: list[OtpChallenge] = []
        self.sessions: dict[str, Session] = {}
        self.pins: dict[str, StoredPin] = {}
        self.usages: dict[str, Usage] = {}
        self.claims: dict[str, Claim] = {}
        self.requests: dict[str, StoredRequest] = {}

    async def user_by_msisdn(self, msisdn: str) -> User | None:
        return next((u for u in self.users.values() if u.msisdn == msisdn), None)

    async def user_by_id(self, user_id: str) -> User | None:
        return self.users.get(user_id)

    async def payers(self, msisdns: Sequence[str]) -> dict[str, Payer]:
        found = {u.msisdn: u for u in self.users.values() if u.msisdn in msisdns}
        return {m: Payer(u, self.pins[u.id].state.locked_until if u.id in self.pins else None)
                for m, u in found.items()}

    async def add_user(self, user: User) -> None:
        self.users[user.id] = user

    async def subscribers(self, *, after: str, limit: int, cities: Sequence[str],
                          tiers: Sequence[int]) -> list[tuple[User, str | None]]:
        found = sorted((u for u in self.users.values() if u.msisdn > after and u.status is UserStatus.ACTIVE
                        and not cities and (not tiers or int(u.tier) in tiers)), key=lambda u: u.msisdn)
        return [(u, None) for u in found[:limit]]  # no home cities in memory: a city filter finds none

    async def set_status(self, user_id: str, status: UserStatus) -> None:
        self.users[user_id] = replace(self.users[user_id], status=status)

    async def set_tier3(self, user_id: str, at: datetime) -> None:
        self.users[user_id] = replace(self.users[user_id], tier=KycTier.TIER_3)

    async def id_hmac(self, user_id: str) -> str | None:
        return self.id_hmacs.get(user_id)

    async def real_name(self, user_id: str) -> str | None:
        return self.real_names.get(user_id)

    async def recipients(self, msisdns: Sequence[str]) -> dict[str, Recipient]:
        wanted = set(msisdns)
        return {u.msisdn: Recipient(u.id, u.account_code, u.status.value, self.real_names.get(u.id))
                for u in self.users.values() if u.msisdn in wanted}

    async def latest_otp(self, msisdn: str, purpose: OtpPurpose) -> OtpChallenge | None:
        mine = [o for o in self.otps if o.msisdn == msisdn and o.purpose is purpose]
        return max(mine, key=lambda o: o.sent_at) if mine else None

    async def add_otp(self, challenge: OtpChallenge) -> None:
        self.otps.append(challenge)

    def _otp(self, otp_id: str, **changes: Any) -> None:
        self.otps = [replace(o, **changes) if o.id == otp_id else o for o in self.otps]

    async def count_otp_try(self, otp_id: str) -> None:
        [o] = [o for o in self.otps if o.id == otp_id]
        self._otp(otp_id, attempts=o.attempts + 1)

    async def consume_otp(self, otp_id: str, at: datetime) -> None:
        self._otp(otp_id, consumed=True)

    async def add_session(self, session: Session) -> None:
        self.sessions[session.id] = session

    async def signed_in(self, access_hash: str) -> SignedIn | None:
        s = next((s for s in self.sessions.values() if s.access_hash == access_hash), None)
        if s is None:
            return None
        user = self.users[s.user_id]
        return SignedIn(s.id, s.user_id, user.msisdn, user.account_code, s.access_expires_at, s.revoked_at)

    async def session_by_refresh(self, refresh_hash: str) -> Session | None:
        return next((s for s in self.sessions.values() if s.refresh_hash == refresh_hash), None)

    async def revoke_reused(self, previous_refresh_hash: str, at: datetime) -> int:
        hit = [s for s in self.sessions.values()
               if s.previous_refresh_hash == previous_refresh_hash and s.revoked_at is None]
        for s in hit:
            self.sessions[s.id] = replace(s, revoked_at=at)
        return len(hit)

    async def rotate(self, session_id: str, *, access_hash: str, access_expires_at: datetime, refresh_hash: str,
                     previous_refresh_hash: str, refresh_expires_at: datetime, at: datetime) -> None:
        self.sessions[session_id] = replace(
            self.sessions[session_id], access_hash=access_hash, access_expires_at=access_expires_at,
            refresh_hash=refresh_hash, previous_refresh_hash=previous_refresh_hash,
            refresh_expires_at=refresh_expires_at, last_used_at=at)

    async def live_sessions(self, user_id: str, now: datetime) -> list[SessionInfo]:
        live = [s for s in self.sessions.values()
                if s.user_id == user_id and s.revoked_at is None and s.refresh_expires_at > now]
        return [SessionInfo(s.id, s.device_id, s.device_name, s.created_at, s.last_used_at, s.proven_by)
                for s in sorted(live, key=lambda s: s.created_at)]

    async def revoke(self, user_id: str, session_id: str | None, at: datetime) -> int:
        hit = [s for s in self.sessions.values() if s.user_id == user_id and s.revoked_at is None
               and session_id in (None, s.id)]
        for s in hit:
            self.sessions[s.id] = replace(s, revoked_at=at)
        return len(hit)

    async def pin(self, user_id: str, *, for_update: bool = False) -> StoredPin | None:
        return self.pins.get(user_id)

    async def add_pin(self, user_id: str, pin_hash: str, at: datetime) -> None:
        self.pins[user_id] = StoredPin(pin_hash, PinState(0, 0, None))

    async def put_pin(self, user_id: str, pin_hash: str, state: PinState, at: datetime) -> None:
        self.pins[user_id] = StoredPin(pin_hash, state)

    async def set_pin_state(self, user_id: str, state: PinState) -> None:
        self.pins[user_id] = StoredPin(self.pins[user_id].pin_hash, state)

    async def usage(self, user_id: str) -> Usage | None:
        return self.usages.get(user_id)

    async def put_usage(self, user_id: str, used: Usage, *, new: bool) -> None:
        assert new == (user_id not in self.usages)
        self.usages[user_id] = used

    async def add_claim(self, claim: Claim) -> None:
        self.claims[claim.id] = claim

    async def claim(self, claim_id: str) -> Claim | None:
        return self.claims.get(claim_id)

    async def claim_of_transfer(self, transfer_id: str) -> Claim | None:
        return next((c for c in self.claims.values() if c.transfer_id == transfer_id), None)

    async def waiting_claims(self, recipient_msisdn: str) -> list[Claim]:
        return [c for c in self.claims.values() if c.recipient_msisdn == recipient_msisdn and c.state == "waiting"]

    async def claims_due(self, now: datetime, limit: int) -> list[str]:
        return [c.id for c in self.claims.values() if c.state == "waiting" and c.expires_at <= now][:limit]

    async def settle_claim(self, claim_id: str, state: str, at: datetime) -> None:
        if self.claims[claim_id].state == "waiting":
            self.claims[claim_id] = replace(self.claims[claim_id], state=state)

    async def add_claims(self, many: Sequence[Claim]) -> None:
        for claim in many:
            self.claims[claim.id] = claim

    async def claim_states(self, transfer_ids: Sequence[str]) -> dict[str, str]:
        wanted = set(transfer_ids)
        return {c.transfer_id: c.state for c in self.claims.values() if c.transfer_id in wanted}

    async def money_request(self, request_id: str, *, for_update: bool = False) -> StoredRequest | None:
        return self.requests.get(request_id)

    async def add_money_request(self, request: StoredRequest) -> None:
        self.requests[request.id] = request

    async def requests_of_payer(self, msisdn: str, limit: int) -> list[StoredRequest]:
        mine = [r for r in self.requests.values() if r.payer_msisdn == msisdn]
        return sorted(mine, key=lambda r: r.created_at, reverse=True)[:limit]

    async def requests_by(self, user_id: str, limit: int) -> list[StoredRequest]:
        mine = [r for r in self.requests.values() if r.requester_id == user_id]
        return sorted(mine, key=lambda r: r.created_at, reverse=True)[:limit]

    async def settle_request(self, request_id: str, state: str, at: datetime,
                             transfer_id: str | None = None) -> None:
        r = self.requests[request_id]
        self.requests[request_id] = replace(r, state=state, transfer_id=transfer_id or r.transfer_id)

    async def requests_due(self, now: datetime, limit: int) -> list[StoredRequest]:
        due = [r for r in self.requests.values() if r.state == "open" and r.expires_at <= now]
        return sorted(due, key=lambda r: r.expires_at)[:limit]

    async def expire_request(self, request_id: str, now: datetime) -> bool:
        r = self.requests.get(request_id)
        if r is None or r.state != "open" or r.expires_at > now:
            return False
        self.requests[request_id] = replace(r, state="expired")
        return True


class MemoryMerchantStore:
    """:class:`~mobipay.merchants.store.MerchantStore` in dictionaries."""

    def __init__(self) -> None:
        self.merchants: dict[str, MerchantFile] = {}
        self.apps: dict[str, App] = {}
        self.nonces: dict[tuple[str, str], datetime] = {}
        self.stores: dict[str, tuple[str, str, str]] = {}  # id -> (merchant, name, address)
        self.store_cities: dict[str, str] = {}
        self.trades: dict[str, TradeRecord] = {}
        self.daily_paid: dict[tuple[str, date], int] = {}
        self.refunds: dict[tuple[str, str], Refund] = {}
        self.notifications: list[tuple[str, str, Mapping[str, str | int]]] = []  # (id, url, payload)

    async def merchant(self, merchant_id: str, *, for_update: bool = False) -> MerchantFile | None:
        return self.merchants.get(merchant_id)

    async def credit_code_taken(self, credit_code: str) -> bool:
        return any(m.merchant.credit_code == credit_code for m in self.merchants.values())

    async def add_merchant(self, merchant: MerchantFile) -> None:
        self.merchants[merchant.merchant.id] = merchant

    async def set_state(self, merchant_id: str, state: MerchantState, reason: str, at: datetime) -> None:
        f = self.merchants[merchant_id]
        self.merchants[merchant_id] = replace(f, merchant=replace(f.merchant, state=state, reason=reason),
                                              updated_at=at)

    async def put_application(self, merchant: MerchantFile, at: datetime) -> None:
        self.merchants[merchant.merchant.id] = replace(merchant, updated_at=at)

    async def find(self, *, state: MerchantState | None, q: str | None, mcc: str | None,
                   limit: int | None, oldest_first: bool = False) -> list[Merchant]:
        found = [f for f in self.merchants.values()
                 if (state is None or f.merchant.state is state) and (mcc is None or f.merchant.mcc == mcc)
                 and (q is None or any(q.lower() in v.lower() for v in (f.merchant.name, f.merchant.id,
                                                                         f.merchant.credit_code)))]
        if oldest_first:
            return [f.merchant for f in sorted(found, key=lambda f: f.created_at)][:limit]
        return [f.merchant for f in sorted(found, key=lambda f: (f.created_at, f.merchant.id), reverse=True)][:limit]

    async def add_app(self, app: App) -> None:
        self.apps[app.app_id] = app

    async def app(self, app_id: str) -> App | None:
        return self.apps.get(app_id)

    async def rotate_key(self, app_id: str, public_key: str, previous_key: str | None, until: datetime) -> None:
        self.apps[app_id] = replace(self.apps[app_id], public_key=public_key, previous_key=previous_key,
                                    previous_until=until)

    async def use_nonce(self, app_id: str, nonce: str, at: datetime, forget_before: datetime) -> bool:
        if (app_id, nonce) in self.nonces:
            return False
        self.nonces = {k: t for k, t in self.nonces.items() if t >= forget_before}
        self.nonces[(app_id, nonce)] = at
        return True

    async def add_store(self, store_id: str, merchant_id: str, name: str, address: str, at: datetime,
                        city: str = "") -> None:
        self.stores[store_id] = (merchant_id, name, address)
        self.store_cities[store_id] = city

    async def store_owner(self, store_id: str) -> str | None:
        return self.stores[store_id][0] if store_id in self.stores else None

    async def store_by_id(self, store_id: str) -> StoreRecord | None:
        if store_id not in self.stores:
            return None
        m, name, address = self.stores[store_id]
        return StoreRecord(store_id, m, name, address, datetime(2026, 1, 1, tzinfo=UTC), self.store_cities[store_id])

    async def stores_of(self, merchant_id: str) -> list[StoreRecord]:
        return [StoreRecord(sid, m, name, address, datetime(2026, 1, 1, tzinfo=UTC))
                for sid, (m, name, address) in self.stores.items() if m == merchant_id]

    async def trade(self, trade_id: str, *, for_update: bool = False) -> TradeRecord | None:
        return self.trades.get(trade_id)

    async def trade_by_out_no(self, merchant_id: str, out_trade_no: str) -> TradeRecord | None:
        return next((t for t in self.trades.values()
                     if (t.merchant_id, t.out_trade_no) == (merchant_id, out_trade_no)), None)

    async def add_trade(self, trade: TradeRecord) -> None:
        self.trades[trade.id] = trade

    async def add_trades(self, trades: Any) -> None:
        for trade in trades:
            self.trades[trade.id] = trade

    async def put_trade(self, trade: TradeRecord) -> None:
        self.trades[trade.id] = trade

    async def count_paid(self, merchant_id: str, day: date, amount: int, limit: int) -> int | None:
        paid = self.daily_paid.get((merchant_id, day), 0)
        if paid + amount > limit:
            return paid
        self.daily_paid[(merchant_id, day)] = paid + amount
        return None

    async def refund(self, trade_id: str, out_request_no: str) -> Refund | None:
        return self.refunds.get((trade_id, out_request_no))

    async def refund_by_request_no(self, merchant_id: str, out_request_no: str
                                   ) -> tuple[TradeRecord, Refund] | None:
        found = [(self.trades[r.trade_id], r) for (_, no), r in self.refunds.items()
                 if no == out_request_no and self.trades[r.trade_id].merchant_id == merchant_id]
        return max(found, key=lambda pair: pair[1].created_at) if found else None

    async def add_refund(self, refund: Refund) -> None:
        self.refunds[(refund.trade_id, refund.out_request_no)] = refund

    async def add_notification(self, notify_id: str, trade: TradeRecord, payload: Mapping[str, str | int],
                               at: datetime, *, encoding: str = "json") -> None:
        self.notifications.append((notify_id, trade.notify_url, payload))
