"""The training recipe of Moodring's emotion models, top to bottom, in the manner of keras.io's "Image
classification from scratch":

1. `TrainConfig`: batch 64, Adam at 1e-3, 2 warm-up epochs, label smoothing 0.1, the seed, and the model family,
   whose widths and epochs come from `moodring.training` (so the command line can list them without TensorFlow).
2. Data: `training_split` (Training, or Training + PublicTest for a final run), `augmentation` (Keras
   preprocessing layers: flip, rotation, zoom, shift, erasing), `mixing` (MixUp or CutMix, off by default),
   `make_dataset` (tf.data batches in [0, 1]).
3. Targets: one-hot labels, or `distillation_targets` that blend in a teacher's probabilities.
4. Model: `build` (the architectures are in `training.models`) and `compile_model` (Adam on a warm-up then
   cosine schedule, categorical cross-entropy with label smoothing).
5. `train`: `fit` with callbacks (the best PublicTest checkpoint, resumable backups, wall clock, history), the
   float32 `model.keras`, and `report` (PrivateTest, once).
6. The bookkeeping that lets an interrupted run go on where it stopped.

A run folder holds everything a run produces: `best.keras` (selected on PublicTest; its epoch and
score in `best.json`), `model.keras` (float32, for inference), `history.csv`, `curves.png`,
`confusion.png`, `metrics.json` (PrivateTest, reported once) and `config.json`. Interrupt it and run the same
command with `--resume` to continue from the last finished epoch.

A `final` run trains on Training + PublicTest for exactly `epochs` and keeps the last epoch: no
`best.keras`, no validation, for members whose recipe and epoch count were fixed beforehand.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import shutil
import sys
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import layers
from moodring.training import CNN_WIDTHS, DEFAULT_EPOCHS, MODELS
from moodring.training.data import FINAL_TRAINING, Fer2013, Split
from moodring.training.evaluate import (
    evaluate,
    metrics_from_probabilities,
    plot_confusion,
    plot_history,
    predict_probabilities,
)
from moodring.training.models import build_cnn, build_residual_cnn, build_resnet50v2

from moodring import EMOTIONS
from moodring.errors import ConfigError, ModelError
from moodring.files import replaced_atomically

log = logging.getLogger(__name__)

# What an interrupted run keeps in its folder, so `--resume` can go on: Keras' backups of the main phase and
# of ResNet50V2's frozen-head phase, and the head's weights once that phase has finished.
BACKUP, FROZEN_BACKUP, FROZEN_HEAD = "backup", "backup-frozen", "frozen.weights.h5"
UNFOLD_FACES = 4096  # training faces whose statistics rebuild a folded member's batch norms (--init-from)
TEACHER_CACHE = "teacher_probabilities.npz"  # the teacher's outputs, so that --resume skips them


# ## 1. Configuration: every number of the recipe, with its default


@dataclass
class TrainConfig:
    """Everything that defines a run; saved as config.json so a run can be reproduced."""

    model: str = "cnn"
    epochs: int | None = None  # None: the model's default, DEFAULT_EPOCHS
    batch_size: int = 64
    learning_rate: float = 1e-3
    warmup_epochs: int = 2
    label_smoothing: float = 0.1
    precision: str = "auto"  # bf16 where the CPU has native bfloat16 (avx512_bf16), else fp32
    seed: int = 1337
    train_limit: int | None = None  # first N training faces, for smoke tests
    cnn_widths: tuple[int, ...] | None = None  # None: the model's default, CNN_WIDTHS
    input_size: int = 224  # ResNet50V2 only; the CNN works at FER's native 48x48
    weights: str | None = "imagenet"  # ResNet50V2 only: "imagenet", None, or a file
    frozen_epochs: int = 3  # ResNet50V2 with pretrained weights only: train the head on a frozen base first
    teacher: str | None = None  # a trained .keras model (or ensemble) to distil from
    distill_weight: float = 0.3  # share of the teacher's probabilities in each target; 0.7 lost the rare classes
    mix: str = "none"  # "mixup" or "cutmix": blend pairs of training faces and their labels
    init_from: str | None = None  # a trained float32 model of the same architecture to start from (warm restart)
    final: bool = False  # train on Training + PublicTest, keep the last epoch (nothing left to select on)
    photo_framed: bool = False  # also learn each face as the selfie pipeline cuts it from a photo (training.photos)

    def __post_init__(self) -> None:
        if self.epochs is None and self.model in DEFAULT_EPOCHS:
            self.epochs = DEFAULT_EPOCHS[self.model]
        at_least = {
            "--epochs": (self.epochs, 1),
            "--batch-size": (self.batch_size, 1),
            "--warmup-epochs": (self.warmup_epochs, 0),
            "--limit": (self.train_limit, 1),
            "--input-size": (self.input_size, 32),  # the smallest ResNet50V2 accepts
        }
        for flag, (value, minimum) in at_least.items():
            if value is not None and value < minimum:
                raise ConfigError(f"{flag} must be at least {minimum}, not {value}")
        if not 0 <= self.distill_weight <= 1:
            raise ConfigError(f"--distill-weight must be between 0 and 1, not {self.distill_weight}")
        if self.cnn_widths is None and self.model in CNN_WIDTHS:  # so config.json records the widths trained
            self.cnn_widths = CNN_WIDTHS[self.model]


def resolve_precision(precision: str, cpuinfo: str | None = None) -> str:
    """'auto' picks bfloat16 only where it was measured faster than float32 (training/EXPERIMENTS.md).

    That is AMX (Intel's matrix tiles: 2.4x float32 on the 4.8 M-parameter CNN) or AMD's avx512_bf16
    (1.4x on an AMD EPYC). An Intel Xeon with avx512_bf16 but no AMX trained the same net 2x *slower* in bf16,
    so the flag alone does not decide.
    """
    if precision != "auto":
        if precision not in {"bf16", "fp32"}:
            raise ConfigError(f"--precision must be auto, bf16 or fp32, not {precision!r}")
        return precision
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return "fp32"
    flags = set(cpuinfo.split())
    amd_bf16 = "AuthenticAMD" in flags and "avx512_bf16" in flags
    return "bf16" if "amx_bf16" in flags or amd_bf16 else "fp32"


# ## 2. Data: the faces a run learns from, augmented and mixed on the graph


def training_split(data: Fer2013, config: TrainConfig, cache_dir: Path | None = None) -> Split:
    """The faces a run learns from: Training, plus PublicTest for a final run, cut to `train_limit` if set; with
    `photo_framed`, each part's faces again as the selfie pipeline cuts them from photos (cached in `cache_dir`)."""
    parts = [data.train, data.val] if config.final else [data.train]
    if config.train_limit:  # the first faces of the parts in turn
        starts = np.cumsum([0, *map(len, parts[:-1])])
        kept = [max(0, config.train_limit - start) for start in starts]
        parts = [Split(part.images[:n], part.labels[:n]) for part, n in zip(parts, kept, strict=True) if n > 0]
    if config.photo_framed:
        parts += [_framed_by_pipeline(part, cache_dir) for part in parts]
    if len(parts) == 1:
        return parts[0]
    return Split(np.concatenate([part.images for part in parts]), np.concatenate([part.labels for part in parts]))


def _framed_by_pipeline(split: Split, cache_dir: Path | None) -> Split:
    from moodring.training.photos import framed_by_pipeline

    progress = keras.utils.Progbar(len(split), unit_name="face")
    log.info("framing %d faces as the selfie pipeline does (cached in %s)", len(split), cache_dir)
    framed = framed_by_pipeline(split, cache_dir, workers=os.cpu_count() or 1, on_progress=progress.update)
    log.info("the pipeline found %d of %d faces", len(framed), len(split))
    return framed


def augmentation(seed: int) -> keras.Sequential:
    """Label-preserving changes a selfie really shows: mirror, tilt, framing, occlusion."""
    return keras.Sequential(
        [
            layers.RandomFlip("horizontal", seed=seed),
            layers.RandomRotation(0.03, fill_mode="nearest", seed=seed),  # about +-11 degrees
            layers.RandomZoom(0.1, fill_mode="nearest", seed=seed),
            layers.RandomTranslation(0.1, 0.1, fill_mode="nearest", seed=seed),
            layers.RandomErasing(factor=0.5, scale=(0.02, 0.15), value_range=(0, 1), seed=seed),
        ],
        name="augmentation",
    )


def mixing(kind: str, seed: int) -> layers.Layer | None:
    """A batch-level regulariser: blend pairs of faces and their labels (MixUp), or paste a patch of one face
    into another and label it by area (CutMix). Float32 even under bf16 training, so the labels stay exact.

    Tried because warm restarts only memorised the training faces (runs sgdr-1 to sgdr-3); on top of the
    augmentation above, CutMix made the 32-wide net underfit and score 1.2 points lower (run cnn-cutmix-m7,
    training/EXPERIMENTS.md): a tool for experiments, off in the shipped recipe.
    """
    if kind == "none":
        return None
    if kind == "mixup":
        return layers.MixUp(alpha=0.2, seed=seed, dtype="float32")
    if kind == "cutmix":
        return layers.CutMix(factor=1.0, seed=seed, dtype="float32")
    raise ConfigError(f"--mix must be none, mixup or cutmix, not {kind!r}")


def make_dataset(
    split: Split,
    batch_size: int,
    shuffle: bool = False,
    augment: keras.Sequential | None = None,
    seed: int = 0,
    targets: np.ndarray | None = None,
    mix: layers.Layer | None = None,
) -> tf.data.Dataset:
    """Faces as float32 in [0, 1] with one-hot labels (or soft `targets`); augmentation and mixing on-graph."""
    images = split.images[..., None]
    labels = keras.utils.to_categorical(split.labels, len(EMOTIONS)).astype("float32") if targets is None else targets
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    if shuffle:
        dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size).map(_to_unit_range)
    if augment is not None:
        dataset = dataset.map(_augmented(augment), num_parallel_calls=tf.data.AUTOTUNE)
    if mix is not None:
        dataset = dataset.map(_mixed(mix), num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


# The map functions below are plain calls, so AutoGraph is told to leave them alone: converting lambdas
# fails with a warning in every run's log ("could not parse the source code"), and there is no control flow.
@tf.autograph.experimental.do_not_convert
def _to_unit_range(faces, labels):
    return tf.cast(faces, tf.float32) / 255.0, labels


def _augmented(augment: keras.Sequential):
    @tf.autograph.experimental.do_not_convert
    def apply(faces, labels):
        return augment(faces, training=True), labels

    return apply


def _mixed(mix: layers.Layer):
    @tf.autograph.experimental.do_not_convert
    def apply(faces, labels):
        mixed = mix({"images": faces, "labels": labels}, training=True)
        return mixed["images"], mixed["labels"]

    return apply


# ## 3. Targets: one-hot labels, or blended with a teacher's probabilities (distillation)


def teacher_probabilities(split: Split, teacher_path: str, cache: Path | None = None) -> np.ndarray:
    """The teacher's flip-averaged probabilities on `split`, kept in `cache` for `--resume`.

    A five-member teacher takes 10-20 minutes over the training faces on two cores, and a 60-epoch student
    is often interrupted and resumed. The kept copy is used only for the same teacher file
    (path, size, modification time) and the same faces; anything else, or a damaged copy, is recomputed.
    """
    from moodring.training.models import load_model

    teacher = Path(teacher_path)
    key = None
    if cache is not None and teacher.is_file():  # a missing teacher fails in load_model, with its own message
        stat = teacher.stat()
        faces = hashlib.sha1(split.images.tobytes()).hexdigest()
        key = f"{teacher.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{faces}"
        try:
            with np.load(cache) as kept:
                if str(kept["key"]) == key:
                    log.info("teacher %s: using its probabilities kept in %s", teacher_path, cache)
                    return kept["probabilities"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            pass  # none kept yet, or damaged: compute afresh
    model = load_model(teacher_path)
    log.info("teacher %s: reading %d faces and their mirror images once (minutes on a CPU)", teacher_path, len(split))
    started = time.monotonic()
    probabilities = predict_probabilities(model, split.images, flip_average=True, progress=sys.stdout.isatty())
    log.info("teacher %s: done in %.0f s", teacher_path, time.monotonic() - started)
    if key is not None:
        with replaced_atomically(cache, binary=True) as handle:
            np.savez(handle, probabilities=probabilities, key=np.array(key))
    return probabilities


def distillation_targets(split: Split, teacher_path: str, weight: float, cache: Path | None = None) -> np.ndarray:
    """Training targets that blend the true label with a teacher's flip-averaged probabilities.

    The teacher's probabilities say which emotions a face resembles (fear looks like surprise),
    which a one-hot label cannot; a small student learns more from them. They are computed once,
    on the un-augmented faces (offline distillation), so training costs no teacher passes.
    """
    if not 0.0 <= weight <= 1.0:
        raise ConfigError(f"--distill-weight must be between 0 and 1, not {weight}")
    soft = teacher_probabilities(split, teacher_path, cache)
    hard = keras.utils.to_categorical(split.labels, len(EMOTIONS))
    return ((1.0 - weight) * hard + weight * soft).astype("float32")


# ## 4. Model and optimiser


def build(config: TrainConfig) -> tuple[keras.Model, keras.Model | None]:
    """The model for `config`, and for ResNet50V2 its base (to freeze, then fine-tune)."""
    if config.model == "cnn":
        return build_cnn(widths=tuple(config.cnn_widths)), None
    if config.model == "rescnn":
        return build_residual_cnn(widths=tuple(config.cnn_widths)), None
    if config.model == "resnet50v2":
        return build_resnet50v2(input_size=config.input_size, weights=config.weights)
    raise ConfigError(f"unknown model {config.model!r}: choose {', '.join(MODELS)}")


def compile_model(model: keras.Model, config: TrainConfig, steps: int, learning_rate: float) -> None:
    """Adam on a warm-up-then-cosine schedule; categorical cross-entropy with label smoothing."""
    warmup = min(config.warmup_epochs * steps, max(steps * config.epochs - 1, 0))
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=learning_rate * 0.1,
        decay_steps=max(steps * config.epochs - warmup, 1),
        warmup_target=learning_rate,
        warmup_steps=warmup,
        alpha=0.01,
    )
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=["accuracy"],
    )


# ## 5. Training: fit with callbacks, then the float32 export and the report


def train(
    config: TrainConfig, data: Fer2013, run_dir: Path, resume: bool = False, cache_dir: Path | None = None
) -> Path:
    """Train, select on PublicTest, export float32 `model.keras`, and report PrivateTest once.

    `cache_dir` keeps the photo-framed faces (`photo_framed`) for the next run.

    Returns the run folder. Without `resume`, an existing backup in the run folder is discarded;
    with it, a finished run (one with `metrics.json`) is a ConfigError, since Keras has deleted its backup.
    """
    if resume and (run_dir / "metrics.json").exists():  # Keras deleted its backup: resuming would start over
        raise ConfigError(f"--resume: the run in {run_dir} has finished; pass a new --run-dir to train again")
    run_dir.mkdir(parents=True, exist_ok=True)
    if not resume:  # a fresh run in a used folder must not inherit the old run's state
        shutil.rmtree(run_dir / BACKUP, ignore_errors=True)
        shutil.rmtree(run_dir / FROZEN_BACKUP, ignore_errors=True)
        (run_dir / "train_time.json").unlink(missing_ok=True)
    elif not _has_saved_state(run_dir):  # e.g. the cache was lost with a machine: say so, then start over
        log.warning("--resume: no saved training state in %s; starting at epoch 1", run_dir)
    precision = resolve_precision(config.precision)
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if precision == "bf16" else "float32")
    keras.utils.set_random_seed(config.seed)
    (run_dir / "config.json").write_text(json.dumps(asdict(config) | {"precision": precision}, indent=2))

    train_split = training_split(data, config, cache_dir)
    targets = None
    if config.teacher:
        targets = distillation_targets(train_split, config.teacher, config.distill_weight, run_dir / TEACHER_CACHE)
    train_ds = make_dataset(
        train_split,
        config.batch_size,
        shuffle=True,
        augment=augmentation(config.seed),
        seed=config.seed,
        targets=targets,
        mix=mixing(config.mix, config.seed),
    )
    val_ds = None if config.final else make_dataset(data.val, config.batch_size)
    steps = int(np.ceil(len(train_split) / config.batch_size))

    model, base = build(config)
    if config.init_from:  # on --resume, BackupAndRestore then replaces these weights with the last epoch's
        _start_from(model, config.init_from, train_split)
    verbose = 1 if sys.stdout.isatty() else 2  # a live bar in a terminal, one line per epoch in logs
    # Only a pretrained base is worth protecting: a random one is trained like the CNN, at full rate.
    fine_tunes = base is not None and config.weights is not None
    if fine_tunes and config.frozen_epochs > 0:
        _warm_up_head(model, base, config, train_ds, val_ds, steps, run_dir, resume, verbose)
    compile_model(model, config, steps, config.learning_rate * 0.1 if fine_tunes else config.learning_rate)
    # Keras runs these in order at each epoch's end. An interruption between two of them must leave a
    # consistent run: the epoch counts as done (backup) only once its checkpoint is whole on disk, and
    # its history row, written last, promises that everything of that epoch has been saved.
    callbacks: list[keras.callbacks.Callback] = [keras.callbacks.TerminateOnNaN()]
    if not config.final:
        threshold = _best_so_far(run_dir) if resume else None
        callbacks.append(BestCheckpoint(run_dir / "best.keras", initial_value_threshold=threshold))
    callbacks += [
        WallClock(run_dir / "train_time.json"),
        keras.callbacks.BackupAndRestore(str(run_dir / BACKUP)),
        keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=resume),
    ]
    # shuffle=False: the dataset shuffles itself; Keras's default would only warn that it cannot.
    model.fit(
        train_ds, validation_data=val_ds, epochs=config.epochs, verbose=verbose, callbacks=callbacks, shuffle=False
    )

    selected = model if config.final else keras.models.load_model(run_dir / "best.keras")
    keras.mixed_precision.set_global_policy("float32")
    inference = export_float32(selected, config)
    inference.save(run_dir / "model.keras")
    report(inference, data, run_dir, title=f"{config.model} ({run_dir.name})", public_test_seen=config.final)
    return run_dir


def report(model: keras.Model, data: Fer2013, run_dir: Path, title: str, public_test_seen: bool = False) -> dict:
    """PrivateTest metrics (with PublicTest and flip-averaged accuracy beside them), curves and confusion matrix.

    A model that trained on PublicTest gets no PublicTest figure: it would only measure memory.
    """
    single = predict_probabilities(model, data.test.images)
    mirrored = predict_probabilities(model, data.test.images[:, :, ::-1])
    metrics = metrics_from_probabilities(single, data.test.labels, "PrivateTest")
    metrics["trained_on"] = FINAL_TRAINING if public_test_seen else "Training"
    if not public_test_seen:
        metrics["public_test_accuracy"] = evaluate(model, data.val, "PublicTest")["accuracy"]
    # What the selfie pipeline answers with for a bare net when MOODRING_FLIP_AVERAGE is on: face and mirror averaged.
    averaged = metrics_from_probabilities((single + mirrored) / 2, data.test.labels, "PrivateTest")
    metrics["flip_average_accuracy"] = averaged["accuracy"]
    time_file = run_dir / "train_time.json"
    if time_file.exists():
        metrics["train_seconds"] = json.loads(time_file.read_text())["seconds"]
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    plot_confusion(metrics, run_dir / "confusion.png", title)
    if (run_dir / "history.csv").exists():
        plot_history(run_dir / "history.csv", run_dir / "curves.png", title)
    return metrics


# ## 6. What makes a run resumable and its export exact


def _has_saved_state(run_dir: Path) -> bool:
    """Whether an interrupted run left anything to resume from: a backup of either phase, or a finished head."""
    backups = [run_dir / BACKUP, run_dir / FROZEN_BACKUP]
    return (run_dir / FROZEN_HEAD).exists() or any(any(folder.glob("*")) for folder in backups if folder.is_dir())


def _warm_up_head(model, base, config, train_ds, val_ds, steps, run_dir, resume, verbose) -> None:
    """Train only the new head for a few epochs so fine-tuning starts from sensible gradients."""
    done_marker = run_dir / FROZEN_HEAD
    if resume and done_marker.exists():
        model.load_weights(done_marker)
        return
    base.trainable = False
    frozen = TrainConfig(**{**asdict(config), "epochs": config.frozen_epochs, "warmup_epochs": 0})
    compile_model(model, frozen, steps, config.learning_rate)
    model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=config.frozen_epochs,
        verbose=verbose,
        shuffle=False,
        callbacks=[
            WallClock(run_dir / "train_time.json"),  # before the backup, as in train(): every epoch run is counted
            keras.callbacks.BackupAndRestore(str(run_dir / FROZEN_BACKUP)),
        ],
    )
    partial = run_dir / "frozen.partial.weights.h5"  # an interrupted save must not pass for a finished phase
    model.save_weights(partial)
    os.replace(partial, done_marker)
    base.trainable = True


def _start_from(model: keras.Model, path: str, faces: Split) -> None:
    """Copy a trained model's weights into `model`, for one more cosine cycle from there (a warm restart).

    A member of a shipped ensemble (`moodring members`), whose batch norms are folded, is unfolded with statistics
    from `faces`. On FER2013's crops the snapshots came out no better than their parents and erred like them (runs
    sgdr-1 to sgdr-3, training/EXPERIMENTS.md), and with photo-framed faces added they traded whole-crop accuracy
    for photo accuracy (runs pf-1 and pf-1b): a tool for experiments.
    """
    from moodring.training.models import load_model, unfold_into

    source = load_model(path)
    shapes = [tuple(weight.shape) for weight in source.weights]
    if shapes == [tuple(weight.shape) for weight in model.weights]:
        model.set_weights(source.get_weights())
        return
    try:
        unfold_into(model, source, faces.images[:UNFOLD_FACES, ..., None].astype("float32") / 255)
    except ModelError:
        raise ConfigError(
            f"--init-from {path}: its architecture differs from --model/--widths; pass a matching model"
        ) from None


def _best_so_far(run_dir: Path) -> float | None:
    """Best PublicTest accuracy of the epochs already run, so a resumed run keeps the best checkpoint.

    best.json holds the score of the model in best.keras, even if the run stopped before that epoch's
    history row was written; history.csv covers runs started before best.json existed.
    """
    if not (run_dir / "best.keras").exists():
        return None
    scores = []
    if (run_dir / "best.json").exists():
        scores.append(float(json.loads((run_dir / "best.json").read_text())["val_accuracy"]))
    if (run_dir / "history.csv").exists():
        with open(run_dir / "history.csv", newline="") as handle:
            scores += [float(row["val_accuracy"]) for row in csv.DictReader(handle)]
    return max(scores, default=None)


class BestCheckpoint(keras.callbacks.ModelCheckpoint):
    """Keeps the model with the best PublicTest accuracy in `path`, replaced whole or not at all.

    Keras writes its checkpoint in place, so an interruption during the save would leave a broken
    `best.keras` that a resumed run can neither load nor beat. This one writes beside it and renames.
    """

    def __init__(self, path: Path, initial_value_threshold: float | None = None) -> None:
        self.path = path
        super().__init__(
            str(path.with_name(f"{path.stem}.partial.keras")),
            monitor="val_accuracy",
            mode="max",
            save_best_only=True,
            initial_value_threshold=initial_value_threshold,
        )

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        best_before = self.best
        super().on_epoch_end(epoch, logs)
        if self.best != best_before:  # this epoch improved on the best so far, and was saved
            os.replace(self.filepath, self.path)
            with replaced_atomically(self.path.with_suffix(".json")) as handle:
                json.dump({"epoch": epoch + 1, "val_accuracy": float(self.best)}, handle)


class WallClock(keras.callbacks.Callback):
    """Adds each finished epoch's wall-clock time to train_time.json, so resumed runs report their whole cost."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        total = json.loads(self.path.read_text())["seconds"] if self.path.exists() else 0.0
        with replaced_atomically(self.path) as handle:  # a run stopped mid-write must still resume
            json.dump({"seconds": round(total + time.perf_counter() - self.started, 1)}, handle)


def export_float32(model: keras.Model, config: TrainConfig) -> keras.Model:
    """Rebuild the architecture in float32 and copy the weights: inference never needs bf16."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        inference, _ = build(TrainConfig(**{**asdict(config), "weights": None}))
    finally:
        keras.mixed_precision.set_global_policy(previous)
    inference.set_weights(model.get_weights())
    return inference
