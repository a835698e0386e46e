"""Reading what the roles service published to JetStream."""

from __future__ import annotations

from collections import Counter

from services.platform.cloudevents import CloudEvent
from tests.support.nats_server import stream_messages
from tests.support.waiting import eventually


async def published(url: str, stream: str = "ENGAGE") -> list[CloudEvent]:
    return [CloudEvent.from_message(m.headers, m.data or b"") for m in await stream_messages(url, stream)]


async def wait_for_events(url: str, done: object, timeout: float = 15.0, what: str = "events") -> list[CloudEvent]:
    return await eventually(lambda: published(url), done, timeout, what)  # type: ignore[arg-type]


def types(events: list[CloudEvent]) -> Counter[str]:
    return Counter(e.type for e in events)


def subject_matches(subject: str, filters: list[str]) -> bool:
    """NATS subject filters as consumers use them: exact, or a trailing `>`."""
    return any(subject == f or (f.endswith(">") and subject.startswith(f[:-1])) for f in filters)
