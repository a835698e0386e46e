"""CheckDecision: gather the facts from the decision view, let the domain rule decide.

A CRM system asks the same question again and again (the same agent, the
same kind of refund), so answers are kept (`AnswerCache`) for as long as they
provably hold: until the view changes, and no later than the next moment at
which a fact the answer rests on starts or ends (an assignment's or
delegation's dates, a role version's effective date).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from services.platform.errors import FailedPrecondition, NotFound
from services.roles.domain.decisions import Answer, DecisionFacts, Holding, may_decide, resolve
from services.roles.domain.model import Money, PersonStatus, Scope
from services.roles.store.decision_view import DecisionView


@dataclass(frozen=True)
class _Kept:
    changes: int  # the view's change count the answer was computed at
    since: datetime  # the time asked about
    until: datetime | None  # the next moment a fact it used starts or ends (None: never)
    answer: Answer


class AnswerCache:
    """Answers by (person, category, amount), each valid over a time window at one view state."""

    def __init__(self, size: int = 10_000):
        self.size = size
        self._kept: dict[tuple[str, str, Money | None], _Kept] = {}

    def get(self, key: tuple[str, str, Money | None], changes: int, at: datetime) -> Answer | None:
        kept = self._kept.get(key)
        if kept is None or kept.changes != changes or at < kept.since or (kept.until and at >= kept.until):
            return None
        return kept.answer

    def put(self, key: tuple[str, str, Money | None], kept: _Kept) -> None:
        if len(self._kept) >= self.size:
            self._kept.clear()  # simple bound; a full cache refills within a few calls each
        self._kept[key] = kept


async def check_decision(
    view: DecisionView,
    person_id: str,
    category_id: str,
    amount: Money | None,
    at: datetime,
    cache: AnswerCache | None = None,
) -> Answer:
    v = await view.fresh()
    key = (person_id, category_id, amount)
    if cache is not None and (answer := cache.get(key, v.changes, at)):
        return answer
    if person_id not in v.people or category_id not in v.categories:
        # Perhaps just created by another replica: look once more before saying it does not exist.
        await view.catch_up()
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
    dated = v.to_delegate.get(person_id, {}).values()
    delegations = [d.facts for d in dated if d.valid_from <= at < d.valid_to]
    # The moments after `at` at which a fact read here starts or ends.
    moments = [t for d in dated for t in (d.valid_from, d.valid_to) if t > at]
    holders = {person_id, *chain, *(d.delegator_id for d in delegations)}
    held = {a for pid in holders for a in v.by_person.get(pid, {}).values()}
    held |= {a for unit in unit_path for a in v.by_unit.get(unit, {}).values()}

    # Only what the rule can use becomes a Holding: the holders' own roles, and
    # in each enclosing unit the assignments that may decide plus one per
    # role (a role held in a unit below stops a WITH_UNASSIGNED_DESCENDANTS
    # scope above). A unit can hold thousands of assignments that cannot.
    depth = {unit: d for d, unit in enumerate(unit_path)}
    by_person: dict[str, list[Holding]] = defaultdict(list)
    by_unit: dict[str, list[Holding]] = defaultdict(list)
    roles_in_unit: set[tuple[str, str]] = set()
    version_moments: dict[str, list[datetime]] = {}
    for a in held:
        if a.valid_from > at:
            moments.append(a.valid_from)
        if a.valid_to is not None and a.valid_to > at:
            moments.append(a.valid_to)
        if a.role_id not in version_moments:
            version_moments[a.role_id] = [
                r.effective_from for r in v.versions.get(a.role_id, ()) if r.effective_from > at
            ]
            moments.extend(version_moments[a.role_id])
        version = v.version_at(a.role_id, at) if a.active_at(at) else None
        if version is None:
            continue
        d = depth.get(a.org_unit_id)
        in_unit = d is not None and (
            (a.org_unit_id, a.role_id) not in roles_in_unit
            or ((d == 0 or a.scope != Scope.ORG_UNIT_ONLY) and may_decide(version.rights, category_id, amount))
        )
        is_holder = a.person_id in holders
        if not (in_unit or is_holder):
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
        if is_holder:
            by_person[a.person_id].append(holding)
        if in_unit:
            by_unit[a.org_unit_id].append(holding)
            roles_in_unit.add((a.org_unit_id, a.role_id))

    answer = resolve(
        DecisionFacts(
            person=person,
            category_id=category_id,
            category_name=category_name,
            amount=amount,
            unit_path=unit_path,
            people=v.people,
            holdings_by_person=by_person,
            holdings_by_unit=by_unit,
            delegations=delegations,
            manager_chain=chain,
        )
    )
    if cache is not None:
        cache.put(key, _Kept(v.changes, at, min(moments, default=None), answer))
    return answer
