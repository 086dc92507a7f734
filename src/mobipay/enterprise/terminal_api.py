"""The canteen's POS charges an employee's payment code with the allowance (企业一卡通).

``POST /v1/terminal/enterprise/payments`` is a signed terminal request like every
``/v1/terminal/...`` route (in-store terminals: per-terminal Ed25519 key, ±300 s, a nonce
once; ``instore.terminals_api.terminal`` verifies it), so the till of a closed-loop merchant
uses the key it already has. The use case is :meth:`Enterprise.pay_by_paycode`: the code
verified and used once, then :meth:`Enterprise.pay` (allowance first, the wallet the rest,
one trade, one receipt); the terminal's ``out_trade_no`` is the idempotency key. A terminal of
a merchant the payer's employer did not name is refused the allowance
(``ALLOWANCE_NOT_ACCEPTED``): that shop charges the code by ``/v1/terminal/micropay``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from mobipay.enterprise.service import Enterprise, Receipt
from mobipay.instore.micropay import Micropay
from mobipay.instore.terminals_api import SignedTerminal
from mobipay.kernel.money import MAX_AMOUNT
from mobipay.platform.api_common import from_container

router = APIRouter(prefix="/v1", tags=["enterprise"])

EnterpriseDep = Annotated[Enterprise, from_container("enterprise")]
MicropayDep = Annotated[Micropay, from_container("micropay")]


class TerminalPayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    out_trade_no: str = Field(
        min_length=1,
        max_length=64,
        description="The till's number of the sale: a retry "
        "sends the same (with the same code and amount) and is charged once",
    )
    auth_code: str = Field(max_length=32, description="The employee's payment code: 18 digits starting with 78")
    amount: StrictInt = Field(gt=0, le=MAX_AMOUNT, description="Integer fen")


class TerminalReceiptOut(BaseModel):
    out_trade_no: str
    payment_id: str
    trade_no: str = Field(description="The merchant trade of the whole amount (statements, T+1 settlement)")
    terminal_id: str
    merchant_id: str
    merchant_name: str
    store_id: str | None
    amount: int = Field(description="Fen, the whole sale")
    allowance: int = Field(description="Fen paid by the employer's allowance")
    wallet: int = Field(description="Fen paid by the employee's own wallet")
    window: str = Field(description="The meal window of the payment, '' outside every window")
    reason: str = Field(description="Why the allowance paid less than the amount, '' when it paid it all")
    allowance_left: int = Field(description="Fen left on the allowance after this payment")
    created_at: datetime


def _out(r: Receipt, out_trade_no: str, terminal_id: str) -> TerminalReceiptOut:
    return TerminalReceiptOut(
        out_trade_no=out_trade_no,
        payment_id=r.id,
        trade_no=r.trade_id,
        terminal_id=terminal_id,
        merchant_id=r.merchant_id,
        merchant_name=r.merchant_name,
        store_id=r.store_id,
        amount=r.amount,
        allowance=r.allowance,
        wallet=r.wallet,
        window=r.window,
        reason=r.reason,
        allowance_left=r.allowance_left,
        created_at=r.created_at,
    )


@router.post(
    "/terminal/enterprise/payments",
    response_model=TerminalReceiptOut,
    status_code=201,
    responses={
        200: {"description": "A retry of the same out_trade_no: the first receipt (header Idempotent-Replayed: true)"}
    },
    summary="Charge an employee's payment code: the allowance first, the wallet the rest (signed terminal)",
)
async def pay(
    body: TerminalPayIn, me: SignedTerminal, enterprise: EnterpriseDep, micropay: MicropayDep, response: Response
) -> TerminalReceiptOut:
    """One receipt of two funding legs at a closed-loop merchant of the payer's employer. The
    wallet's share is paid without the PIN (at most the password-free amount, else PIN_REQUIRED)
    and counts against the PBoC daily limits of dynamic codes (QR_DYNAMIC_DAILY_LIMIT)."""
    receipt = await enterprise.pay_by_paycode(
        micropay,
        me,
        out_trade_no=body.out_trade_no,
        auth_code=body.auth_code,
        amount=body.amount,
    )
    if receipt.replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return _out(receipt, body.out_trade_no, me.id)
