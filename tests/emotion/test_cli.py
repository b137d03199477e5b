"""`moodring predict`: JSON Lines out, one stderr line per bad file, others still read, exit 2, model loaded once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
from moodring.emotion import EmotionRecognizer
from PIL import Image

from moodring.cli import main
from moodring.settings import Settings
from tests.emotion.test_image import bad_inputs
from tests.paths import ROOT

ASTRONAUT = ROOT / "examples" / "astronaut.jpg"
BAD_FILES = {
    "empty": "empty.jpg",
    "truncated jpeg": "truncated.jpg",
    "corrupted IDAT png": "damaged.png",
    "8x8 picture": "icon.png",
    "text renamed .jpg": "notes.jpg",
    "decompression bomb (64 MP of zeros)": "bomb.png",
    "unsupported format (PCX)": "scan.pcx",
}


def pipeline_environ(shared_data: Path) -> dict[str, str]:
    """Every setting `predict` reads, explicitly: a developer's .env must not change what is tested.

    MOODRING_MODEL is kept if set, to try another model; otherwise the shipped one.
    """
    defaults = Settings()
    return {
        "MOODRING_DATA_DIR": str(shared_data),
        "MOODRING_MODEL": os.environ.get("MOODRING_MODEL") or str(defaults.model),
        "MOODRING_MAX_IMAGE_BYTES": str(defaults.max_image_bytes),
        "MOODRING_MAX_IMAGE_PIXELS": str(defaults.max_image_pixels),
        "MOODRING_WORKING_MAX_SIDE": str(defaults.working_max_side),
        "MOODRING_TIGHT_CROP_MAX_SIDE": str(defaults.tight_crop_max_side),
        "MOODRING_FACE_MIN_SCORE": str(defaults.face_min_score),
        "MOODRING_FLIP_AVERAGE": str(defaults.flip_average),
    }


@pytest.fixture
def isolated_env(monkeypatch: pytest.MonkeyPatch, shared_data: Path) -> None:
    for name, value in pipeline_environ(shared_data).items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def bad_corpus(tmp_path: Path) -> dict[str, Path]:
    """Each bad input of the issue as a file, generated here (nothing committed), plus a missing one."""
    corpus = {}
    for kind, name in BAD_FILES.items():
        corpus[kind] = tmp_path / name
        corpus[kind].write_bytes(bad_inputs()[kind][0])
    corpus["missing"] = tmp_path / "gone.jpg"
    corpus["folder"] = tmp_path / "album"
    corpus["folder"].mkdir()
    corpus["device"] = Path("/dev/zero")
    return corpus


def test_bad_inputs_each_get_one_line_and_the_good_one_is_still_read(
    isolated_env: None, bad_corpus: dict[str, Path], capsys: pytest.CaptureFixture
) -> None:
    paths = [*bad_corpus.values(), ASTRONAUT]
    with mock.patch.object(EmotionRecognizer, "from_settings", wraps=EmotionRecognizer.from_settings) as loads:
        code = main(["predict", "--json", *map(str, paths)])
    out, err = capsys.readouterr()
    assert code == 2
    assert loads.call_count == 1, "the model must load once for all inputs"

    (line,) = out.splitlines()
    result = json.loads(line)
    assert result["path"] == str(ASTRONAUT)
    assert result["emotion"] == "happy" and len(result["faces"]) == 1

    errors = err.splitlines()
    assert len(errors) == len(bad_corpus), err
    for path, message in zip(bad_corpus.values(), errors, strict=True):
        assert message.startswith(f"moodring: error: {path}: ")
        assert "Traceback" not in message
    reasons = dict(zip(bad_corpus, errors, strict=True))
    assert "No such file" in reasons["missing"]
    assert "empty" in reasons["empty"]
    assert "truncated" in reasons["truncated jpeg"]
    assert "truncated or corrupt" in reasons["corrupted IDAT png"]
    assert "too small to hold a readable face" in reasons["8x8 picture"]
    assert "is a folder, not a picture" in reasons["folder"]
    assert "more than the 20.0 MiB limit" in reasons["device"]
    assert "not an image" in reasons["text renamed .jpg"]
    assert "decompression bomb" in reasons["decompression bomb (64 MP of zeros)"]
    assert "unsupported image format PCX" in reasons["unsupported format (PCX)"]


def test_all_good_inputs_exit_zero_and_annotate_into_a_folder(
    isolated_env: None, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    blank = tmp_path / "blank.png"
    Image.new("RGB", (320, 240), "white").save(blank)
    code = main(["predict", str(ASTRONAUT), str(blank), "--annotate", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.splitlines()[0].startswith(f"{ASTRONAUT}: happy (1 face)")
    assert f"{blank}: no face found" in out
    assert Image.open(tmp_path / "out" / "astronaut.annotated.png").size == (512, 512)
    assert (tmp_path / "out" / "blank.annotated.png").is_file()


def test_pictures_sharing_a_name_get_separate_annotations(
    isolated_env: None, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    colours = {"a": "white", "b": "black"}
    for folder, colour in colours.items():
        (tmp_path / folder).mkdir()
        Image.new("RGB", (320, 240), colour).save(tmp_path / folder / "photo.png")
    pictures = [str(tmp_path / folder / "photo.png") for folder in colours]
    assert main(["predict", *pictures, "--annotate", str(tmp_path / "out")]) == 0, capsys.readouterr().err
    first, second = (Image.open(tmp_path / "out" / name) for name in ("photo.annotated.png", "photo-2.annotated.png"))
    assert first.getpixel((5, 5))[:3] == (255, 255, 255) and second.getpixel((5, 5))[:3] == (0, 0, 0)


def test_annotate_needs_an_image_name_for_one_input(isolated_env: None, capsys: pytest.CaptureFixture) -> None:
    assert main(["predict", str(ASTRONAUT), "--annotate", "out.txt"]) == 2
    assert "use a .png, .jpg or .webp" in capsys.readouterr().err


def test_console_script_prints_json_lines_for_the_astronaut(tmp_path: Path, shared_data: Path) -> None:
    env = {**os.environ, **pipeline_environ(shared_data)}
    script = Path(sys.executable).with_name("moodring")
    done = subprocess.run(
        [str(script), "predict", str(ASTRONAUT), "--json"], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()
    result = json.loads(line)
    assert result["emotion"] == "happy"
    assert [face["emotion"] for face in result["faces"]] == ["happy"]


def test_predict_help_names_every_format_it_reads(capsys: pytest.CaptureFixture) -> None:
    from moodring.emotion.image import SUPPORTED_FORMATS

    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for name in set(SUPPORTED_FORMATS.values()):
        assert name in help_text
