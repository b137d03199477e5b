"""The release as a user gets it: sdist -> wheel -> a fresh venv outside the checkout, lean dependencies only.

The release files are copied out of the checkout first (the build writes `build/` and `*.egg-info` next to its
sources), and `uv build` packs the sdist, then builds the wheel from that sdist, so one path proves both artefacts.
The venv is made once per run without the development venv's packages, so that it proves the base dependencies
alone are enough. uv installs them from PyPI, as pip would, and keeps them in its cache (`~/.cache/uv`), so that
after a machine's first run it links the files instead of unpacking them again: seconds instead of half a minute.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from uv import find_uv_bin

from tests.once import made_once
from tests.paths import ASTRONAUT, ROOT

RUNTIME_COMMANDS_MUST_NOT_IMPORT = ("tensorflow", "keras", "matplotlib", "cv2")  # OpenCV: training and benchmarks only
TRAIN_EXTRA = "moodring[train]"


@dataclass(frozen=True)
class LeanInstall:
    wheel: Path
    venv: Path
    elsewhere: Path
    """An empty folder outside the checkout to run commands from."""
    env: dict[str, str]

    def run(
        self, *args: str, extra_env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """A command of the venv (`moodring`, `python`) run from `cwd` (default: `elsewhere`)."""
        return subprocess.run(
            [str(self.venv / "bin" / args[0]), *args[1:]],
            cwd=cwd or self.elsewhere,
            env=self.env | (extra_env or {}),
            capture_output=True,
            text=True,
            timeout=300,
        )


def _release_sources(destination: Path) -> None:
    """Copy what the sdist packs (pyproject, README, LICENSE, each package folder) out of the checkout."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    folders = {"moodring", *project["tool"]["setuptools"]["package-dir"].values()}
    for name in ["pyproject.toml", "README.md", *project["project"]["license-files"]]:
        shutil.copy2(ROOT / name, destination / name)
    for folder in folders:
        shutil.copytree(ROOT / folder, destination / folder, ignore=shutil.ignore_patterns("__pycache__"))


def _check(command: list[str], **kwargs) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"


def _release(base: Path) -> None:
    """Build the sdist and its wheel in base/dist, and install the wheel into a fresh venv at base/venv."""
    sources = base / "src"
    sources.mkdir()
    _release_sources(sources)
    dist = base / "dist"
    uv = find_uv_bin()
    _check([uv, "build", "--quiet", "--out-dir", str(dist), str(sources)])  # the sdist, then the wheel from it
    assert len(list(dist.glob("moodring-*.tar.gz"))) == 1
    (wheel,) = dist.glob("moodring-*.whl")
    _check([uv, "venv", "--quiet", "--python", sys.executable, str(base / "venv")])
    _check([uv, "pip", "install", "--quiet", "--python", str(base / "venv" / "bin" / "python"), str(wheel)])


@pytest.fixture(scope="session")
def lean(tmp_path_factory: pytest.TempPathFactory) -> LeanInstall:
    """The sdist's wheel installed into a fresh venv (once per test run): about 5 s, most of it setuptools
    building the two files."""
    base = made_once(tmp_path_factory, "release", _release)
    (wheel,) = (base / "dist").glob("moodring-*.whl")
    own = tmp_path_factory.mktemp("lean")  # what the commands write, and where they run: this worker's
    (own / "elsewhere").mkdir()
    env = {name: value for name, value in os.environ.items() if not name.startswith(("MOODRING_", "SPOTIPY_"))}
    env.pop("DISCORD_TOKEN", None)
    # Python writes the venv's bytecode on first import, as in a user's venv, so each later command starts in
    # about a second, not the five it takes to compile pandas and SQLAlchemy again.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env |= {
        "MOODRING_CACHE_DIR": str(own / "cache"),
        "MOODRING_SPOTIFY_TOKEN_CACHE": str(own / "spotify-token.json"),
        "MOODRING_PLAYLIST_STORE": str(own / "playlists.json"),
    }
    return LeanInstall(wheel, base / "venv", own / "elsewhere", env)


def test_the_wheel_carries_every_module_and_only_the_runtime_model(lean: LeanInstall) -> None:
    names = set(zipfile.ZipFile(lean.wheel).namelist())
    assert {name.split("/")[0] for name in names} == {"moodring", "moodring-0.1.0.dist-info"}  # no `bot`, `emotion`
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for package, folder in {"moodring": "moodring", **project["tool"]["setuptools"]["package-dir"]}.items():
        for module in (ROOT / folder).rglob("*.py"):
            installed = f"{package.replace('.', '/')}/{module.relative_to(ROOT / folder).as_posix()}"
            assert installed in names, f"{module.relative_to(ROOT)} is missing from the wheel: add its package"
    models = sorted(name for name in names if name.startswith("moodring/models/") and not name.endswith(".py"))
    assert models == ["moodring/models/six-cnn-ensemble.tflite", "moodring/models/six-cnn-ensemble.tflite.json"]


def test_the_lean_install_has_no_training_stack_and_no_generic_top_level_names(lean: LeanInstall) -> None:
    absent = ("bot", "emotion", "recommender", "training", "models", "tensorflow", *RUNTIME_COMMANDS_MUST_NOT_IMPORT)
    probe = lean.run(
        "python",
        "-c",
        f"import importlib.util, moodring.bot; print([n for n in {absent!r} if importlib.util.find_spec(n)])",
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "[]"
    assert "No module named 'bot'" in lean.run("python", "-c", "import bot").stderr


def test_predict_and_recommend_run_from_another_folder(lean: LeanInstall) -> None:
    predict = lean.run("moodring", "predict", str(ASTRONAUT), "--json")
    assert predict.returncode == 0, predict.stderr
    assert json.loads(predict.stdout)["emotion"] == "happy"
    recommend = lean.run("moodring", "recommend", str(ASTRONAUT), "--json")
    assert recommend.returncode == 0, recommend.stderr
    answer = json.loads(recommend.stdout)
    assert answer["emotion"] == "happy" and len(answer["tracks"]) == 5


@pytest.mark.parametrize(
    ("args", "extra_env", "names"),
    [
        (("train", "--model", "cnn"), {}, TRAIN_EXTRA),
        (("predict", str(ASTRONAUT)), {"MOODRING_MODEL": "KERAS"}, TRAIN_EXTRA),
        (("bot",), {}, "DISCORD_TOKEN"),
    ],
    ids=["train", "keras-model", "bot-without-token"],
)
def test_what_the_lean_install_cannot_do_is_one_line_and_exit_2(
    lean: LeanInstall, tmp_path: Path, args: tuple[str, ...], extra_env: dict[str, str], names: str
) -> None:
    if extra_env.get("MOODRING_MODEL") == "KERAS":  # a Keras model with no LiteRT export beside it
        shutil.copy2(ROOT / "models" / "six-cnn-ensemble.keras", tmp_path / "retrained.keras")
        extra_env = {"MOODRING_MODEL": str(tmp_path / "retrained.keras")}
    result = lean.run("moodring", *args, extra_env=extra_env)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and names in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_runtime_commands_import_no_training_stack_even_where_it_is_installed(tmp_path: Path) -> None:
    """In the development venv TensorFlow is there to be imported by mistake; the runtime must not."""
    script = (
        "import sys; from moodring.cli import main; "
        f"codes = [main(['recommend', {str(ASTRONAUT)!r}, '--json']), main(['predict', {str(ASTRONAUT)!r}])]; "
        f"print(codes, sorted({{m.split('.')[0] for m in sys.modules}} & set({RUNTIME_COMMANDS_MUST_NOT_IMPORT!r})))"
    )
    env = {name: value for name, value in os.environ.items() if not name.startswith(("MOODRING_", "SPOTIPY_"))}
    env |= {"MOODRING_CACHE_DIR": str(tmp_path / "cache"), "MOODRING_PLAYLIST_STORE": str(tmp_path / "p.json")}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[0, 0] []"


def test_the_installed_command_reads_the_env_file_of_the_folder_it_runs_in(lean: LeanInstall, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"MOODRING_MODEL={tmp_path / 'from-dotenv.tflite'}\n")
    result = lean.run("moodring", "predict", str(ASTRONAUT), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == f"moodring: error: model file not found: {tmp_path / 'from-dotenv.tflite'} " + (
        "(train one with `moodring train`, or set MOODRING_MODEL)"
    )
