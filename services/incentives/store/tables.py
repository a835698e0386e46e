"""Tables of the incentives service. Times are aware UTC datetimes.

`revision` counts changes of a row: it makes the etag and the events'
`ce-sequence`. The `incentives_*` tables are the projection of the roles
service's events (never its tables): people, org units and who held which
role when. Amounts are decimal text so money never passes through floats.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import JSON, Column, Field, SQLModel

# The platform tables (outbox, request ids, inbox, dead letters) live in the same metadata.
from services.platform.consumer import DeadLetterRow, InboxRow  # noqa: F401
from services.platform.outbox import OutboxRow, RequestRecord  # noqa: F401


class BehaviourTypeRow(SQLModel, table=True):
    __tablename__ = "behaviour_types"

    id: str = Field(primary_key=True, max_length=63)
    display_name: str = Field(max_length=200)
    description: str = Field(default="", max_length=2000)
    category: str = Field(max_length=40, index=True)
    unit: str = Field(max_length=40)
    evidence_source: str = Field(default="", max_length=200)
    credits_provider: bool = False
    peer_recognition: bool = False
    recognition_budget: int = 0  # per giver per calendar month (UTC); 0: no limit
    revision: int = 1
    create_time: datetime
    update_time: datetime


class BehaviourEventRow(SQLModel, table=True):
    """An event as the CRM sent it, accepted or parked. Never deleted."""

    __tablename__ = "behaviour_events"

    id: str = Field(primary_key=True, max_length=63)
    behaviour_type_id: str = Field(max_length=63)
    # [{"person": "E1", "share": 0.5}] as sent (share 0: unset)
    credits: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    occurred_at: datetime
    value: float = 1.0
    customer_lob: str | None = Field(default=None, max_length=63)
    provider_lob: str | None = Field(default=None, max_length=63)
    related_org_unit: str | None = Field(default=None, max_length=63)
    source_system: str = Field(default="", max_length=200)
    object_ref: str = Field(default="", max_length=200)
    recipient: str | None = Field(default=None, max_length=63)  # peer recognition: the person thanked
    state: str = Field(max_length=20, index=True)
    park_reason: str = Field(default="", max_length=40)
    park_detail: str = Field(default="", max_length=300)
    credited_org_units: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    record_time: datetime
    accept_time: datetime | None = None


class CreditRow(SQLModel, table=True):
    """One person's credit for an accepted event: what scorecards read."""

    __tablename__ = "behaviour_credits"
    __table_args__ = (
        sa.Index("ix_behaviour_credits_person_time", "person_id", "occurred_at"),
        # Period close and simulation: every credit of a time range, grouped by person.
        sa.Index("ix_behaviour_credits_time", "occurred_at"),
        # Team summaries: the credits of some units in a time range.
        sa.Index("ix_behaviour_credits_unit_time", "org_unit_id", "occurred_at"),
        # Reciprocal pairs: recognitions (a recipient set) in a month.
        sa.Index("ix_behaviour_credits_recipient_time", "recipient_id", "occurred_at"),
    )

    event_id: str = Field(primary_key=True, max_length=63)
    person_id: str = Field(primary_key=True, max_length=63)
    behaviour_type_id: str = Field(max_length=63)
    occurred_at: datetime
    accepted_at: datetime = Field(index=True)
    value: float
    share: float  # normalised: the event's shares add up to 1
    collaborators: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # Org units reached, other than the person's own when the behaviour happened.
    departments: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # Where the person belonged when the behaviour happened (team views credit these).
    org_unit_id: str = Field(default="", max_length=63)
    line_of_business_id: str = Field(default="", max_length=63)
    recipient_id: str | None = Field(default=None, max_length=63)  # peer recognition: the person thanked


class ProjectedPersonRow(SQLModel, table=True):
    __tablename__ = "incentives_people"

    id: str = Field(primary_key=True, max_length=63)
    org_unit_id: str = Field(default="", max_length=63, index=True)
    manager_id: str | None = Field(default=None, max_length=63)
    status: str = Field(max_length=20)
    sequence: int = Field(sa_column=Column(sa.BigInteger, nullable=False))


class ProjectedPersonUnitRow(SQLModel, table=True):
    """A person's org unit from `valid_from` on (the first row of a person
    from the beginning of time): credits take the unit of the event's time."""

    __tablename__ = "incentives_person_units"

    person_id: str = Field(primary_key=True, max_length=63)
    valid_from: datetime = Field(primary_key=True)
    org_unit_id: str = Field(max_length=63)


class ProjectedOrgUnitRow(SQLModel, table=True):
    __tablename__ = "incentives_org_units"

    id: str = Field(primary_key=True, max_length=63)
    parent_id: str | None = Field(default=None, max_length=63)
    manager_id: str | None = Field(default=None, max_length=63, index=True)
    kind: str = Field(default="", max_length=30)
    deleted: bool = False
    sequence: int = Field(sa_column=Column(sa.BigInteger, nullable=False))


class ProjectedAssignmentRow(SQLModel, table=True):
    __tablename__ = "incentives_assignments"

    id: str = Field(primary_key=True, max_length=40)
    person_id: str = Field(max_length=63, index=True)
    role_id: str = Field(max_length=63, index=True)
    org_unit_id: str = Field(max_length=63)
    valid_from: datetime
    valid_to: datetime | None = None
    sequence: int = Field(sa_column=Column(sa.BigInteger, nullable=False))


class SchemeRow(SQLModel, table=True):
    """A scheme and its draft content (published versions are SchemeVersionRow)."""

    __tablename__ = "schemes"

    id: str = Field(primary_key=True, max_length=63)
    display_name: str = Field(max_length=200)
    content: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    state: str = Field(max_length=20)
    version: int = 0  # latest published version
    revision: int = 1
    create_time: datetime
    update_time: datetime


class SchemeVersionRow(SQLModel, table=True):
    __tablename__ = "scheme_versions"

    scheme_id: str = Field(primary_key=True, max_length=63)
    version: int = Field(primary_key=True)
    effective_from: str = Field(max_length=10)  # local date YYYY-MM-DD
    effective_start: datetime  # that date's local midnight, in UTC
    content: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    published_by: str = Field(max_length=300)
    publish_time: datetime


class PeriodRow(SQLModel, table=True):
    """A closed period (open periods have no row)."""

    __tablename__ = "scheme_periods"

    scheme_id: str = Field(primary_key=True, max_length=63)
    period_id: str = Field(primary_key=True, max_length=10)
    start_time: datetime
    end_time: datetime
    scheme_version: int
    close_time: datetime
    closed_by: str = Field(max_length=300)
    revision: int = 1


class ScorecardRow(SQLModel, table=True):
    """A scorecard frozen at the period's close."""

    __tablename__ = "scorecards"

    scheme_id: str = Field(primary_key=True, max_length=63)
    period_id: str = Field(primary_key=True, max_length=10)
    person_id: str = Field(primary_key=True, max_length=63)
    scheme_version: int
    attainment: float
    payout: str = Field(max_length=40)  # decimal text
    lines: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    compute_time: datetime


class AwardRow(SQLModel, table=True):
    __tablename__ = "awards"

    scheme_id: str = Field(primary_key=True, max_length=63)
    period_id: str = Field(primary_key=True, max_length=10)
    person_id: str = Field(primary_key=True, max_length=63)
    scheme_version: int
    attainment: float
    currency: str = Field(default="", max_length=3)  # "" for points
    proposed_amount: str = Field(max_length=40)
    amount: str = Field(max_length=40)
    state: str = Field(max_length=20, index=True)
    # [{"from", "to", "reason", "by", "at"}]
    adjustments: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    approved_by: str = Field(default="", max_length=300)
    approve_time: datetime | None = None
    revision: int = 1
    create_time: datetime
    update_time: datetime


class DeadLetterDecisionRow(SQLModel, table=True):
    """What an operator decided about a dead letter (the platform's row stays as it was)."""

    __tablename__ = "dead_letter_decisions"

    dead_letter_id: int = Field(primary_key=True)
    state: str = Field(max_length=20)  # REPLAYED or DISCARDED
    reason: str = Field(default="", max_length=2000)
    decided_by: str = Field(max_length=300)
    decide_time: datetime
    revision: int = 2  # the pending dead letter is revision 1


class ScorecardChangeRow(SQLModel, table=True):
    """Who a committed change may have moved the open scorecards of: written
    in the change's transaction, followed by every replica's in-memory
    scorecards (`app/scorecard_view.py`), pruned after a while. One row per
    transaction, its people coalesced; `everyone` for changes that touch
    every scorecard (a scheme published, a period closed, the unit tree)."""

    __tablename__ = "scorecard_changes"

    seq: int | None = Field(
        default=None, sa_column=sa.Column(sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True)
    )
    people: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    events: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    everyone: bool = False
    change_time: datetime = Field(index=True)
