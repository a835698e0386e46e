"""The vocabulary of the roles service and the checks on a role definition."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import IntEnum, StrEnum

from services.platform.errors import FieldViolation, InvalidArgument


class ManagementLevel(IntEnum):
    """A 7-step scale of responsibility modelled on SFIA's levels."""

    FOLLOW = 1
    ASSIST = 2
    APPLY = 3
    ENABLE = 4
    ENSURE_ADVISE = 5
    INITIATE_INFLUENCE = 6
    SET_STRATEGY = 7


LEVEL_NAMES = {
    ManagementLevel.FOLLOW: "Follow",
    ManagementLevel.ASSIST: "Assist",
    ManagementLevel.APPLY: "Apply",
    ManagementLevel.ENABLE: "Enable",
    ManagementLevel.ENSURE_ADVISE: "Ensure, advise",
    ManagementLevel.INITIATE_INFLUENCE: "Initiate, influence",
    ManagementLevel.SET_STRATEGY: "Set strategy, inspire, mobilise",
}


class Tier(StrEnum):
    STRATEGIC = "STRATEGIC"
    OPERATIONAL_TACTICAL = "OPERATIONAL_TACTICAL"
    DESIGN_EXECUTION = "DESIGN_EXECUTION"


# Who settles which tier by default: the top decides strategic trade-offs,
# operating management operational and tactical issues, first-line managers
# and teams detailed design and execution.
TIER_BANDS: dict[Tier, tuple[int, int]] = {
    Tier.STRATEGIC: (6, 7),
    Tier.OPERATIONAL_TACTICAL: (4, 5),
    Tier.DESIGN_EXECUTION: (1, 3),
}


class Authority(StrEnum):
    DECIDE = "DECIDE"
    AGREE = "AGREE"
    RECOMMEND = "RECOMMEND"
    INPUT = "INPUT"
    PERFORM = "PERFORM"
    CONSULT = "CONSULT"
    INFORM = "INFORM"


class OrgUnitKind(StrEnum):
    COMPANY = "COMPANY"
    DIVISION = "DIVISION"
    LINE_OF_BUSINESS = "LINE_OF_BUSINESS"
    DEPARTMENT = "DEPARTMENT"
    TEAM = "TEAM"


class PersonStatus(StrEnum):
    ACTIVE = "ACTIVE"
    LEAVE = "LEAVE"
    TERMINATED = "TERMINATED"


class RoleState(StrEnum):
    DRAFT = "DRAFT"
    ACTIVE = "ACTIVE"
    RETIRED = "RETIRED"


class Scope(StrEnum):
    ORG_UNIT_ONLY = "ORG_UNIT_ONLY"
    WITH_DESCENDANTS = "WITH_DESCENDANTS"
    WITH_UNASSIGNED_DESCENDANTS = "WITH_UNASSIGNED_DESCENDANTS"


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str

    def __str__(self) -> str:
        return f"{self.amount.normalize():f} {self.currency}"


@dataclass(frozen=True)
class DecisionRight:
    category: str  # decision category id
    authority: Authority
    limit: Money | None = None


@dataclass(frozen=True)
class SkillRequirement:
    skill: str
    min_level: int
    weight: float = 1.0
    mandatory: bool = False


@dataclass(frozen=True)
class RoleContent:
    """What a role asks of its holders; a change to any of it is material."""

    purpose: str
    responsibilities: tuple[str, ...]
    management_level: int
    decision_rights: tuple[DecisionRight, ...] = field(default_factory=tuple)
    skill_requirements: tuple[SkillRequirement, ...] = field(default_factory=tuple)


def validate_role(content: RoleContent, category_bands: dict[str, tuple[int, int]], prefix: str = "role") -> None:
    """Checks a role definition against the decision categories it names.

    `category_bands` maps each known category id to its management level band.
    A DECIDE right on a category whose band starts above the role's level is
    refused: the rules of engagement keep strategic decisions at the top.
    """
    violations: list[FieldViolation] = []
    if content.management_level not in range(1, 8):
        violations.append(FieldViolation(f"{prefix}.management_level", "must be a level from 1 to 7"))
    seen_categories: set[str] = set()
    for i, right in enumerate(content.decision_rights):
        path = f"{prefix}.decision_rights[{i}]"
        if right.category in seen_categories:
            violations.append(FieldViolation(f"{path}.category", "appears twice; give one right per category"))
        seen_categories.add(right.category)
        band = category_bands.get(right.category)
        if band is None:
            violations.append(FieldViolation(f"{path}.category", f"decisionCategories/{right.category} does not exist"))
        elif right.authority == Authority.DECIDE and content.management_level < band[0]:
            violations.append(
                FieldViolation(
                    f"{path}.authority",
                    f"DECIDE on {right.category} needs management level {band[0]} or higher; "
                    f"the role is level {content.management_level}",
                )
            )
        if right.limit is not None and right.authority != Authority.DECIDE:
            violations.append(FieldViolation(f"{path}.limit", "a limit only applies to DECIDE rights"))
    seen_skills: set[str] = set()
    for i, req in enumerate(content.skill_requirements):
        path = f"{prefix}.skill_requirements[{i}]"
        if not req.skill:
            violations.append(FieldViolation(f"{path}.skill", "is required"))
        if req.skill in seen_skills:
            violations.append(FieldViolation(f"{path}.skill", "appears twice"))
        seen_skills.add(req.skill)
        if req.min_level < 1:
            violations.append(FieldViolation(f"{path}.min_level", "must be 1 or more"))
        if req.weight < 0:
            violations.append(FieldViolation(f"{path}.weight", "must not be negative"))
    if violations:
        raise InvalidArgument(f"the role definition is invalid: {violations[0].description}", *violations)
