"""`python -m services.skills.main`: run the skills service."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from engage.skills.v1 import (
    assessments_pb2,
    assessments_pb2_grpc,
    catalogue_pb2,
    catalogue_pb2_grpc,
    fit_pb2,
    fit_pb2_grpc,
)

from services.platform.consumer import EventConsumer
from services.platform.db import Database
from services.platform.grpc_server import ServiceApp, setup_logging
from services.platform.log import get_logger
from services.skills.api.assessments import AssessmentServicer
from services.skills.api.catalogue import CatalogueServicer
from services.skills.api.fit import RoleFitServicer
from services.skills.api.permissions import PERMISSIONS
from services.skills.app import projection
from services.skills.app.expiry import ExpirySweep
from services.skills.settings import SkillsSettings
from services.skills.store.fit_view import FitView

log = get_logger(__name__)

SERVICE_NAMES = [
    catalogue_pb2.DESCRIPTOR.services_by_name["CatalogueService"].full_name,
    assessments_pb2.DESCRIPTOR.services_by_name["AssessmentService"].full_name,
    fit_pb2.DESCRIPTOR.services_by_name["RoleFitService"].full_name,
]


class SkillsApp(ServiceApp):
    """The platform's ServiceApp with the parts that run beside the gRPC
    server (the projection of the roles service's events, the expiry sweep
    and GetRoleFit's in-memory view), and a way to rebuild the projection."""

    def __init__(self, settings: SkillsSettings, db: Database, fit_view: FitView, **kwargs: Any):
        super().__init__(settings, db=db, **kwargs)
        self.fit_view = fit_view
        # The consumer needs the app's NATS link, so it joins the background parts here.
        self.projection = EventConsumer(
            self.db,
            self.link,
            name=projection.CONSUMER_NAME,
            stream=settings.nats_stream,
            subjects=projection.SUBJECTS,
            handler=projection.apply_roles_event,
            ack_wait_seconds=settings.consumer_ack_wait_seconds,
        )
        self.expiry = ExpirySweep(self.db, settings.expiry_sweep_seconds)
        self.background += [self.projection, self.expiry, self.fit_view]

    async def start(self) -> int:
        # The fit view loads before the server takes calls, so GetRoleFit answers
        # from memory from the first call; if the database is down it loads later.
        try:
            await self.fit_view.catch_up()
        except Exception as exc:
            log.warning("fit_view.first_load_failed", error=str(exc) or type(exc).__name__)
        return await super().start()

    async def rebuild_projection(self) -> None:
        """Drops the projection and reads the roles events again from the start of the stream."""
        await self.projection.rebuild(projection.reset)


def build(settings: SkillsSettings, db: Database | None = None) -> SkillsApp:
    database = db or Database.of(settings)
    fit_view = FitView(database, poll_seconds=settings.fit_view_poll_seconds)

    def register(server: grpc.aio.Server) -> None:
        catalogue_pb2_grpc.add_CatalogueServiceServicer_to_server(CatalogueServicer(database), server)
        assessments_pb2_grpc.add_AssessmentServiceServicer_to_server(AssessmentServicer(database), server)
        fit_pb2_grpc.add_RoleFitServiceServicer_to_server(RoleFitServicer(database, fit_view), server)

    return SkillsApp(
        settings, database, fit_view, register=register, service_names=SERVICE_NAMES, permissions=PERMISSIONS
    )


async def main() -> None:
    settings = SkillsSettings()
    setup_logging(settings)
    app = build(settings)
    await app.run_until_signal()


if __name__ == "__main__":
    asyncio.run(main())
