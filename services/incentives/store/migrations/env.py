"""Alembic environment of the incentives service."""

from sqlmodel import SQLModel

import services.incentives.store.tables  # noqa: F401  (registers the tables)
from services.platform.migrations import run_env

run_env(SQLModel.metadata)
