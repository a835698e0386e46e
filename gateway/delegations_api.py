"""The HTTP/JSON API of delegations: a person lends their decision rights to someone for a while.

The delegator stays accountable. A person delegates their own rights (HR administrators anyone's),
to a colleague of their own org unit or someone in their team; they see the delegations they gave
or received, a manager also those of their team; the delegator or HR revokes.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from engage.roles.v1 import assignments_pb2
from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import Field

from gateway.api import (
    CHANGE,
    READ_LIST,
    READ_ONE,
    IdempotencyKey,
    IfMatch,
    PageSize,
    PageToken,
    _check_if_match,
    _etag,
)
from gateway.models import ID, PERSON_NAME, Model, Money, _time, money, timestamp
from gateway.policy import Access, Permission, requires
from gateway.problems import forbidden, responses

router = APIRouter(prefix="/api/v1")
CATEGORY_NAME = r"^decisionCategories/[A-Za-z0-9._-]{1,63}$"
ID_PATH = Path(pattern=ID)


class Delegation(Model):
    name: str = Field(examples=["delegations/3f2a"])
    delegator: str
    delegate: str
    categories: list[str]
    maxAmount: Money | None = None
    validFrom: datetime | None = None
    validTo: datetime | None = None
    reason: str
    createdBy: str
    revokeTime: datetime | None = None
    etag: str
    createTime: datetime | None = None

    @classmethod
    def of(cls, d: assignments_pb2.Delegation) -> Delegation:
        return cls(
            name=d.name,
            delegator=d.delegator,
            delegate=d.delegate,
            categories=list(d.categories),
            maxAmount=Money.of(d.max_amount) if d.HasField("max_amount") else None,
            validFrom=_time(d.valid_from),
            validTo=_time(d.valid_to),
            reason=d.reason,
            createdBy=d.created_by,
            revokeTime=_time(d.revoke_time),
            etag=d.etag,
            createTime=_time(d.create_time),
        )


class DelegationCreate(Model):
    delegator: str | None = Field(default=None, pattern=PERSON_NAME, description="Default: you.")
    delegate: str = Field(pattern=PERSON_NAME, examples=["people/E10164"])
    categories: list[Annotated[str, Field(pattern=CATEGORY_NAME)]] = Field(min_length=1, max_length=50)
    maxAmount: Money | None = Field(
        default=None, description="Up to this amount only; default the delegator's own limit."
    )
    validFrom: datetime | None = Field(default=None, description="Default now.")
    validTo: datetime = Field(description="Delegations always end.")
    reason: str = Field(default="", max_length=500)


class DelegationList(Model):
    delegations: list[Delegation]
    nextPageToken: str


async def create_delegation_for(
    access: Access, request: Request, body: DelegationCreate, request_id: str = ""
) -> assignments_pb2.Delegation:
    delegator = body.delegator or access.principal.person or ""
    await access.require_delegation(delegator, body.delegate)
    d = assignments_pb2.Delegation(
        delegator=delegator, delegate=body.delegate, categories=body.categories, reason=body.reason
    )
    if body.maxAmount is not None:
        d.max_amount.CopyFrom(money(body.maxAmount.currencyCode, Decimal(body.maxAmount.amount)))
    if body.validFrom is not None:
        d.valid_from.CopyFrom(timestamp(body.validFrom))
    d.valid_to.CopyFrom(timestamp(body.validTo))
    gw = request.app.state.gateway
    return await gw.roles.call(
        gw.roles.assignments.CreateDelegation,
        assignments_pb2.CreateDelegationRequest(delegation=d, request_id=request_id),
        access.principal,
    )


@router.post("/delegations", status_code=201, response_model=Delegation, responses=CHANGE, tags=["delegations"])
async def create_delegation(
    request: Request,
    response: Response,
    body: DelegationCreate,
    idempotency_key: IdempotencyKey = None,
    access: Access = requires(Permission.DELEGATIONS_MANAGE),
) -> Delegation:
    """Delegates your decision rights in some categories to a colleague of your unit or someone in your team,
    until `validTo`. 409 when delegating to yourself."""
    created = await create_delegation_for(access, request, body, idempotency_key or "")
    response.headers["Location"] = f"/api/v1/{created.name}"
    _etag(response, created.etag)
    return Delegation.of(created)


async def delegations_of(access: Access, request: Request, person: str) -> list[assignments_pb2.Delegation]:
    """Every delegation `person` gave or received, by name."""
    gw = request.app.state.gateway
    found: dict[str, assignments_pb2.Delegation] = {}
    for request_ in (
        assignments_pb2.ListDelegationsRequest(delegator=person),
        assignments_pb2.ListDelegationsRequest(delegate=person),
    ):
        for d in await gw.roles.every_page(
            gw.roles.assignments.ListDelegations, request_, "delegations", access.principal
        ):
            found[d.name] = d
    return [found[name] for name in sorted(found)]


@router.get("/delegations", response_model=DelegationList, responses=READ_LIST, tags=["delegations"])
async def list_delegations(
    request: Request,
    delegator: Annotated[str | None, Query(pattern=PERSON_NAME)] = None,
    delegate: Annotated[str | None, Query(pattern=PERSON_NAME)] = None,
    page_size: PageSize = 50,
    page_token: PageToken = "",
    access: Access = requires(Permission.DELEGATIONS_READ),
) -> DelegationList:
    """Delegations ordered by id, by `delegator` and/or `delegate` (people you may see). With neither,
    non-administrators get every delegation they gave or received (one page)."""
    if not access.is_admin:
        for person in filter(None, (delegator, delegate)):
            await access.require_person(person)
        if not delegator and not delegate:
            mine = await delegations_of(access, request, access.principal.person or "")
            return DelegationList(delegations=[Delegation.of(d) for d in mine], nextPageToken="")
    gw = request.app.state.gateway
    page = await gw.roles.call(
        gw.roles.assignments.ListDelegations,
        assignments_pb2.ListDelegationsRequest(
            delegator=delegator or "", delegate=delegate or "", page_size=page_size, page_token=page_token
        ),
        access.principal,
    )
    return DelegationList(delegations=[Delegation.of(d) for d in page.delegations], nextPageToken=page.next_page_token)


async def _visible_delegation(access: Access, request: Request, delegation_id: str) -> assignments_pb2.Delegation:
    gw = request.app.state.gateway
    found: assignments_pb2.Delegation = await gw.roles.call(
        gw.roles.assignments.GetDelegation,
        assignments_pb2.GetDelegationRequest(name=f"delegations/{delegation_id}"),
        access.principal,
    )
    await access.require_either(found.delegator, found.delegate)
    return found


@router.get("/delegations/{delegation_id}", response_model=Delegation, responses=READ_ONE, tags=["delegations"])
async def get_delegation(
    request: Request,
    response: Response,
    delegation_id: Annotated[str, ID_PATH],
    access: Access = requires(Permission.DELEGATIONS_READ),
) -> Delegation:
    """One delegation you gave or received, or of someone in your team."""
    found = await _visible_delegation(access, request, delegation_id)
    _etag(response, found.etag)
    return Delegation.of(found)


async def revoke_delegation_for(
    access: Access, request: Request, delegation_id: str, if_match: str | None
) -> assignments_pb2.Delegation:
    found = await _visible_delegation(access, request, delegation_id)
    if not access.is_admin and found.delegator != access.principal.person:
        raise forbidden("Only the delegator or an HR administrator may revoke a delegation.")
    etag = _check_if_match(if_match, found.etag)
    gw = request.app.state.gateway
    return await gw.roles.call(
        gw.roles.assignments.RevokeDelegation,
        assignments_pb2.RevokeDelegationRequest(name=found.name, etag=etag),
        access.principal,
    )


@router.post(
    "/delegations/{delegation_id}/revoke",
    response_model=Delegation,
    responses=responses(401, 403, 404, 409, 412, 422, 429, 503),
    tags=["delegations"],
)
async def revoke_delegation(
    request: Request,
    response: Response,
    delegation_id: Annotated[str, ID_PATH],
    if_match: IfMatch = None,
    access: Access = requires(Permission.DELEGATIONS_MANAGE),
) -> Delegation:
    """Revokes a delegation from now on (the delegator or HR). 412 on a stale If-Match."""
    revoked = await revoke_delegation_for(access, request, delegation_id, if_match)
    _etag(response, revoked.etag)
    return Delegation.of(revoked)
