"""The emotion model, run by the LiteRT interpreter: all faces of an image in one call.

A `.tflite` model is used as is. A `.keras` model uses the `.tflite` that `moodring export` wrote
beside it, when that export's sidecar names the `.keras` file's exact SHA-256.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import numpy as np
from moodring.emotion.litert import new_interpreter

from moodring import EMOTIONS
from moodring.errors import ModelError

FACE_SIZE = 48


def sha256_of(path: Path) -> str:
    """Hex digest of a file, to tie a LiteRT export to the exact Keras model it came from."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sidecar_path(tflite_path: Path) -> Path:
    """Where an export's provenance and check results are kept: `<model>.tflite.json`."""
    return tflite_path.with_name(tflite_path.name + ".json")


def _model_bytes(path: Path) -> tuple[bytes, str]:
    """The LiteRT flatbuffer for `path` and a description of where it came from.

    The runtime reads LiteRT only, so that it never needs TensorFlow: a `.keras` model is served by the
    export beside it, and only while that export's record names the `.keras` file's exact SHA-256.
    """
    if not path.is_file():
        raise ModelError.not_found(path)
    if path.suffix != ".keras":
        return path.read_bytes(), str(path)
    exported = path.with_suffix(".tflite")
    sidecar = sidecar_path(exported)
    try:
        source_sha256 = json.loads(sidecar.read_text()).get("source_sha256") if exported.is_file() else None
    except (OSError, ValueError, AttributeError):
        source_sha256 = None
    if source_sha256 is None or source_sha256 != sha256_of(path):
        raise ModelError(
            f"{path} is a Keras model with no current LiteRT export beside it: run `moodring export {path}` "
            '(training commands come with `pip install "moodring[train]"`)'
        )
    return exported.read_bytes(), str(exported)


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
