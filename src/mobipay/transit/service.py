"""The transit one-card (移动公交一卡通, 手机刷公交): operators, lines, stations, validators;
taps uploaded in batches and priced as they arrive; debts, the deny list and recovery; the
daily clearing per operator; disputes; the rider's trips and monthly statement.

**Validators** (bus readers, metro entry and exit gates) are registered with their own
Ed25519 key and sign every request as POS terminals do (instore/signature.py, through
:class:`mobipay.instore.service.DeviceTokens`). They work offline: they check the phone's NFC
device token locally (expiry, deny list, cryptogram) and upload taps later.

**Uploads** are safe to send again and may arrive late or out of order: a tap's id is a hash
of (token, validator, time), so a duplicate, in one upload or across uploads, is one row and
counts once. Each chunk of an upload is three steps, as the NFC uploads of the in-store
context: one transaction checks every tap (token known, key live at the tap, cryptogram),
records the new ones and prices the trips they complete (a bus tap at once; a metro entry
waits for its exit, or an exit for its entry, within the city's longest journey); one
``Ledger.post_batch`` posts the fares, from the wallet when it covers them, else from the
receivable of unpaid fares (the operator is paid either way: the platform carries the
risk); one transaction records the outcome, lists the tokens of wallets that now owe on the
transit deny list and asks for an SMS. A chunk interrupted after its first step is posted by
:meth:`Transit.repost` (the worker's loop; the transfer ids are the trips': never twice).

A metro tap left without its pair for longer than the journey limit and a grace (uploads
arrive late) is charged the city's missing-exit fare by :meth:`Transit.close_open`.

**Debts** are recovered from the wallet when money comes in (``wallet.credited``: a top-up)
or by :meth:`Transit.recover`; then the wallet's tokens leave the transit deny list. The
deny list validators download (:meth:`Transit.deny_list`) is the NFC deny list (suspended
tokens, e.g. a lost-phone report, listed at once; shop taps owed) together with the transit
one.

**Clearing**: per operator and Beijing day, a CSV file of every trip (taps, fares, the
discounts, debts) and its totals, and the net paid to the operator's bank account through the
bank gateway's payout (the order book, as the merchants' and the SPs' settlements).
:meth:`Transit.reconcile` compares it with the operator's own count (its back office).
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol

import structlog
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from mobipay.instore.service import DeviceTokens, TokenKeys
from mobipay.kernel.clock import SHANGHAI, as_utc
from mobipay.kernel.events import SmsRequested
from mobipay.kernel.ids import new_id
from mobipay.ledger.chart import BANK_SETTLEMENT
from mobipay.ledger.errors import TransferNotFound
from mobipay.ledger.model import AccountKind, AccountSpec, Leg, Transfer
from mobipay.ledger.uow import UnitOfWork, UnitOfWorkRunner
from mobipay.orders.model import OrderState
from mobipay.orders.payouts import BankPayouts
from mobipay.orders.service import OrderBook, PartnerOrder
from mobipay.platform.bulk import insert_many, insert_new, update_many
from mobipay.platform.db import dialect_insert
from mobipay.platform.outbox import Message
from mobipay.transit import errors, model
from mobipay.transit.model import ENTRY, EXIT, FLAT, METRO, FareRules, FareTable, Network, RiderState, Stop
from mobipay.transit.tables import (
    clearings,
    deny_list,
    deny_version,
    disputes,
    lines,
    operators,
    riders,
    stations,
    taps,
    trips,
    validator_nonces,
    validators,
)

log = structlog.get_logger(__name__)

#: What wallets owe for fares they could not pay when the taps arrived (the operator was paid).
FARES_RECEIVABLE = AccountSpec("asset:receivable:transit_fares", AccountKind.ASSET,
                               name="Transit fares owed by wallets")
PAYOUT = "transit_bank_payout"
BANK_FILE = "bank"
CHUNK = 10_000  # taps per check transaction
MAX_UPLOAD = 200_000  # taps in one upload
PAIR_GRACE = timedelta(hours=12)  # after the longest journey, how long a metro tap waits for its pair
CLEARING_AFTER = timedelta(hours=30)  # a day is cleared this long after it began (Beijing): late uploads are in
FUTURE_SKEW = timedelta(minutes=5)  # a validator's clock may run this far ahead
WINDOW_S = 300  # a signed request's Timestamp may be this far off
NONCE_KEEP = timedelta(minutes=15)
ACCEPTED, DUPLICATE, REFUSED = "accepted", "duplicate", "refused"
ACTIVE, DISABLED = "active", "disabled"


def operator_account(operator_id: str) -> str:
    return f"liability:transit:{operator_id}"


def tap_id(token_id: str, validator_id: str, tapped_at: datetime) -> str:
    """A tap's id: the same token at the same validator at the same moment is the same tap."""
    key = f"{token_id}|{validator_id}|{as_utc(tapped_at).isoformat(timespec='microseconds')}"
    return "ttp_" + hashlib.sha256(key.encode()).hexdigest()[:32]


def _trip_id(first_tap: str) -> str:
    return "ttr_" + first_tap.removeprefix("ttp_")


def wallet_transfer_id(trip_id: str) -> str:
    return f"transit:{trip_id}"


def debt_transfer_id(trip_id: str) -> str:
    return f"transit-debt:{trip_id}"


def recovery_transfer_id(trip_id: str) -> str:
    return f"transit-recovery:{trip_id}"


class TransitBankPayouts(BankPayouts):
    """The bank's payout call under the transit clearing's own partner name."""

    def __init__(self, base_url: str, secret: bytes, *, timeout_s: float = 5.0) -> None:
        super().__init__(base_url, secret, partner=PAYOUT, timeout_s=timeout_s)


class OperatorBackOffice(Protocol):
    """The operator's own count of a day (its back office: a SIMULATOR here)."""

    async def day_count(self, operator_id: str, day: date) -> tuple[int, int]:
        """(taps, fares) of the day as the operator counts them; fares -1 when it states none."""
        ...


# ---------------------------------------------------------------------- what callers see


@dataclass(frozen=True, slots=True)
class Operator:
    id: str
    city: str
    name: str
    mode: str
    bank_account: str
    account_code: str


@dataclass(frozen=True, slots=True)
class Line:
    id: str
    operator_id: str
    name: str


@dataclass(frozen=True, slots=True)
class Station:
    id: str
    line_id: str
    operator_id: str
    name: str
    position_m: int


@dataclass(frozen=True, slots=True)
class Validator:
    id: str
    operator_id: str
    line_id: str
    station_id: str | None
    role: str
    label: str
    public_key: str
    state: str
    city: str = ""
    mode: str = ""


@dataclass(frozen=True, slots=True)
class TapIn:
    """A tap as a validator read it from the phone (what the cryptogram covers, and the AC)."""

    token_id: str
    key_seq: int
    atc: int
    tapped_at: datetime
    unpredictable_number: str
    cvm: int
    cryptogram: str


@dataclass(frozen=True, slots=True)
class TapResult:
    token_id: str
    tapped_at: datetime
    result: str  # accepted | duplicate | refused
    tap_id: str = ""
    code: str = ""  # a refusal's code


@dataclass(frozen=True, slots=True)
class Trip:
    id: str
    city: str
    operator_id: str
    mode: str
    entry_station_id: str | None
    exit_station_id: str | None
    start_at: datetime
    end_at: datetime
    state: str
    missing: str
    meters: int
    base: int
    transfer_discount: int
    tier_discount: int
    cap_discount: int
    fare: int
    refunded: int
    day: date


@dataclass(frozen=True, slots=True)
class Clearing:
    id: str
    operator_id: str
    day: date
    taps: int
    trips: int
    base: int
    discounts: int
    fares: int
    debts: int
    refunds: int
    net: int
    state: str
    payout_id: str | None
    file: str
    operator_taps: int | None
    operator_fares: int | None
    reconciled: str


@dataclass(frozen=True, slots=True)
class Dispute:
    id: str
    trip_id: str
    tap_id: str
    state: str
    refund: int
    reason: str


@dataclass(frozen=True, slots=True)
class DenyItem:
    token_id: str
    listed: bool
    reason: str  # suspended | debt (NFC) | transit_debt


def _operator(r: Any) -> Operator:
    return Operator(r.id, r.city, r.name, r.mode, r.bank_account, r.account_code)


def _validator(r: Any, op: Any = None) -> Validator:
    return Validator(r.id, r.operator_id, r.line_id, r.station_id, r.role, r.label, r.public_key, r.state,
                     op.city if op is not None else "", op.mode if op is not None else "")


def _trip(r: Any) -> Trip:
    return Trip(r.id, r.city, r.operator_id, r.mode, r.entry_station_id, r.exit_station_id, as_utc(r.start_at),
                as_utc(r.end_at), r.state, r.missing, int(r.meters), int(r.base), int(r.transfer_discount),
                int(r.tier_discount), int(r.cap_discount), int(r.fare), int(r.refunded), r.day)


def _clearing(r: Any) -> Clearing:
    return Clearing(r.id, r.operator_id, r.day, int(r.taps), int(r.trips), int(r.base), int(r.discounts),
                    int(r.fares), int(r.debts), int(r.refunds), int(r.net), r.state, r.payout_id, r.file,
                    r.operator_taps, r.operator_fares, r.reconciled)


def _check_text(value: str, name: str, most: int) -> str:
    value = (value or "").strip()
    if not 1 <= len(value) <= most:
        raise errors.TransitInvalid(f"{name} is 1 to {most} characters", field=name)
    return value


@dataclass(slots=True)
class _Open:
    """An open metro trip as the pricing step holds it."""

    id: str
    user_id: str
    operator_id: str
    side: str  # entry | exit
    at: datetime
    station_id: str | None


@dataclass(frozen=True, slots=True)
class _Closed:
    """A metro trip already charged the missing-exit (or missing-entry) fare, as the pricing
    step holds it: its other tap may still arrive, uploaded late."""

    id: str
    side: str  # the side it has: entry | exit
    at: datetime
    station_id: str | None
    day: date
    base: int
    fare: int
    state: str  # paid | debt
    account_code: str
    cleared: bool  # its day was cleared with the operator: no re-pricing here


@dataclass(slots=True)
class _Priced:
    row: dict[str, Any]
    token: TokenKeys
    state: str = ""  # paid | debt | failed
    transfer_id: str = ""


@dataclass(slots=True)
class _Chunk:
    results: list[TapResult | None]
    priced: list[_Priced] = field(default_factory=list)


class Transit:
    """The transit one-card's use cases."""

    def __init__(self, uow: UnitOfWorkRunner, devices: DeviceTokens, orders: OrderBook,
                 payouts: TransitBankPayouts, fares: FareTable | None = None,
                 back_office: OperatorBackOffice | None = None) -> None:
        self.uow = uow
        self.devices = devices
        self.orders = orders
        self.fares = fares or FareTable.load()
        self.back_office = back_office
        orders.register(PAYOUT, payouts, file_of=BANK_FILE)
        orders.on_settled("transit.clearing", self._payout_settled)
        self._networks: dict[str, Network] = {}

    # ------------------------------------------------------------------ operators, lines, stations

    async def add_operator(self, city: str, name: str, mode: str, bank_account: str) -> Operator:
        """A bus company or a metro of a city with fares (its fares come from the city's data)."""
        city, name = _check_text(city, "city", 16), _check_text(name, "name", 80)
        if mode not in model.MODES:
            raise errors.TransitInvalid("mode is bus or metro", field="mode")
        if city not in self.fares.cities:
            raise errors.FaresNotDefined(f"no fares for {city}: the cities are {', '.join(self.fares.cities)}",
                                         field="city")
        bank_account = bank_account.strip()
        if not (bank_account.isdigit() and 8 <= len(bank_account) <= 34):
            raise errors.TransitInvalid("bank_account is 8 to 34 digits", field="bank_account")
        op_id = new_id("top")

        async def work(uow: UnitOfWork) -> Operator:
            found = (await uow.conn.execute(select(operators).where(operators.c.city == city,
                                                                    operators.c.name == name))).first()
            if found is not None:
                return _operator(found)
            await uow.open_account(AccountSpec(operator_account(op_id), AccountKind.LIABILITY, owner=op_id,
                                               name=f"Fares owed to {name}"))
            await uow.open_account(FARES_RECEIVABLE)
            await uow.conn.execute(insert(operators).values(id=op_id, city=city, name=name, mode=mode,
                                                            bank_account=bank_account,
                                                            account_code=operator_account(op_id),
                                                            created_at=uow.now))
            return _operator((await uow.conn.execute(select(operators).where(operators.c.id == op_id))).one())

        return await self.uow.run("transit_add_operator", work)

    async def operators(self, city: str | None = None) -> list[Operator]:
        async def work(uow: UnitOfWork) -> list[Operator]:
            q = select(operators).order_by(operators.c.city, operators.c.name)
            if city:
                q = q.where(operators.c.city == city)
            return [_operator(r) for r in await uow.conn.execute(q)]

        return await self.uow.run("transit_operators", work)

    async def operator(self, operator_id: str) -> Operator:
        async def work(uow: UnitOfWork) -> Operator:
            r = (await uow.conn.execute(select(operators).where(operators.c.id == operator_id))).first()
            if r is None:
                raise errors.OperatorNotFound(f"no transit operator {operator_id}", field="operator_id")
            return _operator(r)

        return await self.uow.run("transit_operator", work)

    async def add_line(self, operator_id: str, name: str) -> Line:
        name = _check_text(name, "name", 60)
        await self.operator(operator_id)
        line_id = new_id("tln")

        async def work(uow: UnitOfWork) -> Line:
            found = (await uow.conn.execute(select(lines).where(lines.c.operator_id == operator_id,
                                                                lines.c.name == name))).first()
            if found is None:
                await uow.conn.execute(insert(lines).values(id=line_id, operator_id=operator_id, name=name))
                return Line(line_id, operator_id, name)
            return Line(found.id, found.operator_id, found.name)

        return await self.uow.run("transit_add_line", work)

    async def add_station(self, line_id: str, name: str, position_m: int) -> Station:
        """A station (or a bus stop) at ``position_m`` along its line; a metro station of the
        same name on another line of the operator is an interchange."""
        name = _check_text(name, "name", 60)
        if not isinstance(position_m, int) or not 0 <= position_m <= 500_000:
            raise errors.TransitInvalid("position_m is 0 to 500,000 meters", field="position_m")
        station_id = new_id("tst")

        async def work(uow: UnitOfWork) -> Station:
            line = (await uow.conn.execute(select(lines).where(lines.c.id == line_id))).first()
            if line is None:
                raise errors.LineNotFound(f"no line {line_id}", field="line_id")
            found = (await uow.conn.execute(select(stations).where(stations.c.line_id == line_id,
                                                                   stations.c.name == name))).first()
            if found is not None:
                return Station(found.id, found.line_id, found.operator_id, found.name, found.position_m)
            await uow.conn.execute(insert(stations).values(id=station_id, line_id=line_id,
                                                           operator_id=line.operator_id, name=name,
                                                           position_m=position_m))
            self._networks.pop(line.operator_id, None)
            return Station(station_id, line_id, line.operator_id, name, position_m)

        return await self.uow.run("transit_add_station", work)

    async def network(self, operator_id: str) -> Network:
        """The operator's metro as a graph (cached; a new station drops the cache)."""
        net = self._networks.get(operator_id)
        if net is None:
            async def work(uow: UnitOfWork) -> list[Stop]:
                return [Stop(r.id, r.line_id, r.name, int(r.position_m)) for r in await uow.conn.execute(
                    select(stations).where(stations.c.operator_id == operator_id))]

            net = self._networks[operator_id] = Network(await self.uow.run("transit_network", work))
        return net

    async def lines_of(self, operator_id: str) -> list[tuple[Line, list[Station]]]:
        async def work(uow: UnitOfWork) -> list[tuple[Line, list[Station]]]:
            out = []
            for ln in await uow.conn.execute(select(lines).where(lines.c.operator_id == operator_id)
                                             .order_by(lines.c.name)):
                sts = [Station(s.id, s.line_id, s.operator_id, s.name, int(s.position_m))
                       for s in await uow.conn.execute(select(stations).where(stations.c.line_id == ln.id)
                                                       .order_by(stations.c.position_m))]
                out.append((Line(ln.id, ln.operator_id, ln.name), sts))
            return out

        return await self.uow.run("transit_lines", work)

    # ------------------------------------------------------------------ validators

    async def register_validator(self, operator_id: str, line_id: str, role: str, label: str, *,
                                 station_id: str | None = None, public_key: str | None = None
                                 ) -> tuple[Validator, str | None]:
        """A validator with its own Ed25519 key: (the validator, the private seed when the
        platform made the key; None when the validator sent its public key)."""
        label = _check_text(label, "label", 60)
        if role not in model.ROLES:
            raise errors.TransitInvalid("role is flat (a bus reader), entry or exit (metro gates)", field="role")
        seed: str | None = None
        if public_key is None:
            seed, public_key = self.devices.new_key()
        else:
            public_key = self.devices.check_public_key(public_key)
        validator_id = new_id("tvl")
        key = public_key

        async def work(uow: UnitOfWork) -> Validator:
            op = (await uow.conn.execute(select(operators).where(operators.c.id == operator_id))).first()
            if op is None:
                raise errors.OperatorNotFound(f"no transit operator {operator_id}", field="operator_id")
            line = (await uow.conn.execute(select(lines).where(lines.c.id == line_id,
                                                               lines.c.operator_id == operator_id))).first()
            if line is None:
                raise errors.LineNotFound(f"no line {line_id} of this operator", field="line_id")
            if op.mode == METRO:
                if role == FLAT:
                    raise errors.TransitInvalid("a metro gate is an entry or an exit", field="role")
                st = None if station_id is None else (await uow.conn.execute(select(stations).where(
                    stations.c.id == station_id, stations.c.line_id == line_id))).first()
                if st is None:
                    raise errors.StationNotFound("a metro gate stands at a station of its line", field="station_id")
            elif role != FLAT:
                raise errors.TransitInvalid("a bus reader's role is flat", field="role")
            await uow.conn.execute(insert(validators).values(
                id=validator_id, operator_id=operator_id, line_id=line_id,
                station_id=station_id if op.mode == METRO else None, role=role, label=label, public_key=key,
                state=ACTIVE, created_at=uow.now))
            await uow.audit(actor="transit", action="transit.validator_registered", target=validator_id,
                            reason=label)
            row = (await uow.conn.execute(select(validators).where(validators.c.id == validator_id))).one()
            return _validator(row, op)

        return await self.uow.run("transit_register_validator", work), seed

    async def set_validator_state(self, validator_id: str, state: str) -> Validator:
        if state not in (ACTIVE, DISABLED):
            raise errors.TransitInvalid("state is active or disabled", field="state")

        async def work(uow: UnitOfWork) -> Validator:
            moved = await uow.conn.execute(update(validators).where(validators.c.id == validator_id)
                                           .values(state=state))
            if not moved.rowcount:
                raise errors.ValidatorNotFound(f"no validator {validator_id}", field="validator_id")
            return await self._validator_in(uow, validator_id)

        return await self.uow.run("transit_validator_state", work)

    async def validators_of(self, operator_id: str) -> list[Validator]:
        async def work(uow: UnitOfWork) -> list[Validator]:
            op = (await uow.conn.execute(select(operators).where(operators.c.id == operator_id))).first()
            return [_validator(r, op) for r in await uow.conn.execute(
                select(validators).where(validators.c.operator_id == operator_id).order_by(validators.c.label))]

        return await self.uow.run("transit_validators", work)

    async def validator(self, validator_id: str) -> Validator:
        return await self.uow.run("transit_validator", lambda uow: self._validator_in(uow, validator_id))

    @staticmethod
    async def _validator_in(uow: UnitOfWork, validator_id: str) -> Validator:
        r = (await uow.conn.execute(select(validators).where(validators.c.id == validator_id))).first()
        if r is None:
            raise errors.ValidatorNotFound(f"no validator {validator_id}", field="validator_id")
        op = (await uow.conn.execute(select(operators).where(operators.c.id == r.operator_id))).one()
        return _validator(r, op)

    async def verify(self, *, validator_id: str, timestamp: str, nonce: str, signature: str, method: str,
                     path: str, body: bytes) -> Validator:
        """The validator that signed this request (the POS terminals' scheme, with the
        validator's id in place of the terminal's), its nonce now used; or the refusal."""
        if not (validator_id.startswith("tvl_") and len(validator_id) <= 40 and timestamp.isascii()
                and timestamp.isdigit() and len(timestamp) <= 12 and 8 <= len(nonce) <= 64 and signature):
            raise errors.ValidatorNotSigned("send Validator-Id, Timestamp (Unix seconds), Nonce (8-64 characters) "
                                            "and Signature (base64)")
        skew = self.uow.clock.now().timestamp() - int(timestamp)
        if abs(skew) > WINDOW_S:
            raise errors.ValidatorClockSkew(f"the Timestamp is {abs(skew):.0f} s off the platform's clock; at most "
                                            f"{WINDOW_S} s is accepted")
        text = self.devices.signing_string(validator_id, method, path, timestamp, nonce, body)

        async def work(uow: UnitOfWork) -> Validator:
            found = (await uow.conn.execute(select(validators).where(validators.c.id == validator_id))).first()
            if found is None or not self.devices.verifies(found.public_key, text, signature):
                raise errors.ValidatorBadSignature(field="Signature")
            if found.state != ACTIVE:
                raise errors.ValidatorDisabled(field="Validator-Id")
            seen = (await uow.conn.execute(select(validator_nonces.c.nonce).where(
                validator_nonces.c.validator_id == validator_id, validator_nonces.c.nonce == nonce))).first()
            if seen is not None:
                raise errors.ValidatorNonceReplayed(field="Nonce")
            try:
                await uow.conn.execute(insert(validator_nonces).values(validator_id=validator_id, nonce=nonce,
                                                                       seen_at=uow.now))
            except IntegrityError:
                raise errors.ValidatorNonceReplayed(field="Nonce") from None
            await uow.conn.execute(validator_nonces.delete().where(validator_nonces.c.validator_id == validator_id,
                                                                   validator_nonces.c.seen_at < uow.now - NONCE_KEEP))
            await uow.conn.execute(update(validators).where(validators.c.id == validator_id).values(
                last_seen_at=uow.now))
            return await self._validator_in(uow, validator_id)

        return await self.uow.run("transit_validator_verify", work)

    # ------------------------------------------------------------------ uploads

    async def upload(self, validator: Validator, batch: Sequence[TapIn]) -> list[TapResult]:
        """A validator's upload of offline taps: a result per tap, in order. Safe to send again."""
        if len(batch) > MAX_UPLOAD:
            raise errors.UploadTooLarge(f"at most {MAX_UPLOAD} taps in one upload")
        if validator.state != ACTIVE:
            raise errors.ValidatorDisabled(field="Validator-Id")
        settling: list[asyncio.Task[_Chunk]] = []
        try:
            for i in range(0, len(batch), CHUNK):
                if len(settling) >= 2:  # at most one chunk checked ahead of the one being settled
                    await asyncio.shield(settling[-2])
                checked = await self._check_chunk(validator, list(batch[i:i + CHUNK]))
                settling.append(asyncio.ensure_future(self._settle(checked, settling[-1] if settling else None)))
            results: list[TapResult] = []
            for task in settling:
                results += [r for r in (await task).results if r is not None]
        except BaseException:
            for task in settling:
                task.cancel()
            await asyncio.gather(*settling, return_exceptions=True)
            raise
        return results

    async def _settle(self, checked: _Chunk, after: asyncio.Task[_Chunk] | None) -> _Chunk:
        """A checked chunk posted (one ledger batch) and finished, once the chunk before it is:
        the wallets' balances are spent in chunk order (its failure fails this one too; what
        was checked and not posted is posted by :meth:`repost`)."""
        if after is not None:
            await asyncio.shield(after)
        await self._post(checked.priced)
        await self._finish(checked.priced)
        return checked

    async def _check_chunk(self, v: Validator, chunk: list[TapIn]) -> _Chunk:
        now = self.uow.clock.now()
        rules_day: dict[date, FareRules] = {}
        results: list[TapResult | None] = [None] * len(chunk)
        fresh: dict[str, tuple[int, TapIn]] = {}
        tokens = await self.devices.lookup([t.token_id for t in chunk])
        for i, t in enumerate(chunk):
            code = self._check_tap(t, tokens.get(t.token_id), v, now)
            if code:
                results[i] = TapResult(t.token_id, t.tapped_at, REFUSED, code=code)
                continue
            tid = tap_id(t.token_id, v.id, t.tapped_at)
            if tid in fresh:
                results[i] = TapResult(t.token_id, t.tapped_at, DUPLICATE, tid)
                continue
            day = model.day_of(t.tapped_at)
            if day not in rules_day:
                try:
                    rules_day[day] = self.fares.rules(v.city, day)
                except errors.FaresNotDefined as exc:
                    results[i] = TapResult(t.token_id, t.tapped_at, REFUSED, code=exc.code)
                    continue
            fresh[tid] = (i, t)
        net = await self.network(v.operator_id) if v.mode == METRO else None

        async def work(uow: UnitOfWork) -> _Chunk:
            out = _Chunk(list(results))
            pg = uow.conn.dialect.name == "postgresql"
            known: set[str] = set()
            if not pg:  # SQLite: the stored ones first (PostgreSQL: the insert below answers them)
                ids = list(fresh)
                for j in range(0, len(ids), 5000):
                    known |= set((await uow.conn.execute(select(taps.c.id).where(
                        taps.c.id.in_(ids[j:j + 5000])))).scalars())
            while True:
                new = sorted(((tid, i, t) for tid, (i, t) in fresh.items() if tid not in known),
                             key=lambda x: (x[2].tapped_at, x[0]))
                for tid in known:
                    i, t = fresh[tid]
                    out.results[i] = TapResult(t.token_id, t.tapped_at, DUPLICATE, tid)
                if not new:
                    return out
                pricing = _Pricing(self, uow, v, rules_day, net)
                await pricing.load({tokens[t.token_id].user_id for _, _, t in new}, new[0][2].tapped_at)
                tap_rows = []
                for tid, _, t in new:
                    token = tokens[t.token_id]
                    day = model.day_of(t.tapped_at)
                    trip_id = pricing.tap(tid, token, t.tapped_at, day)
                    tap_rows.append({"id": tid, "token_id": t.token_id, "user_id": token.user_id,
                                     "validator_id": v.id, "operator_id": v.operator_id, "city": v.city,
                                     "role": v.role, "station_id": v.station_id, "tapped_at": t.tapped_at,
                                     "atc": t.atc, "trip_id": trip_id, "day": day, "uploaded_at": uow.now})
                if pg:  # one statement: the duplicate check and the insert
                    stored = await insert_new(uow.conn, taps, tap_rows, "id")
                    if len(stored) < len(tap_rows):  # some were stored before (an upload sent again):
                        if stored:  # priced again without them (nothing else is written yet)
                            await uow.conn.execute(delete(taps).where(taps.c.id.in_(sorted(stored))))
                        known |= {tid for tid, _, _ in new} - stored
                        continue
                else:
                    await insert_many(uow.conn, taps, tap_rows)
                for tid, i, t in new:
                    out.results[i] = TapResult(t.token_id, t.tapped_at, ACCEPTED, tid)
                out.priced = await pricing.save()
                return out

        try:
            return await self.uow.run("transit_upload_check", work)
        except IntegrityError:  # the same taps uploaded at the same time: the other one was first
            return await self.uow.run("transit_upload_check", work)

    def _check_tap(self, t: TapIn, token: TokenKeys | None, v: Validator, now: datetime) -> str:
        """The refusal code of a tap that is not one a device made, or ''."""
        if not (isinstance(t.atc, int) and 0 <= t.atc <= 0xFFFF and isinstance(t.key_seq, int) and t.key_seq >= 1
                and t.tapped_at.tzinfo is not None and len(t.unpredictable_number) == 8
                and len(t.cryptogram) == 16 and t.cvm in (0, 1)):
            return errors.TapMalformed.code
        if t.tapped_at > now + FUTURE_SKEW:
            return errors.TapFuture.code
        if token is None:
            return errors.TapUnknownToken.code
        why = self.devices.tap_valid(token, key_seq=t.key_seq, atc=t.atc, tapped_at=t.tapped_at,
                                     unpredictable_number=t.unpredictable_number, cvm=t.cvm, reader_id=v.id,
                                     cryptogram=t.cryptogram)
        return errors.TapCryptogramInvalid.code if why else ""

    async def close_open(self) -> int:
        """Charge the missing-exit (or missing-entry) fare of every metro tap whose pair has not
        come within the longest journey and the grace: answers how many trips were closed."""
        now = self.uow.clock.now()
        closed = 0
        while True:
            async def work(uow: UnitOfWork) -> list[_Priced]:
                rows = list(await uow.conn.execute(select(trips).where(
                    trips.c.state == "open", trips.c.start_at < now - PAIR_GRACE).order_by(
                    trips.c.start_at, trips.c.id).limit(CHUNK)))
                priced: list[_Priced] = []
                by_op: dict[str, list[Any]] = {}
                for r in rows:
                    by_op.setdefault(r.operator_id, []).append(r)
                for op_id, group in by_op.items():
                    op = (await uow.conn.execute(select(operators).where(operators.c.id == op_id))).one()
                    v = Validator("", op_id, "", None, "", "", "", ACTIVE, op.city, op.mode)
                    pricing = _Pricing(self, uow, v, {}, None)
                    await pricing.load({r.user_id for r in group})
                    toks = await self.devices.lookup([r.token_id for r in group], conn=uow.conn)
                    for r in group:
                        rules = self.fares.rules(op.city, r.day)
                        assert rules.metro is not None
                        if now - as_utc(r.start_at) < rules.metro.max_journey + PAIR_GRACE:
                            continue
                        pricing.close(r, toks[r.token_id], rules)
                    priced += await pricing.save()
                return priced

            priced = await self.uow.run("transit_close_open", work)
            if not priced:
                return closed
            await self._post(priced)
            await self._finish(priced)
            closed += len(priced)

    async def _post(self, priced: list[_Priced]) -> None:
        """One ledger batch: from the wallet when it covers the fare (in trip order), else from
        the receivable (a debt); a wallet refused meanwhile goes to the receivable."""
        todo = [p for p in priced if int(p.row["fare"]) > 0]
        for p in priced:
            if int(p.row["fare"]) <= 0:
                p.state = "paid"
        if not todo:
            return
        ledger = self.uow.ledger
        codes = sorted({p.token.account_code for p in todo})
        available = {c: s.available for c, s in (await ledger.accounts(codes)).items()}
        for p in todo:
            fare = int(p.row["fare"])
            left = available.get(p.token.account_code, 0)
            if left >= fare:
                available[p.token.account_code] = left - fare
                p.state, p.transfer_id = "paid", wallet_transfer_id(p.row["id"])
            else:
                p.state, p.transfer_id = "debt", debt_transfer_id(p.row["id"])
        results = await ledger.post_batch([self._command(p) for p in todo])
        again = []
        for p, r in zip(todo, results, strict=True):
            if r.error is None:
                continue
            if p.state == "paid":
                p.state, p.transfer_id = "debt", debt_transfer_id(p.row["id"])
                again.append(p)
            else:
                p.state = "failed"
                log.error("transit.post_failed", trip=p.row["id"], code=r.error.code)
        if again:
            for p, r in zip(again, await ledger.post_batch([self._command(p) for p in again]), strict=True):
                if r.error is not None:
                    p.state = "failed"
                    log.error("transit.post_failed", trip=p.row["id"], code=r.error.code)

    @staticmethod
    def _command(p: _Priced) -> Transfer:
        fare = int(p.row["fare"])
        debt = p.state == "debt"
        source = FARES_RECEIVABLE.code if debt else p.token.account_code
        return Transfer(p.transfer_id, (Leg.debit(source, fare), Leg.credit(operator_account(p.row["operator_id"]),
                                                                            fare)),
                        "transit.fare_debt" if debt else "transit.fare", reference=f"公交一卡通 {p.row['city']}")

    async def _finish(self, priced: list[_Priced]) -> None:
        """The trips' outcome, the deny list of wallets that now owe, their SMS."""
        done = [p for p in priced if p.state in ("paid", "debt")]
        if not done:
            return

        async def work(uow: UnitOfWork) -> None:
            await update_many(uow.conn, trips, [{"id": p.row["id"], "state": p.state,
                                                 "transfer_id": p.transfer_id or None} for p in done],
                              keys=("id",), where={"state": "priced"})
            debtors = {p.token.user_id: p for p in done if p.state == "debt"}
            if debtors:
                await self._relist(uow, sorted(debtors))
            for p in debtors.values():
                await uow.emit(SmsRequested(key=f"{p.row['id']}:debt", to=p.token.msisdn, template="sms.reply",
                                            params={"text": _debt_text(int(p.row["fare"]))}))

        await self.uow.run("transit_upload_finish", work)

    async def repost(self) -> int:
        """Post the trips a chunk priced but did not post (an upload interrupted): each trip
        once (its transfer ids are its own)."""
        async def work(uow: UnitOfWork) -> list[Any]:
            return list(await uow.conn.execute(select(trips).where(
                trips.c.state == "priced", trips.c.priced_at < uow.now - timedelta(minutes=5)).limit(CHUNK)))

        rows = await self.uow.run("transit_priced", work)
        if not rows:
            return 0
        toks = await self.devices.lookup([r.token_id for r in rows])
        priced = []
        for r in rows:
            p = _Priced(dict(r._mapping), toks[r.token_id])
            for transfer_id, state in ((wallet_transfer_id(r.id), "paid"), (debt_transfer_id(r.id), "debt")):
                try:
                    await self.uow.ledger.transfer(transfer_id)
                except TransferNotFound:
                    continue
                p.state, p.transfer_id = state, transfer_id
            priced.append(p)
        await self._post([p for p in priced if not p.state])
        await self._finish(priced)
        return len(priced)

    # ------------------------------------------------------------------ debts and the deny list

    async def _relist(self, uow: UnitOfWork, user_ids: Sequence[str]) -> None:
        """List the tokens of wallets owing a fare, unlist the others of these wallets; each
        change gets the next version."""
        owing = set((await uow.conn.execute(select(trips.c.user_id).where(
            trips.c.user_id.in_(list(user_ids)), trips.c.state == "debt").distinct())).scalars())
        tokens = await self.devices.of_users(user_ids, conn=uow.conn)
        current = {r.token_id: int(r.listed) for r in await uow.conn.execute(
            select(deny_list.c.token_id, deny_list.c.listed).where(deny_list.c.user_id.in_(list(user_ids))))}
        changes = [(tok, user, 1 if user in owing else 0) for user in user_ids for tok in tokens.get(user, [])
                   if current.get(tok, 0) != (1 if user in owing else 0)]
        if not changes:
            return
        ins = dialect_insert(uow.conn.dialect.name, deny_version)
        await uow.conn.execute(ins.values(id=1, version=0).on_conflict_do_nothing())
        await uow.conn.execute(update(deny_version).where(deny_version.c.id == 1).values(
            version=deny_version.c.version + 1))
        version = int((await uow.conn.execute(select(deny_version.c.version).where(deny_version.c.id == 1)))
                      .scalar_one())
        for tok, user, listed in changes:
            values = {"listed": listed, "version": version, "changed_at": uow.now}
            if tok in current:
                await uow.conn.execute(update(deny_list).where(deny_list.c.token_id == tok).values(**values))
            else:
                await uow.conn.execute(insert(deny_list).values(token_id=tok, user_id=user, **values))

    async def deny_list(self, since: str = "", validator: Validator | None = None) -> tuple[str, list[DenyItem]]:
        """What a validator keeps: (the version ``<nfc>.<transit>``, the entries changed since the
        version it holds; from nothing, every listed token). The NFC part lists suspended tokens
        (a lost phone: at once) and shop taps owed; the transit part, fares owed."""
        nfc_since, transit_since = _versions(since)
        nfc_version, nfc_entries = await self.devices.deny_list(nfc_since)

        async def work(uow: UnitOfWork) -> tuple[int, list[Any]]:
            v = (await uow.conn.execute(select(deny_version.c.version).where(deny_version.c.id == 1))
                 ).scalar_one_or_none()
            q = select(deny_list).where(deny_list.c.version > transit_since).order_by(deny_list.c.version,
                                                                                     deny_list.c.token_id)
            if transit_since <= 0:
                q = q.where(deny_list.c.listed == 1)
            rows = list(await uow.conn.execute(q))
            if validator is not None:
                await uow.conn.execute(update(validators).where(validators.c.id == validator.id).values(
                    deny_version=f"{nfc_version}.{int(v or 0)}", deny_at=uow.now))
            return int(v or 0), rows

        transit_version, rows = await self.uow.run("transit_deny_list", work)
        items = [DenyItem(e.token_id, e.listed, e.reason) for e in nfc_entries]
        items += [DenyItem(r.token_id, bool(r.listed), "transit_debt") for r in rows]
        return f"{nfc_version}.{transit_version}", items

    async def stale_validators(self, older_than: timedelta = timedelta(hours=24)) -> list[Validator]:
        """Active validators that have not downloaded the deny list within ``older_than``
        (the list must reach every validator at least daily)."""
        async def work(uow: UnitOfWork) -> list[Validator]:
            limit = uow.now - older_than
            rows = await uow.conn.execute(select(validators).where(
                validators.c.state == ACTIVE, (validators.c.deny_at.is_(None)) | (validators.c.deny_at < limit)))
            return [_validator(r) for r in rows]

        return await self.uow.run("transit_stale_validators", work)

    async def owed(self, user_id: str) -> int:
        async def work(uow: UnitOfWork) -> int:
            return int(await uow.conn.scalar(select(func.coalesce(func.sum(trips.c.fare), 0)).where(
                trips.c.user_id == user_id, trips.c.state == "debt")) or 0)

        return await self.uow.run("transit_owed", work)

    async def recover(self, user_id: str) -> tuple[int, int]:
        """Pay the wallet's unpaid fares from its balance, oldest first, as far as it goes:
        (fen recovered, fen still owed); with nothing owed, its tokens leave the deny list."""
        async def work(uow: UnitOfWork) -> tuple[int, int]:
            rows = list(await uow.conn.execute(select(trips.c.id, trips.c.fare, trips.c.account_code).where(
                trips.c.user_id == user_id, trips.c.state == "debt").order_by(trips.c.start_at, trips.c.id)
                .with_for_update()))
            if not rows:
                return 0, 0
            account = rows[0].account_code
            take = rows  # decided in order: each is paid if what is left covers it
            results = await uow.post([Transfer(recovery_transfer_id(r.id), (
                Leg.debit(account, int(r.fare)), Leg.credit(FARES_RECEIVABLE.code, int(r.fare))),
                "transit.fare_recovery", reference="公交一卡通 欠费") for r in take])
            done = [r for r, res in zip(take, results, strict=True) if res.error is None]
            if done:
                await uow.conn.execute(update(trips).where(trips.c.id.in_([r.id for r in done])).values(
                    state="paid", recovered_at=uow.now))
                await self._relist(uow, [user_id])
            got = sum(int(r.fare) for r in done)
            return got, sum(int(r.fare) for r in rows) - got

        return await self.uow.run("transit_recover", work)

    async def on_wallet_credited(self, message: Message) -> None:
        """Outbox handler of ``wallet.credited`` (a top-up arrived): recover unpaid fares."""
        user_id = str(message.payload.get("user_id", ""))
        if user_id and await self.owed(user_id):
            got, left = await self.recover(user_id)
            log.info("transit.debt_recovered", user_id=user_id, recovered=got, still_owed=left)

    # ------------------------------------------------------------------ the rider's view

    async def trips_of(self, user_id: str, month: str) -> list[Trip]:
        """The rider's trips started in a Beijing month (YYYY-MM), newest first."""
        start, end = _month(month)

        async def work(uow: UnitOfWork) -> list[Trip]:
            return [_trip(r) for r in await uow.conn.execute(select(trips).where(
                trips.c.user_id == user_id, trips.c.start_at >= start, trips.c.start_at < end)
                .order_by(trips.c.start_at.desc(), trips.c.id))]

        return await self.uow.run("transit_trips", work)

    async def statement(self, user_id: str, month: str) -> tuple[str, dict[str, int]]:
        """The rider's monthly statement: CSV of every trip and the totals (fen)."""
        rows = sorted(await self.trips_of(user_id, month), key=lambda t: (t.start_at, t.id))
        names = await self.station_names()
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(["start", "end", "city", "mode", "from", "to", "km", "base", "transfer_discount",
                    "tier_discount", "cap_discount", "fare", "refunded", "state", "note"])
        for t in rows:
            w.writerow([t.start_at.astimezone(SHANGHAI).isoformat(timespec="seconds"),
                        t.end_at.astimezone(SHANGHAI).isoformat(timespec="seconds"), t.city, t.mode,
                        names.get(t.entry_station_id or "", ""), names.get(t.exit_station_id or "", ""),
                        f"{t.meters / 1000:.1f}", t.base, t.transfer_discount, t.tier_discount, t.cap_discount,
                        t.fare, t.refunded, t.state, f"missing {t.missing}" if t.missing else ""])
        done = [t for t in rows if t.state in ("paid", "debt")]
        totals = {"trips": len(done), "base": sum(t.base for t in done),
                  "discounts": sum(t.transfer_discount + t.tier_discount + t.cap_discount for t in done),
                  "fares": sum(t.fare for t in done), "refunded": sum(t.refunded for t in done),
                  "owed": sum(t.fare for t in done if t.state == "debt")}
        w.writerow(["total", "", "", "", "", "", "", totals["base"], "", "", "", totals["fares"], totals["refunded"],
                    "", f"discounts {totals['discounts']}; owed {totals['owed']}"])
        return out.getvalue(), totals

    async def station_names(self) -> dict[str, str]:
        async def work(uow: UnitOfWork) -> dict[str, str]:
            return {r.id: r.name for r in await uow.conn.execute(select(stations.c.id, stations.c.name))}

        return await self.uow.run("transit_station_names", work)

    # ------------------------------------------------------------------ disputes

    async def dispute(self, user_id: str, tap: str, reason: str) -> Dispute:
        """The rider disputes one tap (not theirs, charged twice, a gate that failed): one
        dispute per tap, decided by staff before the day is cleared."""
        reason = _check_text(reason, "reason", 200)

        async def work(uow: UnitOfWork) -> Dispute:
            t = (await uow.conn.execute(select(taps).where(taps.c.id == tap, taps.c.user_id == user_id))).first()
            if t is None:
                raise errors.TapNotFound("no such tap of yours", field="tap_id")
            found = (await uow.conn.execute(select(disputes).where(disputes.c.tap_id == tap))).first()
            if found is not None:
                return Dispute(found.id, found.trip_id, found.tap_id, found.state, int(found.refund), found.reason)
            cleared = (await uow.conn.execute(select(clearings.c.id).where(
                clearings.c.operator_id == t.operator_id, clearings.c.day == t.day))).first()
            trip = (await uow.conn.execute(select(trips).where(trips.c.id == t.trip_id))).one()
            if cleared is not None or (await uow.conn.execute(select(clearings.c.id).where(
                    clearings.c.operator_id == trip.operator_id, clearings.c.day == trip.day))).first():
                raise errors.DisputeInvalid("this day was cleared with the operator: call the operator's service "
                                            "line", field="tap_id")
            did = new_id("tdp")
            await uow.conn.execute(insert(disputes).values(id=did, trip_id=t.trip_id, tap_id=tap, user_id=user_id,
                                                           reason=reason, state="open", created_at=uow.now))
            return Dispute(did, t.trip_id, tap, "open", 0, reason)

        return await self.uow.run("transit_dispute", work)

    async def decide_dispute(self, dispute_id: str, uphold: bool, *, actor: str) -> Dispute:
        """Staff decide: upheld refunds the trip's fare (to the wallet; a fare still owed is
        written off the debt instead), from the operator's account; rejected changes nothing."""
        async def work(uow: UnitOfWork) -> Dispute:
            d = (await uow.conn.execute(select(disputes).where(disputes.c.id == dispute_id).with_for_update())
                 ).first()
            if d is None:
                raise errors.TapNotFound(f"no dispute {dispute_id}", field="dispute_id")
            if d.state != "open":
                return Dispute(d.id, d.trip_id, d.tap_id, d.state, int(d.refund), d.reason)
            trip = (await uow.conn.execute(select(trips).where(trips.c.id == d.trip_id).with_for_update())).one()
            if (await uow.conn.execute(select(clearings.c.id).where(
                    clearings.c.operator_id == trip.operator_id, clearings.c.day == trip.day))).first():
                raise errors.DisputeInvalid("this day was cleared meanwhile", field="dispute_id")
            refund = 0
            if uphold and trip.state in ("paid", "debt") and int(trip.fare) > int(trip.refunded):
                refund = int(trip.fare) - int(trip.refunded)
                to = FARES_RECEIVABLE.code if trip.state == "debt" else trip.account_code
                [r] = await uow.post([Transfer(f"transit-refund:{trip.id}", (
                    Leg.debit(operator_account(trip.operator_id), refund), Leg.credit(to, refund)),
                    "transit.fare_refund", reference="公交一卡通 申诉退款")])
                if r.error is not None:
                    raise r.error
                await uow.conn.execute(update(trips).where(trips.c.id == trip.id).values(
                    refunded=int(trip.refunded) + refund, state="paid" if trip.state == "debt" else trip.state))
                if trip.state == "debt":
                    await self._relist(uow, [trip.user_id])
            state = "upheld" if uphold else "rejected"
            await uow.conn.execute(update(disputes).where(disputes.c.id == d.id).values(
                state=state, refund=refund, decided_by=actor, decided_at=uow.now))
            await uow.audit(actor=actor, action=f"transit.dispute_{state}", target=d.tap_id, reason=d.reason)
            return Dispute(d.id, d.trip_id, d.tap_id, state, refund, d.reason)

        return await self.uow.run("transit_decide_dispute", work)

    async def disputes_open(self) -> list[Dispute]:
        async def work(uow: UnitOfWork) -> list[Dispute]:
            return [Dispute(d.id, d.trip_id, d.tap_id, d.state, int(d.refund), d.reason)
                    for d in await uow.conn.execute(select(disputes).where(disputes.c.state == "open")
                                                    .order_by(disputes.c.created_at))]

        return await self.uow.run("transit_disputes", work)

    # ------------------------------------------------------------------ clearing

    async def clear(self, operator_id: str, day: date) -> Clearing:
        """The day's clearing file of an operator and its payout (once per operator and day)."""
        start = datetime.combine(day, time(0), SHANGHAI).astimezone(UTC)
        if self.uow.clock.now() < start + CLEARING_AFTER:
            raise errors.ClearingNotDue(f"{day.isoformat()} is cleared from "
                                        f"{(start + CLEARING_AFTER).astimezone(SHANGHAI):%Y-%m-%d %H:%M} Beijing",
                                        field="day")
        await self.close_open()
        await self.repost()
        cid = f"{operator_id}:{day.isoformat()}"
        names = await self.station_names()

        async def work(uow: UnitOfWork) -> tuple[Clearing, bool]:
            found = (await uow.conn.execute(select(clearings).where(clearings.c.id == cid))).first()
            if found is not None:
                return _clearing(found), False
            op = (await uow.conn.execute(select(operators).where(operators.c.id == operator_id))).first()
            if op is None:
                raise errors.OperatorNotFound(f"no transit operator {operator_id}", field="operator_id")
            rows = list(await uow.conn.execute(select(trips).where(
                trips.c.operator_id == operator_id, trips.c.day == day, trips.c.state.in_(("paid", "debt")))
                .order_by(trips.c.start_at, trips.c.id)))
            n_taps = int(await uow.conn.scalar(select(func.count()).select_from(taps).where(
                taps.c.operator_id == operator_id, taps.c.day == day)) or 0)
            out = io.StringIO()
            w = csv.writer(out)
            w.writerow(["trip_id", "start", "end", "mode", "from", "to", "meters", "base", "transfer_discount",
                        "tier_discount", "cap_discount", "fare", "refunded", "state", "missing"])
            base = disc = fares = debts = refunds = 0
            for r in rows:
                w.writerow([r.id, as_utc(r.start_at).isoformat(), as_utc(r.end_at).isoformat(), r.mode,
                            names.get(r.entry_station_id or "", ""), names.get(r.exit_station_id or "", ""), r.meters,
                            r.base, r.transfer_discount, r.tier_discount, r.cap_discount, r.fare, r.refunded, r.state,
                            r.missing])
                base += int(r.base)
                disc += int(r.transfer_discount) + int(r.tier_discount) + int(r.cap_discount)
                fares += int(r.fare)
                refunds += int(r.refunded)
                debts += int(r.fare) if r.state == "debt" else 0
            net = fares - refunds
            w.writerow(["TOTAL", f"taps={n_taps}", f"trips={len(rows)}", "", "", "", "", base, "", "", "", fares,
                        refunds, f"debts={debts}", f"discounts={disc};net={net}"])
            state = "paying" if net > 0 else "nothing"
            await uow.conn.execute(insert(clearings).values(
                id=cid, operator_id=operator_id, day=day, taps=n_taps, trips=len(rows), base=base, discounts=disc,
                fares=fares, debts=debts, refunds=refunds, net=net, state=state, file=out.getvalue(),
                created_at=uow.now))
            return _clearing((await uow.conn.execute(select(clearings).where(clearings.c.id == cid))).one()), True

        clearing, new = await self.uow.run("transit_clear", work)
        if new and clearing.state == "paying":
            await self._pay(clearing)
            clearing = await self.clearing(cid)
        return clearing

    async def clear_all(self, day: date) -> list[Clearing]:
        return [await self.clear(op.id, day) for op in await self.operators()]

    async def clear_due(self) -> int:
        """The worker's loop: clear yesterday-but-one... every day that is due and not cleared
        (the last three days), for every operator."""
        today = model.day_of(self.uow.clock.now())
        n = 0
        for back in (3, 2, 1):
            day = today - timedelta(days=back)
            start = datetime.combine(day, time(0), SHANGHAI).astimezone(UTC)
            if self.uow.clock.now() < start + CLEARING_AFTER:
                continue
            for op in await self.operators():
                if await self._cleared(op.id, day) is None:
                    await self.clear(op.id, day)
                    n += 1
        return n

    async def _cleared(self, operator_id: str, day: date) -> str | None:
        async def work(uow: UnitOfWork) -> str | None:
            return (await uow.conn.execute(select(clearings.c.id).where(
                clearings.c.operator_id == operator_id, clearings.c.day == day))).scalar_one_or_none()

        return await self.uow.run("transit_cleared", work)

    async def _pay(self, c: Clearing) -> None:
        op = await self.operator(c.operator_id)
        order = await self.orders.place(
            "tcpo_" + hashlib.sha256(c.id.encode()).hexdigest()[:32], partner=PAYOUT, kind="transit.clearing",
            user_id=c.operator_id, msisdn="", amount=c.net, fee=0,
            legs=[Leg.debit(op.account_code, c.net), Leg.credit(BANK_SETTLEMENT, c.net)],
            details={"clearing": c.id, "account": op.bank_account}, reference=f"{op.name} {c.day.isoformat()}")

        async def link(uow: UnitOfWork) -> None:
            await uow.conn.execute(update(clearings).where(clearings.c.id == c.id).values(payout_id=order.id))

        await self.uow.run("transit_payout_link", link)

    async def _payout_settled(self, uow: UnitOfWork, order: PartnerOrder, state: OrderState) -> None:
        await uow.conn.execute(update(clearings).where(clearings.c.id == order.details["clearing"]).values(
            state="paid" if state is OrderState.SUCCEEDED else "failed"))

    async def clearing(self, clearing_id: str) -> Clearing:
        async def work(uow: UnitOfWork) -> Clearing:
            r = (await uow.conn.execute(select(clearings).where(clearings.c.id == clearing_id))).first()
            if r is None:
                raise errors.ClearingNotFound(f"no clearing {clearing_id}", field="clearing_id")
            return _clearing(r)

        return await self.uow.run("transit_clearing", work)

    async def reconcile(self, operator_id: str, day: date) -> Clearing:
        """Compare the day's clearing with the operator's own count (its back office): match
        or mismatch, both counts kept on the clearing."""
        if self.back_office is None:
            raise errors.TransitInvalid("no operator back office is configured (MOBIPAY_TRANSIT_OPERATOR_URL)")
        c = await self.clearing(f"{operator_id}:{day.isoformat()}")
        their_taps, their_fares = await self.back_office.day_count(operator_id, day)
        same = their_taps == c.taps and their_fares in (-1, c.fares)  # -1: the operator counts taps only
        verdict = "match" if same else "mismatch"

        async def work(uow: UnitOfWork) -> None:
            await uow.conn.execute(update(clearings).where(clearings.c.id == c.id).values(
                operator_taps=their_taps, operator_fares=None if their_fares < 0 else their_fares,
                reconciled=verdict))

        await self.uow.run("transit_reconcile", work)
        if verdict == "mismatch":
            log.warning("transit.reconciliation_mismatch", clearing=c.id, ours=(c.taps, c.fares),
                        theirs=(their_taps, their_fares))
        return await self.clearing(c.id)


# ---------------------------------------------------------------------- pricing in a transaction


class _Pricing:
    """The pricing step of one chunk, inside its check transaction: the riders' states and
    open metro trips of the chunk's wallets are read once, updated in memory tap by tap (in
    tap time order), and written back set-based."""

    def __init__(self, transit: Transit, uow: UnitOfWork, v: Validator, rules: dict[date, FareRules],
                 net: Network | None) -> None:
        self.t = transit
        self.uow = uow
        self.v = v
        self.rules = rules
        self.net = net
        self.states: dict[str, RiderState] = {}
        self.known_riders: set[str] = set()
        self.open: dict[str, list[_Open]] = {}
        self.new_trips: dict[str, dict[str, Any]] = {}
        self.updated_trips: dict[str, dict[str, Any]] = {}
        self.priced: list[_Priced] = []
        self.closed_open: set[str] = set()
        self.closed: dict[str, list[_Closed]] = {}
        self.late: list[tuple[_Closed, int]] = []  # trips completed by a late tap: the fen given back

    async def load(self, users: set[str], first: datetime | None = None) -> None:
        """Read the riders' states (locked) and, at a metro validator, the trips its taps (made
        from ``first`` on) may pair with: the open ones and the ones charged a missing fare.

        (No time window in these queries: with one, PostgreSQL's planner took the state index
        and read every open trip of the window, 75 ms instead of a few.)"""
        ids = sorted(users)
        conn = self.uow.conn
        late = True  # whether a trip charged the missing fare may be completed by these taps
        limits = [r.metro.max_journey for r in self.rules.values() if r.metro is not None]
        if first is not None and limits:
            # such a trip was charged (close_open) its journey limit and the grace after its
            # tap, so only a tap older than the grace (less the longest journey) can be its pair
            late = first <= self.uow.now - PAIR_GRACE + max(limits)
        for i in range(0, len(ids), 5000):
            part = ids[i:i + 5000]
            q = select(riders).where(riders.c.user_id.in_(part), riders.c.city == self.v.city)
            if conn.dialect.name == "postgresql":
                q = q.order_by(riders.c.user_id).with_for_update()
            for r in await conn.execute(q):
                self.known_riders.add(r.user_id)
                self.states[r.user_id] = RiderState(r.month, int(r.month_spent), r.day, int(r.day_spent),
                                                    as_utc(r.last_end) if r.last_end else None, r.last_mode)
            if self.v.mode == METRO and self.v.id:
                for r in await conn.execute(select(trips.c.id, trips.c.user_id, trips.c.operator_id,
                                                   trips.c.open_side, trips.c.start_at, trips.c.end_at,
                                                   trips.c.entry_station_id, trips.c.exit_station_id).where(
                        trips.c.user_id.in_(part), trips.c.state == "open",
                        trips.c.operator_id == self.v.operator_id)):
                    at = as_utc(r.start_at if r.open_side == ENTRY else r.end_at)
                    st = r.entry_station_id if r.open_side == ENTRY else r.exit_station_id
                    self.open.setdefault(r.user_id, []).append(_Open(r.id, r.user_id, r.operator_id, r.open_side,
                                                                     at, st))
                if late:
                    await self._load_closed(part)

    async def _load_closed(self, users: list[str]) -> None:
        """The riders' trips charged a missing-exit (or -entry) fare that nothing was given
        back on, whose other tap may come in this chunk: it completes the trip, never opens a
        new one (which would charge the missing fare a second time)."""
        conn = self.uow.conn
        rows = list(await conn.execute(select(
            trips.c.id, trips.c.user_id, trips.c.missing, trips.c.start_at, trips.c.end_at, trips.c.entry_station_id,
            trips.c.exit_station_id, trips.c.day, trips.c.base, trips.c.fare, trips.c.state, trips.c.account_code
        ).where(trips.c.user_id.in_(users), trips.c.operator_id == self.v.operator_id, trips.c.missing != "",
                trips.c.state.in_(("paid", "debt")), trips.c.refunded == 0)))
        if not rows:
            return
        cleared = set((await conn.execute(select(clearings.c.day).where(
            clearings.c.operator_id == self.v.operator_id,
            clearings.c.day.in_(sorted({r.day for r in rows}))))).scalars())
        for r in rows:
            side = ENTRY if r.missing == EXIT else EXIT
            at = as_utc(r.start_at if side == ENTRY else r.end_at)
            self.closed.setdefault(r.user_id, []).append(_Closed(
                r.id, side, at, r.entry_station_id if side == ENTRY else r.exit_station_id, r.day, int(r.base),
                int(r.fare), r.state, r.account_code, r.day in cleared))

    def tap(self, tid: str, token: TokenKeys, at: datetime, day: date) -> str:
        """Record one new tap (``day``: its Beijing day) of the chunk's validator; answers its trip's id."""
        v = self.v
        rules = self.rules[day]
        if v.role == FLAT:
            trip_id = _trip_id(tid)
            row = self._row(trip_id, token, at, at, entry=None, exit_=None)
            self._price(row, token, rules, rules.bus_flat)
            return trip_id
        assert rules.metro is not None and self.net is not None
        limit = rules.metro.max_journey
        mine = self.open.setdefault(token.user_id, [])
        want = EXIT if v.role == ENTRY else ENTRY
        match = None
        for o in mine:
            if o.side != want:
                continue
            gap = (o.at - at) if v.role == ENTRY else (at - o.at)
            if timedelta(0) <= gap <= limit and (match is None or abs(o.at - at) < abs(match.at - at)):
                match = o
        if match is None:
            late = self._late(token.user_id, at, want, limit)
            if late is not None:
                return self._complete(late, token, at)
            trip_id = _trip_id(tid)
            row = self._row(trip_id, token, at, at, entry=v.station_id if v.role == ENTRY else None,
                            exit_=v.station_id if v.role == EXIT else None)
            row["state"], row["open_side"] = "open", v.role
            self.new_trips[trip_id] = row
            mine.append(_Open(trip_id, token.user_id, v.operator_id, v.role, at, v.station_id))
            return trip_id
        mine.remove(match)
        entry_st, exit_st = (v.station_id, match.station_id) if v.role == ENTRY else (match.station_id,
                                                                                      v.station_id)
        start, end = (at, match.at) if v.role == ENTRY else (match.at, at)
        assert entry_st is not None and exit_st is not None
        meters = self.net.distance(entry_st, exit_st)
        row = self.new_trips.get(match.id) or {"id": match.id}
        row.update(entry_station_id=entry_st, exit_station_id=exit_st, start_at=start, end_at=end, open_side="",
                   meters=meters, day=model.day_of(start))
        if match.id not in self.new_trips:
            self.updated_trips[match.id] = row
        self._price(row, token, self.rules.get(model.day_of(start)) or rules,
                    model.distance_fare(rules.metro, meters))
        return match.id

    def _late(self, user_id: str, at: datetime, want: str, limit: timedelta) -> _Closed | None:
        """The charged trip this tap is the missing side of (the nearest within the journey limit)."""
        best = None
        for c in self.closed.get(user_id, ()):
            gap = (c.at - at) if self.v.role == ENTRY else (at - c.at)
            if c.side == want and timedelta(0) <= gap <= limit and (best is None or abs(c.at - at) < abs(best.at - at)):
                best = c
        return best

    def _complete(self, c: _Closed, token: TokenKeys, at: datetime) -> str:
        """A late tap completes a trip charged the missing fare: the trip gets its stations and
        its distance fare, and what it was charged above that is given back (to the wallet, or
        off the debt). The discounts it had keep their share (a tier's 20% stays 20%). On a day
        already cleared with the operator the tap is kept with the trip and nothing is re-priced:
        the rider's dispute goes to the operator."""
        self.closed[token.user_id].remove(c)
        v = self.v
        entry_st, exit_st = (v.station_id, c.station_id) if v.role == ENTRY else (c.station_id, v.station_id)
        if c.cleared or entry_st is None or exit_st is None or self.net is None:
            return c.id
        start, end = (at, c.at) if v.role == ENTRY else (c.at, at)
        metro = self.t.fares.rules(v.city, c.day).metro
        assert metro is not None
        meters = self.net.distance(entry_st, exit_st)
        base = model.distance_fare(metro, meters)
        fare = min(c.fare, c.fare * base // c.base) if c.base else 0
        self.updated_trips[c.id] = {"id": c.id, "entry_station_id": entry_st, "exit_station_id": exit_st,
                                    "start_at": start, "end_at": end, "meters": meters, "missing": "",
                                    "open_side": "", "base": base, "fare": fare}
        back = c.fare - fare
        if back:
            self.late.append((c, back))
            state = self.states.get(token.user_id)
            if state is not None:  # what the month's tiers and the day's cap count
                month = model.day_of(start).strftime("%Y-%m")
                self.states[token.user_id] = replace(
                    state, month_spent=max(0, state.month_spent - back) if state.month == month else state.month_spent,
                    day_spent=max(0, state.day_spent - back) if state.day == c.day else state.day_spent)
        return c.id

    def close(self, r: Any, token: TokenKeys, rules: FareRules) -> None:
        """An open metro trip past its time: the missing-exit fare."""
        assert rules.metro is not None
        row: dict[str, Any] = {"id": r.id, "open_side": "", "missing": EXIT if r.open_side == ENTRY else ENTRY,
                               "mode": METRO, "operator_id": r.operator_id, "city": r.city}
        self.updated_trips[r.id] = row
        self._price(row, token, rules, rules.metro.missing_exit_fare, start=as_utc(r.start_at), end=as_utc(r.end_at))

    def _row(self, trip_id: str, token: TokenKeys, start: datetime, end: datetime, *, entry: str | None,
             exit_: str | None) -> dict[str, Any]:
        return {"id": trip_id, "user_id": token.user_id, "token_id": token.id, "account_code": token.account_code,
                "msisdn": token.msisdn, "city": self.v.city, "operator_id": self.v.operator_id, "mode": self.v.mode,
                "entry_station_id": entry, "exit_station_id": exit_, "start_at": start, "end_at": end,
                "open_side": "", "missing": "", "meters": 0, "base": 0, "transfer_discount": 0, "tier_discount": 0,
                "cap_discount": 0, "fare": 0, "state": "priced", "transfer_id": None, "refunded": 0,
                "day": model.day_of(start), "created_at": self.uow.now, "priced_at": None, "recovered_at": None}

    def _price(self, row: dict[str, Any], token: TokenKeys, rules: FareRules, base: int, *,
               start: datetime | None = None, end: datetime | None = None) -> None:
        start = start or row["start_at"]
        end = end or row["end_at"]
        assert start is not None and end is not None
        state = self.states.get(token.user_id, RiderState())
        priced, after = model.price(rules, self.v.mode, base, start, end, state)
        self.states[token.user_id] = after
        row.update(base=priced.base, transfer_discount=priced.transfer_discount, tier_discount=priced.tier_discount,
                   cap_discount=priced.cap_discount, fare=priced.fare, state="priced", priced_at=self.uow.now)
        if row["id"] not in self.new_trips and row["id"] not in self.updated_trips:
            self.new_trips[row["id"]] = row
        full = {"id": row["id"], "fare": priced.fare, "operator_id": row.get("operator_id", self.v.operator_id),
                "city": row.get("city", self.v.city)}
        self.priced.append(_Priced(full, token))

    async def save(self) -> list[_Priced]:
        conn = self.uow.conn
        await insert_many(conn, trips, list(self.new_trips.values()))
        if self.updated_trips:
            by_keys: dict[tuple[str, ...], list[dict[str, Any]]] = {}
            for row in self.updated_trips.values():
                by_keys.setdefault(tuple(sorted(row)), []).append(row)
            for group in by_keys.values():
                await update_many(conn, trips, [{k: r[k] for k in sorted(r) if k not in ("mode", "operator_id",
                                                                                         "city")}
                                                for r in group], keys=("id",))
        fresh = [{"user_id": u, "city": self.v.city, **_state_row(s)} for u, s in self.states.items()
                 if u not in self.known_riders]
        old = [{"user_id": u, "city": self.v.city, **_state_row(s)} for u, s in self.states.items()
               if u in self.known_riders]
        await insert_many(conn, riders, fresh)
        await update_many(conn, riders, old, keys=("user_id", "city"))
        if self.late:  # in this transaction: the trip's new fare and the money given back commit together
            results = await self.uow.post([Transfer(
                f"transit-late-pair:{c.id}",
                (Leg.debit(operator_account(self.v.operator_id), back),
                 Leg.credit(FARES_RECEIVABLE.code if c.state == "debt" else c.account_code, back)),
                "transit.fare_repriced", reference="公交一卡通 补传出站 退差价") for c, back in self.late])
            for r in results:
                if r.error is not None:
                    raise r.error
        return self.priced


def _state_row(s: RiderState) -> dict[str, Any]:
    return {"month": s.month, "month_spent": s.month_spent, "day": s.day, "day_spent": s.day_spent,
            "last_end": s.last_end, "last_mode": s.last_mode}


def _versions(since: str) -> tuple[int, int]:
    if not since:
        return 0, 0
    a, _, b = since.partition(".")
    if not (a.isdigit() and b.isdigit()):
        raise errors.TransitInvalid("since is the version a validator holds, as <nfc>.<transit> (e.g. 12.3)",
                                    field="since")
    return int(a), int(b)


def _month(month: str) -> tuple[datetime, datetime]:
    try:
        year, mon = (int(p) for p in month.split("-"))
        start = datetime(year, mon, 1, tzinfo=SHANGHAI)
    except ValueError:
        raise errors.TransitInvalid(f"a month is written YYYY-MM, not {month!r}", field="month") from None
    end = datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=SHANGHAI)
    return start.astimezone(UTC), end.astimezone(UTC)


def _debt_text(fen: int) -> str:
    return (f"您的公交一卡通乘车费{fen / 100:.2f}元因余额不足未能扣款，充值后将自动扣回，此前手机刷公交暂停使用。"
            f"A transit fare of {fen / 100:.2f} CNY could not be paid: your next top-up pays it; until then your "
            "phone cannot ride.")


__all__ = ["FARES_RECEIVABLE", "Clearing", "DenyItem", "Dispute", "Line", "Operator", "OperatorBackOffice",
           "Station", "TapIn", "TapResult", "Transit", "TransitBankPayouts", "Trip", "Validator"]
