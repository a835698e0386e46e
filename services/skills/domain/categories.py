"""Skill categories form a directed acyclic graph: several parents, no cycles."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def cycle_through(parents_of: Mapping[str, Iterable[str]], category: str, new_parents: Iterable[str]) -> list[str]:
    """The cycle that giving `category` the parents `new_parents` would close,
    as a path `[category, parent, ..., category]`; empty if there is none.

    `parents_of` is the graph as stored (child -> parents); the category's own
    stored parents are ignored, since they are being replaced.
    """
    for start in new_parents:
        if start == category:
            return [category, category]
        # Depth-first search upwards from the new parent, remembering the path.
        stack: list[tuple[str, list[str]]] = [(start, [category, start])]
        seen: set[str] = set()
        while stack:
            node, path = stack.pop()
            if node in seen:
                continue
            seen.add(node)
            for parent in parents_of.get(node, ()):
                if parent == category:
                    return [*path, category]
                if parent not in seen:
                    stack.append((parent, [*path, parent]))
    return []


def descendants(children_of: Mapping[str, Iterable[str]], root: str) -> set[str]:
    """Every category below `root` at any depth (not `root` itself)."""
    found: set[str] = set()
    stack = list(children_of.get(root, ()))
    while stack:
        node = stack.pop()
        if node not in found:
            found.add(node)
            stack.extend(children_of.get(node, ()))
    return found
