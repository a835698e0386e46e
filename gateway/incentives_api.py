"""The HTTP/JSON API of incentives: schemes, scorecards, periods and awards, scoped to the caller.

Every route declares its permission (`requires`) and every status it can return (`responses`).
The incentives service checks scope again; lists are filtered here to the caller's people.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, NamedTuple

from engage.incentives.v1 import awards_pb2, schemes_pb2, scorecards_pb2
from fastapi import APIRouter, Path, Query, Request, Response

from gateway import incentives_models as im
from gateway.api import (
    CATALOGUE,
    CHANGE,
    READ_LIST,
    READ_ONE,
    IfMatch,
    PageSize,
    PageToken,
    PersonId,
    _check_if_match,
    _etag,
)
from gateway.incentives_service import period_ids
from gateway.models import ID
from gateway.policy import Access, Permission, requires
from gateway.problems import responses

router = APIRouter(prefix="/api/v1")
SchemeId = Annotated[str, Path(pattern=ID, examples=["collaboration-bonus"])]
PeriodId = Annotated[str, Path(pattern=im.PERIOD_ID, examples=["2025-01", "2025-Q1"])]
# 409: no published version of the scheme applies to the period (NO_VERSION_IN_FORCE).
MANAGERS_READ = responses(401, 403, 404, 409, 422, 429, 503)
PERIOD_READ = responses(401, 404, 409, 422, 429, 503)


class AwardKey(NamedTuple):
    scheme_id: str
    period_id: str
    person_id: str


def _period(scheme_id: str, period_id: str) -> str:
    return f"schemes/{scheme_id}/periods/{period_id}"


@router.get("/schemes", response_model=im.SchemeList, responses=CATALOGUE, tags=["incentives"])
async def list_schemes(
    request: Request,
    page_size: PageSize = 50,
    page_token: PageToken = "",
    access: Access = requires(Permission.SIGNED_IN),
) -> im.SchemeList:
    """Incentive schemes ordered by id, with their measures and recent periods."""
    gw = request.app.state.gateway
    page = await gw.incentives.call(
        gw.incentives.schemes.ListSchemes,
        schemes_pb2.ListSchemesRequest(page_size=page_size, page_token=page_token),
        access.principal,
    )
    return im.SchemeList(
        schemes=[im.Scheme.of(s, period_ids(s)) for s in page.schemes], nextPageToken=page.next_page_token
    )


@router.get(
    "/schemes/{scheme_id}/periods/{period_id}", response_model=im.Period, responses=MANAGERS_READ, tags=["incentives"]
)
async def get_period(
    request: Request, scheme_id: SchemeId, period_id: PeriodId, access: Access = requires(Permission.PERIODS_READ)
) -> im.Period:
    """A period: open or closed, its award count and total against the budget (HR administrators and managers)."""
    gw = request.app.state.gateway
    period = await gw.incentives.call(
        gw.incentives.awards.GetPeriod,
        awards_pb2.GetPeriodRequest(name=_period(scheme_id, period_id)),
        access.principal,
    )
    return im.Period.of(period)


@router.get(
    "/schemes/{scheme_id}/periods/{period_id}/scorecards",
    response_model=im.ScorecardList,
    responses=PERIOD_READ,
    tags=["incentives"],
)
async def list_scorecards(
    request: Request, scheme_id: SchemeId, period_id: PeriodId, access: Access = requires(Permission.SCORECARDS_READ)
) -> im.ScorecardList:
    """The scorecards of a period you may see (yours, your team's; all for HR administrators), by person."""
    gw = request.app.state.gateway
    cards = await gw.incentives.period_scorecards(_period(scheme_id, period_id), access.principal)
    return im.ScorecardList(scorecards=[im.Scorecard.of(c) for c in cards if await access.sees_in_list(c.person)])


@router.get(
    "/schemes/{scheme_id}/periods/{period_id}/scorecards/{person_id}",
    response_model=im.Scorecard,
    responses=PERIOD_READ,
    tags=["incentives"],
)
async def get_scorecard(
    request: Request,
    scheme_id: SchemeId,
    period_id: PeriodId,
    person_id: PersonId,
    access: Access = requires(Permission.SCORECARDS_READ),
) -> im.Scorecard:
    """A person's scorecard: every measure with the events that counted. 409 when no scheme version applies."""
    await access.require_person(f"people/{person_id}")
    gw = request.app.state.gateway
    card = await gw.incentives.call(
        gw.incentives.scorecards.GetScorecard,
        scorecards_pb2.GetScorecardRequest(name=f"{_period(scheme_id, period_id)}/scorecards/{person_id}"),
        access.principal,
    )
    return im.Scorecard.of(card)


@router.get(
    "/schemes/{scheme_id}/periods/{period_id}/awards",
    response_model=im.AwardList,
    responses=READ_LIST,
    tags=["incentives"],
)
async def list_awards(
    request: Request,
    scheme_id: SchemeId,
    period_id: PeriodId,
    state: Annotated[im.AwardState | None, Query()] = None,
    access: Access = requires(Permission.AWARDS_READ),
) -> im.AwardList:
    """The awards of a closed period you may see (yours, your team's; all for HR administrators), by person."""
    gw = request.app.state.gateway
    found = await gw.incentives.period_awards(_period(scheme_id, period_id), access.principal)
    wanted = im.AWARD_STATES.get(state or "", 0)
    return im.AwardList(
        awards=[
            im.Award.of(a) for a in found if (not wanted or a.state == wanted) and await access.sees_in_list(a.person)
        ]
    )


async def _visible_award(
    access: Access, request: Request, scheme_id: str, period_id: str, person_id: str
) -> awards_pb2.Award:
    await access.require_person(f"people/{person_id}")
    gw = request.app.state.gateway
    award: awards_pb2.Award = await gw.incentives.call(
        gw.incentives.awards.GetAward,
        awards_pb2.GetAwardRequest(name=f"{_period(scheme_id, period_id)}/awards/{person_id}"),
        access.principal,
    )
    return award


@router.get(
    "/schemes/{scheme_id}/periods/{period_id}/awards/{person_id}",
    response_model=im.Award,
    responses=READ_ONE,
    tags=["incentives"],
)
async def get_award(
    request: Request,
    response: Response,
    scheme_id: SchemeId,
    period_id: PeriodId,
    person_id: PersonId,
    access: Access = requires(Permission.AWARDS_READ),
) -> im.Award:
    """One award: proposed by the period close, adjusted with reasons, approved."""
    award = await _visible_award(access, request, scheme_id, period_id, person_id)
    _etag(response, award.etag)
    return im.Award.of(award)


async def _decidable_award(
    access: Access, request: Request, award: AwardKey, if_match: str | None
) -> tuple[awards_pb2.Award, str]:
    """The award, if the caller may adjust or approve it, and the etag to pass on."""
    await access.require_award_decision(f"people/{award.person_id}")
    found = await _visible_award(access, request, *award)
    return found, _check_if_match(if_match, found.etag)


async def adjust_award_for(
    access: Access, request: Request, award: AwardKey, body: im.AwardAdjust, if_match: str | None
) -> awards_pb2.Award:
    found, etag = await _decidable_award(access, request, award, if_match)
    amount = im.amount_like(found.amount, Decimal(body.amount))
    gw = request.app.state.gateway
    return await gw.incentives.call(
        gw.incentives.awards.AdjustAward,
        awards_pb2.AdjustAwardRequest(name=found.name, amount=amount, reason=body.reason, etag=etag),
        access.principal,
    )


async def approve_award_for(
    access: Access, request: Request, award: AwardKey, if_match: str | None
) -> awards_pb2.Award:
    found, etag = await _decidable_award(access, request, award, if_match)
    gw = request.app.state.gateway
    return await gw.incentives.call(
        gw.incentives.awards.ApproveAward, awards_pb2.ApproveAwardRequest(name=found.name, etag=etag), access.principal
    )


@router.post(
    "/schemes/{scheme_id}/periods/{period_id}/awards/{person_id}/adjust",
    response_model=im.Award,
    responses=CHANGE,
    tags=["incentives"],
)
async def adjust_award(
    request: Request,
    response: Response,
    scheme_id: SchemeId,
    period_id: PeriodId,
    person_id: PersonId,
    body: im.AwardAdjust,
    if_match: IfMatch = None,
    access: Access = requires(Permission.AWARDS_DECIDE),
) -> im.Award:
    """Changes a proposed award's amount, with a reason. 409 once approved; 412 on a stale If-Match;
    403 on your own award."""
    adjusted = await adjust_award_for(access, request, AwardKey(scheme_id, period_id, person_id), body, if_match)
    _etag(response, adjusted.etag)
    return im.Award.of(adjusted)


@router.post(
    "/schemes/{scheme_id}/periods/{period_id}/awards/{person_id}/approve",
    response_model=im.Award,
    responses=CHANGE,
    tags=["incentives"],
)
async def approve_award(
    request: Request,
    response: Response,
    scheme_id: SchemeId,
    period_id: PeriodId,
    person_id: PersonId,
    if_match: IfMatch = None,
    access: Access = requires(Permission.AWARDS_DECIDE),
) -> im.Award:
    """Approves a proposed award (final; published for payroll). 409 if approved already; 412 on a stale
    If-Match; 403 on your own award."""
    approved = await approve_award_for(access, request, AwardKey(scheme_id, period_id, person_id), if_match)
    _etag(response, approved.etag)
    return im.Award.of(approved)
