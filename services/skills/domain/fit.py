"""Role fit: how a person's effective levels meet a role's skill requirements.

For each requirement with required level r > 0, effective level e and
weight w:

    skill score = min(e, r) / r
    fit score   = sum(w * skill score) / sum(w)

Over-qualification is capped at the requirement (cap 1.0): being an expert
in one skill never makes up for a gap in another. With no requirements, or
only zero weights, the score is 1.0. A person *fits* the role when no
mandatory requirement has a gap; levels above requirements add up to the
*surplus*, which only breaks ties. Candidates rank: fits first, then higher
score, then higher surplus (then the caller's own tie-breaker, e.g. the id).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

OVERQUALIFICATION_CAP = 1.0


class RequirementStatus(StrEnum):
    MISSING = "MISSING"
    BELOW = "BELOW"
    MET = "MET"
    ABOVE = "ABOVE"


@dataclass(frozen=True)
class Requirement:
    skill: str
    min_level: int
    weight: float = 1.0
    mandatory: bool = False


# Named tuples: GetRoleFit builds one per requirement on every call, and a
# tuple is built several times faster than a frozen dataclass.


class SkillFit(NamedTuple):
    skill: str
    required: int
    effective: int
    claimed: int
    gap: int
    mandatory: bool
    weight: float
    score: float
    status: RequirementStatus


class RoleFit(NamedTuple):
    score: float
    fits: bool
    skills: tuple[SkillFit, ...]
    mandatory_gaps: tuple[str, ...]
    surplus: int

    def rank_key(self) -> tuple[bool, float, int]:
        """Sorts best first when used as an ascending key."""
        return (not self.fits, -self.score, -self.surplus)


def skill_fit(req: Requirement, effective: int, claimed: int = 0) -> SkillFit:
    required = max(req.min_level, 0)
    gap = max(0, required - effective)
    score = 1.0 if required == 0 else min(effective, OVERQUALIFICATION_CAP * required) / required
    if effective <= 0:
        status = RequirementStatus.MET if required == 0 else RequirementStatus.MISSING
    elif effective < required:
        status = RequirementStatus.BELOW
    elif effective == required:
        status = RequirementStatus.MET
    else:
        status = RequirementStatus.ABOVE
    return SkillFit(req.skill, required, effective, claimed, gap, req.mandatory, req.weight, score, status)


def role_fit(
    requirements: Iterable[Requirement], levels: Mapping[str, int], claims: Mapping[str, int] | None = None
) -> RoleFit:
    claims = claims or {}
    fits = tuple(skill_fit(r, levels.get(r.skill, 0), claims.get(r.skill, 0)) for r in requirements)
    total_weight = sum(max(f.weight, 0.0) for f in fits)
    score = 1.0 if total_weight <= 0 else sum(max(f.weight, 0.0) * f.score for f in fits) / total_weight
    mandatory_gaps = tuple(f.skill for f in fits if f.mandatory and f.gap > 0)
    surplus = sum(max(0, f.effective - f.required) for f in fits)
    return RoleFit(round(score, 6), not mandatory_gaps, fits, mandatory_gaps, surplus)
