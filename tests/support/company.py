"""A small company, loaded through the public API as an HR system would.

ACME (company, head: CEO)
├── SALES (line of business, head: VP-S)
│   └── SALES-N (team, head: TL-N)      agents A1, A2
└── SERVICE (line of business, head: VP-C)
    └── SVC-1 (team, head: TL-S)        agents S1, S2
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import TypeVar

from engage.roles.v1 import assignments_pb2, directory_pb2, roles_pb2
from google.type import money_pb2

Message = TypeVar("Message")

UNITS = [
    ("ACME", "Acme Group", directory_pb2.ORG_UNIT_KIND_COMPANY, "", "CEO"),
    ("SALES", "Sales", directory_pb2.ORG_UNIT_KIND_LINE_OF_BUSINESS, "ACME", "VP-S"),
    ("SALES-N", "Sales North", directory_pb2.ORG_UNIT_KIND_TEAM, "SALES", "TL-N"),
    ("SERVICE", "Customer Service", directory_pb2.ORG_UNIT_KIND_LINE_OF_BUSINESS, "ACME", "VP-C"),
    ("SVC-1", "Service Team 1", directory_pb2.ORG_UNIT_KIND_TEAM, "SERVICE", "TL-S"),
]

PEOPLE = [
    ("CEO", "Chief Executive", "ACME", "", 7),
    ("VP-S", "VP Sales", "SALES", "CEO", 6),
    ("VP-C", "VP Service", "SERVICE", "CEO", 6),
    ("TL-N", "Team lead north", "SALES-N", "VP-S", 4),
    ("TL-S", "Team lead service", "SVC-1", "VP-C", 4),
    ("A1", "Agent one", "SALES-N", "TL-N", 3),
    ("A2", "Agent two", "SALES-N", "TL-N", 2),
    ("S1", "Service one", "SVC-1", "TL-S", 3),
    ("S2", "Service two", "SVC-1", "TL-S", 3),
]


def unit_row(
    uid: str, name: str, kind: int, parent: str, manager: str, version: int = 1
) -> directory_pb2.ImportDirectoryRequest:
    return directory_pb2.ImportDirectoryRequest(
        org_unit=directory_pb2.OrgUnit(
            name=f"orgUnits/{uid}",
            display_name=name,
            kind=kind,  # type: ignore[arg-type]
            parent=f"orgUnits/{parent}" if parent else "",
            manager=f"people/{manager}" if manager else "",
            hr_version=version,
        )
    )


def person_row(
    pid: str,
    name: str,
    unit: str,
    manager: str,
    level: int,
    version: int = 1,
    status: int = directory_pb2.PERSON_STATUS_ACTIVE,
) -> directory_pb2.ImportDirectoryRequest:
    return directory_pb2.ImportDirectoryRequest(
        person=directory_pb2.Person(
            name=f"people/{pid}",
            display_name=name,
            email=f"{pid.lower()}@acme.example",
            org_unit=f"orgUnits/{unit}",
            manager=f"people/{manager}" if manager else "",
            management_level=level,  # type: ignore[arg-type]
            status=status,  # type: ignore[arg-type]
            hr_version=version,
        )
    )


def company_rows() -> list[directory_pb2.ImportDirectoryRequest]:
    # People first and reports before managers: the import must not care.
    return [person_row(*p) for p in reversed(PEOPLE)] + [unit_row(*u) for u in reversed(UNITS)]


async def stream(rows: Sequence[Message]) -> AsyncIterator[Message]:
    """The messages of a client stream (directory rows, assessment batches, ...)."""
    for row in rows:
        yield row


ROOT_UNIT = directory_pb2.CreateOrgUnitRequest(
    org_unit_id="ROOT", org_unit=directory_pb2.OrgUnit(display_name="Root", kind=directory_pb2.ORG_UNIT_KIND_COMPANY)
)


def person_in_root(person_id: str) -> directory_pb2.CreatePersonRequest:
    """A create of a person under ROOT_UNIT, with a request id of its own (the same on every retry)."""
    return directory_pb2.CreatePersonRequest(
        person_id=person_id,
        request_id=f"req-{person_id}",
        person=directory_pb2.Person(display_name=f"Person {person_id}", org_unit="orgUnits/ROOT", management_level=2),
    )


def eur(units: int) -> money_pb2.Money:
    return money_pb2.Money(currency_code="EUR", units=units)


CATEGORIES = [
    ("customer-refund", "Customer refund", roles_pb2.DECISION_TIER_DESIGN_EXECUTION),
    ("price-exception", "Price exception", roles_pb2.DECISION_TIER_OPERATIONAL_TACTICAL),
    ("market-entry", "Market entry", roles_pb2.DECISION_TIER_STRATEGIC),
]


def role(
    display: str, level: int, rights: list[tuple[str, int, int | None]], skills: Sequence[tuple[str, int, bool]] = ()
) -> roles_pb2.Role:
    return roles_pb2.Role(
        display_name=display,
        purpose=f"{display} purpose",
        responsibilities=[f"{display} responsibility"],
        management_level=level,  # type: ignore[arg-type]
        decision_rights=[
            roles_pb2.DecisionRight(
                category=f"decisionCategories/{c}",
                authority=a,  # type: ignore[arg-type]
                limit=eur(limit) if limit is not None else None,
            )
            for c, a, limit in rights
        ],
        skill_requirements=[
            roles_pb2.SkillRequirement(skill=s, min_level=lv, weight=1, mandatory=m) for s, lv, m in skills
        ],
    )


ROLES = {
    "service-agent": role(
        "Service agent", 2, [("customer-refund", roles_pb2.AUTHORITY_DECIDE, 500)], [("customer-empathy", 3, True)]
    ),
    "team-lead": role(
        "Team lead",
        4,
        [
            ("customer-refund", roles_pb2.AUTHORITY_DECIDE, 5000),
            ("price-exception", roles_pb2.AUTHORITY_RECOMMEND, None),
        ],
    ),
    "lob-head": role(
        "Line of business head",
        6,
        [
            ("customer-refund", roles_pb2.AUTHORITY_DECIDE, None),
            ("price-exception", roles_pb2.AUTHORITY_DECIDE, 100000),
            ("market-entry", roles_pb2.AUTHORITY_RECOMMEND, None),
        ],
    ),
    "chief": role(
        "Chief executive",
        7,
        [("market-entry", roles_pb2.AUTHORITY_DECIDE, None), ("price-exception", roles_pb2.AUTHORITY_DECIDE, None)],
    ),
}


async def load_company(client: object) -> None:
    """Directory by import, then categories and active roles."""
    c = client
    result = await c.directory.ImportDirectory(stream(company_rows()), metadata=c.admin, timeout=30)  # type: ignore[attr-defined]
    assert result.rejected_count == 0, result
    for cid, name, tier in CATEGORIES:
        await c.roles.CreateDecisionCategory(  # type: ignore[attr-defined]
            roles_pb2.CreateDecisionCategoryRequest(
                decision_category_id=cid, decision_category=roles_pb2.DecisionCategory(display_name=name, tier=tier)
            ),
            metadata=c.admin,
            timeout=10,  # type: ignore[attr-defined]
        )
    for rid, r in ROLES.items():
        await c.roles.CreateRole(roles_pb2.CreateRoleRequest(role_id=rid, role=r), metadata=c.admin, timeout=10)  # type: ignore[attr-defined]
        await c.roles.ActivateRole(roles_pb2.ActivateRoleRequest(name=f"roles/{rid}"), metadata=c.admin, timeout=10)  # type: ignore[attr-defined]


async def assign(
    client: object, person: str, role_id: str, unit: str, scope: int = 0, metadata: object = None, request_id: str = ""
) -> assignments_pb2.Assignment:
    c = client
    return await c.assignments.CreateAssignment(  # type: ignore[attr-defined,no-any-return]
        assignments_pb2.CreateAssignmentRequest(
            assignment=assignments_pb2.Assignment(
                person=f"people/{person}",
                role=f"roles/{role_id}",
                org_unit=f"orgUnits/{unit}",
                scope=scope,
                reason="test",  # type: ignore[arg-type]
            ),
            request_id=request_id,
        ),
        metadata=metadata or c.admin,
        timeout=10,  # type: ignore[attr-defined]
    )
