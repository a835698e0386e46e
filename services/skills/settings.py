"""Settings of the skills service (`ENGAGE_*` environment variables)."""

from services.platform.settings import ServiceSettings


class SkillsSettings(ServiceSettings):
    service_name: str = "skills"
    grpc_port: int = 50052
    metrics_port: int = 9152
    # How often stored levels whose assessments expired are refreshed and
    # their changes published (reads recompute stale levels themselves).
    expiry_sweep_seconds: float = 60.0
    # How often GetRoleFit's in-memory view looks for changes committed by
    # other replicas and for projected role changes (its staleness bound).
    fit_view_poll_seconds: float = 0.1
