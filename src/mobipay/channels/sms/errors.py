"""SMS channel refusals (a text not understood, the gateway down), each with a stable
code (see docs/errors.md)."""

from __future__ import annotations

from mobipay.kernel.errors import MobipayError


class SmsGatewayUnavailable(MobipayError):
    code = "SMS_GATEWAY_UNAVAILABLE"
    status = 503
    title = "The SMS gateway did not take the message; it will be sent again"


class CommandNotUnderstood(MobipayError):
    code = "SMS_COMMAND_UNKNOWN"
    status = 400
    title = "The message is not a command"
