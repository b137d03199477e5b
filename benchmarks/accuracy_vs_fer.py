"""Moodring vs the `fer` package on FER2013 PrivateTest: same faces, same run, accuracy and ratio.

Each 48x48 PrivateTest face goes through Moodring's public pipeline as a PNG file's bytes
(`EmotionRecognizer.analyze`; a picture this small is a face crop and is classified whole, with
the mirror-image average the pipeline uses). `fer` gets the same faces treated fairly: the whole
crop as the face rectangle and `FER(offsets=(0, 0))` (its default 10-pixel offsets would pad the
crop with grey and cost it ~15 points). Both of `fer`'s models are scored, its default quantized
TFLite one and its Keras one, and the ratio is taken against the better of the two.

Extra install (benchmark only; `fer` is not a Moodring dependency, and `--no-deps` keeps it from
pulling a second TensorFlow, PyTorch and moviepy):
    pip install --no-deps fer && pip install "setuptools<82"   # fer imports pkg_resources

Run: python benchmarks/accuracy_vs_fer.py [--limit N]
"""

from __future__ import annotations

import argparse
import io
import logging
import time
import warnings

import numpy as np
from moodring.emotion import EmotionRecognizer
from moodring.training.data import load_fer2013
from PIL import Image

from moodring import EMOTIONS
from moodring.settings import Settings


def png_bytes(face: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(face).save(out, format="PNG")
    return out.getvalue()


def moodring_predictions(settings: Settings, faces: np.ndarray) -> np.ndarray:
    recognizer = EmotionRecognizer.from_settings(settings)
    predictions = []
    for face in faces:
        analysis = recognizer.analyze(png_bytes(face))
        predictions.append(EMOTIONS.index(analysis.emotion))
    return np.array(predictions)


def fer_predictions(faces: np.ndarray, use_tflite: bool) -> np.ndarray:
    from fer.fer import FER

    detector = FER(offsets=(0, 0), use_tflite=use_tflite)
    predictions = []
    for face in faces:
        bgr = np.repeat(face[..., None], 3, axis=2)
        (result,) = detector.detect_emotions(bgr, face_rectangles=[(0, 0, 48, 48)])
        scores = result["emotions"]
        predictions.append(EMOTIONS.index(max(EMOTIONS, key=lambda name: scores[name])))
    return np.array(predictions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, help="score the first N PrivateTest faces only")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")  # Keras and TF deprecation chatter from inside fer
    logging.getLogger("fer").setLevel(logging.WARNING)

    settings = Settings.load()
    test = load_fer2013(settings.fer2013_path, cache_dir=settings.cache_dir).test
    faces, labels = test.images[: args.limit], test.labels[: args.limit]
    print(f"FER2013 PrivateTest: {len(labels)} faces; Moodring model {settings.model}\n")

    rows = {}
    for name, predict in (
        ("moodring (analyze, PNG bytes)", lambda: moodring_predictions(settings, faces)),
        ("fer, TFLite model (default)", lambda: fer_predictions(faces, use_tflite=True)),
        ("fer, Keras model", lambda: fer_predictions(faces, use_tflite=False)),
    ):
        start = time.perf_counter()
        accuracy = float((predict() == labels).mean())
        rows[name] = accuracy
        print(f"{name:<32} accuracy {accuracy:.4f}   ({time.perf_counter() - start:.1f} s)")
    ours = rows["moodring (analyze, PNG bytes)"]
    best_fer = max(value for name, value in rows.items() if name.startswith("fer"))
    print(f"\nratio moodring / best fer: {ours / best_fer:.3f}  (goal >= 1.05)")


if __name__ == "__main__":
    main()
