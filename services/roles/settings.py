"""Settings of the roles service (`ENGAGE_*` environment variables)."""

from services.platform.settings import ServiceSettings


class RolesSettings(ServiceSettings):
    service_name: str = "roles"
    grpc_port: int = 50051
    metrics_port: int = 9151
