"""Alembic environment of the skills service."""

from sqlmodel import SQLModel

import services.skills.store.tables  # noqa: F401  (registers the tables)
from services.platform.migrations import run_env

run_env(SQLModel.metadata)
