"""The load generator: an asyncio gRPC client in a process of its own.

`LoadWorker` starts one process with the "spawn" method (grpcio is not
fork-safe) and sends it jobs over a pipe; each job runs in a fresh event loop
with a fresh channel and returns a summary. Every call carries a deadline.

Jobs:
- `Closed`: a fixed number of calls by `concurrency` callers, each sending
  its next call when the previous answer arrives, after a warm-up;
- `Paced`: calls started at a fixed rate whatever the answers (open loop);
- `Import`: one ImportDirectory of a generated directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import multiprocessing
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import grpc
from engage.roles.v1 import (
    assignments_pb2_grpc,
    decisions_pb2_grpc,
    directory_pb2,
    directory_pb2_grpc,
    roles_pb2_grpc,
)

from bench import dataset, echo

CALL_TIMEOUT = 10.0
CONNECT_TIMEOUT = 30.0
IMPORT_TIMEOUT = 300.0
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
]
ECHO_PAYLOAD = b"engage-bench-" + b"x" * 51  # 64 bytes

CALLS = ("echo", "CheckDecision", "GetRole", "CreateAssignment")

Send = Callable[[Any], Awaitable[Any]]


@dataclass(frozen=True)
class Closed:
    call: str  # one of CALLS
    target: str
    concurrency: int
    count: int
    warmup: int
    offset: int = 0  # index of the first request; writes use each index once


@dataclass(frozen=True)
class Paced:
    call: str
    target: str
    rate: float  # calls per second
    seconds: float
    offset: int = 0


@dataclass(frozen=True)
class Import:
    target: str
    people: int
    units: int


@dataclass(frozen=True)
class Latency:
    calls: int
    errors: int
    seconds: float  # wall time of the measured calls
    p50_ms: float
    p99_ms: float
    first_error: str = ""

    @property
    def rps(self) -> float:
        return self.calls / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class ImportRun:
    seconds: float
    rows: int
    created: int
    updated: int
    unchanged: int
    rejected: int
    first_rejection: str = ""


Job = Closed | Paced | Import
Result = Latency | ImportRun


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of sorted values (0 for none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


async def connect(channel: grpc.aio.Channel, target: str) -> None:
    """Connects before the clock starts."""
    try:
        await asyncio.wait_for(channel.channel_ready(), timeout=CONNECT_TIMEOUT)
    except TimeoutError:
        raise RuntimeError(f"no connection to {target} within {CONNECT_TIMEOUT:.0f} s") from None


def _sender(call: str, channel: grpc.aio.Channel) -> tuple[Send, Callable[[int], Any]]:
    """The RPC to call and the request builder (request index -> message)."""
    if call == "echo":
        rpc = channel.unary_unary(echo.METHOD, request_serializer=echo.raw, response_deserializer=echo.raw)
        return (lambda r: rpc(r, timeout=CALL_TIMEOUT)), (lambda _i: ECHO_PAYLOAD)
    if call == "CheckDecision":
        decisions = decisions_pb2_grpc.DecisionServiceStub(channel)
        return (lambda r: decisions.CheckDecision(r, timeout=CALL_TIMEOUT)), dataset.check_decision
    if call == "GetRole":
        roles = roles_pb2_grpc.RoleServiceStub(channel)
        return (lambda r: roles.GetRole(r, timeout=CALL_TIMEOUT)), dataset.get_role
    if call == "CreateAssignment":
        assignments = assignments_pb2_grpc.AssignmentServiceStub(channel)
        return (lambda r: assignments.CreateAssignment(r, timeout=CALL_TIMEOUT)), dataset.create_assignment
    raise ValueError(f"unknown call {call!r}; known: {', '.join(CALLS)}")


class _Tally:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors = 0
        self.first_error = ""

    async def timed(self, send: Send, request: Any) -> None:
        started = time.perf_counter()
        try:
            await send(request)
        except grpc.aio.AioRpcError as exc:
            self.errors += 1
            self.first_error = self.first_error or f"{exc.code().name}: {exc.details()}"
            return
        self.latencies.append(time.perf_counter() - started)

    def summary(self, seconds: float) -> Latency:
        ordered = sorted(self.latencies)
        return Latency(
            calls=len(ordered),
            errors=self.errors,
            seconds=seconds,
            p50_ms=percentile(ordered, 50) * 1000,
            p99_ms=percentile(ordered, 99) * 1000,
            first_error=self.first_error,
        )


async def _closed_loop(send: Send, requests: list[Any], concurrency: int) -> Latency:
    tally = _Tally()
    pending = iter(requests)

    async def caller() -> None:
        for request in pending:  # one shared iterator: each request is sent once
            await tally.timed(send, request)

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return tally.summary(time.perf_counter() - started)


async def run_closed(job: Closed) -> Latency:
    async with grpc.aio.insecure_channel(job.target, options=CHANNEL_OPTIONS) as channel:
        await connect(channel, job.target)
        send, build = _sender(job.call, channel)
        warmup = [build(job.offset + i) for i in range(job.warmup)]
        measured = [build(job.offset + job.warmup + i) for i in range(job.count)]
        await _closed_loop(send, warmup, job.concurrency)
        return await _closed_loop(send, measured, job.concurrency)


async def run_paced(job: Paced) -> Latency:
    count = round(job.rate * job.seconds)
    async with grpc.aio.insecure_channel(job.target, options=CHANNEL_OPTIONS) as channel:
        await connect(channel, job.target)
        send, build = _sender(job.call, channel)
        requests = [build(job.offset + i) for i in range(count)]
        tally = _Tally()
        tasks = []
        started = time.perf_counter()
        for i, request in enumerate(requests):
            delay = started + i / job.rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(tally.timed(send, request)))
        await asyncio.gather(*tasks)
        return tally.summary(time.perf_counter() - started)


async def _import_once(stub: directory_pb2_grpc.DirectoryServiceStub, rows: list[Any]) -> ImportRun:
    started = time.perf_counter()
    reply: directory_pb2.ImportDirectoryResponse = await stub.ImportDirectory(iter(rows), timeout=IMPORT_TIMEOUT)
    seconds = time.perf_counter() - started
    rejected = [r for r in reply.results if r.outcome == directory_pb2.ImportRowResult.OUTCOME_REJECTED]
    return ImportRun(
        seconds=seconds,
        rows=len(rows),
        created=reply.created_count,
        updated=reply.updated_count,
        unchanged=reply.unchanged_count,
        rejected=reply.rejected_count,
        first_rejection=f"{rejected[0].name}: {rejected[0].reason}" if rejected else "",
    )


@functools.lru_cache(maxsize=1)
def _import_rows(people: int, units: int) -> list[directory_pb2.ImportDirectoryRequest]:
    return dataset.import_rows(people, units)


async def run_import(job: Import) -> ImportRun:
    rows = _import_rows(job.people, job.units)  # built (once) before the clock starts
    async with grpc.aio.insecure_channel(job.target, options=CHANNEL_OPTIONS) as channel:
        await connect(channel, job.target)
        return await _import_once(directory_pb2_grpc.DirectoryServiceStub(channel), rows)


async def run_job(job: Job) -> Result:
    if isinstance(job, Closed):
        return await run_closed(job)
    if isinstance(job, Paced):
        return await run_paced(job)
    return await run_import(job)


@dataclass(frozen=True)
class _Failure:
    error: str


def _worker_main(conn: Connection) -> None:
    """Body of the worker process: run jobs until told to stop (None)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        try:
            conn.send(asyncio.run(run_job(job)))
        except Exception as exc:
            conn.send(_Failure(f"{type(exc).__name__}: {exc}"))


class LoadWorker:
    """The client process; use as a context manager so it always ends.

    A job that overruns its timeout or kills the process costs a new process,
    so the next job starts clean."""

    def __init__(self) -> None:
        self._context = multiprocessing.get_context("spawn")
        self._start()

    def _start(self) -> None:
        self._conn, child_conn = self._context.Pipe()
        self._process = self._context.Process(target=_worker_main, args=(child_conn,), name="bench-load", daemon=True)
        self._process.start()
        child_conn.close()

    def run(self, job: Job, timeout: float) -> Result:
        """Runs a job and waits for its result."""
        deadline = self._send(job, timeout)
        while not self._conn.poll(0.2):
            self._check(job, deadline)
        return self._receive(job)

    async def run_async(self, job: Job, timeout: float) -> Result:
        """`run` for a caller with an event loop of its own to keep going."""
        deadline = self._send(job, timeout)
        while not self._conn.poll():
            self._check(job, deadline)
            await asyncio.sleep(0.02)
        return self._receive(job)

    def _send(self, job: Job, timeout: float) -> float:
        self._conn.send(job)
        return time.monotonic() + timeout

    def _check(self, job: Job, deadline: float) -> None:
        if self._process.is_alive() and time.monotonic() <= deadline:
            return
        why = "timed out" if self._process.is_alive() else f"died (exit code {self._process.exitcode})"
        self.close()
        self._start()
        raise RuntimeError(f"the load worker {why} running {job}")

    def _receive(self, job: Job) -> Result:
        result = self._conn.recv()
        if isinstance(result, _Failure):
            raise RuntimeError(f"{job} failed: {result.error}")
        return result  # type: ignore[no-any-return]

    def close(self) -> None:
        if self._process.is_alive():
            with contextlib.suppress(OSError):
                self._conn.send(None)
            self._process.join(5)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(5)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._conn.close()

    def __enter__(self) -> LoadWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
