"""Bulk directory import from an HR system.

Rows are upserted by HR id, in any order: parents and managers are resolved
against the whole import plus what is stored. A row whose `hr_version` is not
newer than the stored one but differs from it is stale and rejected; a row
equal to what is stored is unchanged and emits nothing, so an import can run
again safely. Everything accepted is written in one transaction, with its
events, or nothing is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import select

from services.platform.db import Database, utcnow
from services.roles.app.assignments import offboard
from services.roles.domain.hierarchy import in_cycles, paths
from services.roles.domain.model import OrgUnitKind, PersonStatus
from services.roles.events.outgoing import org_unit_event, person_event
from services.roles.store.tables import OrgUnitRow, PersonRow


class RowOutcome(StrEnum):
    CREATED = "CREATED"
    UPDATED = "UPDATED"
    UNCHANGED = "UNCHANGED"
    REJECTED = "REJECTED"


@dataclass
class RowResult:
    row: int
    name: str
    outcome: RowOutcome = RowOutcome.UNCHANGED
    reason: str = ""
    field: str = ""


@dataclass
class UnitIn:
    row: int
    id: str
    display_name: str
    kind: OrgUnitKind
    parent_id: str | None
    manager_id: str | None
    hr_version: int


@dataclass
class PersonIn:
    row: int
    id: str
    display_name: str
    email: str
    org_unit_id: str
    manager_id: str | None
    management_level: int
    status: PersonStatus
    hr_version: int


@dataclass
class ImportBatch:
    results: list[RowResult] = field(default_factory=list)
    units: list[UnitIn] = field(default_factory=list)
    people: list[PersonIn] = field(default_factory=list)

    def reject(self, row: int, name: str, reason: str, field: str = "") -> None:
        self.results.append(RowResult(row, name, RowOutcome.REJECTED, reason, field))


@dataclass(slots=True)
class PersonWrite:
    """A person as the import writes them: plain values, not an ORM object
    (building one per row cost more than the database's work)."""

    id: str
    display_name: str
    email: str
    org_unit_id: str
    manager_id: str | None
    management_level: int
    status: str
    hr_version: int
    revision: int
    update_time: datetime
    create_time: datetime | None  # None: an update, which keeps the stored one

    def values(self) -> dict[str, Any]:
        data = {f: getattr(self, f) for f in self.__slots__}  # type: ignore[attr-defined]
        if self.create_time is None:
            del data["create_time"]
        return data


_UNIT_FIELDS = ("display_name", "kind", "parent_id", "manager_id", "hr_version")
_PERSON_FIELDS = ("display_name", "email", "org_unit_id", "manager_id", "management_level", "status", "hr_version")


def _comparable(value: Any) -> Any:
    return value.value if isinstance(value, StrEnum) else value


def _newest(items: list[Any], batch: ImportBatch, collection: str) -> dict[str, Any]:
    """One row per id: the one with the highest hr_version (the later row on a tie)."""
    chosen: dict[str, Any] = {}
    for item in items:
        other = chosen.get(item.id)
        if other is None or item.hr_version >= other.hr_version:
            if other is not None:
                batch.reject(other.row, f"{collection}/{other.id}", f"superseded by row {item.row} of this import")
            chosen[item.id] = item
        else:
            batch.reject(item.row, f"{collection}/{item.id}", f"superseded by row {other.row} of this import")
    return chosen


def _classify(
    incoming: dict[str, Any], stored: dict[str, Any], fields: tuple[str, ...], batch: ImportBatch, collection: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Splits rows into new and changed ones; unchanged and stale rows get their result here."""
    new, changed = {}, {}
    for key, item in incoming.items():
        current = stored.get(key)
        if current is None:
            new[key] = item
            continue
        same = all(_comparable(getattr(item, f)) == current[f] for f in fields)
        if same:
            batch.results.append(RowResult(item.row, f"{collection}/{key}", RowOutcome.UNCHANGED))
        elif item.hr_version and item.hr_version <= current["hr_version"]:
            batch.reject(
                item.row,
                f"{collection}/{key}",
                f"stale: hr_version {item.hr_version} is not newer than the stored {current['hr_version']}",
                f"{'org_unit' if collection == 'orgUnits' else 'person'}.hr_version",
            )
        else:
            changed[key] = item
    return new, changed


async def apply_import(db: Database, batch: ImportBatch) -> list[RowResult]:
    async with db.write() as uow:
        s = uow.session
        now = utcnow()
        unit_cols = [
            OrgUnitRow.id,
            OrgUnitRow.path,
            OrgUnitRow.revision,
            *(getattr(OrgUnitRow, f) for f in _UNIT_FIELDS),
        ]
        stored_units = {r.id: r._asdict() for r in (await s.execute(select(*unit_cols))).all()}
        person_cols = [PersonRow.id, PersonRow.revision, *(getattr(PersonRow, f) for f in _PERSON_FIELDS)]
        stored_people = {r.id: r._asdict() for r in (await s.execute(select(*person_cols))).all()}

        # ---- org units
        units = _newest(batch.units, batch, "orgUnits")
        new_units, changed_units = _classify(units, stored_units, _UNIT_FIELDS, batch, "orgUnits")
        accepted_units = {**new_units, **changed_units}
        parent_of: dict[str, str | None] = {k: v["parent_id"] for k, v in stored_units.items()}
        while True:  # a rejected unit can orphan the units below it
            proposed = {**parent_of, **{k: u.parent_id for k, u in accepted_units.items()}}
            bad = {k for k in in_cycles(proposed) if k in accepted_units}
            reasons = {k: ("parent_id", "the parent chain makes a cycle") for k in bad}
            for k, u in accepted_units.items():
                if u.parent_id and u.parent_id not in proposed:
                    reasons[k] = ("parent", f"parent orgUnits/{u.parent_id} does not exist")
            if not reasons:
                break
            for k, (fld, why) in reasons.items():
                batch.reject(accepted_units.pop(k).row, f"orgUnits/{k}", why, f"org_unit.{fld}")
        parent_of = {**parent_of, **{k: u.parent_id for k, u in accepted_units.items()}}
        unit_paths = paths(parent_of)

        # ---- people
        people = _newest(batch.people, batch, "people")
        new_people, changed_people = _classify(people, stored_people, _PERSON_FIELDS, batch, "people")
        accepted_people = {**new_people, **changed_people}
        manager_of: dict[str, str | None] = {k: v["manager_id"] for k, v in stored_people.items()}
        while True:
            proposed = {**manager_of, **{k: p.manager_id for k, p in accepted_people.items()}}
            reasons = {
                k: ("manager", "the manager chain makes a cycle") for k in in_cycles(proposed) if k in accepted_people
            }
            for k, p in accepted_people.items():
                if p.org_unit_id not in unit_paths:
                    reasons[k] = ("org_unit", f"org unit orgUnits/{p.org_unit_id} does not exist")
                elif p.manager_id and p.manager_id not in proposed:
                    reasons[k] = ("manager", f"manager people/{p.manager_id} does not exist")
            if not reasons:
                break
            for k, (fld, why) in reasons.items():
                batch.reject(accepted_people.pop(k).row, f"people/{k}", why, f"person.{fld}")

        # Unit managers must exist once the people are in.
        known_people = set(stored_people) | set(accepted_people)
        for k in [k for k, u in accepted_units.items() if u.manager_id and u.manager_id not in known_people]:
            u = accepted_units.pop(k)
            batch.reject(u.row, f"orgUnits/{k}", f"manager people/{u.manager_id} does not exist", "org_unit.manager")
            if k not in stored_units:  # its children and people may now hang in the air
                raise_orphans = [p for p in accepted_people.values() if p.org_unit_id == k]
                for p in raise_orphans:
                    accepted_people.pop(p.id)
                    batch.reject(p.row, f"people/{p.id}", f"org unit orgUnits/{k} was rejected", "person.org_unit")

        # ---- write units (parents before children: inserts in path order)
        unit_rows = []
        for k in sorted(accepted_units, key=lambda k: unit_paths[k].count("/")):
            u = accepted_units[k]
            values = {f: _comparable(getattr(u, f)) for f in _UNIT_FIELDS}
            created = k not in stored_units
            revision = 1 if created else stored_units[k]["revision"] + 1
            # Updates keep the stored create_time (not loaded: left out of the UPDATE).
            unit = OrgUnitRow(id=k, path=unit_paths[k], revision=revision, update_time=now, **values)
            unit.create_time = now if created else None  # type: ignore[assignment]
            unit_rows.append((unit, created))
            batch.results.append(
                RowResult(u.row, f"orgUnits/{k}", RowOutcome.CREATED if created else RowOutcome.UPDATED)
            )
        # Paths of stored units below a moved unit change too.
        moved_paths = {
            k: p
            for k, p in unit_paths.items()
            if k in stored_units and k not in accepted_units and stored_units[k]["path"] != p
        }
        await _insert(s, OrgUnitRow, [_values(r) for r, c in unit_rows if c])
        await _update(s, OrgUnitRow, [_values(r, "create_time") for r, c in unit_rows if not c])
        if moved_paths:
            await _update(s, OrgUnitRow, [{"id": k, "path": p} for k, p in moved_paths.items()])

        # ---- write people
        person_rows = []
        terminated = []
        for k, p in accepted_people.items():
            created = k not in stored_people
            person = PersonWrite(
                k,
                p.display_name,
                p.email,
                p.org_unit_id,
                p.manager_id,
                p.management_level,
                p.status.value,
                p.hr_version,
                revision=1 if created else stored_people[k]["revision"] + 1,
                update_time=now,
                create_time=now if created else None,
            )
            person_rows.append((person, created))
            was = stored_people.get(k, {}).get("status")
            if p.status == PersonStatus.TERMINATED and was != PersonStatus.TERMINATED.value:
                terminated.append(k)
            batch.results.append(RowResult(p.row, f"people/{k}", RowOutcome.CREATED if created else RowOutcome.UPDATED))
        await _insert(s, PersonRow, [r.values() for r, c in person_rows if c])
        await _update(s, PersonRow, [r.values() for r, c in person_rows if not c])

        events = [org_unit_event("created" if c else "updated", r) for r, c in unit_rows]
        for r, c in person_rows:
            verb = "created" if c else ("terminated" if r.id in terminated else "updated")
            events.append(person_event(verb, r))
        await uow.emit_many(events)
        if terminated:
            await offboard(uow, terminated, now, "person left the company (HR import)")
    return sorted(batch.results, key=lambda r: r.row)


def _values(row: Any, *without: str) -> dict[str, Any]:
    data = row.model_dump()
    for key in without:
        data.pop(key, None)
    return data


async def _insert(s: Any, table: Any, rows: list[dict[str, Any]]) -> None:
    """Multi-row INSERTs of plain values (Core: the ORM's bulk path costs more per row)."""
    conn = await s.connection()
    for start in range(0, len(rows), 5000):
        await conn.execute(table.__table__.insert(), rows[start : start + 5000])


async def _update(s: Any, table: Any, rows: list[dict[str, Any]]) -> None:
    """Bulk UPDATE by primary key (executemany)."""
    if not rows:
        return
    for start in range(0, len(rows), 5000):
        await s.execute(sa.update(table), rows[start : start + 5000])
