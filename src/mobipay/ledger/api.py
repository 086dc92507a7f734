"""Internal ledger API (``/v1/ledger``) for operators and trusted back-office systems.

Guarded by the admin bearer token until the operator console brings roles. Products never
call this over HTTP: they call :class:`~mobipay.ledger.service.Ledger` in-process. The
``Idempotency-Key`` header is the id of the transfer it creates, so a retry with the same
key and body returns the first transfer (``Idempotent-Replayed: true``) and a retry with
another body is refused with ``IDEMPOTENCY_CONFLICT``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt

from mobipay.kernel.errors import IdempotencyKeyMissing
from mobipay.kernel.money import CURRENCIES, MAX_AMOUNT
from mobipay.ledger.model import (
    AccountKind,
    AccountState,
    Command,
    Leg,
    PostPending,
    Result,
    Reverse,
    Side,
    StoredTransfer,
    Transfer,
    VoidPending,
)
from mobipay.ledger.service import AccountSpec, Ledger
from mobipay.platform.api_common import require_admin


async def ledger_of(request: Request) -> Ledger:
    ledger: Ledger = request.app.state.container.ledger
    return ledger




router = APIRouter(prefix="/v1/ledger", tags=["ledger"], dependencies=[Depends(require_admin)])
LedgerDep = Annotated[Ledger, Depends(ledger_of)]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=128)]


def _iso_4217(code: str) -> str:
    if code not in CURRENCIES:
        raise ValueError(f"{code!r} is not an ISO 4217 currency code")
    return code


#: The ledger keeps any ISO 4217 currency (the wallet moves CNY only).
Currency = Annotated[str, Field(default="CNY", pattern=r"^[A-Z]{3}$", description="ISO 4217 code"),
                     AfterValidator(_iso_4217)]


class MoneyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: StrictInt = Field(gt=0, le=MAX_AMOUNT, description="Integer number of fen (minor units); floats are "
                              "refused")
    currency: Currency = "CNY"


class LegIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account: str = Field(min_length=1, max_length=128)
    side: Literal["debit", "credit"]
    amount: MoneyIn


class TransferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(description="What kind of money move, e.g. p2p, topup, fee", max_length=64)
    legs: list[LegIn] = Field(min_length=2, max_length=64)
    reference: str = Field(default="", max_length=256)
    metadata: dict[str, Any] | None = None
    pending: bool = Field(default=False, description="A hold: reserve now, post or void later")
    timeout_s: StrictInt | None = Field(default=None, description="Holds only: seconds until auto-void")


class PostIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: MoneyIn | None = Field(default=None, description="Post part of a two-leg hold; omit for all")
    reference: str = Field(default="", max_length=256)


class PlainIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reference: str = Field(default="", max_length=256)


class MoneyOut(BaseModel):
    amount: int
    currency: str


class LegOut(BaseModel):
    account: str
    side: Literal["debit", "credit"]
    amount: MoneyOut


class TransferOut(BaseModel):
    id: str
    type: str
    code: str
    legs: list[LegOut]
    reference: str
    metadata: dict[str, Any] | None
    created_at: datetime
    pending_id: str | None = None
    reversal_of: str | None = None
    expires_at: datetime | None = None


class AccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9:_.+\-]+$")
    kind: AccountKind
    currency: Currency = "CNY"
    owner: str | None = Field(default=None, max_length=128)
    name: str = Field(default="", max_length=256)
    debits_must_not_exceed_credits: bool = False
    credits_must_not_exceed_debits: bool = False
    credit_limit: StrictInt = Field(default=0, ge=0, le=MAX_AMOUNT, description="Fen")


class AccountOut(BaseModel):
    code: str
    kind: AccountKind
    currency: str
    frozen: bool
    balance: MoneyOut = Field(description="Posted balance on the account's normal side")
    available: MoneyOut = Field(description="Posted balance less pending outflows")
    debits_posted: int
    credits_posted: int
    debits_pending: int
    credits_pending: int


class EntryOut(BaseModel):
    seq: int
    transfer_id: str
    code: str
    type: str
    reference: str
    side: Literal["debit", "credit"]
    amount: MoneyOut
    pending: bool
    balance_after: MoneyOut
    created_at: datetime


class EntriesOut(BaseModel):
    items: list[EntryOut]
    next: str | None


def _account_out(a: AccountState) -> AccountOut:
    return AccountOut(
        code=a.code, kind=a.kind, currency=a.currency, frozen=a.frozen,
        balance=MoneyOut(amount=a.balance, currency=a.currency),
        available=MoneyOut(amount=a.available, currency=a.currency),
        debits_posted=a.debits_posted, credits_posted=a.credits_posted,
        debits_pending=a.debits_pending, credits_pending=a.credits_pending,
    )


def _transfer_out(t: StoredTransfer) -> TransferOut:
    return TransferOut(
        id=t.id, type=t.type.value, code=t.code, reference=t.reference, metadata=dict(t.metadata or {}) or None,
        created_at=t.created_at, pending_id=t.pending_id, reversal_of=t.reversal_of, expires_at=t.expires_at,
        legs=[LegOut(account=leg.account, side="debit" if leg.side is Side.DEBIT else "credit",
                     amount=MoneyOut(amount=leg.amount, currency=leg.currency)) for leg in t.legs],
    )


def _key(value: str | None) -> str:
    if not value:
        raise IdempotencyKeyMissing("send an Idempotency-Key header (it becomes the transfer id)")
    return value


async def _post(ledger: Ledger, command: Command, response: Response) -> TransferOut:
    result: Result = await ledger.post(command)
    if result.error is not None:
        raise result.error
    assert result.transfer is not None
    response.status_code = 200 if result.replayed else 201
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return _transfer_out(result.transfer)


@router.post("/accounts", response_model=AccountOut, status_code=201, summary="Open an account (idempotent)")
async def open_account(body: AccountIn, ledger: LedgerDep) -> AccountOut:
    spec = AccountSpec(
        code=body.code, kind=body.kind, currency=body.currency, owner=body.owner, name=body.name,
        debits_must_not_exceed_credits=body.debits_must_not_exceed_credits,
        credits_must_not_exceed_debits=body.credits_must_not_exceed_debits, credit_limit=body.credit_limit,
    )
    return _account_out(await ledger.open_account(spec))


@router.get("/accounts/{code}", response_model=AccountOut, summary="An account and its balances")
async def get_account(code: str, ledger: LedgerDep) -> AccountOut:
    return _account_out(await ledger.account(code))


@router.get("/accounts/{code}/balance", response_model=MoneyOut, summary="Posted balance now or as of a time")
async def get_balance(code: str, ledger: LedgerDep, as_of: datetime | None = None) -> MoneyOut:
    account = await ledger.account(code)
    if as_of is None:
        return MoneyOut(amount=account.balance, currency=account.currency)
    return MoneyOut(amount=await ledger.balance_as_of(code, as_of), currency=account.currency)


@router.get("/accounts/{code}/entries", response_model=EntriesOut, summary="Statement, keyset-paginated")
async def get_entries(
    code: str,
    ledger: LedgerDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    after: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$")] = None,
) -> EntriesOut:
    items, nxt = await ledger.statement(code, after=int(after or 0), limit=limit)
    out = []
    for e in items:
        out.append(EntryOut(
            seq=e["account_seq"], transfer_id=e["transfer_id"], code=e["code"], type=e["type"],
            reference=e["reference"], side="debit" if e["amount"] > 0 else "credit",
            amount=MoneyOut(amount=abs(e["amount"]), currency=e["currency"]), pending=e["pending"],
            balance_after=MoneyOut(amount=e["balance_after"], currency=e["currency"]),
            created_at=e["created_at"],
        ))
    return EntriesOut(items=out, next=str(nxt) if nxt is not None else None)


@router.post("/accounts/{code}/freeze", response_model=AccountOut, summary="Freeze: no debits or credits")
async def freeze(code: str, ledger: LedgerDep) -> AccountOut:
    await ledger.set_frozen(code, True)
    return _account_out(await ledger.account(code))


@router.post("/accounts/{code}/unfreeze", response_model=AccountOut, summary="Unfreeze")
async def unfreeze(code: str, ledger: LedgerDep) -> AccountOut:
    await ledger.set_frozen(code, False)
    return _account_out(await ledger.account(code))


@router.post("/transfers", response_model=TransferOut, status_code=201,
             summary="Post a transfer (or a hold with pending=true)")
async def create_transfer(body: TransferIn, response: Response, ledger: LedgerDep,
                          idempotency_key: IdempotencyKey = None) -> TransferOut:
    legs = tuple(Leg(leg.account, Side.DEBIT if leg.side == "debit" else Side.CREDIT, leg.amount.amount,
                     leg.amount.currency) for leg in body.legs)
    command = Transfer(_key(idempotency_key), legs, body.code, reference=body.reference,
                       metadata=body.metadata, pending=body.pending, timeout_s=body.timeout_s)
    return await _post(ledger, command, response)


@router.get("/transfers/{transfer_id}", response_model=TransferOut, summary="A transfer with its legs")
async def get_transfer(transfer_id: str, ledger: LedgerDep) -> TransferOut:
    return _transfer_out(await ledger.transfer(transfer_id))


@router.post("/transfers/{transfer_id}/post", response_model=TransferOut, status_code=201,
             summary="Post a hold, in full or in part")
async def post_hold(transfer_id: str, body: PostIn, response: Response, ledger: LedgerDep,
                    idempotency_key: IdempotencyKey = None) -> TransferOut:
    command = PostPending(_key(idempotency_key), transfer_id,
                          amount=body.amount.amount if body.amount else None, reference=body.reference)
    return await _post(ledger, command, response)


@router.post("/transfers/{transfer_id}/void", response_model=TransferOut, status_code=201,
             summary="Release a hold")
async def void_hold(transfer_id: str, body: PlainIn, response: Response, ledger: LedgerDep,
                    idempotency_key: IdempotencyKey = None) -> TransferOut:
    return await _post(ledger, VoidPending(_key(idempotency_key), transfer_id, reference=body.reference), response)


@router.post("/transfers/{transfer_id}/reversals", response_model=TransferOut, status_code=201,
             summary="Reverse a posted transfer with a new, linked transfer")
async def reverse(transfer_id: str, body: PlainIn, response: Response, ledger: LedgerDep,
                  idempotency_key: IdempotencyKey = None) -> TransferOut:
    return await _post(ledger, Reverse(_key(idempotency_key), transfer_id, reference=body.reference), response)
