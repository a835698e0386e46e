"""JSON shapes of the incentives routes, and their translation from and to protobuf."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from engage.incentives.v1 import awards_pb2, schemes_pb2, scorecards_pb2
from pydantic import Field

from gateway.models import Model, Money, _enum, _time, money

DECIMAL = r"^\d{1,12}(\.\d{1,6})?$"
PERIOD_ID = r"^[0-9]{4}-(0[1-9]|1[0-2]|Q[1-4])$"


class Amount(Model):
    """Money (`currencyCode` set) or points (`currencyCode` null)."""

    value: str = Field(description="Decimal, e.g. `250.00`.")
    currencyCode: str | None = Field(default=None, description="ISO 4217; null for points.")

    @classmethod
    def of(cls, a: schemes_pb2.Amount) -> Amount | None:
        kind = a.WhichOneof("kind")
        if kind == "money":
            m = Money.of(a.money)
            return cls(value=m.amount, currencyCode=m.currencyCode) if m else cls(value="0", currencyCode=None)
        if kind == "points":
            return cls(value=f"{Decimal(repr(a.points)).normalize():f}", currencyCode=None)
        return None

    def text(self) -> str:
        return f"{self.value} {self.currencyCode}" if self.currencyCode else f"{self.value} points"


def amount_like(template: schemes_pb2.Amount, value: Decimal) -> schemes_pb2.Amount:
    """`value` in the unit of `template` (its currency, or points)."""
    if template.WhichOneof("kind") == "money":
        return schemes_pb2.Amount(money=money(template.money.currency_code, value))
    return schemes_pb2.Amount(points=float(value))


class Measure(Model):
    id: str
    displayName: str
    weight: float
    target: float


class Scheme(Model):
    name: str = Field(examples=["schemes/collaboration-bonus"])
    displayName: str
    description: str
    periodKind: Literal["UNSPECIFIED", "MONTH", "QUARTER"]
    timeZone: str
    state: Literal["UNSPECIFIED", "DRAFT", "ACTIVE"]
    version: int
    measures: list[Measure]
    recentPeriods: list[str] = Field(description="The current period's id and the three before it, newest first.")

    @classmethod
    def of(cls, s: schemes_pb2.Scheme, recent: list[str]) -> Scheme:
        return cls(
            name=s.name,
            displayName=s.display_name,
            description=s.description,
            periodKind=_enum(schemes_pb2.PeriodKind.DESCRIPTOR, s.calendar.period_kind, "PERIOD_KIND_"),  # type: ignore[arg-type]
            timeZone=s.calendar.time_zone,
            state=_enum(schemes_pb2.Scheme.State.DESCRIPTOR, s.state, "STATE_"),  # type: ignore[arg-type]
            version=s.version,
            measures=[
                Measure(id=m.id, displayName=m.display_name, weight=m.weight, target=m.target) for m in s.measures
            ],
            recentPeriods=recent,
        )


class SchemeList(Model):
    schemes: list[Scheme]
    nextPageToken: str


class Contribution(Model):
    behaviourEvent: str
    behaviourType: str
    occurredAt: datetime | None = None
    value: float
    share: float = Field(description="The person's credit share applied.")
    lateFromPeriod: str = Field(description="Set when the event arrived after its own period closed.")


class ScorecardLine(Model):
    measure: str
    displayName: str
    aggregation: str
    value: float
    target: float
    attainment: float
    weight: float
    weightedAttainment: float
    contributions: list[Contribution] = Field(description="The events that counted.")


class Scorecard(Model):
    name: str = Field(examples=["schemes/collab/periods/2025-01/scorecards/E10167"])
    person: str
    schemeVersion: int
    startTime: datetime | None = None
    endTime: datetime | None = None
    state: Literal["UNSPECIFIED", "OPEN", "FINAL"]
    lines: list[ScorecardLine]
    attainment: float = Field(description="Sum of the lines' weighted attainments; 1.0 is on target.")
    payout: Amount | None = None
    computeTime: datetime | None = None

    @classmethod
    def of(cls, c: scorecards_pb2.Scorecard) -> Scorecard:
        return cls(
            name=c.name,
            person=c.person,
            schemeVersion=c.scheme_version,
            startTime=_time(c.start_time),
            endTime=_time(c.end_time),
            state=_enum(scorecards_pb2.Scorecard.State.DESCRIPTOR, c.state, "STATE_"),  # type: ignore[arg-type]
            lines=[
                ScorecardLine(
                    measure=line.measure,
                    displayName=line.display_name,
                    aggregation=_enum(schemes_pb2.Aggregation.DESCRIPTOR, line.aggregation, "AGGREGATION_"),
                    value=line.value,
                    target=line.target,
                    attainment=line.attainment,
                    weight=line.weight,
                    weightedAttainment=line.weighted_attainment,
                    contributions=[
                        Contribution(
                            behaviourEvent=x.behaviour_event,
                            behaviourType=x.behaviour_type,
                            occurredAt=_time(x.occurred_at),
                            value=x.value,
                            share=x.share,
                            lateFromPeriod=x.late_from_period,
                        )
                        for x in line.contributions
                    ],
                )
                for line in c.lines
            ],
            attainment=c.attainment,
            payout=Amount.of(c.payout),
            computeTime=_time(c.compute_time),
        )


class ScorecardList(Model):
    scorecards: list[Scorecard]


class Period(Model):
    name: str = Field(examples=["schemes/collab/periods/2025-01"])
    startTime: datetime | None = None
    endTime: datetime | None = None
    state: Literal["UNSPECIFIED", "OPEN", "CLOSED"]
    schemeVersion: int
    closeTime: datetime | None = None
    closedBy: str
    awardCount: int
    totalAwarded: Amount | None = None
    budget: Amount | None = None
    overBudget: bool

    @classmethod
    def of(cls, p: awards_pb2.Period) -> Period:
        return cls(
            name=p.name,
            startTime=_time(p.start_time),
            endTime=_time(p.end_time),
            state=_enum(awards_pb2.Period.State.DESCRIPTOR, p.state, "STATE_"),  # type: ignore[arg-type]
            schemeVersion=p.scheme_version,
            closeTime=_time(p.close_time),
            closedBy=p.closed_by,
            awardCount=p.award_count,
            totalAwarded=Amount.of(p.total_awarded),
            budget=Amount.of(p.budget),
            overBudget=p.over_budget,
        )


class AwardAdjustment(Model):
    fromAmount: Amount | None = None
    toAmount: Amount | None = None
    reason: str
    adjustedBy: str
    adjustTime: datetime | None = None


AwardState = Literal["UNSPECIFIED", "PROPOSED", "APPROVED"]
AWARD_STATES: dict[str, int] = {
    "PROPOSED": awards_pb2.Award.STATE_PROPOSED,
    "APPROVED": awards_pb2.Award.STATE_APPROVED,
}


class Award(Model):
    name: str = Field(examples=["schemes/collab/periods/2025-01/awards/E10167"])
    person: str
    scheme: str
    period: str
    schemeVersion: int
    attainment: float
    proposedAmount: Amount | None = None
    amount: Amount | None = None
    state: AwardState
    adjustments: list[AwardAdjustment] = Field(description="Oldest first.")
    approvedBy: str
    approveTime: datetime | None = None
    etag: str
    createTime: datetime | None = None
    updateTime: datetime | None = None

    @classmethod
    def of(cls, a: awards_pb2.Award) -> Award:
        return cls(
            name=a.name,
            person=a.person,
            scheme=a.scheme,
            period=a.period,
            schemeVersion=a.scheme_version,
            attainment=a.attainment,
            proposedAmount=Amount.of(a.proposed_amount),
            amount=Amount.of(a.amount),
            state=_enum(awards_pb2.Award.State.DESCRIPTOR, a.state, "STATE_"),  # type: ignore[arg-type]
            adjustments=[
                AwardAdjustment(
                    fromAmount=Amount.of(x.from_amount),
                    toAmount=Amount.of(x.to_amount),
                    reason=x.reason,
                    adjustedBy=x.adjusted_by,
                    adjustTime=_time(x.adjust_time),
                )
                for x in a.adjustments
            ],
            approvedBy=a.approved_by,
            approveTime=_time(a.approve_time),
            etag=a.etag,
            createTime=_time(a.create_time),
            updateTime=_time(a.update_time),
        )


class AwardList(Model):
    awards: list[Award]


class AwardAdjust(Model):
    amount: str = Field(pattern=DECIMAL, description="New amount in the scheme's unit, e.g. `300.00`.")
    reason: str = Field(min_length=1, max_length=500, description="Why; kept in the award's history.")
