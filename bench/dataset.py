"""The data the benchmark loads and the requests it sends.

The service benchmark uses a company of 25 org units and 2,025 people:

    ACME (head CEO, role chief)
    └── LOB-l, l < 4 (head HEAD-l, role lob-head)
        └── TEAM-l-t, t < 5 (head LEAD-l-t, role team-lead)   100 agents each

CheckDecision asks whether an agent may refund 2,000 EUR: the agent holds no
right, so the walk goes to the team lead's assignment covering the team.
CreateAssignment gives request `i` the role service-agent to agent `i % 2000`
in unit `i // 2000`: 50,000 distinct triples, so no call hits the
duplicate-assignment rule as long as every request index is used once.

The import benchmark uses a generated directory: a tree of org units (eight
children each) and people spread over them, each unit headed by a person who
reports to the head of the parent unit.
"""

from __future__ import annotations

import uuid

from engage.roles.v1 import assignments_pb2, decisions_pb2, directory_pb2, roles_pb2
from google.type import money_pb2

LOBS = 4
TEAMS_PER_LOB = 5
AGENTS_PER_TEAM = 100
AGENTS = LOBS * TEAMS_PER_LOB * AGENTS_PER_TEAM

ROOT = "ACME"
ASSIGNED_ROLE = "service-agent"
REFUND = "customer-refund"


def _lob(lob: int) -> str:
    return f"LOB-{lob}"


def _team(lob: int, team: int) -> str:
    return f"TEAM-{lob}-{team}"


def _lead(lob: int, team: int) -> str:
    return f"LEAD-{lob}-{team}"


def agent_id(index: int) -> str:
    return f"AGENT-{index % AGENTS:05d}"


def lead_of(index: int) -> str:
    """The team lead of agent `index`."""
    lob, team = divmod((index % AGENTS) // AGENTS_PER_TEAM, TEAMS_PER_LOB)
    return _lead(lob, team)


UNITS: list[str] = (
    [ROOT]
    + [_lob(lob) for lob in range(LOBS)]
    + [_team(lob, team) for lob in range(LOBS) for team in range(TEAMS_PER_LOB)]
)
ASSIGNMENT_CAPACITY = AGENTS * len(UNITS)


def _unit(uid: str, kind: int, parent: str, manager: str) -> directory_pb2.ImportDirectoryRequest:
    return directory_pb2.ImportDirectoryRequest(
        org_unit=directory_pb2.OrgUnit(
            name=f"orgUnits/{uid}",
            display_name=f"Unit {uid}",
            kind=kind,  # type: ignore[arg-type]
            parent=f"orgUnits/{parent}" if parent else "",
            manager=f"people/{manager}" if manager else "",
            hr_version=1,
        )
    )


def _person(pid: str, unit: str, manager: str, level: int) -> directory_pb2.ImportDirectoryRequest:
    return directory_pb2.ImportDirectoryRequest(
        person=directory_pb2.Person(
            name=f"people/{pid}",
            display_name=f"Person {pid}",
            email=f"{pid.lower()}@bench.example",
            org_unit=f"orgUnits/{unit}",
            manager=f"people/{manager}" if manager else "",
            management_level=level,  # type: ignore[arg-type]
            status=directory_pb2.PERSON_STATUS_ACTIVE,
            hr_version=1,
        )
    )


def company_rows() -> list[directory_pb2.ImportDirectoryRequest]:
    rows = [_unit(ROOT, directory_pb2.ORG_UNIT_KIND_COMPANY, "", "CEO"), _person("CEO", ROOT, "", 7)]
    for lob in range(LOBS):
        head = f"HEAD-{lob}"
        rows.append(_unit(_lob(lob), directory_pb2.ORG_UNIT_KIND_LINE_OF_BUSINESS, ROOT, head))
        rows.append(_person(head, _lob(lob), "CEO", 6))
        for team in range(TEAMS_PER_LOB):
            unit, lead = _team(lob, team), _lead(lob, team)
            rows.append(_unit(unit, directory_pb2.ORG_UNIT_KIND_TEAM, _lob(lob), lead))
            rows.append(_person(lead, unit, head, 4))
    for index in range(AGENTS):
        lob, team = divmod(index // AGENTS_PER_TEAM, TEAMS_PER_LOB)
        rows.append(_person(agent_id(index), _team(lob, team), lead_of(index), 3))
    return rows


CATEGORIES: list[tuple[str, str, int]] = [
    (REFUND, "Customer refund", roles_pb2.DECISION_TIER_DESIGN_EXECUTION),
    ("price-exception", "Price exception", roles_pb2.DECISION_TIER_OPERATIONAL_TACTICAL),
    ("market-entry", "Market entry", roles_pb2.DECISION_TIER_STRATEGIC),
]


def category_requests() -> list[roles_pb2.CreateDecisionCategoryRequest]:
    return [
        roles_pb2.CreateDecisionCategoryRequest(
            decision_category_id=cid,
            decision_category=roles_pb2.DecisionCategory(display_name=name, tier=tier),  # type: ignore[arg-type]
        )
        for cid, name, tier in CATEGORIES
    ]


def _eur(units: int) -> money_pb2.Money:
    return money_pb2.Money(currency_code="EUR", units=units)


def _role(display: str, level: int, rights: list[tuple[str, int, int | None]]) -> roles_pb2.Role:
    return roles_pb2.Role(
        display_name=display,
        purpose=f"{display}: benchmark role",
        responsibilities=[f"{display} responsibility"],
        management_level=level,  # type: ignore[arg-type]
        decision_rights=[
            roles_pb2.DecisionRight(
                category=f"decisionCategories/{category}",
                authority=authority,  # type: ignore[arg-type]
                limit=_eur(limit) if limit is not None else None,
            )
            for category, authority, limit in rights
        ],
    )


DECIDE = roles_pb2.AUTHORITY_DECIDE
RECOMMEND = roles_pb2.AUTHORITY_RECOMMEND
ROLES: dict[str, roles_pb2.Role] = {
    ASSIGNED_ROLE: _role("Service agent", 2, [(REFUND, DECIDE, 500)]),
    "team-lead": _role("Team lead", 4, [(REFUND, DECIDE, 5000), ("price-exception", RECOMMEND, None)]),
    "lob-head": _role("Line of business head", 6, [(REFUND, DECIDE, None), ("price-exception", DECIDE, 100000)]),
    "chief": _role("Chief executive", 7, [("market-entry", DECIDE, None), ("price-exception", DECIDE, None)]),
}
ROLE_NAMES = [f"roles/{rid}" for rid in ROLES]


def _assignment(person: str, role: str, unit: str, scope: int) -> assignments_pb2.CreateAssignmentRequest:
    return assignments_pb2.CreateAssignmentRequest(
        assignment=assignments_pb2.Assignment(
            person=f"people/{person}",
            role=f"roles/{role}",
            org_unit=f"orgUnits/{unit}",
            scope=scope,  # type: ignore[arg-type]
            reason="benchmark",
        ),
        request_id=str(uuid.uuid4()),
    )


def seed_assignments() -> list[assignments_pb2.CreateAssignmentRequest]:
    """The managers hold their roles; the agents hold nothing yet."""
    subtree = assignments_pb2.ASSIGNMENT_SCOPE_WITH_DESCENDANTS
    out = [_assignment("CEO", "chief", ROOT, subtree)]
    for lob in range(LOBS):
        out.append(_assignment(f"HEAD-{lob}", "lob-head", _lob(lob), subtree))
        for team in range(TEAMS_PER_LOB):
            out.append(_assignment(_lead(lob, team), "team-lead", _team(lob, team), subtree))
    return out


# ---- requests of the measured calls, by request index -------------------------


def check_decision(index: int) -> decisions_pb2.CheckDecisionRequest:
    return decisions_pb2.CheckDecisionRequest(
        person=f"people/{agent_id(index)}", category=f"decisionCategories/{REFUND}", amount=_eur(2000)
    )


def get_role(index: int) -> roles_pb2.GetRoleRequest:
    return roles_pb2.GetRoleRequest(name=ROLE_NAMES[index % len(ROLE_NAMES)])


def create_assignment(index: int) -> assignments_pb2.CreateAssignmentRequest:
    if not 0 <= index < ASSIGNMENT_CAPACITY:
        raise ValueError(f"request index {index} is outside the {ASSIGNMENT_CAPACITY} distinct assignments")
    unit = UNITS[index // AGENTS]
    return _assignment(agent_id(index), ASSIGNED_ROLE, unit, assignments_pb2.ASSIGNMENT_SCOPE_ORG_UNIT_ONLY)


# ---- the large directory of the import benchmark ------------------------------

UNIT_FANOUT = 8


def import_rows(people: int, units: int) -> list[directory_pb2.ImportDirectoryRequest]:
    """`units` org units in a tree and `people` people; person k < units heads unit k."""
    if people < units:
        raise ValueError("every unit needs a head: people must be at least units")

    def unit_id(k: int) -> str:
        return f"BU-{k:04d}"

    def person_id(k: int) -> str:
        return f"BP-{k:06d}"

    def parent(k: int) -> int:
        return (k - 1) // UNIT_FANOUT

    rows = []
    for k in range(units):
        kind = directory_pb2.ORG_UNIT_KIND_COMPANY if k == 0 else directory_pb2.ORG_UNIT_KIND_DEPARTMENT
        rows.append(_unit(unit_id(k), kind, unit_id(parent(k)) if k else "", person_id(k)))
    for k in range(people):
        if k < units:  # the head of unit k reports to the head of the parent unit
            rows.append(_person(person_id(k), unit_id(k), person_id(parent(k)) if k else "", 5))
        else:
            unit = k % units
            rows.append(_person(person_id(k), unit_id(unit), person_id(unit), 3))
    return rows
