"""Alembic migrations run from code: no alembic.ini, the scripts ship inside the package.

`ensure_schema` is what the bot and the CLI run on start: nothing when the schema is current, an upgrade
when it is behind, `SchemaTooNewError` (and no change) when a newer Moodring migrated the database.
The check and the upgrade hold a lock for their transaction (an advisory lock on PostgreSQL, the write lock on
SQLite), so the processes of a fleet starting at once migrate exactly once: the others wait, then find the schema
current.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from moodring.errors import SchemaTooNewError

log = logging.getLogger(__name__)
logging.getLogger("alembic").setLevel(logging.WARNING)  # its per-run chatter; `upgrade` logs what changed

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
MIGRATION_LOCK = 0x6D6F6F64  # "mood": the advisory-lock key every Moodring process agrees on


def alembic_config() -> Config:
    """The Alembic configuration, built in code; the connection is passed in `attributes["connection"]`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    """The newest schema this code knows."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _check_not_newer(current: str | None) -> None:
    script = ScriptDirectory.from_config(alembic_config())
    known = {revision.revision for revision in script.walk_revisions()}
    if current is not None and current not in known:
        raise SchemaTooNewError(
            f"the database schema ({current}) is newer than this Moodring ({script.get_current_head()}); "
            "upgrade Moodring, the database was not changed"
        )


def _upgrade(connection: Connection) -> tuple[str | None, str]:
    """Check, then upgrade to head inside the caller's transaction; (revision before, revision after)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    elif connection.dialect.name == "sqlite":  # the database's write lock, at once rather than at the first write
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    before = _current(connection)
    _check_not_newer(before)
    head = head_revision()
    if before != head:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    return before, head


async def current_revision(engine: AsyncEngine) -> str | None:
    """The schema revision the database is at (None: never migrated)."""
    async with engine.connect() as connection:
        return await connection.run_sync(_current)


async def upgrade(engine: AsyncEngine) -> tuple[str | None, str]:
    """Migrate to the newest schema (once across a fleet); (revision before, revision after)."""
    async with engine.connect() as connection:
        before, after = await connection.run_sync(_upgrade)
        await connection.commit()
    if before != after:
        log.info("database schema migrated from %s to %s", before or "empty", after)
    return before, after


async def ensure_schema(engine: AsyncEngine) -> None:
    """Migrate when behind (taking the lock only then), refuse a newer schema, else do nothing."""
    current = await current_revision(engine)
    _check_not_newer(current)
    if current != head_revision():
        await upgrade(engine)
