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
