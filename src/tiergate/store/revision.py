"""The newest migration: what every start checks the database against, without importing
Alembic or SQLAlchemy (a test keeps it in step with the migrations folder)."""

HEAD_REVISION = "0028"
