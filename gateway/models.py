"""The JSON shapes of the API, and their translation from and to protobuf.

Resources are named as in the services (`people/E10167`, `assignments/...`);
fields are camelCase; enums are their protobuf names without the prefix.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from engage.roles.v1 import assignments_pb2, decisions_pb2, directory_pb2, roles_pb2
from google.protobuf.timestamp_pb2 import Timestamp
from google.type import money_pb2
from pydantic import BaseModel, ConfigDict, Field

ID = r"^[A-Za-z0-9._-]{1,63}$"
PERSON_NAME = r"^people/[A-Za-z0-9._-]{1,63}$"
ROLE_NAME = r"^roles/[A-Za-z0-9._-]{1,63}$"
UNIT_NAME = r"^orgUnits/[A-Za-z0-9._-]{1,63}$"

OrgUnitKind = Literal["UNSPECIFIED", "COMPANY", "DIVISION", "LINE_OF_BUSINESS", "DEPARTMENT", "TEAM"]
PersonStatus = Literal["UNSPECIFIED", "ACTIVE", "LEAVE", "TERMINATED"]
RoleState = Literal["UNSPECIFIED", "DRAFT", "ACTIVE", "RETIRED"]
AssignmentState = Literal["UNSPECIFIED", "SCHEDULED", "ACTIVE", "ENDED"]
AckState = Literal["UNSPECIFIED", "PENDING", "ACKNOWLEDGED"]
Scope = Literal["UNSPECIFIED", "ORG_UNIT_ONLY", "WITH_DESCENDANTS", "WITH_UNASSIGNED_DESCENDANTS"]
Tier = Literal["UNSPECIFIED", "STRATEGIC", "OPERATIONAL_TACTICAL", "DESIGN_EXECUTION"]
AuthorityName = Literal["UNSPECIFIED", "DECIDE", "AGREE", "RECOMMEND", "INPUT", "PERFORM", "CONSULT", "INFORM"]
Outcome = Literal["UNSPECIFIED", "DECIDE", "ESCALATE"]
StepKind = Literal["UNSPECIFIED", "OWN_RIGHTS", "DELEGATION", "SCOPE_HOLDER", "MANAGER"]


class Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


def _enum(descriptor: Any, value: int, prefix: str) -> str:
    name: str = (
        descriptor.values_by_number[value].name if value in descriptor.values_by_number else f"{prefix}UNSPECIFIED"
    )  # type: ignore[attr-defined]
    return name.removeprefix(prefix)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _time(ts: Timestamp, present: bool = True) -> datetime | None:
    if not present or (ts.seconds == 0 and ts.nanos == 0):
        return None
    # What Timestamp.ToDatetime(tzinfo=UTC) answers (nanos are never negative), at a third of its cost:
    # a team page converts some 350 timestamps.
    return EPOCH + timedelta(seconds=ts.seconds, microseconds=ts.nanos // 1000)


def timestamp(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value if value.tzinfo else value.replace(tzinfo=UTC))
    return ts


class Money(Model):
    currencyCode: str = Field(pattern=r"^[A-Z]{3}$", examples=["EUR"])
    amount: str = Field(pattern=r"^-?\d{1,15}(\.\d{1,9})?$", description="Decimal amount, e.g. `350.00`.")

    @classmethod
    def of(cls, m: money_pb2.Money) -> Money | None:
        if not m.currency_code and not m.units and not m.nanos:
            return None
        value = Decimal(m.units) + Decimal(m.nanos) / Decimal(10**9)
        return cls(currencyCode=m.currency_code, amount=f"{value:f}")


def money(currency: str, amount: Decimal) -> money_pb2.Money:
    units = int(amount)
    nanos = int((amount - units) * 10**9)
    return money_pb2.Money(currency_code=currency, units=units, nanos=nanos)


class OrgUnit(Model):
    name: str = Field(examples=["orgUnits/CS-CC-A"])
    displayName: str
    kind: OrgUnitKind
    parent: str = Field(description="Parent unit; empty for the root.")
    manager: str = Field(description="Head of the unit, `people/{id}`; empty if none.")
    hrVersion: int
    etag: str
    createTime: datetime | None = None
    updateTime: datetime | None = None

    @classmethod
    def of(cls, u: directory_pb2.OrgUnit) -> OrgUnit:
        return cls(
            name=u.name,
            displayName=u.display_name,
            kind=_enum(directory_pb2.OrgUnitKind.DESCRIPTOR, u.kind, "ORG_UNIT_KIND_"),  # type: ignore[arg-type]
            parent=u.parent,
            manager=u.manager,
            hrVersion=u.hr_version,
            etag=u.etag,
            createTime=_time(u.create_time),
            updateTime=_time(u.update_time),
        )


class Person(Model):
    name: str = Field(examples=["people/E10167"])
    displayName: str
    email: str
    orgUnit: str
    manager: str
    managementLevel: int = Field(ge=0, le=7, description="SFIA level of responsibility, 1-7.")
    status: PersonStatus
    hrVersion: int
    etag: str
    createTime: datetime | None = None
    updateTime: datetime | None = None

    @classmethod
    def of(cls, p: directory_pb2.Person) -> Person:
        return cls(
            name=p.name,
            displayName=p.display_name,
            email=p.email,
            orgUnit=p.org_unit,
            manager=p.manager,
            managementLevel=int(p.management_level),
            status=_enum(directory_pb2.PersonStatus.DESCRIPTOR, p.status, "PERSON_STATUS_"),  # type: ignore[arg-type]
            hrVersion=p.hr_version,
            etag=p.etag,
            createTime=_time(p.create_time),
            updateTime=_time(p.update_time),
        )


class DecisionCategory(Model):
    name: str = Field(examples=["decisionCategories/customer-refund"])
    displayName: str
    description: str
    tier: Tier
    minLevel: int
    maxLevel: int
    etag: str
    createTime: datetime | None = None
    updateTime: datetime | None = None

    @classmethod
    def of(cls, c: roles_pb2.DecisionCategory) -> DecisionCategory:
        return cls(
            name=c.name,
            displayName=c.display_name,
            description=c.description,
            tier=_enum(roles_pb2.DecisionTier.DESCRIPTOR, c.tier, "DECISION_TIER_"),  # type: ignore[arg-type]
            minLevel=int(c.min_level),
            maxLevel=int(c.max_level),
            etag=c.etag,
            createTime=_time(c.create_time),
            updateTime=_time(c.update_time),
        )


class DecisionRight(Model):
    category: str
    authority: AuthorityName
    limit: Money | None = None


class SkillRequirement(Model):
    skill: str
    minLevel: int
    weight: float
    mandatory: bool


class Role(Model):
    name: str = Field(examples=["roles/service-agent"])
    displayName: str
    purpose: str
    responsibilities: list[str]
    managementLevel: int
    decisionRights: list[DecisionRight]
    skillRequirements: list[SkillRequirement]
    state: RoleState
    version: int
    etag: str
    createTime: datetime | None = None
    updateTime: datetime | None = None

    @classmethod
    def of(cls, r: roles_pb2.Role) -> Role:
        return cls(
            name=r.name,
            displayName=r.display_name,
            purpose=r.purpose,
            responsibilities=list(r.responsibilities),
            managementLevel=int(r.management_level),
            decisionRights=[
                DecisionRight(
                    category=d.category,
                    authority=_enum(roles_pb2.Authority.DESCRIPTOR, d.authority, "AUTHORITY_"),  # type: ignore[arg-type]
                    limit=Money.of(d.limit) if d.HasField("limit") else None,
                )
                for d in r.decision_rights
            ],
            skillRequirements=[
                SkillRequirement(skill=s.skill, minLevel=s.min_level, weight=s.weight, mandatory=s.mandatory)
                for s in r.skill_requirements
            ],
            state=_enum(roles_pb2.Role.State.DESCRIPTOR, r.state, "STATE_"),  # type: ignore[arg-type]
            version=r.version,
            etag=r.etag,
            createTime=_time(r.create_time),
            updateTime=_time(r.update_time),
        )


class Assignment(Model):
    name: str = Field(examples=["assignments/0b5d..."])
    person: str
    role: str
    roleVersion: int
    orgUnit: str
    scope: Scope
    validFrom: datetime | None = None
    validTo: datetime | None = None
    reason: str
    assignedBy: str
    state: AssignmentState
    acknowledgementState: AckState
    acknowledgedRoleVersion: int
    acknowledgeTime: datetime | None = None
    endedBy: str
    endReason: str
    etag: str
    createTime: datetime | None = None
    updateTime: datetime | None = None

    @classmethod
    def of(cls, a: assignments_pb2.Assignment) -> Assignment:
        return cls(
            name=a.name,
            person=a.person,
            role=a.role,
            roleVersion=a.role_version,
            orgUnit=a.org_unit,
            scope=_enum(assignments_pb2.AssignmentScope.DESCRIPTOR, a.scope, "ASSIGNMENT_SCOPE_"),  # type: ignore[arg-type]
            validFrom=_time(a.valid_from, a.HasField("valid_from")),
            validTo=_time(a.valid_to, a.HasField("valid_to")),
            reason=a.reason,
            assignedBy=a.assigned_by,
            state=_enum(assignments_pb2.Assignment.State.DESCRIPTOR, a.state, "STATE_"),  # type: ignore[arg-type]
            acknowledgementState=_enum(
                assignments_pb2.Assignment.AcknowledgementState.DESCRIPTOR,
                a.acknowledgement_state,
                "ACKNOWLEDGEMENT_STATE_",
            ),  # type: ignore[arg-type]
            acknowledgedRoleVersion=a.acknowledged_role_version,
            acknowledgeTime=_time(a.acknowledge_time, a.HasField("acknowledge_time")),
            endedBy=a.ended_by,
            endReason=a.end_reason,
            etag=a.etag,
            createTime=_time(a.create_time),
            updateTime=_time(a.update_time),
        )


SCOPES = {
    "UNSPECIFIED": assignments_pb2.ASSIGNMENT_SCOPE_UNSPECIFIED,
    "ORG_UNIT_ONLY": assignments_pb2.ASSIGNMENT_SCOPE_ORG_UNIT_ONLY,
    "WITH_DESCENDANTS": assignments_pb2.ASSIGNMENT_SCOPE_WITH_DESCENDANTS,
    "WITH_UNASSIGNED_DESCENDANTS": assignments_pb2.ASSIGNMENT_SCOPE_WITH_UNASSIGNED_DESCENDANTS,
}
STATES = {
    "SCHEDULED": assignments_pb2.Assignment.STATE_SCHEDULED,
    "ACTIVE": assignments_pb2.Assignment.STATE_ACTIVE,
    "ENDED": assignments_pb2.Assignment.STATE_ENDED,
}


class AssignmentCreate(Model):
    person: str = Field(pattern=PERSON_NAME, examples=["people/E10167"])
    role: str = Field(pattern=ROLE_NAME, examples=["roles/service-agent"])
    orgUnit: str = Field(pattern=UNIT_NAME, examples=["orgUnits/CS-CC-A"])
    scope: Literal["ORG_UNIT_ONLY", "WITH_DESCENDANTS", "WITH_UNASSIGNED_DESCENDANTS"] = "ORG_UNIT_ONLY"
    validFrom: datetime | None = Field(default=None, description="Start; default now.")
    validTo: datetime | None = Field(default=None, description="End, exclusive; default open-ended.")
    reason: str = Field(default="", max_length=500)

    def to_proto(self) -> assignments_pb2.Assignment:
        a = assignments_pb2.Assignment(
            person=self.person, role=self.role, org_unit=self.orgUnit, scope=SCOPES[self.scope], reason=self.reason
        )
        if self.validFrom is not None:
            a.valid_from.CopyFrom(timestamp(self.validFrom))
        if self.validTo is not None:
            a.valid_to.CopyFrom(timestamp(self.validTo))
        return a


class AssignmentEnd(Model):
    reason: str = Field(default="", max_length=500)
    endTime: datetime | None = Field(default=None, description="When it ends; default now.")


class AppliedRule(Model):
    holder: str
    role: str
    roleVersion: int
    assignment: str
    delegation: str
    limit: Money | None = None


class EscalationTarget(Model):
    person: str
    role: str
    orgUnit: str
    mayDecide: bool


class DecisionStep(Model):
    kind: StepKind
    person: str
    orgUnit: str
    mayDecide: bool
    note: str


class DecisionAnswer(Model):
    outcome: Outcome
    explanation: str
    appliedRule: AppliedRule | None = None
    escalateTo: EscalationTarget | None = None
    chain: list[DecisionStep]
    at: datetime | None = None

    @classmethod
    def of(cls, r: decisions_pb2.CheckDecisionResponse) -> DecisionAnswer:
        rule = r.applied_rule
        esc = r.escalate_to
        return cls(
            outcome=_enum(decisions_pb2.DecisionOutcome.DESCRIPTOR, r.outcome, "DECISION_OUTCOME_"),  # type: ignore[arg-type]
            explanation=r.explanation,
            appliedRule=AppliedRule(
                holder=rule.holder,
                role=rule.role,
                roleVersion=rule.role_version,
                assignment=rule.assignment,
                delegation=rule.delegation,
                limit=Money.of(rule.limit) if rule.HasField("limit") else None,
            )
            if r.HasField("applied_rule")
            else None,
            escalateTo=EscalationTarget(
                person=esc.person, role=esc.role, orgUnit=esc.org_unit, mayDecide=esc.may_decide
            )
            if r.HasField("escalate_to")
            else None,
            chain=[
                DecisionStep(
                    kind=_enum(decisions_pb2.DecisionStep.Kind.DESCRIPTOR, s.kind, "KIND_"),  # type: ignore[arg-type]
                    person=s.person,
                    orgUnit=s.org_unit,
                    mayDecide=s.may_decide,
                    note=s.note,
                )
                for s in r.chain
            ],
            at=_time(r.at),
        )


class OrgUnitList(Model):
    orgUnits: list[OrgUnit]
    nextPageToken: str = Field(description="Token of the next page; empty on the last page.")


class PersonList(Model):
    people: list[Person]
    nextPageToken: str


class RoleList(Model):
    roles: list[Role]
    nextPageToken: str


class DecisionCategoryList(Model):
    decisionCategories: list[DecisionCategory]
    nextPageToken: str


class AssignmentList(Model):
    assignments: list[Assignment]
    nextPageToken: str


class Me(Model):
    subject: str
    person: Person | None = None
    roles: list[str]
    isAdmin: bool
    heads: list[str] = Field(description="Org units the caller heads (their team is everyone below them).")


class HeldRoleFit(Model):
    """How well a person fits a role they hold (from the skills service)."""

    role: str = Field(examples=["roles/service-agent"])
    score: float = Field(ge=0, le=1, description="Fit score from 0 to 1.")
    fits: bool = Field(description="No mandatory requirement has a gap.")
    mandatoryGaps: list[str] = Field(description="Mandatory skills with a gap, `skills/{id}`.")


class ScorecardSummary(Model):
    """Where a person stands in the current period of a scheme (from the incentives service)."""

    scorecard: str = Field(examples=["schemes/collab/periods/2025-01/scorecards/E10167"])
    schemeName: str
    state: Literal["UNSPECIFIED", "OPEN", "FINAL"]
    attainment: float = Field(description="1.0 is on target.")
    payout: str = Field(description="What the attainment earns so far, e.g. `250.00 EUR` or `120 points`.")


class TeamMember(Model):
    person: Person
    assignments: list[Assignment] = Field(description="Scheduled and active assignments held in the team's units.")
    roleFit: list[HeldRoleFit] | None = Field(
        default=None, description="Fit to each role held; null when the skills service did not answer."
    )
    scorecards: list[ScorecardSummary] | None = Field(
        default=None,
        description="Current period of each active scheme; null when the incentives service did not answer.",
    )


class Team(Model):
    orgUnits: list[OrgUnit] = Field(description="Units of the team: the subtrees the caller heads.")
    members: list[TeamMember]
    unavailable: list[Literal["skills", "incentives"]] = Field(
        default_factory=list, description="Services that did not answer: their columns are missing, retry shortly."
    )
