"""SMS in development without Kannel: the developer's stand-in for every subscriber's phone.

Every SMS is appended, rendered as the handset would show it, to one file (``var/sms.log``
by default, ``MOBIPAY_SMS_CONSOLE_FILE``): ``tail -f`` it to watch them all. Only the ones
that carry a code a person has to type (sign-in, sign-up, PIN reset, secondary
confirmation) are also printed to the terminal, in full, so the demo's hundreds of
"you received money" texts never bury the code you are waiting for. Codes are printed in
development only: elsewhere, without Kannel, SMS go to the log with their codes redacted.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from mobipay.channels.sms.texts import render
from mobipay.platform.outbox import Message

#: Templates whose code someone types into a page or replies by SMS.
CODE_TEMPLATES = frozenset({"otp.register", "otp.login", "otp.reset_pin", "confirm.request"})


class ConsolePhones:
    """The outbox handler of ``sms.send`` in development: all SMS to a file, codes also on screen."""

    def __init__(self, inbox: Path, screen: TextIO | None = None) -> None:
        self.inbox = inbox
        self.screen = screen

    async def deliver(self, message: Message) -> None:
        to = str(message.payload.get("to", ""))
        template = str(message.payload.get("template", ""))
        text = render(template, message.payload.get("params") or {})
        self.inbox.parent.mkdir(parents=True, exist_ok=True)
        with self.inbox.open("a", encoding="utf-8") as f:
            f.write(f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}  {to}  {template}  {text}\n")
        if template in CODE_TEMPLATES:
            screen = self.screen or sys.stderr
            screen.write(f"SMS to {to}: {text}\n")
            screen.flush()
