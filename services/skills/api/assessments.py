"""AssessmentService: assessments, confirmations, imports and effective levels."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from engage.skills.v1 import assessments_pb2, assessments_pb2_grpc

from services.platform.db import Database
from services.platform.errors import EngageError, invalid
from services.platform.resources import page_of, parse_name
from services.skills import messages
from services.skills.api.fields import offset_of, person_child, text_in
from services.skills.app import assessments as uc
from services.skills.app.importer import ImportBatch, RowOutcome, apply_import, collector_paused, counts

Outcome = assessments_pb2.ImportAssessmentRowResult.Outcome
_OUTCOMES = {o: Outcome.Value(f"OUTCOME_{o.value}") for o in RowOutcome}  # looked up once per row of an import


def assessment_in(
    person_id: str, a: assessments_pb2.Assessment, *, external_required: bool = False
) -> uc.NewAssessment:
    """Validates the shape of an assessment; the use case checks it against the catalogue."""
    supersedes = None
    if a.supersedes:
        owner, supersedes = person_child(a.supersedes, "assessments", "assessment.supersedes")
        if owner != person_id:
            raise invalid("assessment.supersedes", "names an assessment of another person")
    external = text_in(a.external_id, "assessment.external_id", 200, required=external_required)
    return uc.NewAssessment(
        person_id=person_id,
        skill_id=parse_name(a.skill, "skills", "assessment.skill"),
        level=a.level,
        source=messages.source_in(a.source, "assessment.source"),
        assessed_at=messages.ts_in(a.assess_time, a.HasField("assess_time")),
        expires_at=messages.ts_in(a.expire_time, a.HasField("expire_time")),
        supersedes_id=supersedes,
        evidence_uri=text_in(a.evidence.uri, "assessment.evidence.uri", 2000, required=False),
        evidence_description=text_in(a.evidence.description, "assessment.evidence.description", 2000, required=False),
        note=text_in(a.note, "assessment.note", 2000, required=False),
        external_id=external or None,
    )


class AssessmentServicer(assessments_pb2_grpc.AssessmentServiceServicer):
    def __init__(self, db: Database):
        self.db = db

    async def CreateAssessment(
        self, request: assessments_pb2.CreateAssessmentRequest, context: grpc.aio.ServicerContext
    ) -> assessments_pb2.Assessment:
        person_id = parse_name(request.parent, "people", "parent")
        new = assessment_in(person_id, request.assessment)
        row = await uc.create_assessment(self.db, new, request.request_id, request)
        return messages.assessment_out(row)

    async def GetAssessment(
        self, request: assessments_pb2.GetAssessmentRequest, context: grpc.aio.ServicerContext
    ) -> assessments_pb2.Assessment:
        person_id, assessment_id = person_child(request.name, "assessments", "name")
        return messages.assessment_out(await uc.get_assessment(self.db, person_id, assessment_id))

    async def ListAssessments(
        self, request: assessments_pb2.ListAssessmentsRequest, context: grpc.aio.ServicerContext
    ) -> assessments_pb2.ListAssessmentsResponse:
        person_id = parse_name(request.parent, "people", "parent")
        skill_id = parse_name(request.skill, "skills", "skill", required=False)
        page = page_of(request.page_size, request.page_token, p=person_id, s=skill_id, x=request.exclude_superseded)
        offset = offset_of(page)
        rows = await uc.list_assessments(self.db, person_id, skill_id, request.exclude_superseded, page)
        return assessments_pb2.ListAssessmentsResponse(
            assessments=[messages.assessment_out(r) for r in rows],
            next_page_token=page.next_token(offset + len(rows), len(rows)),
        )

    async def ConfirmAssessment(
        self, request: assessments_pb2.ConfirmAssessmentRequest, context: grpc.aio.ServicerContext
    ) -> assessments_pb2.Assessment:
        person_id, assessment_id = person_child(request.name, "assessments", "name")
        note = text_in(request.note, "note", 2000, required=False)
        return messages.assessment_out(await uc.confirm_assessment(self.db, person_id, assessment_id, note))

    async def ImportAssessments(
        self,
        request_iterator: AsyncIterator[assessments_pb2.ImportAssessmentsRequest],
        context: grpc.aio.ServicerContext,
    ) -> assessments_pb2.ImportAssessmentsResponse:
        with collector_paused():  # the rows and their results live until the answer is sent
            batch = ImportBatch()
            index = 0
            async for message in request_iterator:
                rows: list[assessments_pb2.ImportAssessmentsRequest | assessments_pb2.ImportAssessmentRow] = []
                if message.parent or message.HasField("assessment") or not message.rows:
                    rows.append(message)
                rows.extend(message.rows)
                for row in rows:
                    try:
                        person_id = parse_name(row.parent, "people", "parent")
                        batch.rows.append((index, assessment_in(person_id, row.assessment, external_required=True)))
                    except EngageError as exc:
                        first = exc.violations[0] if exc.violations else None
                        batch.reject(index, first.description if first else exc.message, first.field if first else "")
                    index += 1
            results, changed = await apply_import(self.db, batch)
            tally = counts(results)
            return assessments_pb2.ImportAssessmentsResponse(
                results=[
                    assessments_pb2.ImportAssessmentRowResult(
                        row=r.row,
                        name=r.name,
                        outcome=_OUTCOMES[r.outcome],  # type: ignore[arg-type]
                        reason=r.reason,
                        field=r.field,
                    )
                    for r in results
                ],
                created_count=tally["CREATED"],
                unchanged_count=tally["UNCHANGED"],
                rejected_count=tally["REJECTED"],
                changed_level_count=changed,
            )

    async def GetSkillLevel(
        self, request: assessments_pb2.GetSkillLevelRequest, context: grpc.aio.ServicerContext
    ) -> assessments_pb2.SkillLevel:
        person_id, skill_id = person_child(request.name, "skillLevels", "name")
        return messages.level_out(*await uc.get_level(self.db, person_id, skill_id))

    async def ListSkillLevels(
        self, request: assessments_pb2.ListSkillLevelsRequest, context: grpc.aio.ServicerContext
    ) -> assessments_pb2.ListSkillLevelsResponse:
        person_id = parse_name(request.parent, "people", "parent")
        page = page_of(request.page_size, request.page_token, p=person_id)
        rows, tops = await uc.list_levels(self.db, person_id, page)
        return assessments_pb2.ListSkillLevelsResponse(
            skill_levels=[messages.level_out(r, tops.get(r.skill_id, 0)) for r in rows],
            next_page_token=page.next_token(rows[-1].skill_id if rows else None, len(rows)),
        )

    async def ListExpiringCertifications(
        self, request: assessments_pb2.ListExpiringCertificationsRequest, context: grpc.aio.ServicerContext
    ) -> assessments_pb2.ListExpiringCertificationsResponse:
        unit_id = parse_name(request.org_unit, "orgUnits", "org_unit", required=False)
        days = request.within_days or 30
        if not 1 <= days <= 3650:
            raise invalid("within_days", "must be 1-3650")
        page = page_of(request.page_size, request.page_token, u=unit_id, d=days)
        if page.after is not None and not (isinstance(page.after, list) and len(page.after) == 2):
            raise invalid("page_token", "is not a token this API issued")
        rows = await uc.expiring_certifications(self.db, unit_id, days, page)
        last = [rows[-1].expires_at.isoformat(), rows[-1].id] if rows and rows[-1].expires_at else None
        return assessments_pb2.ListExpiringCertificationsResponse(
            assessments=[messages.assessment_out(r) for r in rows],
            next_page_token=page.next_token(last, len(rows)),
        )
