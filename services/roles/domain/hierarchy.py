"""Trees and chains: org unit parents and people's managers."""

from __future__ import annotations

from collections.abc import Mapping


def in_cycles(parent_of: Mapping[str, str | None]) -> set[str]:
    """Nodes that are part of (or lead only into) a cycle of `parent_of` links."""
    state: dict[str, int] = {}  # 1: on the current walk, 2: known good, 3: known bad
    bad: set[str] = set()
    for start in parent_of:
        walk: list[str] = []
        node: str | None = start
        verdict = 2
        while node is not None and node in parent_of:
            seen = state.get(node)
            if seen == 1:
                verdict = 3
                break
            if seen in (2, 3):
                verdict = seen
                break
            state[node] = 1
            walk.append(node)
            node = parent_of[node]
        for n in walk:
            state[n] = verdict
            if verdict == 3:
                bad.add(n)
    return bad


def would_cycle(node: str, new_parent: str | None, parent_of: Mapping[str, str | None], limit: int = 10_000) -> bool:
    """Whether linking `node` under `new_parent` closes a loop."""
    current = new_parent
    for _ in range(limit):
        if current is None:
            return False
        if current == node:
            return True
        current = parent_of.get(current)
    return True


def paths(parent_of: Mapping[str, str | None]) -> dict[str, str]:
    """Materialised paths `/root/child/.../node/` for every node not in a cycle."""
    result: dict[str, str] = {}

    def path_of(node: str) -> str:
        chain = []
        current: str | None = node
        while current is not None and current not in result:
            chain.append(current)
            current = parent_of.get(current)
        prefix = result[current] if current is not None else "/"
        for n in reversed(chain):
            prefix = f"{prefix}{n}/"
            result[n] = prefix
        return result[node]

    for node in parent_of:
        path_of(node)
    return result
