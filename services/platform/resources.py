"""AIP conventions: resource names, etags, page tokens, field masks, request ids."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.message import Message
from sqlmodel.ext.asyncio.session import AsyncSession

from services.platform.db import utcnow
from services.platform.errors import StaleEtag, invalid
from services.platform.outbox import RequestRecord

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def check_id(value: str, field: str) -> str:
    if not value:
        raise invalid(field, "is required")
    if not ID_PATTERN.match(value):
        raise invalid(field, "must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit")
    return value


def required_text(value: str, field: str, limit: int = 200) -> str:
    """A non-blank text field of bounded length."""
    if not value.strip():
        raise invalid(field, "is required")
    if len(value) > limit:
        raise invalid(field, f"must be at most {limit} characters")
    return value


def parse_name(name: str, collection: str, field: str, *, required: bool = True) -> str:
    """`people/E1` -> `E1`; INVALID_ARGUMENT naming `field` if malformed."""
    if not name:
        if required:
            raise invalid(field, f"is required ({collection}/{{id}})")
        return ""
    prefix = collection + "/"
    if not name.startswith(prefix) or not ID_PATTERN.match(name[len(prefix) :]):
        raise invalid(field, f"must be a resource name {collection}/{{id}}, got {name!r}")
    return name[len(prefix) :]


def etag_for(name: str, revision: int) -> str:
    return hashlib.sha256(f"{name}#{revision}".encode()).hexdigest()[:20]


def check_etag(given: str, name: str, revision: int) -> None:
    """An empty etag skips the check; a stale one is ABORTED."""
    if given and given != etag_for(name, revision):
        raise StaleEtag(name)


@dataclass(frozen=True)
class Page:
    size: int
    after: Any  # sort key of the last item of the previous page, or None
    query: str  # fingerprint of the request's filters

    def next_token(self, last_key: Any, got: int) -> str:
        if got < self.size:
            return ""
        raw = json.dumps({"a": last_key, "q": self.query}).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def page_of(page_size: int, page_token: str, **filters: Any) -> Page:
    """Reads `page_size`/`page_token`; the token is bound to the filters."""
    if page_size < 0:
        raise invalid("page_size", "must not be negative")
    size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    query = hashlib.sha256(json.dumps(filters, sort_keys=True, default=str).encode()).hexdigest()[:16]
    if not page_token:
        return Page(size, None, query)
    try:
        padded = page_token + "=" * (-len(page_token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        after, bound = data["a"], data["q"]
    except (ValueError, KeyError, TypeError) as exc:
        raise invalid("page_token", "is not a token this API issued") from exc
    if bound != query:
        raise invalid("page_token", "was issued for a request with other filters")
    return Page(size, after, query)


def mask_paths(mask: FieldMask, allowed: Iterable[str], field: str = "update_mask") -> set[str]:
    """The paths of an update mask; `*` means every updatable field."""
    allowed_set = set(allowed)
    paths = list(mask.paths)
    if not paths:
        raise invalid(field, f"is required; updatable fields: {', '.join(sorted(allowed_set))}")
    if paths == ["*"]:
        return allowed_set
    unknown = [p for p in paths if p not in allowed_set]
    if unknown:
        raise invalid(field, f"cannot update {', '.join(unknown)}; updatable fields: {', '.join(sorted(allowed_set))}")
    return set(paths)


def fingerprint(message: Message) -> str:
    return hashlib.sha256(message.SerializeToString(deterministic=True)).hexdigest()


async def recall_request(session: AsyncSession, request_id: str, operation: str, request: Message) -> str | None:
    """The resource a previous call with this request id created, if any."""
    if not request_id:
        return None
    if len(request_id) > 100:
        raise invalid("request_id", "must be at most 100 characters")
    conn = await session.connection()  # a plain row: every create asks this
    record = (await conn.execute(_RECALL, {"request_id": request_id})).first()
    if record is None:
        return None
    if record.operation != operation or record.fingerprint != fingerprint(request):
        raise invalid("request_id", "was already used for a different request")
    return str(record.resource_name)


def remember_request(session: AsyncSession, request_id: str, operation: str, request: Message, name: str) -> None:
    if request_id:
        session.add(RequestRecord(**_request_values(request_id, operation, request, name)))


async def remember_request_now(
    session: AsyncSession, request_id: str, operation: str, request: Message, name: str
) -> None:
    """`remember_request` as a plain INSERT at once, for writes that use no ORM objects."""
    if request_id:
        conn = await session.connection()
        await conn.execute(_REQUESTS.insert(), _request_values(request_id, operation, request, name))


def _request_values(request_id: str, operation: str, request: Message, name: str) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "operation": operation,
        "fingerprint": fingerprint(request),
        "resource_name": name,
        "created_at": utcnow(),
    }


_REQUESTS: sa.Table = RequestRecord.__table__  # type: ignore[attr-defined]
_RECALL = sa.select(_REQUESTS.c.operation, _REQUESTS.c.fingerprint, _REQUESTS.c.resource_name).where(
    _REQUESTS.c.request_id == sa.bindparam("request_id")
)
