"""Training fixtures: the real FER2013, a tiny FER-shaped copy, and one small trained run shared by many tests.

The tests prove what the code does, not how well a 60-epoch run scores, so nearly all of them train a net of 8 and
16 filters on `TINY` faces for one or two epochs. The real dataset and the shipped model are used where the
property is about them: the canonical split counts, the shipped model's accuracy and its LiteRT copy.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from moodring.models import SHIPPED_KERAS
from moodring.training.data import Fer2013, Split, load_fer2013

from moodring import EMOTIONS
from moodring.cli import main
from tests.once import made_once

TINY: Mapping[str, int] = {"Training": 224, "PublicTest": 112, "PrivateTest": 112}
"""Faces per split in the tiny FER2013 copy: enough batches to train and score, small enough to take seconds."""
TINY_WIDTHS = "8,16"
"""Filters per stage of the nets the tests train: a real `build_cnn`, a thousandth of the shipped member's cost."""


def write_fer_csv(path: Path, counts: Mapping[str, int] = TINY, seed: int = 0) -> Path:
    """A FER2013-layout csv of synthetic 48x48 faces: each emotion a blocky pattern of its own, plus noise."""
    rng = np.random.default_rng(seed)
    patterns = np.kron(rng.integers(40, 216, (len(EMOTIONS), 6, 6)), np.ones((8, 8)))
    lines = ["emotion,pixels,Usage"]
    for usage, count in counts.items():
        for index in range(count):
            label = index % len(EMOTIONS)
            face = np.clip(patterns[label] + rng.normal(0, 30, (48, 48)), 0, 255).astype(np.uint8)
            lines.append(f"{label},{' '.join(map(str, face.ravel()))},{usage}")
    path.write_text("\n".join(lines) + "\n")
    return path


def run_cli(*args: str, env: Mapping[str, str], cwd: Path) -> subprocess.CompletedProcess:
    """`moodring ARGS` in a fresh process, as a user runs it: its own TensorFlow start-up and stderr."""
    return subprocess.run(
        [sys.executable, "-m", "moodring.cli", *args],
        capture_output=True,
        text=True,
        env=dict(env),
        cwd=cwd,
        timeout=600,
    )


def moodring_lines(stderr: str) -> int:
    """Lines Moodring itself wrote, among whatever else reached stderr."""
    return sum(line.startswith("moodring:") for line in stderr.splitlines())


@pytest.fixture(scope="session")
def fer(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Fer2013:
    """The real FER2013, parsed once per test run into a temporary cache that every worker then reads."""
    source = shared_data / "fer2013" / "fer2013.csv.gz"
    cache = made_once(tmp_path_factory, "fer2013-cache", lambda folder: load_fer2013(source, cache_dir=folder))
    return load_fer2013(source, cache_dir=cache)


SHIPPED_CHECK_FACES = 500
"""PrivateTest faces the shipped model is run on in the tests: enough to tell a trained model from a stub."""


@pytest.fixture(scope="session")
def shipped_on_private_test(fer: Fer2013, tmp_path_factory: pytest.TempPathFactory) -> tuple[Split, np.ndarray]:
    """The first `SHIPPED_CHECK_FACES` PrivateTest faces and the shipped Keras model's probabilities for them
    (computed once per test run)."""
    faces = Split(fer.test.images[:SHIPPED_CHECK_FACES], fer.test.labels[:SHIPPED_CHECK_FACES])

    def predict(folder: Path) -> None:
        from moodring.training.evaluate import predict_probabilities
        from moodring.training.models import load_model

        np.save(folder / "probabilities.npy", predict_probabilities(load_model(SHIPPED_KERAS), faces.images))

    return faces, np.load(made_once(tmp_path_factory, "shipped-on-private-test", predict) / "probabilities.npy")


@pytest.fixture(scope="session")
def tiny_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_fer_csv(tmp_path_factory.mktemp("tiny") / "fer2013.csv")


@pytest.fixture(scope="session")
def tiny(tiny_csv: Path) -> Fer2013:
    return load_fer2013(tiny_csv)


@pytest.fixture(scope="session")
def cli_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The working directory of the tests' `moodring` processes: relative defaults such as runs/ land here."""
    return tmp_path_factory.mktemp("home")


def tiny_environ(tiny_csv: Path, home: Path, shared_data: Path) -> dict[str, str]:
    """The settings of a `moodring` command in the tests: the tiny data, and every writable path under `home`."""
    return {
        "MOODRING_DATA_DIR": str(shared_data),
        "MOODRING_FER2013": str(tiny_csv),
        "MOODRING_RUNS_DIR": str(home / "runs"),
        "MOODRING_CACHE_DIR": str(home / "cache"),
        "MOODRING_FLIP_AVERAGE": "false",
    }


@pytest.fixture(scope="session")
def cli_env(tiny_csv: Path, cli_home: Path, shared_data: Path) -> dict[str, str]:
    """The environment of a `moodring` process in the tests."""
    return {**os.environ, **tiny_environ(tiny_csv, cli_home, shared_data)}


@dataclass(frozen=True)
class Outcome:
    """What a `moodring` command gave back: exit code, stdout, and Moodring's own stderr."""

    code: int
    out: str
    err: str


@contextlib.contextmanager
def moodring_command(environ: Mapping[str, str], home: Path) -> Iterator[Callable[..., Outcome]]:
    """Run `moodring ARGS` through its entry point, in this process: TensorFlow starts once for all such tests.

    Log records go to pytest's handlers (see `caplog`), not to the captured stderr.
    """

    def run(*args: str) -> Outcome:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse's usage errors
                code = exc.code
        return Outcome(int(code), out.getvalue(), err.getvalue())

    with pytest.MonkeyPatch.context() as patch:
        for name, value in environ.items():
            patch.setenv(name, value)
        patch.chdir(home)
        yield run


@pytest.fixture
def moodring(tiny_csv: Path, tmp_path: Path, shared_data: Path) -> Iterator[Callable[..., Outcome]]:
    """`moodring(*args)` runs a command on the tiny data with every default path inside this test's `tmp_path`."""
    with moodring_command(tiny_environ(tiny_csv, tmp_path, shared_data), tmp_path) as run:
        yield run


@pytest.fixture(scope="session")
def trained_run(tiny_csv: Path, shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small `moodring train` run (one per test run), for the tests that need *a* trained run and only read it."""

    def train(home: Path) -> None:
        with moodring_command(tiny_environ(tiny_csv, home, shared_data), home) as run:
            result = run("train", "--widths", TINY_WIDTHS, "--epochs", "2", "--run-dir", str(home / "cnn-tiny"))
        assert result.code == 0, result.err[-2000:]
        assert "PrivateTest accuracy" in result.out

    return made_once(tmp_path_factory, "trained", train) / "cnn-tiny"
