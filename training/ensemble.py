"""`moodring ensemble`'s work: average trained members into one model file, scoring each on PublicTest.

The model itself is built by `training.models.build_ensemble`; this module decides what to measure around it.
PublicTest only, so that PrivateTest stays unseen until a model's final report. Every member is scored on the same
views the ensemble uses, and the ensemble's output is the mean of the members' view-averaged outputs, so scoring
each member costs no extra pass and shows what each one brings.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from moodring.training.data import FINAL_TRAINING, Fer2013
from moodring.training.evaluate import metrics_from_probabilities, plot_history, predict_probabilities
from moodring.training.models import View, build_ensemble, load_model

from moodring.errors import ConfigError

LEARNT_NOTE = " [trained on PublicTest (--final): this measures memory, not accuracy]"


def member_histories(member_paths: list[Path]) -> dict[str, Path]:
    """Each member's run history.csv by a label for the curves; ConfigError if a run folder has none."""
    labels = [path.parent.name for path in member_paths]
    if len(set(labels)) < len(labels):  # e.g. runs/a/cnn and runs/b/cnn: their curves would overwrite each other
        labels = [str(path.parent) for path in member_paths]
    histories = {label: path.parent / "history.csv" for label, path in zip(labels, member_paths, strict=True)}
    missing = [str(history) for history in histories.values() if not history.is_file()]
    if missing:
        raise ConfigError(f"--curves: no training history at {', '.join(missing)}")
    return histories


def make_ensemble(
    member_paths: list[Path],
    out: Path,
    data: Fer2013,
    views: tuple[View, ...],
    half_storage: bool = False,
    flip_average: bool = False,
    curves: Path | None = None,
) -> list[str]:
    """Save the ensemble of `member_paths` to `out` (and the members' curves); one report line per member, then one
    for the ensemble. `flip_average` scores as the selfie pipeline runs when MOODRING_FLIP_AVERAGE is on."""
    histories = member_histories(member_paths) if curves else {}
    members = [load_model(path) for path in member_paths]
    model = build_ensemble(members, views, half_storage)  # first: it refuses unusable members and views at once
    how = f" on view(s) {','.join(str(view) for view in views)}"
    how += " (face + mirror averaged)" if flip_average else ""
    how += ", float16 weights" if half_storage else ""
    lines, member_probabilities = [], []
    learnt = [learnt_public_test(path) for path in member_paths]
    for path, member, seen in zip(member_paths, members, learnt, strict=True):
        member_views = build_ensemble([member], views, half_storage)
        member_probabilities.append(predict_probabilities(member_views, data.val.images, flip_average))
        accuracy = metrics_from_probabilities(member_probabilities[-1], data.val.labels, "PublicTest")["accuracy"]
        lines.append(f"{path}: PublicTest accuracy {accuracy:.4f}{how}{LEARNT_NOTE if seen else ''}")
    probabilities = np.mean(member_probabilities, axis=0)
    accuracy = metrics_from_probabilities(probabilities, data.val.labels, "PublicTest")["accuracy"]
    how += LEARNT_NOTE if any(learnt) else ""
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    if curves:
        plot_history(histories, curves, f"ensemble members ({out.name})")
    lines.append(
        f"{out}: ensemble of {len(members)} x {len(views)} view(s), {model.count_params():,} parameters, "
        f"PublicTest accuracy {accuracy:.4f}{how}"
    )
    return lines


def learnt_public_test(model_path: Path) -> bool:
    """Whether the model's run folder says it was trained with --final, i.e. on PublicTest too."""
    metrics = model_path.parent / "metrics.json"
    try:
        return json.loads(metrics.read_text()).get("trained_on") == FINAL_TRAINING
    except (OSError, ValueError, AttributeError):
        return False
