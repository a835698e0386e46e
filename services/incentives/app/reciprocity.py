"""Reciprocal pairs: people who mostly recognise each other, flagged for review."""

from __future__ import annotations

from collections import Counter

import sqlalchemy as sa
from sqlmodel import col, select

from services.incentives.domain.fairness import ReciprocalPair, month_bounds, reciprocal_pairs
from services.incentives.store.tables import CreditRow
from services.platform.db import Database


async def reciprocal_pairs_in(db: Database, month: str) -> list[ReciprocalPair]:
    start, end = month_bounds(month, "month")
    async with db.read() as s:
        recipient = col(CreditRow.recipient_id)
        query = (
            select(CreditRow.person_id, recipient, sa.func.count())
            .where(recipient.is_not(None), col(CreditRow.occurred_at) >= start, col(CreditRow.occurred_at) < end)
            .group_by(CreditRow.person_id, recipient)
        )
        given: Counter[tuple[str, str]] = Counter()
        for giver, to, n in (await s.exec(query)).all():
            given[(giver, to or "")] += n
    return reciprocal_pairs(given)
