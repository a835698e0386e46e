"""A manager's team: people, their CRM roles, their fit to those roles and their current scorecards.

Roles come from the roles service; role fit from the skills service's team matrix; scorecards from the
incentives service. The three are read at once; when skills or incentives does not answer, the team
still comes back without their columns (and says so), since the roles are what a manager acts on.
"""

from __future__ import annotations

import asyncio

from engage.incentives.v1 import scorecards_pb2
from engage.roles.v1 import assignments_pb2, directory_pb2
from fastapi import Request

from gateway import models
from gateway.incentives_models import Amount
from gateway.incentives_service import period_ids
from gateway.policy import Access, subtrees
from gateway.problems import ProblemError, not_found
from gateway.skills_models import held_fit

ACTIVE_OR_SCHEDULED = (assignments_pb2.Assignment.STATE_ACTIVE, assignments_pb2.Assignment.STATE_SCHEDULED)


async def _roots(access: Access, request: Request, unit: str | None) -> list[str]:
    gw = request.app.state.gateway
    if unit:
        if not await access.manages_unit(unit):
            raise not_found()
        return [unit]
    if access.is_admin and not await access.heads():
        return [u.name for u in await gw.roles.all_units(access.principal) if not u.parent]
    return await access.heads()


async def _people_and_roles(
    access: Access, request: Request, roots: list[str]
) -> tuple[list[directory_pb2.Person], list[assignments_pb2.Assignment]]:
    gw = request.app.state.gateway
    p = access.principal
    people_lists = [gw.roles.all_people(root, p) for root in roots]
    held_lists = [gw.roles.all_assignments(p, unit=root, state=s) for root in roots for s in ACTIVE_OR_SCHEDULED]
    found = await asyncio.gather(*people_lists, *held_lists)
    people = [x for page in found[: len(roots)] for x in page]
    held = [x for page in found[len(roots) :] for x in page]
    return people, held  # type: ignore[return-value]


async def _role_fit(access: Access, request: Request, roots: list[str]) -> dict[str, list[models.HeldRoleFit]] | None:
    """Person -> fit to each role held; None when the skills service does not answer."""
    gw = request.app.state.gateway
    fits: dict[str, list[models.HeldRoleFit]] = {}
    try:
        for matrix in await asyncio.gather(*(gw.skills.matrix(root, access.principal) for root in roots)):
            for row in matrix.rows:
                fits[row.person] = [held_fit(f) for f in row.roles]
    except ProblemError as exc:
        if exc.status in (404, 422):  # a unit the skills service has not heard of yet: no fit to show
            return fits
        return None
    return fits


async def _scorecards(access: Access, request: Request) -> dict[str, list[models.ScorecardSummary]] | None:
    """Person -> scorecard of the current period of each active scheme; None when incentives does not answer."""
    gw = request.app.state.gateway
    cards: dict[str, list[models.ScorecardSummary]] = {}
    try:
        schemes = await gw.incentives.active_schemes(access.principal)
        periods = [f"{s.name}/periods/{period_ids(s, back=0)[0]}" for s in schemes]
        found = await asyncio.gather(
            *(gw.incentives.period_scorecards(period, access.principal) for period in periods),
            return_exceptions=True,
        )
    except ProblemError:
        return None
    for scheme, page in zip(schemes, found, strict=True):
        if isinstance(page, ProblemError) and page.status == 409:
            continue  # no version of this scheme in force for the current period
        if isinstance(page, BaseException):
            return None
        for card in page:
            payout = Amount.of(card.payout)
            cards.setdefault(card.person, []).append(
                models.ScorecardSummary(
                    scorecard=card.name,
                    schemeName=scheme.display_name,
                    state=models._enum(scorecards_pb2.Scorecard.State.DESCRIPTOR, card.state, "STATE_"),  # type: ignore[arg-type]
                    attainment=card.attainment,
                    payout=payout.text() if payout else "",
                )
            )
    return cards


async def team_of(access: Access, request: Request, unit: str | None, *, enrich: bool = True) -> models.Team:
    gw = request.app.state.gateway
    roots = await _roots(access, request, unit)
    if enrich:
        (people, held), fits, cards = await asyncio.gather(
            _people_and_roles(access, request, roots), _role_fit(access, request, roots), _scorecards(access, request)
        )
    else:
        (people, held), fits, cards = await _people_and_roles(access, request, roots), {}, {}
    all_units = await gw.roles.all_units(access.principal)
    in_roots = subtrees(all_units, roots)
    by_person: dict[str, list[models.Assignment]] = {}
    for a in held:
        by_person.setdefault(a.person, []).append(models.Assignment.of(a))
    seen: set[str] = set()
    members = []
    for p in sorted(people, key=lambda p: (p.org_unit, -int(p.management_level), p.display_name)):
        if p.name not in seen:
            seen.add(p.name)
            members.append(
                models.TeamMember(
                    person=models.Person.of(p),
                    assignments=by_person.get(p.name, []),
                    roleFit=None if fits is None or not enrich else fits.get(p.name, []),
                    scorecards=None if cards is None or not enrich else cards.get(p.name, []),
                )
            )
    unavailable: list[str] = [name for name, got in (("skills", fits), ("incentives", cards)) if got is None]
    return models.Team(
        orgUnits=[models.OrgUnit.of(u) for u in all_units if u.name in in_roots],
        members=members,
        unavailable=unavailable,  # type: ignore[arg-type]
    )
