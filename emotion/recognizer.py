"""Selfie bytes -> faces -> emotions: the one object the bot and `moodring predict` use.

Pixels are handled by Pillow and NumPy alone: the working picture is a Pillow image, faces are cut from its
gray copy (ITU-R 601 luma, as in FER2013's own conversion by OpenCV) with one bilinear affine warp each.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
from moodring.emotion.classify import FACE_SIZE, EmotionClassifier
from moodring.emotion.detect import Detection, FaceDetector
from moodring.emotion.image import WorkingImage, decode_image
from PIL import Image

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
        """Find every face in an image file's bytes and read its emotion; `ImageError` if not an image."""
        return self.analyze_picture(self.decode(image_bytes))

    def decode(self, image_bytes: bytes) -> WorkingImage:
        """The picture as `analyze` reads it (upright, at most `working_max_side` long); `ImageError` if not one.

        Decoded once, it can be analysed (`analyze_picture`) and then drawn on (`annotate`) without a second
        decode.
        """
        return decode_image(
            image_bytes,
            max_bytes=self.max_image_bytes,
            max_pixels=self.max_image_pixels,
            max_side=self.working_max_side,
        )

    def analyze_picture(self, working: WorkingImage) -> Analysis:
        """Find every face in a picture from `decode` and read its emotion; the picture is not changed."""
        boxes, crops = self.face_crops(working.image)
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

    def face_crops(self, picture: Image.Image) -> tuple[list[tuple[float, float, float, float]], list[np.ndarray]]:
        """Each face's box (x, y, w, h) in `picture`, left to right, and its 48x48 gray crop as the model reads it.

        An image no larger than `tight_crop_max_side` is taken to be a face crop already (like FER2013's 48x48
        faces) and classified whole; otherwise only detected faces are. Public so that training can learn from
        faces framed exactly as the selfie pipeline frames them.
        """
        if max(picture.width, picture.height) <= self.tight_crop_max_side:
            return [(0.0, 0.0, float(picture.width), float(picture.height))], [
                _area_resized(np.asarray(picture.convert("L")), FACE_SIZE)
            ]
        detections = sorted(self.detector.detect(picture), key=lambda d: d.x)
        return [(d.x, d.y, d.w, d.h) for d in detections], [_aligned_face(picture, d) for d in detections]

    def warm_up(self) -> None:
        """Build the calling thread's interpreters and run each model once, on blank input.

        Each thread gets its own interpreters on its first call, which costs ~120 ms of CPU (model
        parsing, XNNPACK weight packing), mostly with the GIL held: done on a worker's first selfie, it
        stalls the bot's event loop for as long. The bot calls this on every worker thread at start-up.
        """
        side = self.tight_crop_max_side + 1  # large enough to be searched for faces, not taken as a face
        self.detector.detect(Image.new("RGB", (side, side)))
        self._classify(np.zeros((1, FACE_SIZE, FACE_SIZE), np.uint8))

    def _classify(self, faces: np.ndarray) -> np.ndarray:
        if not self.flip_average:
            return self.classifier.predict(faces)
        # The model was trained with horizontal flips; averaging a face with its mirror image is
        # one batched call and removes some of the model's left/right noise.
        both = self.classifier.predict(np.concatenate([faces, faces[:, :, ::-1]]))
        return (both[: len(faces)] + both[len(faces) :]) / 2


ROLL_SHARE = 0.75
"""How much of a face's measured roll is undone. FER2013's own faces are not level (their eye lines roll with a
standard deviation of 13 degrees) and the keypoints are noisy, so a face's measured roll is partly its own tilt,
which the model learnt, and partly the picture's. The least-squares share of the measured roll that is the
picture's was 0.765 on `benchmarks/faces_in_photos.py`'s PublicTest pictures (seed 7, 900 faces rolled by 0,
+-20 and +-30 degrees; 2026-12-03) and 0.754 on another 900 (seed 11), with the first pass's keypoints; it cuts
the roll's error from 13.0 to 11.5 degrees (standard deviation). With the closer look's keypoints, which frame
faces now, it was 0.769 and 0.770 on the same pictures (the error 12.2 degrees before the share)."""


def _aligned_face(picture: Image.Image, face: Detection) -> np.ndarray:
    """The face turned upright and framed as FER2013 frames faces, as a 48x48 gray crop.

    The frame is the rotation, scale and shift that best carries the model's six keypoints from where they lie
    in FER2013's crops (`FerFraming`) onto the face's (least squares, as in ArcFace's five-point alignment):
    six points average out more keypoint noise than the eye line alone, and they turn with the head where
    the detector's axis-aligned box does not. The crop is turned by `ROLL_SHARE` of the frame's roll. One
    bilinear affine warp (rotation, scale, translation) of the face's region of `picture`, made gray first
    (only that region: cheaper than the whole picture), its edge pixels repeated where the crop leaves the
    picture; a face much larger than 48 px is warped to 2-4 times 48 px and then area-averaged, since one
    bilinear warp that far down would alias.
    """
    # Points as complex numbers: a similarity transform is then z -> a * z + t, with |a| the crop's side in
    # pixels and arg(a) its roll.
    template = np.array([complex(x, y) for x, y in face.framing.keypoints])
    found = np.array([complex(x, y) for x, y in face.keypoints])
    template_offsets, found_offsets = template - template.mean(), found - found.mean()
    a = (np.conj(template_offsets) * found_offsets).sum() / (np.abs(template_offsets) ** 2).sum()
    if abs(a) < 1e-6:  # all keypoints on one spot: frame the box, level
        centre, side, roll = np.array([face.x + face.w / 2, face.y + face.h / 2]), max(face.w, face.h), 0.0
    else:
        middle = a * (0.5 + 0.5j) + found.mean() - a * template.mean()
        centre, side, roll = np.array([middle.real, middle.imag]), abs(a), ROLL_SHARE * np.angle(a)
    along = np.array([np.cos(roll), np.sin(roll)])  # the face's "right" in the image: +x for an upright face
    across = np.array([-along[1], along[0]])  # the face's "down"

    steps = int(min(4, max(1, side // FACE_SIZE)))
    out = FACE_SIZE * steps
    # Crop pixel -> image point, both in continuous coordinates (pixel centres at +0.5), as Pillow's
    # affine transform takes it: the crop's axes are the face's right and down, `side / out` image px long.
    to_image = np.stack([along, across], axis=1) * (side / out)
    origin = centre - to_image @ (out / 2, out / 2)
    # Only the region the warp reads, gray, with its edge pixels repeated where it leaves the picture
    # (OpenCV's BORDER_REPLICATE): Pillow's transform would fill those with black.
    corners = origin[:, None] + to_image @ np.array([[0, out, 0, out], [0, 0, out, out]])
    x0, y0 = np.floor(corners.min(axis=1)).astype(int) - 2
    x1, y1 = np.ceil(corners.max(axis=1)).astype(int) + 2
    rows = np.clip(np.arange(y0, y1), 0, picture.height - 1)
    columns = np.clip(np.arange(x0, x1), 0, picture.width - 1)
    region = picture.crop((columns[0], rows[0], columns[-1] + 1, rows[-1] + 1)).convert("L")
    if region.size != (x1 - x0, y1 - y0):  # leaves the picture
        region = Image.fromarray(np.asarray(region)[(rows - rows[0])[:, None], columns - columns[0]])
    coefficients = (*to_image[0], origin[0] - x0, *to_image[1], origin[1] - y0)
    # In floats, rounded once at the end: Pillow's 8-bit bilinear truncates, which darkens a crop by half a level.
    crop = region.convert("F").transform((out, out), Image.Transform.AFFINE, coefficients, Image.Resampling.BILINEAR)
    return np.rint(np.asarray(crop if steps == 1 else crop.reduce(steps))).astype(np.uint8)


def _area_resized(gray: np.ndarray, size: int) -> np.ndarray:
    """`gray` as a `size` x `size` square, each output pixel the mean of the input area it covers.

    Exact area averaging up and down (OpenCV's INTER_AREA), which Pillow's box filter is not at
    fractional factors; two small matrix products, as the pictures taken whole are at most ~100 px.
    """
    rows, columns = (_coverage(length, size) for length in gray.shape)
    return np.rint(rows @ gray.astype(np.float32) @ columns.T).astype(np.uint8)


def _coverage(length: int, size: int) -> np.ndarray:
    """(size, length) weights: how much of each input pixel each output pixel covers, rows summing to 1."""
    edges = np.arange(size + 1) * (length / size)
    pixels = np.arange(length)
    cover = np.clip(edges[1:, None], pixels, pixels + 1) - np.clip(edges[:-1, None], pixels, pixels + 1)
    return cover / cover.sum(axis=1, keepdims=True)


def _original_box(box: tuple[float, float, float, float], scale: float, width: int, height: int):
    """A working-image box in the original image's pixels, clipped to the image."""
    x0 = min(max(0, round(box[0] * scale)), width - 1)
    y0 = min(max(0, round(box[1] * scale)), height - 1)
    x1 = min(width, max(x0 + 1, round((box[0] + box[2]) * scale)))
    y1 = min(height, max(y0 + 1, round((box[1] + box[3]) * scale)))
    return (x0, y0, x1 - x0, y1 - y0)
