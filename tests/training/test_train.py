"""The training recipe: configuration, data pipeline, mixing, distillation, checkpoints and the run folder."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from moodring.training.data import Fer2013, Split

from moodring import EMOTIONS
from moodring.errors import ConfigError


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


def test_a_few_training_steps_lower_the_loss(fer: Fer2013) -> None:
    """On real faces: the recipe's optimiser, schedule and loss learn something within 40 steps."""
    import keras
    from moodring.training.models import build_cnn
    from moodring.training.train import TrainConfig, compile_model, make_dataset

    keras.utils.set_random_seed(0)
    config = TrainConfig(epochs=1, warmup_epochs=0, label_smoothing=0.0, cnn_widths=(16, 32))
    model = build_cnn(widths=config.cnn_widths, convs_per_block=1)
    dataset = make_dataset(Split(fer.train.images[:256], fer.train.labels[:256]), batch_size=64)
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
def test_mixing_blends_faces_and_labels_alike(kind: str, tiny: Fer2013) -> None:
    from moodring.training.train import make_dataset, mixing

    faces = Split(tiny.train.images[:64], tiny.train.labels[:64])
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


def test_a_final_run_learns_from_training_and_public_test(tiny: Fer2013) -> None:
    from moodring.training.train import TrainConfig, training_split

    assert training_split(tiny, TrainConfig()).images is tiny.train.images
    final = training_split(tiny, TrainConfig(final=True))
    assert len(final) == len(tiny.train) + len(tiny.val)
    np.testing.assert_array_equal(final.images[len(tiny.train) :], tiny.val.images)
    np.testing.assert_array_equal(final.labels[: len(tiny.train)], tiny.train.labels)
    assert len(training_split(tiny, TrainConfig(final=True, train_limit=100))) == 100
    across = training_split(tiny, TrainConfig(final=True, train_limit=len(tiny.train) + 10))
    np.testing.assert_array_equal(across.images[len(tiny.train) :], tiny.val.images[:10])


def test_a_photo_framed_run_also_learns_each_face_as_the_pipeline_cuts_it(fer: Fer2013, tmp_path: Path) -> None:
    """Real faces, since the pipeline must find them: each part framed once, cached, and labelled as its source."""
    from moodring.training.photos import PHOTO_SEED, _framed_cache, framed_by_pipeline
    from moodring.training.train import TrainConfig, training_split

    def first(split: Split, count: int) -> Split:
        return Split(split.images[:count], split.labels[:count])

    few = Fer2013(first(fer.train, 6), first(fer.val, 3), first(fer.test, 1))
    cache = tmp_path / "cache"
    faces = training_split(few, TrainConfig(final=True, photo_framed=True), cache)
    framed_train, framed_val = (framed_by_pipeline(part, cache) for part in (few.train, few.val))
    assert len(framed_train) >= 5 and len(framed_val) >= 2, "the pipeline finds nearly every FER2013 face"
    assert len(faces) == 9 + len(framed_train) + len(framed_val)
    np.testing.assert_array_equal(faces.images[9 : 9 + len(framed_train)], framed_train.images)
    assert faces.images.shape[1:] == (48, 48) and faces.images.dtype == np.uint8
    # Both parts were made once and read back after: the calls above found them in the cache.
    assert len(list(cache.iterdir())) == 2
    for part, framed in ((few.train, framed_train), (few.val, framed_val)):
        with np.load(_framed_cache(part, PHOTO_SEED, cache)) as stored:
            np.testing.assert_array_equal(framed.labels, part.labels[stored["found"]])
            np.testing.assert_array_equal(framed.images, stored["crops"][stored["found"]])
            # A missed face is kept as it is in the cache, and left out of what the run learns.
            np.testing.assert_array_equal(stored["crops"][~stored["found"]], part.images[~stored["found"]])


def test_a_run_folder_holds_everything_the_run_produced(trained_run: Path, tiny: Fer2013) -> None:
    for name in ("best.keras", "best.json", "model.keras", "history.csv", "curves.png", "confusion.png"):
        assert (trained_run / name).is_file(), name
    assert not (trained_run / "backup").exists(), "a finished run keeps no resume state"
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert metrics["split"] == "PrivateTest" and metrics["n"] == len(tiny.test)
    assert 0.0 <= metrics["flip_average_accuracy"] <= 1.0 and 0.0 <= metrics["public_test_accuracy"] <= 1.0
    assert metrics["trained_on"] == "Training" and metrics["train_seconds"] > 0
    config = json.loads((trained_run / "config.json").read_text())
    assert config["cnn_widths"] == [8, 16] and config["epochs"] == 2 and config["precision"] in {"bf16", "fp32"}
    with open(trained_run / "history.csv", newline="") as handle:
        assert [row["epoch"] for row in csv.DictReader(handle)] == ["0", "1"]


def test_train_from_python_refuses_to_resume_a_finished_run(tiny: Fer2013, tmp_path: Path) -> None:
    from moodring.training.train import TrainConfig, train

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "metrics.json").write_text('{"accuracy": 0.5}')
    with pytest.raises(ConfigError, match="has finished"):
        train(TrainConfig(epochs=1, train_limit=64), tiny, run_dir, resume=True)
    assert [path.name for path in run_dir.iterdir()] == ["metrics.json"]


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


def test_distillation_targets_blend_label_and_teacher(trained_run: Path, tiny: Fer2013) -> None:
    from moodring.training.evaluate import predict_probabilities
    from moodring.training.models import load_model
    from moodring.training.train import distillation_targets

    teacher_path = str(trained_run / "model.keras")
    faces = Split(tiny.train.images[:64], tiny.train.labels[:64])
    teacher = predict_probabilities(load_model(teacher_path), faces.images, flip_average=True)
    one_hot = np.eye(len(EMOTIONS))[faces.labels]
    np.testing.assert_allclose(distillation_targets(faces, teacher_path, 0.0), one_hot)
    np.testing.assert_allclose(distillation_targets(faces, teacher_path, 1.0), teacher, atol=1e-6)
    blended = distillation_targets(faces, teacher_path, 0.7)
    np.testing.assert_allclose(blended, 0.3 * one_hot + 0.7 * teacher, atol=1e-6)
    np.testing.assert_allclose(blended.sum(axis=1), 1.0, atol=1e-5)


def test_teacher_probabilities_are_kept_for_a_resumed_run_and_only_for_that_teacher(
    tmp_path: Path, tiny: Fer2013, trained_run: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from moodring.training.models import build_cnn
    from moodring.training.train import TEACHER_CACHE, teacher_probabilities

    caplog.set_level(logging.INFO, logger="moodring.training.train")
    faces = Split(tiny.train.images[:64], tiny.train.labels[:64])
    teacher = tmp_path / "teacher.keras"
    teacher.write_bytes((trained_run / "model.keras").read_bytes())
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
    other_faces = Split(tiny.train.images[64:128], tiny.train.labels[64:128])
    assert not np.allclose(teacher_probabilities(other_faces, str(teacher), kept), replaced)
    kept.write_bytes(b"not an npz")  # e.g. cut short by a full disk: recomputed, not an error
    np.testing.assert_allclose(teacher_probabilities(faces, str(teacher), kept), replaced, atol=1e-6)
