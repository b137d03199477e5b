"""The emotion model, run by the LiteRT interpreter: all faces of an image in one call.

A `.tflite` model is used as is. A `.keras` model uses the `.tflite` that `training/export.py`
wrote beside it, when that export's sidecar names the `.keras` file's exact SHA-256; otherwise
it is converted in memory at start-up (a few seconds, and a TensorFlow import), with a warning.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import numpy as np

from emotion.litert import new_interpreter
from moodring import EMOTIONS
from moodring.errors import ModelError

log = logging.getLogger(__name__)

FACE_SIZE = 48
_converted: dict[str, bytes] = {}
"""In-memory conversions by the `.keras` file's SHA-256: a process converts each model once."""


def _model_bytes(path: Path) -> tuple[bytes, str]:
    """The LiteRT flatbuffer for `path` and a description of where it came from."""
    if not path.is_file():
        raise ModelError.not_found(path)
    if path.suffix == ".tflite":
        return path.read_bytes(), str(path)
    from training.export import sha256_of, sidecar_path

    exported = path.with_suffix(".tflite")
    sidecar = sidecar_path(exported)
    digest = sha256_of(path)
    if exported.is_file() and sidecar.is_file():
        try:
            source_sha256 = json.loads(sidecar.read_text()).get("source_sha256")
        except (OSError, ValueError, AttributeError):
            source_sha256 = None
        if source_sha256 == digest:
            return exported.read_bytes(), str(exported)
        log.warning("%s was not exported from the current %s; converting in memory", exported, path.name)
    elif digest not in _converted:
        log.warning("no LiteRT export beside %s; converting in memory (run `python -m training.export`)", path)
    if digest not in _converted:
        from training.export import litert_bytes
        from training.models import load_model

        try:
            _converted[digest] = litert_bytes(load_model(path))
        except ModelError:
            raise
        except Exception as exc:  # the converter's failures have no common base class
            message = f"cannot convert {path} to LiteRT: {type(exc).__name__}: {exc}".splitlines()[0]
            raise ModelError(message) from None
    return _converted[digest], f"{path} (converted at start-up)"


class EmotionClassifier:
    """48x48 grayscale faces -> probabilities over `moodring.EMOTIONS`. Thread-safe (one interpreter per thread)."""

    def __init__(self, model: bytes, source: str, threads: int = 1) -> None:
        self.source = source
        self.threads = threads
        self._model = model
        self._local = threading.local()
        interpreter = self._interpreter()  # a broken model fails at start-up, not on the first selfie
        shape = tuple(interpreter.get_input_details()[0]["shape_signature"][1:])
        classes = interpreter.get_output_details()[0]["shape"][-1]
        if shape != (FACE_SIZE, FACE_SIZE, 1) or classes != len(EMOTIONS):
            raise ModelError(f"{source} is not a Moodring emotion model: input {shape}, {classes} classes")

    @classmethod
    def load(cls, path: Path, threads: int = 1) -> EmotionClassifier:
        """The classifier for a `.keras` or `.tflite` model file; `ModelError` if it cannot be used."""
        model, source = _model_bytes(Path(path))
        return cls(model, source, threads)

    def _interpreter(self):
        interpreter = getattr(self._local, "interpreter", None)
        if interpreter is None:
            interpreter = self._local.interpreter = new_interpreter(self._model, self.source, self.threads)
            self._local.batch = int(interpreter.get_input_details()[0]["shape"][0])
        return interpreter

    def predict(self, faces: np.ndarray) -> np.ndarray:
        """Probabilities (N, 7) for uint8 faces (N, 48, 48), in one interpreter call."""
        interpreter = self._interpreter()
        input_index = interpreter.get_input_details()[0]["index"]
        if self._local.batch != len(faces):  # re-plan only when the number of faces changes
            interpreter.resize_tensor_input(input_index, (len(faces), FACE_SIZE, FACE_SIZE, 1))
            interpreter.allocate_tensors()
            self._local.batch = len(faces)
        interpreter.set_tensor(input_index, (faces[..., np.newaxis] / np.float32(255.0)).astype(np.float32))
        interpreter.invoke()
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"]).copy()
