"""Domain events: facts in the past tense, written to the outbox with the state change."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True, kw_only=True)
class Event:
    """Base of every domain event. ``topic`` routes it; ``key`` is the consumer dedupe key."""

    topic: ClassVar[str] = "event"
    key: str
    headers: dict[str, str] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("headers", None)
        return data


@dataclass(frozen=True, kw_only=True)
class SmsRequested(Event):
    """An SMS to send: any context may ask, the SMS channel renders ``template`` with
    ``params`` (which may hold a code) and sends it."""

    topic = "sms.send"
    to: str
    template: str
    params: dict[str, Any]

    def payload(self) -> dict[str, Any]:  # as Event.payload, without asdict's deep copy (a hot path)
        return {"key": self.key, "to": self.to, "template": self.template, "params": self.params}
