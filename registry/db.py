"""Database engine, sessions and migrations.

`open_database(settings)` creates the async engine, applies Alembic migrations up to head and
returns a `Database`. SQLite gets WAL, foreign keys and a busy timeout so that a locked database
answers 503 after `PAR_DB_TIMEOUT` seconds instead of hanging.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session

from registry.settings import RegistrySettings

MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass
class Database:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    # Called after every commit of a session from `sessions`, whoever made it (API, watchers,
    # `par up`'s status keeper): what caches derived from the database hook into.
    after_commit: list[Callable[[], None]] = field(default_factory=list)

    async def close(self) -> None:
        await self.engine.dispose()


def _alembic_upgrade(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def create_engine(settings: RegistrySettings) -> AsyncEngine:
    url = settings.sqlalchemy_url()
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        # Sessions always end their transactions themselves; skipping the pool's extra rollback
        # on check-in saves a round trip to aiosqlite's thread per request.
        engine = create_async_engine(
            url,
            connect_args={"timeout": settings.db_timeout},
            pool_reset_on_return=None,
            pool_size=settings.sqlite_connections,
            max_overflow=0,
            pool_timeout=settings.db_timeout,
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_async_engine(
        url,
        pool_pre_ping=True,
        pool_timeout=settings.db_timeout,
        connect_args={"timeout": settings.db_timeout, "command_timeout": settings.db_timeout},
    )


async def open_database(settings: RegistrySettings) -> Database:
    engine = create_engine(settings)
    async with engine.begin() as connection:
        await connection.run_sync(_alembic_upgrade)
    session_class = type("RegistrySession", (Session,), {})  # this database's sessions only
    database = Database(
        engine, async_sessionmaker(engine, expire_on_commit=False, sync_session_class=session_class)
    )

    @event.listens_for(session_class, "after_commit")
    def _committed(_session: Session) -> None:
        for callback in database.after_commit:
            callback()

    return database
