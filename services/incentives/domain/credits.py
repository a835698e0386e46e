"""Credit splits: how an event crediting several people is shared."""

from __future__ import annotations

from collections.abc import Sequence

from services.incentives.domain.model import CreditSplit


def normalised_shares(given: Sequence[float]) -> list[float]:
    """Shares as sent, made to add up to 1. All unset (0): equal shares.

    A mix of set and unset shares gives the unset ones what the set ones
    leave, equally (nothing if they already take it all)."""
    n = len(given)
    if n == 0:
        return []
    if all(s == 0 for s in given):
        return [1.0 / n] * n
    taken = sum(s for s in given if s > 0)
    unset = sum(1 for s in given if s == 0)
    rest = max(0.0, 1.0 - taken) / unset if unset else 0.0
    raw = [s if s > 0 else rest for s in given]
    total = sum(raw)
    return [s / total for s in raw]


def applied_share(stored_share: float, split: CreditSplit) -> float:
    """The share a scheme applies: the normalised share, or 1 for overlay credit."""
    return 1.0 if split == CreditSplit.OVERLAY else stored_share
