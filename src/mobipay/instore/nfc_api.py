"""The NFC wallet over HTTP.

For the subscriber's app (bearer token): provision a token on this device, list the
wallet's tokens, replenish a token's limited-use key, suspend and resume, pay what offline
taps left owing. For terminals (signed as every terminal request, docs/instore.md): an
online tap, an upload of offline taps, and the deny list's changes since a version.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from mobipay.instore import nfc
from mobipay.instore.taps import NfcTaps, TapResult
from mobipay.instore.terminals import Terminal
from mobipay.instore.terminals_api import SignedTerminal
from mobipay.instore.tokens import IssuedKey, NfcTokens, Token
from mobipay.kernel.money import MAX_AMOUNT
from mobipay.platform.api_common import IdemKey, from_container, require_key
from mobipay.wallet.api_deps import Me

router = APIRouter(prefix="/v1", tags=["in-store"])

TokensDep = Annotated[NfcTokens, from_container("nfc_tokens")]
TapsDep = Annotated[NfcTaps, from_container("nfc_taps")]
MAX_UPLOAD = 5000  # taps in one request (the service takes any number, in ledger batches of 2,000)


# ---------------------------------------------------------------------- the subscriber's side


class ProvisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["hce", "sim_sticker"] = Field(description="hce: the phone's applet; sim_sticker: a SIM sticker card")


class KeyOut(BaseModel):
    seq: int = Field(description="The key's number, sent with every tap it makes")
    luk: str | None = Field(default=None, description="The limited-use key, base64 of 16 bytes (AES-128): only "
                            "in the answer that issues it; keep it in the applet")
    max_taps: int
    max_amount: int = Field(description="Fen all the key's taps may add up to")
    issued_at: datetime
    expires_at: datetime
    used_taps: int | None = None
    used_amount: int | None = None


class TokenOut(BaseModel):
    token_id: str
    kind: str
    state: Literal["active", "suspended"]
    suspended_by: str = Field(description="subscriber, support or sms; empty when active")
    atc_high: int = Field(description="The highest transaction counter the platform has seen")
    key: KeyOut | None
    owed: int = Field(default=0, description="Fen the wallet owes for offline taps (its tokens are denied until "
                      "paid)")
    created_at: datetime


def _issued(k: IssuedKey) -> KeyOut:
    return KeyOut(seq=k.seq, luk=k.luk, max_taps=k.max_taps, max_amount=k.max_amount, issued_at=k.issued_at,
                  expires_at=k.expires_at)


def _token_out(t: Token, key: KeyOut | None, owed: int = 0) -> TokenOut:
    return TokenOut(token_id=t.id, kind=t.kind, state=t.state,
                    suspended_by=t.suspended_by, atc_high=t.atc_high, key=key, owed=owed, created_at=t.created_at)


@router.post("/me/nfc/tokens", status_code=201, response_model=TokenOut,
             summary="Provision an NFC token on this device (signed in by SMS code), with its first key")
async def provision(body: ProvisionIn, me: Me, tokens: TokensDep, response: Response,
                    idempotency_key: IdemKey = None) -> TokenOut:
    token, key = await tokens.provision(me, body.kind, idempotency_key=require_key(idempotency_key))
    return _token_out(token, _issued(key))


@router.get("/me/nfc/tokens", response_model=list[TokenOut], summary="The wallet's NFC tokens")
async def list_tokens(me: Me, tokens: TokensDep) -> list[TokenOut]:
    out = []
    for t, k, owed in await tokens.tokens(me.user_id):
        key = KeyOut(seq=k.seq, max_taps=k.max_taps, max_amount=k.max_amount, issued_at=k.issued_at,
                     expires_at=k.expires_at, used_taps=k.used_taps, used_amount=k.used_amount) if k else None
        out.append(_token_out(t, key, owed))
    return out


@router.post("/me/nfc/tokens/{token_id}/keys", status_code=201, response_model=KeyOut,
             summary="Replenish: a new limited-use key (the previous one stops for online taps)")
async def replenish(token_id: str, me: Me, tokens: TokensDep, idempotency_key: IdemKey = None) -> KeyOut:
    return _issued(await tokens.replenish(me, token_id, idempotency_key=require_key(idempotency_key)))


@router.post("/me/nfc/tokens/{token_id}/suspend", response_model=TokenOut,
             summary="Suspend a token at once (a lost phone): refused online and listed for terminals")
async def suspend(token_id: str, me: Me, tokens: TokensDep) -> TokenOut:
    return _token_out(await tokens.suspend_mine(me, token_id), None)


@router.post("/me/nfc/tokens/{token_id}/resume", response_model=TokenOut,
             summary="Resume a token you suspended (from a device signed in by SMS code)")
async def resume(token_id: str, me: Me, tokens: TokensDep) -> TokenOut:
    return _token_out(await tokens.resume_mine(me, token_id), None)


class RepaidOut(BaseModel):
    recovered: int = Field(description="Fen paid now from the balance")
    owed: int = Field(description="Fen still owed (top up to pay it)")


@router.post("/me/nfc/debts/repay", response_model=RepaidOut,
             summary="Pay what offline taps left owing, from the balance (a top-up does it by itself)")
async def repay(me: Me, taps: TapsDep) -> RepaidOut:
    got, left = await taps.recover(me.user_id)
    return RepaidOut(recovered=got, owed=left)


# ---------------------------------------------------------------------- terminals


class TapIn(BaseModel):
    """A tap as the terminal read it from the device; the cryptogram covers amount, currency,
    the Beijing date of ``tapped_at``, the unpredictable number, the ATC, the CVM result and
    this terminal's id (docs/instore.md)."""

    model_config = ConfigDict(extra="forbid")
    token_id: str = Field(max_length=40)
    key_seq: StrictInt = Field(ge=1, le=0xFFFFFFFF)
    atc: StrictInt = Field(ge=0, le=nfc.ATC_MAX)
    amount: StrictInt = Field(gt=0, le=MAX_AMOUNT, description="Fen")
    currency: str = Field(default="156", max_length=3)
    tapped_at: StrictInt = Field(ge=0, le=2**40, description="Unix seconds, the terminal's clock")
    unpredictable_number: str = Field(max_length=8)
    cvm: StrictInt = Field(default=0, ge=0, le=1, description="1: the payer unlocked the phone to tap")
    cryptogram: str = Field(max_length=16)

    def tap(self, terminal: Terminal) -> nfc.Tap:
        return nfc.Tap(self.token_id, self.key_seq, self.atc, self.amount, self.currency,
                       datetime.fromtimestamp(self.tapped_at, UTC), self.unpredictable_number, self.cvm, terminal.id,
                       self.cryptogram)


class TapOut(BaseModel):
    token_id: str
    atc: int
    result: Literal["accepted", "duplicate", "debt", "refused"] = Field(
        description="accepted: paid from the wallet; debt: the merchant is paid, the wallet owes it; duplicate: "
                    "uploaded before (original says how it went); refused: code says why, nothing was done")
    code: str = ""
    detail: str = ""
    tap_id: str = ""
    trade_id: str = Field(default="", description="The merchant trade the tap is paid as (statements, settlement)")
    amount: int = Field(default=0, description="Fen tapped (the price; what the device signed)")
    privilege: int = Field(default=0, description="Fen off: the store's alliance privilege, funded by the merchant")
    charged: int = Field(default=0, description="Fen the wallet pays and the merchant receives: amount - privilege")
    original: str = ""


def _tap_out(r: TapResult) -> TapOut:
    return TapOut(token_id=r.token_id, atc=r.atc, result=r.result, code=r.code, detail=r.detail, tap_id=r.tap_id,
                  trade_id=r.trade_id, amount=r.amount, privilege=r.privilege, charged=r.charged,
                  original=r.original)


@router.post("/terminal/nfc/taps", response_model=TapOut,
             summary="An online tap: verified and paid now (signed terminal request; Idempotency-Key required)")
async def online_tap(body: TapIn, me: SignedTerminal, taps: TapsDep, response: Response,
                     idempotency_key: IdemKey = None) -> TapOut:
    result, replayed = await taps.pay_online(me, body.tap(me), idempotency_key=require_key(idempotency_key))
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return _tap_out(result)


class UploadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    taps: list[TapIn] = Field(max_length=MAX_UPLOAD, description="The offline taps, in any order")


class UploadOut(BaseModel):
    results: list[TapOut] = Field(description="One per tap, in the order sent")
    accepted: int
    debt: int
    duplicate: int
    refused: int


@router.post("/terminal/nfc/uploads", response_model=UploadOut,
             summary="Upload offline taps (signed terminal request): each tap once per token and ATC, safe to resend")
async def upload(body: UploadIn, me: SignedTerminal, taps: TapsDep) -> UploadOut:
    results = await taps.upload(me, [t.tap(me) for t in body.taps])
    count = {k: sum(1 for r in results if r.result == k) for k in ("accepted", "debt", "duplicate", "refused")}
    return UploadOut(results=[_tap_out(r) for r in results], **count)


class DenyOut(BaseModel):
    token_id: str
    listed: bool = Field(description="true: refuse the token offline; false: take it off your list")
    reason: str = Field(description="suspended or debt (empty when taken off)")
    version: int


class DenyListOut(BaseModel):
    version: int = Field(description="Send it as since next time: only what changed after it comes back")
    full: bool = Field(description="true (since=0): every listed token; false: the changes since your version")
    entries: list[DenyOut]


@router.get("/terminal/deny-list", response_model=DenyListOut,
            summary="NFC tokens to refuse offline: everything (since=0) or the changes since a version (signed)")
async def deny_list(me: SignedTerminal, tokens: TokensDep,
                    since: Annotated[int, Query(ge=0, le=2**62, description="The version you hold")] = 0
                    ) -> DenyListOut:
    version, entries = await tokens.deny_list(since)
    return DenyListOut(version=version, full=since == 0, entries=[
        DenyOut(token_id=e.token_id, listed=e.listed, reason=e.reason, version=e.version) for e in entries])
