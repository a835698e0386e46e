"""Levels on a common 0-100 scale, daily level snapshots and team trends, and
batched imports: through gRPC, with the roles service's events on real
JetStream, on SQLite and PostgreSQL."""

from datetime import date, timedelta

import grpc
import sqlalchemy as sa
from engage.roles.v1 import directory_pb2, roles_pb2
from engage.skills.v1 import assessments_pb2, catalogue_pb2, events_pb2, fit_pb2
from google.protobuf.field_mask_pb2 import FieldMask

from services.platform.db import utcnow
from services.skills.app import snapshots
from services.skills.store.tables import RoleFitRow, SkillLevelSnapshotRow
from tests.integration.skills.catalogue_requests import CERTIFICATION, MANAGER, assessment, create
from tests.integration.skills.test_fit import EVERYONE, fit, setup_company
from tests.support.company import assign, load_company, role
from tests.support.events import published
from tests.support.grpc_errors import call_error
from tests.support.waiting import eventually

A, F = assessments_pb2, fit_pb2


async def test_levels_of_different_scales_compare_on_the_common_0_to_100_scale(stack):
    await setup_company(stack)
    skills, r = stack.skills, stack.roles
    default = await skills.catalogue.GetProficiencyScale(
        catalogue_pb2.GetProficiencyScaleRequest(name="proficiencyScales/engage-default"), metadata=skills.admin
    )
    assert [lv.normalized_value for lv in default.levels] == [20.0, 40.0, 60.0, 80.0, 100.0]
    leadership = await skills.catalogue.GetProficiencyScale(
        catalogue_pb2.GetProficiencyScaleRequest(name="proficiencyScales/engage-leadership"), metadata=skills.admin
    )
    assert [lv.normalized_value for lv in leadership.levels] == [14.3, 28.6, 42.9, 57.1, 71.4, 85.7, 100.0]

    # A role requiring a 1-5 skill at 3 and a 1-7 skill at 3: the same ordinal, different demands.
    lead = role("Service lead", 4, [], [("crm-case-management", 3, True), ("strategic-thinking", 3, False)])
    await r.roles.CreateRole(roles_pb2.CreateRoleRequest(role_id="service-lead", role=lead), metadata=r.admin)
    await r.roles.ActivateRole(roles_pb2.ActivateRoleRequest(name="roles/service-lead"), metadata=r.admin)
    await skills.assessments.CreateAssessment(
        create("S1", assessment("strategic-thinking", 5, MANAGER)), metadata=skills.admin
    )
    answer = await eventually(
        lambda: fit(skills, "S1", "roles/service-lead"), lambda f: len(f.skills) == 2, what="the role projected"
    )
    by_skill = {s.skill: s for s in answer.skills}
    crm, strategy = by_skill["skills/crm-case-management"], by_skill["skills/strategic-thinking"]
    assert (crm.required_level, crm.normalized_required_level) == (3, 60.0)
    assert (crm.effective_level, crm.normalized_effective_level) == (3, 60.0)
    assert (strategy.required_level, strategy.normalized_required_level) == (3, 42.9)
    assert (strategy.effective_level, strategy.normalized_effective_level) == (5, 71.4)

    matrix = await skills.fit.GetTeamSkillMatrix(
        F.GetTeamSkillMatrixRequest(org_unit="orgUnits/SVC-1", skills=["skills/teaming", "skills/strategic-thinking"]),
        metadata=skills.admin,
    )
    cells = {row.person: {c.skill: c.normalized_level for c in row.cells} for row in matrix.rows}
    assert cells["people/S1"] == {"skills/teaming": 40.0, "skills/strategic-thinking": 71.4}
    level = await skills.assessments.GetSkillLevel(
        A.GetSkillLevelRequest(name="people/S1/skillLevels/strategic-thinking"), metadata=skills.admin
    )
    assert (level.level, level.normalized_level) == (5, 71.4)

    await assign(r, "S2", "crm-champion", "SVC-1")
    report = await eventually(
        lambda: skills.fit.GetGapReport(F.GetGapReportRequest(role="roles/crm-champion"), metadata=skills.admin),
        lambda rep: rep.holder_count == 1,
        what="the assignment projected",
    )
    gap = {g.skill: g for g in report.roles[0].gaps}["skills/crm-case-management"]
    assert (gap.required_level, gap.normalized_required_level) == (3, 60.0)
    assert (gap.average_gap, gap.normalized_average_gap) == (1.0, 20.0)

    # Reads publish nothing: events are for changes of levels, not for answers.
    async def skills_events() -> int:
        await skills.settle()
        return len([e for e in await published(skills.nats.url) if e.source == "/engage/skills"])

    before = await skills_events()
    changes = [
        events_pb2.SkillLevelEvent.FromString(e.data)
        for e in await published(skills.nats.url)
        if e.subject == "people/S1/skillLevels/strategic-thinking"
    ]
    assert [(c.skill_level.level, c.skill_level.normalized_level) for c in changes] == [(5, 71.4)]
    await fit(skills, "S1", "roles/service-lead")
    await skills.fit.FindCandidates(F.FindCandidatesRequest(role="roles/service-lead"), metadata=skills.admin)
    await skills.fit.GetTeamSkillMatrix(F.GetTeamSkillMatrixRequest(org_unit="orgUnits/ACME"), metadata=skills.admin)
    await skills.fit.GetGapReport(F.GetGapReportRequest(org_unit="orgUnits/ACME"), metadata=skills.admin)
    await skills.assessments.ListSkillLevels(A.ListSkillLevelsRequest(parent="people/S1"), metadata=skills.admin)
    assert await skills_events() == before


async def snapshot_rows(skills, skill: str) -> list[tuple[str, date, str, int]]:
    table = SkillLevelSnapshotRow.__table__
    async with skills.app.db.read() as s:
        query = sa.select(table.c.person_id, table.c.day, table.c.org_unit_id, table.c.level).where(
            table.c.skill_id == skill
        )
        return sorted(tuple(r) for r in (await s.execute(query)).all())


async def trend(skills, unit: str, start: date, end: date, interval: int, metadata=None) -> list[tuple]:
    answer = await skills.fit.GetTeamSkillTrend(
        F.GetTeamSkillTrendRequest(
            org_unit=f"orgUnits/{unit}",
            skill="skills/customer-empathy",
            start_date=start.isoformat(),
            end_date=end.isoformat(),
            interval_days=interval,
        ),
        metadata=metadata or skills.admin,
    )
    return [(p.date, p.people_with_level, p.average_level, p.average_normalized_level, list(p.level_counts))
            for p in answer.points]  # fmt: skip


async def test_daily_snapshots_keep_one_row_per_person_skill_and_day_and_give_the_team_trend(stack):
    await load_company(stack.roles)
    skills, r = stack.skills, stack.roles
    await skills.wait_for_people(EVERYONE)
    today = utcnow().date()

    # Two months ago S1 was at 2 and S2 at 1 (written as a level change on that day writes them).
    async with skills.app.db.write() as uow:
        past = utcnow() - timedelta(days=60)
        await snapshots.record(uow.session, [("S1", "customer-empathy", 2, 0), ("S2", "customer-empathy", 1, 0)], past)

    # Today S1 is assessed twice: one row for the day, with the later level.
    await skills.assessments.CreateAssessment(
        create("S1", assessment("customer-empathy", 3, MANAGER)), metadata=skills.admin
    )
    await skills.assessments.CreateAssessment(
        create("S1", assessment("customer-empathy", 4, CERTIFICATION)), metadata=skills.admin
    )
    rows = await snapshot_rows(skills, "customer-empathy")
    assert rows == [
        ("S1", today - timedelta(days=60), "SVC-1", 2),
        ("S1", today, "SVC-1", 4),
        ("S2", today - timedelta(days=60), "SVC-1", 1),
    ]
    # Writing the same facts again changes nothing.
    async with skills.app.db.write() as uow:
        await snapshots.record(uow.session, [("S1", "customer-empathy", 4, 0)], utcnow())
    assert await snapshot_rows(skills, "customer-empathy") == rows

    start = today - timedelta(days=90)
    assert await trend(skills, "SERVICE", start, today, 30, skills.as_person("VP-C")) == [
        ((today - timedelta(days=90)).isoformat(), 0, 0.0, 0.0, [0, 0, 0, 0, 0]),
        ((today - timedelta(days=60)).isoformat(), 2, 1.5, 30.0, [1, 1, 0, 0, 0]),
        ((today - timedelta(days=30)).isoformat(), 2, 1.5, 30.0, [1, 1, 0, 0, 0]),
        (today.isoformat(), 2, 2.5, 50.0, [1, 0, 0, 1, 0]),
    ]

    # S2 moves to sales: from today their level counts there, no longer in service.
    person = await r.directory.GetPerson(directory_pb2.GetPersonRequest(name="people/S2"), metadata=r.admin)
    person.org_unit = "orgUnits/SALES-N"
    await r.directory.UpdatePerson(
        directory_pb2.UpdatePersonRequest(person=person, update_mask=FieldMask(paths=["org_unit"])), metadata=r.admin
    )
    await skills.assessments.CreateAssessment(  # S2 has a level today, so the move writes a row
        create("S2", assessment("customer-empathy", 2, MANAGER)), metadata=skills.admin
    )
    moved = await eventually(
        lambda: snapshot_rows(skills, "customer-empathy"),
        lambda rows: ("S2", today, "SALES-N", 2) in rows,
        what="the move projected",
    )
    assert ("S2", today, "SVC-1", 2) not in moved
    assert (await trend(skills, "SERVICE", today, today, 1))[-1][1:3] == (1, 4.0)
    assert (await trend(skills, "SALES", today, today, 1))[-1][1:3] == (1, 2.0)
    assert (await trend(skills, "SERVICE", start, today, 30))[1][1] == 2  # the past is not rewritten

    for request, field in [
        (F.GetTeamSkillTrendRequest(org_unit="orgUnits/SERVICE", skill="skills/teaming", start_date="2026-13-01"),
         "start_date"),
        (F.GetTeamSkillTrendRequest(org_unit="orgUnits/SERVICE", skill="skills/teaming", start_date="2026-02-01",
                                    end_date="2026-01-01"), "end_date"),
        (F.GetTeamSkillTrendRequest(org_unit="orgUnits/SERVICE", skill="skills/teaming", start_date="2000-01-01",
                                    end_date="2026-01-01"), "interval_days"),
    ]:  # fmt: skip
        err = await call_error(
            skills.fit.GetTeamSkillTrend(request, metadata=skills.admin), grpc.StatusCode.INVALID_ARGUMENT
        )
        assert err.fields == [field]
    unknown = F.GetTeamSkillTrendRequest(org_unit="orgUnits/SERVICE", skill="skills/juggling", start_date="2026-01-01")
    await call_error(skills.fit.GetTeamSkillTrend(unknown, metadata=skills.admin), grpc.StatusCode.NOT_FOUND)
    await call_error(
        skills.fit.GetTeamSkillTrend(
            F.GetTeamSkillTrendRequest(org_unit="orgUnits/SERVICE", skill="skills/teaming", start_date="2026-01-01"),
            metadata=skills.as_person("TL-N"),
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )


async def test_a_batched_import_reports_every_row_in_stream_order_and_candidates_follow_it(stack):
    await setup_company(stack)
    skills = stack.skills
    await eventually(lambda: fit(skills, "S1", "roles/crm-champion"), bool, what="the role projected")

    def row(person: str, skill: str, level: int, external_id: str) -> A.ImportAssessmentRow:
        return A.ImportAssessmentRow(
            parent=f"people/{person}", assessment=assessment(skill, level, CERTIFICATION, external_id=external_id)
        )

    messages = [
        A.ImportAssessmentsRequest(
            rows=[row("S2", "crm-case-management", 5, "b-1"), row("S2", "knowledge-sharing", 5, "b-2")]
        ),
        A.ImportAssessmentsRequest(  # a message's own row comes before its batch
            parent="people/S2",
            assessment=assessment("teaming", 5, CERTIFICATION, external_id="b-3"),
            rows=[row("S9", "teaming", 2, "b-4"), row("S2", "teaming", 9, "b-5")],
        ),
    ]

    async def stream():
        for m in messages:
            yield m

    reply = await skills.assessments.ImportAssessments(stream(), metadata=skills.admin, timeout=30)
    outcome = A.ImportAssessmentRowResult
    assert [(x.row, x.outcome, x.field) for x in reply.results] == [
        (0, outcome.OUTCOME_CREATED, ""),
        (1, outcome.OUTCOME_CREATED, ""),
        (2, outcome.OUTCOME_CREATED, ""),
        (3, outcome.OUTCOME_REJECTED, "parent"),
        (4, outcome.OUTCOME_REJECTED, "assessment.level"),
    ]
    assert reply.changed_level_count == 3
    # The role fits kept on write follow the import: S2 now ranks first.
    found = await skills.fit.FindCandidates(
        F.FindCandidatesRequest(role="roles/crm-champion", page_size=2), metadata=skills.admin
    )
    best = found.candidates[0]
    assert (best.person, best.score, best.fits, best.surplus) == ("people/S2", 1.0, True, 6)
    fits = RoleFitRow.__table__
    async with skills.app.db.read() as s:
        stored = await s.execute(sa.select(fits).where(fits.c.person_id == "S2", fits.c.role_id == "crm-champion"))
        assert [(f.misfit, f.score, f.surplus) for f in stored] == [(0, 1.0, 6)]

    again = await skills.assessments.ImportAssessments(stream(), metadata=skills.admin, timeout=30)
    assert (again.unchanged_count, again.rejected_count, again.changed_level_count) == (3, 2, 0)
