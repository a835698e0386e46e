"""Who may do what: every authorisation decision of the gateway is made here.

- HR administrators (`hr_admin`) act everywhere.
- A manager acts within the org units they head (`OrgUnit.manager`) and every
  unit below them: their team is the people in those units.
- Everyone acts on themselves: sees their own person, unit and assignments,
  acknowledges their own roles, asks "who decides?" for themselves, sees and
  self-assesses their skills, sees their scorecards and awards.
- Skills, role fit, scorecards and awards follow the same scopes: a manager
  sees and assesses the skills of their team, ranks candidates and reads the
  skill matrix of their units, and adjusts or approves their team's awards
  (never their own).

Each route declares one `Permission` with `requires(...)` (a test fails for a
route without one). The permission says who may call the route at all; the
`Access` methods decide per object. An object outside the caller's scope is
answered like one that does not exist (404, same body).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from engage.roles.v1 import assignments_pb2, directory_pb2
from fastapi import Depends, Request

from gateway.identity import Principal, unauthenticated
from gateway.problems import ProblemError, forbidden, not_found

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Permission(StrEnum):
    PUBLIC = "public"  # anyone, signed in or not
    SIGNED_IN = "signed_in"  # any authenticated caller (catalogue, own profile, live events)
    DIRECTORY_READ = "directory.read"  # org units and people in the caller's scope
    ASSIGNMENTS_READ = "assignments.read"  # assignments of people or units in scope
    ASSIGNMENTS_MANAGE = "assignments.manage"  # assign and end roles: HR admins, managers in their units
    ASSIGNMENTS_ACKNOWLEDGE = "assignments.acknowledge"  # the holder only
    DECISIONS_CHECK = "decisions.check"  # "who decides?" for a person in scope
    SKILLS_READ = "skills.read"  # skill levels and role fit of a person in scope
    SKILLS_ASSESS = "skills.assess"  # a person assesses themselves, a manager their team
    TEAM_FIT_READ = "fit.read"  # candidates and skill matrices of managed units: HR admins, managers
    SCORECARDS_READ = "scorecards.read"  # scorecards of people in scope
    AWARDS_READ = "awards.read"  # awards of people in scope
    AWARDS_DECIDE = "awards.decide"  # adjust and approve: HR admins, managers of the person (not their own)
    PERIODS_READ = "periods.read"  # a period's totals against budget: HR admins, managers
    DELEGATIONS_READ = "delegations.read"  # delegations given or received by people in scope
    DELEGATIONS_MANAGE = "delegations.manage"  # a person delegates their own rights (HR anyone's), and revokes


# Permissions of people (and HR administrators): a token naming nobody has nothing to act on.
PERSONAL_PERMISSIONS = frozenset({Permission.DELEGATIONS_READ, Permission.DELEGATIONS_MANAGE})
# Permissions only HR administrators and managers (heads of a unit) hold at all.
MANAGER_PERMISSIONS = frozenset(
    {Permission.ASSIGNMENTS_MANAGE, Permission.TEAM_FIT_READ, Permission.AWARDS_DECIDE, Permission.PERIODS_READ}
)


@dataclass(frozen=True)
class ManagedScope:
    """What a person manages: the top units they head (their team is everyone in these subtrees),
    and those units with every unit below them."""

    heads: tuple[str, ...]
    units: frozenset[str]


def subtrees(units: Sequence[directory_pb2.OrgUnit], roots: Sequence[str]) -> set[str]:
    """The `roots` and every unit below them."""
    children: dict[str, list[str]] = {}
    for u in units:
        children.setdefault(u.parent, []).append(u.name)
    found: set[str] = set()
    stack = list(roots)
    while stack:
        name = stack.pop()
        if name not in found:
            found.add(name)
            stack += children.get(name, [])
    return found


def managed_scope(units: Sequence[directory_pb2.OrgUnit], person: str | None) -> ManagedScope:
    headed = [u.name for u in units if person and u.manager == person]
    # Heads: headed units not inside another headed unit.
    parents = {u.name: u.parent for u in units}
    heads = []
    for h in headed:
        p = parents.get(h, "")
        while p and p not in headed:
            p = parents.get(p, "")
        if not p:
            heads.append(h)
    return ManagedScope(tuple(sorted(heads)), frozenset(subtrees(units, headed)))


class ScopeCache:
    """Managed scopes by person, for one version of the unit tree.

    Walking the tree costs O(units) (half a millisecond for 1,000 units), too much for every request.
    `RolesService.all_units` hands out the same list until it reads the tree again, so another list
    is another tree: the scopes are then computed afresh."""

    def __init__(self) -> None:
        self._tree: object = None
        self._scopes: dict[str | None, ManagedScope] = {}

    def of(self, units: Sequence[directory_pb2.OrgUnit], person: str | None) -> ManagedScope:
        if units is not self._tree:
            self._tree, self._scopes = units, {}
        scope = self._scopes.get(person)
        if scope is None:
            scope = self._scopes[person] = managed_scope(units, person)
        return scope


class Access:
    """The caller of one request and what they may reach; scope is computed once, lazily."""

    def __init__(self, principal: Principal | None, gateway: Any):
        self._principal = principal
        self.gateway = gateway
        self._managed: frozenset[str] | None = None
        self._heads: list[str] | None = None
        self._self: directory_pb2.Person | None = None
        self._people: dict[str, directory_pb2.Person | None] = {}
        self._team: set[str] | None = None

    @property
    def principal(self) -> Principal:
        if self._principal is None:
            raise unauthenticated()
        return self._principal

    @property
    def signed_in(self) -> bool:
        return self._principal is not None

    @property
    def is_admin(self) -> bool:
        return self._principal is not None and self._principal.is_admin

    # ---- scope ----------------------------------------------------------------------

    async def _load_scope(self) -> None:
        if self._managed is not None:
            return
        units = await self.gateway.roles.all_units(self.principal)
        scope = self.gateway.scopes.of(units, self.principal.person)
        self._heads, self._managed = list(scope.heads), scope.units

    async def heads(self) -> list[str]:
        """Top units the caller heads (their team is everyone in these subtrees)."""
        await self._load_scope()
        return list(self._heads or [])

    async def is_manager(self) -> bool:
        return bool(await self.heads())

    async def me(self) -> directory_pb2.Person | None:
        if self._self is None and self.principal.person:
            self._self = await self.person(self.principal.person)
        return self._self

    async def person(self, name: str) -> directory_pb2.Person | None:
        """The person, or None if they do not exist."""
        if name not in self._people:
            try:
                self._people[name] = await self.gateway.roles.get_person(name, self.principal)
            except ProblemError as exc:
                if exc.status not in (404, 422):
                    raise
                self._people[name] = None
        return self._people[name]

    async def manages_unit(self, unit: str) -> bool:
        if self.is_admin:
            return True
        await self._load_scope()
        return unit in (self._managed or frozenset())

    async def sees_unit(self, unit: str) -> bool:
        if await self.manages_unit(unit):
            return True
        me = await self.me()
        return me is not None and me.org_unit == unit

    async def sees_person(self, name: str) -> bool:
        if self.is_admin or name == self.principal.person:
            return True
        person = await self.person(name)
        return person is not None and await self.manages_unit(person.org_unit)

    async def sees_assignment(self, a: assignments_pb2.Assignment) -> bool:
        return await self.manages_unit(a.org_unit) or await self.sees_person(a.person)

    async def team_people(self) -> set[str]:
        """Names of everyone in the units the caller heads and below (not HR admins' whole company)."""
        if self._team is None:
            self._team = set()
            for root in await self.heads():
                self._team |= {p.name for p in await self.gateway.roles.all_people(root, self.principal)}
        return self._team

    async def sees_in_list(self, name: str) -> bool:
        """`sees_person` for filtering a list: one directory read for the whole team, not one per row."""
        return self.is_admin or name == self.principal.person or name in await self.team_people()

    # ---- decisions that raise -------------------------------------------------------------

    async def require_unit(self, unit: str) -> None:
        if not await self.sees_unit(unit):
            raise not_found()

    async def require_person(self, name: str) -> None:
        if not await self.sees_person(name):
            raise not_found()

    async def require_assignment(self, a: assignments_pb2.Assignment) -> None:
        if not await self.sees_assignment(a):
            raise not_found()

    async def require_assign(self, person: str, unit: str) -> None:
        """May assign `person` a role in `unit`: both must be in the caller's managed scope."""
        if self.is_admin:
            return
        if not await self.manages_unit(unit) or not await self.sees_person(person):
            raise not_found()

    async def require_end(self, a: assignments_pb2.Assignment) -> None:
        await self.require_assignment(a)
        if not await self.manages_unit(a.org_unit):
            raise forbidden("Only an HR administrator or a manager of the unit may end this assignment.")

    async def require_acknowledge(self, a: assignments_pb2.Assignment) -> None:
        await self.require_assignment(a)
        if a.person != self.principal.person:
            raise forbidden("Only the holder may acknowledge an assignment.")

    async def require_unit_managed(self, unit: str) -> None:
        if not await self.manages_unit(unit):
            raise not_found()

    async def assessment_source(self, person: str) -> str:
        """The source an assessment of `person` by the caller records: SELF on oneself, else MANAGER."""
        await self.require_person(person)
        return "SELF" if person == self.principal.person else "MANAGER"

    async def require_either(self, *people: str) -> None:
        """One of `people` (a delegator or a delegate) is in the caller's scope."""
        for person in people:
            if await self.sees_person(person):
                return
        raise not_found()

    async def require_delegation(self, delegator: str, delegate: str) -> None:
        """A person delegates their own rights, to a colleague of their unit or someone in their team."""
        if self.is_admin:
            return
        if delegator != self.principal.person:
            raise forbidden("You may delegate only your own decision rights.")
        me, other = await self.me(), await self.person(delegate)
        if other is None or not (
            await self.sees_person(delegate) or (me is not None and me.org_unit == other.org_unit)
        ):
            raise not_found()

    async def require_award_decision(self, person: str) -> None:
        await self.require_person(person)
        if person == self.principal.person:  # else in scope means managed (or an HR administrator)
            raise forbidden("Nobody adjusts or approves their own award.")


def _same_origin(request: Request, public_origin: str) -> bool:
    expected = public_origin.rstrip("/") or f"{request.url.scheme}://{request.headers.get('host', '')}"
    origin = request.headers.get("origin")
    if origin:
        return origin.rstrip("/") == expected
    referer = request.headers.get("referer", "")
    return referer == expected or referer.startswith(expected + "/")


async def authenticate(request: Request) -> Principal | None:
    gateway = request.app.state.gateway
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthenticated("Authorization must be 'Bearer <token>'.")
        return await gateway.verifier.verify(token.strip())
    cookie = request.cookies.get(gateway.settings.cookie_name)
    if cookie:
        principal: Principal = await gateway.verifier.verify(cookie, via_cookie=True)
        # The cookie is SameSite=Lax; unsafe methods must also come from our own pages.
        if request.method not in SAFE_METHODS and not _same_origin(request, gateway.settings.public_origin):
            raise ProblemError(403, "Cross-site request refused (Origin does not match).", "CSRF")
        return principal
    return None


def _rate_limit(request: Request, principal: Principal | None) -> None:
    gateway = request.app.state.gateway
    client = request.client.host if request.client else "unknown"
    key = f"sub:{principal.subject}" if principal else f"ip:{client}"
    wait = gateway.limiter.take(key)
    if wait > 0:
        raise ProblemError(
            429, "Too many requests; slow down.", "RATE_LIMITED", headers={"Retry-After": str(max(1, math.ceil(wait)))}
        )


def requires(permission: Permission) -> Any:
    """Route dependency: authenticates, rate-limits and checks the route's permission."""

    async def access(request: Request) -> Access:
        try:
            principal = await authenticate(request)
        except ProblemError:
            if permission is not Permission.PUBLIC:
                raise
            principal = None
        _rate_limit(request, principal)
        result = Access(principal, request.app.state.gateway)
        if permission is Permission.PUBLIC:
            return result
        if principal is None:
            raise unauthenticated()
        if permission in PERSONAL_PERMISSIONS and not principal.person and not principal.is_admin:
            raise forbidden("Only people do this; this token names no person.")
        if permission is Permission.ASSIGNMENTS_ACKNOWLEDGE and not principal.person:
            raise forbidden("Only people acknowledge roles; this token names no person.")
        if permission in MANAGER_PERMISSIONS and not principal.is_admin and not await result.is_manager():
            raise forbidden("Only HR administrators and managers may do this.")
        return result

    access.permission = permission  # type: ignore[attr-defined]
    return Depends(access)


def route_permission(dependant: Any) -> Permission | None:
    """The permission a route declared (for the test that every route declares one)."""
    for dep in dependant.dependencies:
        found = getattr(dep.call, "permission", None)
        if found is not None:
            return found  # type: ignore[no-any-return]
        nested = route_permission(dep)
        if nested is not None:
            return nested
    return None
