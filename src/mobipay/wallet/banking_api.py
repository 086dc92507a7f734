"""Wallet HTTP API for money in and out: bank cards (which verify the real name), cash-in
from a card, cash-out to a card, and the orders sent to the bank.

An order answers 201 when the bank confirmed it, 202 while its outcome is still unknown
(poll ``GET /v1/bank-orders/{id}``: the platform keeps asking the bank), 200 for a replay
of the same Idempotency-Key, and 422 ``BANK_DECLINED`` (with ``order_id``) when the bank
said no; in that case nothing moved.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from mobipay.kernel.msisdn import mask_msisdn
from mobipay.orders.api import answer_order
from mobipay.orders.service import PartnerOrder
from mobipay.platform.api_common import (
    LOOKUP_LIMIT,
    PENDING,
    PIN_LIMIT,
    IdemKey,
    MoneyIn,
    MoneyOut,
    from_container,
    require_key,
    sent_as,
)
from mobipay.wallet import errors
from mobipay.wallet.api_deps import Me
from mobipay.wallet.banking import BankingService, Card

router = APIRouter(prefix="/v1", tags=["money in and out"])


BankingDep = Annotated[BankingService, from_container("banking")]


class CardIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    card_number: str = Field(max_length=32, description="Debit card number (spaces allowed)")
    name: str = Field(max_length=64, description="The holder's name as on the identity card")
    id_number: str = Field(max_length=32, description="18-character resident identity card number")


class CardOut(BaseModel):
    id: str
    bank_code: str
    bank_name: str
    card: str = Field(description="The number, masked")
    created_at: datetime


class CashIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    card_id: str = Field(max_length=40)
    amount: MoneyIn


class CashOut(CashIn):
    pin: str | None = Field(default=None, max_length=12, description="The payment PIN (always needed)")


class BankOrderOut(BaseModel):
    id: str
    kind: Literal["cash_in", "cash_out", "close_payout"]
    card_id: str
    amount: MoneyOut
    fee: MoneyOut
    state: Literal["pending", "succeeded", "failed"]
    bank_ref: str
    reason: str
    created_at: datetime
    settled_at: datetime | None


def _card_out(c: Card) -> CardOut:
    return CardOut(id=c.id, bank_code=c.bank_code, bank_name=c.bank_name, card=c.masked, created_at=c.created_at)


def _order_out(o: PartnerOrder) -> BankOrderOut:
    return BankOrderOut(id=o.id, kind=o.kind, card_id=o.details["card_id"],
                        amount=MoneyOut(amount=o.amount, currency="CNY"), fee=MoneyOut(amount=o.fee, currency="CNY"),
                        state=o.state.value, bank_ref=o.partner_ref, reason=o.reason, created_at=o.created_at,
                        settled_at=o.settled_at)


def _placed(order: PartnerOrder, response: Response) -> BankOrderOut:
    answer_order(order, response, errors.BankDeclined, "the bank")
    return _order_out(order)


@router.post("/me/cards", response_model=CardOut, status_code=201, dependencies=PIN_LIMIT,
             summary="Bind a debit card; the bank confirms card, name, identity card and phone (→ Tier II)")
@sent_as(id_card="id_number")
async def bind_card(body: CardIn, me: Me, banking: BankingDep) -> CardOut:
    return _card_out(await banking.bind_card(me, body.card_number, body.name, body.id_number))


@router.get("/me/cards", response_model=list[CardOut], summary="My bound cards")
async def list_cards(me: Me, banking: BankingDep) -> list[CardOut]:
    return [_card_out(c) for c in await banking.cards(me)]


@router.delete("/me/cards/{card_id}", status_code=204, summary="Unbind a card")
async def remove_card(card_id: str, me: Me, banking: BankingDep) -> Response:
    await banking.remove_card(me, card_id)
    return Response(status_code=204)


@router.post("/cash-ins", response_model=BankOrderOut, status_code=201, responses=PENDING,
             summary="Add money from a bound card (Idempotency-Key required)")
async def cash_in(body: CashIn, response: Response, me: Me, banking: BankingDep, idempotency_key: IdemKey = None
                  ) -> BankOrderOut:
    return _placed(await banking.cash_in(me, body.card_id, body.amount.amount,
                                         idempotency_key=require_key(idempotency_key)), response)


@router.post("/cash-outs", response_model=BankOrderOut, status_code=201, responses=PENDING,
             summary="Withdraw to a bound card, with the PIN; the fee is charged on top (Idempotency-Key required)")
async def cash_out(body: CashOut, response: Response, me: Me, banking: BankingDep, idempotency_key: IdemKey = None
                   ) -> BankOrderOut:
    return _placed(await banking.cash_out(me, body.card_id, body.amount.amount,
                                          idempotency_key=require_key(idempotency_key), pin=body.pin), response)


@router.get("/bank-orders", response_model=list[BankOrderOut], summary="My cash-ins and cash-outs, newest first")
async def list_orders(me: Me, banking: BankingDep) -> list[BankOrderOut]:
    return [_order_out(o) for o in await banking.my_orders(me)]


@router.get("/bank-orders/{order_id}", response_model=BankOrderOut,
            summary="One order; a pending one is checked with the bank first")
async def get_order(order_id: str, me: Me, banking: BankingDep) -> BankOrderOut:
    return _order_out(await banking.order(me, order_id))


class RecipientOut(BaseModel):
    msisdn: str = Field(description="The number, masked")
    registered: bool = Field(description="False: the money will wait 3 days for the number to register")
    name: str | None = Field(description="The verified real name, all but the last character hidden (*明)")


@router.get("/recipients/{number}", response_model=RecipientOut, dependencies=LOOKUP_LIMIT,
            summary="Who a transfer to this number would reach, to confirm before paying")
@sent_as(msisdn="number")
async def recipient(number: str, me: Me, banking: BankingDep) -> RecipientOut:
    found = await banking.recipient(number)
    return RecipientOut(msisdn=mask_msisdn(found.msisdn), registered=found.registered, name=found.masked_name)
