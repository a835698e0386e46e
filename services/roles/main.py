"""`python -m services.roles.main`: run the roles service."""

from __future__ import annotations

import asyncio

import grpc
from engage.roles.v1 import (
    assignments_pb2,
    assignments_pb2_grpc,
    decisions_pb2,
    decisions_pb2_grpc,
    directory_pb2,
    directory_pb2_grpc,
    roles_pb2,
    roles_pb2_grpc,
)

from services.platform.db import Database
from services.platform.grpc_server import ServiceApp, setup_logging
from services.roles.api.assignments import AssignmentServicer
from services.roles.api.catalogue import RoleServicer
from services.roles.api.decisions import DecisionServicer
from services.roles.api.directory import DirectoryServicer
from services.roles.api.permissions import PERMISSIONS
from services.roles.settings import RolesSettings
from services.roles.store.decision_view import DecisionView

SERVICE_NAMES = [
    directory_pb2.DESCRIPTOR.services_by_name["DirectoryService"].full_name,
    roles_pb2.DESCRIPTOR.services_by_name["RoleService"].full_name,
    assignments_pb2.DESCRIPTOR.services_by_name["AssignmentService"].full_name,
    decisions_pb2.DESCRIPTOR.services_by_name["DecisionService"].full_name,
]


def build(settings: RolesSettings, db: Database | None = None) -> ServiceApp:
    database = db or Database.of(settings)
    view = DecisionView(database)

    def register(server: grpc.aio.Server) -> None:
        directory = DirectoryServicer(database, settings.import_max_rows, view)
        directory_pb2_grpc.add_DirectoryServiceServicer_to_server(directory, server)
        roles_pb2_grpc.add_RoleServiceServicer_to_server(RoleServicer(database, view), server)
        assignments_pb2_grpc.add_AssignmentServiceServicer_to_server(AssignmentServicer(database), server)
        decisions_pb2_grpc.add_DecisionServiceServicer_to_server(DecisionServicer(view), server)

    return ServiceApp(
        settings,
        register=register,
        service_names=SERVICE_NAMES,
        permissions=PERMISSIONS,
        db=database,
        background=[view],
    )


async def main() -> None:
    settings = RolesSettings()
    setup_logging(settings)
    app = build(settings)
    await app.run_until_signal()


if __name__ == "__main__":
    asyncio.run(main())
