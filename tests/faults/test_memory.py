"""Memory stays flat: oversized, endless and greedy requests get a clear error,
and the server's resident memory (VmRSS in /proc/<pid>/status) stays within
a bound of what it used before them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import grpc
import pytest
from engage.roles.v1 import directory_pb2, directory_pb2_grpc

from tests.support.company import person_row, stream, unit_row
from tests.support.grpc_errors import call_error
from tests.support.nats_server import NatsServer
from tests.support.processes import RolesProcess

MIB = 1024
ENDLESS_SECONDS = 3.0


@pytest.fixture(scope="module")
def roles_process(tmp_path_factory: pytest.TempPathFactory, mint) -> Iterator[RolesProcess]:
    """One roles process for the module: each test measures against its own baseline."""
    workdir = tmp_path_factory.mktemp("memory")
    nats_server = NatsServer(workdir / "nats")
    nats_server.start()
    service = RolesProcess(
        f"sqlite+aiosqlite:///{workdir / 'roles.db'}",
        nats_server.url,
        mint,
        workdir,
        ENGAGE_DRAIN_SECONDS="0",
        ENGAGE_GRACE_SECONDS="1",
    )
    try:
        service.migrate()
        service.start()
        yield service
    finally:
        service.stop()
        nats_server.stop()


def company(people: int) -> list[directory_pb2.ImportDirectoryRequest]:
    rows = [unit_row("ROOT", "Root", directory_pb2.ORG_UNIT_KIND_COMPANY, "", "")]
    return rows + [person_row(f"M{i:06d}", f"Person {i}", "ROOT", "", 2) for i in range(people)]


async def people_count(stub: directory_pb2_grpc.DirectoryServiceStub, admin: object) -> int:
    count, token = 0, ""
    while True:
        page = await stub.ListPeople(
            directory_pb2.ListPeopleRequest(page_size=1000, page_token=token), metadata=admin, timeout=30
        )
        count += len(page.people)
        token = page.next_page_token
        if not token:
            return count


async def endless_import(stub: directory_pb2_grpc.DirectoryServiceStub, admin: object) -> tuple[grpc.StatusCode, int]:
    """An import that never ends by itself: rows are written until the call's deadline
    ends it (and for at most three times that long, for the suite's sake). Returns the
    final status and how many rows were sent."""
    call = stub.ImportDirectory(metadata=admin, timeout=ENDLESS_SECONDS)
    started, sent = time.monotonic(), 0
    try:
        while time.monotonic() - started < ENDLESS_SECONDS * 3:
            await call.write(person_row(f"E{sent:09d}", "x" * 200, "ROOT", "", 2))
            sent += 1
    except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
        pass  # the call is over: its status says why
    code = await call.code()
    if code == grpc.StatusCode.INTERNAL and await call.details() == "Internal error from Core":
        # gRPC's client core reports a call cut at its deadline while it was still
        # writing as this INTERNAL (the server logged no error, wrote nothing): the deadline.
        code = grpc.StatusCode.DEADLINE_EXCEEDED
    return code, sent


async def test_oversized_requests_get_a_clear_error_and_memory_stays_flat(roles_process: RolesProcess, mint, scenario):
    scenario.load, scenario.faults = "10 x CreatePerson of 40 MiB", "messages over the 32 MiB limit"
    admin = mint.metadata("hr", roles=["hr_admin"])
    huge = directory_pb2.CreatePersonRequest(
        person_id="BIG", person=directory_pb2.Person(display_name="x" * (40 * 1024 * 1024), management_level=1)
    )
    async with grpc.aio.insecure_channel(
        roles_process.target, options=[("grpc.max_send_message_length", 64 << 20)]
    ) as channel:
        stub = directory_pb2_grpc.DirectoryServiceStub(channel)
        await stub.ListPeople(directory_pb2.ListPeopleRequest(), metadata=admin, timeout=5)
        before = roles_process.rss_kb()
        rss = []
        for _ in range(10):
            err = await call_error(
                stub.CreatePerson(huge, metadata=admin, timeout=30), grpc.StatusCode.RESOURCE_EXHAUSTED
            )
            assert "larger than max" in err.message.lower() or "received message" in err.message.lower()
            rss.append(roles_process.rss_kb())
        await stub.ListPeople(directory_pb2.ListPeopleRequest(), metadata=admin, timeout=5)
    first, second = max(rss[:5]), max(rss[5:])
    scenario.faults += f"; RSS {before // MIB} MiB, peak of calls 1-5 {first // MIB}, of 6-10 {second // MIB}"
    # What gRPC buffers for a rejected message is bounded, and repeating it does not add up:
    # a leak of the 40 MiB message would grow the second half's peak by ~200 MiB; the
    # allocator's noise (one transient buffer more or less) stays well under 100.
    assert max(rss) - before < 150 * MIB, (before, rss)
    assert second - first < 100 * MIB, rss


async def test_huge_page_sizes_are_clamped_and_memory_stays_flat(roles_process: RolesProcess, mint, scenario):
    scenario.load, scenario.faults = "1,500 people; 20 x ListPeople", "page_size 2^31-1"
    admin = mint.metadata("hr", roles=["hr_admin"])
    async with grpc.aio.insecure_channel(roles_process.target) as channel:
        stub = directory_pb2_grpc.DirectoryServiceStub(channel)
        imported = await stub.ImportDirectory(stream(company(1500)), metadata=admin, timeout=120)
        assert imported.rejected_count == 0
        await stub.ListPeople(directory_pb2.ListPeopleRequest(page_size=10), metadata=admin, timeout=5)
        before = roles_process.rss_kb()
        for _ in range(20):
            page = await stub.ListPeople(
                directory_pb2.ListPeopleRequest(page_size=2**31 - 1), metadata=admin, timeout=30
            )
            assert len(page.people) == 1000 and page.next_page_token  # clamped, the rest on the next page
        after = roles_process.rss_kb()
    scenario.faults += f"; RSS {before // MIB} -> {after // MIB} MiB"
    assert after - before < 50 * MIB, (before, after)


async def test_an_endless_import_stream_ends_at_its_deadline_and_memory_stays_bounded(
    roles_process: RolesProcess, mint, scenario
):
    scenario.load = f"ImportDirectory streaming rows for {ENDLESS_SECONDS:g}s, 3 times"
    admin = mint.metadata("hr", roles=["hr_admin"])
    async with grpc.aio.insecure_channel(roles_process.target) as channel:
        stub = directory_pb2_grpc.DirectoryServiceStub(channel)
        await stub.ImportDirectory(stream(company(1)), metadata=admin, timeout=30)
        count_before = await people_count(stub, admin)
        before = roles_process.rss_kb()
        peaks = []
        sent = 0
        for _ in range(3):
            code, rows = await endless_import(stub, admin)
            assert code in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED), code
            sent += rows
            peaks.append(roles_process.rss_kb())
        count_after = await people_count(stub, admin)
    rss = " -> ".join(str(v // MIB) for v in [before, *peaks])
    scenario.faults = f"client streams that never end ({sent:,} rows sent); RSS {rss} MiB"
    assert count_after == count_before  # nothing of the cut imports was written
    # Repeating the abuse does not grow memory further: the first round's peak bounds the rest.
    assert peaks[-1] - peaks[0] < 50 * MIB, peaks
    assert peaks[-1] - before < 300 * MIB, (before, peaks)
