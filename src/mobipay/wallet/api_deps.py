"""Who is calling a subscriber's route: the bearer access token and the signed-in
subscriber (``Me``), for the wallet's routes and every product's above it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mobipay.platform.api_common import from_container
from mobipay.wallet.errors import SessionInvalid
from mobipay.wallet.model import Principal
from mobipay.wallet.service import WalletService

WalletDep = Annotated[WalletService, from_container("wallet")]
bearer = HTTPBearer(auto_error=False, scheme_name="subscriber")


async def bearer_token(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> str:
    if credentials is None:
        raise SessionInvalid("send Authorization: Bearer <access_token> from POST /v1/sessions")
    return credentials.credentials


#: The presented access token, not yet checked (for a use case that checks it itself).
BearerToken = Annotated[str, Depends(bearer_token)]


async def subscriber(wallet: WalletDep, token: BearerToken) -> Principal:
    return await wallet.authenticate(token)


Me = Annotated[Principal, Depends(subscriber)]
