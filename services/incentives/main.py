"""`python -m services.incentives.main`: run the incentives service.

Besides the gRPC API and the outbox relay every service has, it runs two
durable JetStream consumers: CRM behaviour events (`crm.behaviours.v1.>` on
their own stream) and the roles service's events (the eligibility projection).
"""

from __future__ import annotations

import asyncio

import grpc
from engage.incentives.v1 import (
    awards_pb2,
    awards_pb2_grpc,
    behaviours_pb2,
    behaviours_pb2_grpc,
    dead_letters_pb2,
    dead_letters_pb2_grpc,
    schemes_pb2,
    schemes_pb2_grpc,
    scorecards_pb2,
    scorecards_pb2_grpc,
)

from services.incentives.api.behaviours import BehaviourServicer
from services.incentives.api.dead_letters import DeadLetterServicer
from services.incentives.api.permissions import PERMISSIONS
from services.incentives.api.schemes import SchemeServicer
from services.incentives.api.scorecards import AwardServicer, ScorecardServicer
from services.incentives.app.ingestion import apply_crm_event
from services.incentives.app.projection import SUBJECTS as ROLES_SUBJECTS
from services.incentives.app.projection import apply_roles_event
from services.incentives.app.scorecard_board import ScorecardBoard
from services.incentives.events.crm_consumer import CrmBehaviourConsumer
from services.incentives.settings import IncentivesSettings
from services.platform.consumer import EventConsumer
from services.platform.db import Database
from services.platform.grpc_server import Registrar, ServiceApp, setup_logging

SERVICE_NAMES = [
    behaviours_pb2.DESCRIPTOR.services_by_name["BehaviourService"].full_name,
    schemes_pb2.DESCRIPTOR.services_by_name["SchemeService"].full_name,
    scorecards_pb2.DESCRIPTOR.services_by_name["ScorecardService"].full_name,
    awards_pb2.DESCRIPTOR.services_by_name["AwardService"].full_name,
    dead_letters_pb2.DESCRIPTOR.services_by_name["DeadLetterService"].full_name,
]

CRM_CONSUMER = "incentives-crm-behaviours"
ROLES_CONSUMER = "incentives-roles-projection"
# What ReplayDeadLetter applies a dead letter with, by the consumer that gave up on it.
DEAD_LETTER_HANDLERS = {CRM_CONSUMER: apply_crm_event, ROLES_CONSUMER: apply_roles_event}


class IncentivesApp(ServiceApp):
    """A ServiceApp that also runs the service's consumers.

    The platform's ServiceApp provisions only the ENGAGE stream; the CRM
    stream is added to its link's `streams` before it connects, so one NATS
    connection serves the relay and both consumers.
    """

    def __init__(
        self, settings: IncentivesSettings, *, register: Registrar, db: Database, board: ScorecardBoard | None = None
    ):
        super().__init__(settings, register=register, service_names=SERVICE_NAMES, permissions=PERMISSIONS, db=db)
        self.board = board
        self.link.streams[settings.crm_stream] = [settings.crm_subjects]
        self.consumers: list[EventConsumer] = [
            CrmBehaviourConsumer.around(
                EventConsumer(
                    self.db,
                    self.link,
                    name=CRM_CONSUMER,
                    stream=settings.crm_stream,
                    subjects=[settings.crm_subjects],
                    handler=apply_crm_event,
                    max_deliver=settings.consumer_max_deliver,
                    batch_size=settings.crm_batch_size,
                    ack_wait_seconds=settings.consumer_ack_wait_seconds,
                )
            ),
            EventConsumer(
                self.db,
                self.link,
                name=ROLES_CONSUMER,
                stream=settings.nats_stream,
                subjects=ROLES_SUBJECTS,
                handler=apply_roles_event,
                max_deliver=settings.consumer_max_deliver,
                ack_wait_seconds=settings.consumer_ack_wait_seconds,
            ),
        ]

    async def start(self) -> int:
        port = await super().start()
        if self.board is not None:
            self.board.start()
        for consumer in self.consumers:
            consumer.start()
        return port

    async def stop(self) -> None:
        for consumer in self.consumers:
            await consumer.stop()
        if self.board is not None:
            await self.board.stop()
        await super().stop()


def build(settings: IncentivesSettings, db: Database | None = None) -> IncentivesApp:
    database = db or Database.of(settings)
    board = None
    if settings.scorecard_board_periods > 0:
        board = ScorecardBoard(
            database, max_periods=settings.scorecard_board_periods, max_credits=settings.scorecard_board_max_credits
        )

    def register(server: grpc.aio.Server) -> None:
        behaviours_pb2_grpc.add_BehaviourServiceServicer_to_server(BehaviourServicer(database), server)
        schemes_pb2_grpc.add_SchemeServiceServicer_to_server(SchemeServicer(database), server)
        scorecards_pb2_grpc.add_ScorecardServiceServicer_to_server(
            ScorecardServicer(database, settings.minimum_group_size, board), server
        )
        awards_pb2_grpc.add_AwardServiceServicer_to_server(AwardServicer(database), server)
        dead_letters_pb2_grpc.add_DeadLetterServiceServicer_to_server(
            DeadLetterServicer(database, DEAD_LETTER_HANDLERS), server
        )

    return IncentivesApp(settings, register=register, db=database, board=board)


async def main() -> None:
    settings = IncentivesSettings()
    setup_logging(settings)
    app = build(settings)
    await app.run_until_signal()


if __name__ == "__main__":
    asyncio.run(main())
