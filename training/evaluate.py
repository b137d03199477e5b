"""Evaluation: metrics as one JSON object, and the pictures people would rather look at.

Metrics are computed with NumPy from the confusion matrix, so they need nothing beyond what
training already installs and agree exactly with the picture.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from moodring.training.data import Split

from moodring import EMOTIONS

EVAL_BATCH = 256


def predict_probabilities(model, images: np.ndarray, flip_average: bool = False, progress: bool = False) -> np.ndarray:
    """Class probabilities for uint8 (N, 48, 48) faces, in batches that fit any machine.

    `flip_average` averages each face with its mirror image, as the selfie pipeline does when
    `MOODRING_FLIP_AVERAGE` is on, so `moodring evaluate` measures what the bot answers with.
    `progress` shows Keras' bar, for passes long enough to wonder about (a teacher's takes minutes).
    """
    x = images[..., None].astype("float32") / 255.0
    verbose = 1 if progress else 0
    probabilities = np.asarray(model.predict(x, batch_size=EVAL_BATCH, verbose=verbose), dtype=np.float64)
    if flip_average:
        mirrored = predict_probabilities(model, images[:, :, ::-1], progress=progress)
        probabilities = (probabilities + mirrored) / 2
    return probabilities


def metrics_from_probabilities(probabilities: np.ndarray, labels: np.ndarray, split: str) -> dict:
    """The `moodring evaluate --json` object: accuracy, loss, macro-F1, per class, confusion."""
    n_classes = len(EMOTIONS)
    predicted = probabilities.argmax(axis=1)
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    true_positive = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1)
    predicted_count = confusion.sum(axis=0)
    precision = np.divide(true_positive, predicted_count, out=np.zeros(n_classes), where=predicted_count > 0)
    recall = np.divide(true_positive, support, out=np.zeros(n_classes), where=support > 0)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros(n_classes), where=denominator > 0)
    picked = probabilities[np.arange(len(labels)), labels]
    loss = float(-np.mean(np.log(np.clip(picked, 1e-7, 1.0))))
    return {
        "split": split,
        "n": int(len(labels)),
        "accuracy": round(float(true_positive.sum() / max(len(labels), 1)), 4),
        "loss": round(loss, 4),
        "macro_f1": round(float(f1.mean()), 4),
        "per_class": {
            name: {
                "precision": round(float(precision[i]), 4),
                "recall": round(float(recall[i]), 4),
                "f1": round(float(f1[i]), 4),
                "support": int(support[i]),
            }
            for i, name in enumerate(EMOTIONS)
        },
        "confusion": confusion.tolist(),
    }


def evaluate(model, split: Split, split_name: str, flip_average: bool = False) -> dict:
    """Metrics of `model` on one FER2013 split."""
    probabilities = predict_probabilities(model, split.images, flip_average)
    return metrics_from_probabilities(probabilities, split.labels, split_name)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display on servers; set before pyplot is imported
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(metrics: dict, path: Path, title: str) -> Path:
    """Counts and row-normalised recall side by side, with class names on both axes."""
    plt = _pyplot()
    confusion = np.array(metrics["confusion"])
    normalised = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    figure, axes = plt.subplots(1, 2, figsize=(14, 6))
    for axis, matrix, kind in ((axes[0], confusion, "counts"), (axes[1], normalised, "normalised by true class")):
        image = axis.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
        for (row, col), value in np.ndenumerate(matrix):
            text = f"{value:d}" if matrix.dtype.kind == "i" else f"{value:.2f}"
            axis.text(
                col,
                row,
                text,
                ha="center",
                va="center",
                fontsize=8,
                color="white" if normalised[row, col] > 0.5 else "black",
            )
        axis.set_xticks(range(len(EMOTIONS)), EMOTIONS, rotation=45, ha="right")
        axis.set_yticks(range(len(EMOTIONS)), EMOTIONS)
        axis.set_xlabel("predicted")
        axis.set_ylabel("true")
        axis.set_title(kind)
    figure.colorbar(image, ax=axes, fraction=0.025)
    figure.suptitle(
        f"{title} — {metrics['split']}: accuracy {metrics['accuracy']:.3f}, macro-F1 {metrics['macro_f1']:.3f}"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return path


def plot_history(histories: Path | dict[str, Path], path: Path, title: str) -> Path:
    """Loss and accuracy, train against validation, from Keras's CSVLogger files.

    `histories` is one run's history.csv, or {label: history.csv} to draw several runs (an
    ensemble's members) on the same axes, one colour per run.
    """
    plt = _pyplot()
    runs = {"": histories} if isinstance(histories, Path) else histories
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for index, (label, history_csv) in enumerate(runs.items()):
        with open(history_csv, newline="") as handle:
            rows = list(csv.DictReader(handle))
        epochs = [int(row["epoch"]) + 1 for row in rows]
        # A final run trains on PublicTest and has no validation: Keras's CSVLogger writes "NA" there.
        validated = bool(rows) and rows[0].get("val_loss", "NA") != "NA"
        prefix = f"{label}: " if label else ""
        # One run: train and validation in two colours; several: one colour per run, train dashed.
        train_colour, val_colour = (f"C{index}", f"C{index}") if label else ("C0", "C1")
        for axis, metric in ((axes[0], "loss"), (axes[1], "accuracy")):
            axis.plot(
                epochs,
                [float(row[metric]) for row in rows],
                "--",
                color=train_colour,
                label=f"{prefix}train (augmented)",
            )
            if validated:
                axis.plot(
                    epochs,
                    [float(row[f"val_{metric}"]) for row in rows],
                    color=val_colour,
                    label=f"{prefix}validation (PublicTest)",
                )
    for axis, metric in ((axes[0], "loss"), (axes[1], "accuracy")):
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
        axis.grid(alpha=0.3)
        axis.legend(fontsize="small")
    figure.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return path
