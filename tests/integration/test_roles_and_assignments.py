"""CRM roles, assignments and their rules, end to end over gRPC and JetStream."""

import datetime as dt

import grpc
from engage.roles.v1 import assignments_pb2, directory_pb2, roles_pb2
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp

from tests.support.company import ROLES, assign, eur, load_company, role
from tests.support.events import published, types, wait_for_events
from tests.support.grpc_errors import call_error

A = assignments_pb2.Assignment


async def test_assignment_is_published_as_a_cloudevent_with_the_actor(roles):
    await load_company(roles)
    created = await assign(roles, "S1", "service-agent", "SVC-1", metadata=roles.as_person("TL-S"))
    assert created.assigned_by == "people/TL-S"
    assert created.role_version == 1 and created.acknowledgement_state == A.ACKNOWLEDGEMENT_STATE_PENDING
    events = await wait_for_events(
        roles.nats.url, lambda ev: types(ev)["engage.roles.v1.assignment.created"] == 1, what="assignment.created"
    )
    event = next(e for e in events if e.type == "engage.roles.v1.assignment.created")
    assert event.subject == created.name and event.authid == "people/TL-S"
    assert event.partitionkey == "people/S1" and event.sequence == 1
    from engage.roles.v1 import events_pb2

    body = events_pb2.AssignmentEvent.FromString(event.data)
    assert body.assignment.person == "people/S1" and body.assignment.role == "roles/service-agent"


async def test_holder_acknowledges_and_nobody_else_can(roles):
    await load_company(roles)
    a = await assign(roles, "S1", "service-agent", "SVC-1")
    req = assignments_pb2.AcknowledgeAssignmentRequest(name=a.name)
    err = await call_error(
        roles.assignments.AcknowledgeAssignment(req, metadata=roles.as_person("S2"), timeout=5),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert err.reason == "NOT_THE_HOLDER"
    done = await roles.assignments.AcknowledgeAssignment(req, metadata=roles.as_person("S1"), timeout=5)
    assert done.acknowledgement_state == A.ACKNOWLEDGEMENT_STATE_ACKNOWLEDGED and done.acknowledged_role_version == 1
    again = await roles.assignments.AcknowledgeAssignment(req, metadata=roles.as_person("S1"), timeout=5)
    assert again.etag == done.etag  # harmless repeat: no change, no second event
    await roles.settle()
    assert types(await published(roles.nats.url))["engage.roles.v1.assignment.acknowledged"] == 1


async def test_a_material_role_change_makes_a_new_version_and_asks_holders_again(roles):
    await load_company(roles)
    a = await assign(roles, "S1", "service-agent", "SVC-1")
    await roles.assignments.AcknowledgeAssignment(
        assignments_pb2.AcknowledgeAssignmentRequest(name=a.name), metadata=roles.as_person("S1"), timeout=5
    )
    current = await roles.roles.GetRole(
        roles_pb2.GetRoleRequest(name="roles/service-agent"), metadata=roles.admin, timeout=5
    )
    current.decision_rights[0].limit.CopyFrom(eur(750))
    v2 = await roles.roles.UpdateRole(
        roles_pb2.UpdateRoleRequest(role=current, update_mask=FieldMask(paths=["decision_rights"])),
        metadata=roles.admin,
        timeout=5,
    )
    assert v2.version == 2 and v2.decision_rights[0].limit.units == 750
    v1 = await roles.roles.GetRole(
        roles_pb2.GetRoleRequest(name="roles/service-agent@1"), metadata=roles.admin, timeout=5
    )
    assert v1.version == 1 and v1.decision_rights[0].limit.units == 500
    held = await roles.assignments.GetAssignment(
        assignments_pb2.GetAssignmentRequest(name=a.name), metadata=roles.admin, timeout=5
    )
    assert held.role_version == 2 and held.acknowledgement_state == A.ACKNOWLEDGEMENT_STATE_PENDING
    # A rename alone is not material: same version.
    v2.display_name = "Customer service agent"
    renamed = await roles.roles.UpdateRole(
        roles_pb2.UpdateRoleRequest(role=v2, update_mask=FieldMask(paths=["display_name"])),
        metadata=roles.admin,
        timeout=5,
    )
    assert renamed.version == 2


async def test_assignment_rules_each_get_the_right_status(roles):
    await load_company(roles)
    await roles.roles.CreateRole(
        roles_pb2.CreateRoleRequest(role_id="draft-role", role=role("Draft", 1, [])), metadata=roles.admin, timeout=5
    )
    cases = [
        (("S1", "draft-role", "SVC-1"), grpc.StatusCode.FAILED_PRECONDITION, "ROLE_NOT_ACTIVE"),
        (("A2", "team-lead", "SALES-N"), grpc.StatusCode.FAILED_PRECONDITION, "MANAGEMENT_LEVEL_TOO_LOW"),
        (("NOBODY", "service-agent", "SVC-1"), grpc.StatusCode.NOT_FOUND, "NOT_FOUND"),
        (("S1", "service-agent", "NOWHERE"), grpc.StatusCode.NOT_FOUND, "NOT_FOUND"),
        (("S1", "no-such-role", "SVC-1"), grpc.StatusCode.NOT_FOUND, "NOT_FOUND"),
    ]
    for args, code, reason in cases:
        err = await call_error(assign(roles, *args), code)
        assert err.reason == reason, (args, err)
    await assign(roles, "S1", "service-agent", "SVC-1")
    err = await call_error(assign(roles, "S1", "service-agent", "SVC-1"), grpc.StatusCode.FAILED_PRECONDITION)
    assert err.reason == "DUPLICATE_ASSIGNMENT"
    listed = await roles.assignments.ListAssignments(
        assignments_pb2.ListAssignmentsRequest(person="people/S1"), metadata=roles.admin, timeout=5
    )
    assert len(listed.assignments) == 1


async def test_a_manager_assigns_only_within_the_units_they_head(roles):
    await load_company(roles)
    # TL-S heads SVC-1; VP-S heads SALES and everything below it.
    err = await call_error(
        assign(roles, "A1", "service-agent", "SALES-N", metadata=roles.as_person("TL-S")),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert err.reason == "OUTSIDE_MANAGED_SCOPE"
    ok = await assign(roles, "A1", "service-agent", "SALES-N", metadata=roles.as_person("VP-S"))
    assert ok.org_unit == "orgUnits/SALES-N"
    # An employee heads nothing: cannot end someone's assignment either.
    end = assignments_pb2.EndAssignmentRequest(name=ok.name, reason="no")
    await call_error(
        roles.assignments.EndAssignment(end, metadata=roles.as_person("A2"), timeout=5),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    ended = await roles.assignments.EndAssignment(end, metadata=roles.as_person("VP-S"), timeout=5)
    assert ended.state == A.STATE_ENDED and ended.ended_by == "people/VP-S"


async def test_retiring_a_role_with_holders_is_refused_until_they_are_ended(roles):
    await load_company(roles)
    a = await assign(roles, "S1", "service-agent", "SVC-1")
    err = await call_error(
        roles.roles.RetireRole(
            roles_pb2.RetireRoleRequest(name="roles/service-agent"), metadata=roles.admin, timeout=5
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert err.reason == "ROLE_HAS_HOLDERS"
    await roles.assignments.EndAssignment(
        assignments_pb2.EndAssignmentRequest(name=a.name, reason="reorg"), metadata=roles.admin, timeout=5
    )
    retired = await roles.roles.RetireRole(
        roles_pb2.RetireRoleRequest(name="roles/service-agent"), metadata=roles.admin, timeout=5
    )
    assert retired.state == roles_pb2.Role.STATE_RETIRED
    err = await call_error(assign(roles, "S2", "service-agent", "SVC-1"), grpc.StatusCode.FAILED_PRECONDITION)
    assert err.reason == "ROLE_NOT_ACTIVE"


async def test_invalid_role_definitions_name_the_field_and_create_nothing(roles):
    await load_company(roles)
    await roles.settle()
    before = len(await published(roles.nats.url))
    strategic_for_agent = role("Bad", 2, [("market-entry", roles_pb2.AUTHORITY_DECIDE, None)])
    unknown_category = role("Bad", 2, [("nope", roles_pb2.AUTHORITY_DECIDE, None)])
    bad_currency = role("Bad", 2, [("customer-refund", roles_pb2.AUTHORITY_DECIDE, 5)])
    bad_currency.decision_rights[0].limit.currency_code = "euro"
    cases = [
        (strategic_for_agent, "role.decision_rights[0].authority"),
        (unknown_category, "role.decision_rights[0].category"),
        (bad_currency, "role.decision_rights[0].limit.currency_code"),
        (roles_pb2.Role(display_name="No level"), "role.management_level"),
    ]
    for r, field in cases:
        err = await call_error(
            roles.roles.CreateRole(roles_pb2.CreateRoleRequest(role_id="bad", role=r), metadata=roles.admin, timeout=5),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        assert field in err.fields, (field, err)
    await call_error(
        roles.roles.GetRole(roles_pb2.GetRoleRequest(name="roles/bad"), metadata=roles.admin, timeout=5),
        grpc.StatusCode.NOT_FOUND,
    )
    await roles.settle()
    assert len(await published(roles.nats.url)) == before


async def test_terminating_a_person_ends_their_assignments_and_delegations_with_events(roles):
    await load_company(roles)
    a = await assign(roles, "S1", "service-agent", "SVC-1")
    until = Timestamp()
    until.FromDatetime(dt.datetime.now(dt.UTC) + dt.timedelta(days=3))
    delegation = await roles.assignments.CreateDelegation(
        assignments_pb2.CreateDelegationRequest(
            delegation=assignments_pb2.Delegation(
                delegator="people/S1",
                delegate="people/S2",
                categories=["decisionCategories/customer-refund"],
                valid_to=until,
            )
        ),
        metadata=roles.as_person("S1"),
        timeout=5,
    )
    person = await roles.directory.GetPerson(
        directory_pb2.GetPersonRequest(name="people/S1"), metadata=roles.admin, timeout=5
    )
    person.status = directory_pb2.PERSON_STATUS_TERMINATED
    await roles.directory.UpdatePerson(
        directory_pb2.UpdatePersonRequest(person=person, update_mask=FieldMask(paths=["status"])),
        metadata=roles.admin,
        timeout=5,
    )
    ended = await roles.assignments.GetAssignment(
        assignments_pb2.GetAssignmentRequest(name=a.name), metadata=roles.admin, timeout=5
    )
    assert ended.state == A.STATE_ENDED and "left" in ended.end_reason
    revoked = await roles.assignments.GetDelegation(
        assignments_pb2.GetDelegationRequest(name=delegation.name), metadata=roles.admin, timeout=5
    )
    assert revoked.HasField("revoke_time")
    events = await wait_for_events(roles.nats.url, lambda ev: types(ev)["engage.roles.v1.assignment.ended"] == 1)
    assert types(events)["engage.roles.v1.person.terminated"] == 1
    assert types(events)["engage.roles.v1.delegation.revoked"] == 1


async def test_role_pages_and_state_filter(roles):
    await load_company(roles)
    active = await roles.roles.ListRoles(
        roles_pb2.ListRolesRequest(state=roles_pb2.Role.STATE_ACTIVE, page_size=3), metadata=roles.admin, timeout=5
    )
    assert len(active.roles) == 3 and active.next_page_token
    rest = await roles.roles.ListRoles(
        roles_pb2.ListRolesRequest(state=roles_pb2.Role.STATE_ACTIVE, page_size=3, page_token=active.next_page_token),
        metadata=roles.admin,
        timeout=5,
    )
    assert [r.name for r in [*active.roles, *rest.roles]] == sorted(f"roles/{r}" for r in ROLES)
    assert not rest.next_page_token


async def test_concurrent_duplicate_assignments_let_exactly_one_through(roles):
    import asyncio

    await load_company(roles)
    results = await asyncio.gather(
        *(assign(roles, "S2", "service-agent", "SVC-1") for _ in range(8)), return_exceptions=True
    )
    created = [r for r in results if isinstance(r, assignments_pb2.Assignment)]
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(created) == 1 and len(refused) == 7
    assert {e.code() for e in refused} <= {grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.ABORTED}


async def test_concurrent_updates_with_the_same_etag_let_exactly_one_win(roles):
    import asyncio

    await load_company(roles)
    person = await roles.directory.GetPerson(
        directory_pb2.GetPersonRequest(name="people/A1"), metadata=roles.admin, timeout=5
    )

    async def rename(i: int):
        p = directory_pb2.Person()
        p.CopyFrom(person)
        p.display_name = f"Writer {i}"
        return await roles.directory.UpdatePerson(
            directory_pb2.UpdatePersonRequest(person=p, update_mask=FieldMask(paths=["display_name"])),
            metadata=roles.admin,
            timeout=10,
        )

    results = await asyncio.gather(*(rename(i) for i in range(8)), return_exceptions=True)
    winners = [r for r in results if isinstance(r, directory_pb2.Person)]
    losers = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(winners) == 1 and all(e.code() == grpc.StatusCode.ABORTED for e in losers)
    now = await roles.directory.GetPerson(
        directory_pb2.GetPersonRequest(name="people/A1"), metadata=roles.admin, timeout=5
    )
    assert now.display_name == winners[0].display_name
