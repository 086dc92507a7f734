"""HTTP routes of POS terminals.

For terminals: :func:`terminal` is the FastAPI dependency that verifies a signed terminal
request (headers ``Terminal-Id``, ``Timestamp``, ``Nonce``, ``Signature``; docs/instore.md)
and yields the terminal, for every terminal route (``GET /v1/terminal/ping`` proves it).

For merchants' servers: register, list, disable, enable and re-key the terminals of their
stores, signed like every other ``/v1/merchant/...`` call (docs/merchant-signatures.md) and
answered signed the same way. A list is one parameter, ``terminals``, whose value is JSON text
(signed as written, as ``biz_content`` is on the Alipay-compatible gateway).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from mobipay.instore.terminals import Terminal, Terminals
from mobipay.kernel.errors import ValidationFailed
from mobipay.merchants.service import Merchant, MerchantService
from mobipay.platform.api_common import from_container

router = APIRouter(prefix="/v1", tags=["instore"])

TerminalsDep = Annotated[Terminals, from_container("terminals")]
MerchantsDep = Annotated[MerchantService, from_container("merchants")]


# ---------------------------------------------------------------------- signed terminal requests


def _target(request: Request) -> str:
    """The path as the terminal sent it (not percent-decoded), with its query string."""
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) and raw else request.url.path
    query = request.scope.get("query_string", b"")
    return f"{path}?{query.decode('latin-1')}" if query else path


async def terminal(
    request: Request, terminals: TerminalsDep,
    terminal_id: Annotated[str, Header(alias="Terminal-Id", description="The terminal's id (trm_…)")] = "",
    timestamp: Annotated[str, Header(alias="Timestamp", description="Unix seconds, within ±300 s")] = "",
    nonce: Annotated[str, Header(alias="Nonce", description="8-64 of A-Z a-z 0-9 _ -, once")] = "",
    signature: Annotated[str, Header(alias="Signature", description="base64 Ed25519 signature (docs/instore.md)")
                         ] = "",
) -> Terminal:
    """The verified terminal behind this request (or its refusal, with nothing done)."""
    return await terminals.verify(terminal_id=terminal_id, timestamp=timestamp, nonce=nonce, signature=signature,
                                  method=request.method, path=_target(request), body=await request.body())


SignedTerminal = Annotated[Terminal, Depends(terminal)]


class PingOut(BaseModel):
    terminal_id: str
    label: str
    store_id: str
    store_name: str
    merchant_id: str
    merchant_name: str
    server_time: int = Field(description="The platform's clock, Unix seconds: set the terminal's clock by it")


@router.get("/terminal/ping", response_model=PingOut,
            summary="A signed terminal request that does nothing: which terminal, store and merchant you are")
@router.post("/terminal/ping", response_model=PingOut,
             summary="The same with a body (ignored, but signed: test your body hashing with it)")
async def ping(me: SignedTerminal, merchants: MerchantsDep, terminals: TerminalsDep) -> PingOut:
    store = await merchants.own_store(me.merchant_id, me.store_id)
    merchant = await merchants.merchant(me.merchant_id)
    return PingOut(terminal_id=me.id, label=me.label, store_id=store.id, store_name=store.name,
                   merchant_id=merchant.id, merchant_name=merchant.name,
                   server_time=int(terminals.uow.clock.now().timestamp()))


# ---------------------------------------------------------------------- the merchant's server


@dataclass(frozen=True, slots=True)
class MerchantCall:
    """A verified merchant request: who, what it sent, and the HMAC key to answer with (None: RSA2)."""

    merchant: Merchant
    params: dict[str, Any]
    reply_key: bytes | None

    @property
    def actor(self) -> str:
        return f"{self.merchant.id}/app:{self.params.get('app_id', '')}"


async def merchant_call(request: Request, merchants: MerchantsDep) -> MerchantCall:
    try:
        params = await request.json()
    except (ValueError, RecursionError):
        raise ValidationFailed("send the parameters as a JSON object") from None
    if not isinstance(params, dict):
        raise ValidationFailed("send the parameters as a JSON object")
    merchant, key = await merchants.authenticate(params)
    return MerchantCall(merchant, params, key)


SignedMerchant = Annotated[MerchantCall, Depends(merchant_call)]


def _param(params: dict[str, Any], name: str) -> str:
    value = params.get(name)
    if value in (None, "") or not isinstance(value, str):
        raise ValidationFailed(f"send {name} (text)", field=name)
    return value


def _optional(params: dict[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ValidationFailed(f"{name} is text", field=name)
    return value


def _data(t: Terminal) -> dict[str, int | str]:
    return {"terminal_id": t.id, "store_id": t.store_id, "label": t.label, "state": t.state,
            "public_key": t.public_key, "created_at": t.created_at.isoformat(),
            "disabled_at": t.disabled_at.isoformat() if t.disabled_at else "",
            "last_seen_at": t.last_seen_at.isoformat() if t.last_seen_at else ""}


def _reply(merchants: MerchantService, call: MerchantCall, data: dict[str, int | str],
           status: int = 200) -> JSONResponse:
    return JSONResponse(merchants.sign_answer(data, call.reply_key), status_code=status)


@router.post("/merchant/terminals", tags=["merchants"],
             summary="Register a POS terminal of one of your stores (signed; the private key is shown once)")
async def register(call: SignedMerchant, terminals: TerminalsDep, merchants: MerchantsDep) -> JSONResponse:
    """``store_id``, ``label`` (1-25 printable ASCII) and optionally ``public_key`` (Ed25519,
    base64 of 32 bytes or PEM) made on the terminal; without one the platform makes the key
    and answers its ``private_key`` this once (it is kept nowhere)."""
    p = call.params
    made, private = await terminals.register(call.merchant.id, _param(p, "store_id"), _param(p, "label"),
                                             actor=call.actor, public_key=_optional(p, "public_key"))
    return _reply(merchants, call, {**_data(made), "private_key": private or ""}, 201)


@router.post("/merchant/terminals/query", tags=["merchants"],
             summary="Your terminals, of one store with store_id (signed; terminals is JSON text)")
async def query(call: SignedMerchant, terminals: TerminalsDep, merchants: MerchantsDep) -> JSONResponse:
    found = await terminals.find(call.merchant.id, _optional(call.params, "store_id"))
    text = json.dumps([_data(t) for t in found], ensure_ascii=False, separators=(",", ":"))
    return _reply(merchants, call, {"count": len(found), "terminals": text})


@router.post("/merchant/terminals/disable", tags=["merchants"],
             summary="Disable a terminal: its requests are refused from now on (signed)")
async def disable(call: SignedMerchant, terminals: TerminalsDep, merchants: MerchantsDep) -> JSONResponse:
    return _reply(merchants, call, _data(await terminals.disable(call.merchant.id, _param(call.params, "terminal_id"),
                                                                 actor=call.actor)))


@router.post("/merchant/terminals/enable", tags=["merchants"], summary="Enable a disabled terminal again (signed)")
async def enable(call: SignedMerchant, terminals: TerminalsDep, merchants: MerchantsDep) -> JSONResponse:
    return _reply(merchants, call, _data(await terminals.enable(call.merchant.id, _param(call.params, "terminal_id"),
                                                                actor=call.actor)))


@router.post("/merchant/terminals/key", tags=["merchants"],
             summary="Give a terminal a new key; the old one stops at once (signed; a made key is shown once)")
async def rotate_key(call: SignedMerchant, terminals: TerminalsDep, merchants: MerchantsDep) -> JSONResponse:
    p = call.params
    made, private = await terminals.rotate_key(call.merchant.id, _param(p, "terminal_id"), actor=call.actor,
                                               public_key=_optional(p, "public_key"))
    return _reply(merchants, call, {**_data(made), "private_key": private or ""})
