"""A steady load: operations called at a fixed rate each, their latencies kept per time window.

Pacing waits until the next slot of an operation's rate (the load's own
schedule, not a wait for a condition); a slot missed because a call was slow
is not made up, so a slow system is not hammered harder.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc
import httpx


@dataclass
class Window:
    started: float
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    rss_kb: dict[str, int] = field(default_factory=dict)

    def p(self, op: str, q: float) -> float:
        values = sorted(self.latencies.get(op, []))
        if not values:
            return float("nan")
        return values[min(len(values) - 1, int(q * len(values)))]


@dataclass
class SteadyLoad:
    until: float
    windows: list[Window] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    calls: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.windows.append(Window(time.monotonic()))

    def next_window(self, rss_kb: dict[str, int]) -> None:
        self.windows[-1].rss_kb = rss_kb
        self.windows.append(Window(time.monotonic()))

    async def paced(self, name: str, per_second: float, op: Callable[[], Awaitable[object]]) -> None:
        interval = 1.0 / per_second
        slot = time.monotonic()
        while time.monotonic() < self.until:
            started = time.monotonic()
            try:
                await op()
                self.windows[-1].latencies[name].append(time.monotonic() - started)
                self.calls[name] += 1
            except grpc.aio.AioRpcError as exc:
                self.errors[f"{name}: {exc.code().name} {exc.details()}"[:200]] += 1
            except httpx.HTTPError as exc:
                self.errors[f"{name}: {type(exc).__name__} {exc}"[:200]] += 1
            slot = max(slot + interval, time.monotonic())
            await asyncio.sleep(slot - time.monotonic())

    def rows(self, ops: list[str], processes: list[str]) -> list[str]:
        """One line a window: RSS of each process (MiB) and p50/p95 of each operation (ms)."""
        head = ["t(s)", *(f"{p} MiB" for p in processes), *(f"{op} p50/p95 ms" for op in ops)]
        lines = [" | ".join(head)]
        t0 = self.windows[0].started
        for w in self.windows[:-1]:
            cells = [f"{w.started - t0:.0f}", *(str(w.rss_kb.get(p, 0) // 1024) for p in processes)]
            cells += [f"{w.p(op, 0.5) * 1000:.1f}/{w.p(op, 0.95) * 1000:.1f}" for op in ops]
            lines.append(" | ".join(cells))
        return lines


def median(values: list[float]) -> float:
    kept = [v for v in values if v == v]  # drop NaN (a window without that operation)
    return statistics.median(kept) if kept else float("nan")
