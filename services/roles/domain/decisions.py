"""Rules of engagement: may this person decide, or to whom do they escalate?

A pure function over facts the use case loads. The walk:
1. the person's own DECIDE rights (from roles held at the time asked);
2. delegations to the person, bounded by the delegator's own rights;
3. holders of the category whose assignment covers the person's org unit,
   from the nearest enclosing unit upwards (within a unit: the person's own
   line first, then the lowest sufficient management level);
4. the manager chain upwards; a vacant position (manager missing, on leave or
   terminated) falls to the next manager up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from services.roles.domain.model import Authority, DecisionRight, Money, PersonStatus, Scope


class Outcome(StrEnum):
    DECIDE = "DECIDE"
    ESCALATE = "ESCALATE"


class StepKind(StrEnum):
    OWN_RIGHTS = "OWN_RIGHTS"
    DELEGATION = "DELEGATION"
    SCOPE_HOLDER = "SCOPE_HOLDER"
    MANAGER = "MANAGER"


@dataclass(frozen=True)
class PersonFacts:
    id: str
    status: PersonStatus
    manager_id: str | None
    org_unit_id: str
    level: int = 0


@dataclass(frozen=True)
class Holding:
    """A role held through an assignment, with the rights of the role version in force."""

    assignment_id: str
    person_id: str
    role_id: str
    role_name: str
    role_version: int
    org_unit_id: str
    scope: Scope
    rights: tuple[DecisionRight, ...]


@dataclass(frozen=True)
class DelegationFacts:
    id: str
    delegator_id: str
    categories: frozenset[str]
    max_amount: Money | None


@dataclass(frozen=True)
class Step:
    kind: StepKind
    person_id: str
    org_unit_id: str
    may_decide: bool
    note: str


@dataclass(frozen=True)
class Grant:
    holder_id: str
    holding: Holding
    limit: Money | None
    delegation_id: str = ""


@dataclass(frozen=True)
class Target:
    person_id: str
    role_id: str
    org_unit_id: str
    may_decide: bool


@dataclass
class Answer:
    outcome: Outcome
    explanation: str
    grant: Grant | None = None
    escalate_to: Target | None = None
    chain: list[Step] = field(default_factory=list)


@dataclass
class DecisionFacts:
    person: PersonFacts
    category_id: str
    category_name: str
    amount: Money | None
    # The person's unit first, then each enclosing unit up to the root.
    unit_path: list[str]
    people: dict[str, PersonFacts]
    # Roles held at the time asked: by holder, and by the unit they are held in.
    holdings_by_person: dict[str, list[Holding]]
    holdings_by_unit: dict[str, list[Holding]]
    delegations: list[DelegationFacts]
    # Managers above the person, nearest first (ids, maybe unknown to `people`).
    manager_chain: list[str]


def right_covers(right: DecisionRight, category_id: str, amount: Money | None) -> tuple[bool, str]:
    """Whether a right lets its holder decide; the note says why not."""
    if right.category != category_id:
        return False, "not this category"
    if right.authority != Authority.DECIDE:
        return False, f"only {right.authority.value} on this category"
    if amount is None or right.limit is None:
        return True, "no limit applies" if right.limit is None else f"up to {right.limit}"
    if right.limit.currency != amount.currency:
        return False, f"limit is in {right.limit.currency}, the amount in {amount.currency}"
    if amount.amount > right.limit.amount:
        return False, f"limit {right.limit} is below {amount}"
    return True, f"up to {right.limit}"


def may_decide(rights: tuple[DecisionRight, ...], category_id: str, amount: Money | None) -> bool:
    """Whether some right covers the decision: `right_covers` without the
    words (a team's unit can hold a hundred assignments that cannot decide)."""
    for right in rights:
        if right.category != category_id or right.authority != Authority.DECIDE:
            continue
        limit = right.limit
        if amount is None or limit is None or (limit.currency == amount.currency and amount.amount <= limit.amount):
            return True
    return False


def _best_grant(holdings: list[Holding], category_id: str, amount: Money | None) -> tuple[Grant | None, str]:
    """The first holding whose right covers the decision, or why none does."""
    reasons = []
    for holding in sorted(holdings, key=lambda h: (h.role_id, h.assignment_id)):
        for right in holding.rights:
            ok, note = right_covers(right, category_id, amount)
            if ok:
                return Grant(
                    holding.person_id, holding, right.limit
                ), f"{holding.role_name} (v{holding.role_version}): {note}"
            if right.category == category_id:
                reasons.append(f"{holding.role_name} (v{holding.role_version}): {note}")
    if not holdings:
        return None, "holds no role"
    return None, "; ".join(reasons) or "no role gives a right on this category"


def _covers_unit(holding: Holding, depth: int, path: list[str], holdings_by_unit: dict[str, list[Holding]]) -> bool:
    """Whether an assignment in `path[depth]` covers the person's unit `path[0]`."""
    if depth == 0:
        return True
    if holding.scope == Scope.WITH_DESCENDANTS:
        return True
    if holding.scope == Scope.WITH_UNASSIGNED_DESCENDANTS:
        # Covers only units with no holder of the same role of their own
        # between the person's unit and this one.
        return not any(h.role_id == holding.role_id for unit in path[:depth] for h in holdings_by_unit.get(unit, []))
    return False


def resolve(facts: DecisionFacts) -> Answer:
    person = facts.person
    what = facts.category_name + (f" for {facts.amount}" if facts.amount else "")
    chain: list[Step] = []

    # 1. Own rights.
    if person.status == PersonStatus.ACTIVE:
        grant, note = _best_grant(facts.holdings_by_person.get(person.id, []), facts.category_id, facts.amount)
        chain.append(Step(StepKind.OWN_RIGHTS, person.id, person.org_unit_id, grant is not None, note))
        if grant is not None:
            return Answer(
                Outcome.DECIDE,
                f"You may decide {what}: your role {grant.holding.role_name} (v{grant.holding.role_version}) "
                f"lets you decide {facts.category_name}"
                + (f" up to {grant.limit}." if grant.limit else " without a monetary limit."),
                grant=grant,
                chain=chain,
            )
    else:
        chain.append(Step(StepKind.OWN_RIGHTS, person.id, person.org_unit_id, False, "person is on leave"))

    # 2. Delegations (never re-delegated: only the delegator's own roles count).
    if person.status == PersonStatus.ACTIVE:
        for delegation in sorted(facts.delegations, key=lambda d: d.id):
            if facts.category_id not in delegation.categories:
                continue
            delegator = facts.people.get(delegation.delegator_id)
            cap = delegation.max_amount
            if delegator is None or delegator.status == PersonStatus.TERMINATED:
                note, grant = "the delegator has left", None
            elif (
                facts.amount is not None
                and cap is not None
                and (cap.currency != facts.amount.currency or facts.amount.amount > cap.amount)
            ):
                note, grant = f"delegation is capped at {cap}", None
            else:
                grant, note = _best_grant(
                    facts.holdings_by_person.get(delegation.delegator_id, []), facts.category_id, facts.amount
                )
            chain.append(
                Step(StepKind.DELEGATION, delegation.delegator_id, person.org_unit_id, grant is not None, note)
            )
            if grant is not None:
                limit = (
                    cap if cap is not None and (grant.limit is None or cap.amount < grant.limit.amount) else grant.limit
                )
                return Answer(
                    Outcome.DECIDE,
                    f"You may decide {what} on behalf of people/{delegation.delegator_id}, who delegated "
                    f"{facts.category_name} to you"
                    + (f" up to {limit}." if limit else ".")
                    + " They remain accountable.",
                    grant=Grant(grant.holder_id, grant.holding, limit, delegation.id),
                    chain=chain,
                )

    # 3. Holders in the enclosing scopes, nearest unit first.
    for depth, unit in enumerate(facts.unit_path):
        candidates = []
        for holding in facts.holdings_by_unit.get(unit, []):
            if (
                holding.person_id == person.id
                or not may_decide(holding.rights, facts.category_id, facts.amount)
                or not _covers_unit(holding, depth, facts.unit_path, facts.holdings_by_unit)
            ):
                continue
            holder = facts.people.get(holding.person_id)
            grant, note = _best_grant([holding], facts.category_id, facts.amount)
            if grant is None:
                continue
            if holder is None or holder.status != PersonStatus.ACTIVE:
                chain.append(Step(StepKind.SCOPE_HOLDER, holding.person_id, unit, False, f"{note}, but not active"))
                continue
            candidates.append((holding, note))
        if candidates:
            # Several may decide: the person's own manager first, then the
            # lowest sufficient level (decide as low as possible), then by id.
            def rank(candidate: tuple[Holding, str]) -> tuple[int, int, str, str]:
                h = candidate[0]
                in_line = 0 if h.person_id in facts.manager_chain else 1
                return (in_line, facts.people[h.person_id].level, h.person_id, h.assignment_id)

            holding, note = min(candidates, key=rank)
            chain.append(Step(StepKind.SCOPE_HOLDER, holding.person_id, unit, True, note))
            return Answer(
                Outcome.ESCALATE,
                f"You may not decide {what}. Escalate to people/{holding.person_id}, who holds "
                f"{holding.role_name} (v{holding.role_version}) for orgUnits/{unit} and may decide it ({note}).",
                escalate_to=Target(holding.person_id, holding.role_id, unit, True),
                chain=chain,
            )

    # 4. Up the manager chain; vacant positions fall to the next manager up.
    top: PersonFacts | None = None
    for manager_id in facts.manager_chain:
        manager = facts.people.get(manager_id)
        if manager is None or manager.status != PersonStatus.ACTIVE:
            why = "not in the directory" if manager is None else f"is {manager.status.value.lower()}"
            chain.append(
                Step(
                    StepKind.MANAGER,
                    manager_id,
                    manager.org_unit_id if manager else "",
                    False,
                    f"position vacant ({why}); falls to the next manager up",
                )
            )
            continue
        top = manager
        grant, note = _best_grant(facts.holdings_by_person.get(manager_id, []), facts.category_id, facts.amount)
        chain.append(Step(StepKind.MANAGER, manager_id, manager.org_unit_id, grant is not None, note))
        if grant is not None:
            return Answer(
                Outcome.ESCALATE,
                f"You may not decide {what}. Escalate to your manager people/{manager_id}, whose role "
                f"{grant.holding.role_name} (v{grant.holding.role_version}) lets them decide it.",
                escalate_to=Target(manager_id, grant.holding.role_id, grant.holding.org_unit_id, True),
                chain=chain,
            )

    if top is None:
        return Answer(
            Outcome.ESCALATE,
            f"You may not decide {what}, and no one above you in the organisation is available to decide it. "
            "Raise it with HR.",
            chain=chain,
        )
    return Answer(
        Outcome.ESCALATE,
        f"You may not decide {what}, and no role above you grants that right. Escalate to people/{top.id}, "
        "the top of your manager chain, who must settle it or define the right.",
        escalate_to=Target(top.id, "", top.org_unit_id, False),
        chain=chain,
    )
