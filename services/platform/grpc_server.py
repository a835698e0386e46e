"""gRPC server bootstrap shared by every service.

One interceptor gives every call a request id, a caller identity, a
permission check, a log line, metrics and error mapping. `ServiceApp` wires
the server with health checking, reflection, the outbox relay and graceful
shutdown (health NOT_SERVING, a drain delay, then stop with a grace period).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

import grpc
import structlog
from engage.audit.v1 import audit_pb2_grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from sqlalchemy import exc as sa_exc

from services.platform import audit_api, metrics
from services.platform.auth import TokenVerifier, require, set_identity
from services.platform.db import Database
from services.platform.errors import EngageError, Unavailable
from services.platform.jetstream import NatsLink
from services.platform.log import configure_logging, get_logger
from services.platform.protobuf import reject_unknown_fields
from services.platform.relay import OutboxRelay
from services.platform.settings import ServiceSettings

log = get_logger(__name__)

ERROR_DOMAIN = "engage.dev"
# Methods anyone may call without a token: health and reflection.
PUBLIC_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")
READINESS = "readiness"


def status_of(error: EngageError) -> status_pb2.Status:
    """The google.rpc.Status with BadRequest / ErrorInfo details."""
    details: list[any_pb2.Any] = []
    if error.violations:
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                for v in error.violations
            ]
        )
        packed = any_pb2.Any()
        packed.Pack(bad)
        details.append(packed)
    if error.reason:
        info = any_pb2.Any()
        info.Pack(error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN))
        details.append(info)
    return status_pb2.Status(code=error.code.value[0], message=error.message, details=details)


def _as_engage_error(exc: Exception) -> EngageError | None:
    if isinstance(exc, EngageError):
        return exc
    if isinstance(exc, sa_exc.IntegrityError):
        return EngageError("a concurrent change conflicted; retry", "CONFLICT", [], grpc.StatusCode.ABORTED)
    if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError, OSError)):
        return Unavailable("the database is unavailable; retry later", "DATABASE_UNAVAILABLE")
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return Unavailable("the database connection was lost; retry", "DATABASE_UNAVAILABLE")
    return None


MAX_REQUEST_ID = 128


def _request_id(sent: str | None) -> str:
    """The caller's request id, or a new one when it sent none or one too
    long to be an id (it is copied into every log line of the call)."""
    if sent and len(sent) <= MAX_REQUEST_ID:
        return sent
    return str(uuid.uuid4())


class EngageInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, service: str, verifier: TokenVerifier, permissions: Mapping[str, str], max_in_flight: int = 512):
        self.service = service
        self.verifier = verifier
        self.permissions = permissions
        # The concurrency limit lives here rather than in grpc's
        # maximum_concurrent_rpcs so health checks are never refused under load.
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        self._metrics: dict[tuple[str, grpc.StatusCode], tuple[Any, Any]] = {}

    def _count(self, method: str, code: grpc.StatusCode, seconds: float) -> None:
        # prometheus_client's labels() takes a lock and builds a key: look each pair up once.
        pair = self._metrics.get((method, code))
        if pair is None:
            pair = self._metrics[(method, code)] = (
                metrics.RPCS.labels(self.service, method, code.name),
                metrics.RPC_SECONDS.labels(self.service, method),
            )
        pair[0].inc()
        pair[1].observe(seconds)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        method: str = details.method
        if handler is None or method.startswith(PUBLIC_PREFIXES):
            return handler
        metadata = dict(details.invocation_metadata or ())
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap(handler.unary_unary, method, metadata, streaming=False),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                self._wrap(handler.stream_unary, method, metadata, streaming=True),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler  # streaming responses are not used by Engage

    def _wrap(
        self, behavior: Callable[..., Any], method: str, metadata: dict[str, Any], *, streaming: bool
    ) -> Callable[..., Any]:
        permission = self.permissions.get(method)
        short = method.rsplit("/", 1)[-1]

        async def run(request: Any, context: grpc.aio.ServicerContext) -> Any:
            request_id = _request_id(metadata.get("x-request-id"))
            structlog.contextvars.bind_contextvars(request_id=request_id, rpc=short)
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            admitted = False
            stream: _RequestStream | None = None
            try:
                if self.in_flight >= self.max_in_flight:
                    raise EngageError(
                        "the server is at its limit of concurrent calls; retry shortly",
                        "OVERLOADED",
                        [],
                        grpc.StatusCode.RESOURCE_EXHAUSTED,
                    )
                self.in_flight += 1
                admitted = True
                identity = self.verifier.verify(metadata.get("authorization"))
                require(identity, permission)
                set_identity(identity)
                structlog.contextvars.bind_contextvars(caller=identity.subject)
                # In the trailers (errors carry it there too): no extra message before the answer.
                context.set_trailing_metadata((("x-request-id", request_id),))
                if streaming:
                    stream = _RequestStream(request)
                    return await behavior(stream, context)
                reject_unknown_fields(request)
                return await behavior(request, context)
            except asyncio.CancelledError:
                # The client went away or its deadline passed: say so in the logs and metrics.
                remaining = context.time_remaining()
                expired = remaining is not None and remaining <= 0
                code = grpc.StatusCode.DEADLINE_EXCEEDED if expired else grpc.StatusCode.CANCELLED
                raise
            except Exception as exc:
                if isinstance(exc, grpc.aio.AbortError):
                    code = context.code() or grpc.StatusCode.UNKNOWN
                    raise
                error = _as_engage_error(exc)
                if error is None:
                    code = grpc.StatusCode.INTERNAL
                    log.exception("rpc.internal_error")
                    error = EngageError(
                        f"internal error (request id {request_id})", "INTERNAL", [], grpc.StatusCode.INTERNAL
                    )
                code = error.code
                if stream is not None:
                    await stream.drain()
                status = status_of(error)
                await context.abort(
                    error.code,
                    error.message,
                    trailing_metadata=(
                        ("grpc-status-details-bin", status.SerializeToString()),
                        ("x-request-id", request_id),
                    ),
                )
            finally:
                if admitted:
                    self.in_flight -= 1
                elapsed = time.perf_counter() - started
                self._count(short, code, elapsed)
                log.info("rpc", code=code.name, ms=round(elapsed * 1000, 2))
                structlog.contextvars.clear_contextvars()

        return run


class _RequestStream:
    """A client stream as the servicer sees it: each message checked for
    unknown fields as it arrives. When the call fails early, `drain` reads
    what the client is still sending (for a bounded time) before the server
    answers: a server that answers while its client is still sending makes
    the client see INTERNAL instead of the error."""

    DRAIN_SECONDS = 5.0

    def __init__(self, requests: AsyncIterator[Any]):
        self._requests = requests

    def __aiter__(self) -> _RequestStream:
        return self

    async def __anext__(self) -> Any:
        request = await self._requests.__anext__()
        reject_unknown_fields(request)
        return request

    async def drain(self) -> None:
        async def rest() -> None:
            async for _ in self._requests:
                pass

        with contextlib.suppress(Exception):
            await asyncio.wait_for(rest(), self.DRAIN_SECONDS)


Registrar = Callable[[grpc.aio.Server], None]


class Background(Protocol):
    """A part that runs beside the server (a consumer, a view that follows the outbox)."""

    def start(self) -> None: ...

    async def stop(self) -> None: ...


class ServiceApp:
    """A running service: gRPC server, database, NATS link and outbox relay."""

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        register: Registrar,
        service_names: list[str],
        permissions: Mapping[str, str],
        db: Database | None = None,
        background: Sequence[Background] = (),
    ):
        self.settings = settings
        self.register = register
        self.service_names = service_names
        self.permissions = permissions
        self.db = db or Database.of(settings)
        self.link = NatsLink(
            settings.nats_url,
            settings.service_name,
            {settings.nats_stream: ["engage.>"]},
            settings.nats_stream_replicas,
        )
        self.relay = OutboxRelay(
            self.db,
            self.link,
            settings.service_name,
            batch_size=settings.outbox_batch_size,
            poll_seconds=settings.outbox_poll_seconds,
            retention_hours=settings.outbox_retention_hours,
        )
        self.background = list(background)
        self.health = health.aio.HealthServicer()  # type: ignore[attr-defined]
        self.server: grpc.aio.Server | None = None
        self.port = 0
        self._background: list[asyncio.Task[None]] = []
        self._metrics_server: Any = None

    async def start(self) -> int:
        s = self.settings
        verifier = TokenVerifier(s.auth_mode, s.auth_jwks_file, s.auth_issuer, s.auth_audience)
        permissions = {**audit_api.PERMISSIONS, **self.permissions}
        self.interceptor = EngageInterceptor(s.service_name, verifier, permissions, s.max_concurrent_rpcs)
        self.server = grpc.aio.server(
            interceptors=[self.interceptor],
            options=[
                ("grpc.max_receive_message_length", s.max_message_bytes),
                ("grpc.max_send_message_length", s.max_message_bytes),
                ("grpc.keepalive_permit_without_calls", 1),
                ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
            ],
        )
        self.register(self.server)
        audit_pb2_grpc.add_AuditServiceServicer_to_server(audit_api.AuditServicer(self.db), self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            [
                *self.service_names,
                audit_api.SERVICE_NAME,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ],
            self.server,
        )
        self.port = self.server.add_insecure_port(f"{s.grpc_host}:{s.grpc_port}")
        self.link.start()
        self.relay.start()
        for part in self.background:
            part.start()
        await self.server.start()
        # Liveness ("") says the process answers; readiness and each service
        # name also need the database and NATS.
        await self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        # Give NATS a moment so a healthy start reports ready at once; when
        # it is down the service serves anyway and readiness follows later.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.link.ready.wait(), timeout=3.0)
        await self._check_readiness()
        self._background.append(asyncio.create_task(self._readiness_loop(), name="readiness"))
        self._metrics_server = metrics.serve_metrics(s.grpc_host, s.metrics_port)
        log.info("service.started", service=s.service_name, port=self.port, metrics_port=s.metrics_port)
        return self.port

    async def _check_readiness(self) -> None:
        ready = self.link.connected and await self.db.ping()
        status = health_pb2.HealthCheckResponse.SERVING if ready else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in [READINESS, *self.service_names]:
            await self.health.set(name, status)
        metrics.READY.labels(self.settings.service_name).set(1 if ready else 0)

    async def _readiness_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.link.ready.wait(), timeout=1.0)
            await self._check_readiness()
            with contextlib.suppress(Exception):  # the database may be down: readiness says so
                await self.relay.backlog()
            await asyncio.sleep(1.0)

    async def stop(self) -> None:
        """Graceful: NOT_SERVING first, then drain, then stop with grace."""
        log.info("service.stopping", drain_seconds=self.settings.drain_seconds)
        for task in self._background:
            task.cancel()
        await self.health.enter_graceful_shutdown()
        await asyncio.sleep(self.settings.drain_seconds)
        if self.server is not None:
            await self.server.stop(self.settings.grace_seconds)
        for part in self.background:
            await part.stop()
        await self.relay.stop()
        await self.link.close()
        await self.db.dispose()
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
        log.info("service.stopped")

    async def run_until_signal(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        # What is loaded by now (modules, descriptors, mappers) lives as long
        # as the process: keep it out of the collector's full passes, which
        # otherwise walk it again and again under load.
        gc.collect()
        gc.freeze()
        await stop.wait()
        await self.stop()


def setup_logging(settings: ServiceSettings) -> None:
    configure_logging(settings.log_level, settings.log_format)


__all__ = ["EngageInterceptor", "ServiceApp", "code_pb2", "setup_logging", "status_of"]
