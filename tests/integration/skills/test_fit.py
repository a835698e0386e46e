"""Role fit end to end: the roles service's events reach the skills service's
projection, and fit, candidates, team matrix and gap report follow them."""

import grpc
from engage.roles.v1 import directory_pb2, roles_pb2
from engage.skills.v1 import fit_pb2
from google.protobuf.field_mask_pb2 import FieldMask
from sqlmodel import select

from services.skills.app.projection import PROJECTION_TABLES
from services.skills.store.tables import RoleFitRow, SkillLevelSnapshotRow
from tests.integration.skills.catalogue_requests import CERTIFICATION, MANAGER, assessment, create
from tests.support.company import assign, load_company, role
from tests.support.events import published
from tests.support.grpc_errors import call_error
from tests.support.waiting import eventually

F = fit_pb2
EVERYONE = {"CEO", "VP-S", "VP-C", "TL-N", "TL-S", "A1", "A2", "S1", "S2"}
CHAMPION = role(
    "CRM champion",
    2,
    [],
    [("crm-case-management", 3, True), ("knowledge-sharing", 3, False), ("teaming", 3, False)],
)
LEVELS = {
    "S1": {"crm-case-management": 3, "knowledge-sharing": 4, "teaming": 2},
    "S2": {"crm-case-management": 2, "knowledge-sharing": 3, "teaming": 3},
    "A1": {"crm-case-management": 4, "knowledge-sharing": 3, "teaming": 3},
}


async def setup_company(stack) -> None:
    r = stack.roles
    await load_company(r)
    await r.roles.CreateRole(roles_pb2.CreateRoleRequest(role_id="crm-champion", role=CHAMPION), metadata=r.admin)
    await r.roles.ActivateRole(roles_pb2.ActivateRoleRequest(name="roles/crm-champion"), metadata=r.admin)
    skills = stack.skills
    await skills.wait_for_people(EVERYONE)
    for person, levels in LEVELS.items():
        for skill, level in levels.items():
            source = CERTIFICATION if person == "A1" else MANAGER
            await skills.assessments.CreateAssessment(
                create(person, assessment(skill, level, source)), metadata=skills.admin
            )


async def fit(skills, person: str, role_name: str, metadata=None) -> F.RoleFit:
    return await skills.fit.GetRoleFit(
        F.GetRoleFitRequest(person=f"people/{person}", role=role_name), metadata=metadata or skills.admin, timeout=5
    )


async def known_fit(skills, person: str, role_name: str) -> F.RoleFit | None:
    try:
        return await fit(skills, person, role_name)
    except grpc.aio.AioRpcError as err:
        if err.code() == grpc.StatusCode.NOT_FOUND:
            return None
        raise


async def candidates(skills, unit: str = "", metadata=None, **kw) -> list[tuple[str, float, bool]]:
    found = await skills.fit.FindCandidates(
        F.FindCandidatesRequest(role="roles/crm-champion", org_unit=unit, **kw), metadata=metadata or skills.admin
    )
    return [(c.person.removeprefix("people/"), round(c.score, 4), c.fits) for c in found.candidates]


async def test_fit_and_candidates_follow_the_roles_service_through_the_event_stream(stack):
    await setup_company(stack)
    skills = stack.skills
    s1 = await eventually(lambda: known_fit(skills, "S1", "roles/crm-champion"), bool, 15, "the role projected")
    assert s1.role_version == 1 and s1.fits and s1.score == round((1.5 * 0 + 1 + 1 + 2 / 3) / 3, 6)
    assert [(x.skill, x.required_level, x.effective_level, x.gap, x.mandatory) for x in s1.skills] == [
        ("skills/crm-case-management", 3, 3, 0, True),
        ("skills/knowledge-sharing", 3, 4, 0, False),
        ("skills/teaming", 3, 2, 1, False),
    ]
    assert s1.surplus == 1 and s1.skills[1].status == F.REQUIREMENT_STATUS_ABOVE
    s2 = await fit(skills, "S2", "roles/crm-champion")
    assert not s2.fits and list(s2.mandatory_gaps) == ["skills/crm-case-management"]

    ranked = await candidates(skills)
    assert ranked[:3] == [("A1", 1.0, True), ("S1", round(s1.score, 4), True), ("S2", round(s2.score, 4), False)]
    assert {p for p, _, _ in ranked[3:]} == EVERYONE - {"A1", "S1", "S2"}
    assert await candidates(skills, "orgUnits/SERVICE", skills.as_person("VP-C"), fits_only=True) == [
        ("S1", round(s1.score, 4), True)
    ]
    page1 = await skills.fit.FindCandidates(
        F.FindCandidatesRequest(role="roles/crm-champion", page_size=2), metadata=skills.admin
    )
    page2 = await skills.fit.FindCandidates(
        F.FindCandidatesRequest(role="roles/crm-champion", page_size=2, page_token=page1.next_page_token),
        metadata=skills.admin,
    )
    assert [c.person for c in [*page1.candidates, *page2.candidates]] == [f"people/{p}" for p, _, _ in ranked[:4]]
    assert [g.skill for g in page2.candidates[0].gaps] == ["skills/crm-case-management"]

    # HR raises the bar in the roles service: teaming becomes mandatory at 3 (a new role version).
    r = stack.roles
    current = await r.roles.GetRole(roles_pb2.GetRoleRequest(name="roles/crm-champion"), metadata=r.admin)
    current.skill_requirements[2].mandatory = True
    await r.roles.UpdateRole(
        roles_pb2.UpdateRoleRequest(role=current, update_mask=FieldMask(paths=["skill_requirements"])), metadata=r.admin
    )
    s1_v2 = await eventually(lambda: fit(skills, "S1", "roles/crm-champion"), lambda f: f.role_version == 2)
    assert not s1_v2.fits and list(s1_v2.mandatory_gaps) == ["skills/teaming"]
    s1_v1 = await fit(skills, "S1", "roles/crm-champion@1")
    assert s1_v1.fits and s1_v1.role_version == 1
    assert (await candidates(skills, fits_only=True)) == [("A1", 1.0, True)]

    # Holders, the gap report and the team matrix.
    await assign(r, "S1", "crm-champion", "SVC-1")
    await assign(r, "S2", "crm-champion", "SVC-1")
    await assign(r, "S2", "service-agent", "SVC-1")
    report = await eventually(
        lambda: skills.fit.GetGapReport(F.GetGapReportRequest(org_unit="orgUnits/SERVICE"), metadata=skills.admin),
        lambda rep: rep.holder_count == 3,
        what="three holder assignments projected",
    )
    assert report.holders_missing_mandatory == 3
    by_role = {x.role: x for x in report.roles}
    assert by_role["roles/crm-champion"].holder_count == 2 and by_role["roles/crm-champion"].role_version == 2
    assert [(g.skill, g.holders_below) for g in by_role["roles/crm-champion"].gaps] == [
        ("skills/crm-case-management", 1),
        ("skills/teaming", 1),
    ]
    assert [(g.skill, g.holders_below, g.holders_missing) for g in report.most_missing] == [
        ("skills/crm-case-management", 1, 0),
        ("skills/customer-empathy", 1, 1),
        ("skills/teaming", 1, 0),
    ]
    matrix = await skills.fit.GetTeamSkillMatrix(
        F.GetTeamSkillMatrixRequest(org_unit="orgUnits/SVC-1"), metadata=skills.as_person("TL-S")
    )
    assert list(matrix.skills)[:4] == [
        "skills/crm-case-management",
        "skills/knowledge-sharing",
        "skills/teaming",
        "skills/customer-empathy",
    ]
    rows = {row.person: row for row in matrix.rows}
    assert set(rows) == {"people/TL-S", "people/S1", "people/S2"}
    s2_cells = {c.skill: (c.level, c.required_level, c.gap) for c in rows["people/S2"].cells}
    assert s2_cells["skills/customer-empathy"] == (0, 3, 3) and s2_cells["skills/teaming"] == (3, 3, 0)
    assert {h.role for h in rows["people/S2"].roles} == {"roles/crm-champion", "roles/service-agent"}
    assert list(rows["people/TL-S"].roles) == []

    # A person who leaves is no candidate any more.
    person = await r.directory.GetPerson(directory_pb2.GetPersonRequest(name="people/A1"), metadata=r.admin)
    person.status = directory_pb2.PERSON_STATUS_TERMINATED
    await r.directory.UpdatePerson(
        directory_pb2.UpdatePersonRequest(person=person, update_mask=FieldMask(paths=["status"])), metadata=r.admin
    )
    ranked = await eventually(lambda: candidates(skills), lambda c: "A1" not in {p for p, _, _ in c}, what="A1 gone")
    assert ranked[0][0] == "S1"


async def projected_rows(skills) -> dict[str, list[tuple]]:
    """Every row of the projection and of what is derived from it (role fits,
    level snapshots), as comparable tuples."""
    out = {}
    async with skills.app.db.read() as s:
        for table in [*PROJECTION_TABLES, RoleFitRow, SkillLevelSnapshotRow]:
            rows = (await s.exec(select(table))).all()
            out[table.__tablename__] = sorted(tuple(sorted(r.model_dump().items(), key=str)) for r in rows)
    return out


async def test_replaying_the_roles_stream_twice_changes_nothing(stack):
    await setup_company(stack)
    skills = stack.skills
    await assign(stack.roles, "S1", "crm-champion", "SVC-1")
    await assign(stack.roles, "A1", "service-agent", "SALES-N")

    async def answers():
        try:
            s1 = await fit(skills, "S1", "roles/crm-champion")
            ranked = await candidates(skills)
            report = await skills.fit.GetGapReport(
                F.GetGapReportRequest(org_unit="orgUnits/ACME"), metadata=skills.admin
            )
        except grpc.aio.AioRpcError as err:  # half way through a rebuild
            assert err.code() == grpc.StatusCode.NOT_FOUND, err
            return None
        return s1, ranked, report

    before = await eventually(answers, lambda a: a is not None and a[2].holder_count == 2, what="the projection")
    await skills.settle()
    skill_events = len([e for e in await published(skills.nats.url) if e.source == "/engage/skills"])
    rows_before = await projected_rows(skills)
    for _ in range(2):
        await skills.app.rebuild_projection()
        await eventually(lambda: projected_rows(skills), lambda rows: rows == rows_before, 20, "the rebuilt projection")
        after = await answers()
        assert after == before
    await skills.settle()
    assert len([e for e in await published(skills.nats.url) if e.source == "/engage/skills"]) == skill_events


async def test_fit_is_shown_to_the_person_their_managers_and_hr_only(stack):
    await setup_company(stack)
    skills = stack.skills
    await eventually(lambda: known_fit(skills, "S1", "roles/crm-champion"), bool, 15, "the role projected")
    for who in ("S1", "TL-S", "VP-C", "CEO"):
        await fit(skills, "S1", "roles/crm-champion", skills.as_person(who))
    for who in ("S2", "TL-N", "A1"):
        err = await call_error(
            fit(skills, "S1", "roles/crm-champion", skills.as_person(who)), grpc.StatusCode.PERMISSION_DENIED
        )
        assert err.reason == "OUTSIDE_MANAGED_SCOPE"
    await call_error(
        candidates(skills, "orgUnits/SERVICE", skills.as_person("TL-N")), grpc.StatusCode.PERMISSION_DENIED
    )
    await call_error(candidates(skills, "", skills.as_person("VP-C")), grpc.StatusCode.PERMISSION_DENIED)
    assert await candidates(skills, "", skills.as_roles("programme_lead"))
    await call_error(fit(skills, "S1", "roles/no-such-role"), grpc.StatusCode.NOT_FOUND)
    await call_error(fit(skills, "S1", "roles/crm-champion@7"), grpc.StatusCode.NOT_FOUND)
    err = await call_error(
        skills.fit.GetGapReport(F.GetGapReportRequest(), metadata=skills.admin), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert err.fields == ["role"]
