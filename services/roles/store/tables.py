"""Tables of the roles service. Times are aware UTC datetimes.

`revision` counts changes of a row: it makes the etag and the events'
`ce-sequence`, so consumers can drop an event older than one they have seen.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import JSON, Column, Field, SQLModel

# The platform tables (outbox, request ids) live in the same metadata.
from services.platform.outbox import OutboxRow, RequestRecord  # noqa: F401


class OrgUnitRow(SQLModel, table=True):
    __tablename__ = "org_units"

    id: str = Field(primary_key=True, max_length=63)
    display_name: str = Field(max_length=200)
    kind: str = Field(max_length=30)
    parent_id: str | None = Field(default=None, index=True, max_length=63)
    manager_id: str | None = Field(default=None, index=True, max_length=63)
    # `/root/.../this/`: a subtree is every path starting with its root's path.
    path: str = Field(index=True, max_length=2000)
    hr_version: int = Field(default=0, sa_column=Column(sa.BigInteger, nullable=False, default=0))
    revision: int = 1
    create_time: datetime
    update_time: datetime


class PersonRow(SQLModel, table=True):
    __tablename__ = "people"

    id: str = Field(primary_key=True, max_length=63)
    display_name: str = Field(max_length=200)
    email: str = Field(default="", max_length=320)
    org_unit_id: str = Field(index=True, max_length=63)
    manager_id: str | None = Field(default=None, index=True, max_length=63)
    management_level: int
    status: str = Field(max_length=20, index=True)
    hr_version: int = Field(default=0, sa_column=Column(sa.BigInteger, nullable=False, default=0))
    revision: int = 1
    create_time: datetime
    update_time: datetime


class DecisionCategoryRow(SQLModel, table=True):
    __tablename__ = "decision_categories"

    id: str = Field(primary_key=True, max_length=63)
    display_name: str = Field(max_length=200)
    description: str = Field(default="", max_length=2000)
    tier: str = Field(max_length=30)
    min_level: int
    max_level: int
    revision: int = 1
    create_time: datetime
    update_time: datetime


class RoleRow(SQLModel, table=True):
    __tablename__ = "roles"

    id: str = Field(primary_key=True, max_length=63)
    display_name: str = Field(max_length=200)
    purpose: str = Field(default="", max_length=4000)
    responsibilities: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    management_level: int
    # [{"category", "authority", "limit": {"amount": "500", "currency": "EUR"} | None}]
    decision_rights: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # [{"skill", "min_level", "weight", "mandatory"}]
    skill_requirements: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    state: str = Field(max_length=20, index=True)
    version: int = 1
    revision: int = 1
    create_time: datetime
    update_time: datetime


class RoleVersionRow(SQLModel, table=True):
    """Each version of a role as it was when it came into force."""

    __tablename__ = "role_versions"

    role_id: str = Field(primary_key=True, max_length=63)
    version: int = Field(primary_key=True)
    display_name: str = Field(max_length=200)
    content: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    effective_from: datetime


class AssignmentRow(SQLModel, table=True):
    """A person holding a role in an org unit. Never deleted: ending sets `valid_to`."""

    __tablename__ = "assignments"
    __table_args__ = (sa.Index("ix_assignments_person_role", "person_id", "role_id"),)

    id: str = Field(primary_key=True, max_length=40)
    person_id: str = Field(index=True, max_length=63)
    role_id: str = Field(index=True, max_length=63)
    role_version: int
    org_unit_id: str = Field(index=True, max_length=63)
    scope: str = Field(max_length=40)
    valid_from: datetime
    valid_to: datetime | None = Field(default=None, index=True)
    reason: str = Field(default="", max_length=2000)
    assigned_by: str = Field(max_length=300)
    ended_by: str = Field(default="", max_length=300)
    end_reason: str = Field(default="", max_length=2000)
    acknowledged_version: int = 0
    acknowledge_time: datetime | None = None
    revision: int = 1
    create_time: datetime
    update_time: datetime


class DelegationRow(SQLModel, table=True):
    __tablename__ = "delegations"

    id: str = Field(primary_key=True, max_length=40)
    delegator_id: str = Field(index=True, max_length=63)
    delegate_id: str = Field(index=True, max_length=63)
    categories: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    max_amount: str | None = Field(default=None, max_length=40)  # decimal as text
    currency: str = Field(default="", max_length=3)
    valid_from: datetime
    valid_to: datetime
    reason: str = Field(default="", max_length=2000)
    created_by: str = Field(max_length=300)
    revoke_time: datetime | None = None
    revision: int = 1
    create_time: datetime
