"""One row of the fault suite's table: a scenario, its load and faults, and the event counts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

COLUMNS = ("scenario", "load", "faults injected", "expected", "delivered", "duplicated", "lost", "spurious", "result")


@dataclass
class Scenario:
    name: str
    load: str = ""
    faults: str = ""
    expected: int | None = None
    delivered: int | None = None
    duplicated: int | None = None
    lost: int | None = None
    spurious: int | None = None  # events of changes that never committed
    result: str = "not run"
    details: list[str] = field(default_factory=list)  # printed under the table (e.g. the soak's samples)

    def count(self, expected: Iterable[str], delivered: Iterable[str]) -> None:
        """Fills in the event columns from the keys (event ids or subjects) expected and found.

        Accumulates, so a scenario with several phases may call it once per phase.
        """
        want = Counter(expected)
        got = Counter(delivered)
        self.expected = (self.expected or 0) + sum(want.values())
        self.delivered = (self.delivered or 0) + sum(got.values())
        self.duplicated = (self.duplicated or 0) + sum(
            n - max(want[k], 1) for k, n in got.items() if n > max(want[k], 1)
        )
        self.lost = (self.lost or 0) + sum(n - got[k] for k, n in want.items() if got[k] < n)
        self.spurious = (self.spurious or 0) + sum(1 for k in got if k not in want)

    def cells(self) -> list[str]:
        return [
            self.name,
            self.load,
            self.faults,
            *("-" if v is None else str(v) for v in (self.expected, self.delivered, self.duplicated, self.lost)),
            "-" if self.spurious is None else str(self.spurious),
            self.result,
        ]


def format_table(rows: list[Scenario]) -> list[str]:
    cells = [list(COLUMNS), *(row.cells() for row in rows)]
    widths = [max(len(r[i]) for r in cells) for i in range(len(COLUMNS))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    for row in rows:
        if row.details:
            lines += ["", f"{row.name}:", *(f"  {line}" for line in row.details)]
    return lines
