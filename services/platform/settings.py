"""Configuration from `ENGAGE_*` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class ServiceSettings(BaseSettings):
    """Settings shared by every service; each service sets its own defaults."""

    model_config = SettingsConfigDict(env_prefix="ENGAGE_", extra="ignore")

    service_name: str = "engage"
    grpc_host: str = "127.0.0.1"
    grpc_port: int = 50050
    metrics_port: int = 0  # 0: no metrics endpoint
    # SQLite is the embedded default; PostgreSQL by URL
    # (postgresql+asyncpg://user@host/db).
    database_url: str = ""
    # Bounds on waiting for the database: a silent or locked database fails
    # calls with UNAVAILABLE after this long instead of holding them. Keep the
    # statement bound below clients' deadlines and above the longest statement.
    db_connect_timeout_seconds: float = 5.0
    db_statement_timeout_seconds: float = 30.0  # PostgreSQL command timeout; SQLite lock wait
    nats_url: str = "nats://127.0.0.1:4222"
    nats_stream: str = "ENGAGE"
    nats_stream_replicas: int = 1
    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "json"

    # Authentication: "jwt" verifies bearer tokens against a key set; "dev"
    # also accepts calls without a token (as a development administrator).
    auth_mode: Literal["jwt", "dev"] = "jwt"
    auth_jwks_file: str = ""
    auth_issuer: str = "engage-dev"
    auth_audience: str = "engage"

    # Graceful shutdown: health turns NOT_SERVING, then the server waits
    # `drain_seconds` for load balancers to notice, then stops with `grace_seconds`.
    drain_seconds: float = 5.0
    grace_seconds: float = 10.0
    max_concurrent_rpcs: int = 512
    max_message_bytes: int = 32 * 1024 * 1024

    outbox_batch_size: int = 500
    outbox_poll_seconds: float = 0.5
    outbox_retention_hours: float = 24.0
    # Event consumers (skills, incentives): how long JetStream waits for an
    # ack before redelivering (after a crash, events come back this late).
    consumer_ack_wait_seconds: float = 30.0

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        path = PROJECT_ROOT / "var" / f"{self.service_name}.db"
        return f"sqlite+aiosqlite:///{path}"
