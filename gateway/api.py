"""The HTTP/JSON API under /api/v1: the roles service's resources, scoped to the caller.

Every route declares its permission (`requires`) and every status it can
return (`responses`). Object-level checks are `Access` methods (policy.py).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated

from engage.roles.v1 import assignments_pb2, decisions_pb2, directory_pb2, roles_pb2
from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from gateway import models
from gateway.models import ID, STATES, money, timestamp
from gateway.policy import Access, Permission, requires
from gateway.problems import ProblemError, invalid, responses
from gateway.team import team_of

router = APIRouter(prefix="/api/v1")

READ_ONE = responses(401, 404, 422, 429, 503)
READ_LIST = responses(401, 404, 422, 429, 503)
CATALOGUE = responses(401, 422, 429, 503)
CHANGE = responses(401, 403, 404, 409, 412, 422, 429, 503)

PageSize = Annotated[int, Query(alias="pageSize", ge=1, le=1000, description="Default 50.")]
PageToken = Annotated[
    str, Query(alias="pageToken", max_length=2000, description="`nextPageToken` of the previous page.")
]
UnitId = Annotated[str, Path(pattern=ID, examples=["CS-CC-A"])]
PersonId = Annotated[str, Path(pattern=ID, examples=["E10167"])]
AssignmentId = Annotated[str, Path(pattern=ID)]
IfMatch = Annotated[
    str | None, Header(alias="If-Match", description="ETag of the version you read; 412 if it changed since.")
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=100,
        description="A UUID; a retry with the same key returns the first result.",
    ),
]

PERSON_STATUSES = {
    "ACTIVE": directory_pb2.PERSON_STATUS_ACTIVE,
    "LEAVE": directory_pb2.PERSON_STATUS_LEAVE,
    "TERMINATED": directory_pb2.PERSON_STATUS_TERMINATED,
}
ROLE_STATES: dict[str, int] = {
    "DRAFT": roles_pb2.Role.STATE_DRAFT,
    "ACTIVE": roles_pb2.Role.STATE_ACTIVE,
    "RETIRED": roles_pb2.Role.STATE_RETIRED,
}
TIERS: dict[str, int] = {
    "STRATEGIC": roles_pb2.DECISION_TIER_STRATEGIC,
    "OPERATIONAL_TACTICAL": roles_pb2.DECISION_TIER_OPERATIONAL_TACTICAL,
    "DESIGN_EXECUTION": roles_pb2.DECISION_TIER_DESIGN_EXECUTION,
}


def _etag(response: Response, etag: str) -> None:
    if etag:
        response.headers["ETag"] = f'"{etag}"'


def _resource(model: BaseModel, etag: str) -> Response:
    """A read's answer with its ETag, serialised once: the route's `response_model` documents it, and FastAPI
    would send the same JSON, but only after validating again what the gateway has just built."""
    headers = {"ETag": f'"{etag}"'} if etag else None
    return Response(model.__pydantic_serializer__.to_json(model), media_type="application/json", headers=headers)


def _if_match(header: str | None) -> str:
    """The etag an If-Match header names ('' for none or `*`)."""
    if not header:
        return ""
    value = header.split(",")[0].strip().removeprefix("W/").strip('"')
    return "" if value == "*" else value


def _check_if_match(header: str | None, current: str) -> str:
    wanted = _if_match(header)
    if wanted and wanted != current:
        raise ProblemError(412, "The resource changed since you read it; read it again and retry.", "ETAG_MISMATCH")
    return wanted


# ---- the caller --------------------------------------------------------------------------


@router.get("/me", response_model=models.Me, responses=responses(401, 429, 503), tags=["me"])
async def get_me(access: Access = requires(Permission.SIGNED_IN)) -> models.Me:
    """Who the caller is: their person, roles and the org units they head."""
    me = await access.me()
    p = access.principal
    return models.Me(
        subject=p.subject,
        person=models.Person.of(me) if me else None,
        roles=sorted(p.roles),
        isAdmin=p.is_admin,
        heads=await access.heads(),
    )


@router.get("/me/team", response_model=models.Team, responses=READ_LIST, tags=["me"])
async def get_my_team(
    request: Request,
    org_unit: Annotated[str | None, Query(alias="orgUnit", pattern=models.UNIT_NAME)] = None,
    access: Access = requires(Permission.DIRECTORY_READ),
) -> models.Team:
    """The caller's team: everyone in the units they head (or below `orgUnit`), with their current CRM roles,
    their fit to those roles and their scorecards of the current period.

    HR administrators who head no unit get the whole company. When the skills or incentives service does not
    answer, the team still comes back, without those columns, and `unavailable` names the service."""
    return await team_of(access, request, org_unit)


# ---- directory ---------------------------------------------------------------------------


@router.get("/orgUnits", response_model=models.OrgUnitList, responses=READ_LIST, tags=["directory"])
async def list_org_units(
    request: Request,
    parent: Annotated[str | None, Query(pattern=models.UNIT_NAME, description="Only children of this unit.")] = None,
    include_descendants: Annotated[bool, Query(alias="includeDescendants")] = False,
    page_size: PageSize = 50,
    page_token: PageToken = "",
    access: Access = requires(Permission.DIRECTORY_READ),
) -> models.OrgUnitList:
    """Org units ordered by id. Non-administrators must name a `parent` they manage."""
    if not access.is_admin:
        if not parent:
            raise invalid("query.parent", "required unless you are an HR administrator")
        if not await access.manages_unit(parent):
            raise ProblemError(404, "No such resource, or it is not visible to you.")
    gw = request.app.state.gateway
    page = await gw.roles.call(
        gw.roles.directory.ListOrgUnits,
        directory_pb2.ListOrgUnitsRequest(
            parent=parent or "", include_descendants=include_descendants, page_size=page_size, page_token=page_token
        ),
        access.principal,
    )
    return models.OrgUnitList(
        orgUnits=[models.OrgUnit.of(u) for u in page.org_units], nextPageToken=page.next_page_token
    )


@router.get("/orgUnits/{unit_id}", response_model=models.OrgUnit, responses=READ_ONE, tags=["directory"])
async def get_org_unit(
    request: Request, unit_id: UnitId, access: Access = requires(Permission.DIRECTORY_READ)
) -> Response:
    """One org unit: yours, one you manage, or any for HR administrators."""
    name = f"orgUnits/{unit_id}"
    await access.require_unit(name)
    gw = request.app.state.gateway
    unit = await gw.roles.call(
        gw.roles.directory.GetOrgUnit, directory_pb2.GetOrgUnitRequest(name=name), access.principal
    )
    return _resource(models.OrgUnit.of(unit), unit.etag)


@router.get("/people", response_model=models.PersonList, responses=READ_LIST, tags=["directory"])
async def list_people(
    request: Request,
    org_unit: Annotated[str | None, Query(alias="orgUnit", pattern=models.UNIT_NAME)] = None,
    include_descendants: Annotated[bool, Query(alias="includeDescendants")] = False,
    manager: Annotated[str | None, Query(pattern=models.PERSON_NAME, description="Only direct reports.")] = None,
    status: Annotated[models.PersonStatus | None, Query()] = None,
    page_size: PageSize = 50,
    page_token: PageToken = "",
    access: Access = requires(Permission.DIRECTORY_READ),
) -> models.PersonList:
    """People ordered by id. Non-administrators must name an `orgUnit` they manage."""
    if not access.is_admin:
        if not org_unit:
            raise invalid("query.orgUnit", "required unless you are an HR administrator")
        if not await access.manages_unit(org_unit):
            raise ProblemError(404, "No such resource, or it is not visible to you.")
    gw = request.app.state.gateway
    page = await gw.roles.call(
        gw.roles.directory.ListPeople,
        directory_pb2.ListPeopleRequest(
            org_unit=org_unit or "",
            include_descendants=include_descendants,
            manager=manager or "",
            status=PERSON_STATUSES.get(status or "", 0),  # type: ignore[arg-type]
            page_size=page_size,
            page_token=page_token,
        ),
        access.principal,
    )
    return models.PersonList(people=[models.Person.of(p) for p in page.people], nextPageToken=page.next_page_token)


@router.get("/people/{person_id}", response_model=models.Person, responses=READ_ONE, tags=["directory"])
async def get_person(person_id: PersonId, access: Access = requires(Permission.DIRECTORY_READ)) -> Response:
    """One person: yourself, someone in your team, or anyone for HR administrators."""
    name = f"people/{person_id}"
    await access.require_person(name)
    person = await access.person(name)
    if person is None:
        raise ProblemError(404, "No such resource, or it is not visible to you.")
    return _resource(models.Person.of(person), person.etag)


# ---- catalogue ---------------------------------------------------------------------------


@router.get("/roles", response_model=models.RoleList, responses=CATALOGUE, tags=["roles"])
async def list_roles(
    request: Request,
    state: Annotated[models.RoleState | None, Query()] = None,
    page_size: PageSize = 50,
    page_token: PageToken = "",
    access: Access = requires(Permission.SIGNED_IN),
) -> models.RoleList:
    """CRM role definitions ordered by id, optionally in one lifecycle state."""
    gw = request.app.state.gateway
    page = await gw.roles.call(
        gw.roles.roles.ListRoles,
        roles_pb2.ListRolesRequest(state=ROLE_STATES.get(state or "", 0), page_size=page_size, page_token=page_token),  # type: ignore[arg-type]
        access.principal,
    )
    return models.RoleList(roles=[models.Role.of(r) for r in page.roles], nextPageToken=page.next_page_token)


@router.get("/roles/{role_id}", response_model=models.Role, responses=READ_ONE, tags=["roles"])
async def get_role(
    request: Request,
    role_id: Annotated[
        str, Path(pattern=r"^[A-Za-z0-9._-]{1,63}(@[0-9]{1,9})?$", examples=["service-agent", "service-agent@1"])
    ],
    access: Access = requires(Permission.SIGNED_IN),
) -> Response:
    """A role's current version, or a past one as `{role}@{version}`."""
    gw = request.app.state.gateway
    role = await gw.roles.call(
        gw.roles.roles.GetRole, roles_pb2.GetRoleRequest(name=f"roles/{role_id}"), access.principal
    )
    return _resource(models.Role.of(role), role.etag)


@router.get("/decisionCategories", response_model=models.DecisionCategoryList, responses=CATALOGUE, tags=["roles"])
async def list_decision_categories(
    request: Request,
    tier: Annotated[models.Tier | None, Query()] = None,
    page_size: PageSize = 50,
    page_token: PageToken = "",
    access: Access = requires(Permission.SIGNED_IN),
) -> models.DecisionCategoryList:
    """Decision categories ordered by id, optionally of one tier."""
    gw = request.app.state.gateway
    page = await gw.roles.call(
        gw.roles.roles.ListDecisionCategories,
        roles_pb2.ListDecisionCategoriesRequest(
            tier=TIERS.get(tier or "", 0),  # type: ignore[arg-type]
            page_size=page_size,
            page_token=page_token,
        ),
        access.principal,
    )
    return models.DecisionCategoryList(
        decisionCategories=[models.DecisionCategory.of(c) for c in page.decision_categories],
        nextPageToken=page.next_page_token,
    )


@router.get(
    "/decisionCategories/{category_id}", response_model=models.DecisionCategory, responses=READ_ONE, tags=["roles"]
)
async def get_decision_category(
    request: Request,
    category_id: Annotated[str, Path(pattern=ID, examples=["customer-refund"])],
    access: Access = requires(Permission.SIGNED_IN),
) -> Response:
    """One decision category."""
    gw = request.app.state.gateway
    category = await gw.roles.call(
        gw.roles.roles.GetDecisionCategory,
        roles_pb2.GetDecisionCategoryRequest(name=f"decisionCategories/{category_id}"),
        access.principal,
    )
    return _resource(models.DecisionCategory.of(category), category.etag)


# ---- assignments -------------------------------------------------------------------------


@router.get("/assignments", response_model=models.AssignmentList, responses=READ_LIST, tags=["assignments"])
async def list_assignments(
    request: Request,
    person: Annotated[str | None, Query(pattern=models.PERSON_NAME)] = None,
    role: Annotated[str | None, Query(pattern=models.ROLE_NAME)] = None,
    org_unit: Annotated[str | None, Query(alias="orgUnit", pattern=models.UNIT_NAME)] = None,
    include_descendants: Annotated[bool, Query(alias="includeDescendants")] = False,
    state: Annotated[models.AssignmentState | None, Query()] = None,
    page_size: PageSize = 50,
    page_token: PageToken = "",
    access: Access = requires(Permission.ASSIGNMENTS_READ),
) -> models.AssignmentList:
    """Assignments ordered by id, filtered like the service.

    Non-administrators must name a `person` they may see or an `orgUnit` they manage;
    with neither, they get their own assignments."""
    if not access.is_admin:
        if org_unit and not await access.manages_unit(org_unit):
            raise ProblemError(404, "No such resource, or it is not visible to you.")
        if person:
            await access.require_person(person)
        if not org_unit and not person:
            if not access.principal.person:
                raise invalid("query.person", "required unless you are an HR administrator")
            person = access.principal.person
    gw = request.app.state.gateway
    page = await gw.roles.call(
        gw.roles.assignments.ListAssignments,
        assignments_pb2.ListAssignmentsRequest(
            person=person or "",
            role=role or "",
            org_unit=org_unit or "",
            include_descendants=include_descendants,
            state=STATES.get(state or "", 0),  # type: ignore[arg-type]
            page_size=page_size,
            page_token=page_token,
        ),
        access.principal,
    )
    return models.AssignmentList(
        assignments=[models.Assignment.of(a) for a in page.assignments], nextPageToken=page.next_page_token
    )


async def create_assignment_for(
    access: Access, request: Request, body: models.AssignmentCreate, request_id: str = ""
) -> assignments_pb2.Assignment:
    await access.require_assign(body.person, body.orgUnit)
    gw = request.app.state.gateway
    return await gw.roles.call(
        gw.roles.assignments.CreateAssignment,
        assignments_pb2.CreateAssignmentRequest(assignment=body.to_proto(), request_id=request_id),
        access.principal,
    )


@router.post(
    "/assignments",
    status_code=201,
    response_model=models.Assignment,
    responses=CHANGE,
    tags=["assignments"],
)
async def create_assignment(
    request: Request,
    response: Response,
    body: models.AssignmentCreate,
    idempotency_key: IdempotencyKey = None,
    access: Access = requires(Permission.ASSIGNMENTS_MANAGE),
) -> models.Assignment:
    """Assigns a person a role in an org unit, for a period and with a reason.

    Managers assign within the units they head and to people in their team."""
    created = await create_assignment_for(access, request, body, idempotency_key or "")
    response.headers["Location"] = f"/api/v1/{created.name}"
    _etag(response, created.etag)
    return models.Assignment.of(created)


async def _visible_assignment(access: Access, request: Request, assignment_id: str) -> assignments_pb2.Assignment:
    gw = request.app.state.gateway
    found: assignments_pb2.Assignment = await gw.roles.get_assignment(f"assignments/{assignment_id}", access.principal)
    await access.require_assignment(found)
    return found


@router.get("/assignments/{assignment_id}", response_model=models.Assignment, responses=READ_ONE, tags=["assignments"])
async def get_assignment(
    request: Request,
    assignment_id: AssignmentId,
    access: Access = requires(Permission.ASSIGNMENTS_READ),
) -> Response:
    """One assignment of yours, of your team or in your units."""
    found = await _visible_assignment(access, request, assignment_id)
    return _resource(models.Assignment.of(found), found.etag)


async def end_assignment_for(
    access: Access,
    request: Request,
    assignment_id: str,
    body: models.AssignmentEnd,
    if_match: str | None,
    *,
    cancel_scheduled: bool = False,
) -> assignments_pb2.Assignment:
    """Ends an assignment; with `cancel_scheduled` one that has not started ends where it starts."""
    found = await _visible_assignment(access, request, assignment_id)
    await access.require_end(found)
    etag = _check_if_match(if_match, found.etag)
    end = assignments_pb2.EndAssignmentRequest(name=found.name, reason=body.reason, etag=etag)
    if body.endTime is not None:
        end.end_time.CopyFrom(timestamp(body.endTime))
    elif cancel_scheduled and found.state == assignments_pb2.Assignment.STATE_SCHEDULED:
        end.end_time.CopyFrom(found.valid_from)
    gw = request.app.state.gateway
    return await gw.roles.call(gw.roles.assignments.EndAssignment, end, access.principal)


@router.post(
    "/assignments/{assignment_id}/end", response_model=models.Assignment, responses=CHANGE, tags=["assignments"]
)
async def end_assignment(
    request: Request,
    response: Response,
    assignment_id: AssignmentId,
    body: models.AssignmentEnd,
    if_match: IfMatch = None,
    access: Access = requires(Permission.ASSIGNMENTS_MANAGE),
) -> models.Assignment:
    """Ends an assignment now or at `endTime`. 409 if it already ended; 412 on a stale If-Match."""
    ended = await end_assignment_for(access, request, assignment_id, body, if_match)
    _etag(response, ended.etag)
    return models.Assignment.of(ended)


async def acknowledge_for(
    access: Access, request: Request, assignment_id: str, if_match: str | None
) -> assignments_pb2.Assignment:
    found = await _visible_assignment(access, request, assignment_id)
    await access.require_acknowledge(found)
    etag = _check_if_match(if_match, found.etag)
    gw = request.app.state.gateway
    return await gw.roles.call(
        gw.roles.assignments.AcknowledgeAssignment,
        assignments_pb2.AcknowledgeAssignmentRequest(name=found.name, etag=etag),
        access.principal,
    )


@router.post(
    "/assignments/{assignment_id}/acknowledge",
    response_model=models.Assignment,
    responses=CHANGE,
    tags=["assignments"],
)
async def acknowledge_assignment(
    request: Request,
    response: Response,
    assignment_id: AssignmentId,
    if_match: IfMatch = None,
    access: Access = requires(Permission.ASSIGNMENTS_ACKNOWLEDGE),
) -> models.Assignment:
    """The holder takes the role on (acknowledges its current version). Only the holder may."""
    acknowledged = await acknowledge_for(access, request, assignment_id, if_match)
    _etag(response, acknowledged.etag)
    return models.Assignment.of(acknowledged)


# ---- who decides? --------------------------------------------------------------------------


def parse_amount(amount: str | None, currency: str) -> decisions_pb2.CheckDecisionRequest:
    request = decisions_pb2.CheckDecisionRequest()
    if amount:
        try:
            value = Decimal(amount)
        except InvalidOperation as exc:
            raise invalid("query.amount", "must be a decimal number such as 350.00") from exc
        if not value.is_finite() or abs(value) >= Decimal(10) ** 15:
            raise invalid("query.amount", "must be a decimal number below 10^15")
        request.amount.CopyFrom(money(currency, value))
    return request


async def check_decision_for(
    access: Access, request: Request, person: str, category: str, amount: str | None, currency: str, at: datetime | None
) -> models.DecisionAnswer:
    await access.require_person(person)
    check = parse_amount(amount, currency)
    check.person = person
    check.category = category
    if at is not None:
        check.at.CopyFrom(timestamp(at))
    gw = request.app.state.gateway
    return models.DecisionAnswer.of(await gw.roles.check_decision(check, access.principal))


@router.get(
    "/people/{person_id}/decisions/{category_id}",
    response_model=models.DecisionAnswer,
    responses=responses(401, 404, 409, 422, 429, 503),
    tags=["decisions"],
)
async def check_decision(
    request: Request,
    person_id: PersonId,
    category_id: Annotated[str, Path(pattern=ID, examples=["customer-refund"])],
    amount: Annotated[str | None, Query(pattern=r"^-?\d{1,15}(\.\d{1,9})?$", examples=["350.00"])] = None,
    currency: Annotated[str, Query(pattern=r"^[A-Z]{3}$")] = "EUR",
    at: Annotated[datetime | None, Query(description="Point in time; default now.")] = None,
    access: Access = requires(Permission.DECISIONS_CHECK),
) -> models.DecisionAnswer:
    """Who decides? May this person decide a matter of this category and amount, or to whom must they escalate?

    409 for a person who has left the company."""
    return await check_decision_for(
        access, request, f"people/{person_id}", f"decisionCategories/{category_id}", amount, currency, at
    )


# ---- live --------------------------------------------------------------------------------


@router.get(
    "/events",
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "Server-sent events."},
        **responses(401, 429),
    },
    response_class=StreamingResponse,
    tags=["live"],
)
async def events(request: Request, access: Access = requires(Permission.SIGNED_IN)) -> StreamingResponse:
    """Server-sent events: `assignment` and `directory` when something changes (no details; re-read what you show)."""
    gw = request.app.state.gateway
    return StreamingResponse(
        gw.live.stream(request.is_disconnected),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
