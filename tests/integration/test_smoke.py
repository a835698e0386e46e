from engage.roles.v1 import assignments_pb2, directory_pb2

from tests.support.company import assign, load_company


async def test_company_loads_and_assignment_is_listed(roles):
    await load_company(roles)
    a = await assign(roles, "S1", "service-agent", "SVC-1")
    assert a.state == assignments_pb2.Assignment.STATE_ACTIVE
    people = await roles.directory.ListPeople(directory_pb2.ListPeopleRequest(), metadata=roles.admin, timeout=5)
    assert len(people.people) == 9
