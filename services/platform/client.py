"""gRPC client channels for calls between services: every call has a deadline.

A unary call made without `timeout=` gets the channel's default deadline, and
the current request id travels along as `x-request-id` so logs line up
across services. Streaming calls must pass `timeout=` themselves: grpc.aio
client interceptors on client-streaming calls do not end at the deadline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import structlog

DEFAULT_DEADLINE_SECONDS = 5.0


class _Deadlines(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self, seconds: float):
        self.seconds = seconds

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        if request_id and "x-request-id" not in metadata:
            metadata.add("x-request-id", str(request_id))
        return grpc.aio.ClientCallDetails(
            method=details.method,
            timeout=details.timeout if details.timeout is not None else self.seconds,
            metadata=metadata,
            credentials=details.credentials,
            wait_for_ready=details.wait_for_ready,
        )

    async def intercept_unary_unary(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)

    async def intercept_stream_unary(
        self, continuation: Callable[..., Any], details: Any, request_iterator: Any
    ) -> Any:
        return await continuation(self._details(details), request_iterator)


def channel(
    target: str, *, default_deadline: float = DEFAULT_DEADLINE_SECONDS, max_message_bytes: int = 32 << 20
) -> grpc.aio.Channel:
    """An insecure channel (TLS terminates in the mesh or ingress) with default deadlines."""
    return grpc.aio.insecure_channel(
        target,
        interceptors=[_Deadlines(default_deadline)],  # type: ignore[list-item]
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.keepalive_time_ms", 30_000),
            # With a headless Kubernetes service (dns:///name:port) calls spread over all replicas.
            ("grpc.lb_policy_name", "round_robin"),
        ],
    )
