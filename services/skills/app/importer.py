"""Bulk import of assessments from HR and learning systems.

Every row carries the source system's `external_id`: a row already imported
with the same content is UNCHANGED, with other content REJECTED, so an import
can be re-run safely. Rows are checked like single assessments; a rejected
row says why and names the field. Everything accepted is written in one
transaction together with the level events, or nothing is.

Throughput: accepted rows go to the driver as plain tuples
(services/skills/store/bulk.py) and the effective-level rule runs once per
chunk of rows (services/skills/app/levels.py), not once per row; the history
of a (person, skill) pair new in the chunk is taken from the rows themselves
rather than read back. Assessment and event ids sort by time
(services/skills/store/ordered_ids.py), so the indexes grow at their end.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from services.platform.auth import Identity, current_identity
from services.platform.db import Database, UnitOfWork, utcnow
from services.platform.errors import EngageError, NotFound
from services.skills.app.assessments import AssessmentChecks, NewAssessment, row_values
from services.skills.app.levels import Pair, refresh_levels
from services.skills.domain.effective import AssessmentFact
from services.skills.store.bulk import insert_many
from services.skills.store.tables import AssessmentRow

_LOOKUP_CHUNK = 2000
CHUNK_ROWS = 10_000  # accepted rows per chunk: one INSERT batch and one level refresh
_ASSESSMENTS = AssessmentRow.__table__  # type: ignore[attr-defined]


class RowOutcome(StrEnum):
    CREATED = "CREATED"
    UNCHANGED = "UNCHANGED"
    REJECTED = "REJECTED"


@dataclass
class RowResult:
    row: int
    name: str = ""
    outcome: RowOutcome = RowOutcome.CREATED
    reason: str = ""
    field: str = ""


@dataclass
class ImportBatch:
    rows: list[tuple[int, NewAssessment]] = field(default_factory=list)
    results: list[RowResult] = field(default_factory=list)

    def reject(self, row: int, reason: str, field: str = "") -> None:
        self.results.append(RowResult(row, "", RowOutcome.REJECTED, reason, field))


def _name(person_id: str, assessment_id: str) -> str:
    return f"people/{person_id}/assessments/{assessment_id}"


def _rejection(exc: EngageError) -> tuple[str, str]:
    if isinstance(exc, NotFound):
        return exc.message, "parent"
    first = exc.violations[0] if exc.violations else None
    return (first.description if first else exc.message), (first.field if first else "")


class _Chunk:
    """Accepted rows not yet written, with the facts the level rule needs."""

    def __init__(self, uow: UnitOfWork, now: datetime):
        self.uow = uow
        self.now = now
        self.rows: list[dict[str, Any]] = []
        self.facts: dict[Pair, list[AssessmentFact]] = defaultdict(list)

    def add(self, values: dict[str, Any], new: NewAssessment) -> None:
        self.rows.append(values)
        fact = AssessmentFact(values["id"], new.level, new.source, values["assessed_at"], self.now, new.expires_at)
        self.facts[(new.person_id, new.skill_id)].append(fact)

    async def write(self) -> int:
        """Writes the rows and refreshes their levels; returns how many levels changed."""
        if not self.rows:
            return 0
        await insert_many(self.uow.session, _ASSESSMENTS, self.rows)
        return await refresh_levels(self.uow, list(self.facts), self.now, fresh=self.facts)


class _Writes:
    """Chunk writes, one at a time, each running while the rows of the next
    chunk are checked: the database works (SQLite in its own thread,
    PostgreSQL in its server) while this thread checks rows. Only checks that
    read nothing from the database may run beside a write."""

    def __init__(self) -> None:
        self.pending: asyncio.Task[int] | None = None
        self.changed = 0

    async def settle(self) -> None:
        if self.pending is not None:
            task, self.pending = self.pending, None
            self.changed += await task

    async def start(self, chunk: _Chunk) -> None:
        await self.settle()
        self.pending = asyncio.create_task(chunk.write())

    async def abandon(self) -> None:
        """After a failure: the transaction rolls back, so a write in flight stops first."""
        if self.pending is not None:
            self.pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.pending
            self.pending = None


async def _known(uow: UnitOfWork, batch: ImportBatch) -> dict[str, Any]:
    """Assessments imported before under the batch's external ids."""
    external = sorted({n.external_id for _, n in batch.rows if n.external_id})
    known: dict[str, Any] = {}
    for start in range(0, len(external), _LOOKUP_CHUNK):
        chunk = external[start : start + _LOOKUP_CHUNK]
        found = await uow.session.execute(sa.select(_ASSESSMENTS).where(_ASSESSMENTS.c.external_id.in_(chunk)))
        known.update({r.external_id: r for r in found})
    return known


class _CollectorPause:
    """No cyclic garbage collection while an import runs: it allocates
    millions of objects that live until it ends, and each full collection
    walks them all again (and every object the service holds, the fit view's
    levels among them). An import makes no cycles worth collecting meanwhile.
    Concurrent imports share the pause; the last one out restores the collector."""

    def __init__(self) -> None:
        self.imports = 0
        self.was_enabled = True

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        if self.imports == 0:
            self.was_enabled = gc.isenabled()
            gc.disable()
        self.imports += 1
        try:
            yield
        finally:
            self.imports -= 1
            if self.imports == 0 and self.was_enabled:
                gc.enable()


collector_paused = _CollectorPause()


async def apply_import(db: Database, batch: ImportBatch) -> tuple[list[RowResult], int]:
    caller: Identity = current_identity()
    async with db.write() as uow:
        s = uow.session
        now = utcnow()
        checks = AssessmentChecks(s, caller, now)
        await checks.preload({n.person_id for _, n in batch.rows}, {n.skill_id for _, n in batch.rows})
        known = await _known(uow, batch)
        chunk = _Chunk(uow, now)
        writes = _Writes()
        try:
            for index, new in batch.rows:
                assert new.external_id
                earlier = known.get(new.external_id)
                if earlier is not None:
                    if new.same_as(earlier):
                        name = _name(earlier.person_id, earlier.id)
                        batch.results.append(RowResult(index, name, RowOutcome.UNCHANGED))
                    else:
                        batch.reject(
                            index,
                            f"external id {new.external_id!r} was imported before with other values; send a "
                            "new row that supersedes it instead",
                            "assessment.external_id",
                        )
                    continue
                if new.supersedes_id:
                    # It may supersede a row of this very import: everything before it is written first.
                    await writes.start(chunk)
                    chunk = _Chunk(uow, now)
                if new.supersedes_id or not caller.is_admin:
                    await writes.settle()  # this check reads the database (the superseded row, the caller's units)
                try:
                    superseded = await checks.check(new)
                except EngageError as exc:
                    reason, fld = _rejection(exc)
                    batch.reject(index, reason, fld)
                    continue
                values = row_values(new, caller, now)
                chunk.add(values, new)
                known[new.external_id] = _Recorded(values)
                if superseded is not None:
                    checks.superseding.add(superseded.id)
                    superseded.superseded_by_id = values["id"]
                    s.add(superseded)
                batch.results.append(RowResult(index, _name(new.person_id, values["id"]), RowOutcome.CREATED))
                if len(chunk.rows) >= CHUNK_ROWS:
                    await writes.start(chunk)
                    chunk = _Chunk(uow, now)
            await writes.start(chunk)
            await writes.settle()
        finally:
            await writes.abandon()
    return sorted(batch.results, key=lambda r: r.row), writes.changed


class _Recorded:
    """A row accepted earlier in this import, read like a stored one (for a repeated external id)."""

    def __init__(self, values: dict[str, Any]):
        self.__dict__.update(values)


def counts(results: list[RowResult]) -> dict[str, Any]:
    out = {o.value: 0 for o in RowOutcome}
    for r in results:
        out[r.outcome.value] += 1
    return out
