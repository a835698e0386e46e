"""CheckDecision: load the facts, let the domain rule decide."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, or_, select

from services.platform.db import Database
from services.platform.errors import FailedPrecondition, NotFound
from services.roles import messages
from services.roles.app.assignments import active_at
from services.roles.domain.decisions import Answer, DecisionFacts, DelegationFacts, Holding, PersonFacts, resolve
from services.roles.domain.model import Money, PersonStatus, Scope
from services.roles.store.tables import (
    AssignmentRow,
    DecisionCategoryRow,
    DelegationRow,
    OrgUnitRow,
    PersonRow,
    RoleVersionRow,
)

# The person and their managers, nearest first, in one query.
_CHAIN = sa.text(
    """
    WITH RECURSIVE chain(id, manager_id, status, org_unit_id, management_level, depth) AS (
        SELECT id, manager_id, status, org_unit_id, management_level, 0 FROM people WHERE id = :person
        UNION ALL
        SELECT p.id, p.manager_id, p.status, p.org_unit_id, p.management_level, c.depth + 1
        FROM people p JOIN chain c ON p.id = c.manager_id
        WHERE c.depth < 50
    )
    SELECT id, manager_id, status, org_unit_id, management_level, depth FROM chain ORDER BY depth
    """
)


def _facts(row: sa.Row[tuple[str, str | None, str, str, int]] | PersonRow) -> PersonFacts:
    return PersonFacts(row.id, PersonStatus(row.status), row.manager_id, row.org_unit_id, row.management_level)


async def check_decision(db: Database, person_id: str, category_id: str, amount: Money | None, at: datetime) -> Answer:
    async with db.read() as s:
        rows = (await s.execute(_CHAIN, {"person": person_id})).all()
        if not rows:
            raise NotFound(f"people/{person_id} does not exist")
        category = await s.get(DecisionCategoryRow, category_id)
        if category is None:
            raise NotFound(f"decisionCategories/{category_id} does not exist")
        person = _facts(rows[0])
        if person.status == PersonStatus.TERMINATED:
            raise FailedPrecondition(f"people/{person_id} has left the company", "PERSON_TERMINATED")
        people = {}
        chain_ids: list[str] = []
        for r in rows:  # stop at a loop in bad HR data
            if r.id in people:
                break
            people[r.id] = _facts(r)
            if r.depth > 0:
                chain_ids.append(r.id)
        # A manager id that points at nobody is a vacant position too.
        last = rows[-1]
        if last.manager_id and last.manager_id not in people:
            chain_ids.append(last.manager_id)

        unit = await s.get(OrgUnitRow, person.org_unit_id)
        unit_path = [u for u in reversed(unit.path.strip("/").split("/"))] if unit else [person.org_unit_id]

        delegations = (
            await s.exec(
                select(DelegationRow).where(
                    DelegationRow.delegate_id == person_id,
                    col(DelegationRow.valid_from) <= at,
                    col(DelegationRow.valid_to) > at,
                )
            )
        ).all()
        delegation_facts = [
            DelegationFacts(
                d.id, d.delegator_id, frozenset(d.categories), messages.money_from_text(d.max_amount, d.currency)
            )
            for d in delegations
        ]
        holder_ids = {person_id, *chain_ids, *(d.delegator_id for d in delegations)}
        assignments = (
            await s.exec(
                select(AssignmentRow).where(
                    active_at(at),
                    or_(col(AssignmentRow.person_id).in_(holder_ids), col(AssignmentRow.org_unit_id).in_(unit_path)),
                )
            )
        ).all()

        missing = {a.person_id for a in assignments} | {d.delegator_id for d in delegations}
        missing -= people.keys()
        if missing:
            for p in (await s.exec(select(PersonRow).where(col(PersonRow.id).in_(missing)))).all():
                people[p.id] = _facts(p)

        # The role version in force at `at` for each role involved.
        role_ids = {a.role_id for a in assignments}
        versions: dict[str, RoleVersionRow] = {}
        if role_ids:
            for v in (
                await s.exec(
                    select(RoleVersionRow)
                    .where(col(RoleVersionRow.role_id).in_(role_ids), col(RoleVersionRow.effective_from) <= at)
                    .order_by(col(RoleVersionRow.version))
                )
            ).all():
                versions[v.role_id] = v  # later versions overwrite earlier ones

    by_person: dict[str, list[Holding]] = defaultdict(list)
    by_unit: dict[str, list[Holding]] = defaultdict(list)
    for a in assignments:
        version = versions.get(a.role_id)
        if version is None:
            continue
        holding = Holding(
            assignment_id=a.id,
            person_id=a.person_id,
            role_id=a.role_id,
            role_name=version.display_name,
            role_version=version.version,
            org_unit_id=a.org_unit_id,
            scope=Scope(a.scope),
            rights=messages.rights_from_json(version.content["decision_rights"]),
        )
        by_person[a.person_id].append(holding)
        if a.org_unit_id in unit_path:
            by_unit[a.org_unit_id].append(holding)

    return resolve(
        DecisionFacts(
            person=person,
            category_id=category_id,
            category_name=category.display_name,
            amount=amount,
            unit_path=unit_path,
            people=people,
            holdings_by_person=by_person,
            holdings_by_unit=by_unit,
            delegations=delegation_facts,
            manager_chain=chain_ids,
        )
    )
