"""The vocabulary of the skills service and the checks on catalogue entries."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from services.platform.errors import FieldViolation, InvalidArgument

DEFAULT_SCALE = "engage-default"
NAME_LIMIT = 200
DESCRIPTION_LIMIT = 4000


class SkillType(StrEnum):
    KNOWLEDGE = "KNOWLEDGE"
    SKILL = "SKILL"


class SkillStatus(StrEnum):
    ACTIVE = "ACTIVE"
    DEPRECATED = "DEPRECATED"


class Framework(StrEnum):
    ESCO = "ESCO"
    ONET = "ONET"
    SFIA = "SFIA"


@dataclass(frozen=True)
class ScaleLevel:
    ordinal: int
    name: str
    description: str


@dataclass(frozen=True)
class ExternalReference:
    framework: Framework
    id: str


def fold(name: str) -> str:
    """A name as search compares it: case-folded, inner whitespace collapsed."""
    return " ".join(name.split()).casefold()


def check_levels(levels: list[ScaleLevel], field: str) -> list[ScaleLevel]:
    """A scale needs levels with distinct positive ordinals, each named and described
    in observable behaviour. Returns them ordered by ordinal."""
    violations: list[FieldViolation] = []
    if not levels:
        violations.append(FieldViolation(field, "a scale needs at least one level"))
    seen: set[int] = set()
    for i, level in enumerate(levels):
        path = f"{field}[{i}]"
        if level.ordinal < 1:
            violations.append(FieldViolation(f"{path}.ordinal", "must be 1 or more"))
        if level.ordinal in seen:
            violations.append(FieldViolation(f"{path}.ordinal", f"ordinal {level.ordinal} appears twice"))
        seen.add(level.ordinal)
        if not level.name.strip() or len(level.name) > NAME_LIMIT:
            violations.append(FieldViolation(f"{path}.name", f"is required (at most {NAME_LIMIT} characters)"))
        if not level.description.strip() or len(level.description) > DESCRIPTION_LIMIT:
            violations.append(
                FieldViolation(
                    f"{path}.description",
                    f"is required: what a person at this level is seen to do (at most {DESCRIPTION_LIMIT} characters)",
                )
            )
    if violations:
        raise InvalidArgument(f"the scale is invalid: {violations[0].field}: {violations[0].description}", *violations)
    return sorted(levels, key=lambda lv: lv.ordinal)


def check_reference(ref: ExternalReference, field: str) -> ExternalReference:
    """Cheap shape checks of framework ids, so typos are caught at the door."""
    value = ref.id.strip()
    ok = bool(value) and len(value) <= 300
    if ok and ref.framework == Framework.ESCO:
        ok = value.startswith(("http://data.europa.eu/esco/", "https://data.europa.eu/esco/"))
        hint = "an ESCO concept URI (http://data.europa.eu/esco/...)"
    elif ok and ref.framework == Framework.ONET:
        ok = all(part.isalnum() for part in value.split(".")) and "." in value
        hint = "an O*NET element id such as 2.B.1.a"
    elif ok and ref.framework == Framework.SFIA:
        ok = value.isalpha() and value.isupper() and len(value) == 4
        hint = "a 4-letter SFIA skill code such as RLMT"
    else:
        hint = "a non-empty id of at most 300 characters"
    if not ok:
        raise InvalidArgument(f"{field}.id: must be {hint}", FieldViolation(f"{field}.id", f"must be {hint}"))
    return ExternalReference(ref.framework, value)


def check_names(preferred: str, aliases: list[str], prefix: str) -> tuple[str, list[str]]:
    """The preferred name is required; aliases are trimmed and de-duplicated
    (ignoring case), and an alias equal to the preferred name is dropped."""
    name = " ".join(preferred.split())
    if not name or len(name) > NAME_LIMIT:
        raise InvalidArgument(
            f"{prefix}.preferred_name: is required (at most {NAME_LIMIT} characters)",
            FieldViolation(f"{prefix}.preferred_name", f"is required (at most {NAME_LIMIT} characters)"),
        )
    seen = {fold(name)}
    kept: list[str] = []
    for i, alias in enumerate(aliases):
        cleaned = " ".join(alias.split())
        if not cleaned or len(cleaned) > NAME_LIMIT:
            raise InvalidArgument(
                f"{prefix}.aliases[{i}]: must be 1-{NAME_LIMIT} characters",
                FieldViolation(f"{prefix}.aliases[{i}]", f"must be 1-{NAME_LIMIT} characters"),
            )
        if fold(cleaned) not in seen:
            seen.add(fold(cleaned))
            kept.append(cleaned)
    return name, kept


def normalized_value(level: float, top: int) -> float:
    """A level on the common 0-100 scale: O*NET's standardisation
    S = (O - L) / (H - L) * 100 with L = 0 (no level, shared by every scale)
    and H the scale's highest ordinal, rounded to one decimal."""
    if top <= 0 or level <= 0:
        return 0.0
    return round(100.0 * min(level, top) / top, 1)


def top_ordinal(ordinals: Iterable[int]) -> int:
    """The highest ordinal of a scale (0 for none): the H of `normalized_value`."""
    return max(ordinals, default=0)
