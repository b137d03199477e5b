"""Shared fixtures: real data from ../shared, settings isolated from the developer's own .env.

The session also checks that the tests left the checkout as they found it: everything they write belongs under
`tmp_path` (runs, caches, token files), and a file that appears in the checkout fails the run.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from moodring.settings import Settings
from tests.paths import ROOT

SHARED = ROOT.parent / "shared"
# What may appear in the checkout while the tests run: Python's and pytest's caches, and virtual environments.
HARMLESS_PARTS = ("__pycache__", ".pytest_cache")
HARMLESS_PREFIXES = (".venv",)
CHECKOUT_BEFORE = pytest.StashKey[set[str] | None]()


def checkout_status() -> set[str] | None:
    """`git status --porcelain --ignored` of the checkout, less harmless caches; None outside a git checkout."""
    try:
        result = subprocess.run(
            ["git", "status", "--porcelain", "--ignored"], cwd=ROOT, capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    entries = set()
    for line in result.stdout.splitlines():
        parts = Path(line[3:].strip('"')).parts
        if any(part in HARMLESS_PARTS for part in parts) or parts[0].startswith(HARMLESS_PREFIXES):
            continue
        entries.add(line)
    return entries


def pytest_sessionstart(session: pytest.Session) -> None:
    """Note what the checkout holds before any test runs."""
    if not hasattr(session.config, "workerinput"):  # the controlling process only, under pytest-xdist
        session.config.stash[CHECKOUT_BEFORE] = checkout_status()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if a test left a file in the checkout (`git status --porcelain --ignored` shows it)."""
    before = session.config.stash.get(CHECKOUT_BEFORE, None)
    after = checkout_status() if before is not None else None
    if before is None or after is None or after <= before:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write("\n")
        reporter.write_sep("!", "the tests wrote into the checkout: use tmp_path (the run fails)", red=True, bold=True)
        for entry in sorted(after - before):
            reporter.write_line(f"  {entry}", red=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests marked `slow` go first: a long test started last would leave the other worker idle meanwhile."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: the rest keep their order


@pytest.fixture(autouse=True)
def user_data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user's data folder (platformdirs, where the default SQLite store lives) inside the test's folder,
    for this process and every `moodring` it starts: no test writes into the developer's own home."""
    folder = tmp_path / "user-data"
    monkeypatch.setenv("XDG_DATA_HOME", str(folder))
    return folder


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, which CI and every checkout have beside the project."""
    path = SHARED / "data"
    assert path.is_dir(), f"tests need the shared data folder at {path}"
    return path


@pytest.fixture
def settings(tmp_path: Path, shared_data: Path) -> Settings:
    """Default settings with every writable path inside the test's own temporary folder."""
    return Settings.load(
        environ={
            "MOODRING_DATA_DIR": str(shared_data),
            "MOODRING_RUNS_DIR": str(tmp_path / "runs"),
            "MOODRING_CACHE_DIR": str(tmp_path / "cache"),
            "MOODRING_SPOTIFY_TOKEN_CACHE": str(tmp_path / "spotify-token.json"),
            "MOODRING_PLAYLIST_STORE": str(tmp_path / "playlists.json"),
            "MOODRING_DATABASE_URL": f"sqlite:///{tmp_path / 'moodring.db'}",
        }
    )


@pytest.fixture
def fake_spotify():
    """A fake Spotify Web API + accounts service on 127.0.0.1, fresh for each test.

    See `tests/fake_spotify.py` for its switches (429, 5xx, slow, down, missing popularity, lost
    playlist-create answers) and for what it records. `fake_spotify.environ(tmp_path)` gives the
    settings environment pointing at it, with a pre-seeded user login.
    """
    from tests.fake_spotify import FakeSpotify

    with FakeSpotify() as fake:
        yield fake


@pytest.fixture
def spotify_settings(fake_spotify, tmp_path: Path, shared_data: Path) -> Settings:
    """Settings with Spotify pointed at `fake_spotify` (logged in), every file in `tmp_path`."""
    return Settings.load(environ=fake_spotify.environ(tmp_path, MOODRING_DATA_DIR=str(shared_data)))


@pytest.fixture(autouse=True)
def _logger_levels() -> Iterator[None]:
    """Restore the levels `moodring.log.configure_logging` sets, so a CLI run in one test never mutes the next."""
    names = ("", "moodring", "discord", "discord.http", "spotipy", "urllib3")
    levels = {name: logging.getLogger(name).level for name in names}
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
