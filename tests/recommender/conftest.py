"""Fixtures of the recommender tests: the embedded song table (loaded once), a recommender, a clean CLI environment."""

from __future__ import annotations

import os

import pytest
from moodring.recommender import Recommender
from moodring.recommender.table import SongTable

from moodring.settings import Settings


@pytest.fixture(scope="session")
def table() -> SongTable:
    """The embedded 686-song table (read-only arrays, safe to share)."""
    return SongTable.load()


@pytest.fixture
def cli_env() -> dict[str, str]:
    """The process environment without any Moodring or Spotify setting a developer may have."""
    return {key: value for key, value in os.environ.items() if not key.startswith(("MOODRING_", "SPOTIPY_"))}


@pytest.fixture
def recommender(settings: Settings, table: SongTable) -> Recommender:
    """A recommender on the embedded table with default settings (the `varied` ranking), no Spotify."""
    with Recommender(table, settings) as rec:
        yield rec
