"""Behaviour catalogue use cases, and the idempotent seed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message
from sqlmodel import col, select

from services.incentives.domain.catalogue import SEED
from services.incentives.domain.model import BehaviourCategory
from services.incentives.events.outgoing import behaviour_type_event
from services.incentives.store.tables import BehaviourTypeRow
from services.platform.db import Database, utcnow
from services.platform.errors import AlreadyExists
from services.platform.lookups import get_or_404, recall_created
from services.platform.resources import Page, check_etag, remember_request


@dataclass
class BehaviourTypeFields:
    display_name: str
    description: str
    category: BehaviourCategory
    unit: str
    evidence_source: str
    credits_provider: bool
    peer_recognition: bool = False
    recognition_budget: int = 0


async def create_behaviour_type(
    db: Database, type_id: str, fields: BehaviourTypeFields, request_id: str, request: Message
) -> BehaviourTypeRow:
    async with db.write() as uow:
        s = uow.session
        if earlier := await recall_created(s, request_id, "CreateBehaviourType", request, BehaviourTypeRow):
            return earlier
        if await s.get(BehaviourTypeRow, type_id) is not None:
            raise AlreadyExists(f"behaviourTypes/{type_id} already exists")
        now = utcnow()
        row = BehaviourTypeRow(
            id=type_id,
            display_name=fields.display_name,
            description=fields.description,
            category=fields.category.value,
            unit=fields.unit,
            evidence_source=fields.evidence_source,
            credits_provider=fields.credits_provider,
            peer_recognition=fields.peer_recognition,
            recognition_budget=fields.recognition_budget,
            create_time=now,
            update_time=now,
        )
        s.add(row)
        remember_request(s, request_id, "CreateBehaviourType", request, f"behaviourTypes/{type_id}")
        uow.emit(behaviour_type_event("created", row))
        return row


async def get_behaviour_type(db: Database, type_id: str) -> BehaviourTypeRow:
    async with db.read() as s:
        return await get_or_404(s, BehaviourTypeRow, type_id, f"behaviourTypes/{type_id}")


async def list_behaviour_types(
    db: Database, category: BehaviourCategory | None, page: Page
) -> Sequence[BehaviourTypeRow]:
    async with db.read() as s:
        query = select(BehaviourTypeRow).order_by(col(BehaviourTypeRow.id)).limit(page.size)
        if category is not None:
            query = query.where(BehaviourTypeRow.category == category.value)
        if page.after is not None:
            query = query.where(col(BehaviourTypeRow.id) > page.after)
        return (await s.exec(query)).all()


async def update_behaviour_type(db: Database, type_id: str, changes: dict[str, Any], etag: str) -> BehaviourTypeRow:
    async with db.write() as uow:
        s = uow.session
        row = await get_or_404(s, BehaviourTypeRow, type_id, f"behaviourTypes/{type_id}", lock=True)
        check_etag(etag, f"behaviourTypes/{type_id}", row.revision)
        for key, value in changes.items():
            setattr(row, key, value.value if isinstance(value, BehaviourCategory) else value)
        row.revision += 1
        row.update_time = utcnow()
        s.add(row)
        uow.emit(behaviour_type_event("updated", row))
        return row


async def seed_catalogue(db: Database) -> int:
    """Adds the seed behaviours that are missing; returns how many were added."""
    async with db.write() as uow:
        s = uow.session
        present = set((await s.exec(select(BehaviourTypeRow.id))).all())
        now = utcnow()
        added = 0
        for d in SEED:
            if d.id in present:
                continue
            row = BehaviourTypeRow(
                id=d.id,
                display_name=d.display_name,
                description=d.description,
                category=d.category.value,
                unit=d.unit,
                evidence_source=d.evidence_source,
                credits_provider=d.credits_provider,
                peer_recognition=d.peer_recognition,
                recognition_budget=d.recognition_budget,
                create_time=now,
                update_time=now,
            )
            s.add(row)
            uow.emit(behaviour_type_event("created", row))
            added += 1
        return added
