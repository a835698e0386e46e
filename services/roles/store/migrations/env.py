"""Alembic environment of the roles service."""

from sqlmodel import SQLModel

import services.roles.store.tables  # noqa: F401  (registers the tables)
from services.platform.migrations import run_env

run_env(SQLModel.metadata)
