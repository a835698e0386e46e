"""Bulk import of assessments from HR and learning systems.

Every row carries the source system's `external_id`: a row already imported
with the same content is UNCHANGED, with other content REJECTED, so an import
can be re-run safely. Rows are checked like single assessments; a rejected
row says why and names the field. Everything accepted is written in one
transaction together with the level events, or nothing is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from services.platform.auth import current_identity
from services.platform.db import Database, utcnow
from services.platform.errors import EngageError, NotFound
from services.skills.app.assessments import AssessmentChecks, NewAssessment, build_row
from services.skills.app.levels import refresh_levels
from services.skills.store.tables import AssessmentRow

_CHUNK = 2000


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


def _name(row: AssessmentRow) -> str:
    return f"people/{row.person_id}/assessments/{row.id}"


def _rejection(exc: EngageError) -> tuple[str, str]:
    if isinstance(exc, NotFound):
        return exc.message, "parent"
    first = exc.violations[0] if exc.violations else None
    return (first.description if first else exc.message), (first.field if first else "")


async def apply_import(db: Database, batch: ImportBatch) -> tuple[list[RowResult], int]:
    caller = current_identity()
    async with db.write() as uow:
        s = uow.session
        now = utcnow()
        checks = AssessmentChecks(s, caller, now)
        await checks.preload({n.person_id for _, n in batch.rows}, {n.skill_id for _, n in batch.rows})
        external = sorted({n.external_id for _, n in batch.rows if n.external_id})
        known: dict[str, AssessmentRow] = {}
        for start in range(0, len(external), _CHUNK):
            chunk = external[start : start + _CHUNK]
            found = await s.exec(select(AssessmentRow).where(col(AssessmentRow.external_id).in_(chunk)))
            known.update({r.external_id: r for r in found.all() if r.external_id})

        pending: list[AssessmentRow] = []
        pairs: set[tuple[str, str]] = set()

        async def flush_pending() -> None:
            rows = [r.model_dump() for r in pending]
            for start in range(0, len(rows), _CHUNK):
                await s.execute(sa.insert(AssessmentRow), rows[start : start + _CHUNK])
            pending.clear()

        for index, new in batch.rows:
            assert new.external_id
            earlier = known.get(new.external_id)
            if earlier is not None:
                if new.same_as(earlier):
                    batch.results.append(RowResult(index, _name(earlier), RowOutcome.UNCHANGED))
                else:
                    batch.reject(
                        index,
                        f"external id {new.external_id!r} was imported before with other values; send a "
                        "new row that supersedes it instead",
                        "assessment.external_id",
                    )
                continue
            if new.supersedes_id and pending:
                await flush_pending()  # it may supersede a row of this very import
            try:
                superseded = await checks.check(new)
            except EngageError as exc:
                reason, fld = _rejection(exc)
                batch.reject(index, reason, fld)
                continue
            row = build_row(new, caller, now)
            pending.append(row)
            known[new.external_id] = row
            pairs.add((row.person_id, row.skill_id))
            if superseded is not None:
                checks.superseding.add(superseded.id)
                superseded.superseded_by_id = row.id
                s.add(superseded)
            batch.results.append(RowResult(index, _name(row), RowOutcome.CREATED))
        await flush_pending()
        await s.flush()
        changed = await refresh_levels(uow, pairs, now)
    return sorted(batch.results, key=lambda r: r.row), changed


def counts(results: list[RowResult]) -> dict[str, Any]:
    out = {o.value: 0 for o in RowOutcome}
    for r in results:
        out[r.outcome.value] += 1
    return out
