"""The three services as real processes on SQLite and one NATS, the test company loaded through roles;
and the methods a running service serves, read through its own reflection."""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import engage
import grpc
from engage.roles.v1 import directory_pb2_grpc, roles_pb2_grpc
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import MethodDescriptor
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.support.company import load_company
from tests.support.nats_server import NatsServer
from tests.support.processes import QUICK_STOP, IncentivesProcess, RolesProcess, ServiceProcess, SkillsProcess
from tests.support.tokens import TokenMint

KINDS: dict[str, type[ServiceProcess]] = {
    "roles": RolesProcess,
    "skills": SkillsProcess,
    "incentives": IncentivesProcess,
}


@dataclass
class Fleet:
    services: dict[str, ServiceProcess]
    nats: NatsServer
    metadata: tuple[tuple[str, str], ...]  # an HR administrator who is also the person A1


@contextmanager
def running_fleet(workdir: Path, mint: TokenMint) -> Iterator[Fleet]:
    nats = NatsServer(workdir / "nats")
    nats.start()
    services = {
        name: kind(f"sqlite+aiosqlite:///{workdir / name}.db", nats.url, mint, workdir, **QUICK_STOP)
        for name, kind in KINDS.items()
    }
    admin = mint.metadata("fleet-admin", roles=["hr_admin"], person="A1")
    try:
        with ThreadPoolExecutor(len(services)) as pool:  # the three start side by side
            list(pool.map(_migrate_and_start, services.values()))
        asyncio.run(_load_company(services["roles"].target, admin))
        yield Fleet(services, nats, admin)
    finally:
        for service in services.values():
            service.stop()
        nats.stop()


def _migrate_and_start(service: ServiceProcess) -> None:
    service.migrate()
    service.start()


async def _load_company(target: str, admin: tuple[tuple[str, str], ...]) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        client = SimpleNamespace(
            directory=directory_pb2_grpc.DirectoryServiceStub(channel),
            roles=roles_pb2_grpc.RoleServiceStub(channel),
            admin=admin,
        )
        await load_company(client)


def _import_generated_code() -> None:
    """Registers every Engage message and service in the default descriptor pool."""
    for module in pkgutil.walk_packages(engage.__path__, "engage."):
        if module.name.endswith("_pb2"):
            importlib.import_module(module.name)


def served_methods(channel: grpc.Channel) -> list[MethodDescriptor]:
    """Every method of every Engage service the server lists through reflection."""
    _import_generated_code()
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    answers = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
    names = [s.name for answer in answers for s in answer.list_services_response.service]
    pool = descriptor_pool.Default()
    return [m for n in sorted(names) if n.startswith("engage.") for m in pool.FindServiceByName(n).methods]
