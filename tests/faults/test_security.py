"""Attacks on the running system: forged and stale tokens, undeclared permissions, another team's data.

- The token matrix (missing, not bearer, expired, not yet valid, wrong
  audience or issuer, `alg: none`, tampered claims or signature, wrong or
  unknown key) is refused by every gRPC service (its own API and its audit
  trail) and by the gateway, while a good token passes.
- Every RPC a running service serves (read through its reflection) and every
  gateway route declares the permission it needs; the check is shown to
  catch a method left out.
- Another team's manager and a colleague get nothing of a person's or a
  team's objects, for every object type the gateway serves: the gateway's
  route-by-user matrix (tests/gateway/test_authorisation.py) replayed here
  for those two users.
- Every change leaves one audit record (of who, what, when) per event, which
  no API can write and the databases refuse to change.
- A page size of 2^31-1 is clamped to 1000 on every service.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
import sqlalchemy as sa
from engage.audit.v1 import audit_pb2, audit_pb2_grpc
from engage.incentives.v1 import behaviours_pb2, behaviours_pb2_grpc
from engage.roles.v1 import directory_pb2, directory_pb2_grpc
from engage.skills.v1 import assessments_pb2, assessments_pb2_grpc, catalogue_pb2, catalogue_pb2_grpc
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.field_mask_pb2 import FieldMask

from gateway.app import create_app
from services.incentives.api.permissions import PERMISSIONS as INCENTIVES
from services.platform import audit_api
from services.platform.db import Database
from services.roles.api.permissions import PERMISSIONS as ROLES
from services.skills.api.permissions import PERMISSIONS as SKILLS
from tests.gateway import conftest as gateway_fixtures
from tests.gateway import test_authorisation as gateway_matrix
from tests.gateway.conftest import Stack, asgi_client, gateway_settings
from tests.integration.incentives.conftest import event, ts
from tests.integration.skills.catalogue_requests import TEST, assessment
from tests.support.company import person_row, stream
from tests.support.events import published
from tests.support.fleet import Fleet, served_methods
from tests.support.service_state import Metadata
from tests.support.tokens import refused_authorizations
from tests.support.waiting import eventually

# The gateway suite's system (three services, seeded skills and awards, the gateway in-process), one for this module.
module_nats = gateway_fixtures.module_nats
stack = gateway_fixtures.stack

# A read of each service's own API and of its audit trail: (method path) -> called with an empty request.
READS = {
    "roles": ["/engage.roles.v1.DirectoryService/ListPeople"],
    "skills": ["/engage.skills.v1.CatalogueService/ListSkills"],
    "incentives": ["/engage.incentives.v1.BehaviourService/ListBehaviourTypes"],
}
AUDIT = "/engage.audit.v1.AuditService/ListAuditRecords"
GATEWAY_READS = ["/api/v1/me", "/api/v1/skills", "/api/v1/schemes"]
DECLARED = {"roles": ROLES, "skills": SKILLS, "incentives": INCENTIVES}


async def test_the_token_matrix_is_refused_by_every_service_and_the_gateway(fleet: Fleet, workdir, mint, scenario):
    refused = refused_authorizations(mint)
    good = f"Bearer {mint.token('security', roles=['hr_admin'])}"
    answers: Counter[str] = Counter()
    wrong: list[str] = []
    for service, reads in READS.items():
        async with grpc.aio.insecure_channel(fleet.services[service].target) as channel:
            for path in [*reads, AUDIT]:
                call = channel.unary_unary(path, request_serializer=None, response_deserializer=None)
                await call(b"", metadata=(("authorization", good),), timeout=10)  # the good token passes
                for what, value in refused.items():
                    metadata = () if value is None else (("authorization", value),)
                    try:
                        await call(b"", metadata=metadata, timeout=10)
                        code = grpc.StatusCode.OK
                    except grpc.aio.AioRpcError as exc:
                        code = exc.code()
                    answers[code.name] += 1
                    if code != grpc.StatusCode.UNAUTHENTICATED:
                        wrong.append(f"{service} {path} with {what}: {code.name}")
    app = create_app(
        gateway_settings(
            workdir,
            mint,
            fleet.services["roles"].port,
            fleet.nats.url,
            skills_target=fleet.services["skills"].target,
            incentives_target=fleet.services["incentives"].target,
        )
    )
    http = asgi_client(app)
    try:
        for path in GATEWAY_READS:
            ok = await http.get(path, headers={"Authorization": good})
            assert ok.status_code == 200, (path, ok.text)
            for what, value in refused.items():
                response = await http.get(path, headers={} if value is None else {"Authorization": value})
                answers[f"HTTP {response.status_code}"] += 1
                if response.status_code != 401:
                    wrong.append(f"gateway {path} with {what}: {response.status_code}")
    finally:
        await http.aclose()
        for client in (app.state.gateway.roles, app.state.gateway.skills, app.state.gateway.incentives):
            await client.close()
    endpoints = sum(len(r) + 1 for r in READS.values()) + len(GATEWAY_READS)
    scenario.load = f"{endpoints} endpoints (3 services with their audit trails, the gateway)"
    scenario.faults = f"{len(refused)} bad tokens each: " + ", ".join(f"{n} {c}" for c, n in answers.most_common())
    assert wrong == []


def undeclared(methods: list[MethodDescriptor], declared: Mapping[str, str]) -> list[str]:
    """The served methods that name no permission (the interceptor would refuse every call to them)."""
    paths = [f"/{m.containing_service.full_name}/{m.name}" for m in methods]
    return [path for path in paths if path not in declared]


async def test_every_rpc_and_every_route_declares_its_permission(fleet: Fleet, scenario):
    served = 0
    for service, permissions in DECLARED.items():
        with grpc.insecure_channel(fleet.services[service].target) as channel:
            methods = served_methods(channel)
        declared = {**permissions, **audit_api.PERMISSIONS}
        assert undeclared(methods, declared) == [], service
        # The check itself can fail: a method left out of the map is reported.
        left_out = f"/{methods[0].containing_service.full_name}/{methods[0].name}"
        assert undeclared(methods, {k: v for k, v in declared.items() if k != left_out}) == [left_out]
        served += len(methods)
    await gateway_matrix.test_every_route_declares_a_permission()
    routes = [r for r in gateway_matrix.all_routes(list(create_app().routes)) if hasattr(r, "methods")]
    scenario.load = f"{served} RPCs served (by reflection), {len(routes)} gateway routes"
    scenario.faults = "a permission map missing one method (must be caught)"


OUTSIDERS = ["other_manager", "employee_other"]  # another line's manager; a colleague of the person


async def test_another_team_gets_nothing_of_any_object_type(stack: Stack, scenario):
    """Each route over each object type (people, units, assignments, decisions, skill levels, assessments,
    role fits, candidates, skill matrices, scorecards, awards, delegations, pages) as two outsiders."""
    got: Counter[int] = Counter()
    wrong = []
    for case in gateway_matrix.CASES:
        for user in OUTSIDERS:
            if user not in case.expected:
                continue
            response = await case.call(stack, user)
            got[response.status_code] += 1
            if response.status_code != case.expected[user]:
                wrong.append(f"{case.name} as {user}: {response.status_code}, expected {case.expected[user]}")
    scenario.load = f"{len(gateway_matrix.CASES)} gateway routes x {len(OUTSIDERS)} outsiders"
    scenario.faults = "another line's manager, a colleague: " + ", ".join(f"{n} x {c}" for c, n in sorted(got.items()))
    assert wrong == []
    assert got[404] + got[403] >= len(gateway_matrix.CASES), "hardly anything was refused: the matrix did not run"


CHANGES = 20  # per service: this many creates, then as many renames, by one caller


@dataclass(frozen=True)
class Audited:
    """A kind of thing a service keeps, created and then renamed through its API."""

    stub: Callable[[grpc.aio.Channel], Any]
    create: Callable[[Any, int, Metadata], Awaitable[Any]]  # (stub, i, caller) -> the thing made
    rename: Callable[[Any, Any, Metadata], Awaitable[Any]]  # (stub, thing, caller) -> the thing renamed


def _mask(*paths: str) -> FieldMask:
    return FieldMask(paths=list(paths))


AUDITED = {
    "roles": Audited(
        directory_pb2_grpc.DirectoryServiceStub,
        lambda stub, i, caller: stub.CreateOrgUnit(
            directory_pb2.CreateOrgUnitRequest(
                org_unit_id=f"AUD-{i}",
                org_unit=directory_pb2.OrgUnit(
                    display_name=f"Audit {i}", kind=directory_pb2.ORG_UNIT_KIND_TEAM, parent="orgUnits/ACME"
                ),
            ),
            metadata=caller,
            timeout=10,
        ),
        lambda stub, unit, caller: stub.UpdateOrgUnit(
            directory_pb2.UpdateOrgUnitRequest(
                org_unit=_renamed(unit, "display_name"), update_mask=_mask("display_name")
            ),
            metadata=caller,
            timeout=10,
        ),
    ),
    "skills": Audited(
        catalogue_pb2_grpc.CatalogueServiceStub,
        lambda stub, i, caller: stub.CreateSkill(
            catalogue_pb2.CreateSkillRequest(
                skill_id=f"audit-{i}",
                skill=catalogue_pb2.Skill(preferred_name=f"Audit {i}", type=catalogue_pb2.SKILL_TYPE_SKILL),
            ),
            metadata=caller,
            timeout=10,
        ),
        lambda stub, skill, caller: stub.UpdateSkill(
            catalogue_pb2.UpdateSkillRequest(
                skill=_renamed(skill, "preferred_name"), update_mask=_mask("preferred_name")
            ),
            metadata=caller,
            timeout=10,
        ),
    ),
    "incentives": Audited(
        behaviours_pb2_grpc.BehaviourServiceStub,
        lambda stub, i, caller: stub.CreateBehaviourType(
            behaviours_pb2.CreateBehaviourTypeRequest(
                behaviour_type_id=f"audit-{i}",
                behaviour_type=behaviours_pb2.BehaviourType(
                    display_name=f"Audit {i}", category=behaviours_pb2.BEHAVIOUR_CATEGORY_TEAMING, unit="case"
                ),
            ),
            metadata=caller,
            timeout=10,
        ),
        lambda stub, kind, caller: stub.UpdateBehaviourType(
            behaviours_pb2.UpdateBehaviourTypeRequest(
                behaviour_type=_renamed(kind, "display_name"), update_mask=_mask("display_name")
            ),
            metadata=caller,
            timeout=10,
        ),
    ),
}


def _renamed(thing: Any, field: str) -> Any:
    setattr(thing, field, f"{getattr(thing, field)} (renamed)")
    return thing


async def _event_ids(fleet: Fleet, service: str) -> list[str]:
    return [e.id for e in await published(fleet.nats.url) if e.type.startswith(f"engage.{service}.")]


def _takes_a_record(method: MethodDescriptor) -> bool:
    """Whether the method's request holds an audit record anywhere inside it."""
    seen: set[str] = set()
    todo = [method.input_type]
    while todo:
        message = todo.pop()
        if message.full_name == "engage.audit.v1.AuditRecord":
            return True
        if message.full_name not in seen:
            seen.add(message.full_name)
            todo += [f.message_type for f in message.fields if f.message_type is not None]
    return False


async def audit_trail(channel: grpc.aio.Channel, metadata: Metadata) -> list[audit_pb2.AuditRecord]:
    """Every record of a service's trail, oldest first."""
    stub = audit_pb2_grpc.AuditServiceStub(channel)
    records: list[audit_pb2.AuditRecord] = []
    token = ""
    while True:
        page = await stub.ListAuditRecords(
            audit_pb2.ListAuditRecordsRequest(page_size=1000, page_token=token), metadata=metadata, timeout=10
        )
        records += page.audit_records
        token = page.next_page_token
        if not token:
            return records


async def test_every_change_leaves_one_audit_record_that_no_api_can_edit(fleet: Fleet, mint, scenario):
    caller = mint.metadata("auditor-subject", roles=["hr_admin"])
    scenario.load = f"per service {CHANGES} creates and {CHANGES} renames (roles, skills, incentives)"
    refusals = 0
    for service, audited in AUDITED.items():
        async with grpc.aio.insecure_channel(fleet.services[service].target) as channel:
            stub = audited.stub(channel)
            made = [await audited.create(stub, i, caller) for i in range(CHANGES)]
            first = await audit_trail(channel, fleet.metadata)
            for thing in made:
                await audited.rename(stub, thing, caller)
            trail = await audit_trail(channel, fleet.metadata)
        # No API writes the trail: the audit service only reads, and no method takes a record.
        with grpc.insecure_channel(fleet.services[service].target) as sync_channel:
            methods = served_methods(sync_channel)
        audit_methods = {m.name for m in methods if m.containing_service.full_name == audit_api.SERVICE_NAME}
        assert audit_methods == {"ListAuditRecords", "GetAuditRecord"}, (service, audit_methods)
        assert [m.full_name for m in methods if _takes_a_record(m)] == [], service
        # What was recorded stays as it was while the things it describes change.
        assert trail[: len(first)] == first, service
        mine = [r for r in trail if r.actor == "auditor-subject"]
        assert len(mine) == 2 * CHANGES, (service, len(mine))
        # One record per event, and one event per record.
        recorded = [r.event_id for r in trail]
        events = await eventually(
            lambda service=service: _event_ids(fleet, service),
            lambda ids, recorded=recorded: set(ids) >= set(recorded),
            30,
            f"the {service} events of the trail published",
        )
        scenario.count(events, recorded)
        assert Counter(recorded) == Counter(events)
        # Even with the database in hand, the rows refuse to change.
        db = Database(fleet.services[service].env["ENGAGE_DATABASE_URL"])
        try:
            for statement in ("UPDATE audit_records SET actor = 'someone-else'", "DELETE FROM audit_records"):
                with pytest.raises(sa.exc.DBAPIError, match="append-only"):
                    async with db.engine.begin() as conn:
                        await conn.execute(sa.text(statement))
                refusals += 1
        finally:
            await db.dispose()
    scenario.faults = f"records read before and after renames; {refusals} UPDATE/DELETE on the tables refused"


HUGE = 2**31 - 1
MANY = 1_100  # more than the largest page (1000)


async def test_oversize_pages_are_clamped_on_every_service(fleet: Fleet, scenario):
    scenario.load = f"{MANY:,} people, {MANY:,} assessments, {MANY:,} behaviour events; a List of each"
    admin = fleet.metadata
    pages: dict[str, tuple[int, bool]] = {}  # service -> (items on the first page, a next page promised)
    async with grpc.aio.insecure_channel(fleet.services["roles"].target) as channel:
        directory = directory_pb2_grpc.DirectoryServiceStub(channel)
        rows = [person_row(f"PG{i:04d}", f"Paged {i}", "SVC-1", "TL-S", 2) for i in range(MANY)]
        assert (await directory.ImportDirectory(stream(rows), metadata=admin, timeout=120)).rejected_count == 0
        page = await directory.ListPeople(directory_pb2.ListPeopleRequest(page_size=HUGE), metadata=admin, timeout=30)
        pages["roles"] = (len(page.people), bool(page.next_page_token))
    async with grpc.aio.insecure_channel(fleet.services["skills"].target) as channel:
        assessments = assessments_pb2_grpc.AssessmentServiceStub(channel)
        levels = [assessment("customer-empathy", 1 + i % 5, TEST, external_id=f"paged-{i}") for i in range(MANY)]
        batch = assessments_pb2.ImportAssessmentsRequest(
            parent="people/A1",
            assessment=levels[0],
            rows=[assessments_pb2.ImportAssessmentRow(parent="people/A1", assessment=a) for a in levels[1:]],
        )
        imported = await eventually(
            lambda: assessments.ImportAssessments(stream([batch]), metadata=admin, timeout=120),
            lambda answer: answer.rejected_count == 0,  # until skills knows A1 from the roles events
            30,
            "the assessments imported",
        )
        assert imported.created_count == MANY
        page = await assessments.ListAssessments(
            assessments_pb2.ListAssessmentsRequest(parent="people/A1", page_size=HUGE), metadata=admin, timeout=30
        )
        pages["skills"] = (len(page.assessments), bool(page.next_page_token))
    async with grpc.aio.insecure_channel(fleet.services["incentives"].target) as channel:
        behaviours = behaviours_pb2_grpc.BehaviourServiceStub(channel)
        events = [
            event(f"paged-{i}", "case-solved-cross-department", ["A1"], ts(2025, 1, 1 + i % 28)) for i in range(MANY)
        ]
        await behaviours.RecordBehaviourEvents(
            behaviours_pb2.RecordBehaviourEventsRequest(events=events), metadata=admin, timeout=120
        )
        page = await behaviours.ListBehaviourEvents(
            behaviours_pb2.ListBehaviourEventsRequest(page_size=HUGE), metadata=admin, timeout=30
        )
        pages["incentives"] = (len(page.behaviour_events), bool(page.next_page_token))
    scenario.faults = "page_size 2^31-1: first page " + ", ".join(f"{s} {n}" for s, (n, _) in pages.items())
    assert pages == dict.fromkeys(READS, (1000, True))
