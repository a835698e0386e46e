"""DirectoryService: org units, people and the HR import."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from engage.roles.v1 import directory_pb2, directory_pb2_grpc
from google.protobuf import empty_pb2

from services.platform.db import Database
from services.platform.errors import EngageError, InvalidArgument, invalid
from services.platform.resources import check_id, mask_paths, page_of, parse_name, required_text
from services.roles import messages
from services.roles.app import directory as uc
from services.roles.app.importer import ImportBatch, PersonIn, UnitIn, apply_import
from services.roles.domain.model import PersonStatus
from services.roles.store.decision_view import DecisionView

_UNIT_MASK = {"display_name": "display_name", "kind": "kind", "parent": "parent_id", "manager": "manager_id"}
_PERSON_MASK = {
    "display_name": "display_name",
    "email": "email",
    "org_unit": "org_unit_id",
    "manager": "manager_id",
    "management_level": "management_level",
    "status": "status",
}


def _unit_fields(unit: directory_pb2.OrgUnit, prefix: str = "org_unit") -> uc.OrgUnitFields:
    return uc.OrgUnitFields(
        display_name=required_text(unit.display_name, f"{prefix}.display_name"),
        kind=messages.kind_in(unit.kind, f"{prefix}.kind"),
        parent_id=parse_name(unit.parent, "orgUnits", f"{prefix}.parent", required=False) or None,
        manager_id=parse_name(unit.manager, "people", f"{prefix}.manager", required=False) or None,
        hr_version=unit.hr_version,
    )


def _person_fields(person: directory_pb2.Person, prefix: str = "person") -> uc.PersonFields:
    if len(person.email) > 320 or (person.email and "@" not in person.email):
        raise invalid(f"{prefix}.email", "must be an e-mail address")
    return uc.PersonFields(
        display_name=required_text(person.display_name, f"{prefix}.display_name"),
        email=person.email,
        org_unit_id=parse_name(person.org_unit, "orgUnits", f"{prefix}.org_unit"),
        manager_id=parse_name(person.manager, "people", f"{prefix}.manager", required=False) or None,
        management_level=messages.level_in(person.management_level, f"{prefix}.management_level"),
        status=messages.status_in(person.status, f"{prefix}.status") or PersonStatus.ACTIVE,
        hr_version=person.hr_version,
    )


class DirectoryServicer(directory_pb2_grpc.DirectoryServiceServicer):
    def __init__(self, db: Database, import_max_rows: int = 500_000, view: DecisionView | None = None):
        self.db = db
        self.import_max_rows = import_max_rows
        self.view = view  # GetPerson answers from it when given (no read transaction per call)

    async def CreateOrgUnit(
        self, request: directory_pb2.CreateOrgUnitRequest, context: grpc.aio.ServicerContext
    ) -> directory_pb2.OrgUnit:
        unit_id = check_id(request.org_unit_id, "org_unit_id")
        row = await uc.create_org_unit(self.db, unit_id, _unit_fields(request.org_unit), request.request_id, request)
        return messages.org_unit_out(row)

    async def GetOrgUnit(
        self, request: directory_pb2.GetOrgUnitRequest, context: grpc.aio.ServicerContext
    ) -> directory_pb2.OrgUnit:
        return messages.org_unit_out(await uc.get_org_unit(self.db, parse_name(request.name, "orgUnits", "name")))

    async def ListOrgUnits(
        self, request: directory_pb2.ListOrgUnitsRequest, context: grpc.aio.ServicerContext
    ) -> directory_pb2.ListOrgUnitsResponse:
        parent = parse_name(request.parent, "orgUnits", "parent", required=False)
        page = page_of(request.page_size, request.page_token, parent=parent, d=request.include_descendants)
        rows = await uc.list_org_units(self.db, parent, request.include_descendants, page)
        return directory_pb2.ListOrgUnitsResponse(
            org_units=[messages.org_unit_out(r) for r in rows],
            next_page_token=page.next_token(rows[-1].id if rows else None, len(rows)),
        )

    async def UpdateOrgUnit(
        self, request: directory_pb2.UpdateOrgUnitRequest, context: grpc.aio.ServicerContext
    ) -> directory_pb2.OrgUnit:
        unit_id = parse_name(request.org_unit.name, "orgUnits", "org_unit.name")
        paths = mask_paths(request.update_mask, _UNIT_MASK)
        unit = request.org_unit
        changes: dict[str, object] = {}
        if "display_name" in paths:
            changes["display_name"] = required_text(unit.display_name, "org_unit.display_name")
        if "kind" in paths:
            changes["kind"] = messages.kind_in(unit.kind, "org_unit.kind")
        if "parent" in paths:
            changes["parent_id"] = parse_name(unit.parent, "orgUnits", "org_unit.parent", required=False) or None
        if "manager" in paths:
            changes["manager_id"] = parse_name(unit.manager, "people", "org_unit.manager", required=False) or None
        row = await uc.update_org_unit(self.db, unit_id, changes, unit.etag)
        return messages.org_unit_out(row)

    async def DeleteOrgUnit(
        self, request: directory_pb2.DeleteOrgUnitRequest, context: grpc.aio.ServicerContext
    ) -> empty_pb2.Empty:
        await uc.delete_org_unit(self.db, parse_name(request.name, "orgUnits", "name"), request.etag)
        return empty_pb2.Empty()

    async def CreatePerson(
        self, request: directory_pb2.CreatePersonRequest, context: grpc.aio.ServicerContext
    ) -> directory_pb2.Person:
        person_id = check_id(request.person_id, "person_id")
        row = await uc.create_person(self.db, person_id, _person_fields(request.person), request.request_id, request)
        return messages.person_out(row)

    async def GetPerson(
        self, request: directory_pb2.GetPersonRequest, context: grpc.aio.ServicerContext
    ) -> directory_pb2.Person:
        person_id = parse_name(request.name, "people", "name")
        # The view follows every change: this replica's own at once, other replicas' within its poll.
        found = (await self.view.fresh()).person(person_id) if self.view is not None else None
        if found is not None:
            return found
        # Not in the view: absent, or just created by another replica.
        return messages.person_out(await uc.get_person(self.db, person_id))

    async def ListPeople(
        self, request: directory_pb2.ListPeopleRequest, context: grpc.aio.ServicerContext
    ) -> directory_pb2.ListPeopleResponse:
        unit = parse_name(request.org_unit, "orgUnits", "org_unit", required=False)
        manager = parse_name(request.manager, "people", "manager", required=False)
        status = messages.status_in(request.status, "status")
        page = page_of(
            request.page_size, request.page_token, u=unit, d=request.include_descendants, m=manager, s=status
        )
        rows = await uc.list_people(self.db, unit, request.include_descendants, manager, status, page)
        return directory_pb2.ListPeopleResponse(
            people=[messages.person_out(r) for r in rows],
            next_page_token=page.next_token(rows[-1].id if rows else None, len(rows)),
        )

    async def UpdatePerson(
        self, request: directory_pb2.UpdatePersonRequest, context: grpc.aio.ServicerContext
    ) -> directory_pb2.Person:
        person_id = parse_name(request.person.name, "people", "person.name")
        paths = mask_paths(request.update_mask, _PERSON_MASK)
        p = request.person
        changes: dict[str, object] = {}
        if "display_name" in paths:
            changes["display_name"] = required_text(p.display_name, "person.display_name")
        if "email" in paths:
            if p.email and "@" not in p.email:
                raise invalid("person.email", "must be an e-mail address")
            changes["email"] = p.email
        if "org_unit" in paths:
            changes["org_unit_id"] = parse_name(p.org_unit, "orgUnits", "person.org_unit")
        if "manager" in paths:
            changes["manager_id"] = parse_name(p.manager, "people", "person.manager", required=False) or None
        if "management_level" in paths:
            changes["management_level"] = messages.level_in(p.management_level, "person.management_level")
        if "status" in paths:
            changes["status"] = messages.status_in(p.status, "person.status", required=True)
        row = await uc.update_person(self.db, person_id, changes, p.etag)
        return messages.person_out(row)

    async def ImportDirectory(
        self, request_iterator: AsyncIterator[directory_pb2.ImportDirectoryRequest], context: grpc.aio.ServicerContext
    ) -> directory_pb2.ImportDirectoryResponse:
        batch = ImportBatch()
        index = -1
        async for message in request_iterator:
            index += 1
            if index >= self.import_max_rows:
                raise EngageError(
                    f"an import holds at most {self.import_max_rows} rows; split it (each import is re-runnable)",
                    "IMPORT_TOO_LARGE",
                    [],
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                )
            _read_row(batch, index, message)
        results = await apply_import(self.db, batch)
        response = directory_pb2.ImportDirectoryResponse()
        for r in results:
            response.results.append(
                directory_pb2.ImportRowResult(
                    row=r.row,
                    name=r.name,
                    outcome=directory_pb2.ImportRowResult.Outcome.Value(f"OUTCOME_{r.outcome.value}"),  # type: ignore[arg-type]
                    reason=r.reason,
                    field=r.field,
                )
            )
        counts = {o: 0 for o in ("CREATED", "UPDATED", "UNCHANGED", "REJECTED")}
        for r in results:
            counts[r.outcome.value] += 1
        response.created_count = counts["CREATED"]
        response.updated_count = counts["UPDATED"]
        response.unchanged_count = counts["UNCHANGED"]
        response.rejected_count = counts["REJECTED"]
        return response


def _read_row(batch: ImportBatch, index: int, message: directory_pb2.ImportDirectoryRequest) -> None:
    """Validates one streamed row; a bad row is rejected, never the whole import."""
    kind = message.WhichOneof("row")
    try:
        if kind == "org_unit":
            unit = message.org_unit
            unit_id = parse_name(unit.name, "orgUnits", "org_unit.name")
            f = _unit_fields(unit)
            batch.units.append(UnitIn(index, unit_id, f.display_name, f.kind, f.parent_id, f.manager_id, f.hr_version))
        elif kind == "person":
            person = message.person
            person_id = parse_name(person.name, "people", "person.name")
            p = _person_fields(person)
            batch.people.append(
                PersonIn(
                    index,
                    person_id,
                    p.display_name,
                    p.email,
                    p.org_unit_id,
                    p.manager_id,
                    p.management_level,
                    p.status,
                    p.hr_version,
                )
            )
        else:
            batch.reject(index, "", "row is empty: set org_unit or person", "row")
    except InvalidArgument as exc:
        name = message.org_unit.name if kind == "org_unit" else message.person.name
        first = exc.violations[0] if exc.violations else None
        batch.reject(index, name, first.description if first else exc.message, first.field if first else "")
