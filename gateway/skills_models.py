"""JSON shapes of the skills routes, and their translation from protobuf."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from engage.skills.v1 import assessments_pb2, catalogue_pb2, fit_pb2
from pydantic import Field

from gateway.models import HeldRoleFit, Model, _enum, _time

SKILL_NAME = r"^skills/[A-Za-z0-9._-]{1,63}$"
RequirementStatus = Literal["UNSPECIFIED", "MISSING", "BELOW", "MET", "ABOVE"]
Source = Literal["UNSPECIFIED", "SELF", "MANAGER", "PEER", "CERTIFICATION", "TEST", "CRM_EVIDENCE"]
SOURCES = {name: number for number, name in enumerate(Source.__args__)}  # type: ignore[attr-defined]


def _source(value: int) -> Source:
    return _enum(assessments_pb2.AssessmentSource.DESCRIPTOR, value, "ASSESSMENT_SOURCE_")  # type: ignore[return-value]


class Skill(Model):
    name: str = Field(examples=["skills/customer-empathy"])
    preferredName: str
    description: str
    scale: str = Field(description="Proficiency scale, `proficiencyScales/{id}`.")

    @classmethod
    def of(cls, s: catalogue_pb2.Skill) -> Skill:
        return cls(name=s.name, preferredName=s.preferred_name, description=s.description, scale=s.scale)


class SkillList(Model):
    skills: list[Skill]
    nextPageToken: str


class SkillFit(Model):
    skill: str
    requiredLevel: int
    effectiveLevel: int = Field(description="0: none.")
    claimedLevel: int = Field(description="The person's own claim; it does not count.")
    gap: int = Field(ge=0)
    mandatory: bool
    weight: float
    score: float
    status: RequirementStatus

    @classmethod
    def of(cls, f: fit_pb2.SkillFit) -> SkillFit:
        return cls(
            skill=f.skill,
            requiredLevel=f.required_level,
            effectiveLevel=f.effective_level,
            claimedLevel=f.claimed_level,
            gap=f.gap,
            mandatory=f.mandatory,
            weight=f.weight,
            score=f.score,
            status=_enum(fit_pb2.RequirementStatus.DESCRIPTOR, f.status, "REQUIREMENT_STATUS_"),  # type: ignore[arg-type]
        )


class RoleFit(Model):
    person: str
    role: str
    roleVersion: int
    score: float = Field(description="Fit score from 0 to 1.")
    fits: bool = Field(description="No mandatory requirement has a gap.")
    skills: list[SkillFit] = Field(description="One entry per required skill, in the role's order.")
    mandatoryGaps: list[str]
    surplus: int = Field(description="Sum of the levels above requirements.")

    @classmethod
    def of(cls, f: fit_pb2.RoleFit) -> RoleFit:
        return cls(
            person=f.person,
            role=f.role,
            roleVersion=f.role_version,
            score=f.score,
            fits=f.fits,
            skills=[SkillFit.of(s) for s in f.skills],
            mandatoryGaps=list(f.mandatory_gaps),
            surplus=f.surplus,
        )


class Candidate(Model):
    person: str
    orgUnit: str
    score: float
    fits: bool
    gaps: list[SkillFit] = Field(description="The requirements they fall short of.")
    surplus: int

    @classmethod
    def of(cls, c: fit_pb2.Candidate) -> Candidate:
        return cls(
            person=c.person,
            orgUnit=c.org_unit,
            score=c.score,
            fits=c.fits,
            gaps=[SkillFit.of(g) for g in c.gaps],
            surplus=c.surplus,
        )


class CandidateList(Model):
    role: str
    roleVersion: int = Field(description="The role version whose requirements were used.")
    candidates: list[Candidate] = Field(description="Best first: no mandatory gap, then score, surplus, id.")
    nextPageToken: str


def held_fit(f: fit_pb2.HeldRoleFit) -> HeldRoleFit:
    return HeldRoleFit(role=f.role, score=f.score, fits=f.fits, mandatoryGaps=list(f.mandatory_gaps))


class SkillCell(Model):
    skill: str
    level: int = Field(description="Effective level (0: none).")
    claimedLevel: int
    requiredLevel: int = Field(description="Highest level the person's roles require (0: not required).")
    gap: int


class SkillMatrixRow(Model):
    person: str
    orgUnit: str
    cells: list[SkillCell] = Field(description="One per skill of the matrix, in column order.")
    roles: list[HeldRoleFit] = Field(description="Fit to each role the person holds.")


class SkillMatrix(Model):
    orgUnit: str
    skills: list[str] = Field(description="Columns.")
    rows: list[SkillMatrixRow]

    @classmethod
    def of(cls, m: fit_pb2.TeamSkillMatrix) -> SkillMatrix:
        return cls(
            orgUnit=m.org_unit,
            skills=list(m.skills),
            rows=[
                SkillMatrixRow(
                    person=r.person,
                    orgUnit=r.org_unit,
                    cells=[
                        SkillCell(
                            skill=c.skill,
                            level=c.level,
                            claimedLevel=c.claimed_level,
                            requiredLevel=c.required_level,
                            gap=c.gap,
                        )
                        for c in r.cells
                    ],
                    roles=[held_fit(f) for f in r.roles],
                )
                for r in m.rows
            ],
        )


class SkillLevel(Model):
    name: str = Field(examples=["people/E10167/skillLevels/customer-empathy"])
    skill: str
    level: int = Field(description="Effective level by the service's documented rule (0: none).")
    claimedLevel: int = Field(description="The person's own latest claim (0: none).")
    source: Source
    basis: list[str] = Field(description="Assessments the level rests on.")
    explanation: str
    assessTime: datetime | None = None
    expireTime: datetime | None = None
    updateTime: datetime | None = None

    @classmethod
    def of(cls, v: assessments_pb2.SkillLevel) -> SkillLevel:
        return cls(
            name=v.name,
            skill=v.skill,
            level=v.level,
            claimedLevel=v.claimed_level,
            source=_source(v.source),
            basis=list(v.basis),
            explanation=v.explanation,
            assessTime=_time(v.assess_time),
            expireTime=_time(v.expire_time),
            updateTime=_time(v.update_time),
        )


class SkillLevelList(Model):
    skillLevels: list[SkillLevel]
    nextPageToken: str


class AssessmentCreate(Model):
    skill: str = Field(pattern=SKILL_NAME, examples=["skills/customer-empathy"])
    level: int = Field(ge=1, le=10, description="On the skill's proficiency scale.")
    note: str = Field(default="", max_length=500)


class Assessment(Model):
    name: str
    skill: str
    level: int
    source: Source = Field(description="SELF when you assess yourself, MANAGER when you assess your team.")
    assessor: str
    note: str
    assessTime: datetime | None = None
    expireTime: datetime | None = None
    createTime: datetime | None = None

    @classmethod
    def of(cls, a: assessments_pb2.Assessment) -> Assessment:
        return cls(
            name=a.name,
            skill=a.skill,
            level=a.level,
            source=_source(a.source),
            assessor=a.assessor,
            note=a.note,
            assessTime=_time(a.assess_time),
            expireTime=_time(a.expire_time),
            createTime=_time(a.create_time),
        )
