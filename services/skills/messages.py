"""Mapping between stored rows, domain values and protobuf messages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from engage.skills.v1 import assessments_pb2, catalogue_pb2, fit_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from services.platform.protobuf import enum_in, enum_out, ts_in, ts_out  # noqa: F401  (re-exported)
from services.platform.resources import etag_for
from services.skills.domain.effective import Source
from services.skills.domain.fit import RequirementStatus, RoleFit, SkillFit
from services.skills.domain.model import (
    ExternalReference,
    Framework,
    ScaleLevel,
    SkillStatus,
    SkillType,
    normalized_value,
    top_ordinal,
)
from services.skills.store.tables import (
    AssessmentRow,
    ProficiencyScaleRow,
    SkillCategoryRow,
    SkillLevelRow,
    SkillRow,
    StoredLevel,
)

# ---- enums: proto number <-> domain value ---------------------------------


def skill_type_in(value: int, field: str, required: bool = True) -> SkillType | None:
    return enum_in(SkillType, catalogue_pb2.SkillType, value, "SKILL_TYPE_", field, required)  # type: ignore[no-any-return]


def skill_status_in(value: int, field: str) -> SkillStatus | None:
    return enum_in(SkillStatus, catalogue_pb2.Skill.Status, value, "STATUS_", field, False)  # type: ignore[no-any-return]


# Imports read and write millions of sources: a dict each way, not the enum machinery.
_SOURCE_NUMBERS = {s.value: assessments_pb2.AssessmentSource.Value(f"ASSESSMENT_SOURCE_{s.value}") for s in Source}
_SOURCES = {number: Source(value) for value, number in _SOURCE_NUMBERS.items()}


def source_in(value: int, field: str) -> Source:
    known = _SOURCES.get(value)
    if known is not None:
        return known
    return enum_in(Source, assessments_pb2.AssessmentSource, value, "ASSESSMENT_SOURCE_", field)  # type: ignore[no-any-return]


def source_out(value: str) -> int:
    return (
        _SOURCE_NUMBERS.get(value) or enum_out(assessments_pb2.AssessmentSource, "ASSESSMENT_SOURCE_", value)
        if value
        else 0
    )


# ---- scalars ------------------------------------------------------------------


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything here is UTC."""
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def quick_ts(value: datetime | None) -> Timestamp | None:
    """ts_out by arithmetic: every level event of an import carries three
    times, and Timestamp.FromDatetime goes through a time tuple for each."""
    if value is None:
        return None
    delta = aware(value) - _EPOCH  # type: ignore[operator]
    return Timestamp(seconds=delta.days * 86400 + delta.seconds, nanos=delta.microseconds * 1000)


# ---- catalogue -----------------------------------------------------------------


def levels_in(levels: Any) -> list[ScaleLevel]:
    return [ScaleLevel(lv.ordinal, lv.name.strip(), lv.description.strip()) for lv in levels]


def levels_to_json(levels: list[ScaleLevel]) -> list[dict[str, Any]]:
    return [{"ordinal": lv.ordinal, "name": lv.name, "description": lv.description} for lv in levels]


def scale_out(row: ProficiencyScaleRow) -> catalogue_pb2.ProficiencyScale:
    name = f"proficiencyScales/{row.id}"
    top = top_ordinal(lv["ordinal"] for lv in row.levels)
    return catalogue_pb2.ProficiencyScale(
        name=name,
        display_name=row.display_name,
        description=row.description,
        levels=[
            catalogue_pb2.ProficiencyLevel(**lv, normalized_value=normalized_value(lv["ordinal"], top))
            for lv in row.levels
        ],
        etag=etag_for(name, row.revision),
        create_time=ts_out(row.create_time),
        update_time=ts_out(row.update_time),
    )


def category_out(row: SkillCategoryRow, parents: list[str]) -> catalogue_pb2.SkillCategory:
    name = f"skillCategories/{row.id}"
    return catalogue_pb2.SkillCategory(
        name=name,
        display_name=row.display_name,
        description=row.description,
        parents=[f"skillCategories/{p}" for p in parents],
        etag=etag_for(name, row.revision),
        create_time=ts_out(row.create_time),
        update_time=ts_out(row.update_time),
    )


def references_in(refs: Any, prefix: str) -> list[ExternalReference]:
    out = []
    for i, ref in enumerate(refs):
        framework = enum_in(Framework, catalogue_pb2.Framework, ref.framework, "FRAMEWORK_", f"{prefix}[{i}].framework")
        out.append(ExternalReference(framework, ref.id))
    return out


def skill_out(row: SkillRow, categories: list[str]) -> catalogue_pb2.Skill:
    name = f"skills/{row.id}"
    return catalogue_pb2.Skill(
        name=name,
        preferred_name=row.preferred_name,
        aliases=row.aliases,
        description=row.description,
        type=enum_out(catalogue_pb2.SkillType, "SKILL_TYPE_", row.type),  # type: ignore[arg-type]
        status=enum_out(catalogue_pb2.Skill.Status, "STATUS_", row.status),  # type: ignore[arg-type]
        replaced_by=f"skills/{row.replaced_by}" if row.replaced_by else "",
        categories=[f"skillCategories/{c}" for c in categories],
        scale=f"proficiencyScales/{row.scale_id}",
        external_references=[
            catalogue_pb2.ExternalReference(
                framework=enum_out(catalogue_pb2.Framework, "FRAMEWORK_", r["framework"]),  # type: ignore[arg-type]
                id=r["id"],
            )
            for r in row.external_references
        ],
        level_descriptions=[catalogue_pb2.LevelDescription(**d) for d in row.level_descriptions],
        etag=etag_for(name, row.revision),
        create_time=ts_out(row.create_time),
        update_time=ts_out(row.update_time),
    )


# ---- assessments and levels ------------------------------------------------------------


def assessment_name(row: AssessmentRow) -> str:
    return f"people/{row.person_id}/assessments/{row.id}"


def _assessment_ref(person_id: str, assessment_id: str | None) -> str:
    return f"people/{person_id}/assessments/{assessment_id}" if assessment_id else ""


def assessment_out(row: AssessmentRow) -> assessments_pb2.Assessment:
    evidence = None
    if row.evidence_uri or row.evidence_description:
        evidence = assessments_pb2.Evidence(uri=row.evidence_uri, description=row.evidence_description)
    return assessments_pb2.Assessment(
        name=assessment_name(row),
        skill=f"skills/{row.skill_id}",
        level=row.level,
        source=source_out(row.source),  # type: ignore[arg-type]
        evidence=evidence,
        assessor=row.assessor,
        assess_time=ts_out(row.assessed_at),
        expire_time=ts_out(row.expires_at),
        supersedes=_assessment_ref(row.person_id, row.supersedes_id),
        superseded_by=_assessment_ref(row.person_id, row.superseded_by_id),
        confirms=_assessment_ref(row.person_id, row.confirms_id),
        external_id=row.external_id or "",
        note=row.note,
        create_time=ts_out(row.create_time),
    )


def level_out(row: SkillLevelRow | StoredLevel, top: int = 0) -> assessments_pb2.SkillLevel:
    """`top`: the highest ordinal of the skill's scale, for the normalised level (0: not set)."""
    return assessments_pb2.SkillLevel(
        name=f"people/{row.person_id}/skillLevels/{row.skill_id}",
        skill=f"skills/{row.skill_id}",
        level=row.level,
        claimed_level=row.claimed_level,
        source=source_out(row.source),  # type: ignore[arg-type]
        basis=[_assessment_ref(row.person_id, b) for b in row.basis],
        explanation=row.explanation,
        assess_time=quick_ts(row.assessed_at),
        expire_time=quick_ts(row.valid_until),
        update_time=quick_ts(row.update_time),
        normalized_level=normalized_value(row.level, top),
    )


# ---- fit ----------------------------------------------------------------------------------


_REQUIREMENT_STATUSES = {
    status: enum_out(fit_pb2.RequirementStatus, "REQUIREMENT_STATUS_", status.value) for status in RequirementStatus
}


def skill_fit_out(f: SkillFit, top: int) -> fit_pb2.SkillFit:
    """`top`: the highest ordinal of the skill's scale, for the normalised levels."""
    return fit_pb2.SkillFit(
        skill=f"skills/{f.skill}",
        required_level=f.required,
        effective_level=f.effective,
        claimed_level=f.claimed,
        gap=f.gap,
        mandatory=f.mandatory,
        weight=f.weight,
        score=f.score,
        status=_REQUIREMENT_STATUSES[f.status],  # type: ignore[arg-type]
        normalized_required_level=normalized_value(f.required, top),
        normalized_effective_level=normalized_value(f.effective, top),
    )


def role_fit_out(person_id: str, role_id: str, version: int, fit: RoleFit, tops: dict[str, int]) -> fit_pb2.RoleFit:
    return fit_pb2.RoleFit(
        person=f"people/{person_id}",
        role=f"roles/{role_id}",
        role_version=version,
        score=fit.score,
        fits=fit.fits,
        skills=[skill_fit_out(f, tops.get(f.skill, 0)) for f in fit.skills],
        mandatory_gaps=[f"skills/{s}" for s in fit.mandatory_gaps],
        surplus=fit.surplus,
    )
