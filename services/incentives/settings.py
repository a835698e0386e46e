"""Settings of the incentives service (`ENGAGE_*` environment variables)."""

from services.platform.settings import ServiceSettings


class IncentivesSettings(ServiceSettings):
    service_name: str = "incentives"
    grpc_port: int = 50053
    metrics_port: int = 9153
    # Inbound CRM behaviour events: their own stream, a durable consumer.
    crm_stream: str = "CRM_BEHAVIOURS"
    crm_subjects: str = "crm.behaviours.v1.>"
    # Deliveries of an event before it goes to the dead-letter table.
    consumer_max_deliver: int = 5
    # Messages fetched and applied in one transaction by the CRM consumer.
    crm_batch_size: int = 2000
    # Open periods' scorecards held in memory per replica (0: none), and the
    # largest period held, in counted credits (app/scorecard_board.py).
    scorecard_board_periods: int = 4
    scorecard_board_max_credits: int = 200_000
    # Team summaries of fewer people than this are withheld (privacy).
    minimum_group_size: int = 5
