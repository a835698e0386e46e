"""The demo company, Northbridge Bank, loaded through the roles gRPC API.

`make run` loads it. To load it yourself into a running roles service:

    .venv/bin/python -m scripts.demo_company [--target 127.0.0.1:50051]

What gets loaded:
- the directory, in one ImportDirectory stream: the bank, five lines of
  business (Retail Banking, Business Banking, Wealth Management, Customer
  Service, Marketing) and a CRM programme office, their departments and teams,
  and 300 people with managers and management levels 1-7;
- decision categories in all three tiers, from customer refunds to market entry;
- CRM roles with decision rights, limits in EUR and required skills, activated;
- role assignments: each person gets the roles their team and level call for.

The data is the same on every run (a seeded random.Random), and loading it
again changes nothing: the import reports every row UNCHANGED, existing
categories and roles are kept, existing assignments are skipped. Every create
carries a request id derived from its content, so a retried call is safe.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import sys
import time
import unicodedata
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import grpc
from engage.roles.v1 import (
    assignments_pb2,
    assignments_pb2_grpc,
    decisions_pb2,
    decisions_pb2_grpc,
    directory_pb2,
    directory_pb2_grpc,
    roles_pb2,
    roles_pb2_grpc,
)
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from google.type import money_pb2
from grpc_status import rpc_status

COMPANY_ID = "NB"
COMPANY_NAME = "Northbridge Bank"
EMAIL_DOMAIN = "northbridge.example"
SEED = 20_240_601
FIRST_EMPLOYEE_NUMBER = 10_001
CURRENCY = "EUR"
# Namespace of the request ids the loader derives from request contents.
REQUEST_NAMESPACE = uuid.UUID("6f1c2a0e-5b7d-4c1e-9a51-3e0d6c8b2f47")

KIND = directory_pb2.OrgUnitKind
TIER = roles_pb2.DecisionTier
AUTH = roles_pb2.Authority
SCOPE = assignments_pb2.AssignmentScope

# ---- the organisation ------------------------------------------------------------

# A team: (id, name, members besides the lead, profile). The profile decides
# the members' levels and roles (see LEVEL_WEIGHTS and member_roles).
Team = tuple[str, str, int, str]
Department = tuple[str, str, list[Team]]
LineOfBusiness = tuple[str, str, list[Department]]

LINES_OF_BUSINESS: list[LineOfBusiness] = [
    ("RB", "Retail Banking", [
        ("RB-BRANCH", "Branch Network", [
            ("RB-BRANCH-N", "Branches North", 10, "service"),
            ("RB-BRANCH-S", "Branches South", 10, "service"),
            ("RB-BRANCH-E", "Branches East", 10, "service"),
            ("RB-BRANCH-W", "Branches West", 10, "service"),
        ]),
        ("RB-LENDING", "Consumer Lending", [
            ("RB-MORTGAGES", "Mortgages", 8, "relationship"),
            ("RB-CARDS", "Cards and Personal Loans", 8, "service"),
        ]),
        ("RB-DIGITAL", "Digital Banking", [
            ("RB-DIGITAL-SUPPORT", "Online and Mobile Support", 9, "service"),
            ("RB-ONBOARDING", "Digital Onboarding", 7, "service"),
        ]),
    ]),
    ("BB", "Business Banking", [
        ("BB-SME", "SME Banking", [
            ("BB-SME-N", "SME North", 8, "relationship"),
            ("BB-SME-S", "SME South", 8, "relationship"),
        ]),
        ("BB-CORPORATE", "Corporate Banking", [
            ("BB-KEY-ACCOUNTS", "Key Accounts", 8, "key-accounts"),
            ("BB-TRADE", "Trade Finance and Payments", 7, "relationship"),
        ]),
    ]),
    ("WM", "Wealth Management", [
        ("WM-PRIVATE", "Private Banking", [
            ("WM-PRIVATE-CLIENTS", "Private Clients", 8, "relationship"),
            ("WM-ADVISORY", "Investment Advisory", 7, "relationship"),
        ]),
        ("WM-SERVICES", "Wealth Services", [
            ("WM-CLIENT-SERVICE", "Wealth Client Service", 8, "service"),
            ("WM-PENSIONS", "Pensions and Insurance", 7, "relationship"),
        ]),
    ]),
    ("CS", "Customer Service", [
        ("CS-CONTACT", "Contact Centre", [
            ("CS-CC-A", "Contact Centre Team A", 14, "service"),
            ("CS-CC-B", "Contact Centre Team B", 14, "service"),
            ("CS-CC-C", "Contact Centre Team C", 14, "service"),
            ("CS-CC-D", "Contact Centre Team D", 14, "service"),
        ]),
        ("CS-RESOLUTION", "Complaints and Resolution", [
            ("CS-COMPLAINTS", "Complaints", 11, "service"),
            ("CS-RECOVERY", "Service Recovery", 8, "service"),
        ]),
        ("CS-KNOWLEDGE", "Knowledge and Quality", [
            ("CS-KNOWLEDGE-BASE", "Knowledge Base", 6, "knowledge"),
            ("CS-QUALITY", "Quality Assurance", 6, "knowledge"),
        ]),
    ]),
    ("MK", "Marketing", [
        ("MK-CAMPAIGNS", "Campaigns", [
            ("MK-CAMPAIGN-OPS", "Campaign Execution", 8, "marketing"),
            ("MK-INSIGHT", "Customer Insight", 7, "marketing"),
        ]),
        ("MK-CHANNELS", "Brand and Channels", [
            ("MK-CHANNEL-STRATEGY", "Channel Strategy", 6, "marketing"),
            ("MK-BRAND", "Brand and Content", 6, "marketing"),
        ]),
    ]),
]  # fmt: skip

# The CRM programme office reports to the CEO; its head leads the programme.
PROGRAMME_OFFICE = ("CRM-PMO", "CRM Programme Office", 6)

# Management levels of team members by profile (weights for levels 1-7). The
# first member of every team is an experienced level 3.
LEVEL_WEIGHTS: dict[str, dict[int, int]] = {
    "service": {1: 2, 2: 11, 3: 7},
    "relationship": {2: 3, 3: 7},
    "key-accounts": {2: 2, 3: 8},
    "knowledge": {2: 4, 3: 6},
    "marketing": {2: 5, 3: 5},
    "pmo": {3: 6, 4: 4},
}

FIRST_NAMES = [
    "Aisha", "Alexander", "Amelia", "Ana", "Anders", "Anna", "Antoine", "Astrid", "Ben", "Camille",
    "Carlos", "Charlotte", "Chiara", "Chloé", "Daniel", "David", "Elena", "Elif", "Emil", "Emma",
    "Erik", "Eva", "Fatima", "Felix", "Finn", "Francesca", "Freya", "Georg", "Hannah", "Hugo",
    "Ines", "Isabel", "Ivan", "Jakob", "James", "Jana", "Johanna", "Jonas", "Julia", "Karim",
    "Katarzyna", "Lars", "Laura", "Lea", "Leon", "Lina", "Lucas", "Luca", "Maja", "Marco",
    "Maria", "Mateo", "Mathilde", "Max", "Mia", "Milan", "Nadia", "Niamh", "Nils", "Noah",
    "Nora", "Olivia", "Omar", "Oscar", "Paul", "Petra", "Priya", "Rafael", "Rosa", "Ruben",
    "Samir", "Sara", "Sebastian", "Sofia", "Sven", "Thomas", "Tomás", "Valentina", "Yusuf", "Zoë",
]  # fmt: skip

LAST_NAMES = [
    "Andersen", "Bakker", "Becker", "Bianchi", "Brennan", "Brown", "Castillo", "Costa", "Dąbrowski", "De Vries",
    "Dubois", "Eriksson", "Fernández", "Fischer", "Fontaine", "García", "Hansen", "Hoffmann", "Horvat", "Jansen",
    "Jensen", "Kaya", "Keller", "Kowalski", "Krüger", "Lambert", "Larsen", "Laurent", "Lindqvist", "López",
    "Martin", "Meyer", "Moreau", "Murphy", "Müller", "Nielsen", "Novak", "O'Brien", "Olsen", "Petit",
    "Popescu", "Ricci", "Romano", "Rossi", "Sánchez", "Schmidt", "Schneider", "Silva", "Smith", "Sørensen",
    "Steiner", "Svensson", "Taylor", "Van Dijk", "Varga", "Wagner", "Walsh", "Weber", "Wilson", "Yilmaz",
]  # fmt: skip


@dataclass(frozen=True)
class Unit:
    id: str
    name: str
    kind: int
    parent: str  # "" for the company
    manager: str


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    email: str
    unit: str
    manager: str  # "" for the CEO
    level: int


@dataclass(frozen=True)
class PlannedAssignment:
    person: str
    role: str
    unit: str
    scope: int
    reason: str


@dataclass
class Company:
    units: list[Unit] = field(default_factory=list)
    people: list[Person] = field(default_factory=list)
    assignments: list[PlannedAssignment] = field(default_factory=list)

    def person(self, person_id: str) -> Person:
        return next(p for p in self.people if p.id == person_id)

    def unit(self, unit_id: str) -> Unit:
        return next(u for u in self.units if u.id == unit_id)

    def holder(self, role: str, unit: str, level: int | None = None) -> Person:
        """The first person (by id) holding `role` in `unit`, optionally of one level."""
        for a in sorted(self.assignments, key=lambda a: a.person):
            p = self.person(a.person)
            if a.role == role and a.unit == unit and (level is None or p.level == level):
                return p
        raise LookupError(f"nobody holds {role} in {unit}")


def member_roles(profile: str, level: int) -> list[str]:
    """Roles of a team member (besides the lead) by team profile and level."""
    if profile == "service":
        return {1: [], 2: ["service-agent"]}.get(level, ["senior-agent"])
    if profile == "relationship":
        return ["relationship-manager"] if level >= 3 else ["service-agent"]
    if profile == "key-accounts":
        return ["key-account-manager"] if level >= 3 else ["service-agent"]
    if profile == "knowledge":
        return ["knowledge-manager"] if level >= 3 else ["crm-champion"]
    if profile == "marketing":
        return ["campaign-specialist"]
    return []


class _Builder:
    def __init__(self) -> None:
        self.rng = random.Random(SEED)
        self.company = Company()
        self.emails: set[str] = set()

    def new_person(self, unit: str, manager: str, level: int) -> str:
        person_id = f"E{FIRST_EMPLOYEE_NUMBER + len(self.company.people)}"
        first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
        self.company.people.append(Person(person_id, f"{first} {last}", self._email(first, last), unit, manager, level))
        return person_id

    def _email(self, first: str, last: str) -> str:
        def ascii_part(text: str) -> str:
            plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
            return "".join(c for c in plain.lower() if c.isalnum())

        local = f"{ascii_part(first)}.{ascii_part(last)}"
        candidate, n = local, 1
        while candidate in self.emails:
            n += 1
            candidate = f"{local}{n}"
        self.emails.add(candidate)
        return f"{candidate}@{EMAIL_DOMAIN}"

    def new_unit(self, unit_id: str, name: str, kind: int, parent: str, manager: str) -> None:
        self.company.units.append(Unit(unit_id, name, kind, parent, manager))

    def assign(self, person: str, role: str, unit: str, scope: int, reason: str) -> None:
        self.company.assignments.append(PlannedAssignment(person, role, unit, scope, reason))

    def member_level(self, profile: str, index: int) -> int:
        if index == 0:
            return 3
        weights = LEVEL_WEIGHTS[profile]
        return self.rng.choices(list(weights), weights=list(weights.values()))[0]

    def team(self, team: Team, parent: str, head: str) -> None:
        team_id, name, size, profile = team
        lead = self.new_person(team_id, head, 4)
        self.new_unit(team_id, name, KIND.ORG_UNIT_KIND_TEAM, parent, lead)
        self.assign(lead, "team-lead", team_id, SCOPE.ASSIGNMENT_SCOPE_ORG_UNIT_ONLY, f"leads {name}")
        if profile == "marketing":
            self.assign(
                lead, "campaign-manager", team_id, SCOPE.ASSIGNMENT_SCOPE_ORG_UNIT_ONLY, "leads a marketing team"
            )
        members = [self.new_person(team_id, lead, self.member_level(profile, i)) for i in range(size)]
        for person_id in members:
            for role in member_roles(profile, self.company.person(person_id).level):
                self.assign(person_id, role, team_id, SCOPE.ASSIGNMENT_SCOPE_ORG_UNIT_ONLY, f"member of {name}")
        # The team's CRM champion: its most recent level-2 joiner, unless the
        # team's level-2 members are champions already.
        level_two = [p for p in members if self.company.person(p).level == 2]
        if level_two and "crm-champion" not in member_roles(profile, 2):
            self.assign(
                level_two[-1], "crm-champion", team_id, SCOPE.ASSIGNMENT_SCOPE_ORG_UNIT_ONLY, "team CRM champion"
            )

    def build(self) -> Company:
        ceo = self.new_person(COMPANY_ID, "", 7)
        self.new_unit(COMPANY_ID, COMPANY_NAME, KIND.ORG_UNIT_KIND_COMPANY, "", ceo)
        everywhere = SCOPE.ASSIGNMENT_SCOPE_WITH_DESCENDANTS
        self.assign(ceo, "chief-executive", COMPANY_ID, everywhere, "chief executive")
        for lob_id, lob_name, departments in LINES_OF_BUSINESS:
            lob_head = self.new_person(lob_id, ceo, 6)
            self.new_unit(lob_id, lob_name, KIND.ORG_UNIT_KIND_LINE_OF_BUSINESS, COMPANY_ID, lob_head)
            self.assign(lob_head, "lob-head", lob_id, everywhere, f"heads {lob_name}")
            for dept_id, dept_name, teams in departments:
                dept_head = self.new_person(dept_id, lob_head, 5)
                self.new_unit(dept_id, dept_name, KIND.ORG_UNIT_KIND_DEPARTMENT, lob_id, dept_head)
                self.assign(dept_head, "department-head", dept_id, everywhere, f"heads {dept_name}")
                for team in teams:
                    self.team(team, dept_id, dept_head)
        pmo_id, pmo_name, pmo_size = PROGRAMME_OFFICE
        pmo_head = self.new_person(pmo_id, ceo, 5)
        self.new_unit(pmo_id, pmo_name, KIND.ORG_UNIT_KIND_DEPARTMENT, COMPANY_ID, pmo_head)
        self.assign(pmo_head, "department-head", pmo_id, everywhere, f"heads {pmo_name}")
        self.assign(pmo_head, "crm-programme-lead", COMPANY_ID, everywhere, "leads the CRM programme company-wide")
        for i in range(pmo_size):
            analyst = self.new_person(pmo_id, pmo_head, self.member_level("pmo", i))
            self.assign(analyst, "crm-champion", pmo_id, SCOPE.ASSIGNMENT_SCOPE_ORG_UNIT_ONLY, "CRM programme team")
        return self.company


def build_company() -> Company:
    """The demo company; the same on every call."""
    return _Builder().build()


# ---- decision categories and roles ----------------------------------------------

# (id, display name, tier, description)
CATEGORIES: list[tuple[str, str, int, str]] = [
    ("customer-refund", "Customer refund", TIER.DECISION_TIER_DESIGN_EXECUTION,
     "Refunding a customer for a fee, charge or failed service."),
    ("goodwill-credit", "Goodwill credit", TIER.DECISION_TIER_DESIGN_EXECUTION,
     "A credit to a customer's account as a gesture of goodwill after a poor experience."),
    ("fee-waiver", "Fee waiver", TIER.DECISION_TIER_DESIGN_EXECUTION,
     "Waiving an account, card or transaction fee."),
    ("knowledge-article-publication", "Knowledge article publication", TIER.DECISION_TIER_DESIGN_EXECUTION,
     "Publishing or retiring an article in the shared customer-service knowledge base."),
    ("price-exception", "Price exception", TIER.DECISION_TIER_OPERATIONAL_TACTICAL,
     "A price or rate outside the published tariff for one customer or deal."),
    ("campaign-launch", "Campaign launch", TIER.DECISION_TIER_OPERATIONAL_TACTICAL,
     "Launching a marketing or retention campaign; the amount is the campaign budget."),
    ("crm-process-change", "CRM process change", TIER.DECISION_TIER_OPERATIONAL_TACTICAL,
     "Changing case routing, service scripts or a CRM workflow across teams."),
    ("channel-strategy", "Channel strategy", TIER.DECISION_TIER_STRATEGIC,
     "Which channels serve which customer segments, and with what investment."),
    ("market-entry", "Market entry", TIER.DECISION_TIER_STRATEGIC,
     "Entering a new market, segment or product line."),
    ("crm-investment", "CRM investment", TIER.DECISION_TIER_STRATEGIC,
     "Funding and scope of the CRM programme."),
]  # fmt: skip

# Right: (category, authority, limit in EUR or None for no limit).
Right = tuple[str, int, int | None]
# Skill requirement: (skill id in the skills catalogue, min level 1-5, weight, mandatory).
Skill = tuple[str, int, float, bool]


@dataclass(frozen=True)
class RoleSpec:
    id: str
    name: str
    level: int
    purpose: str
    responsibilities: list[str]
    rights: list[Right]
    skills: list[Skill]


D, AG, R, IN, PF, C, INF = (
    AUTH.AUTHORITY_DECIDE,
    AUTH.AUTHORITY_AGREE,
    AUTH.AUTHORITY_RECOMMEND,
    AUTH.AUTHORITY_INPUT,
    AUTH.AUTHORITY_PERFORM,
    AUTH.AUTHORITY_CONSULT,
    AUTH.AUTHORITY_INFORM,
)

ROLES: list[RoleSpec] = [
    RoleSpec(
        "service-agent", "Service agent", 2,
        "Resolves customer requests at first contact, within set limits.",
        ["Own each customer case until it is solved or handed over with context",
         "Resolve refunds, credits and fee waivers within your limits",
         "Reuse and improve knowledge articles"],
        [("customer-refund", D, 500), ("goodwill-credit", D, 100), ("fee-waiver", D, 50),
         ("knowledge-article-publication", R, None), ("price-exception", IN, None)],
        [("customer-empathy", 3, 2.0, True), ("crm-case-management", 2, 1.5, True),
         ("knowledge-sharing", 2, 1.0, False), ("teaming", 2, 1.0, False)],
    ),
    RoleSpec(
        "senior-agent", "Senior agent", 3,
        "Handles complex and escalated cases and coaches agents on the floor.",
        ["Take escalations from service agents",
         "Solve cases that cross team and product boundaries",
         "Coach agents and share what works"],
        [("customer-refund", D, 2_000), ("goodwill-credit", D, 500), ("fee-waiver", D, 250),
         ("knowledge-article-publication", R, None), ("price-exception", R, None)],
        [("customer-empathy", 4, 2.0, True), ("crm-case-management", 3, 1.5, True),
         ("problem-solving-across-boundaries", 3, 1.5, True), ("knowledge-sharing", 3, 1.0, False)],
    ),
    RoleSpec(
        "relationship-manager", "Relationship manager", 3,
        "Looks after a portfolio of customers and grows the relationship across the bank's products.",
        ["Know your customers' needs and plan contacts", "Refer customers to other lines of business",
         "Resolve service issues for your portfolio within your limits"],
        [("customer-refund", D, 2_000), ("goodwill-credit", D, 500), ("fee-waiver", D, 1_000),
         ("price-exception", R, None)],
        [("relationship-management", 3, 2.0, True), ("customer-empathy", 3, 1.5, True),
         ("networking-outside-department", 3, 1.5, False), ("crm-case-management", 2, 1.0, False)],
    ),
    RoleSpec(
        "key-account-manager", "Key account manager", 3,
        "Owns the bank's relationship with its largest business customers.",
        ["Lead the account team across products and lines of business", "Prepare price exceptions for approval",
         "Escalate and follow through service issues for the account"],
        [("customer-refund", D, 5_000), ("goodwill-credit", D, 1_000), ("fee-waiver", D, 2_500),
         ("price-exception", R, None), ("campaign-launch", IN, None)],
        [("relationship-management", 4, 2.0, True), ("networking-outside-department", 4, 1.5, True),
         ("problem-solving-across-boundaries", 3, 1.0, False), ("customer-empathy", 3, 1.0, False)],
    ),
    RoleSpec(
        "knowledge-manager", "Knowledge manager", 3,
        "Keeps the shared knowledge base accurate, findable and used.",
        ["Publish, review and retire knowledge articles", "Turn solved cases into reusable knowledge",
         "Report which articles help customers and which do not"],
        [("knowledge-article-publication", D, None), ("crm-process-change", IN, None)],
        [("knowledge-sharing", 4, 2.0, True), ("knowledge-management", 4, 2.0, True), ("teaming", 3, 1.0, False)],
    ),
    RoleSpec(
        "crm-champion", "CRM champion", 2,
        "The team's go-to person for the CRM system and new ways of working.",
        ["Help colleagues use the CRM well", "Collect improvement ideas and feed them to the programme",
         "Share knowledge between teams"],
        [("knowledge-article-publication", R, None), ("crm-process-change", IN, None)],
        [("crm-case-management", 3, 1.5, True), ("knowledge-sharing", 3, 1.5, False),
         ("teaming", 3, 1.0, False), ("networking-outside-department", 2, 1.0, False)],
    ),
    RoleSpec(
        "campaign-specialist", "Campaign specialist", 2,
        "Designs, targets and measures marketing and retention campaigns.",
        ["Build target lists with customer insight", "Recommend campaigns with a business case",
         "Measure campaign results and share them"],
        [("campaign-launch", R, None), ("channel-strategy", IN, None)],
        [("campaign-management", 2, 1.5, True), ("data-driven-decisions", 2, 1.0, False),
         ("networking-outside-department", 2, 1.0, False)],
    ),
    RoleSpec(
        "team-lead", "Team lead", 4,
        "Leads a team day to day and settles the cases the team cannot.",
        ["Take escalations from the team", "Coach people and plan the team's work",
         "Agree price exceptions within your limit", "Approve knowledge articles for the team"],
        [("customer-refund", D, 10_000), ("goodwill-credit", D, 2_000), ("fee-waiver", D, 1_000),
         ("price-exception", D, 5_000), ("knowledge-article-publication", D, None),
         ("crm-process-change", R, None)],
        [("teaming", 4, 1.5, True), ("coaching", 3, 1.5, True),
         ("problem-solving-across-boundaries", 3, 1.0, False), ("customer-empathy", 3, 1.0, False)],
    ),
    RoleSpec(
        "campaign-manager", "Campaign manager", 4,
        "Decides on and runs campaigns within a budget.",
        ["Approve campaigns within your budget", "Coordinate campaigns with the lines of business",
         "Recommend changes to the channel mix"],
        [("campaign-launch", D, 25_000), ("channel-strategy", R, None), ("price-exception", C, None)],
        [("campaign-management", 4, 2.0, True), ("data-driven-decisions", 3, 1.0, False),
         ("networking-outside-department", 3, 1.0, False)],
    ),
    RoleSpec(
        "department-head", "Department head", 5,
        "Accountable for a department's customers, results and ways of working.",
        ["Settle operational and tactical issues for the department", "Set team limits and targets",
         "Work with other departments as internal customers and providers"],
        [("customer-refund", D, 50_000), ("goodwill-credit", D, 10_000), ("fee-waiver", D, 10_000),
         ("price-exception", D, 50_000), ("campaign-launch", D, 100_000), ("crm-process-change", D, None),
         ("channel-strategy", R, None)],
        [("teaming", 4, 1.0, True), ("problem-solving-across-boundaries", 4, 1.5, True),
         ("networking-outside-department", 4, 1.5, False), ("coaching", 4, 1.0, False)],
    ),
    RoleSpec(
        "crm-programme-lead", "CRM programme lead", 5,
        "Leads the CRM programme: processes, adoption and alignment of roles, skills and incentives.",
        ["Decide changes to CRM processes across the bank", "Recommend CRM investments",
         "Keep roles, skills and incentives aligned with the CRM"],
        [("crm-process-change", D, None), ("crm-investment", R, None), ("channel-strategy", C, None),
         ("knowledge-article-publication", INF, None)],
        [("change-leadership", 4, 2.0, True), ("networking-outside-department", 4, 1.5, True),
         ("problem-solving-across-boundaries", 4, 1.5, False), ("knowledge-sharing", 3, 1.0, False)],
    ),
    RoleSpec(
        "lob-head", "Line-of-business head", 6,
        "Sets direction for a line of business and settles its strategic trade-offs.",
        ["Decide the line of business's channel strategy", "Set limits and incentives for its people",
         "Serve the other lines of business as internal customers"],
        [("customer-refund", D, None), ("goodwill-credit", D, None), ("fee-waiver", D, None),
         ("price-exception", D, 250_000), ("campaign-launch", D, 1_000_000), ("crm-process-change", D, None),
         ("channel-strategy", D, None), ("market-entry", R, None), ("crm-investment", AG, None)],
        [("strategic-thinking", 5, 2.0, True), ("change-leadership", 4, 1.5, False),
         ("networking-outside-department", 5, 1.0, False)],
    ),
    RoleSpec(
        "chief-executive", "Chief executive", 7,
        "Sets the bank's strategy and settles the trade-offs between lines of business.",
        ["Decide market entries and the CRM investment", "Arbitrate between lines of business",
         "Make the CRM programme a priority for every leader"],
        [("market-entry", D, None), ("channel-strategy", D, None), ("crm-investment", D, None),
         ("price-exception", D, None)],
        [("strategic-thinking", 6, 2.0, True), ("change-leadership", 5, 1.5, False)],
    ),
]  # fmt: skip


def eur(amount: int) -> money_pb2.Money:
    return money_pb2.Money(currency_code=CURRENCY, units=amount)


def role_message(spec: RoleSpec) -> roles_pb2.Role:
    return roles_pb2.Role(
        display_name=spec.name,
        purpose=spec.purpose,
        responsibilities=spec.responsibilities,
        management_level=spec.level,  # type: ignore[arg-type]
        decision_rights=[
            roles_pb2.DecisionRight(
                category=f"decisionCategories/{category}",
                authority=authority,  # type: ignore[arg-type]
                limit=eur(limit) if limit is not None else None,
            )
            for category, authority, limit in spec.rights
        ],
        skill_requirements=[
            roles_pb2.SkillRequirement(skill=skill, min_level=level, weight=weight, mandatory=mandatory)
            for skill, level, weight, mandatory in spec.skills
        ],
    )


def directory_rows(company: Company) -> Iterator[directory_pb2.ImportDirectoryRequest]:
    """The import stream: units, then people (the import accepts any order)."""
    for u in company.units:
        yield directory_pb2.ImportDirectoryRequest(
            org_unit=directory_pb2.OrgUnit(
                name=f"orgUnits/{u.id}",
                display_name=u.name,
                kind=u.kind,  # type: ignore[arg-type]
                parent=f"orgUnits/{u.parent}" if u.parent else "",
                manager=f"people/{u.manager}",
                hr_version=1,
            )
        )
    for p in company.people:
        yield directory_pb2.ImportDirectoryRequest(
            person=directory_pb2.Person(
                name=f"people/{p.id}",
                display_name=p.name,
                email=p.email,
                org_unit=f"orgUnits/{p.unit}",
                manager=f"people/{p.manager}" if p.manager else "",
                management_level=p.level,  # type: ignore[arg-type]
                status=directory_pb2.PERSON_STATUS_ACTIVE,
                hr_version=1,
            )
        )


# ---- loading through the API -------------------------------------------------------


class LoadError(RuntimeError):
    """The demo could not be loaded; the message says why."""


@dataclass
class LoadReport:
    units: int = 0
    people: int = 0
    rows_created: int = 0
    rows_updated: int = 0
    rows_unchanged: int = 0
    categories_created: int = 0
    categories_existing: int = 0
    roles_created: int = 0
    roles_existing: int = 0
    roles_activated: int = 0
    assignments_created: int = 0
    assignments_existing: int = 0
    seconds: float = 0.0

    def lines(self) -> list[str]:
        return [
            f"directory     {self.units} org units, {self.people} people "
            f"({self.rows_created} created, {self.rows_updated} updated, {self.rows_unchanged} unchanged)",
            f"categories    {self.categories_created + self.categories_existing} "
            f"({self.categories_created} created, {self.categories_existing} already there)",
            f"roles         {self.roles_created + self.roles_existing} "
            f"({self.roles_created} created, {self.roles_existing} already there, {self.roles_activated} activated)",
            f"assignments   {self.assignments_created + self.assignments_existing} "
            f"({self.assignments_created} created, {self.assignments_existing} already there)",
        ]


def error_reason(error: grpc.RpcError) -> str:
    """The ErrorInfo reason of a failed call (e.g. DUPLICATE_ASSIGNMENT), or ""."""
    try:
        status = rpc_status.from_call(error)  # type: ignore[arg-type]
    except ValueError:
        return ""
    if status is None:
        return ""
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return str(info.reason)
    return ""


def describe(error: grpc.RpcError) -> str:
    code = error.code() if isinstance(error, grpc.Call) else None
    details = error.details() if isinstance(error, grpc.Call) else str(error)
    return f"{code.name if code else 'ERROR'}: {details}"


def request_id_for(request: Message) -> str:
    """A request id derived from the request's content: a retry of the same
    request is recognised, a changed request is a new one."""
    digest = hashlib.sha256(request.SerializeToString(deterministic=True)).hexdigest()
    return str(uuid.uuid5(REQUEST_NAMESPACE, f"{type(request).__name__}:{digest}"))


class RolesApi:
    """Stubs of the roles service on one channel, with the caller's metadata."""

    def __init__(self, channel: grpc.Channel, token: str = ""):
        self.directory = directory_pb2_grpc.DirectoryServiceStub(channel)
        self.roles = roles_pb2_grpc.RoleServiceStub(channel)
        self.assignments = assignments_pb2_grpc.AssignmentServiceStub(channel)
        self.decisions = decisions_pb2_grpc.DecisionServiceStub(channel)
        self.metadata: list[tuple[str, str]] = [("authorization", f"Bearer {token}")] if token else []


def _import_directory(api: RolesApi, company: Company, report: LoadReport) -> None:
    response = api.directory.ImportDirectory(directory_rows(company), metadata=api.metadata, timeout=60)
    if response.rejected_count:
        rejected = [r for r in response.results if r.outcome == directory_pb2.ImportRowResult.OUTCOME_REJECTED]
        shown = "; ".join(f"row {r.row} {r.name}: {r.reason}" for r in rejected[:5])
        raise LoadError(f"the directory import rejected {response.rejected_count} row(s): {shown}")
    report.units, report.people = len(company.units), len(company.people)
    report.rows_created = response.created_count
    report.rows_updated = response.updated_count
    report.rows_unchanged = response.unchanged_count


def _existing_categories(api: RolesApi) -> set[str]:
    found: set[str] = set()
    token = ""
    while True:
        page = api.roles.ListDecisionCategories(
            roles_pb2.ListDecisionCategoriesRequest(page_size=1000, page_token=token), metadata=api.metadata, timeout=10
        )
        found.update(c.name for c in page.decision_categories)
        token = page.next_page_token
        if not token:
            return found


def _existing_roles(api: RolesApi) -> dict[str, roles_pb2.Role]:
    found: dict[str, roles_pb2.Role] = {}
    token = ""
    while True:
        page = api.roles.ListRoles(
            roles_pb2.ListRolesRequest(page_size=1000, page_token=token), metadata=api.metadata, timeout=10
        )
        found.update((r.name, r) for r in page.roles)
        token = page.next_page_token
        if not token:
            return found


def _create_categories(api: RolesApi, report: LoadReport) -> None:
    existing = _existing_categories(api)
    for category_id, name, tier, description in CATEGORIES:
        if f"decisionCategories/{category_id}" in existing:
            report.categories_existing += 1
            continue
        request = roles_pb2.CreateDecisionCategoryRequest(
            decision_category_id=category_id,
            decision_category=roles_pb2.DecisionCategory(display_name=name, tier=tier, description=description),  # type: ignore[arg-type]
        )
        request.request_id = request_id_for(request)
        try:
            api.roles.CreateDecisionCategory(request, metadata=api.metadata, timeout=10)
            report.categories_created += 1
        except grpc.RpcError as error:
            if _code(error) != grpc.StatusCode.ALREADY_EXISTS:  # created meanwhile: fine
                raise LoadError(f"creating decisionCategories/{category_id} failed: {describe(error)}") from error
            report.categories_existing += 1


def _create_roles(api: RolesApi, report: LoadReport) -> None:
    existing = _existing_roles(api)
    for spec in ROLES:
        name = f"roles/{spec.id}"
        role = existing.get(name)
        if role is not None:
            report.roles_existing += 1
        else:
            request = roles_pb2.CreateRoleRequest(role_id=spec.id, role=role_message(spec))
            request.request_id = request_id_for(request)
            try:
                role = api.roles.CreateRole(request, metadata=api.metadata, timeout=10)
                report.roles_created += 1
            except grpc.RpcError as error:
                if _code(error) != grpc.StatusCode.ALREADY_EXISTS:  # created meanwhile: fine
                    raise LoadError(f"creating {name} failed: {describe(error)}") from error
                role = api.roles.GetRole(roles_pb2.GetRoleRequest(name=name), metadata=api.metadata, timeout=10)
                report.roles_existing += 1
        if role.state != roles_pb2.Role.STATE_DRAFT:
            continue  # active already (or retired on purpose by someone)
        try:
            api.roles.ActivateRole(roles_pb2.ActivateRoleRequest(name=name), metadata=api.metadata, timeout=10)
            report.roles_activated += 1
        except grpc.RpcError as error:
            if error_reason(error) != "ROLE_NOT_DRAFT":  # activated meanwhile: fine
                raise LoadError(f"activating {name} failed: {describe(error)}") from error


def _existing_assignments(api: RolesApi) -> set[tuple[str, str, str]]:
    """(person, role, unit) of every assignment in force now."""
    found: set[tuple[str, str, str]] = set()
    token = ""
    while True:
        page = api.assignments.ListAssignments(
            assignments_pb2.ListAssignmentsRequest(
                state=assignments_pb2.Assignment.STATE_ACTIVE, page_size=1000, page_token=token
            ),
            metadata=api.metadata,
            timeout=30,
        )
        found.update((a.person, a.role, a.org_unit) for a in page.assignments)
        token = page.next_page_token
        if not token:
            return found


def _create_assignments(api: RolesApi, company: Company, report: LoadReport) -> None:
    existing = _existing_assignments(api)
    for planned in company.assignments:
        assignment = assignments_pb2.Assignment(
            person=f"people/{planned.person}",
            role=f"roles/{planned.role}",
            org_unit=f"orgUnits/{planned.unit}",
            scope=planned.scope,  # type: ignore[arg-type]
            reason=planned.reason,
        )
        if (assignment.person, assignment.role, assignment.org_unit) in existing:
            report.assignments_existing += 1
            continue
        request = assignments_pb2.CreateAssignmentRequest(assignment=assignment)
        request.request_id = request_id_for(request)
        try:
            api.assignments.CreateAssignment(request, metadata=api.metadata, timeout=10)
            report.assignments_created += 1
        except grpc.RpcError as error:
            if error_reason(error) != "DUPLICATE_ASSIGNMENT":
                raise LoadError(
                    f"assigning {assignment.person} to {assignment.role} in {assignment.org_unit} failed: "
                    f"{describe(error)}"
                ) from error
            report.assignments_existing += 1


def load(api: RolesApi, company: Company | None = None) -> LoadReport:
    """Loads the demo company; safe to run again. Raises LoadError or grpc.RpcError."""
    company = company or build_company()
    report = LoadReport()
    started = time.monotonic()
    _import_directory(api, company, report)
    _create_categories(api, report)
    _create_roles(api, report)
    _create_assignments(api, company, report)
    report.seconds = time.monotonic() - started
    return report


# ---- example decisions ---------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    """A CheckDecision call worth showing, and what the demo makes of it."""

    label: str
    person: Person
    category: str
    amount: int | None

    def request(self) -> decisions_pb2.CheckDecisionRequest:
        request = decisions_pb2.CheckDecisionRequest(
            person=f"people/{self.person.id}", category=f"decisionCategories/{self.category}"
        )
        if self.amount is not None:
            request.amount.CopyFrom(eur(self.amount))
        return request


def examples(company: Company) -> list[Example]:
    """The service agent of the walkthrough: refunds up to 500 EUR are theirs."""
    agent = company.holder("service-agent", "CS-CC-A", level=2)
    return [
        Example("customer refund of 350 EUR", agent, "customer-refund", 350),
        Example("customer refund of 500 EUR (the limit)", agent, "customer-refund", 500),
        Example("customer refund of 1,200 EUR", agent, "customer-refund", 1_200),
        Example("customer refund of 15,000 EUR", agent, "customer-refund", 15_000),
        Example("price exception of 3,000 EUR", agent, "price-exception", 3_000),
        Example("market entry", agent, "market-entry", None),
    ]


def outcome_text(response: decisions_pb2.CheckDecisionResponse, company: Company) -> str:
    """`DECIDE` or `ESCALATE to people/E1 (Name, roles/x)`."""
    if response.outcome == decisions_pb2.DECISION_OUTCOME_DECIDE:
        return "DECIDE"
    target = response.escalate_to
    who = target.person
    known = {f"people/{p.id}": p.name for p in company.people}
    details = ", ".join(x for x in (known.get(who, ""), target.role) if x)
    return f"ESCALATE to {who}" + (f" ({details})" if details else "")


def check(api: RolesApi, example: Example) -> decisions_pb2.CheckDecisionResponse:
    return api.decisions.CheckDecision(example.request(), metadata=api.metadata, timeout=10)


def key_people(company: Company) -> list[tuple[str, Person]]:
    """People worth knowing for trying the API and for tests."""
    return [
        ("service agent, refunds up to 500 EUR", company.holder("service-agent", "CS-CC-A", level=2)),
        ("senior agent, refunds up to 2,000 EUR", company.holder("senior-agent", "CS-CC-A")),
        ("team lead, refunds up to 10,000 EUR", company.holder("team-lead", "CS-CC-A")),
        ("department head, refunds up to 50,000 EUR", company.holder("department-head", "CS-CONTACT")),
        ("line-of-business head (Customer Service)", company.holder("lob-head", "CS")),
        ("key account manager, fee waivers up to 2,500 EUR", company.holder("key-account-manager", "BB-KEY-ACCOUNTS")),
        ("knowledge manager", company.holder("knowledge-manager", "CS-KNOWLEDGE-BASE")),
        ("CRM programme lead", company.holder("crm-programme-lead", COMPANY_ID)),
        ("chief executive", company.holder("chief-executive", COMPANY_ID)),
    ]


def _code(error: grpc.RpcError) -> grpc.StatusCode | None:
    return error.code() if isinstance(error, grpc.Call) else None


# ---- command line ------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    port = os.environ.get("ENGAGE_GRPC_PORT", "50051")
    parser = argparse.ArgumentParser(description=f"Load the demo company {COMPANY_NAME} into a running roles service.")
    parser.add_argument("--target", default=f"127.0.0.1:{port}", help="roles gRPC address (default %(default)s)")
    parser.add_argument(
        "--token",
        default=os.environ.get("ENGAGE_TOKEN", ""),
        help="bearer token of an HR administrator (default $ENGAGE_TOKEN; not needed with ENGAGE_AUTH_MODE=dev)",
    )
    args = parser.parse_args(argv)
    company = build_company()
    with grpc.insecure_channel(args.target) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=10)
        except grpc.FutureTimeoutError:
            print(f"no roles service answers at {args.target}", file=sys.stderr)
            return 1
        api = RolesApi(channel, args.token)
        try:
            report = load(api, company)
        except (LoadError, grpc.RpcError) as error:
            message = describe(error) if isinstance(error, grpc.RpcError) else str(error)
            print(f"loading the demo company failed: {message}", file=sys.stderr)
            return 1
        print(f"{COMPANY_NAME} loaded into {args.target} in {report.seconds:.1f} s:")
        for line in report.lines():
            print(f"  {line}")
        print("People to try:")
        for label, person in key_people(company):
            print(f"  people/{person.id:<8} {person.name:<24} {label}")
        print("Decisions:")
        for example in examples(company):
            response = check(api, example)
            print(f"  people/{example.person.id} {example.label:<40} -> {outcome_text(response, company)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
