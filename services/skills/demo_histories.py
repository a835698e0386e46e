"""Skill histories for a demo company, so the fit and gap views have
something to show: for each person and each skill their roles require, a
manager's assessment around the requirement (some below it), sometimes an
older one before it, a self-assessment that is often higher, and for CRM
tool skills certifications, some expired and some running out soon.

Deterministic (seeded by person and skill) and idempotent: every row has an
external id, so loading the same rows again through ImportAssessments
changes nothing. `anchor` dates the history; keep it fixed for a demo
database (rows re-sent with another anchor are rejected as changed, and the
history loaded first stays).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from engage.skills.v1 import assessments_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from services.skills.catalogue_seed import LEADERSHIP_SCALE, SKILLS

SOURCE = assessments_pb2.AssessmentSource
CERTIFIABLE = {
    "crm-case-management",
    "crm-pipeline-management",
    "campaign-management",
    "customer-data-quality",
    "knowledge-management",
}
_TOP = {s.id: (7 if s.scale == LEADERSHIP_SCALE else 5) for s in SKILLS}


@dataclass(frozen=True)
class DemoHolder:
    person: str  # HR employee id
    required: dict[str, int]  # skill id -> highest level the person's roles require


def _ts(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def _row(
    person: str,
    skill: str,
    level: int,
    source: int,
    at: datetime,
    ext: str,
    expires: datetime | None = None,
    evidence: str = "",
) -> assessments_pb2.ImportAssessmentsRequest:
    a = assessments_pb2.Assessment(skill=f"skills/{skill}", level=level, assess_time=_ts(at), external_id=ext)
    a.source = source  # type: ignore[assignment]
    if expires is not None:
        a.expire_time.CopyFrom(_ts(expires))
    a.evidence.description = evidence
    return assessments_pb2.ImportAssessmentsRequest(parent=f"people/{person}", assessment=a)


def history_rows(holders: Iterable[DemoHolder], anchor: datetime) -> Iterator[assessments_pb2.ImportAssessmentsRequest]:
    """Import rows (ImportAssessmentsRequest) for every holder's required skills."""
    day = timedelta(days=1)
    for holder in holders:
        for skill, required in sorted(holder.required.items()):
            if skill not in _TOP:
                continue
            rng = random.Random(f"engage-demo:{holder.person}:{skill}")
            top = _TOP[skill]
            ext = f"demo:{holder.person}:{skill}"
            level = max(1, min(top, required + rng.choice([-2, -1, 0, 0, 0, 0, 0, 1, 1, 1])))
            if rng.random() < 0.5:
                earlier = max(1, level - 1)
                yield _row(holder.person, skill, earlier, SOURCE.ASSESSMENT_SOURCE_MANAGER, anchor - 400 * day,
                           f"{ext}:manager-0")  # fmt: skip
            yield _row(holder.person, skill, level, SOURCE.ASSESSMENT_SOURCE_MANAGER,
                       anchor - rng.randint(20, 200) * day, f"{ext}:manager-1")  # fmt: skip
            if rng.random() < 0.4:
                claim = max(1, min(top, level + rng.choice([0, 1, 1, 2])))
                yield _row(holder.person, skill, claim, SOURCE.ASSESSMENT_SOURCE_SELF,
                           anchor - rng.randint(1, 20) * day, f"{ext}:self-1")  # fmt: skip
            if skill in CERTIFIABLE and rng.random() < 0.35:
                certified = max(1, min(top, required + rng.choice([-1, 0, 0, 1])))
                yield _row(holder.person, skill, certified, SOURCE.ASSESSMENT_SOURCE_CERTIFICATION,
                           anchor - 700 * day, f"{ext}:certification-1",
                           expires=anchor + rng.randint(-60, 400) * day,
                           evidence=f"Vendor certification in {skill.replace('-', ' ')}")  # fmt: skip
