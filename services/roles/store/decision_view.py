"""An in-memory view of what CheckDecision, GetRole and GetPerson read, kept in step through the outbox.

CheckDecision is the hot read path (a CRM system asks it on every refund), so
it answers from memory instead of seven queries; GetRole and GetPerson (every
screen that shows a role or a person) answer from the same view instead of a query. The view is loaded once and
then follows the outbox: every committed change has an outbox row naming the
resource it changed, and the view re-reads exactly those resources.

Freshness: a change committed by this process is seen by the next answer
(the commit marks the view stale and the answer catches up first); changes
committed by other replicas are seen within `poll_seconds`. Outbox sequence
numbers can commit out of order on PostgreSQL (a transaction that took a
lower number may commit later), so numbers skipped below the highest seen are
looked at again until they appear or `gap_seconds` pass (a rolled-back
transaction leaves a number that never appears).
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from engage.roles.v1 import directory_pb2, roles_pb2
from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.platform.db import Database
from services.platform.following import Follower
from services.platform.log import get_logger
from services.platform.outbox import OutboxRow
from services.roles import messages
from services.roles.domain.decisions import DelegationFacts, PersonFacts
from services.roles.domain.model import DecisionRight, PersonStatus, Scope
from services.roles.store.tables import (
    AssignmentRow,
    DecisionCategoryRow,
    DelegationRow,
    OrgUnitRow,
    PersonRow,
    RoleRow,
    RoleVersionRow,
)

log = get_logger(__name__)

RELOAD_CHUNK = 5000
_LATEST_SEQ = sa.select(sa.func.max(OutboxRow.__table__.c.seq))  # type: ignore[attr-defined]


@dataclass(frozen=True)
class HeldRole:
    assignment_id: str
    person_id: str
    role_id: str
    org_unit_id: str
    scope: Scope
    valid_from: datetime
    valid_to: datetime | None

    def active_at(self, at: datetime) -> bool:
        return self.valid_from <= at and (self.valid_to is None or self.valid_to > at)


@dataclass(frozen=True)
class RoleVersion:
    version: int
    display_name: str
    effective_from: datetime
    rights: tuple[DecisionRight, ...]


@dataclass(frozen=True)
class DatedDelegation:
    facts: DelegationFacts
    delegate_id: str
    valid_from: datetime
    valid_to: datetime


class DecisionView:
    def __init__(self, db: Database, *, poll_seconds: float = 0.1, gap_seconds: float = 10.0):
        self.db = db
        self.poll_seconds = poll_seconds
        self.gap_seconds = gap_seconds
        self.people: dict[str, PersonFacts] = {}
        # Each person as GetPerson answers them, serialized: a message object would take ~1.7 kB, its bytes ~0.3.
        self.person_messages: dict[str, bytes] = {}
        self.unit_parent: dict[str, str | None] = {}
        self.categories: dict[str, str] = {}
        self.by_person: dict[str, dict[str, HeldRole]] = defaultdict(dict)
        self.by_unit: dict[str, dict[str, HeldRole]] = defaultdict(dict)
        self.assignments: dict[str, HeldRole] = {}
        self.versions: dict[str, list[RoleVersion]] = {}
        self.roles: dict[str, roles_pb2.Role] = {}  # current versions, as GetRole answers them
        self.delegations: dict[str, DatedDelegation] = {}
        self.to_delegate: dict[str, dict[str, DatedDelegation]] = defaultdict(dict)
        self._seq = 0
        self.changes = 0  # counts loads and applied changes: an answer computed at one count holds while it stays
        self._gaps: dict[int, float] = {}  # skipped sequence number -> first seen missing
        self._loaded = False
        # Commits seen by this process, and how many of them the view has applied.
        self._commits = 0
        self._applied = -1
        self._lock = asyncio.Lock()
        self._follower = Follower("decision_view", self.poll, poll_seconds)
        self._reader = db.engine.execution_options(engage_read=True)  # made once: each call builds an engine
        db.after_commit.append(self.mark_stale)

    def mark_stale(self) -> None:
        """Called after every commit of this process."""
        self._commits += 1

    def start(self) -> None:
        self._follower.start()

    async def stop(self) -> None:
        await self._follower.stop()

    async def fresh(self) -> DecisionView:
        """The view, caught up with every change this process has committed.

        Concurrent callers share catch-ups: a caller waits for one that began
        after its commit instead of starting its own.
        """
        wanted = self._commits
        if self._applied < wanted:
            await self.catch_up(wanted)
        return self

    async def poll(self) -> None:
        """The follower's step. It runs ten times a second on every replica,
        mostly to find nothing: one plain query on the outbox's highest
        number says whether there is anything to read."""
        if self._loaded and not self._gaps:
            async with self._reader.connect() as conn:
                latest = (await conn.execute(_LATEST_SEQ)).scalar()
            if (latest or 0) <= self._seq:
                return
        await self.catch_up()

    async def catch_up(self, wanted: int | None = None) -> None:
        """Applies what the outbox shows; `wanted` skips the work if a catch-up
        that began after that many commits has already finished."""
        async with self._lock:
            if wanted is not None and self._applied >= wanted:
                return
            covers = self._commits  # every commit counted here is visible to the read below
            async with self.db.read() as s:
                if not self._loaded:
                    await self._load_all(s)
                else:
                    await self._apply_changes(s)
            self._applied = max(self._applied, covers)

    # ---- loading ---------------------------------------------------------------

    async def _load_all(self, s: AsyncSession) -> None:
        started = time.monotonic()
        self._seq = int((await s.exec(select(sa.func.coalesce(sa.func.max(OutboxRow.seq), 0)))).one() or 0)
        self._gaps.clear()
        people = (await s.exec(select(PersonRow))).all()
        self.people = {r.id: _person(r) for r in people}
        self.person_messages = {r.id: _person_message(r) for r in people}
        self.unit_parent = {r.id: r.parent_id for r in (await s.exec(select(OrgUnitRow))).all()}
        self.categories = {r.id: r.display_name for r in (await s.exec(select(DecisionCategoryRow))).all()}
        self.assignments.clear()
        self.by_person.clear()
        self.by_unit.clear()
        for a in (await s.exec(select(AssignmentRow))).all():
            self._put_assignment(a)
        self.roles = {r.id: messages.role_out(r) for r in (await s.exec(select(RoleRow))).all()}
        self.versions.clear()
        for v in (await s.exec(select(RoleVersionRow).order_by(col(RoleVersionRow.version)))).all():
            self.versions.setdefault(v.role_id, []).append(_version(v))
        self.delegations.clear()
        self.to_delegate.clear()
        for d in (await s.exec(select(DelegationRow))).all():
            self._put_delegation(d)
        self._loaded = True
        self.changes += 1
        log.info("decision_view.loaded", people=len(self.people), seconds=round(time.monotonic() - started, 3))

    async def _apply_changes(self, s: AsyncSession) -> None:
        now = time.monotonic()
        self._gaps = {seq: seen for seq, seen in self._gaps.items() if now - seen < self.gap_seconds}
        query = select(OutboxRow.seq, OutboxRow.subject).where(
            or_(col(OutboxRow.seq) > self._seq, col(OutboxRow.seq).in_(list(self._gaps)))
        )
        rows = (await s.exec(query.order_by(col(OutboxRow.seq)))).all()
        if not rows:
            return
        last, gaps = self._seq, dict(self._gaps)
        changed: dict[str, set[str]] = defaultdict(set)
        for row_seq, subject in rows:
            seq = int(row_seq or 0)
            if seq > last:
                for missing in range(last + 1, seq):
                    gaps.setdefault(missing, now)
                last = seq
            gaps.pop(seq, None)
            collection, _, key = subject.partition("/")
            changed[collection].add(key)
        await self._reload(s, changed)
        # Only now: a reload that fails (database gone, call cancelled) is retried in full.
        self._seq, self._gaps = last, gaps
        self.changes += 1

    async def _reload(self, s: AsyncSession, changed: dict[str, set[str]]) -> None:
        """Re-reads the changed resources, in chunks (drivers cap a query's parameters)."""
        for start in range(0, max((len(ids) for ids in changed.values()), default=0), RELOAD_CHUNK):
            chunk = {k: set(sorted(ids)[start : start + RELOAD_CHUNK]) for k, ids in changed.items()}
            await self._reload_chunk(s, chunk)

    async def _reload_chunk(self, s: AsyncSession, changed: dict[str, set[str]]) -> None:
        if ids := changed.get("people"):
            found = {r.id: r for r in (await s.exec(select(PersonRow).where(col(PersonRow.id).in_(ids)))).all()}
            for key in ids:
                self.people.pop(key, None)
                self.person_messages.pop(key, None)
                if key in found:
                    self.people[key] = _person(found[key])
                    self.person_messages[key] = _person_message(found[key])
        if ids := changed.get("orgUnits"):
            found_units = (await s.exec(select(OrgUnitRow).where(col(OrgUnitRow.id).in_(ids)))).all()
            for key in ids:
                self.unit_parent.pop(key, None)
            self.unit_parent.update({u.id: u.parent_id for u in found_units})
        if ids := changed.get("decisionCategories"):
            rows = (await s.exec(select(DecisionCategoryRow).where(col(DecisionCategoryRow.id).in_(ids)))).all()
            for key in ids:
                self.categories.pop(key, None)
            self.categories.update({c.id: c.display_name for c in rows})
        if ids := changed.get("roles"):
            versions = (
                await s.exec(
                    select(RoleVersionRow)
                    .where(col(RoleVersionRow.role_id).in_(ids))
                    .order_by(col(RoleVersionRow.version))
                )
            ).all()
            for key in ids:
                self.versions.pop(key, None)
                self.roles.pop(key, None)
            for v in versions:
                self.versions.setdefault(v.role_id, []).append(_version(v))
            for r in (await s.exec(select(RoleRow).where(col(RoleRow.id).in_(ids)))).all():
                self.roles[r.id] = messages.role_out(r)
        if ids := changed.get("assignments"):
            for a in (await s.exec(select(AssignmentRow).where(col(AssignmentRow.id).in_(ids)))).all():
                self._put_assignment(a)
        if ids := changed.get("delegations"):
            for d in (await s.exec(select(DelegationRow).where(col(DelegationRow.id).in_(ids)))).all():
                self._put_delegation(d)

    def _put_assignment(self, row: AssignmentRow) -> None:
        old = self.assignments.get(row.id)
        if old is not None:
            self.by_person[old.person_id].pop(row.id, None)
            self.by_unit[old.org_unit_id].pop(row.id, None)
        held = HeldRole(
            row.id, row.person_id, row.role_id, row.org_unit_id, Scope(row.scope), row.valid_from, row.valid_to
        )
        self.assignments[row.id] = held
        self.by_person[row.person_id][row.id] = held
        self.by_unit[row.org_unit_id][row.id] = held

    def _put_delegation(self, row: DelegationRow) -> None:
        facts = DelegationFacts(
            row.id,
            row.delegator_id,
            frozenset(row.categories),
            messages.money_from_text(row.max_amount, row.currency),
        )
        dated = DatedDelegation(facts, row.delegate_id, row.valid_from, row.valid_to)
        self.delegations[row.id] = dated
        self.to_delegate[row.delegate_id][row.id] = dated

    # ---- reading ---------------------------------------------------------------

    def person(self, person_id: str) -> directory_pb2.Person | None:
        """The person as GetPerson answers them (a message of the caller's own), or None."""
        found = self.person_messages.get(person_id)
        return None if found is None else directory_pb2.Person.FromString(found)

    def unit_path(self, unit_id: str) -> list[str]:
        """The unit, then each enclosing unit up to the root."""
        path: list[str] = []
        current: str | None = unit_id
        while current is not None and current not in path:
            path.append(current)
            current = self.unit_parent.get(current)
        return path

    def manager_chain(self, person: PersonFacts) -> list[str]:
        chain: list[str] = []
        current = person.manager_id
        while current and current not in chain and current != person.id and len(chain) < 50:
            chain.append(current)
            manager = self.people.get(current)
            current = manager.manager_id if manager else None
        return chain

    def version_at(self, role_id: str, at: datetime) -> RoleVersion | None:
        in_force = None
        for v in self.versions.get(role_id, []):
            if v.effective_from <= at:
                in_force = v
        return in_force


def _person(row: PersonRow) -> PersonFacts:
    return PersonFacts(row.id, PersonStatus(row.status), row.manager_id, row.org_unit_id, row.management_level)


def _person_message(row: PersonRow) -> bytes:
    return messages.person_out(row).SerializeToString()


def _version(row: RoleVersionRow) -> RoleVersion:
    return RoleVersion(
        row.version, row.display_name, row.effective_from, messages.rights_from_json(row.content["decision_rights"])
    )
