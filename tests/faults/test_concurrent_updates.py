"""Concurrent updates with the same etag, on SQLite and on PostgreSQL.

Writers that read the same version and update it side by side: exactly one
wins, every other gets ABORTED (the API's answer to a stale etag), and no
update is lost: writers that re-read and retry on ABORTED each see their
change in the final state, with one event per change that won.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import grpc
from engage.roles.v1 import roles_pb2
from google.protobuf.field_mask_pb2 import FieldMask

from tests.conftest import RolesClient
from tests.support.company import ROLES, load_company
from tests.support.events import published

WRITERS = 16
ATTEMPTS = 200  # each writer's bound on re-reads under contention
ROLE = "roles/contended"


async def create_draft(roles: RolesClient) -> roles_pb2.Role:
    draft = roles_pb2.Role()
    draft.CopyFrom(ROLES["team-lead"])
    return await roles.roles.CreateRole(
        roles_pb2.CreateRoleRequest(role_id=ROLE.removeprefix("roles/"), role=draft), metadata=roles.admin, timeout=10
    )


async def update(roles: RolesClient, role: roles_pb2.Role) -> roles_pb2.Role:
    return await roles.roles.UpdateRole(
        roles_pb2.UpdateRoleRequest(role=role, update_mask=FieldMask(paths=["responsibilities"])),
        metadata=roles.admin,
        timeout=20,
    )


async def add_responsibility(roles: RolesClient, line: str, conflicts: Counter[str]) -> None:
    """Read, add one line, write with the etag read; on ABORTED read again (a careful client)."""
    for _ in range(ATTEMPTS):
        role = await roles.roles.GetRole(roles_pb2.GetRoleRequest(name=ROLE), metadata=roles.admin, timeout=10)
        role.responsibilities.append(line)
        try:
            await update(roles, role)
            return
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.ABORTED:
                raise
            conflicts[line] += 1
    raise AssertionError(f"{line}: still ABORTED after {ATTEMPTS} attempts")


async def test_concurrent_updates_with_one_etag_let_exactly_one_win_and_lose_no_update(roles: RolesClient, scenario):
    scenario.load = f"{WRITERS} UpdateRole on one etag, then {WRITERS} read-modify-write writers"
    await load_company(roles)  # the decision categories the role's rights name
    base = await create_draft(roles)

    # One etag, many writers: one wins, the rest are told their version is stale.
    async def rename(i: int) -> roles_pb2.Role:
        role = roles_pb2.Role()
        role.CopyFrom(base)
        role.responsibilities.append(f"same etag {i}")
        return await update(roles, role)

    results = await asyncio.gather(*(rename(i) for i in range(WRITERS)), return_exceptions=True)
    winners = [r for r in results if isinstance(r, roles_pb2.Role)]
    codes = Counter(r.code().name for r in results if isinstance(r, grpc.aio.AioRpcError))
    unexpected = [r for r in results if not isinstance(r, roles_pb2.Role | grpc.aio.AioRpcError)]
    assert unexpected == [], unexpected
    assert len(winners) == 1, (winners, codes)
    assert codes == Counter({"ABORTED": WRITERS - 1}), codes
    now = await roles.roles.GetRole(roles_pb2.GetRoleRequest(name=ROLE), metadata=roles.admin, timeout=10)
    assert list(now.responsibilities) == list(winners[0].responsibilities)

    # Read-modify-write writers retrying on ABORTED: every one's line is there, once.
    conflicts: Counter[str] = Counter()
    lines = [f"writer {i}" for i in range(WRITERS)]
    await asyncio.gather(*(add_responsibility(roles, line, conflicts) for line in lines))
    final = await roles.roles.GetRole(roles_pb2.GetRoleRequest(name=ROLE), metadata=roles.admin, timeout=10)
    await roles.settle()
    events = await published(roles.nats.url)
    updated = [e.subject for e in events if e.type == "engage.roles.v1.role.updated" and e.subject == ROLE]
    scenario.faults = f"same etag: 1 won, {codes['ABORTED']} ABORTED; read-modify-write: {conflicts.total()} ABORTED"
    scenario.count([ROLE] * (1 + WRITERS), updated)  # one event per update that won
    assert Counter(final.responsibilities) == Counter([*winners[0].responsibilities, *lines])  # no lost update
    assert conflicts.total() > 0, "the writers never collided: the scenario did not test a lost update"
