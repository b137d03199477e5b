"""Selfie bytes -> faces -> emotions: the one object the bot and `moodring predict` use."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import cv2
import numpy as np
from moodring.emotion.classify import FACE_SIZE, EmotionClassifier
from moodring.emotion.detect import FaceDetector
from moodring.emotion.image import decode_image

from moodring import EMOTIONS
from moodring.settings import Settings


@dataclass(frozen=True)
class Face:
    """One face: its box (x, y, w, h) in the original image's upright pixels, emotion and scores."""

    box: tuple[int, int, int, int]
    emotion: str
    scores: dict[str, float] = field(repr=False)

    def to_dict(self) -> dict:
        """JSON-ready: `{"box": [x, y, w, h], "emotion": name, "scores": {name: probability}}`."""
        return {
            "box": list(self.box),
            "emotion": self.emotion,
            "scores": {name: round(score, 4) for name, score in self.scores.items()},
        }


@dataclass(frozen=True)
class Analysis:
    """Every face found, left to right, and the picture's dominant emotion (None without faces)."""

    faces: list[Face]
    emotion: str | None
    width: int
    height: int

    def to_dict(self) -> dict:
        """JSON-ready: `{"emotion": name or None, "faces": [...], "width": w, "height": h}`."""
        return {
            "emotion": self.emotion,
            "faces": [face.to_dict() for face in self.faces],
            "width": self.width,
            "height": self.height,
        }


class EmotionRecognizer:
    """Loads the face detector and the emotion model once; `analyze` is thread-safe for a worker pool."""

    def __init__(
        self,
        detector: FaceDetector,
        classifier: EmotionClassifier,
        *,
        max_image_bytes: int,
        max_image_pixels: int,
        working_max_side: int,
        tight_crop_max_side: int,
        flip_average: bool,
    ) -> None:
        self.detector = detector
        self.classifier = classifier
        self.max_image_bytes = max_image_bytes
        self.max_image_pixels = max_image_pixels
        self.working_max_side = working_max_side
        self.tight_crop_max_side = tight_crop_max_side
        self.flip_average = flip_average

    @classmethod
    def from_settings(cls, settings: Settings, concurrent_calls: int = 1) -> EmotionRecognizer:
        """The recognizer for `settings.model` and the image limits; `ModelError` if the model is unusable.

        `concurrent_calls` is how many `analyze` calls will run at once (the bot's worker threads):
        the cores are shared out between them, so one call alone uses them all and a busy pool
        does not oversubscribe them.
        """
        threads = max(1, (os.cpu_count() or 1) // max(1, concurrent_calls))
        return cls(
            FaceDetector(settings.face_min_score, threads),
            EmotionClassifier.load(settings.model, threads),
            max_image_bytes=settings.max_image_bytes,
            max_image_pixels=settings.max_image_pixels,
            working_max_side=settings.working_max_side,
            tight_crop_max_side=settings.tight_crop_max_side,
            flip_average=settings.flip_average,
        )

    def analyze(self, image_bytes: bytes) -> Analysis:
        """Find every face in an image file's bytes and read its emotion; `ImageError` if not an image.

        An image no larger than `tight_crop_max_side` is taken to be a face crop already (like
        FER2013's 48x48 faces) and classified whole; otherwise only detected faces are classified.
        """
        working = decode_image(
            image_bytes,
            max_bytes=self.max_image_bytes,
            max_pixels=self.max_image_pixels,
            max_side=self.working_max_side,
        )
        gray = cv2.cvtColor(working.rgb, cv2.COLOR_RGB2GRAY)
        if max(working.width, working.height) <= self.tight_crop_max_side:
            boxes = [(0.0, 0.0, float(gray.shape[1]), float(gray.shape[0]))]
            crops = [cv2.resize(gray, (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_AREA)]
        else:
            detections = sorted(self.detector.detect(working.rgb), key=lambda d: d.x)
            boxes = [(d.x, d.y, d.w, d.h) for d in detections]
            crops = [_crop_square(gray, d.crop) for d in detections]
        if not crops:
            return Analysis([], None, working.width, working.height)

        probabilities = self._classify(np.stack(crops))
        faces = [
            Face(
                _original_box(box, working.scale, working.width, working.height),
                EMOTIONS[int(row.argmax())],
                {name: float(p) for name, p in zip(EMOTIONS, row, strict=True)},
            )
            for box, row in zip(boxes, probabilities, strict=True)
        ]
        # The dominant emotion weighs each face by its area: the selfie-taker's face is usually the largest.
        areas = np.array([face.box[2] * face.box[3] for face in faces], dtype=np.float64)
        dominant = EMOTIONS[int((probabilities * areas[:, None]).sum(axis=0).argmax())]
        return Analysis(faces, dominant, working.width, working.height)

    def _classify(self, faces: np.ndarray) -> np.ndarray:
        if not self.flip_average:
            return self.classifier.predict(faces)
        # The model was trained with horizontal flips; averaging a face with its mirror image is
        # one batched call and removes some of the model's left/right noise.
        both = self.classifier.predict(np.concatenate([faces, faces[:, :, ::-1]]))
        return (both[: len(faces)] + both[len(faces) :]) / 2


def _crop_square(gray: np.ndarray, square: tuple[float, float, float]) -> np.ndarray:
    """The square (x, y, side) of `gray` as a 48x48 face, edges replicated where it leaves the image."""
    x, y, side = square
    side_px = max(1, round(side))
    x0, y0 = round(x), round(y)
    height, width = gray.shape
    patch = gray[max(0, y0) : min(height, y0 + side_px), max(0, x0) : min(width, x0 + side_px)]
    top, left = max(0, -y0), max(0, -x0)
    bottom, right = side_px - top - patch.shape[0], side_px - left - patch.shape[1]
    if top or left or bottom or right:
        patch = cv2.copyMakeBorder(patch, top, bottom, left, right, cv2.BORDER_REPLICATE)
    shrinking = side_px > FACE_SIZE
    return cv2.resize(patch, (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def _original_box(box: tuple[float, float, float, float], scale: float, width: int, height: int):
    """A working-image box in the original image's pixels, clipped to the image."""
    x0 = min(max(0, round(box[0] * scale)), width - 1)
    y0 = min(max(0, round(box[1] * scale)), height - 1)
    x1 = min(width, max(x0 + 1, round((box[0] + box[2]) * scale)))
    y1 = min(height, max(y0 + 1, round((box[1] + box[3]) * scale)))
    return (x0, y0, x1 - x0, y1 - y0)
