"""`python -m gateway.main`: the gateway on ENGAGE_GATEWAY_HOST:ENGAGE_GATEWAY_PORT (127.0.0.1:8080)."""

from __future__ import annotations

import asyncio
import gc

import uvicorn

from gateway.app import create_app
from gateway.settings import GatewaySettings
from services.platform.log import configure_logging, get_logger


async def serve(settings: GatewaySettings) -> None:
    # The app opens gRPC channels, which belong to the loop they are made in:
    # build it inside the loop uvicorn serves on.
    app = create_app(settings)
    # What start-up made (modules, routes, schemas) lives as long as the process: out of the
    # collector's way, so the full collections that requests' garbage triggers do not walk it.
    gc.freeze()
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        access_log=False,  # requests are logged by the gateway itself, without query strings or tokens
        timeout_graceful_shutdown=5,
        proxy_headers=False,
    )
    await uvicorn.Server(config).serve()


def main() -> None:
    settings = GatewaySettings()
    configure_logging(settings.log_level, settings.log_format)
    get_logger(__name__).info(
        "gateway.starting",
        host=settings.host,
        port=settings.port,
        roles=settings.roles_target,
        dev_issuer=settings.dev_issuer,
    )
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
