"""Export a trained `.keras` emotion model to LiteRT (`.tflite`) for the selfie pipeline.

`emotion` runs models with the LiteRT interpreter: ~3 ms per face on one core, where a Keras
`predict` call costs ~100 ms of overhead, and no TensorFlow import at start-up. The export is
checked, not trusted: both models classify real FER2013 faces and must agree (probabilities
within `TOLERANCE`, same top emotion wherever the top two are not a near tie). A sidecar
`<model>.tflite.json` records the `.keras` file's SHA-256, so `emotion` uses the `.tflite`
only while it still matches its source.

Run: moodring export [MODEL.keras] [--out MODEL.tflite]
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

import numpy as np
from moodring.emotion.classify import sha256_of, sidecar_path

from moodring.errors import DataError, ModelError

log = logging.getLogger(__name__)

TOLERANCE = 1e-4
"""Largest difference in any class probability between Keras and LiteRT that we accept."""
RANDOM_FACES = 1024
"""How many random images to check on when FER2013 is unavailable."""


def litert_bytes(model) -> bytes:
    """Convert a loaded Keras model to a LiteRT flatbuffer, in memory (batch size free).

    Arithmetic is float32. Weights are float32 too, unless the model stores them in float16
    (`training.models.with_half_storage`): then LiteRT stores the same float16 numbers.
    """
    import tensorflow as tf

    half = any(weight.dtype == "float16" for weight in model.weights)
    options = {"optimizations": [tf.lite.Optimize.DEFAULT], "target_spec": {"supported_types": [tf.float16]}}
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "model.tflite"
        model.export(str(target), format="litert", verbose=False, **(options if half else {}))
        return target.read_bytes()


def litert_predict(model_bytes: bytes, faces: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Class probabilities from the LiteRT interpreter for float faces of shape (N, 48, 48, 1)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model_bytes, num_threads=1)
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


def compare(keras_probs: np.ndarray, litert_probs: np.ndarray) -> dict:
    """How far the two models' outputs are apart; `equal` is the verdict the export relies on."""
    max_diff = float(np.abs(keras_probs - litert_probs).max())
    top2 = np.sort(keras_probs, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > 2 * TOLERANCE
    same_top = keras_probs.argmax(axis=1) == litert_probs.argmax(axis=1)
    return {
        "faces": int(len(keras_probs)),
        "max_abs_diff": max_diff,
        "top_emotion_agreement": float(same_top.mean()),
        "equal": bool(max_diff <= TOLERANCE and same_top[clear].all()),
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


def export(model_path: Path, out: Path | None = None, faces: tuple[np.ndarray, str] | None = None) -> tuple[Path, dict]:
    """Write `out` (default: beside the model, `.tflite`) and its sidecar, after checking equality.

    `faces` is (float faces (N, 48, 48, 1), their description) to check on; default `check_faces()`.
    """
    from moodring.training.models import load_model

    out = out or model_path.with_suffix(".tflite")
    model = load_model(model_path)
    flatbuffer = litert_bytes(model)
    faces, source = faces or check_faces()
    report = compare(model.predict(faces, batch_size=256, verbose=0), litert_predict(flatbuffer, faces))
    if not report["equal"]:
        raise ModelError(
            f"LiteRT export of {model_path} does not match Keras on {source}: max difference "
            f"{report['max_abs_diff']:.2e}, top-emotion agreement {report['top_emotion_agreement']:.4f}; "
            "nothing written"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(flatbuffer)
    record = {"source": model_path.name, "source_sha256": sha256_of(model_path), "checked_on": source, **report}
    sidecar_path(out).write_text(json.dumps(record, indent=2) + "\n")
    return out, record
