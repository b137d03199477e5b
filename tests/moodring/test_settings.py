"""Settings: every variable documented, bad values refused by name, secrets never shown."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from moodring.errors import ConfigError
from moodring.settings import Settings, env_names
from tests.paths import ROOT


def test_env_example_documents_every_setting() -> None:
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert set(env_names()) <= documented, set(env_names()) - documented


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("MOODRING_WORKERS", "two", "MOODRING_WORKERS='two' is not valid"),
        ("MOODRING_QUEUE_SIZE", "0", "MOODRING_QUEUE_SIZE must be positive"),
        ("MOODRING_SELFIES_IN_CHANNELS", "maybe", "MOODRING_SELFIES_IN_CHANNELS='maybe' is not valid"),
        ("MOODRING_COOLDOWN_SECONDS", "-1", "MOODRING_COOLDOWN_SECONDS must be >= 0"),
    ],
)
def test_bad_values_are_one_line_errors_naming_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.load(environ={name: value})
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_secrets_are_never_shown() -> None:
    settings = Settings.load(environ={"DISCORD_TOKEN": "tok-123", "SPOTIPY_CLIENT_SECRET": "sec-456"})
    assert settings.discord_token == "tok-123"
    assert "tok-123" not in repr(settings) and "sec-456" not in repr(settings)
    with pytest.raises(ConfigError) as caught:
        Settings.load(environ={"DISCORD_GUILD_ID": "not-a-number", "DISCORD_TOKEN": "tok-123"})
    assert "tok-123" not in str(caught.value)


def test_defaults_need_no_environment() -> None:
    settings = Settings.load(environ={})
    assert settings.model.name == "six-cnn-ensemble.tflite" and settings.model.is_file()
    assert settings.fer2013_path.name == "fer2013.csv.gz"


def test_id_lists_accept_commas_and_spaces() -> None:
    settings = Settings.load(environ={"MOODRING_WATCH_CHANNELS": "11, 22 33"})
    assert settings.watch_channels == (11, 22, 33)
    with pytest.raises(ConfigError, match="MOODRING_WATCH_CHANNELS='11,x' is not valid"):
        Settings.load(environ={"MOODRING_WATCH_CHANNELS": "11,x"})


def test_fleet_and_database_settings() -> None:
    settings = Settings.load(environ={"MOODRING_SHARD_COUNT": "4", "MOODRING_SHARD_IDS": "2,3"})
    assert (settings.shard_count, settings.shard_ids) == (4, (2, 3))
    for environ, message in (
        ({"MOODRING_SHARD_IDS": "0"}, "MOODRING_SHARD_IDS needs MOODRING_SHARD_COUNT"),
        ({"MOODRING_SHARD_COUNT": "2", "MOODRING_SHARD_IDS": "1,2"}, "from 0 to 1, got 1,2"),
        ({"MOODRING_SHARD_COUNT": "2", "MOODRING_SHARD_IDS": "1,1"}, "distinct"),
        ({"MOODRING_SHARD_COUNT": "0"}, "MOODRING_SHARD_COUNT must be positive"),
    ):
        with pytest.raises(ConfigError, match=message):
            Settings.load(environ=environ)
    url = "postgresql://moodring:pw-secret@db:5432/moodring"
    assert "pw-secret" not in repr(Settings.load(environ={"MOODRING_DATABASE_URL": url}))


@pytest.mark.parametrize("suffix", [".tflite", ".keras"])
def test_a_model_setting_under_its_old_name_uses_the_renamed_file_with_one_warning(
    tmp_path: Path, suffix: str, caplog: pytest.LogCaptureFixture
) -> None:
    renamed = tmp_path / f"six-cnn-ensemble{suffix}"
    renamed.write_bytes(b"model")
    with caplog.at_level(logging.WARNING, logger="moodring.settings"):
        settings = Settings.load(environ={"MOODRING_MODEL": str(tmp_path / f"moodring-cnn{suffix}")})
    assert settings.model == renamed
    assert [record.getMessage() for record in caplog.records] == [
        f"MOODRING_MODEL={tmp_path / f'moodring-cnn{suffix}'}: that file is now {renamed.name}, used instead; "
        "update MOODRING_MODEL"
    ]


def test_a_model_setting_is_kept_as_given_when_no_renamed_file_stands_in(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    old = tmp_path / "moodring-cnn.tflite"
    assert Settings.load(environ={"MOODRING_MODEL": str(old)}).model == old  # missing: the model loader says so
    old.write_bytes(b"model")
    (tmp_path / "six-cnn-ensemble.tflite").write_bytes(b"model")
    assert Settings.load(environ={"MOODRING_MODEL": str(old)}).model == old  # still there: it is what was asked for
    assert not caplog.records
