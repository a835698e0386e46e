"""Storage: SQLModel tables, queries and Alembic migrations."""
