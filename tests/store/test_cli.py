"""`moodring db`, `moodring forget` and `moodring recommend --user` on both back-ends, run as the console runs them."""

from __future__ import annotations

import asyncio
import getpass
import json
from pathlib import Path

import pytest

from moodring.cli import main
from moodring.store.migrate import head_revision
from tests.postgres import free_port
from tests.store.test_store import execute


@pytest.fixture
def cli_database(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The CLI's environment pointed at a new database on each back-end (and nothing else of the developer's)."""
    monkeypatch.setenv("MOODRING_DATABASE_URL", database_url)
    monkeypatch.setenv("MOODRING_PLAYLIST_STORE", str(tmp_path / "playlists.json"))
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    return database_url


def recommend(capsys: pytest.CaptureFixture, *extra: str) -> list[str]:
    """Track ids of one `moodring recommend --emotion happy --ranking blend --json` run."""
    assert main(["recommend", "--emotion", "happy", "--ranking", "blend", "--json", *extra]) == 0
    return [track["id"] for track in json.loads(capsys.readouterr().out)["tracks"]]


def test_history_makes_runs_vary_and_forget_starts_over(cli_database: str, capsys: pytest.CaptureFixture):
    assert main(["db", "upgrade"]) == 0
    assert f"schema at {head_revision()} (was empty)" in capsys.readouterr().out
    runs = [recommend(capsys, "--user", "alice") for _ in range(4)]
    assert len({track for run in runs for track in run}) == 20
    assert main(["forget", "--user", "alice"]) == 0
    assert capsys.readouterr().out.strip() == "forgot local:alice: 20 row(s) deleted"
    assert recommend(capsys, "--user", "alice") == runs[0]  # same seed, empty history


def test_a_chosen_strategy_is_kept_for_the_user_until_forgotten(cli_database: str, capsys: pytest.CaptureFixture):
    def mood(*extra: str) -> str:
        assert main(["recommend", "--emotion", "sad", "--json", "--user", "bob", *extra]) == 0
        return json.loads(capsys.readouterr().out)["mood"]

    assert mood() == "Happy"  # the default strategy (notebook) lifts a sad mood
    assert mood("--strategy", "match") == "Sad"
    assert mood() == "Sad"  # bob's choice is kept
    assert main(["forget", "--user", "bob"]) == 0
    capsys.readouterr()
    assert mood() == "Happy"


def test_the_default_user_is_the_login_name(cli_database: str, capsys: pytest.CaptureFixture):
    first = recommend(capsys)
    assert recommend(capsys) != first
    assert main(["forget", "--user", f"local:{getpass.getuser()}"]) == 0
    assert capsys.readouterr().out.strip().endswith(": 10 row(s) deleted")


def test_a_newer_schema_stops_every_command_with_one_line(cli_database: str, capsys: pytest.CaptureFixture):
    assert main(["db", "upgrade"]) == 0
    asyncio.run(execute(cli_database, "UPDATE alembic_version SET version_num = 'ffff'"))
    capsys.readouterr()
    for command in (["db", "upgrade"], ["forget", "--user", "alice"], ["recommend", "--emotion", "sad"]):
        assert main(command) == 2, command
        out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1 and "newer than this Moodring" in err
    assert main(["db", "current"]) == 0
    assert capsys.readouterr().out.startswith(f"database schema: ffff; this Moodring's: {head_revision()}")


def test_an_unreachable_database_stops_the_cli_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    monkeypatch.setenv("MOODRING_DATABASE_URL", f"postgresql://moodring:pw-123@127.0.0.1:{free_port()}/moodring")
    monkeypatch.chdir(tmp_path)
    for command in (["db", "upgrade"], ["recommend", "--emotion", "sad"], ["forget", "--user", "1"]):
        assert main(command) == 2, command
        out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1 and "unavailable" in err and "pw-123" not in err


def test_bad_input_is_refused_before_the_store_is_created(
    user_data_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    monkeypatch.delenv("MOODRING_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    for command in (
        ["--emotion", "joy"],
        ["--emotion", "sad", "--ranking", "random"],
        ["--emotion", "sad", "--user", "discord:x"],
    ):
        assert main(["recommend", *command]) == 2, command
        assert capsys.readouterr().err.count("\n") == 1
    assert not (user_data_home / "moodring").exists()
    assert main(["recommend", "--emotion", "sad", "--json"]) == 0  # the default store: created on first use
    assert (user_data_home / "moodring" / "moodring.db").is_file()
