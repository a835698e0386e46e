"""Gateway configuration from `ENGAGE_GATEWAY_*` environment variables."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.platform.settings import PROJECT_ROOT


@dataclass(frozen=True)
class DemoUser:
    """Someone the development issuer lets you sign in as."""

    key: str  # stable id used by the sign-in form and as the token subject
    label: str  # who they are, shown on the sign-in page
    roles: tuple[str, ...] = ()  # engage_roles claim
    person: str | None = None  # HR employee id (engage_person claim)


# People of the demo company Northbridge Bank (scripts/demo_company.py): an HR
# administrator, heads of two different lines of business, a team lead and
# employees of the team lead's team.
NORTHBRIDGE_USERS: tuple[DemoUser, ...] = (
    DemoUser("hr-admin", "HR administrator (everywhere)", ("hr_admin",)),
    DemoUser("E10161", "Elif Murphy: head of Customer Service", (), "E10161"),
    DemoUser("E10002", "Max Martin: head of Retail Banking", (), "E10002"),
    DemoUser("E10163", "Elena Lindqvist: team lead, Contact Centre A", (), "E10163"),
    DemoUser("E10167", "Lina Larsen: service agent, Contact Centre A", (), "E10167"),
    DemoUser("E10164", "Sara De Vries: senior agent, Contact Centre A", (), "E10164"),
)


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ENGAGE_GATEWAY_", extra="ignore", populate_by_name=True)

    host: str = "127.0.0.1"
    port: int = 8080
    # Public origin of the gateway (scheme://host:port) for same-origin checks
    # behind a proxy; empty: the request's own Host header.
    public_origin: str = ""

    roles_target: str = "127.0.0.1:50051"
    skills_target: str = "127.0.0.1:50052"
    incentives_target: str = "127.0.0.1:50053"
    grpc_deadline_seconds: float = 5.0
    # Seconds a client should wait before retrying when a service is down.
    retry_after_seconds: int = 2

    # OIDC token verification. With the development issuer on and no key set
    # configured, tokens are verified against the issuer's own key.
    oidc_issuer: str = "engage-dev"
    oidc_audience: str = "engage"
    oidc_jwks_file: str = ""
    oidc_jwks_url: str = ""
    # Web sign-in with the organisation's provider (authorisation code flow with PKCE): on when a
    # client id is set and the discovery document is known (this URL, else `{issuer}/.well-known/...`).
    oidc_client_id: str = ""
    oidc_client_secret: str = ""  # confidential clients only; public clients rely on PKCE alone
    oidc_discovery_url: str = ""
    oidc_scopes: str = "openid profile email"

    # Development issuer: off unless asked for (make run turns it on).
    dev_issuer: bool = False
    dev_issuer_key_file: str = str(PROJECT_ROOT / "var" / "dev-issuer" / "key.pem")
    dev_issuer_jwks_file: str = str(PROJECT_ROOT / "var" / "dev-issuer" / "jwks.json")
    dev_issuer_kid: str = ""  # default: derived from the key
    dev_token_minutes: int = 480
    # JSON list of {"key", "label", "roles", "person"}; empty: the Northbridge Bank users.
    demo_users: str = ""

    cookie_name: str = "engage_session"
    cookie_secure: bool = False

    # Per-user token bucket: sustained requests per second and burst size.
    rate_per_second: float = 20.0
    rate_burst: int = 60

    # Seconds the org unit tree (to find whom a manager manages) is reused.
    directory_cache_seconds: float = 2.0

    nats_url: str = Field(
        default="nats://127.0.0.1:4222", validation_alias=AliasChoices("ENGAGE_GATEWAY_NATS_URL", "ENGAGE_NATS_URL")
    )
    # Off: no live updates (pages still work, they just need a reload).
    live_updates: bool = True

    log_level: str = Field(
        default="INFO", validation_alias=AliasChoices("ENGAGE_GATEWAY_LOG_LEVEL", "ENGAGE_LOG_LEVEL")
    )
    log_format: Literal["json", "console"] = Field(
        default="json", validation_alias=AliasChoices("ENGAGE_GATEWAY_LOG_FORMAT", "ENGAGE_LOG_FORMAT")
    )

    def users(self) -> tuple[DemoUser, ...]:
        if not self.demo_users:
            return NORTHBRIDGE_USERS
        rows = json.loads(self.demo_users)
        return tuple(
            DemoUser(str(r["key"]), str(r["label"]), tuple(r.get("roles") or ()), r.get("person") or None) for r in rows
        )
