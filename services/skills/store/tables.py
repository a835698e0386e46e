"""Tables of the skills service. Times are aware UTC datetimes.

`revision` counts changes of a row: it makes the etag and the events'
`ce-sequence`. The `projected_*` tables are this service's own copy of the
roles service's facts, built from its events (services/skills/app/projection.py);
their `sequence` is the last `ce-sequence` applied, so older events are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import JSON, Column, Field, SQLModel

# The platform tables (outbox, request ids, inbox, dead letters) live in the
# same metadata and the same database.
from services.platform.consumer import DeadLetterRow, InboxRow  # noqa: F401
from services.platform.outbox import OutboxRow, RequestRecord  # noqa: F401

# ---- catalogue ------------------------------------------------------------------


class ProficiencyScaleRow(SQLModel, table=True):
    __tablename__ = "proficiency_scales"

    id: str = Field(primary_key=True, max_length=63)
    display_name: str = Field(max_length=200)
    description: str = Field(default="", max_length=4000)
    # [{"ordinal": 1, "name": "...", "description": "..."}], ordered by ordinal
    levels: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    revision: int = 1
    create_time: datetime
    update_time: datetime


class SkillCategoryRow(SQLModel, table=True):
    __tablename__ = "skill_categories"

    id: str = Field(primary_key=True, max_length=63)
    display_name: str = Field(max_length=200)
    description: str = Field(default="", max_length=4000)
    revision: int = 1
    create_time: datetime
    update_time: datetime


class CategoryParentRow(SQLModel, table=True):
    """An edge of the category graph: `category_id` sits under `parent_id`."""

    __tablename__ = "skill_category_parents"

    category_id: str = Field(primary_key=True, max_length=63)
    parent_id: str = Field(primary_key=True, max_length=63, index=True)
    position: int = 0


class SkillRow(SQLModel, table=True):
    __tablename__ = "skills"

    id: str = Field(primary_key=True, max_length=63)
    preferred_name: str = Field(max_length=200)
    aliases: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    description: str = Field(default="", max_length=4000)
    type: str = Field(max_length=20)
    status: str = Field(max_length=20, index=True)
    replaced_by: str | None = Field(default=None, max_length=63)
    scale_id: str = Field(max_length=63, index=True)
    # [{"framework": "ESCO", "id": "http://..."}]
    external_references: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # [{"level": 1, "description": "..."}]
    level_descriptions: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    revision: int = 1
    create_time: datetime
    update_time: datetime


class SkillNameRow(SQLModel, table=True):
    """Every name of a skill, folded for case-insensitive search."""

    __tablename__ = "skill_names"

    skill_id: str = Field(primary_key=True, max_length=63)
    folded: str = Field(primary_key=True, max_length=200, index=True)
    name: str = Field(max_length=200)
    preferred: bool = False


class SkillMembershipRow(SQLModel, table=True):
    """A skill in a category (a skill may be in several)."""

    __tablename__ = "skill_category_members"

    skill_id: str = Field(primary_key=True, max_length=63)
    category_id: str = Field(primary_key=True, max_length=63, index=True)
    position: int = 0


class CatalogueSeedRow(SQLModel, table=True):
    """Seeds applied, so a seed runs once even if its entries are later changed or removed."""

    __tablename__ = "catalogue_seeds"

    name: str = Field(primary_key=True, max_length=100)
    applied_at: datetime


# ---- inventories -----------------------------------------------------------------


class AssessmentRow(SQLModel, table=True):
    """One assessment. Append-only: only `superseded_by_id` is ever set later."""

    __tablename__ = "assessments"
    __table_args__ = (
        sa.Index("ix_assessments_person_skill", "person_id", "skill_id"),
        sa.Index("ix_assessments_source_expiry", "source", "expires_at"),
    )

    id: str = Field(primary_key=True, max_length=40)
    person_id: str = Field(max_length=63)
    skill_id: str = Field(max_length=63, index=True)
    level: int
    source: str = Field(max_length=20)
    assessor: str = Field(max_length=300)
    evidence_uri: str = Field(default="", max_length=2000)
    evidence_description: str = Field(default="", max_length=2000)
    note: str = Field(default="", max_length=2000)
    assessed_at: datetime
    expires_at: datetime | None = None
    supersedes_id: str | None = Field(default=None, max_length=40)
    superseded_by_id: str | None = Field(default=None, max_length=40)
    confirms_id: str | None = Field(default=None, max_length=40)
    external_id: str | None = Field(default=None, max_length=200, unique=True)
    create_time: datetime


class SkillLevelRow(SQLModel, table=True):
    """A person's effective level in a skill, maintained on every write.

    `valid_until` is when it can next change by itself (an expiry): a row
    past it is recomputed on read and refreshed by the expiry sweep.
    """

    __tablename__ = "skill_levels"
    __table_args__ = (sa.Index("ix_skill_levels_skill_level", "skill_id", "level"),)

    person_id: str = Field(primary_key=True, max_length=63)
    skill_id: str = Field(primary_key=True, max_length=63)
    level: int = 0
    claimed_level: int = 0
    source: str = Field(default="", max_length=20)
    basis: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    explanation: str = Field(default="", max_length=1000)
    assessed_at: datetime | None = None
    valid_until: datetime | None = Field(default=None, index=True)
    revision: int = 1
    update_time: datetime


@dataclass(slots=True)
class StoredLevel:
    """A row of `skill_levels` as plain values (what messages.level_out reads)."""

    person_id: str
    skill_id: str
    level: int = 0
    claimed_level: int = 0
    source: str = ""
    basis: list[str] = field(default_factory=list)
    explanation: str = ""
    assessed_at: datetime | None = None
    valid_until: datetime | None = None
    revision: int = 0
    update_time: datetime | None = None

    def values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}  # type: ignore[attr-defined]


class SkillLevelSnapshotRow(SQLModel, table=True):
    """A person's level in a skill at the end of a day, with their org unit then.

    Written with every level change (one row per person, skill and day: a
    later change that day overwrites it) and when a person moves unit, so the
    level on any day is the newest row on or before it."""

    __tablename__ = "skill_level_snapshots"
    __table_args__ = (sa.Index("ix_skill_level_snapshots_skill_unit_day", "skill_id", "org_unit_id", "day"),)

    person_id: str = Field(primary_key=True, max_length=63)
    skill_id: str = Field(primary_key=True, max_length=63)
    day: date = Field(primary_key=True)
    org_unit_id: str = Field(default="", max_length=63)
    level: int = 0
    claimed_level: int = 0


class RoleFitRow(SQLModel, table=True):
    """A person's fit to the current version of a role, kept up to date on
    every level and requirement change, so FindCandidates walks an index in
    rank order instead of scoring the whole company on each call.

    `misfit` is 1 when a mandatory requirement has a gap (fits sort first);
    `score` and `surplus` follow services/skills/domain/fit.py."""

    __tablename__ = "role_fits"
    __table_args__ = (
        sa.Index("ix_role_fits_rank", "role_id", "misfit", sa.text("score DESC"), sa.text("surplus DESC"), "person_id"),
        sa.Index("ix_role_fits_person", "person_id"),
    )

    role_id: str = Field(primary_key=True, max_length=63)
    person_id: str = Field(primary_key=True, max_length=63)
    version: int
    misfit: int = 0
    score: float = 0.0
    surplus: int = 0


# ---- projection of the roles service --------------------------------------------------


class ProjectedOrgUnitRow(SQLModel, table=True):
    __tablename__ = "projected_org_units"

    id: str = Field(primary_key=True, max_length=63)
    parent_id: str | None = Field(default=None, index=True, max_length=63)
    manager_id: str | None = Field(default=None, index=True, max_length=63)
    # `/root/.../this/`: a subtree is every path starting with its root's path.
    path: str = Field(index=True, max_length=2000)
    deleted: bool = False
    sequence: int = Field(default=0, sa_column=Column(sa.BigInteger, nullable=False, default=0))


class ProjectedPersonRow(SQLModel, table=True):
    __tablename__ = "projected_people"

    id: str = Field(primary_key=True, max_length=63)
    org_unit_id: str = Field(index=True, max_length=63)
    manager_id: str | None = Field(default=None, index=True, max_length=63)
    status: str = Field(max_length=20)
    sequence: int = Field(default=0, sa_column=Column(sa.BigInteger, nullable=False, default=0))


class ProjectedRoleRow(SQLModel, table=True):
    __tablename__ = "projected_roles"

    id: str = Field(primary_key=True, max_length=63)
    version: int = 1
    state: str = Field(max_length=20)
    deleted: bool = False
    sequence: int = Field(default=0, sa_column=Column(sa.BigInteger, nullable=False, default=0))


class ProjectedRequirementRow(SQLModel, table=True):
    """A skill requirement of one version of a role."""

    __tablename__ = "projected_role_requirements"
    __table_args__ = (sa.Index("ix_projected_role_requirements_skill", "skill_id"),)

    role_id: str = Field(primary_key=True, max_length=63)
    version: int = Field(primary_key=True)
    skill_id: str = Field(primary_key=True, max_length=63)
    position: int = 0
    min_level: int
    weight: float = 1.0
    mandatory: bool = False


class ProjectedAssignmentRow(SQLModel, table=True):
    __tablename__ = "projected_assignments"

    id: str = Field(primary_key=True, max_length=40)
    person_id: str = Field(index=True, max_length=63)
    role_id: str = Field(index=True, max_length=63)
    role_version: int
    org_unit_id: str = Field(index=True, max_length=63)
    valid_from: datetime
    valid_to: datetime | None = None
    sequence: int = Field(default=0, sa_column=Column(sa.BigInteger, nullable=False, default=0))
