"""SQLModel tables and Alembic migrations."""
