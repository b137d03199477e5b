"""The shipped emotion model: a six-CNN ensemble trained on FER2013 (model card: `models/README.md`).

The folder installs as the package `moodring.models`. The wheel carries only what the runtime reads, the LiteRT
flatbuffer and its export record; the Keras original, which training and evaluation load, exists in a checkout.
"""

from importlib import resources
from pathlib import Path

SHIPPED_NAME = "six-cnn-ensemble"
"""File stem of the shipped model: `.tflite` for the runtime, `.keras` for training and evaluation."""

_FOLDER = Path(str(resources.files(__name__)))
SHIPPED_TFLITE = _FOLDER / f"{SHIPPED_NAME}.tflite"
SHIPPED_KERAS = _FOLDER / f"{SHIPPED_NAME}.keras"
