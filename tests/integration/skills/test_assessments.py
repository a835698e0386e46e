"""Assessments through gRPC: history, the effective level with its basis, who may
assess whom, bad input, bulk import and expiring certifications."""

from datetime import timedelta

import grpc
from engage.skills.v1 import assessments_pb2, events_pb2

from tests.integration.skills.catalogue_requests import CERTIFICATION, MANAGER, PEER, SELF, TEST, assessment, create, ts
from tests.support.company import load_company
from tests.support.events import published
from tests.support.grpc_errors import call_error
from tests.support.waiting import eventually

A = assessments_pb2
EVERYONE = {"CEO", "VP-S", "VP-C", "TL-N", "TL-S", "A1", "A2", "S1", "S2"}


async def company(stack):
    await load_company(stack.roles)
    await stack.skills.wait_for_people(EVERYONE)
    return stack.skills


async def level(skills, person: str, skill: str, metadata=None) -> A.SkillLevel:
    return await skills.assessments.GetSkillLevel(
        A.GetSkillLevelRequest(name=f"people/{person}/skillLevels/{skill}"),
        metadata=metadata or skills.admin,
        timeout=5,
    )


async def level_events(skills) -> list[events_pb2.SkillLevelEvent]:
    await skills.settle()
    return [
        events_pb2.SkillLevelEvent.FromString(e.data)
        for e in await published(skills.nats.url)
        if e.type == "engage.skills.v1.skill_level.changed"
    ]


async def test_history_is_kept_and_the_effective_level_follows_the_rule_with_its_basis(stack):
    skills = await company(stack)
    tl = skills.as_person("TL-S")
    claim = await skills.assessments.CreateAssessment(
        create("S1", assessment("customer-empathy", 4, SELF)), metadata=skills.as_person("S1")
    )
    assert claim.assessor == "people/S1"
    lv = await level(skills, "S1", "customer-empathy", skills.as_person("S1"))
    assert (lv.level, lv.claimed_level) == (0, 4) and list(lv.basis) == [claim.name]

    manager = await skills.assessments.CreateAssessment(
        create("S1", assessment("customer-empathy", 3, MANAGER, ago=timedelta(days=2))), metadata=tl
    )
    lv = await level(skills, "S1", "customer-empathy", tl)
    assert (lv.level, lv.claimed_level, lv.source) == (3, 4, A.ASSESSMENT_SOURCE_MANAGER)
    assert list(lv.basis) == [manager.name, claim.name]

    # A peer rating of 5 does not outrank the manager: nothing changes, nothing is published.
    await skills.assessments.CreateAssessment(
        create("S1", assessment("customer-empathy", 5, PEER)), metadata=skills.as_person("S2")
    )
    # A certification outranks the manager, even at a lower level.
    cert = await skills.assessments.CreateAssessment(
        create(
            "S1",
            assessment("customer-empathy", 2, CERTIFICATION, expires_in=timedelta(days=365), evidence="https://c/1"),
        ),
        metadata=skills.admin,
    )
    lv = await level(skills, "S1", "customer-empathy")
    assert (lv.level, lv.source, lv.basis[0]) == (2, A.ASSESSMENT_SOURCE_CERTIFICATION, cert.name)
    assert "outranks MANAGER" in lv.explanation and lv.HasField("expire_time")

    # The certification was recorded wrongly: a correction supersedes it, never edits it.
    fixed = await skills.assessments.CreateAssessment(
        create("S1", assessment("customer-empathy", 4, CERTIFICATION, supersedes=cert.name)), metadata=skills.admin
    )
    lv = await level(skills, "S1", "customer-empathy")
    assert lv.level == 4 and lv.basis[0] == fixed.name
    history = await skills.assessments.ListAssessments(
        A.ListAssessmentsRequest(parent="people/S1", skill="skills/customer-empathy"), metadata=tl
    )
    assert len(history.assessments) == 5
    old = next(a for a in history.assessments if a.name == cert.name)
    assert old.superseded_by == fixed.name and old.level == 2 and old.evidence.uri == "https://c/1"
    current = await skills.assessments.ListAssessments(
        A.ListAssessmentsRequest(parent="people/S1", exclude_superseded=True), metadata=tl
    )
    assert cert.name not in {a.name for a in current.assessments} and len(current.assessments) == 4
    err = await call_error(
        skills.assessments.CreateAssessment(
            create("S1", assessment("customer-empathy", 3, CERTIFICATION, supersedes=cert.name)), metadata=skills.admin
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert err.fields == ["assessment.supersedes"]

    events = await level_events(skills)
    # claim 0->4 (claimed), manager 0->3, certification 3->2, correction 2->4; the peer rating changed nothing.
    assert [(e.previous_level, e.skill_level.level) for e in events] == [(0, 0), (0, 3), (3, 2), (2, 4)]
    assert events[0].skill_level.claimed_level == 4 and events[0].previous_claimed_level == 0
    levels = await skills.assessments.ListSkillLevels(A.ListSkillLevelsRequest(parent="people/S1"), metadata=tl)
    assert [(x.skill, x.level) for x in levels.skill_levels] == [("skills/customer-empathy", 4)]


async def test_a_manager_confirms_a_claim_and_an_expiring_assessment_drops_out_by_itself(stack):
    skills = await company(stack)
    claim = await skills.assessments.CreateAssessment(
        create("S2", assessment("teaming", 3, SELF)), metadata=skills.as_person("S2")
    )
    err = await call_error(
        skills.assessments.ConfirmAssessment(
            A.ConfirmAssessmentRequest(name=claim.name), metadata=skills.as_person("S2")
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert err.reason == "OUTSIDE_MANAGED_SCOPE"
    await call_error(
        skills.assessments.ConfirmAssessment(
            A.ConfirmAssessmentRequest(name=claim.name), metadata=skills.as_person("TL-N")
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    confirmed = await skills.assessments.ConfirmAssessment(
        A.ConfirmAssessmentRequest(name=claim.name),
        metadata=skills.as_person("VP-C"),  # heads SERVICE above SVC-1
    )
    assert (confirmed.source, confirmed.level, confirmed.confirms) == (A.ASSESSMENT_SOURCE_MANAGER, 3, claim.name)
    again = await skills.assessments.ConfirmAssessment(
        A.ConfirmAssessmentRequest(name=claim.name), metadata=skills.as_person("TL-S")
    )
    assert again.name == confirmed.name  # confirming twice is harmless
    assert (await level(skills, "S2", "teaming")).level == 3

    # A test result that expires in a moment outranks the manager until it expires.
    await skills.assessments.CreateAssessment(
        create("S2", assessment("teaming", 5, TEST, ago=timedelta(hours=1), expires_in=timedelta(seconds=1.5))),
        metadata=skills.admin,
    )
    assert (await level(skills, "S2", "teaming")).level == 5
    after = await eventually(lambda: level(skills, "S2", "teaming"), lambda lv: lv.level == 3, 10, "the test expiring")
    assert after.source == A.ASSESSMENT_SOURCE_MANAGER
    # The sweep stores the change and publishes it.
    events = await eventually(
        lambda: level_events(skills), lambda ev: ev and ev[-1].skill_level.level == 3, 10, "the expiry published"
    )
    assert [(e.previous_level, e.skill_level.level) for e in events][-3:] == [(0, 3), (3, 5), (5, 3)]


async def test_who_may_assess_whom(stack):
    skills = await company(stack)
    s1 = lambda src: create("S1", assessment("teaming", 2, src))  # noqa: E731
    denied = [
        (skills.as_person("S2"), s1(SELF), "NOT_YOURSELF"),  # a self-assessment of someone else
        (skills.as_person("S1"), s1(PEER), "NOT_A_PEER"),
        (skills.as_person("S1"), s1(MANAGER), "OUTSIDE_MANAGED_SCOPE"),  # nobody manages themselves
        (skills.as_person("TL-N"), s1(MANAGER), "OUTSIDE_MANAGED_SCOPE"),  # heads another team
        (skills.as_person("S1"), s1(CERTIFICATION), "SOURCE_NOT_ALLOWED"),
        (skills.as_roles("programme_lead"), s1(MANAGER), ""),  # lacks the write permission
    ]
    for metadata, request, reason in denied:
        err = await call_error(
            skills.assessments.CreateAssessment(request, metadata=metadata), grpc.StatusCode.PERMISSION_DENIED
        )
        assert err.reason == (reason or "PERMISSION_DENIED"), (request, err)
    for metadata in (skills.as_person("TL-S"), skills.as_person("VP-C"), skills.as_person("CEO")):
        await skills.assessments.CreateAssessment(s1(MANAGER), metadata=metadata)
    await skills.assessments.CreateAssessment(s1(CERTIFICATION), metadata=skills.as_roles("hr_system"))
    # Reading: the person, their managers and HR; not a colleague.
    await level(skills, "S1", "teaming", skills.as_person("S1"))
    await level(skills, "S1", "teaming", skills.as_person("TL-S"))
    await level(skills, "S1", "teaming", skills.as_roles("programme_lead"))
    for who in ("S2", "TL-N"):
        err = await call_error(level(skills, "S1", "teaming", skills.as_person(who)), grpc.StatusCode.PERMISSION_DENIED)
        assert err.reason == "OUTSIDE_MANAGED_SCOPE"


async def test_bad_input_names_the_field_and_writes_nothing(stack):
    skills = await company(stack)
    cases = [
        (create("NOBODY", assessment("teaming", 2, MANAGER)), grpc.StatusCode.NOT_FOUND, ["parent"]),
        (create("S1", assessment("juggling", 2, MANAGER)), grpc.StatusCode.INVALID_ARGUMENT, ["assessment.skill"]),
        (create("S1", assessment("teaming", 9, MANAGER)), grpc.StatusCode.INVALID_ARGUMENT, ["assessment.level"]),
        (create("S1", assessment("teaming", 0, MANAGER)), grpc.StatusCode.INVALID_ARGUMENT, ["assessment.level"]),
        (
            create("S1", assessment("teaming", 2, MANAGER, ago=timedelta(days=1), expires_in=timedelta(days=-2))),
            grpc.StatusCode.INVALID_ARGUMENT,
            ["assessment.expire_time"],
        ),
        (
            create("S1", assessment("teaming", 2, MANAGER, ago=timedelta(days=-3))),
            grpc.StatusCode.INVALID_ARGUMENT,
            ["assessment.assess_time"],
        ),
        (create("S1", assessment("teaming", 2, 0)), grpc.StatusCode.INVALID_ARGUMENT, ["assessment.source"]),
        (
            create("S1", assessment("teaming", 2, MANAGER, supersedes="people/S2/assessments/x")),
            grpc.StatusCode.INVALID_ARGUMENT,
            ["assessment.supersedes"],
        ),
        (create("S1", assessment("strategic-thinking", 7, MANAGER)), None, []),  # 7 is on the leadership scale
    ]
    for request, code, fields in cases:
        if code is None:
            await skills.assessments.CreateAssessment(request, metadata=skills.admin)
            continue
        err = await call_error(skills.assessments.CreateAssessment(request, metadata=skills.admin), code)
        assert err.fields == fields, (request, err)
    err = await call_error(
        skills.assessments.CreateAssessment(create("S1", assessment("teaming", 6, MANAGER)), metadata=skills.admin)
    )
    assert "engage-default: 1-5" in err.message and err.reason == "LEVEL_OUTSIDE_SCALE"
    history = await skills.assessments.ListAssessments(
        A.ListAssessmentsRequest(parent="people/S1"), metadata=skills.admin
    )
    assert [a.skill for a in history.assessments] == ["skills/strategic-thinking"]
    assert len(await level_events(skills)) == 1


async def test_bulk_import_reports_each_row_and_can_be_re_run(stack):
    skills = await company(stack)

    certified = assessment("crm-case-management", 3, CERTIFICATION, external_id="lms-1", expires_in=timedelta(days=10))
    certified.assess_time.CopyFrom(ts(-timedelta(days=355)))  # the same row on each run, as an HR system sends it

    def rows():
        good = [
            ("S1", certified),
            ("S2", assessment("crm-case-management", 2, TEST, external_id="lms-2")),
            ("A1", assessment("campaign-management", 4, CERTIFICATION, external_id="lms-3")),
            ("S1", assessment("teaming", 2, MANAGER, external_id="hr-7")),
        ]
        bad = [
            ("S9", assessment("teaming", 2, MANAGER, external_id="hr-8")),  # unknown person
            ("S1", assessment("teaming", 8, MANAGER, external_id="hr-9")),  # off the scale
            ("S2", assessment("teaming", 2, MANAGER)),  # no external id
        ]
        for person, a in [*good[:2], *bad, *good[2:]]:
            yield A.ImportAssessmentsRequest(parent=f"people/{person}", assessment=a)

    async def stream(items):
        for item in items:
            yield item

    first = await skills.assessments.ImportAssessments(
        stream(rows()), metadata=skills.as_roles("hr_system"), timeout=30
    )
    assert (first.created_count, first.unchanged_count, first.rejected_count) == (4, 0, 3)
    assert first.changed_level_count == 4
    rejected = {
        r.row: (r.field, r.reason) for r in first.results if r.outcome == A.ImportAssessmentRowResult.OUTCOME_REJECTED
    }
    assert rejected[2][0] == "parent" and "S9" in rejected[2][1]
    assert rejected[3][0] == "assessment.level" and rejected[4][0] == "assessment.external_id"
    events_before = len(await level_events(skills))

    second = await skills.assessments.ImportAssessments(
        stream(rows()), metadata=skills.as_roles("hr_system"), timeout=30
    )
    assert (second.created_count, second.unchanged_count, second.rejected_count) == (0, 4, 3)
    assert [r.name for r in second.results if r.name] == [r.name for r in first.results if r.name]
    assert len(await level_events(skills)) == events_before  # a re-run publishes nothing

    changed = [
        A.ImportAssessmentsRequest(
            parent="people/S2", assessment=assessment("crm-case-management", 4, TEST, external_id="lms-2")
        )
    ]
    third = await skills.assessments.ImportAssessments(stream(changed), metadata=skills.admin, timeout=30)
    assert third.rejected_count == 1 and third.results[0].field == "assessment.external_id"
    assert (await level(skills, "S2", "crm-case-management")).level == 2
    err = await call_error(
        skills.assessments.ImportAssessments(stream(changed), metadata=skills.as_person("TL-S")),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert "assessments.import" in err.message

    # Certifications that run out soon, for the service line only.
    soon = await skills.assessments.ListExpiringCertifications(
        A.ListExpiringCertificationsRequest(org_unit="orgUnits/SERVICE", within_days=30),
        metadata=skills.as_person("VP-C"),
    )
    assert [(a.name.split("/")[1], a.skill) for a in soon.assessments] == [("S1", "skills/crm-case-management")]
    everyone = await skills.assessments.ListExpiringCertifications(
        A.ListExpiringCertificationsRequest(within_days=5), metadata=skills.admin
    )
    assert list(everyone.assessments) == []
    await call_error(
        skills.assessments.ListExpiringCertifications(
            A.ListExpiringCertificationsRequest(org_unit="orgUnits/SERVICE"), metadata=skills.as_person("TL-N")
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
