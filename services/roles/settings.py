"""Settings of the roles service (`ENGAGE_*` environment variables)."""

from services.platform.settings import ServiceSettings


class RolesSettings(ServiceSettings):
    service_name: str = "roles"
    grpc_port: int = 50051
    metrics_port: int = 9151
    # ImportDirectory holds a whole import in memory (rows may come in any
    # order); beyond this many rows the call is refused (RESOURCE_EXHAUSTED).
    import_max_rows: int = 500_000  # with one result each, the answer stays well under 32 MiB
