"""Export a trained `.keras` emotion model to LiteRT (`.tflite`) for the selfie pipeline.

`emotion` runs models with the LiteRT interpreter: no TensorFlow import at start-up, and no Keras
`predict` overhead (~100 ms a call). By default the weights of convolutions and dense layers are
stored as int8 with float32 arithmetic (dynamic-range quantization): XNNPACK then runs the shipped
six-CNN ensemble in 4.7 ms per face on one core instead of 16 ms, and PrivateTest accuracy moves
from 0.7194 to 0.7183 (2026-12-02, models/README.md). `--weights float` keeps the float weights
and an export equal to Keras.

The export is checked, not trusted: both models classify real FER2013 faces and must agree
(`CHECKS`: how far probabilities may move, how often the top emotion may change). A sidecar
`<model>.tflite.json` records the `.keras` file's SHA-256, so `emotion` uses the `.tflite`
only while it still matches its source.

Run: moodring export [MODEL.keras] [--out MODEL.tflite] [--weights int8|float]
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from moodring.emotion.classify import sha256_of, sidecar_path
from moodring.emotion.litert import new_interpreter

from moodring.errors import DataError, ModelError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportCheck:
    """What an export must keep of the Keras model's answers on the check faces."""

    max_abs_diff: float
    """Largest difference in any class probability."""
    min_agreement: float
    """Share of faces whose top emotion must stay the same (faces whose top two are a near tie excepted)."""


CHECKS = {
    # Float weights: the same arithmetic up to float rounding, so the same answer on every face that is no tie.
    "float": ExportCheck(max_abs_diff=1e-4, min_agreement=1.0),
    # int8 weights round each weight by up to half a step; on the shipped ensemble (PrivateTest, 2026-12-02)
    # probabilities moved by at most 0.019 and the top emotion changed on 0.3 % of faces.
    "int8": ExportCheck(max_abs_diff=0.05, min_agreement=0.99),
}
RANDOM_FACES = 1024
"""How many random images to check on when FER2013 is unavailable."""


def litert_bytes(model, weights: str = "int8") -> bytes:
    """Convert a loaded Keras model to a LiteRT flatbuffer, in memory (batch size free).

    Arithmetic is float32. With `weights="int8"`, convolution and dense weights are stored as int8
    (per-channel scales), which XNNPACK multiplies with dynamically quantized inputs. With "float",
    weights stay float32, or float16 where the model stores them so (`with_half_storage`).
    """
    import tensorflow as tf

    if weights not in CHECKS:
        raise ValueError(f"weights must be one of {', '.join(CHECKS)}, not {weights!r}")
    options: dict = {}
    if weights == "int8":
        options = {"optimizations": [tf.lite.Optimize.DEFAULT]}
    elif any(weight.dtype == "float16" for weight in model.weights):
        options = {"optimizations": [tf.lite.Optimize.DEFAULT], "target_spec": {"supported_types": [tf.float16]}}
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "model.tflite"
        model.export(str(target), format="litert", verbose=False, **options)
        return target.read_bytes()


def litert_predict(model_bytes: bytes, faces: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Class probabilities from the LiteRT interpreter for float faces of shape (N, 48, 48, 1)."""
    interpreter = new_interpreter(model_bytes, "the export", threads=1)
    input_index = interpreter.get_input_details()[0]["index"]
    output_index = interpreter.get_output_details()[0]["index"]
    outputs = []
    for start in range(0, len(faces), batch_size):
        batch = np.ascontiguousarray(faces[start : start + batch_size], dtype=np.float32)
        interpreter.resize_tensor_input(input_index, batch.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(input_index, batch)
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(output_index).copy())
    return np.concatenate(outputs)


def compare(keras_probs: np.ndarray, litert_probs: np.ndarray, weights: str = "int8") -> dict:
    """How far the two models' outputs are apart; `passed` is the verdict of `CHECKS[weights]`."""
    check = CHECKS[weights]
    max_diff = float(np.abs(keras_probs - litert_probs).max())
    top2 = np.sort(keras_probs, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > 2 * check.max_abs_diff
    same_top = keras_probs.argmax(axis=1) == litert_probs.argmax(axis=1)
    agreement_where_clear = float(same_top[clear].mean()) if clear.any() else 1.0
    return {
        "weights": weights,
        "faces": int(len(keras_probs)),
        "max_abs_diff": max_diff,
        "top_emotion_agreement": float(same_top.mean()),
        "passed": bool(max_diff <= check.max_abs_diff and agreement_where_clear >= check.min_agreement),
    }


def check_faces() -> tuple[np.ndarray, str]:
    """All PrivateTest faces as floats in [0, 1]: the export must answer as the reported model does.

    Random pixels stand in only if FER2013 is unavailable.
    """
    from moodring.training.data import load_fer2013

    from moodring.settings import Settings

    settings = Settings.load()
    try:
        faces = load_fer2013(settings.fer2013_path, cache_dir=settings.cache_dir).test.images
        source = f"FER2013 PrivateTest ({len(faces)} faces)"
    except DataError as exc:
        log.warning("checking the export on random pixels: %s", exc)
        faces = np.random.default_rng(0).integers(0, 256, size=(RANDOM_FACES, 48, 48), dtype=np.uint8)
        source = f"{RANDOM_FACES} random images"
    return faces[..., np.newaxis].astype(np.float32) / 255.0, source


def export(
    model_path: Path, out: Path | None = None, faces: tuple[np.ndarray, str] | None = None, weights: str = "int8"
) -> tuple[Path, dict]:
    """Write `out` (default: beside the model, `.tflite`) and its sidecar, after checking it against Keras.

    `faces` is (float faces (N, 48, 48, 1), their description) to check on; default `check_faces()`.
    `weights` is "int8" (the runtime's default: 3x faster) or "float" (equal to Keras); see `CHECKS`.
    """
    from moodring.training.models import load_model

    out = out or model_path.with_suffix(".tflite")
    model = load_model(model_path)
    flatbuffer = litert_bytes(model, weights)
    faces, source = faces or check_faces()
    report = compare(model.predict(faces, batch_size=256, verbose=0), litert_predict(flatbuffer, faces), weights)
    if not report["passed"]:
        raise ModelError(
            f"{weights} LiteRT export of {model_path} does not match Keras on {source}: max difference "
            f"{report['max_abs_diff']:.2e}, top-emotion agreement {report['top_emotion_agreement']:.4f}; "
            "nothing written"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(flatbuffer)
    record = {"source": model_path.name, "source_sha256": sha256_of(model_path), "checked_on": source, **report}
    sidecar_path(out).write_text(json.dumps(record, indent=2) + "\n")
    return out, record
