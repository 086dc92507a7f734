"""Wallet HTTP API (``/v1``), so far: ask for a one-time code, register with it.

Sessions (access and refresh tokens), the PIN endpoints and money movement come next;
until then these two endpoints need no authentication, as a sign-up page would.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from mobipay.wallet.model import OtpPurpose, mask_msisdn
from mobipay.wallet.service import WalletService

router = APIRouter(prefix="/v1", tags=["wallet"])


def wallet_of(request: Request) -> WalletService:
    wallet: WalletService = request.app.state.container.wallet
    return wallet


WalletDep = Annotated[WalletService, Depends(wallet_of)]


class OtpIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    msisdn: str = Field(max_length=32, description="Mainland mobile number, any common spelling",
                        examples=["13800138000", "+86 138 0013 8000"])
    purpose: OtpPurpose = OtpPurpose.REGISTER


class OtpOut(BaseModel):
    msisdn: str = Field(description="The number, masked")
    expires_at: datetime
    resend_after_s: int


class RegisterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    msisdn: str = Field(max_length=32)
    code: str = Field(min_length=1, max_length=12, description="The code received by SMS")


class UserOut(BaseModel):
    id: str
    msisdn: str = Field(description="E.164")
    operator: str
    tier: int
    created_at: datetime


@router.post("/otp", response_model=OtpOut, status_code=202, summary="Send a one-time code by SMS")
async def request_otp(body: OtpIn, wallet: WalletDep) -> OtpOut:
    sent = await wallet.request_otp(body.msisdn, body.purpose)
    return OtpOut(msisdn=mask_msisdn(sent.msisdn), expires_at=sent.expires_at, resend_after_s=sent.resend_after_s)


@router.post("/users", response_model=UserOut, status_code=201,
             summary="Register the owner of a number with the code sent to it")
async def register(body: RegisterIn, wallet: WalletDep) -> UserOut:
    user = await wallet.register(body.msisdn, body.code)
    return UserOut(id=user.id, msisdn=user.msisdn, operator=user.operator, tier=int(user.tier),
                   created_at=user.created_at)
