"""The events of the skills service: `engage.skills.v1.<entity>.<verb>`.

Each builder returns a CloudEvent whose body is a message of events.proto;
the use case emits it in the transaction of the change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from engage.skills.v1 import events_pb2
from google.protobuf.message import Message

from services.platform.auth import current_identity
from services.platform.cloudevents import CloudEvent, change_event
from services.skills import messages
from services.skills.store.ordered_ids import ordered_uuid
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
    return skill_level_events([(row, previous_level, previous_claimed)], {row.skill_id: top})[0]


def skill_level_events(
    changes: Sequence[tuple[SkillLevelRow | StoredLevel, int, int]], tops: Mapping[str, int]
) -> list[CloudEvent]:
    """`skill_level.changed` of each (level, previous level, previous claim),
    as change_event builds them, with the caller and the time taken once: an
    import changes millions of levels in one transaction."""
    # One event made the usual way names the type, source and schema for all.
    template = _event("skill_level", "changed", "", events_pb2.SkillLevelEvent(), 0)
    actor = current_identity().actor
    now = datetime.now(UTC)
    events = []
    for row, previous_level, previous_claimed in changes:
        body = events_pb2.SkillLevelEvent(
            skill_level=messages.level_out(row, tops.get(row.skill_id, 0)),
            previous_level=previous_level,
            previous_claimed_level=previous_claimed,
        )
        events.append(
            CloudEvent(
                type=template.type,
                source=template.source,
                subject=f"people/{row.person_id}/skillLevels/{row.skill_id}",
                data=body.SerializeToString(deterministic=True),
                dataschema=template.dataschema,
                sequence=row.revision,
                # Partitioned by person: a consumer sees one person's levels in order.
                partitionkey=f"people/{row.person_id}",
                authid=actor,
                # In creation order: the outbox's unique index on event ids
                # grows at its end through an import of millions of changes.
                id=ordered_uuid(),
                time=now,
            )
        )
    return events
