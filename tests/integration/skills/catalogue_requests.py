"""Request builders the skills tests share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engage.skills.v1 import assessments_pb2, catalogue_pb2
from google.protobuf.timestamp_pb2 import Timestamp

SELF = assessments_pb2.ASSESSMENT_SOURCE_SELF
MANAGER = assessments_pb2.ASSESSMENT_SOURCE_MANAGER
PEER = assessments_pb2.ASSESSMENT_SOURCE_PEER
CERTIFICATION = assessments_pb2.ASSESSMENT_SOURCE_CERTIFICATION
TEST = assessments_pb2.ASSESSMENT_SOURCE_TEST


def ts(delta: timedelta = timedelta(0)) -> Timestamp:
    t = Timestamp()
    t.FromDatetime(datetime.now(UTC) + delta)
    return t


def assessment(
    skill: str,
    level: int,
    source: int,
    *,
    ago: timedelta | None = None,
    expires_in: timedelta | None = None,
    supersedes: str = "",
    external_id: str = "",
    evidence: str = "",
) -> assessments_pb2.Assessment:
    a = assessments_pb2.Assessment(
        skill=f"skills/{skill}", level=level, source=source, supersedes=supersedes, external_id=external_id
    )
    if ago is not None:
        a.assess_time.CopyFrom(ts(-ago))
    if expires_in is not None:
        a.expire_time.CopyFrom(ts(expires_in))
    if evidence:
        a.evidence.uri = evidence
    return a


def create(person: str, a: assessments_pb2.Assessment, request_id: str = "") -> assessments_pb2.CreateAssessmentRequest:
    return assessments_pb2.CreateAssessmentRequest(parent=f"people/{person}", assessment=a, request_id=request_id)


def skill(name: str, *categories: str, aliases: tuple[str, ...] = ()) -> catalogue_pb2.Skill:
    return catalogue_pb2.Skill(
        preferred_name=name,
        type=catalogue_pb2.SKILL_TYPE_SKILL,
        aliases=list(aliases),
        categories=[f"skillCategories/{c}" for c in categories],
    )
