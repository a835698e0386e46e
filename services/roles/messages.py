"""Mapping between stored rows, domain values and protobuf messages."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from engage.roles.v1 import assignments_pb2, directory_pb2, events_pb2, roles_pb2
from google.type import money_pb2

from services.platform.errors import invalid
from services.platform.protobuf import enum_in, enum_out, ts_in, ts_out, ts_required  # noqa: F401  (re-exported)
from services.platform.resources import etag_for
from services.roles.domain.model import (
    Authority,
    DecisionRight,
    Money,
    OrgUnitKind,
    PersonStatus,
    RoleContent,
    RoleState,
    Scope,
    SkillRequirement,
    Tier,
)
from services.roles.store.tables import (
    AssignmentRow,
    DecisionCategoryRow,
    DelegationRow,
    OrgUnitRow,
    PersonRow,
    RoleRow,
    RoleVersionRow,
)

# ---- enums: proto number <-> domain value ---------------------------------


def kind_in(value: int, field: str) -> OrgUnitKind:
    return enum_in(OrgUnitKind, directory_pb2.OrgUnitKind, value, "ORG_UNIT_KIND_", field)  # type: ignore[no-any-return]


def status_in(value: int, field: str, required: bool = False) -> PersonStatus | None:
    return enum_in(PersonStatus, directory_pb2.PersonStatus, value, "PERSON_STATUS_", field, required)  # type: ignore[no-any-return]


def level_in(value: int, field: str) -> int:
    if value not in range(1, 8):
        raise invalid(field, "must be a management level from FOLLOW (1) to SET_STRATEGY (7)")
    return value


def tier_in(value: int, field: str) -> Tier:
    return enum_in(Tier, roles_pb2.DecisionTier, value, "DECISION_TIER_", field)  # type: ignore[no-any-return]


def scope_in(value: int, field: str) -> Scope:
    if value == 0:
        return Scope.ORG_UNIT_ONLY
    return enum_in(Scope, assignments_pb2.AssignmentScope, value, "ASSIGNMENT_SCOPE_", field)  # type: ignore[no-any-return]


# ---- scalars ------------------------------------------------------------------


def money_in(value: money_pb2.Money, field: str) -> Money:
    currency = value.currency_code
    if len(currency) != 3 or not currency.isalpha() or not currency.isupper():
        raise invalid(f"{field}.currency_code", "must be a 3-letter ISO 4217 code such as EUR")
    if abs(value.nanos) >= 1_000_000_000 or (value.units > 0 > value.nanos) or (value.units < 0 < value.nanos):
        raise invalid(f"{field}.nanos", "must be within ±999,999,999 and have the sign of units")
    amount = Decimal(value.units) + Decimal(value.nanos) / Decimal(1_000_000_000)
    if amount < 0:
        raise invalid(field, "must not be negative")
    return Money(amount, currency)


def money_out(value: Money) -> money_pb2.Money:
    units = int(value.amount)
    nanos = int((value.amount - units) * 1_000_000_000)
    return money_pb2.Money(currency_code=value.currency, units=units, nanos=nanos)


def money_from_text(amount: str | None, currency: str) -> Money | None:
    if amount is None:
        return None
    try:
        return Money(Decimal(amount), currency)
    except InvalidOperation:
        return None


# ---- directory -------------------------------------------------------------------


def org_unit_out(row: OrgUnitRow) -> directory_pb2.OrgUnit:
    name = f"orgUnits/{row.id}"
    return directory_pb2.OrgUnit(
        name=name,
        display_name=row.display_name,
        kind=enum_out(directory_pb2.OrgUnitKind, "ORG_UNIT_KIND_", row.kind),  # type: ignore[arg-type]
        parent=f"orgUnits/{row.parent_id}" if row.parent_id else "",
        manager=f"people/{row.manager_id}" if row.manager_id else "",
        hr_version=row.hr_version,
        etag=etag_for(name, row.revision),
        create_time=ts_out(row.create_time),
        update_time=ts_out(row.update_time),
    )


def person_out(row: PersonRow) -> directory_pb2.Person:
    name = f"people/{row.id}"
    return directory_pb2.Person(
        name=name,
        display_name=row.display_name,
        email=row.email,
        org_unit=f"orgUnits/{row.org_unit_id}",
        manager=f"people/{row.manager_id}" if row.manager_id else "",
        management_level=row.management_level,  # type: ignore[arg-type]
        status=enum_out(directory_pb2.PersonStatus, "PERSON_STATUS_", row.status),  # type: ignore[arg-type]
        hr_version=row.hr_version,
        etag=etag_for(name, row.revision),
        create_time=ts_out(row.create_time),
        update_time=ts_out(row.update_time),
    )


class PersonFields(Protocol):
    """What a person event reads: a stored row, or the plain values an import writes."""

    @property
    def id(self) -> str: ...
    @property
    def org_unit_id(self) -> str: ...
    @property
    def manager_id(self) -> str | None: ...
    @property
    def management_level(self) -> int: ...
    @property
    def status(self) -> str: ...
    @property
    def hr_version(self) -> int: ...
    @property
    def revision(self) -> int: ...


def person_record(row: PersonFields) -> events_pb2.PersonRecord:
    """The person as events show them: ids only, no name or e-mail."""
    return events_pb2.PersonRecord(
        name=f"people/{row.id}",
        org_unit=f"orgUnits/{row.org_unit_id}",
        manager=f"people/{row.manager_id}" if row.manager_id else "",
        management_level=row.management_level,  # type: ignore[arg-type]
        status=enum_out(directory_pb2.PersonStatus, "PERSON_STATUS_", row.status),  # type: ignore[arg-type]
        hr_version=row.hr_version,
    )


# ---- catalogue ------------------------------------------------------------------


def category_out(row: DecisionCategoryRow) -> roles_pb2.DecisionCategory:
    name = f"decisionCategories/{row.id}"
    return roles_pb2.DecisionCategory(
        name=name,
        display_name=row.display_name,
        description=row.description,
        tier=enum_out(roles_pb2.DecisionTier, "DECISION_TIER_", row.tier),  # type: ignore[arg-type]
        min_level=row.min_level,  # type: ignore[arg-type]
        max_level=row.max_level,  # type: ignore[arg-type]
        etag=etag_for(name, row.revision),
        create_time=ts_out(row.create_time),
        update_time=ts_out(row.update_time),
    )


def role_content_in(role: roles_pb2.Role, prefix: str = "role") -> RoleContent:
    rights = []
    for i, right in enumerate(role.decision_rights):
        path = f"{prefix}.decision_rights[{i}]"
        category = right.category.removeprefix("decisionCategories/")
        if not right.category.startswith("decisionCategories/") or not category:
            raise invalid(f"{path}.category", "must be decisionCategories/{id}")
        authority = enum_in(Authority, roles_pb2.Authority, right.authority, "AUTHORITY_", f"{path}.authority")
        limit = money_in(right.limit, f"{path}.limit") if right.HasField("limit") else None
        rights.append(DecisionRight(category, authority, limit))
    skills = [
        SkillRequirement(r.skill, r.min_level, r.weight if r.weight else 1.0, r.mandatory)
        for r in role.skill_requirements
    ]
    return RoleContent(
        purpose=role.purpose,
        responsibilities=tuple(role.responsibilities),
        management_level=role.management_level,
        decision_rights=tuple(rights),
        skill_requirements=tuple(skills),
    )


def rights_to_json(rights: tuple[DecisionRight, ...]) -> list[dict[str, Any]]:
    return [
        {
            "category": r.category,
            "authority": r.authority.value,
            "limit": {"amount": str(r.limit.amount), "currency": r.limit.currency} if r.limit else None,
        }
        for r in rights
    ]


def rights_from_json(data: list[dict[str, Any]]) -> tuple[DecisionRight, ...]:
    return tuple(
        DecisionRight(
            d["category"],
            Authority(d["authority"]),
            Money(Decimal(d["limit"]["amount"]), d["limit"]["currency"]) if d.get("limit") else None,
        )
        for d in data
    )


def skills_to_json(skills: tuple[SkillRequirement, ...]) -> list[dict[str, Any]]:
    return [{"skill": s.skill, "min_level": s.min_level, "weight": s.weight, "mandatory": s.mandatory} for s in skills]


def content_to_json(content: RoleContent) -> dict[str, Any]:
    return {
        "purpose": content.purpose,
        "responsibilities": list(content.responsibilities),
        "management_level": content.management_level,
        "decision_rights": rights_to_json(content.decision_rights),
        "skill_requirements": skills_to_json(content.skill_requirements),
    }


def content_of(row: RoleRow) -> RoleContent:
    return RoleContent(
        purpose=row.purpose,
        responsibilities=tuple(row.responsibilities),
        management_level=row.management_level,
        decision_rights=rights_from_json(row.decision_rights),
        skill_requirements=tuple(SkillRequirement(**s) for s in row.skill_requirements),
    )


def _role_message(name: str, display_name: str, content: dict[str, Any], state: str, version: int) -> roles_pb2.Role:
    role = roles_pb2.Role(
        name=name,
        display_name=display_name,
        purpose=content["purpose"],
        responsibilities=content["responsibilities"],
        management_level=content["management_level"],
        state=enum_out(roles_pb2.Role.State, "STATE_", state),  # type: ignore[arg-type]
        version=version,
    )
    for right in rights_from_json(content["decision_rights"]):
        role.decision_rights.append(
            roles_pb2.DecisionRight(
                category=f"decisionCategories/{right.category}",
                authority=enum_out(roles_pb2.Authority, "AUTHORITY_", right.authority),  # type: ignore[arg-type]
                limit=money_out(right.limit) if right.limit else None,
            )
        )
    for skill in content["skill_requirements"]:
        role.skill_requirements.append(roles_pb2.SkillRequirement(**skill))
    return role


def role_out(row: RoleRow) -> roles_pb2.Role:
    name = f"roles/{row.id}"
    role = _role_message(
        name,
        row.display_name,
        {
            "purpose": row.purpose,
            "responsibilities": row.responsibilities,
            "management_level": row.management_level,
            "decision_rights": row.decision_rights,
            "skill_requirements": row.skill_requirements,
        },
        row.state,
        row.version,
    )
    role.etag = etag_for(name, row.revision)
    role.create_time.CopyFrom(ts_required(row.create_time))
    role.update_time.CopyFrom(ts_required(row.update_time))
    return role


def role_version_out(row: RoleVersionRow, current: RoleRow) -> roles_pb2.Role:
    """A past version, read as `roles/{role}@{version}`."""
    state = RoleState.ACTIVE.value if row.version == current.version else current.state
    role = _role_message(f"roles/{row.role_id}@{row.version}", row.display_name, row.content, state, row.version)
    role.create_time.CopyFrom(ts_required(current.create_time))
    role.update_time.CopyFrom(ts_required(row.effective_from))
    return role


# ---- assignments -----------------------------------------------------------------


def assignment_state(row: AssignmentRow, now: datetime) -> str:
    if row.valid_to is not None and row.valid_to <= now:
        return "ENDED"
    if row.valid_from > now:
        return "SCHEDULED"
    return "ACTIVE"


def assignment_out(row: AssignmentRow, now: datetime) -> assignments_pb2.Assignment:
    name = f"assignments/{row.id}"
    acknowledged = row.acknowledged_version == row.role_version
    return assignments_pb2.Assignment(
        name=name,
        person=f"people/{row.person_id}",
        role=f"roles/{row.role_id}",
        role_version=row.role_version,
        org_unit=f"orgUnits/{row.org_unit_id}",
        scope=enum_out(assignments_pb2.AssignmentScope, "ASSIGNMENT_SCOPE_", row.scope),  # type: ignore[arg-type]
        valid_from=ts_out(row.valid_from),
        valid_to=ts_out(row.valid_to),
        reason=row.reason,
        assigned_by=row.assigned_by,
        state=enum_out(assignments_pb2.Assignment.State, "STATE_", assignment_state(row, now)),  # type: ignore[arg-type]
        acknowledgement_state=(
            assignments_pb2.Assignment.ACKNOWLEDGEMENT_STATE_ACKNOWLEDGED
            if acknowledged
            else assignments_pb2.Assignment.ACKNOWLEDGEMENT_STATE_PENDING
        ),
        acknowledged_role_version=row.acknowledged_version,
        acknowledge_time=ts_out(row.acknowledge_time),
        ended_by=row.ended_by,
        end_reason=row.end_reason,
        etag=etag_for(name, row.revision),
        create_time=ts_out(row.create_time),
        update_time=ts_out(row.update_time),
    )


def delegation_out(row: DelegationRow) -> assignments_pb2.Delegation:
    name = f"delegations/{row.id}"
    cap = money_from_text(row.max_amount, row.currency)
    return assignments_pb2.Delegation(
        name=name,
        delegator=f"people/{row.delegator_id}",
        delegate=f"people/{row.delegate_id}",
        categories=[f"decisionCategories/{c}" for c in row.categories],
        max_amount=money_out(cap) if cap else None,
        valid_from=ts_out(row.valid_from),
        valid_to=ts_out(row.valid_to),
        reason=row.reason,
        created_by=row.created_by,
        revoke_time=ts_out(row.revoke_time),
        etag=etag_for(name, row.revision),
        create_time=ts_out(row.create_time),
    )
