"""`moodring train`, `ensemble`, `members`, `evaluate` and `export`: flags to calls, one-line errors, exit codes.

Most commands run through the entry point in this process (`moodring` fixture), so TensorFlow starts once; the
tests that are about the process itself (an interrupted run, what reaches stderr) start their own.
"""

from __future__ import annotations

import csv
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from moodring.training.data import Fer2013

from moodring import EMOTIONS
from tests.training.conftest import TINY_WIDTHS, moodring_lines, run_cli

TINY_TRAIN = ("train", "--widths", TINY_WIDTHS, "--epochs", "1")


def test_train_cli_trains_with_cutmix(moodring, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    run_dir = tmp_path / "run"
    result = moodring(*TINY_TRAIN, "--limit", "64", "--mix", "cutmix", "--run-dir", str(run_dir))
    assert result.code == 0, result.err[-2000:]
    assert json.loads((run_dir / "config.json").read_text())["mix"] == "cutmix"
    assert (run_dir / "model.keras").is_file()
    assert f"{run_dir}: PrivateTest accuracy" in result.out
    for noise in ("AutoGraph could not transform", "`shuffle=True` was passed"):  # once in every run's log
        assert noise not in result.err + caplog.text


def test_train_cli_writes_its_run_under_the_runs_folder(moodring, tmp_path: Path) -> None:
    """Without --run-dir a run goes to MOODRING_RUNS_DIR/<model>-<time>, and --resume finds the newest."""
    result = moodring(*TINY_TRAIN, "--limit", "64", "--model", "rescnn")
    assert result.code == 0, result.err[-2000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert run_dir.name.startswith("rescnn-") and (run_dir / "metrics.json").is_file()
    again = moodring(*TINY_TRAIN, "--limit", "64", "--model", "rescnn", "--resume")
    assert again.code == 2 and f"the run in {run_dir} has finished" in again.err
    missing = moodring(*TINY_TRAIN, "--resume")
    assert missing.code == 2 and "no earlier cnn run" in missing.err


def test_train_cli_final_keeps_the_last_epoch_and_reports_no_public_test(
    moodring, tmp_path: Path, tiny: Fer2013
) -> None:
    run_dir = tmp_path / "run"
    result = moodring(
        "train", "--widths", TINY_WIDTHS, "--final", "--limit", "64", "--epochs", "2", "--run-dir", str(run_dir)
    )
    assert result.code == 0, result.err[-2000:]
    assert not (run_dir / "best.keras").exists()  # nothing was selected
    for name in ("model.keras", "curves.png", "confusion.png"):
        assert (run_dir / name).is_file(), name
    with open(run_dir / "history.csv", newline="") as handle:
        epochs = list(csv.DictReader(handle))
    assert len(epochs) == 2 and all(epoch.get("val_accuracy", "NA") == "NA" for epoch in epochs)  # no validation
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["trained_on"] == "Training+PublicTest" and metrics["n"] == len(tiny.test)
    assert "public_test_accuracy" not in metrics  # it saw those faces: the figure would measure memory

    ensemble = moodring("ensemble", str(run_dir / "model.keras"), "--out", str(tmp_path / "ensemble.keras"))
    assert ensemble.code == 0, ensemble.err[-2000:]
    scored = [line for line in ensemble.out.splitlines() if "PublicTest accuracy" in line]
    assert len(scored) == 2 and all("trained on PublicTest (--final)" in line for line in scored)


@pytest.mark.slow
def test_resnet50v2_from_scratch_trains_in_one_phase(moodring, tmp_path: Path, tiny: Fer2013) -> None:
    """A random base has nothing to protect: no frozen head warm-up, straight to the full schedule.

    `--final` spares the test a best checkpoint of 23.6 M parameters; the phases do not depend on it.
    """
    run_dir = tmp_path / "run"
    result = moodring(
        "train", "--model", "resnet50v2", "--weights", "none", "--input-size", "32",
        "--limit", "64", "--epochs", "1", "--final", "--run-dir", str(run_dir),
    )  # fmt: skip
    assert result.code == 0, result.err[-2000:]
    assert "Epoch 1/3" not in result.out + result.err  # the three-epoch frozen phase never ran
    assert not (run_dir / "frozen.weights.h5").exists() and not (run_dir / "backup-frozen").exists()
    assert len((run_dir / "history.csv").read_text().splitlines()) == 2  # header + the one epoch
    assert json.loads((run_dir / "metrics.json").read_text())["n"] == len(tiny.test)


@pytest.mark.slow
def test_resume_continues_after_the_last_finished_epoch(
    moodring, tmp_path: Path, cli_env: dict[str, str], cli_home: Path
) -> None:
    """The first run is a real process, killed after its first epoch; the same command with --resume goes on."""
    run_dir = tmp_path / "run"
    # Five epochs: after the first, the killed run is seconds from its end, a margin far above the poll's 0.1 s.
    args = ["train", "--widths", TINY_WIDTHS, "--epochs", "5", "--run-dir", str(run_dir)]
    interrupted = subprocess.Popen(
        [sys.executable, "-m", "moodring.cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=cli_env,
        cwd=cli_home,
    )
    history = run_dir / "history.csv"
    deadline = time.monotonic() + 600  # minutes only on a machine busy with other work
    try:
        while not (history.exists() and len(history.read_text().splitlines()) >= 2):  # epoch 1 finished
            assert interrupted.poll() is None and time.monotonic() < deadline, "training never finished epoch 1"
            time.sleep(0.1)
    finally:
        interrupted.kill()
        interrupted.wait()
    assert not (run_dir / "metrics.json").exists()

    resumed = moodring(*args, "--resume")
    assert resumed.code == 0, resumed.err[-2000:]
    assert "Epoch 1/5" not in resumed.out and "Epoch 5/5" in resumed.out
    epochs = [line.split(",")[0] for line in history.read_text().splitlines()[1:]]
    assert epochs[-1] == "4" and "0" in epochs


def test_resume_without_saved_state_says_it_starts_over(
    moodring, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A cache lost with a machine must not look like a resumed run: one warning, then a whole run."""
    run_dir = tmp_path / "lost"
    result = moodring(*TINY_TRAIN, "--resume", "--limit", "64", "--run-dir", str(run_dir))
    assert result.code == 0, result.err[-2000:]
    warnings = [record.getMessage() for record in caplog.records if "no saved training state" in record.getMessage()]
    assert len(warnings) == 1 and "starting at epoch 1" in warnings[0] and str(run_dir) in warnings[0]
    assert (run_dir / "metrics.json").exists()


def test_resume_refuses_a_finished_run_and_leaves_it_as_it_was(moodring, tmp_path: Path) -> None:
    """Keras deletes a run's backup when it finishes, so resuming it would silently train from scratch."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "metrics.json").write_text('{"accuracy": 0.5}')
    result = moodring("train", "--resume", "--run-dir", str(run_dir))
    assert result.code == 2 and result.out == ""
    assert result.err.splitlines() == [
        f"moodring: error: --resume: the run in {run_dir} has finished; pass a new --run-dir to train again"
    ]
    assert [path.name for path in run_dir.iterdir()] == ["metrics.json"]
    assert (run_dir / "metrics.json").read_text() == '{"accuracy": 0.5}'


def test_train_init_from_starts_at_the_given_weights(moodring, tmp_path: Path) -> None:
    """With a negligible learning rate the trained net keeps its starting kernels: they came from --init-from."""
    import keras
    from moodring.training.models import build_cnn, load_model

    start = build_cnn(widths=(8, 16))
    start.save(tmp_path / "start.keras")
    run_dir = tmp_path / "run"
    common = ("train", "--limit", "64", "--epochs", "1", "--widths", "8,16", "--precision", "fp32")
    result = moodring(
        *common, "--learning-rate", "1e-12", "--init-from", str(tmp_path / "start.keras"), "--run-dir", str(run_dir)
    )
    assert result.code == 0, result.err[-2000:]
    trained = load_model(run_dir / "model.keras")

    def kernels(model: keras.Model) -> list[np.ndarray]:  # layer names differ between models; order does not
        return [
            layer.kernel.numpy()
            for layer in model.layers
            if isinstance(layer, keras.layers.Conv2D | keras.layers.Dense)
        ]

    assert len(kernels(start)) == 6
    for after, before in zip(kernels(trained), kernels(start), strict=True):
        np.testing.assert_allclose(after, before, atol=1e-6)
    assert json.loads((run_dir / "config.json").read_text())["init_from"] == str(tmp_path / "start.keras")

    other = moodring(*common, "--widths", "16,16", "--init-from", str(tmp_path / "start.keras"))
    assert other.code == 2 and "architecture differs" in other.err and moodring_lines(other.err) == 1
    missing = moodring(*common, "--init-from", str(tmp_path / "nope.keras"))
    assert missing.code == 2 and "nope.keras: no such model file" in missing.err


def test_train_cli_distils_from_a_teacher(
    moodring, tmp_path: Path, trained_run: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="moodring.training.train")
    teacher = trained_run / "model.keras"
    run_dir = tmp_path / "student"
    result = moodring(*TINY_TRAIN, "--limit", "128", "--teacher", str(teacher), "--run-dir", str(run_dir))
    assert result.code == 0, result.err[-2000:]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["teacher"] == str(teacher) and config["distill_weight"] == 0.3
    assert (run_dir / "model.keras").is_file() and (run_dir / "teacher_probabilities.npz").is_file()
    assert "reading 128 faces and their mirror images once" in caplog.text

    missing = moodring(*TINY_TRAIN, "--teacher", str(tmp_path / "nope.keras"))
    assert missing.code == 2 and len(missing.err.strip().splitlines()) == 1
    assert "nope.keras" in missing.err


def test_ensemble_cli_saves_one_model_that_averages_its_members(
    moodring, tmp_path: Path, trained_run: Path, tiny: Fer2013
) -> None:
    from moodring.training.evaluate import predict_probabilities
    from moodring.training.models import load_model

    members = []
    for run in ("a/cnn", "b/cnn"):  # two run folders, as `moodring train` leaves them, with the same name
        (tmp_path / run).mkdir(parents=True)
        for name in ("model.keras", "history.csv"):
            (tmp_path / run / name).write_bytes((trained_run / name).read_bytes())
        members.append(str(tmp_path / run / "model.keras"))
    out, curves = tmp_path / "ensemble.keras", tmp_path / "curves.png"
    result = moodring("ensemble", *members, "--out", str(out), "--curves", str(curves))
    assert result.code == 0, result.err[-2000:]
    assert f"{out}: ensemble of 2 x 1 view(s)" in result.out and result.out.count("PublicTest accuracy") == 3
    assert curves.stat().st_size > 10_000
    single = predict_probabilities(load_model(trained_run / "model.keras"), tiny.val.images)
    np.testing.assert_allclose(predict_probabilities(load_model(out), tiny.val.images), single, atol=1e-5)

    bad = moodring("ensemble", members[0], "--out", str(tmp_path / "ensemble.h5"))
    assert bad.code == 2 and "--out must end in .keras" in bad.err
    no_history = moodring(
        "ensemble", str(trained_run / "model.keras"), str(out), "--out", str(out), "--curves", str(curves)
    )
    assert no_history.code == 2 and "no training history" in no_history.err
    views = moodring("ensemble", members[0], "--out", str(tmp_path / "e.keras"), "--views", "0,two")
    assert views.code == 2 and "--views" in views.err
    assert not (tmp_path / "e.keras").exists()


def test_members_cli_gives_back_each_member_of_an_ensemble(moodring, tmp_path: Path, trained_run: Path) -> None:
    from moodring.training.models import View, build_cnn, build_ensemble, load_model

    trained = load_model(trained_run / "model.keras")
    other = build_cnn(widths=(8, 8, 8), convs_per_block=1)
    ensemble = tmp_path / "ensemble.keras"
    build_ensemble([trained, other], (View(1),)).save(ensemble)
    result = moodring("members", str(ensemble), "--out-dir", str(tmp_path / "members"))
    assert result.code == 0, result.err[-2000:]
    faces = np.random.default_rng(0).random((8, 48, 48, 1), dtype=np.float32)
    for number, original in enumerate((trained, other), start=1):
        path = tmp_path / "members" / f"member-{number}.keras"
        assert f"{path}: {original.count_params():,} parameters" in result.out
        member = load_model(path)
        np.testing.assert_allclose(member.predict(faces, verbose=0), original.predict(faces, verbose=0), atol=1e-6)

    refused = moodring("members", str(trained_run / "model.keras"), "--out-dir", str(tmp_path / "none"))
    assert refused.code == 2 and "is not an ensemble" in refused.err
    assert moodring_lines(refused.err) == 1 and not (tmp_path / "none").exists()


def test_evaluate_json_is_exactly_one_object(moodring, trained_run: Path, tiny: Fer2013, tmp_path: Path) -> None:
    result = moodring(
        "evaluate", str(trained_run / "model.keras"), "--split", "PublicTest", "--json", "--out", str(tmp_path / "eval")
    )
    assert result.code == 0, result.err[-2000:]
    metrics = json.loads(result.out)
    assert set(metrics) == {"split", "n", "accuracy", "loss", "macro_f1", "per_class", "confusion"}
    assert metrics["split"] == "PublicTest" and metrics["n"] == len(tiny.val)
    assert list(metrics["per_class"]) == list(EMOTIONS)
    assert sum(map(sum, metrics["confusion"])) == len(tiny.val)
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text()) == metrics
    assert (tmp_path / "eval" / "confusion.png").is_file()
    text = moodring("evaluate", str(trained_run / "model.keras"), "--split", "PrivateTest")
    assert text.out.startswith(f"{trained_run / 'model.keras'} on PrivateTest (n={len(tiny.test)}): accuracy")
    assert len(text.out.splitlines()) == 1 + len(EMOTIONS)


def test_export_cli_writes_a_checked_litert_copy(moodring, tmp_path: Path, trained_run: Path) -> None:
    model = tmp_path / "model.keras"
    model.write_bytes((trained_run / "model.keras").read_bytes())
    result = moodring("export", str(model), "--out", str(tmp_path / "out" / "m.tflite"))
    assert result.code == 0, result.err[-2000:]
    assert f"wrote {tmp_path / 'out' / 'm.tflite'}" in result.out and "PrivateTest" in result.out
    record = json.loads((tmp_path / "out" / "m.tflite.json").read_text())
    assert record["passed"] and record["weights"] == "int8" and record["faces"] == 112
    assert record["source"] == "model.keras" and "int8 weights" in result.out
    missing = moodring("export", str(tmp_path / "nope.keras"))
    assert missing.code == 2 and moodring_lines(missing.err) == 1


def test_evaluate_keeps_tensorflow_quiet_on_stderr(tmp_path: Path, cli_env: dict[str, str], cli_home: Path) -> None:
    """TensorFlow's C++ start-up lines (I0000, E0000 ... DT_HALF ...) look like errors to a user: none unless -v.

    A float16-storage ensemble is what makes oneDNN log its DT_HALF line on CPUs without AVX-512 FP16.
    """
    from moodring.training.models import View, build_cnn, build_ensemble

    model = tmp_path / "half.keras"
    build_ensemble([build_cnn(widths=(8, 16), convs_per_block=1)], (View(1),), half_storage=True).save(model)
    result = run_cli("evaluate", str(model), "--split", "PrivateTest", "--json", env=cli_env, cwd=cli_home)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["n"] == 112
    assert result.stderr == ""
