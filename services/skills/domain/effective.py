"""The effective level: one rule that turns a person's assessments of a skill
into the level Engage believes they have, and says why.

The rule:

1. Only assessments *in force* count: not superseded, assessed at or before
   now, and not expired (no expiry, or an expiry after now).
2. Sources rank in classes. CERTIFICATION and TEST (verified by a third
   party) outrank MANAGER, which outranks PEER and CRM_EVIDENCE. The highest
   class with an assessment in force decides, whatever the levels: a
   certification at 2 beats a manager's 4, because it was checked.
3. Within the deciding class the latest assessment (by assessment time, then
   by when it was recorded, then by id) gives the level: people learn and
   forget, the newest view is the best one.
4. SELF assessments never decide: the latest SELF assessment in force is the
   separate *claimed* level. A manager turns a claim into evidence by
   confirming it, which records a MANAGER assessment.
5. With nothing in force the level is 0.

The answer carries its basis (the ids of the deciding assessment and of the
claim) and the next moment it can change by itself (an expiry), so a stored
level can be refreshed exactly when it goes stale.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import NamedTuple


class Source(StrEnum):
    SELF = "SELF"
    MANAGER = "MANAGER"
    PEER = "PEER"
    CERTIFICATION = "CERTIFICATION"
    TEST = "TEST"
    CRM_EVIDENCE = "CRM_EVIDENCE"


# Higher outranks lower; SELF has no rank: it never decides.
SOURCE_RANK: dict[Source, int] = {
    Source.CERTIFICATION: 3,
    Source.TEST: 3,
    Source.MANAGER: 2,
    Source.PEER: 1,
    Source.CRM_EVIDENCE: 1,
}

_CLASS_NAMES = {3: "CERTIFICATION/TEST", 2: "MANAGER", 1: "PEER/CRM_EVIDENCE"}


# Named tuples rather than frozen dataclasses: an import builds one of each
# per assessment, millions of them, and a tuple is built several times faster.


class AssessmentFact(NamedTuple):
    """What the rule needs to know about one assessment."""

    id: str
    level: int
    source: Source
    assessed_at: datetime
    recorded_at: datetime
    expires_at: datetime | None = None
    superseded: bool = False

    def in_force(self, now: datetime) -> bool:
        return not self.superseded and self.assessed_at <= now and (self.expires_at is None or self.expires_at > now)

    def order(self) -> tuple[datetime, datetime, str]:
        return (self.assessed_at, self.recorded_at, self.id)


class EffectiveLevel(NamedTuple):
    level: int
    claimed_level: int
    source: Source | None  # of the deciding assessment
    basis: tuple[str, ...]  # deciding assessment first, then the claim behind claimed_level
    assessed_at: datetime | None  # of the deciding assessment
    valid_until: datetime | None  # when the answer can next change by itself
    explanation: str


NOTHING = EffectiveLevel(0, 0, None, (), None, None, "no assessment in force")


def effective_level(assessments: Iterable[AssessmentFact], now: datetime) -> EffectiveLevel:
    facts = list(assessments)
    if len(facts) == 1 and facts[0].source != Source.SELF and facts[0].in_force(now):
        return _only(facts[0])  # the common case of a bulk import, without the general machinery
    current = [a for a in facts if a.in_force(now)]
    claims = [a for a in current if a.source == Source.SELF]
    ranked = [a for a in current if a.source != Source.SELF]
    claim = max(claims, key=AssessmentFact.order, default=None)

    # The answer changes by itself when an assessment in force expires or a
    # future-dated one comes into force.
    moments = [a.expires_at for a in current if a.expires_at is not None]
    moments += [a.assessed_at for a in facts if not a.superseded and a.assessed_at > now]
    valid_until = min(moments, default=None)

    claimed_level = claim.level if claim else 0
    claim_basis = (claim.id,) if claim else ()
    if not ranked:
        if claim is None:
            return EffectiveLevel(0, 0, None, (), None, valid_until, NOTHING.explanation)
        return EffectiveLevel(
            0,
            claimed_level,
            None,
            claim_basis,
            None,
            valid_until,
            f"only a self-assessment (claimed level {claimed_level}) is in force; it counts once a manager confirms it",
        )
    top = max(SOURCE_RANK[a.source] for a in ranked)
    deciding = max((a for a in ranked if SOURCE_RANK[a.source] == top), key=AssessmentFact.order)
    outranked = sorted({_CLASS_NAMES[SOURCE_RANK[a.source]] for a in ranked if SOURCE_RANK[a.source] < top})
    reason = f"{deciding.source.value} assessment of {deciding.assessed_at.date().isoformat()}"
    reason = f"latest {reason}" if sum(1 for a in ranked if SOURCE_RANK[a.source] == top) > 1 else reason
    if outranked:
        reason += f"; {_CLASS_NAMES[top]} outranks {', '.join(outranked)}"
    return EffectiveLevel(
        deciding.level,
        claimed_level,
        deciding.source,
        (deciding.id, *claim_basis),
        deciding.assessed_at,
        valid_until,
        f"level {deciding.level} from the {reason}",
    )


def _only(a: AssessmentFact) -> EffectiveLevel:
    """The level when one ranked assessment is in force and nothing else counts."""
    return EffectiveLevel(
        a.level,
        0,
        a.source,
        (a.id,),
        a.assessed_at,
        a.expires_at,
        f"level {a.level} from the {a.source.value} assessment of {a.assessed_at.date().isoformat()}",
    )
