"""One NATS connection per process, kept alive; stream provisioning."""

from __future__ import annotations

import asyncio
import contextlib

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from services.platform.log import get_logger

log = get_logger(__name__)

DUPLICATE_WINDOW_SECONDS = 600.0


class NatsLink:
    """Connects in the background and keeps reconnecting, so a service starts
    and serves while NATS is down; events wait in the outbox meanwhile."""

    def __init__(self, url: str, client_name: str, streams: dict[str, list[str]], replicas: int = 1):
        self.url = url
        self.client_name = client_name
        self.streams = streams
        self.replicas = replicas
        self.nc: Client | None = None
        self.js: JetStreamContext | None = None
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    def start(self) -> None:
        self._task = asyncio.create_task(self._connect_forever(), name="nats-connect")

    async def _connect_forever(self) -> None:
        delay = 0.2
        while True:
            try:
                self.nc = await nats.connect(
                    self.url,
                    name=self.client_name,
                    connect_timeout=2,
                    reconnect_time_wait=0.5,
                    max_reconnect_attempts=-1,
                    allow_reconnect=True,
                    error_cb=self._on_error,
                )
                self.js = self.nc.jetstream(timeout=5)
                for name, subjects in self.streams.items():
                    await ensure_stream(self.js, name, subjects, self.replicas)
                self.ready.set()
                log.info("nats.connected", url=self.url)
                return
            except Exception as exc:  # broker down or not yet up: try again
                log.warning("nats.connect_failed", url=self.url, error=str(exc), retry_in=delay)
                if self.nc is not None:
                    with contextlib.suppress(Exception):
                        await self.nc.close()
                    self.nc = None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _on_error(self, exc: Exception) -> None:
        log.debug("nats.error", error=str(exc))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.nc.drain(), timeout=5)
            with contextlib.suppress(Exception):
                await self.nc.close()
        self.ready.clear()


async def ensure_stream(js: JetStreamContext, name: str, subjects: list[str], replicas: int = 1) -> None:
    """Creates the stream, or brings an existing one to this configuration."""
    config = StreamConfig(
        name=name,
        subjects=subjects,
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        num_replicas=replicas,
        duplicate_window=DUPLICATE_WINDOW_SECONDS,
    )
    try:
        info = await js.stream_info(name)
    except NotFoundError:
        await js.add_stream(config)
        log.info("nats.stream_created", stream=name, subjects=subjects)
        return
    if (
        sorted(info.config.subjects or []) != sorted(subjects)
        or info.config.duplicate_window != DUPLICATE_WINDOW_SECONDS
    ):
        await js.update_stream(config)
        log.info("nats.stream_updated", stream=name, subjects=subjects)
