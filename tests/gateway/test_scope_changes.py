"""A manager's scope follows the org tree: the gateway remembers each caller's scope only as long as it
keeps the unit tree (`directory_cache_seconds`, 0.5 s in tests), so a new head of a unit gets their team
and the old head loses it without a restart."""

from __future__ import annotations

from engage.roles.v1 import directory_pb2
from google.protobuf.field_mask_pb2 import FieldMask

from gateway.policy import ScopeCache
from tests.gateway.conftest import Stack
from tests.support.waiting import eventually


async def set_head(stack: Stack, unit: str, person: str) -> None:
    await stack.roles.directory.UpdateOrgUnit(
        directory_pb2.UpdateOrgUnitRequest(
            org_unit=directory_pb2.OrgUnit(name=f"orgUnits/{unit}", manager=f"people/{person}"),
            update_mask=FieldMask(paths=["manager"]),
        ),
        metadata=stack.roles.admin,
        timeout=10,
    )


async def test_a_new_head_of_a_unit_gets_its_team_and_loses_it_again(stack: Stack) -> None:
    other = stack.auth("other_manager")  # VP-C heads SERVICE; A1 works in SALES-N

    async def a1_status() -> int:
        return (await stack.client.get("/api/v1/people/A1", headers=other)).status_code

    assert await a1_status() == 404
    await set_head(stack, "SALES-N", "VP-C")
    try:
        await eventually(a1_status, lambda s: s == 200, timeout=10, what="VP-C to see A1 as the new head of SALES-N")
        me = await stack.client.get("/api/v1/me", headers=other)
        assert me.json()["heads"] == ["orgUnits/SALES-N", "orgUnits/SERVICE"]
    finally:
        await set_head(stack, "SALES-N", "TL-N")
    await eventually(a1_status, lambda s: s == 404, timeout=10, what="VP-C to lose A1 with SALES-N")


def test_scopes_are_computed_once_per_unit_tree() -> None:
    tree = [
        directory_pb2.OrgUnit(name="orgUnits/R", manager="people/M"),
        directory_pb2.OrgUnit(name="orgUnits/T", parent="orgUnits/R"),
    ]
    cache = ScopeCache()
    first = cache.of(tree, "people/M")
    assert first.heads == ("orgUnits/R",) and first.units == {"orgUnits/R", "orgUnits/T"}
    assert cache.of(tree, "people/M") is first
    moved = [tree[0], directory_pb2.OrgUnit(name="orgUnits/T", parent="orgUnits/R", manager="people/N")]
    assert cache.of(moved, "people/N").heads == ("orgUnits/T",)
    assert cache.of(moved, "people/M") is not first
