"""Wiring: settings -> token verifier, service clients, rate limiter, live events, metrics, routes."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import (
    api,
    delegations_api,
    incentives_api,
    skills_api,
    web,
    web_delegations,
    web_incentives,
    web_skills,
)
from gateway.dev_issuer import DevIssuer, from_settings
from gateway.fast_reads import FastReads
from gateway.identity import KeySet, TokenVerifier
from gateway.incentives_service import IncentivesService
from gateway.live import Broadcaster
from gateway.metrics import GatewayMetrics
from gateway.oidc import OidcSignIn
from gateway.policy import ScopeCache
from gateway.problems import FieldError, Problem, ProblemError, handle_problem, handle_validation
from gateway.ratelimit import RateLimiter
from gateway.roles_service import RolesService
from gateway.settings import GatewaySettings
from gateway.skills_service import SkillsService
from services.platform.log import get_logger

log = get_logger(__name__)
HERE = Path(__file__).parent
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@dataclass
class Gateway:
    """Everything a request handler needs, on `app.state.gateway`."""

    settings: GatewaySettings
    verifier: TokenVerifier
    roles: RolesService
    skills: SkillsService
    incentives: IncentivesService
    limiter: RateLimiter
    live: Broadcaster
    templates: Jinja2Templates
    dev_issuer: DevIssuer | None
    metrics: GatewayMetrics
    oidc: OidcSignIn
    scopes: ScopeCache


class RequestIds:
    """Accepts or makes an X-Request-ID, binds it to logs and gRPC calls, returns it; logs and counts each request."""

    def __init__(self, app: ASGIApp, metrics: GatewayMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if REQUEST_ID.match(given) else str(uuid.uuid4())
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            self.metrics.observe(scope, status, elapsed)
            # Path only: query strings may carry personal data; headers (tokens) are never logged.
            log.info(
                "http.request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                ms=round(elapsed * 1000, 1),
            )
            structlog.contextvars.unbind_contextvars("request_id")


def build_gateway(settings: GatewaySettings) -> Gateway:
    issuer = from_settings(settings) if settings.dev_issuer else None
    if settings.oidc_jwks_file or settings.oidc_jwks_url:
        keys = KeySet(file=settings.oidc_jwks_file, url=settings.oidc_jwks_url)
    elif issuer is not None:
        keys = KeySet(file=str(issuer.jwks_file))
    else:
        log.warning("gateway.no_keys", detail="no JWKS configured and no development issuer: every token is refused")
        keys = KeySet()
    roles = RolesService(
        settings.roles_target,
        settings.grpc_deadline_seconds,
        settings.retry_after_seconds,
        settings.directory_cache_seconds,
    )
    deadline, retry_after = settings.grpc_deadline_seconds, settings.retry_after_seconds
    verifier = TokenVerifier(keys, settings.oidc_issuer, settings.oidc_audience)
    return Gateway(
        settings=settings,
        verifier=verifier,
        roles=roles,
        skills=SkillsService(settings.skills_target, deadline, retry_after),
        incentives=IncentivesService(settings.incentives_target, deadline, retry_after),
        limiter=RateLimiter(settings.rate_per_second, settings.rate_burst),
        live=Broadcaster(settings.nats_url, roles.forget_units),
        templates=Jinja2Templates(directory=str(HERE / "templates")),
        dev_issuer=issuer,
        metrics=GatewayMetrics(),
        oidc=OidcSignIn(settings, verifier),
        scopes=ScopeCache(),
    )


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    gateway = build_gateway(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.live_updates:
            gateway.live.start()
        try:
            yield
        finally:
            await gateway.live.close()
            for client in (gateway.roles, gateway.skills, gateway.incentives):
                await client.close()

    app = FastAPI(
        title="Engage gateway",
        version="1.0.0",
        description=(
            "The HTTP/JSON API of Engage. Authenticate with `Authorization: Bearer <OIDC token>` "
            "(or the web app's session cookie). Errors are RFC 9457 problem details."
        ),
        lifespan=lifespan,
        # The gateway counts and logs requests itself (GatewayMetrics, RequestIds); FastAPI's own OpenTelemetry
        # instrumentation would only look for a configured provider on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.gateway = gateway
    app.add_exception_handler(ProblemError, handle_problem_or_page)
    app.add_exception_handler(RequestValidationError, handle_validation)
    app.include_router(api.router)
    app.include_router(skills_api.router)
    app.include_router(incentives_api.router)
    app.include_router(delegations_api.router)
    app.include_router(web.router)
    app.include_router(web_skills.router)
    app.include_router(web_incentives.router)
    app.include_router(web_delegations.router)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.add_middleware(FastReads, routes=api.router.routes, on_problem=handle_problem_or_page)
    app.add_middleware(RequestIds, metrics=gateway.metrics)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in (Problem, FieldError):
            definition = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in definition.pop("$defs", {}).items():
                components.setdefault(name, sub)
            components[model.__name__] = definition
        schema["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
        }
        schema["security"] = [{"bearer": []}]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


async def handle_problem_or_page(request: Any, exc: Exception) -> Any:
    """API paths get problem+json; pages get a sign-in redirect (401) or an error page."""
    if request.url.path.startswith("/api/") or request.url.path.startswith("/.well-known/"):
        return await handle_problem(request, exc)
    return web.error_page(request, exc)
