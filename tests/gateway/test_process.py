"""The gateway as `make run` and Kubernetes start it: its own process, talking to a real roles service."""

import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.gateway.conftest import Stack, free_port
from tests.support.tokens import AUDIENCE, ISSUER
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]


async def test_the_gateway_process_serves_the_api_from_the_roles_service(stack: Stack, tmp_path: Path):
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT}:{ROOT / 'gen'}",
        "ENGAGE_GATEWAY_PORT": str(port),
        "ENGAGE_GATEWAY_ROLES_TARGET": stack.settings.roles_target,
        "ENGAGE_GATEWAY_SKILLS_TARGET": stack.settings.skills_target,
        "ENGAGE_GATEWAY_INCENTIVES_TARGET": stack.settings.incentives_target,
        "ENGAGE_GATEWAY_OIDC_ISSUER": ISSUER,
        "ENGAGE_GATEWAY_OIDC_AUDIENCE": AUDIENCE,
        "ENGAGE_GATEWAY_OIDC_JWKS_FILE": str(stack.mint.jwks_file),
        "ENGAGE_GATEWAY_LIVE_UPDATES": "false",
    }
    process = _start(env, tmp_path / "gateway.log")
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:

            async def health() -> int:
                try:
                    return (await client.get("/healthz")).status_code
                except httpx.TransportError:
                    return 0

            await eventually(health, lambda status: status == 200, timeout=30, what="the gateway to start")
            token = stack.mint.token("hr", roles=["hr_admin"])
            roles = await client.get("/api/v1/roles", headers={"Authorization": f"Bearer {token}"})
            assert roles.status_code == 200, roles.text
            assert "roles/service-agent" in roles.text
            fit = await client.get(
                "/api/v1/roles/service-agent/candidates", headers={"Authorization": f"Bearer {token}"}
            )
            assert fit.status_code == 200 and fit.json()["candidates"], fit.text
            metrics = await client.get("/metrics")
            assert 'route="/api/v1/roles/{role_id}/candidates"' in metrics.text
            assert 'engage_gateway_requests_total{method="GET",route="/api/v1/roles",status="200"} 1.0' in metrics.text
    finally:
        process.terminate()
        process.wait(timeout=20)


def _start(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "wb") as log:
        return subprocess.Popen([sys.executable, "-m", "gateway.main"], env=env, cwd=ROOT, stdout=log, stderr=log)
