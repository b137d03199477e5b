"""Real databases for the store's tests: SQLite in the test's folder, and one throwaway PostgreSQL 15 cluster
for the session (a fresh database per test). Where PostgreSQL is missing its tests skip, saying why; in CI
(`CI` or `MOODRING_REQUIRE_POSTGRES` set) they fail instead, so that they cannot silently not run."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from moodring.settings import Settings
from moodring.store import Store
from tests.postgres import PostgresCluster, missing_reason

BACKENDS = ("sqlite", "postgresql")


def postgres_required() -> bool:
    """CI must run the PostgreSQL tests: a missing server is a failure there, not a skip."""
    return any(
        os.environ.get(name, "").strip() not in ("", "0", "false") for name in ("CI", "MOODRING_REQUIRE_POSTGRES")
    )


def start_postgres() -> PostgresCluster:
    """A running cluster, or the test skips (locally) / fails (CI) with the reason."""
    reason = missing_reason()
    if reason is not None:
        if postgres_required():
            pytest.fail(f"PostgreSQL is required here (CI / MOODRING_REQUIRE_POSTGRES): {reason}")
        pytest.skip(reason)
    return PostgresCluster().init()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """One PostgreSQL 15 cluster for the whole session, on a free 127.0.0.1 port, deleted at the end."""
    cluster = start_postgres()
    yield cluster
    cluster.destroy()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A plain URL of a new, empty database on each back-end."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'moodring.db'}"
    return request.getfixturevalue("postgres").create_database()


def store_settings(database_url: str, folder: Path, **extra: str) -> Settings:
    """Settings for a store at `database_url`, every file in `folder`."""
    environ = {"MOODRING_DATABASE_URL": database_url, "MOODRING_PLAYLIST_STORE": str(folder / "playlists.json")}
    return Settings.load(environ={**environ, **extra})


@pytest.fixture
async def store(database_url: str, tmp_path: Path) -> AsyncIterator[Store]:
    """A connected (so migrated) store on a new database."""
    opened = await Store.connect(store_settings(database_url, tmp_path))
    yield opened
    await opened.close()
