"""Alembic migrations of the registry database, applied at start by `registry.db.migrate`."""
