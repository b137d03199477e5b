"""From `MOODRING_DATABASE_URL` to an async engine, and which errors mean "the database is not there".

Users write plain URLs (`sqlite:///PATH`, `postgresql://USER:PASS@HOST:PORT/DB`); the async driver is the
project's choice (aiosqlite, asyncpg), so a URL keeps working if that choice changes. The URL may hold a
password: only `shown_url` (password hidden) ever reaches a message or a log.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import event, exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from moodring.errors import ConfigError, StoreUnavailable, first_line

DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg", "postgres": "postgresql+asyncpg"}
"""Accepted URL schemes and the async driver each one runs on."""
TIMEOUT_SECONDS = 3.0
"""How long a connection attempt or a statement may take before the store counts the database as down."""
SQLITE_FILE_NAME = "moodring.db"

_OUTAGES: tuple[type[BaseException], ...] = (
    exc.DBAPIError,  # refused or lost connections, read-only files and transactions, a server shutting down
    exc.TimeoutError,  # no pooled connection in time
    exc.DisconnectionError,
    OSError,  # asyncpg's connect: refused, unreachable host, bad DNS name
    asyncio.TimeoutError,
)
_BUGS: tuple[type[BaseException], ...] = (exc.IntegrityError, exc.ProgrammingError, exc.DataError)
"""Errors in our own statements: raised as they are, never hidden as an outage."""


def is_outage(error: BaseException) -> bool:
    """Whether `error` means the database cannot serve now (rather than a statement being wrong)."""
    return isinstance(error, _OUTAGES) and not isinstance(error, _BUGS)


def default_database_url() -> str:
    """A SQLite file in the user's data folder (created with its folder on first use)."""
    import platformdirs

    folder = Path(platformdirs.user_data_dir("moodring"))
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StoreUnavailable(f"cannot create the data folder {folder}: {error.strerror}") from None
    return f"sqlite:///{folder / SQLITE_FILE_NAME}"


def configured_url(database_url: str | None) -> URL:
    """The async URL of `MOODRING_DATABASE_URL`, or of the default SQLite file when it is unset.

    A SQLite file whose folder is missing is refused here, before a driver thread is started for it.
    """
    url = async_url(database_url or default_database_url())
    if url.get_backend_name() == "sqlite":
        folder = Path(url.database.removeprefix("file:")).parent
        if not folder.is_dir():
            raise StoreUnavailable(f"database {shown_url(url)} unavailable: the folder {folder} does not exist")
    return url


def async_url(plain: str) -> URL:
    """The URL with the project's async driver; `ConfigError` (password hidden) for anything else."""
    try:
        url = make_url(plain)
    except (exc.ArgumentError, ValueError):
        raise ConfigError(
            "MOODRING_DATABASE_URL is not a database URL; expected sqlite:///PATH or "
            "postgresql://USER:PASSWORD@HOST:PORT/DB"
        ) from None
    backend = url.get_backend_name()
    driver = DRIVERS.get(backend)
    if driver is None or url.drivername not in (backend, driver):
        raise ConfigError(
            f"MOODRING_DATABASE_URL={shown_url(url)}: unsupported database {url.drivername!r}; "
            "expected sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DB"
        )
    if driver.startswith("sqlite") and not url.database:
        raise ConfigError("MOODRING_DATABASE_URL: a SQLite URL needs a file, e.g. sqlite:////var/lib/moodring/m.db")
    return url.set(drivername=driver)


def shown_url(url: URL | str) -> str:
    """The URL as the user wrote it, as it may appear in a message or a log: the password hidden."""
    if isinstance(url, str):
        try:
            url = make_url(url)
        except (exc.ArgumentError, ValueError):
            return "<unparsable URL>"
    return url.set(drivername=url.get_backend_name()).render_as_string(hide_password=True)


def create_engine(url: URL, connections: int = 5) -> AsyncEngine:
    """An async engine for `url`, with bounded waits.

    `connections` are kept open (PostgreSQL): as many as requests run at once, since opening one costs tens
    of round trips. No pre-ping (a round trip per call): a server restart is noticed by the first statement
    on an old connection, which fails (`StoreUnavailable` for that call) and makes the pool replace them all.
    """
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    return create_async_engine(
        url,
        pool_size=connections,
        max_overflow=connections // 2,
        pool_timeout=TIMEOUT_SECONDS,
        connect_args={"timeout": TIMEOUT_SECONDS, "command_timeout": TIMEOUT_SECONDS},
    )


def create_autocommit_engine(url: URL, engine: AsyncEngine) -> AsyncEngine:
    """The engine for statements that each commit alone (single reads, writes whose steps are each safe alone).

    PostgreSQL: `engine`'s own pool, each connection switched to autocommit while in use. SQLite: a pool of its
    own, in autocommit from the first use. Sharing `engine`'s pool, every SQLite use ended with a rollback and a
    `PRAGMA read_uncommitted` to switch back: 4 of the 8 driver-thread round trips of a one-row read, which
    the event loop waits on and pays for in CPU.
    """
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, isolation_level="AUTOCOMMIT", skip_autocommit_rollback=True)
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def _sqlite_engine(url: URL, **options: object) -> AsyncEngine:
    engine = create_async_engine(url, connect_args={"timeout": TIMEOUT_SECONDS}, **options)

    @event.listens_for(engine.sync_engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record) -> None:  # WAL: readers do not wait for the writer
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return engine


def outage_reason(error: BaseException, url: URL) -> str:
    """One line on why the database at `url` cannot serve, without its password."""
    cause = getattr(error, "orig", None) or error
    text = first_line(cause)
    if url.password:
        text = text.replace(str(url.password), "***")
    return f"database {shown_url(url)} unavailable: {text}"
