"""Selfie -> faces -> emotions, in memory.

    recognizer = EmotionRecognizer.from_settings(settings)  # loads detector and model once
    analysis = recognizer.analyze(image_bytes)              # thread-safe; ImageError on bad input
    png = annotate(image_bytes, analysis)                   # boxes and labels, for a reply

Bytes are decoded with Pillow under explicit limits (`emotion.image`), faces are found by
MediaPipe's BlazeFace (`emotion.detect`) and classified by the trained model through the LiteRT
interpreter (`emotion.classify`), all faces of a picture in one call.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from moodring.emotion.drawing import annotate
    from moodring.emotion.image import ImageError
    from moodring.emotion.recognizer import Analysis, EmotionRecognizer, Face

MIN_PICTURE_SIDE = 20
"""Pictures narrower or lower than this are refused: too few pixels to read a face. 600 PublicTest faces
shrunk to N px and read whole score 0.36 at 16 px (always answering the most common emotion scores 0.28),
0.53 at 20 px (halfway to the 0.79 of full-size faces) and 0.63 at 24 px (emotion/README.md). Defined
here, not in `image`, so that `--help` states it without importing Pillow."""

# Imported on first use, so that `moodring --help` does not pay for NumPy, Pillow and LiteRT.
_HOMES = {
    "Analysis": "moodring.emotion.recognizer",
    "EmotionRecognizer": "moodring.emotion.recognizer",
    "Face": "moodring.emotion.recognizer",
    "ImageError": "moodring.emotion.image",
    "annotate": "moodring.emotion.drawing",
}
__all__ = ["Analysis", "EmotionRecognizer", "Face", "ImageError", "annotate"]


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'emotion' has no attribute {name!r}")
