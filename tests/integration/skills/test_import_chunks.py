"""An import larger than one chunk: each chunk is written while the rows of
the next are checked (services/skills/app/importer.py), and a row that
supersedes an assessment waits for everything before it."""

import gc
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from engage.skills.v1 import assessments_pb2
from sqlmodel import select

from services.platform.audit import AuditRecord
from services.platform.outbox import OutboxRow
from services.skills.app import importer
from services.skills.messages import aware
from tests.integration.skills.catalogue_requests import CERTIFICATION, MANAGER, TEST, assessment, create
from tests.integration.skills.test_assessments import company, level, level_events

A = assessments_pb2
LEVEL_CHANGED = "engage.skills.v1.skill_level.changed"


async def test_an_import_of_many_chunks_writes_every_row_and_level_once(stack, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(importer, "CHUNK_ROWS", 2)
    skills = await company(stack)
    first = await skills.assessments.CreateAssessment(
        create("A2", assessment("teaming", 2, MANAGER)), metadata=skills.admin
    )
    events_before = len(await level_events(skills))

    def row(person: str, skill: str, lv: int, external_id: str, source: int = TEST, supersedes: str = ""):
        a = assessment(skill, lv, source, external_id=external_id, supersedes=supersedes)
        return A.ImportAssessmentRow(parent=f"people/{person}", assessment=a)

    rows = [
        row("S1", "teaming", 3, "c-1"),
        row("S2", "teaming", 4, "c-2"),
        row("A1", "teaming", 2, "c-3"),
        row("S9", "teaming", 2, "c-4"),  # unknown person
        row("S1", "knowledge-sharing", 4, "c-5"),
        row("A2", "teaming", 4, "c-6", MANAGER, supersedes=first.name),  # waits for the chunks before it
        row("S2", "knowledge-sharing", 1, "c-7", CERTIFICATION),
        row("S1", "teaming", 5, "c-8", CERTIFICATION),  # the same pair again, two chunks on
    ]

    async def stream():
        yield A.ImportAssessmentsRequest(rows=rows)

    reply = await skills.assessments.ImportAssessments(stream(), metadata=skills.admin, timeout=30)
    outcome = A.ImportAssessmentRowResult
    assert [(r.row, r.outcome) for r in reply.results] == [
        (i, outcome.OUTCOME_REJECTED if i == 3 else outcome.OUTCOME_CREATED) for i in range(8)
    ]
    # Seven rows, six pairs; S1's teaming changed twice (3, then 5).
    assert (reply.created_count, reply.changed_level_count) == (7, 7)
    assert [
        (await level(skills, p, k)).level for p, k in [("S1", "teaming"), ("A2", "teaming"), ("S2", "teaming")]
    ] == [
        5,
        4,
        4,
    ]
    assert len(await level_events(skills)) == events_before + 7
    superseded = await skills.assessments.GetAssessment(A.GetAssessmentRequest(name=first.name), metadata=skills.admin)
    assert superseded.superseded_by == reply.results[5].name

    again = await skills.assessments.ImportAssessments(stream(), metadata=skills.admin, timeout=30)
    assert (again.unchanged_count, again.rejected_count, again.changed_level_count) == (7, 1, 0)


async def test_an_import_writes_each_level_event_with_its_audit_record_and_restores_the_collector(stack):
    """The events go to the outbox and the audit trail as plain driver rows
    (services/platform/outbox.py DriverInsert), with time-ordered ids; the
    import pauses the garbage collector and turns it back on."""
    skills = await company(stack)
    rows = [
        A.ImportAssessmentRow(parent=f"people/{p}", assessment=assessment(k, lv, TEST, external_id=f"g-{i}"))
        for i, (p, k, lv) in enumerate([("S1", "teaming", 3), ("S2", "teaming", 4), ("S1", "knowledge-sharing", 2)])
    ]

    async def stream():
        yield A.ImportAssessmentsRequest(rows=rows)

    metadata = (*skills.admin, ("x-request-id", "import-gc-1"))
    reply = await skills.assessments.ImportAssessments(stream(), metadata=metadata, timeout=30)
    assert (reply.created_count, reply.changed_level_count) == (3, 3)
    assert gc.isenabled()

    async with skills.app.db.read() as s:
        outbox = (await s.exec(select(OutboxRow).where(OutboxRow.type == LEVEL_CHANGED))).all()
        audit = {r.event_id: r for r in (await s.exec(select(AuditRecord))).all()}
    imported = [o for o in outbox if audit[o.event_id].request_id == "import-gc-1"]
    assert sorted(o.subject for o in imported) == [
        "people/S1/skillLevels/knowledge-sharing",
        "people/S1/skillLevels/teaming",
        "people/S2/skillLevels/teaming",
    ]
    for o in imported:
        record = audit[o.event_id]
        assert (record.actor, record.event_type, record.subject, record.data, record.data_schema) == (
            o.authid,
            o.type,
            o.subject,
            o.data,
            o.dataschema,
        )
        assert aware(record.recorded_at) == aware(o.event_time)
        assert abs(aware(o.event_time) - datetime.now(UTC)) < timedelta(minutes=5)  # type: ignore[operator]
        assert uuid.UUID(o.event_id).version == 7
        assert o.published_at is None or aware(o.published_at) >= aware(o.event_time)  # type: ignore[operator]
