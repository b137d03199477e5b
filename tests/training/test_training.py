"""Foundation: FER2013 loading, model builders, training steps, evaluation of the shipped model."""

from __future__ import annotations

import csv
import gzip
import json
import logging
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from moodring.models import SHIPPED_KERAS as DEFAULT_MODEL
from moodring.training.data import Split, load_fer2013

from moodring import EMOTIONS
from moodring.errors import ConfigError, DataError, ModelError

# The counts the dataset's README verifies against the original fer2013.csv.
EXPECTED_COUNTS = {
    "Training": [3995, 436, 4097, 7215, 4830, 3171, 4965],
    "PublicTest": [467, 56, 496, 895, 653, 415, 607],
    "PrivateTest": [491, 55, 528, 879, 594, 416, 626],
}


@pytest.fixture(scope="session")
def fer(shared_data: Path, tmp_path_factory: pytest.TempPathFactory):
    return load_fer2013(shared_data / "fer2013" / "fer2013.csv.gz", cache_dir=tmp_path_factory.mktemp("cache"))


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "moodring.cli", *args], capture_output=True, text=True, env=env, timeout=600
    )


def moodring_lines(stderr: str) -> int:
    """Lines Moodring itself wrote; TensorFlow's C++ start-up lines come before them once it has loaded."""
    return sum(line.startswith("moodring:") for line in stderr.splitlines())


def test_loader_gives_canonical_splits_and_counts(fer) -> None:
    for name, expected in EXPECTED_COUNTS.items():
        split = fer.split(name)
        assert split.images.shape == (sum(expected), 48, 48)
        assert split.images.dtype == np.uint8
        assert list(split.class_counts().values()) == expected


def test_loader_reads_its_cache_identically(fer, shared_data: Path, tmp_path: Path) -> None:
    source = shared_data / "fer2013" / "fer2013.csv.gz"
    first = load_fer2013(source, cache_dir=tmp_path)
    assert list(tmp_path.glob("fer2013-*.npz")), "the decoded arrays should be cached"
    second = load_fer2013(source, cache_dir=tmp_path)
    np.testing.assert_array_equal(first.test.images, second.test.images)
    np.testing.assert_array_equal(first.test.labels, fer.test.labels)


def write_small_csv(path: Path, shade: int, rows_per_split: int = 1) -> None:
    row = " ".join([str(shade)] * 48 * 48)
    usages = ("Training", "PublicTest", "PrivateTest") * rows_per_split
    lines = ["emotion,pixels,Usage", *(f"{index % 7},{row},{usage}" for index, usage in enumerate(usages))]
    path.write_text("\n".join(lines) + "\n")


def test_cache_writers_running_at_once_all_succeed(tmp_path: Path) -> None:
    source = tmp_path / "fer.csv"
    write_small_csv(source, shade=7, rows_per_split=200)  # big enough for the writes to overlap
    cache_dir = tmp_path / "cache"
    with ThreadPoolExecutor(max_workers=8) as pool:
        loaded = list(pool.map(lambda _: load_fer2013(source, cache_dir=cache_dir), range(8)))
    assert all(int(data.test.images.max()) == 7 for data in loaded)
    assert [path.name.startswith("fer2013-") for path in cache_dir.iterdir()] == [True], "one cache, no temp files"


def test_a_changed_source_replaces_its_cache(tmp_path: Path) -> None:
    source = tmp_path / "fer.csv"
    cache_dir = tmp_path / "cache"
    write_small_csv(source, shade=7)
    load_fer2013(source, cache_dir=cache_dir)
    old_cache = next(cache_dir.iterdir())
    write_small_csv(source, shade=200)
    assert int(load_fer2013(source, cache_dir=cache_dir).test.images.max()) == 200
    assert not old_cache.exists() and len(list(cache_dir.iterdir())) == 1


def test_loader_reads_the_image_folder_layout(fer, tmp_path: Path) -> None:
    from PIL import Image

    picks = {"train": (fer.train, "Training"), "test": (fer.val, "PublicTest")}
    for part, (split, prefix) in picks.items():
        for label, name in enumerate(EMOTIONS):
            folder = tmp_path / part / name
            folder.mkdir(parents=True)
            index = int(np.flatnonzero(split.labels == label)[0])
            Image.fromarray(split.images[index]).save(folder / f"{prefix}_{index}.png")
    data = load_fer2013(tmp_path)
    assert len(data.train) == 7 and len(data.val) == 7 and len(data.test) == 0
    assert sorted(data.train.labels.tolist()) == list(range(7))
    np.testing.assert_array_equal(
        data.train.images[data.train.labels == 3][0], fer.train.images[fer.train.labels == 3][0]
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("emotion,pixels\n0,1 2 3\n", r"lacks column\(s\) Usage"),
        ("emotion,pixels,Usage\n0,1 2 3,Training\n", "exactly 2304 pixel values"),
        ("emotion,pixels,Usage\n9," + " ".join(["0"] * 2304) + ",Training\n", "outside 0..6"),
        ("emotion,pixels,Usage\n1," + " ".join(["0"] * 2304) + ",Holdout\n", "unknown Usage"),
    ],
)
def test_malformed_csv_is_a_one_line_data_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "fer.csv.gz"
    path.write_bytes(gzip.compress(content.encode()))
    with pytest.raises(DataError, match=message) as caught:
        load_fer2013(path)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)


def test_cli_bad_data_path_exits_2_with_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.csv.gz"
    result = run_cli("evaluate", "--data", str(missing), "--json")
    assert result.returncode == 2
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.startswith("moodring:")]
    assert lines == [
        f"moodring: error: FER2013 not found at {missing}: expected a FER2013 csv with columns "
        "emotion,pixels,Usage (48x48 grayscale), or an image folder with train/<class>/* and test/<class>/*"
    ]
    assert "Traceback" not in result.stderr


def test_builders_give_seven_way_softmax() -> None:
    from moodring.training.models import build_cnn, build_residual_cnn, build_resnet50v2

    faces = np.random.default_rng(0).random((2, 48, 48, 1), dtype=np.float32)
    cnn = build_cnn(widths=(8, 16), convs_per_block=1)
    residual = build_residual_cnn(widths=(8, 16))
    resnet, base = build_resnet50v2(input_size=32, weights=None)
    for model in (cnn, residual, resnet):
        probabilities = np.asarray(model(faces, training=False))
        assert probabilities.shape == (2, len(EMOTIONS))
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert base.name == "resnet50v2"


def test_each_model_trains_at_its_own_default_widths_and_epochs() -> None:
    import keras
    from moodring.training.train import TrainConfig, build

    assert TrainConfig().cnn_widths == (32, 64, 128, 256)  # the shipped members
    assert TrainConfig(model="rescnn").cnn_widths == (24, 48, 96, 192)  # the same cost per face
    assert TrainConfig(model="cnn", cnn_widths=(8, 16)).cnn_widths == (8, 16)
    assert TrainConfig().epochs == 60 and TrainConfig(model="resnet50v2").epochs == 12  # as the help says
    assert TrainConfig(model="rescnn", epochs=3).epochs == 3
    with pytest.raises(ConfigError, match="--epochs must be at least 1, not 0"):
        TrainConfig(epochs=0)
    for bad, message in [
        ({"batch_size": 0}, "--batch-size must be at least 1, not 0"),
        ({"train_limit": -5}, "--limit must be at least 1, not -5"),
        ({"input_size": 16}, "--input-size must be at least 32, not 16"),
        ({"distill_weight": 1.5}, "--distill-weight must be between 0 and 1, not 1.5"),
    ]:
        with pytest.raises(ConfigError, match=message):
            TrainConfig(**bad)
    model, base = build(TrainConfig(model="rescnn", cnn_widths=(8, 16)))
    assert model.name == "moodring_residual_cnn" and base is None
    assert sum(isinstance(layer, keras.layers.Add) for layer in model.layers) == 2  # one residual block per stage
    with pytest.raises(ConfigError, match="unknown model 'vgg': choose cnn, rescnn, resnet50v2"):
        build(TrainConfig(model="vgg"))


def test_resnet50v2_without_reachable_weights_fails_clearly(tmp_path: Path, monkeypatch) -> None:
    from moodring.training.models import build_resnet50v2

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # no cached download: the real fetch path runs
    with pytest.raises(ModelError, match="cannot load ResNet50V2 weights 'imagenet'.*--weights none"):
        build_resnet50v2(input_size=32, weights="imagenet")
    with pytest.raises(ModelError, match="weights file not found"):
        build_resnet50v2(input_size=32, weights=tmp_path / "missing.h5")


def test_a_few_training_steps_lower_the_loss(fer) -> None:
    import keras
    from moodring.training.models import build_cnn
    from moodring.training.train import TrainConfig, compile_model, make_dataset

    keras.utils.set_random_seed(0)
    config = TrainConfig(epochs=1, warmup_epochs=0, label_smoothing=0.0, cnn_widths=(16, 32))
    model = build_cnn(widths=config.cnn_widths, convs_per_block=1)
    batch = Split(fer.train.images[:256], fer.train.labels[:256])
    dataset = make_dataset(batch, batch_size=64)
    compile_model(model, config, steps=40, learning_rate=3e-3)
    before = model.evaluate(dataset, verbose=0)[0]
    model.fit(dataset.repeat(10), epochs=1, verbose=0, shuffle=False)
    after = model.evaluate(dataset, verbose=0)[0]
    assert after < before - 0.05


def test_auto_precision_picks_bfloat16_only_where_it_was_measured_faster() -> None:
    from moodring.training.train import resolve_precision

    amd = "vendor_id\t: AuthenticAMD\nflags\t\t: fpu avx512f avx512_bf16\n"
    intel = "vendor_id\t: GenuineIntel\nflags\t\t: fpu avx512f avx512_bf16 avx512_vnni\n"
    intel_amx = "vendor_id\t: GenuineIntel\nflags\t\t: fpu avx512f avx512_bf16 amx_bf16 amx_tile\n"
    assert resolve_precision("auto", amd) == "bf16"
    assert resolve_precision("auto", intel) == "fp32"  # 2x slower in bf16 without AMX
    assert resolve_precision("auto", intel_amx) == "bf16"
    assert resolve_precision("auto", "vendor_id\t: AuthenticAMD\nflags\t\t: fpu avx2\n") == "fp32"
    assert resolve_precision("bf16", intel) == "bf16" and resolve_precision("fp32", amd) == "fp32"
    with pytest.raises(ConfigError, match="--precision must be"):
        resolve_precision("fp8", amd)


@pytest.mark.parametrize("kind", ["mixup", "cutmix"])
def test_mixing_blends_faces_and_labels_alike(kind: str, fer) -> None:
    from moodring.training.train import make_dataset, mixing

    faces = Split(fer.train.images[:64], fer.train.labels[:64])
    (plain_x, plain_y), (mixed_x, mixed_y) = (
        next(iter(make_dataset(faces, 64, mix=mix))) for mix in (None, mixing(kind, seed=1))
    )
    mixed_x, mixed_y = mixed_x.numpy(), mixed_y.numpy()
    assert mixed_x.shape == plain_x.shape and 0.0 <= mixed_x.min() and mixed_x.max() <= 1.0
    np.testing.assert_allclose(mixed_y.sum(axis=1), 1.0, atol=1e-5)  # still a distribution over the 7 emotions
    blended = mixed_y.max(axis=1) < 0.999
    assert 0 < blended.sum() < 64  # some faces got a partner; those with the same label or a weight of ~1 did not
    changed = np.abs(mixed_x - plain_x.numpy()).reshape(64, -1).max(axis=1) > 1e-6
    assert changed[blended].all()  # a mixed label always comes with a mixed face


def test_train_cli_trains_with_cutmix(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = run_cli("train", "--limit", "64", "--epochs", "1", "--mix", "cutmix", "--run-dir", str(run_dir))
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((run_dir / "config.json").read_text())["mix"] == "cutmix"
    assert (run_dir / "model.keras").is_file()


def test_train_cli_writes_a_complete_run_folder(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = run_cli("train", "--limit", "256", "--epochs", "1", "--run-dir", str(run_dir))
    assert result.returncode == 0, result.stderr[-2000:]
    for name in ("best.keras", "model.keras", "history.csv", "curves.png", "confusion.png", "metrics.json"):
        assert (run_dir / name).is_file(), name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["split"] == "PrivateTest" and metrics["n"] == 3589
    assert 0.0 <= metrics["flip_average_accuracy"] <= 1.0 and 0.0 <= metrics["public_test_accuracy"] <= 1.0
    assert metrics["trained_on"] == "Training"
    assert "PrivateTest accuracy" in result.stdout
    for noise in ("AutoGraph could not transform", "`shuffle=True` was passed"):  # once in every run's log
        assert noise not in result.stderr


def test_a_final_run_learns_from_training_and_public_test(fer) -> None:
    from moodring.training.train import TrainConfig, training_split

    assert training_split(fer, TrainConfig()).images is fer.train.images
    final = training_split(fer, TrainConfig(final=True))
    assert len(final) == len(fer.train) + len(fer.val)
    np.testing.assert_array_equal(final.images[len(fer.train) :], fer.val.images)
    np.testing.assert_array_equal(final.labels[: len(fer.train)], fer.train.labels)
    assert len(training_split(fer, TrainConfig(final=True, train_limit=100))) == 100


def test_train_cli_final_keeps_the_last_epoch_and_reports_no_public_test(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = run_cli("train", "--final", "--limit", "64", "--epochs", "2", "--run-dir", str(run_dir))
    assert result.returncode == 0, result.stderr[-2000:]
    assert not (run_dir / "best.keras").exists()  # nothing was selected
    for name in ("model.keras", "curves.png", "confusion.png"):
        assert (run_dir / name).is_file(), name
    with open(run_dir / "history.csv", newline="") as handle:
        epochs = list(csv.DictReader(handle))
    assert len(epochs) == 2 and all(epoch.get("val_accuracy", "NA") == "NA" for epoch in epochs)  # no validation
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["trained_on"] == "Training+PublicTest" and metrics["n"] == 3589
    assert "public_test_accuracy" not in metrics  # it saw those faces: the figure would measure memory

    ensemble = run_cli("ensemble", str(run_dir / "model.keras"), "--out", str(tmp_path / "ensemble.keras"))
    assert ensemble.returncode == 0, ensemble.stderr[-2000:]
    scored = [line for line in ensemble.stdout.splitlines() if "PublicTest accuracy" in line]
    assert len(scored) == 2 and all("trained on PublicTest (--final)" in line for line in scored)


def test_resnet50v2_from_scratch_trains_in_one_phase(tmp_path: Path) -> None:
    """A random base has nothing to protect: no frozen head warm-up, straight to the full schedule."""
    run_dir = tmp_path / "run"
    result = run_cli(
        "train", "--model", "resnet50v2", "--weights", "none", "--input-size", "32",
        "--limit", "64", "--epochs", "1", "--run-dir", str(run_dir),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Epoch 1/3" not in result.stdout + result.stderr  # the three-epoch frozen phase never ran
    assert not (run_dir / "frozen.weights.h5").exists() and not (run_dir / "backup-frozen").exists()
    assert len((run_dir / "history.csv").read_text().splitlines()) == 2  # header + the one epoch
    assert json.loads((run_dir / "metrics.json").read_text())["n"] == 3589


def test_resume_continues_after_the_last_finished_epoch(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    args = [sys.executable, "-m", "moodring.cli", "train", "--limit", "128", "--epochs", "3", "--run-dir", str(run_dir)]
    interrupted = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    history = run_dir / "history.csv"
    deadline = time.monotonic() + 300
    while not (history.exists() and len(history.read_text().splitlines()) >= 2):  # epoch 1 finished
        assert interrupted.poll() is None and time.monotonic() < deadline, "training never finished epoch 1"
        time.sleep(0.2)
    interrupted.kill()
    interrupted.wait()
    assert not (run_dir / "metrics.json").exists()

    resumed = subprocess.run([*args, "--resume"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Epoch 1/3" not in resumed.stdout and "Epoch 3/3" in resumed.stdout
    assert "no saved training state" not in resumed.stderr
    epochs = [line.split(",")[0] for line in history.read_text().splitlines()[1:]]
    assert epochs[-1] == "2" and "0" in epochs


def test_resume_without_saved_state_says_it_starts_over(tmp_path: Path) -> None:
    """A cache lost with a machine must not look like a resumed run: one warning, then a whole run."""
    run_dir = tmp_path / "lost"
    result = run_cli("train", "--resume", "--limit", "64", "--epochs", "1", "--run-dir", str(run_dir))
    assert result.returncode == 0, result.stderr[-2000:]
    warnings = [line for line in result.stderr.splitlines() if "no saved training state" in line]
    assert len(warnings) == 1 and "starting at epoch 1" in warnings[0] and str(run_dir) in warnings[0]
    assert (run_dir / "metrics.json").exists()


def test_an_interrupted_best_checkpoint_save_leaves_the_previous_best_whole(tmp_path: Path) -> None:
    """A resumed run must find a loadable best.keras, whatever moment the last run was stopped at."""
    import keras
    from moodring.training.train import BestCheckpoint

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    best = tmp_path / "best.keras"
    checkpoint = BestCheckpoint(best)
    checkpoint.set_model(model)
    checkpoint.on_epoch_end(0, {"val_accuracy": 0.5})
    assert sorted(path.name for path in tmp_path.iterdir()) == ["best.json", "best.keras"]
    saved = best.read_bytes()

    model.layers[0].kernel.assign(np.ones((2, 1), dtype="float32"))
    (tmp_path / "best.partial.keras").mkdir()  # the next save fails half-way, as if the run were killed
    with pytest.raises(OSError):
        checkpoint.on_epoch_end(1, {"val_accuracy": 0.6})
    assert best.read_bytes() == saved
    assert keras.models.load_model(best).count_params() == 3

    (tmp_path / "best.partial.keras").rmdir()
    checkpoint.on_epoch_end(2, {"val_accuracy": 0.55})  # no better than the best: nothing replaced
    assert best.read_bytes() == saved
    checkpoint.on_epoch_end(3, {"val_accuracy": 0.7})
    assert best.read_bytes() != saved and not (tmp_path / "best.partial.keras").exists()
    assert json.loads((tmp_path / "best.json").read_text()) == {"epoch": 4, "val_accuracy": 0.7}


def test_a_resumed_run_keeps_the_bar_of_a_best_epoch_missing_from_the_history(tmp_path: Path) -> None:
    """A stop between the checkpoint and the history row must not let a worse epoch replace best.keras."""
    from moodring.training.train import _best_so_far

    assert _best_so_far(tmp_path) is None
    (tmp_path / "best.keras").write_bytes(b"model")
    (tmp_path / "history.csv").write_text("epoch,val_accuracy\n0,0.5\n1,0.6\n")
    assert _best_so_far(tmp_path) == 0.6
    (tmp_path / "best.json").write_text('{"epoch": 3, "val_accuracy": 0.65}')
    assert _best_so_far(tmp_path) == 0.65


def test_resume_refuses_a_finished_run_and_leaves_it_as_it_was(tmp_path: Path) -> None:
    """Keras deletes a run's backup when it finishes, so resuming it would silently train from scratch."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "metrics.json").write_text('{"accuracy": 0.5}')
    result = run_cli("train", "--resume", "--run-dir", str(run_dir))
    assert result.returncode == 2 and result.stdout == ""
    assert moodring_lines(result.stderr) == 1
    assert f"the run in {run_dir} has finished" in result.stderr
    assert [path.name for path in run_dir.iterdir()] == ["metrics.json"]
    assert (run_dir / "metrics.json").read_text() == '{"accuracy": 0.5}'


def test_train_from_python_refuses_to_resume_a_finished_run(fer, tmp_path: Path) -> None:
    from moodring.training.train import TrainConfig, train

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "metrics.json").write_text('{"accuracy": 0.5}')
    with pytest.raises(ConfigError, match="has finished"):
        train(TrainConfig(epochs=1, train_limit=64), fer, run_dir, resume=True)
    assert [path.name for path in run_dir.iterdir()] == ["metrics.json"]


@pytest.mark.skipif(not DEFAULT_MODEL.exists(), reason="the shipped model is added with the first trained run")
def test_shipped_model_is_trained(fer) -> None:
    from moodring.training.evaluate import evaluate
    from moodring.training.models import load_model

    model = load_model(DEFAULT_MODEL)
    first = Split(fer.test.images[:1000], fer.test.labels[:1000])
    metrics = evaluate(model, first, "PrivateTest")
    assert metrics["accuracy"] >= 0.60, metrics  # chance is 0.25 (always "happy"); a stub scores far below


@pytest.mark.skipif(not DEFAULT_MODEL.exists(), reason="the shipped model is added with the first trained run")
def test_evaluate_json_is_exactly_one_object() -> None:
    result = run_cli("evaluate", "--split", "PublicTest", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads(result.stdout)
    assert set(metrics) == {"split", "n", "accuracy", "loss", "macro_f1", "per_class", "confusion"}
    assert metrics["split"] == "PublicTest" and metrics["n"] == 3589
    assert list(metrics["per_class"]) == list(EMOTIONS)
    assert sum(map(sum, metrics["confusion"])) == 3589


def test_load_model_rejects_missing_and_foreign_files(tmp_path: Path) -> None:
    from moodring.training.models import load_model

    with pytest.raises(ModelError, match="model file not found"):
        load_model(tmp_path / "none.keras")
    junk = tmp_path / "junk.keras"
    junk.write_text("not a model")
    with pytest.raises(ModelError, match="cannot load model"):
        load_model(junk)


@pytest.mark.skipif(not DEFAULT_MODEL.exists(), reason="the shipped model is added with the first trained run")
def test_distillation_targets_blend_label_and_teacher(fer) -> None:
    from moodring.training.evaluate import predict_probabilities
    from moodring.training.models import load_model
    from moodring.training.train import distillation_targets

    faces = Split(fer.train.images[:64], fer.train.labels[:64])
    teacher = predict_probabilities(load_model(DEFAULT_MODEL), faces.images, flip_average=True)
    one_hot = np.eye(len(EMOTIONS))[faces.labels]
    np.testing.assert_allclose(distillation_targets(faces, str(DEFAULT_MODEL), 0.0), one_hot)
    np.testing.assert_allclose(distillation_targets(faces, str(DEFAULT_MODEL), 1.0), teacher, atol=1e-6)
    blended = distillation_targets(faces, str(DEFAULT_MODEL), 0.7)
    np.testing.assert_allclose(blended, 0.3 * one_hot + 0.7 * teacher, atol=1e-6)
    np.testing.assert_allclose(blended.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.skipif(not DEFAULT_MODEL.exists(), reason="the shipped model is added with the first trained run")
def test_teacher_probabilities_are_kept_for_a_resumed_run_and_only_for_that_teacher(
    tmp_path: Path, fer, caplog: pytest.LogCaptureFixture
) -> None:
    from moodring.training.models import build_cnn
    from moodring.training.train import TEACHER_CACHE, teacher_probabilities

    caplog.set_level(logging.INFO, logger="moodring.training.train")
    faces = Split(fer.train.images[:64], fer.train.labels[:64])
    teacher = tmp_path / "teacher.keras"
    teacher.write_bytes(DEFAULT_MODEL.read_bytes())
    kept = tmp_path / "run" / TEACHER_CACHE
    first = teacher_probabilities(faces, str(teacher), kept)
    assert "reading 64 faces" in caplog.text and "done in" in caplog.text  # a long pass says what it is doing
    written = kept.stat().st_mtime_ns
    caplog.clear()
    np.testing.assert_array_equal(teacher_probabilities(faces, str(teacher), kept), first)
    assert kept.stat().st_mtime_ns == written  # read back, not recomputed and rewritten
    assert "using its probabilities kept in" in caplog.text and "reading" not in caplog.text

    build_cnn(widths=(8, 16), convs_per_block=1).save(teacher)  # another teacher at the same path
    replaced = teacher_probabilities(faces, str(teacher), kept)
    assert not np.allclose(replaced, first)
    other_faces = Split(fer.train.images[64:128], fer.train.labels[64:128])
    assert not np.allclose(teacher_probabilities(other_faces, str(teacher), kept), replaced)
    kept.write_bytes(b"not an npz")  # e.g. cut short by a full disk: recomputed, not an error
    np.testing.assert_allclose(teacher_probabilities(faces, str(teacher), kept), replaced, atol=1e-6)


@pytest.mark.skipif(not DEFAULT_MODEL.exists(), reason="the shipped model is added with the first trained run")
def test_train_cli_distils_from_a_teacher(tmp_path: Path) -> None:
    run_dir = tmp_path / "student"
    result = run_cli(
        "train", "--limit", "128", "--epochs", "1", "--teacher", str(DEFAULT_MODEL), "--run-dir", str(run_dir)
    )
    assert result.returncode == 0, result.stderr[-2000:]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["teacher"] == str(DEFAULT_MODEL) and config["distill_weight"] == 0.3
    assert (run_dir / "model.keras").is_file() and (run_dir / "teacher_probabilities.npz").is_file()
    assert "reading 128 faces and their mirror images once" in result.stderr

    missing = run_cli("train", "--limit", "128", "--epochs", "1", "--teacher", str(tmp_path / "nope.keras"))
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    assert "nope.keras" in missing.stderr


@pytest.mark.skipif(not DEFAULT_MODEL.exists(), reason="the shipped model is added with the first trained run")
def test_ensemble_cli_saves_one_model_that_averages_its_members(tmp_path: Path, fer) -> None:
    from moodring.training.evaluate import predict_probabilities
    from moodring.training.models import load_model

    members = []
    for run in ("a/cnn", "b/cnn"):  # two run folders, as `moodring train` leaves them, with the same name
        (tmp_path / run).mkdir(parents=True)
        (tmp_path / run / "model.keras").write_bytes(DEFAULT_MODEL.read_bytes())
        (tmp_path / run / "history.csv").write_text(
            "epoch,accuracy,loss,val_accuracy,val_loss\n0,0.3,1.8,0.35,1.7\n1,0.5,1.4,0.5,1.3\n"
        )
        members.append(str(tmp_path / run / "model.keras"))
    out, curves = tmp_path / "ensemble.keras", tmp_path / "curves.png"
    result = run_cli("ensemble", *members, "--out", str(out), "--curves", str(curves))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ensemble of 2" in result.stdout and "PublicTest accuracy" in result.stdout
    assert curves.stat().st_size > 10_000
    faces = fer.val.images[:256]
    single = predict_probabilities(load_model(DEFAULT_MODEL), faces)
    np.testing.assert_allclose(predict_probabilities(load_model(out), faces), single, atol=1e-5)

    bad = run_cli("ensemble", str(DEFAULT_MODEL), "--out", str(tmp_path / "ensemble.h5"))
    assert bad.returncode == 2 and "--out must end in .keras" in bad.stderr
    no_history = run_cli("ensemble", str(DEFAULT_MODEL), "--out", str(out), "--curves", str(curves))
    assert no_history.returncode == 2 and "no training history" in no_history.stderr


def test_members_cli_gives_back_each_member_of_an_ensemble(tmp_path: Path, fer) -> None:
    from moodring.training.evaluate import predict_probabilities
    from moodring.training.models import View, build_cnn, build_ensemble, load_model

    first, second = build_cnn(widths=(8, 8, 8, 8)), build_cnn(widths=(8, 16, 16, 16))
    ensemble = tmp_path / "ensemble.keras"
    build_ensemble([first, second], (View(1),)).save(ensemble)
    result = run_cli("members", str(ensemble), "--out-dir", str(tmp_path / "members"))
    assert result.returncode == 0, result.stderr[-2000:]
    faces = fer.val.images[:64]
    for number, original in enumerate((first, second), start=1):
        member = load_model(tmp_path / "members" / f"member-{number}.keras")
        assert member.count_params() == original.count_params()
        np.testing.assert_allclose(predict_probabilities(member, faces), predict_probabilities(original, faces))

    # The shipped ensemble stores its weights in float16: its members must combine again, unchanged.
    half = tmp_path / "half.keras"
    build_ensemble([first, second], (View(1),), half_storage=True).save(half)
    assert run_cli("members", str(half), "--out-dir", str(tmp_path / "half-members")).returncode == 0
    members = [load_model(tmp_path / "half-members" / f"member-{number}.keras") for number in (1, 2)]
    rebuilt = build_ensemble(members, (View(1),), half_storage=True)
    np.testing.assert_array_equal(predict_probabilities(rebuilt, faces), predict_probabilities(load_model(half), faces))

    single = tmp_path / "single.keras"
    first.save(single)
    refused = run_cli("members", str(single), "--out-dir", str(tmp_path / "none"))
    assert refused.returncode == 2 and "is not an ensemble" in refused.stderr
    assert moodring_lines(refused.stderr) == 1 and not (tmp_path / "none").exists()


def test_train_init_from_starts_at_the_given_weights(tmp_path: Path) -> None:
    """With a negligible learning rate the trained net keeps its starting kernels: they came from --init-from."""
    import keras
    from moodring.training.models import build_cnn, load_model

    start = build_cnn(widths=(8, 8, 8, 8))
    start.save(tmp_path / "start.keras")
    run_dir = tmp_path / "run"
    common = ("train", "--limit", "64", "--epochs", "1", "--widths", "8,8,8,8", "--precision", "fp32")
    result = run_cli(
        *common, "--learning-rate", "1e-12", "--init-from", str(tmp_path / "start.keras"), "--run-dir", str(run_dir)
    )
    assert result.returncode == 0, result.stderr[-2000:]
    trained = load_model(run_dir / "model.keras")

    def kernels(model: keras.Model) -> list[np.ndarray]:  # layer names differ between processes; order does not
        return [
            layer.kernel.numpy()
            for layer in model.layers
            if isinstance(layer, keras.layers.Conv2D | keras.layers.Dense)
        ]

    assert len(kernels(start)) == 10
    for after, before in zip(kernels(trained), kernels(start), strict=True):
        np.testing.assert_allclose(after, before, atol=1e-6)
    assert json.loads((run_dir / "config.json").read_text())["init_from"] == str(tmp_path / "start.keras")

    other = run_cli(*common, "--widths", "16,16,16,16", "--init-from", str(tmp_path / "start.keras"))
    assert other.returncode == 2 and "architecture differs" in other.stderr and moodring_lines(other.stderr) == 1
    missing = run_cli(*common, "--init-from", str(tmp_path / "nope.keras"))
    assert missing.returncode == 2 and "nope.keras" in missing.stderr


def test_ensemble_refuses_a_bfloat16_checkpoint() -> None:
    import keras
    from moodring.training.models import build_cnn, build_ensemble

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        checkpoint = build_cnn(widths=(8, 8, 8, 8))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    with pytest.raises(ModelError, match="member 2 of 2 .* use a run's float32 model.keras"):
        build_ensemble([build_cnn(widths=(8, 8, 8, 8)), checkpoint])


def test_ensemble_views_average_the_member_over_zoomed_and_mirrored_faces(tmp_path: Path) -> None:
    import keras
    import tensorflow as tf
    from moodring.emotion.classify import EmotionClassifier
    from moodring.training.export import litert_bytes
    from moodring.training.models import View, build_cnn, build_ensemble, load_model

    member = build_cnn(widths=(8, 8, 8, 8))
    faces = np.random.default_rng(0).random((4, 48, 48, 1), dtype=np.float32)
    zoomed = tf.image.resize(faces[:, 2:-2, 2:-2], (48, 48)).numpy()
    mirrored_zoom = tf.image.resize(faces[:, :, ::-1][:, 1:-1, 1:-1], (48, 48)).numpy()
    expected = np.mean([member.predict(x, verbose=0) for x in (faces, zoomed, mirrored_zoom)], axis=0)
    ensemble = build_ensemble([member], views=(View(0), View(2), View(1, mirrored=True)))
    np.testing.assert_allclose(ensemble.predict(faces, verbose=0), expected, atol=1e-5)
    assert isinstance(ensemble.get_layer("zoom_2"), keras.layers.Resizing)
    # The mirror is a layer of our own: it must survive saving, loading and the LiteRT export.
    ensemble.save(tmp_path / "e.keras")
    np.testing.assert_allclose(load_model(tmp_path / "e.keras").predict(faces, verbose=0), expected, atol=1e-5)
    litert = EmotionClassifier(litert_bytes(ensemble), "test ensemble")
    uint8_faces = np.round(faces[..., 0] * 255).astype(np.uint8)
    np.testing.assert_allclose(
        litert.predict(uint8_faces), ensemble.predict(uint8_faces[..., None] / np.float32(255), verbose=0), atol=1e-5
    )
    for bad in ((), (View(0), View(0)), (View(9),), (View(-1),)):
        with pytest.raises(ModelError, match="views must be distinct"):
            build_ensemble([member], views=bad)


def test_half_storage_halves_the_files_and_keeps_the_predictions(tmp_path: Path) -> None:
    import keras
    from moodring.training.export import export, litert_bytes, litert_predict
    from moodring.training.models import (
        View,
        build_cnn,
        build_ensemble,
        build_residual_cnn,
        load_model,
        with_half_storage,
    )

    rng = np.random.default_rng(0)
    # Three members, as 1/3 is not a float16 number; one residual, whose skip connections the folding must respect.
    members = [build_cnn(widths=(16, 32, 64, 128)) for _ in range(2)] + [build_residual_cnn(widths=(8, 16, 32, 64))]
    for norm in (layer for member in members for layer in member.layers):
        if isinstance(norm, keras.layers.BatchNormalization):  # trained-looking statistics, so folding them matters
            gamma, beta, mean, variance = (w.shape for w in norm.get_weights())
            norm.set_weights(
                [
                    rng.uniform(0.5, 2, gamma),
                    rng.normal(0, 0.5, beta),
                    rng.normal(0, 1, mean),
                    rng.uniform(0.2, 3, variance),
                ]
            )
    faces = rng.random((64, 48, 48, 1), dtype=np.float32)
    full = build_ensemble(members, views=(View(1),))
    half = build_ensemble(members, views=(View(1),), half_storage=True)
    assert {weight.dtype for weight in half.weights} == {"float16"}  # every batch norm was folded away
    np.testing.assert_allclose(half.predict(faces, verbose=0), full.predict(faces, verbose=0), atol=2e-3)

    full.save(tmp_path / "full.keras")
    half.save(tmp_path / "half.keras")
    assert (tmp_path / "half.keras").stat().st_size < 0.55 * (tmp_path / "full.keras").stat().st_size
    reloaded = load_model(tmp_path / "half.keras")
    np.testing.assert_array_equal(reloaded.predict(faces, verbose=0), half.predict(faces, verbose=0))
    # LiteRT keeps the very same float16 weights, so the export passes the usual equality check.
    out, record = export(tmp_path / "half.keras", faces=(faces, "random faces"))
    assert record["equal"] and record["max_abs_diff"] < 1e-4
    np.testing.assert_allclose(litert_predict(out.read_bytes(), faces).sum(axis=1), 1.0, atol=1e-5)
    assert out.stat().st_size < 0.55 * len(litert_bytes(full))

    # A batch norm after an activation stays as it is: folding it into the convolution would be wrong.
    inputs = keras.Input((48, 48, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.BatchNormalization(moving_mean_initializer="ones")(x)
    activated = keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(keras.layers.Flatten()(x)))
    kept = with_half_storage(activated)
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in kept.layers)
    np.testing.assert_allclose(kept.predict(faces, verbose=0), activated.predict(faces, verbose=0), atol=2e-3)


def test_view_parsing() -> None:
    from moodring.training.models import View

    assert [View.parse(token) for token in ("0", "1", "2m")] == [View(0), View(1), View(2, mirrored=True)]
    assert [str(view) for view in (View(0), View(2, mirrored=True))] == ["0", "2m"]
    for bad in ("", "m", "two", "1mm"):
        with pytest.raises(ValueError):
            View.parse(bad)


def test_ensemble_cli_rejects_a_malformed_view_list(tmp_path: Path) -> None:
    result = run_cli("ensemble", str(DEFAULT_MODEL), "--out", str(tmp_path / "e.keras"), "--views", "0,two")
    assert result.returncode == 2 and "--views" in result.stderr
    assert not (tmp_path / "e.keras").exists()
