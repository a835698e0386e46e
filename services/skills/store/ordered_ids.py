"""Identifiers that sort by creation time (UUID version 7, RFC 9562).

Assessments and events are keyed by their ids in B-tree indexes. Random ids
(version 4) land on a random page of the index each, so a bulk import of
millions of rows reads and rewrites pages all over an index larger than the
cache; ids that start with the time land next to the ids made just before
them, and the index grows at its end.

The random bits come from a generator seeded from the OS once (and again in a
forked child), not from os.urandom per id: an import makes two ids per row and
a system call each cost more than the rest of the id. Ids need to be unique,
not unguessable; 74 random bits per millisecond keep them unique.
"""

from __future__ import annotations

import os
import random
import time

_RANDOM_BITS = 74  # 12 bits of rand_a and 62 of rand_b
_random = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _random.seed(os.urandom(32)))


def uuid7_int() -> int:
    """48 bits of Unix milliseconds, the version, 74 random bits around the variant."""
    millis = time.time_ns() // 1_000_000
    rand = _random.getrandbits(_RANDOM_BITS)
    rand_a, rand_b = rand >> 62, rand & ((1 << 62) - 1)
    return (millis << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b


def ordered_hex() -> str:
    """32 hex digits, as the assessments' ids have always been written."""
    return f"{uuid7_int():032x}"


def ordered_uuid() -> str:
    """The canonical 8-4-4-4-12 form, as CloudEvents ids are written."""
    h = f"{uuid7_int():032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
