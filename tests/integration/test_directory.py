"""The HR directory: bulk import and single changes, through real gRPC."""

import grpc
from engage.roles.v1 import directory_pb2
from google.protobuf.field_mask_pb2 import FieldMask

from tests.support.company import PEOPLE, UNITS, company_rows, person_row, stream, unit_row
from tests.support.events import published, types, wait_for_events
from tests.support.grpc_errors import call_error
from tests.support.waiting import eventually

OUTCOME = directory_pb2.ImportRowResult


async def run_import(roles, rows):
    return await roles.directory.ImportDirectory(stream(rows), metadata=roles.admin, timeout=30)


async def test_import_in_any_order_creates_everyone_and_a_rerun_changes_nothing(roles):
    first = await run_import(roles, company_rows())
    assert (first.created_count, first.rejected_count) == (len(PEOPLE) + len(UNITS), 0)
    lead = await roles.directory.GetPerson(
        directory_pb2.GetPersonRequest(name="people/TL-N"), metadata=roles.admin, timeout=5
    )
    assert lead.manager == "people/VP-S" and lead.org_unit == "orgUnits/SALES-N"
    events = await wait_for_events(roles.nats.url, lambda ev: len(ev) == 14, what="14 creation events")

    again = await run_import(roles, company_rows())
    assert again.unchanged_count == 14 and again.created_count == again.updated_count == 0
    assert [r.outcome for r in again.results] == [OUTCOME.OUTCOME_UNCHANGED] * 14
    # Still 14 events: a re-run publishes nothing for unchanged rows.
    await roles.settle()
    assert len(await published(roles.nats.url)) == len(events) == 14
    # Events carry ids, never names or e-mails.
    assert all(b"acme.example" not in e.data and b"Agent one" not in e.data for e in events)


async def test_each_bad_row_is_rejected_with_its_reason_and_the_rest_applied(roles):
    await run_import(roles, company_rows())
    rows = [
        person_row("A1", "Agent one renamed", "SALES-N", "TL-N", 3, version=2),  # 0: newer -> updated
        person_row("A2", "Agent two stale", "SALES-N", "TL-N", 2, version=1),  # 1: same version, other data
        person_row("N1", "New one", "SALES-N", "GHOST", 2),  # 2: unknown manager
        person_row("N2", "New two", "NOWHERE", "TL-N", 2),  # 3: unknown org unit
        person_row("C1", "Cycle one", "SALES-N", "C2", 2),  # 4: cycle
        person_row("C2", "Cycle two", "SALES-N", "C1", 2),  # 5: cycle
        unit_row("ORPHAN", "Orphan", directory_pb2.ORG_UNIT_KIND_TEAM, "MISSING", ""),  # 6: unknown parent
        directory_pb2.ImportDirectoryRequest(person=directory_pb2.Person(name="people/bad id!")),  # 7: malformed
        directory_pb2.ImportDirectoryRequest(),  # 8: empty
        person_row("N3", "New three", "SVC-1", "N1", 2),  # 9: manager rejected above -> rejected too
    ]
    result = await run_import(roles, rows)
    by_row = {r.row: r for r in result.results}
    assert by_row[0].outcome == OUTCOME.OUTCOME_UPDATED
    assert by_row[1].outcome == OUTCOME.OUTCOME_REJECTED and "stale" in by_row[1].reason
    assert by_row[1].field == "person.hr_version"
    assert "people/GHOST does not exist" in by_row[2].reason and by_row[2].field == "person.manager"
    assert "orgUnits/NOWHERE" in by_row[3].reason
    assert "cycle" in by_row[4].reason and "cycle" in by_row[5].reason
    assert "orgUnits/MISSING" in by_row[6].reason
    assert by_row[7].outcome == OUTCOME.OUTCOME_REJECTED and by_row[7].field == "person.name"
    assert by_row[8].outcome == OUTCOME.OUTCOME_REJECTED
    assert by_row[9].outcome == OUTCOME.OUTCOME_REJECTED and "N1" in by_row[9].reason
    assert (result.updated_count, result.rejected_count) == (1, 9)
    people = await roles.directory.ListPeople(
        directory_pb2.ListPeopleRequest(page_size=100), metadata=roles.admin, timeout=5
    )
    assert len(people.people) == len(PEOPLE)  # nothing rejected was written
    a2 = next(p for p in people.people if p.name == "people/A2")
    assert a2.display_name == "Agent two"


async def test_list_people_pages_through_a_subtree_with_tokens_bound_to_filters(roles):
    await run_import(roles, company_rows())
    seen, token = [], ""
    while True:
        page = await roles.directory.ListPeople(
            directory_pb2.ListPeopleRequest(
                org_unit="orgUnits/SALES", include_descendants=True, page_size=2, page_token=token
            ),
            metadata=roles.admin,
            timeout=5,
        )
        seen += [p.name for p in page.people]
        token = page.next_page_token
        if not token:
            break
    assert seen == sorted(["people/VP-S", "people/TL-N", "people/A1", "people/A2"])
    first = await roles.directory.ListPeople(
        directory_pb2.ListPeopleRequest(org_unit="orgUnits/SALES", include_descendants=True, page_size=1),
        metadata=roles.admin,
        timeout=5,
    )
    err = await call_error(
        roles.directory.ListPeople(
            directory_pb2.ListPeopleRequest(org_unit="orgUnits/SERVICE", page_size=1, page_token=first.next_page_token),
            metadata=roles.admin,
            timeout=5,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert err.fields == ["page_token"]


async def test_moving_a_unit_moves_its_subtree_and_a_cycle_is_refused(roles):
    await run_import(roles, company_rows())
    unit = await roles.directory.GetOrgUnit(
        directory_pb2.GetOrgUnitRequest(name="orgUnits/SALES-N"), metadata=roles.admin, timeout=5
    )
    unit.parent = "orgUnits/SERVICE"
    await roles.directory.UpdateOrgUnit(
        directory_pb2.UpdateOrgUnitRequest(org_unit=unit, update_mask=FieldMask(paths=["parent"])),
        metadata=roles.admin,
        timeout=5,
    )
    under_service = await roles.directory.ListPeople(
        directory_pb2.ListPeopleRequest(org_unit="orgUnits/SERVICE", include_descendants=True, page_size=50),
        metadata=roles.admin,
        timeout=5,
    )
    assert "people/A1" in {p.name for p in under_service.people}

    top = await roles.directory.GetOrgUnit(
        directory_pb2.GetOrgUnitRequest(name="orgUnits/SERVICE"), metadata=roles.admin, timeout=5
    )
    top.parent = "orgUnits/SALES-N"
    err = await call_error(
        roles.directory.UpdateOrgUnit(
            directory_pb2.UpdateOrgUnitRequest(org_unit=top, update_mask=FieldMask(paths=["parent"])),
            metadata=roles.admin,
            timeout=5,
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert err.fields == ["org_unit.parent"] and err.reason == "ORG_UNIT_CYCLE"


async def test_stale_etag_is_aborted_and_the_change_not_applied(roles):
    await run_import(roles, company_rows())
    person = await roles.directory.GetPerson(
        directory_pb2.GetPersonRequest(name="people/A1"), metadata=roles.admin, timeout=5
    )
    person.display_name = "First writer"
    mask = FieldMask(paths=["display_name"])
    updated = await roles.directory.UpdatePerson(
        directory_pb2.UpdatePersonRequest(person=person, update_mask=mask), metadata=roles.admin, timeout=5
    )
    assert updated.etag != person.etag
    person.display_name = "Second writer with the old etag"
    err = await call_error(
        roles.directory.UpdatePerson(
            directory_pb2.UpdatePersonRequest(person=person, update_mask=mask), metadata=roles.admin, timeout=5
        ),
        grpc.StatusCode.ABORTED,
    )
    assert err.reason == "ETAG_MISMATCH"
    now = await roles.directory.GetPerson(
        directory_pb2.GetPersonRequest(name="people/A1"), metadata=roles.admin, timeout=5
    )
    assert now.display_name == "First writer"


async def test_bad_input_names_the_field_and_writes_nothing(roles):
    await run_import(roles, company_rows())
    await roles.settle()
    before = await published(roles.nats.url)
    cases = [
        (directory_pb2.CreatePersonRequest(person_id="", person=directory_pb2.Person(display_name="x")), "person_id"),
        (
            directory_pb2.CreatePersonRequest(
                person_id="Z1", person=directory_pb2.Person(display_name="x", org_unit="orgUnits/ACME")
            ),
            "person.management_level",
        ),
        (
            directory_pb2.CreatePersonRequest(
                person_id="Z1", person=directory_pb2.Person(display_name="x", org_unit="teams/ACME", management_level=2)
            ),
            "person.org_unit",
        ),
        (
            directory_pb2.CreatePersonRequest(
                person_id="Z1",
                person=directory_pb2.Person(display_name="x", org_unit="orgUnits/NOPE", management_level=2),
            ),
            "person.org_unit",
        ),
        (
            directory_pb2.CreatePersonRequest(
                person_id="Z1",
                person=directory_pb2.Person(
                    display_name="x", org_unit="orgUnits/ACME", management_level=2, manager="people/Z1"
                ),
            ),
            "person.manager",
        ),
        (
            directory_pb2.CreatePersonRequest(
                person_id="Z1",
                person=directory_pb2.Person(display_name="x", org_unit="orgUnits/ACME", management_level=9),
            ),
            "person.management_level",
        ),
    ]
    for request, field in cases:
        err = await call_error(
            roles.directory.CreatePerson(request, metadata=roles.admin, timeout=5), grpc.StatusCode.INVALID_ARGUMENT
        )
        assert err.fields == [field], (request, err)
    await call_error(
        roles.directory.GetPerson(directory_pb2.GetPersonRequest(name="people/Z1"), metadata=roles.admin, timeout=5),
        grpc.StatusCode.NOT_FOUND,
    )
    await roles.settle()
    assert len(await published(roles.nats.url)) == len(before) == 14


async def test_create_with_the_same_request_id_creates_once(roles):
    await run_import(roles, company_rows())
    request = directory_pb2.CreatePersonRequest(
        person_id="R1",
        request_id="3f1c0e9e-retry",
        person=directory_pb2.Person(display_name="Retry", org_unit="orgUnits/ACME", management_level=2),
    )
    one = await roles.directory.CreatePerson(request, metadata=roles.admin, timeout=5)
    two = await roles.directory.CreatePerson(request, metadata=roles.admin, timeout=5)
    assert one == two
    events = await wait_for_events(roles.nats.url, lambda ev: types(ev)["engage.roles.v1.person.created"] >= 10)
    assert [e.subject for e in events].count("people/R1") == 1
    other = directory_pb2.CreatePersonRequest(
        person_id="R2",
        request_id="3f1c0e9e-retry",
        person=directory_pb2.Person(display_name="Other", org_unit="orgUnits/ACME", management_level=2),
    )
    err = await call_error(
        roles.directory.CreatePerson(other, metadata=roles.admin, timeout=5), grpc.StatusCode.INVALID_ARGUMENT
    )
    assert err.fields == ["request_id"]


async def test_an_import_that_terminates_a_person_ends_their_roles(roles):
    from engage.roles.v1 import assignments_pb2

    from tests.support.company import assign, load_company

    await load_company(roles)
    held = await assign(roles, "S1", "service-agent", "SVC-1")
    leaver = person_row(
        "S1", "Service one", "SVC-1", "TL-S", 3, version=2, status=directory_pb2.PERSON_STATUS_TERMINATED
    )
    result = await run_import(roles, [leaver])
    assert result.updated_count == 1
    after = await roles.assignments.GetAssignment(
        assignments_pb2.GetAssignmentRequest(name=held.name), metadata=roles.admin, timeout=5
    )
    assert after.state == assignments_pb2.Assignment.STATE_ENDED
    events = await wait_for_events(roles.nats.url, lambda ev: types(ev)["engage.roles.v1.assignment.ended"] == 1)
    assert types(events)["engage.roles.v1.person.terminated"] == 1


async def test_an_import_over_the_row_limit_is_refused_and_writes_nothing(workdir, mint, nats_server):
    from tests.conftest import start_roles

    client = await start_roles(f"sqlite+aiosqlite:///{workdir}/import-limit.db", nats_server, mint, import_max_rows=5)
    try:
        err = await call_error(
            client.directory.ImportDirectory(stream(company_rows()), metadata=client.admin, timeout=10),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
        )
        assert err.reason == "IMPORT_TOO_LARGE" and "5 rows" in err.message
        people = await client.directory.ListPeople(directory_pb2.ListPeopleRequest(), metadata=client.admin, timeout=5)
        assert list(people.people) == []
    finally:
        await client.channel.close(None)
        await client.app.stop()


async def test_a_call_cut_by_its_deadline_is_counted_as_such(roles):
    import asyncio

    from services.platform import metrics

    counted = metrics.RPCS.labels("roles", "ImportDirectory", "DEADLINE_EXCEEDED")
    before = counted._value.get()

    async def endless():
        yield company_rows()[0]
        await asyncio.Event().wait()  # the client never finishes its stream

    await call_error(
        roles.directory.ImportDirectory(endless(), metadata=roles.admin, timeout=0.5),
        grpc.StatusCode.DEADLINE_EXCEEDED,
    )

    async def count() -> float:
        return float(counted._value.get())

    await eventually(count, lambda n: n == before + 1, timeout=5, what="the deadline to be counted")
