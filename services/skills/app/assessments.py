"""Assessment use cases: record, confirm, read history and effective levels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from google.protobuf.message import Message
from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.platform.auth import Identity, current_identity
from services.platform.db import Database, utcnow
from services.platform.errors import FailedPrecondition, FieldViolation, NotFound, PermissionDenied, invalid
from services.platform.lookups import get_or_404
from services.platform.resources import Page, recall_request, remember_request
from services.skills.app import scales
from services.skills.app.access import authorize_person_read, authorize_unit_read, manages
from services.skills.app.levels import current_levels, refresh_levels
from services.skills.domain.effective import Source
from services.skills.domain.model import SkillStatus
from services.skills.messages import aware
from services.skills.store.ordered_ids import ordered_hex
from services.skills.store.tables import (
    AssessmentRow,
    ProficiencyScaleRow,
    ProjectedOrgUnitRow,
    ProjectedPersonRow,
    SkillLevelRow,
    SkillRow,
)

# How far in the future an assessment time may be (clocks of other systems).
CLOCK_SKEW = timedelta(minutes=5)
VERIFIED_SOURCES = frozenset({Source.CERTIFICATION, Source.TEST, Source.CRM_EVIDENCE})


def new_id() -> str:
    """Ids in creation order: an import appends to the indexes instead of
    writing all over them (services/skills/store/ordered_ids.py)."""
    return ordered_hex()


@dataclass
class NewAssessment:
    person_id: str
    skill_id: str
    level: int
    source: Source
    assessed_at: datetime | None = None
    expires_at: datetime | None = None
    supersedes_id: str | None = None
    evidence_uri: str = ""
    evidence_description: str = ""
    note: str = ""
    external_id: str | None = None

    def same_as(self, row: Any) -> bool:
        """Whether a stored assessment records this one (for re-runs by external id)."""
        return (
            row.person_id == self.person_id
            and row.skill_id == self.skill_id
            and row.level == self.level
            and row.source == self.source.value
            and (self.assessed_at is None or aware(row.assessed_at) == self.assessed_at)
            and aware(row.expires_at) == self.expires_at
            and row.supersedes_id == self.supersedes_id
            and row.evidence_uri == self.evidence_uri
            and row.evidence_description == self.evidence_description
            and row.note == self.note
        )


def unknown_person(person_id: str) -> NotFound:
    """NOT_FOUND naming the field: the person is the request's `parent`."""
    err = NotFound(f"people/{person_id} is not known to the skills service", "PERSON_NOT_FOUND")
    err.violations.append(FieldViolation("parent", "names a person the skills service has not heard of"))
    return err


class AssessmentChecks:
    """The checks on a new assessment, with caches so an import of many rows
    reads each person, skill and scale once."""

    def __init__(self, session: AsyncSession, caller: Identity, now: datetime):
        self.s = session
        self.caller = caller
        self.now = now
        self._people: dict[str, ProjectedPersonRow | None] = {}
        self._skills: dict[str, SkillRow | None] = {}
        self._ordinals: dict[str, list[int]] = {}
        self.superseding: set[str] = set()  # assessments superseded within this transaction

    async def preload(self, person_ids: set[str], skill_ids: set[str]) -> None:
        ids = sorted(person_ids)
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            found = (await self.s.exec(select(ProjectedPersonRow).where(col(ProjectedPersonRow.id).in_(chunk)))).all()
            self._people.update({p: None for p in chunk})
            self._people.update({p.id: p for p in found})
        rows = (await self.s.exec(select(SkillRow).where(col(SkillRow.id).in_(skill_ids)))).all()
        self._skills.update({k: None for k in skill_ids})
        self._skills.update({r.id: r for r in rows})
        for scale_id in sorted({r.scale_id for r in rows}):
            await self.ordinals(scale_id)  # an import checks rows while a write runs: nothing left to read

    async def person(self, person_id: str) -> ProjectedPersonRow:
        if person_id not in self._people:
            self._people[person_id] = await self.s.get(ProjectedPersonRow, person_id)
        row = self._people[person_id]
        if row is None:
            raise unknown_person(person_id)
        return row

    async def skill(self, skill_id: str) -> SkillRow:
        if skill_id not in self._skills:
            self._skills[skill_id] = await self.s.get(SkillRow, skill_id)
        row = self._skills[skill_id]
        if row is None:
            raise invalid("assessment.skill", f"skills/{skill_id} does not exist", "SKILL_NOT_FOUND")
        return row

    async def ordinals(self, scale_id: str) -> list[int]:
        if scale_id not in self._ordinals:
            scale = await self.s.get(ProficiencyScaleRow, scale_id)
            self._ordinals[scale_id] = [lv["ordinal"] for lv in scale.levels] if scale else []
        return self._ordinals[scale_id]

    async def check(self, new: NewAssessment) -> AssessmentRow | None:
        """Raises the first problem; returns the assessment superseded, if any."""
        person = await self.person(new.person_id)
        if person.status == "TERMINATED":
            raise FailedPrecondition(
                f"people/{person.id} has left the company; their skills take no new assessments",
                "PERSON_NOT_ACTIVE",
                FieldViolation("parent", "the person has left"),
            )
        skill = await self.skill(new.skill_id)
        if skill.status == SkillStatus.DEPRECATED:
            instead = f"; assess skills/{skill.replaced_by} instead" if skill.replaced_by else ""
            raise invalid("assessment.skill", f"skills/{skill.id} is deprecated{instead}", "SKILL_DEPRECATED")
        ordinals = await self.ordinals(skill.scale_id)
        if new.level not in ordinals:
            span = f"{min(ordinals)}-{max(ordinals)}" if ordinals else "no levels"
            raise invalid(
                "assessment.level",
                f"level {new.level} is not on the scale of skills/{skill.id} (proficiencyScales/{skill.scale_id}: "
                f"{span})",
                "LEVEL_OUTSIDE_SCALE",
            )
        assessed_at = new.assessed_at or self.now
        if assessed_at > self.now + CLOCK_SKEW:
            raise invalid("assessment.assess_time", "must not be in the future")
        if new.expires_at is not None and new.expires_at <= assessed_at:
            raise invalid("assessment.expire_time", "must be after assess_time", "EXPIRY_BEFORE_ASSESSMENT")
        superseded = None
        if new.supersedes_id:
            superseded = await self.s.get(AssessmentRow, new.supersedes_id, with_for_update=True)
            if superseded is None or superseded.person_id != new.person_id:
                raise invalid(
                    "assessment.supersedes",
                    f"people/{new.person_id}/assessments/{new.supersedes_id} does not exist",
                )
            if superseded.skill_id != new.skill_id:
                raise invalid("assessment.supersedes", f"assesses skills/{superseded.skill_id}, not this skill")
            if superseded.superseded_by_id or superseded.id in self.superseding:
                raise FailedPrecondition(
                    f"people/{new.person_id}/assessments/{superseded.id} is already superseded",
                    "ALREADY_SUPERSEDED",
                    FieldViolation("assessment.supersedes", "is already superseded"),
                )
        await self.authorize(person, new.source, superseded)
        return superseded

    async def authorize(self, person: ProjectedPersonRow, source: Source, superseded: AssessmentRow | None) -> None:
        caller = self.caller
        if caller.is_admin:
            return
        if not caller.person_id:
            raise PermissionDenied(f"{caller.actor} may not record assessments", "SOURCE_NOT_ALLOWED")
        if source in VERIFIED_SOURCES:
            raise PermissionDenied(
                f"{source.value} assessments come from HR, learning or CRM systems, not from people",
                "SOURCE_NOT_ALLOWED",
            )
        is_self = caller.person_id == person.id
        if source == Source.SELF and not is_self:
            raise PermissionDenied("a SELF assessment can only be about yourself", "NOT_YOURSELF")
        if source == Source.PEER and is_self:
            raise PermissionDenied("a PEER assessment is about someone else; use SELF", "NOT_A_PEER")
        if source == Source.MANAGER and not await manages(self.s, caller, person):
            raise PermissionDenied(
                f"{caller.actor} may not assess people/{person.id} as manager: they are outside the units they head",
                "OUTSIDE_MANAGED_SCOPE",
            )
        if superseded is not None and superseded.assessor != caller.actor:
            may = superseded.source in (Source.MANAGER, Source.PEER) and await manages(self.s, caller, person)
            if not may:
                raise PermissionDenied(
                    "only the assessor, the person's manager (for manager and peer assessments) or HR may "
                    "supersede an assessment",
                    "NOT_THE_ASSESSOR",
                )


def row_values(new: NewAssessment, caller: Identity, now: datetime, confirms_id: str | None = None) -> dict[str, Any]:
    """The columns of a new assessment row (bulk inserts use them as they are)."""
    return {
        "id": new_id(),
        "person_id": new.person_id,
        "skill_id": new.skill_id,
        "level": new.level,
        "source": new.source.value,
        "assessor": caller.actor,
        "evidence_uri": new.evidence_uri,
        "evidence_description": new.evidence_description,
        "note": new.note,
        "assessed_at": new.assessed_at or now,
        "expires_at": new.expires_at,
        "supersedes_id": new.supersedes_id,
        "superseded_by_id": None,
        "confirms_id": confirms_id,
        "external_id": new.external_id,
        "create_time": now,
    }


def build_row(new: NewAssessment, caller: Identity, now: datetime, confirms_id: str | None = None) -> AssessmentRow:
    return AssessmentRow(**row_values(new, caller, now, confirms_id))


async def by_external_id(s: AsyncSession, external_id: str) -> AssessmentRow | None:
    return (await s.exec(select(AssessmentRow).where(AssessmentRow.external_id == external_id))).first()


async def create_assessment(db: Database, new: NewAssessment, request_id: str, request: Message) -> AssessmentRow:
    caller = current_identity()
    async with db.write() as uow:
        s = uow.session
        now = utcnow()
        earlier = await recall_request(s, request_id, "CreateAssessment", request)
        if earlier:
            return await get_or_404(s, AssessmentRow, earlier.rsplit("/", 1)[1], earlier)
        if new.external_id:
            existing = await by_external_id(s, new.external_id)
            if existing is not None:
                if new.same_as(existing):
                    return existing
                raise invalid("assessment.external_id", "was already recorded for a different assessment")
        checks = AssessmentChecks(s, caller, now)
        superseded = await checks.check(new)
        row = build_row(new, caller, now)
        s.add(row)
        if superseded is not None:
            superseded.superseded_by_id = row.id
            s.add(superseded)
        remember_request(s, request_id, "CreateAssessment", request, f"people/{row.person_id}/assessments/{row.id}")
        await s.flush()
        await refresh_levels(uow, [(row.person_id, row.skill_id)], now)
        return row


async def confirm_assessment(db: Database, person_id: str, assessment_id: str, note: str) -> AssessmentRow:
    caller = current_identity()
    name = f"people/{person_id}/assessments/{assessment_id}"
    async with db.write() as uow:
        s = uow.session
        now = utcnow()
        claim = await get_or_404(s, AssessmentRow, assessment_id, name, lock=True)
        if claim.person_id != person_id:
            raise NotFound(f"{name} does not exist")
        person = await get_or_404(s, ProjectedPersonRow, person_id, f"people/{person_id}")
        if not caller.is_admin and not await manages(s, caller, person):
            raise PermissionDenied(
                f"{caller.actor} may not confirm the claims of people/{person_id}: only their manager or HR may",
                "OUTSIDE_MANAGED_SCOPE",
            )
        if claim.source != Source.SELF.value:
            raise FailedPrecondition(f"{name} is a {claim.source} assessment, not a SELF claim", "NOT_A_CLAIM")
        expires = aware(claim.expires_at)
        if claim.superseded_by_id or (expires is not None and expires <= now):
            raise FailedPrecondition(f"{name} is no longer in force", "CLAIM_NOT_IN_FORCE")
        confirmed = (
            await s.exec(
                select(AssessmentRow).where(
                    AssessmentRow.confirms_id == assessment_id, col(AssessmentRow.superseded_by_id).is_(None)
                )
            )
        ).first()
        if confirmed is not None:
            return confirmed  # confirming twice is harmless
        new = NewAssessment(
            person_id=person_id,
            skill_id=claim.skill_id,
            level=claim.level,
            source=Source.MANAGER,
            expires_at=expires,
            evidence_uri=claim.evidence_uri,
            evidence_description=claim.evidence_description,
            note=note or f"confirms the self-assessment {name}",
        )
        row = build_row(new, caller, now, confirms_id=assessment_id)
        s.add(row)
        await s.flush()
        await refresh_levels(uow, [(person_id, claim.skill_id)], now)
        return row


async def _readable_person(s: AsyncSession, person_id: str) -> ProjectedPersonRow:
    person = await s.get(ProjectedPersonRow, person_id)
    if person is None:
        raise NotFound(f"people/{person_id} is not known to the skills service", "PERSON_NOT_FOUND")
    await authorize_person_read(s, current_identity(), person)
    return person


async def get_assessment(db: Database, person_id: str, assessment_id: str) -> AssessmentRow:
    name = f"people/{person_id}/assessments/{assessment_id}"
    async with db.read() as s:
        row = await get_or_404(s, AssessmentRow, assessment_id, name)
        if row.person_id != person_id:
            raise NotFound(f"{name} does not exist")
        await _readable_person(s, person_id)
        return row


async def list_assessments(
    db: Database, person_id: str, skill_id: str, exclude_superseded: bool, page: Page
) -> Sequence[AssessmentRow]:
    """Newest first; pages by position (the page token carries the offset)."""
    async with db.read() as s:
        await _readable_person(s, person_id)
        query = select(AssessmentRow).where(AssessmentRow.person_id == person_id)
        if skill_id:
            query = query.where(AssessmentRow.skill_id == skill_id)
        if exclude_superseded:
            query = query.where(col(AssessmentRow.superseded_by_id).is_(None))
        query = query.order_by(
            col(AssessmentRow.assessed_at).desc(), col(AssessmentRow.create_time).desc(), col(AssessmentRow.id).desc()
        )
        return (await s.exec(query.offset(page.after or 0).limit(page.size))).all()


async def get_level(db: Database, person_id: str, skill_id: str) -> tuple[SkillLevelRow, int]:
    """The level and the highest ordinal of the skill's scale (for the normalised level)."""
    async with db.read() as s:
        await _readable_person(s, person_id)
        if await s.get(SkillRow, skill_id) is None:
            raise NotFound(f"skills/{skill_id} does not exist", "SKILL_NOT_FOUND")
        top = (await scales.skill_tops(s, [skill_id])).get(skill_id, 0)
        row = await s.get(SkillLevelRow, (person_id, skill_id))
        now = utcnow()
        if row is None:
            empty = SkillLevelRow(
                person_id=person_id, skill_id=skill_id, explanation="no assessment in force", update_time=now
            )
            return empty, top
        return (await current_levels(s, [row], now))[0], top


async def list_levels(db: Database, person_id: str, page: Page) -> tuple[list[SkillLevelRow], dict[str, int]]:
    async with db.read() as s:
        await _readable_person(s, person_id)
        query = (
            select(SkillLevelRow)
            .where(
                SkillLevelRow.person_id == person_id,
                or_(col(SkillLevelRow.level) > 0, col(SkillLevelRow.claimed_level) > 0),
            )
            .order_by(col(SkillLevelRow.skill_id))
            .limit(page.size)
        )
        if page.after is not None:
            query = query.where(col(SkillLevelRow.skill_id) > page.after)
        rows = await current_levels(s, list((await s.exec(query)).all()), utcnow())
        return rows, await scales.skill_tops(s, {r.skill_id for r in rows})


def people_in_subtree(path: str) -> sa.Select[tuple[str]]:
    units = select(ProjectedOrgUnitRow.id).where(col(ProjectedOrgUnitRow.path).startswith(path, autoescape=True))
    return select(ProjectedPersonRow.id).where(col(ProjectedPersonRow.org_unit_id).in_(units))  # type: ignore[return-value]


async def expiring_certifications(db: Database, unit_id: str, within_days: int, page: Page) -> Sequence[AssessmentRow]:
    now = utcnow()
    async with db.read() as s:
        unit = None
        if unit_id:
            unit = await s.get(ProjectedOrgUnitRow, unit_id)
            if unit is None or unit.deleted:
                raise invalid("org_unit", f"orgUnits/{unit_id} is not known to the skills service")
        await authorize_unit_read(s, current_identity(), unit)
        query = select(AssessmentRow).where(
            AssessmentRow.source == Source.CERTIFICATION.value,
            col(AssessmentRow.superseded_by_id).is_(None),
            col(AssessmentRow.expires_at) > now,
            col(AssessmentRow.expires_at) <= now + timedelta(days=within_days),
            col(AssessmentRow.assessed_at) <= now,
        )
        if unit is not None:
            query = query.where(col(AssessmentRow.person_id).in_(people_in_subtree(unit.path)))
        if page.after is not None:
            after_time, after_id = datetime.fromisoformat(page.after[0]), page.after[1]
            query = query.where(
                or_(
                    col(AssessmentRow.expires_at) > after_time,
                    sa.and_(col(AssessmentRow.expires_at) == after_time, col(AssessmentRow.id) > after_id),
                )
            )
        query = query.order_by(col(AssessmentRow.expires_at), col(AssessmentRow.id)).limit(page.size)
        return (await s.exec(query)).all()
