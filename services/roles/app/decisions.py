"""CheckDecision: gather the facts from the decision view, let the domain rule decide."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from services.platform.errors import FailedPrecondition, NotFound
from services.roles.domain.decisions import Answer, DecisionFacts, Holding, resolve
from services.roles.domain.model import Money, PersonStatus
from services.roles.store.decision_view import DecisionView


async def check_decision(
    view: DecisionView, person_id: str, category_id: str, amount: Money | None, at: datetime
) -> Answer:
    v = await view.fresh()
    person = v.people.get(person_id)
    if person is None:
        raise NotFound(f"people/{person_id} does not exist")
    category_name = v.categories.get(category_id)
    if category_name is None:
        raise NotFound(f"decisionCategories/{category_id} does not exist")
    if person.status == PersonStatus.TERMINATED:
        raise FailedPrecondition(f"people/{person_id} has left the company", "PERSON_TERMINATED")

    chain = v.manager_chain(person)
    unit_path = v.unit_path(person.org_unit_id)
    delegations = [d.facts for d in v.to_delegate.get(person_id, {}).values() if d.valid_from <= at < d.valid_to]
    holders = {person_id, *chain, *(d.delegator_id for d in delegations)}
    held = {a for pid in holders for a in v.by_person.get(pid, {}).values()}
    held |= {a for unit in unit_path for a in v.by_unit.get(unit, {}).values()}

    by_person: dict[str, list[Holding]] = defaultdict(list)
    by_unit: dict[str, list[Holding]] = defaultdict(list)
    for a in held:
        version = v.version_at(a.role_id, at) if a.active_at(at) else None
        if version is None:
            continue
        holding = Holding(
            a.assignment_id,
            a.person_id,
            a.role_id,
            version.display_name,
            version.version,
            a.org_unit_id,
            a.scope,
            version.rights,
        )
        by_person[a.person_id].append(holding)
        by_unit[a.org_unit_id].append(holding)

    return resolve(
        DecisionFacts(
            person=person,
            category_id=category_id,
            category_name=category_name,
            amount=amount,
            unit_path=unit_path,
            people=v.people,
            holdings_by_person=by_person,
            holdings_by_unit={u: hs for u, hs in by_unit.items() if u in unit_path},
            delegations=delegations,
            manager_chain=chain,
        )
    )
