"""`moodring recommend IMAGE`: every broken file is one line naming it, exit 2, no traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from moodring.cli import main
from tests.emotion.test_cli import pipeline_environ
from tests.emotion.test_image import bad_inputs


@pytest.fixture
def recommend_env(monkeypatch: pytest.MonkeyPatch, shared_data: Path, tmp_path: Path) -> None:
    """The pipeline's settings, no Spotify, and no developer `.env` (the working folder is empty)."""
    for name in list(os.environ):
        if name.startswith(("MOODRING_", "SPOTIPY_")):
            monkeypatch.delenv(name)
    for name, value in pipeline_environ(shared_data).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MOODRING_PLAYLIST_STORE", str(tmp_path / "playlists.json"))
    monkeypatch.chdir(tmp_path)


def broken_files(folder: Path) -> dict[str, tuple[Path, str]]:
    """(file, words its error must contain) for each kind of broken selfie, made here."""
    files = {}
    for kind, name, words in (
        ("corrupted IDAT png", "damaged.png", "truncated or corrupt"),
        ("truncated jpeg", "truncated.jpg", "truncated"),
        ("8x8 picture", "icon.png", "too small to hold a readable face"),
        ("text renamed .jpg", "notes.jpg", "not an image"),
        ("empty", "empty.jpg", "empty"),
    ):
        files[kind] = (folder / name, words)
        files[kind][0].write_bytes(bad_inputs()[kind][0])
    (folder / "album").mkdir()
    files["folder"] = (folder / "album", "is a folder, not a picture")
    files["device"] = (Path("/dev/zero"), "limit")
    files["missing"] = (folder / "gone.jpg", "No such file")
    return files


def test_each_broken_selfie_is_one_line_naming_the_file(
    recommend_env: None, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    for kind, (path, words) in broken_files(tmp_path).items():
        assert main(["recommend", str(path)]) == 2, kind
        out, err = capsys.readouterr()
        lines = err.splitlines()
        assert out == "" and len(lines) == 1, (kind, err)
        assert lines[0].startswith(f"moodring: error: {path}: ") and words in lines[0], (kind, lines[0])
