"""The two URLs Kannel calls: inbound messages (its sms-service) and delivery reports.

Both carry the shared token from the generated Kannel configuration. The inbound URL only
stores the message (see :mod:`mobipay.channels.sms.service`): Kannel's 200 means "stored",
so a message is never lost between the gateway and us, and a retried call is a no-op.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Query, Response

from mobipay.channels.sms.service import SmsChannel
from mobipay.kernel.errors import Unauthorized, ValidationFailed
from mobipay.platform.api_common import from_container

router = APIRouter(prefix="/sms", tags=["sms"], include_in_schema=False)
Sms = Annotated[SmsChannel, from_container("sms")]
Token = Annotated[str, Query(max_length=200, description="The shared token of the Kannel configuration")]
TokenSecret = Annotated[str, from_container("sms_token")]


class GatewayTokenRefused(Unauthorized):
    """The SMS gateway's call without the shared token of its configuration (a query
    parameter, not a bearer token: Kannel cannot send headers)."""

    title = "The SMS gateway's shared token is wrong or missing"


def _check(token: str, expected: str) -> None:
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise GatewayTokenRefused("wrong or missing token: use the URL of `mobipay sms kannel-config`")


@router.get("/inbound", summary="An SMS from a subscriber, as Kannel's sms-service delivers it")
async def inbound(
    sms: Sms, secret: TokenSecret, token: Token,
    sender: Annotated[str, Query(alias="from", min_length=1, max_length=24)],
    receiver: Annotated[str, Query(alias="to", max_length=24)] = "",
    text: Annotated[str, Query(max_length=4000)] = "",
    gateway_id: Annotated[str, Query(alias="id", max_length=64, description="Kannel's message id (%I), the "
                                     "deduplication key: a retried delivery repeats it")] = "",
    charset: Annotated[str, Query(max_length=32)] = "",
    coding: Annotated[str, Query(max_length=4)] = "",
) -> Response:
    _check(token, secret)
    if not gateway_id:
        # Without Kannel's id a retried delivery cannot be told from a new message; taking ""
        # as the key made every later message without one a "duplicate", silently dropped.
        raise ValidationFailed("send Kannel's message id as id=%I (the get-url of `mobipay sms kannel-config` "
                               "does): it is what tells a retried delivery from a new message", field="id")
    new = await sms.receive(gateway_id, sender, receiver, text)
    return Response(status_code=200, headers={"X-Mobipay-Duplicate": "0" if new else "1"})


@router.get("/dlr", summary="A delivery report for one of our messages")
async def delivery_report(
    sms: Sms, secret: TokenSecret, token: Token,
    sms_id: Annotated[str, Query(alias="id", min_length=1, max_length=40)],
    status: Annotated[int, Query(ge=0, le=64)],
) -> Response:
    _check(token, secret)
    known = await sms.delivery_report(sms_id, status)
    return Response(status_code=200 if known else 202)
