"""CloudEvents 1.0 in binary content mode over NATS.

We follow the binary content mode of the CloudEvents NATS protocol binding as
written on the specification's main branch (after the 1.0.2 release, which
only defines structured mode): every context attribute travels as a message
header named `ce-<attribute>`, values percent-encoded like the HTTP binding
(space, double quote, percent and non-printable characters), and the body is
the event data, here a protobuf message (`datacontenttype:
application/protobuf`, `dataschema: proto:<full message name>`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote, unquote

from google.protobuf.message import Message

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/protobuf"
_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"%')


@dataclass
class CloudEvent:
    type: str  # also the NATS subject, e.g. engage.roles.v1.assignment.created
    source: str  # e.g. /engage/roles
    subject: str  # resource name the event is about
    data: bytes
    dataschema: str
    sequence: int = 0  # the resource's revision
    partitionkey: str = ""
    authid: str = ""
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time: datetime = field(default_factory=lambda: datetime.now(UTC))

    @classmethod
    def of(
        cls,
        type: str,
        source: str,
        subject: str,
        message: Message,
        *,
        sequence: int = 0,
        partitionkey: str = "",
        authid: str = "",
    ) -> CloudEvent:
        return cls(
            type=type,
            source=source,
            subject=subject,
            data=message.SerializeToString(deterministic=True),
            dataschema=f"proto:{message.DESCRIPTOR.full_name}",
            sequence=sequence,
            partitionkey=partitionkey or subject,
            authid=authid,
        )

    def headers(self) -> dict[str, str]:
        attributes = {
            "specversion": SPEC_VERSION,
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "subject": self.subject,
            "time": self.time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "datacontenttype": CONTENT_TYPE,
            "dataschema": self.dataschema,
            "sequence": str(self.sequence),
            "partitionkey": self.partitionkey,
            "authid": self.authid,
        }
        headers = {f"ce-{k}": quote(v, safe=_SAFE) for k, v in attributes.items() if v}
        # JetStream drops a message whose id it saw within the duplicate window.
        headers["Nats-Msg-Id"] = self.id
        return headers

    @classmethod
    def from_message(cls, headers: dict[str, str] | None, data: bytes) -> CloudEvent:
        """Reads an event back from NATS headers and body (for consumers and tests)."""
        h = {k.lower(): unquote(v) for k, v in (headers or {}).items()}
        missing = [a for a in ("id", "source", "type", "specversion") if f"ce-{a}" not in h]
        if missing:
            raise ValueError(f"not a CloudEvent: missing {', '.join('ce-' + m for m in missing)}")
        time = datetime.fromisoformat(h["ce-time"].replace("Z", "+00:00")) if "ce-time" in h else None
        return cls(
            type=h["ce-type"],
            source=h["ce-source"],
            subject=h.get("ce-subject", ""),
            data=data,
            dataschema=h.get("ce-dataschema", ""),
            sequence=int(h.get("ce-sequence", "0") or 0),
            partitionkey=h.get("ce-partitionkey", ""),
            authid=h.get("ce-authid", ""),
            id=h["ce-id"],
            time=time.astimezone(UTC) if time else datetime.now(UTC),
        )


def change_event(
    service: str, entity: str, verb: str, subject: str, body: Message, revision: int, partition: str = ""
) -> CloudEvent:
    """The event of a change: `engage.<service>.v1.<entity>.<verb>`, its
    sequence the entity's revision, its `authid` the caller who made it."""
    from services.platform.auth import current_identity  # auth is not needed to read events

    return CloudEvent.of(
        f"engage.{service}.v1.{entity}.{verb}",
        f"/engage/{service}",
        subject,
        body,
        sequence=revision,
        partitionkey=partition or subject,
        authid=current_identity().actor,
    )
