"""The events of the skills service: `engage.skills.v1.<entity>.<verb>`.

Each builder returns a CloudEvent whose body is a message of events.proto;
the use case emits it in the transaction of the change.
"""

from __future__ import annotations

from engage.skills.v1 import events_pb2
from google.protobuf.message import Message

from services.platform.cloudevents import CloudEvent, change_event
from services.skills import messages
from services.skills.store.tables import ProficiencyScaleRow, SkillCategoryRow, SkillLevelRow, SkillRow, StoredLevel

SOURCE = "/engage/skills"


def _event(entity: str, verb: str, subject: str, body: Message, revision: int, partition: str = "") -> CloudEvent:
    return change_event("skills", entity, verb, subject, body, revision, partition)


def scale_event(verb: str, row: ProficiencyScaleRow) -> CloudEvent:
    body = events_pb2.ProficiencyScaleEvent(proficiency_scale=messages.scale_out(row))
    return _event("proficiency_scale", verb, f"proficiencyScales/{row.id}", body, row.revision)


def category_event(verb: str, row: SkillCategoryRow, parents: list[str]) -> CloudEvent:
    body = events_pb2.SkillCategoryEvent(skill_category=messages.category_out(row, parents))
    return _event("skill_category", verb, f"skillCategories/{row.id}", body, row.revision)


def skill_event(verb: str, row: SkillRow, categories: list[str]) -> CloudEvent:
    body = events_pb2.SkillEvent(skill=messages.skill_out(row, categories))
    return _event("skill", verb, f"skills/{row.id}", body, row.revision)


def skill_level_event(
    row: SkillLevelRow | StoredLevel, previous_level: int, previous_claimed: int, top: int
) -> CloudEvent:
    """`top`: the highest ordinal of the skill's scale, for the normalised level."""
    body = events_pb2.SkillLevelEvent(
        skill_level=messages.level_out(row, top), previous_level=previous_level, previous_claimed_level=previous_claimed
    )
    # Partitioned by person: a consumer sees one person's levels in order.
    return _event(
        "skill_level",
        "changed",
        f"people/{row.person_id}/skillLevels/{row.skill_id}",
        body,
        row.revision,
        f"people/{row.person_id}",
    )
