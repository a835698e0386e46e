"""Notes of what moved open scorecards, for the replicas' in-memory scorecards.

A use case that changes what an open scorecard shows (credits accepted, a
scheme published, a period closed, the directory projection) writes one
`scorecard_changes` row in its own transaction: the events it accepted
(one row per batch, not per event), the people whose eligibility it
changed, or `everyone`. Each replica's
`ScorecardBoard` follows the table. A write that emits no events also tells
this process's followers when it has committed (`committed`), so a caller
reads its own writes from the same replica at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from sqlmodel.ext.asyncio.session import AsyncSession

from services.incentives.store.tables import ScorecardChangeRow
from services.platform.db import Database, utcnow


async def note_events(s: AsyncSession, events: Iterable[str]) -> None:
    """Events accepted: their credits add to scorecards (credits never change)."""
    if accepted := sorted(set(events)):
        await _note(s, events=accepted)


async def note_people(s: AsyncSession, people: Iterable[str]) -> None:
    """What counts for these people may have changed (roles held, taking part)."""
    if touched := sorted(set(people)):
        await _note(s, people=touched)


async def note_everyone(s: AsyncSession) -> None:
    await _note(s, everyone=True)


async def _note(
    s: AsyncSession, people: Sequence[str] = (), events: Sequence[str] = (), everyone: bool = False
) -> None:
    row = {"people": list(people), "events": list(events), "everyone": everyone, "change_time": utcnow()}
    await s.execute(sa.insert(ScorecardChangeRow), [row])


def committed(db: Database) -> None:
    """Runs the database's after-commit hooks (the platform runs them only
    for units of work that emitted events)."""
    for hook in db.after_commit:
        hook()
