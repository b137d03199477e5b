"""FER2013 faces placed in photos, and read back as the selfie pipeline frames them.

A 48x48 FER2013 face is upscaled (bicubic) to 25-55 % of a picture's shorter side, rolled around its centre and
placed at a random spot of a 480-1024 px picture with a random background (colour gradients, blurred noise and
shapes, no face), saved as a JPEG of quality 70-95. `benchmarks/faces_in_photos.py` measures the pipeline on
such pictures; `pipeline_framed` gives a model the faces cut from them exactly as `EmotionRecognizer` cuts
them, so that it can learn the pipeline's framing rather than FER2013's.
"""

from __future__ import annotations

import functools
import hashlib
import io
import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import moodring.emotion
import numpy as np
from moodring.emotion import EmotionRecognizer
from moodring.training.data import Split
from PIL import Image

from moodring.files import replaced_atomically
from moodring.settings import Settings

FACE_SHARE = (0.25, 0.55)
"""A face's side as a share of the picture's shorter side: a selfie at arm's length."""
PICTURE_SIDES = (480, 1024)


@dataclass(frozen=True)
class Layout:
    """One face's picture: its size, background seed, where the face sits and how large, and the JPEG quality."""

    width: int
    height: int
    background_seed: int
    face_x: int
    face_y: int
    face_side: int
    quality: int

    @property
    def face_centre(self) -> tuple[float, float]:
        """Where the face's centre is in the picture: rolling around it leaves it in place."""
        return self.face_x + self.face_side / 2, self.face_y + self.face_side / 2


def layouts(count: int, rng: np.random.Generator) -> list[Layout]:
    """One random picture layout per face."""
    result = []
    for _ in range(count):
        width, height = (int(v) for v in rng.integers(PICTURE_SIDES[0], PICTURE_SIDES[1] + 1, size=2))
        side = int(rng.uniform(*FACE_SHARE) * min(width, height))
        face_x = int(rng.integers(0, width - side + 1))
        face_y = int(rng.integers(0, height - side + 1))
        seed = int(rng.integers(2**31))
        result.append(Layout(width, height, seed, face_x, face_y, side, int(rng.integers(70, 96))))
    return result


def background(layout: Layout) -> np.ndarray:
    """A random (height, width, 3) scene with no face: two-colour gradient, blurred noise and a few shapes."""
    rng = np.random.default_rng(layout.background_seed)
    width, height = layout.width, layout.height
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    direction = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(direction) * xs / width + np.sin(direction) * ys / height + 1) / 2
    start, end = rng.uniform(0, 255, size=(2, 3)).astype(np.float32)
    scene = start + ramp[..., None] * (end - start)
    noise = rng.normal(0, 1, size=(height // 16 + 1, width // 16 + 1, 3)).astype(np.float32)
    scene += cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC) * rng.uniform(5, 30)
    scene = np.clip(scene, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(2, 7))):
        colour = tuple(int(v) for v in rng.integers(0, 256, size=3))
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        size = int(rng.integers(20, max(21, min(width, height) // 3)))
        if rng.random() < 0.5:
            cv2.circle(scene, centre, size, colour, -1)
        else:
            cv2.rectangle(scene, centre, (centre[0] + size, centre[1] + size // 2), colour, -1)
    return scene


def picture(face: np.ndarray, layout: Layout, scene: np.ndarray, angle: float) -> np.ndarray:
    """The RGB picture: the face upscaled into the layout on `scene`, rolled by `angle` degrees around its centre."""
    big = np.zeros((layout.height, layout.width), np.uint8)
    mask = np.zeros((layout.height, layout.width), np.float32)
    x, y, side = layout.face_x, layout.face_y, layout.face_side
    big[y : y + side, x : x + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
    mask[y : y + side, x : x + side] = 1.0
    if angle:
        rotation = cv2.getRotationMatrix2D(layout.face_centre, angle, 1.0)
        big = cv2.warpAffine(big, rotation, (layout.width, layout.height), flags=cv2.INTER_LINEAR)
        mask = cv2.warpAffine(mask, rotation, (layout.width, layout.height), flags=cv2.INTER_LINEAR)
    blended = scene * (1 - mask[..., None]) + big[..., None] * mask[..., None]
    return np.clip(blended + 0.5, 0, 255).astype(np.uint8)


def jpeg(rgb: np.ndarray, quality: int) -> bytes:
    """The picture as JPEG file bytes, as a phone would send it."""
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format="JPEG", quality=quality)
    return out.getvalue()


def nearest_box(boxes: list[tuple[float, float, float, float]], layout: Layout) -> int | None:
    """The index of the box whose centre is nearest the face's, if within a third of the face's side."""
    cx, cy = layout.face_centre
    best, best_distance = None, layout.face_side / 3
    for index, (x, y, w, h) in enumerate(boxes):
        distance = float(np.hypot(x + w / 2 - cx, y + h / 2 - cy))
        if distance <= best_distance:
            best, best_distance = index, distance
    return best


MAX_ROLL = 30.0
"""The largest head tilt a training photo gets, in degrees: the tilts `benchmarks/faces_in_photos.py` measures."""
PHOTO_SEED = 2026
"""The photos' seed: they are data, the same for every run, so that one cache serves them all."""
CHUNK = 500  # faces per worker task: each chunk has its own seed, so the crops do not depend on the worker count


def pipeline_framed(
    faces: np.ndarray, recognizer: EmotionRecognizer, seed: int, max_roll: float = MAX_ROLL
) -> tuple[np.ndarray, np.ndarray]:
    """Each face put in a random photo, rolled by up to `max_roll` degrees, and cut back out by `recognizer`.

    Returns the crops the emotion model would read, (N, 48, 48) uint8, and whether the face was found; a missed
    face's crop is the face as it is.
    """
    rng = np.random.default_rng(seed)
    crops, found = faces.copy(), np.zeros(len(faces), bool)
    for index, (face, layout) in enumerate(zip(faces, layouts(len(faces), rng), strict=True)):
        angle = float(rng.uniform(-max_roll, max_roll))
        data = jpeg(picture(face, layout, background(layout), angle), layout.quality)
        working = recognizer.decode(data)
        boxes, face_crops = recognizer.face_crops(working.image)
        match = nearest_box([tuple(v * working.scale for v in box) for box in boxes], layout)
        if match is not None:
            crops[index], found[index] = face_crops[match], True
    return crops, found


def framed_by_pipeline(
    split: Split,
    cache_dir: Path | None = None,
    workers: int = 1,
    on_progress: Callable[[int], None] | None = None,
    seed: int = PHOTO_SEED,
) -> Split:
    """The faces of `split` that the selfie pipeline finds in photos of them, cut out as it cuts them, and their labels.

    A model that learnt only FER2013's crops reads the pipeline's worse (`benchmarks/faces_in_photos.py`). Learning
    these as well, for 2-4 epochs from a shipped member, did not close that gap (runs pf-1 and pf-1b,
    training/EXPERIMENTS.md, 2026-12-03): a tool for experiments, off in the shipped recipe. Making the photos
    costs about 60 ms of CPU per face, so they are made by `workers` processes, reported to `on_progress(faces
    done)`, and cached in `cache_dir`, keyed by the faces, the seed and the pipeline's code and models.
    """
    cache = _framed_cache(split, seed, cache_dir) if cache_dir else None
    if cache and cache.exists():
        with np.load(cache) as stored:
            crops, found = stored["crops"], stored["found"]
    else:
        crops, found = _frame_all(split.images, seed, workers, on_progress)
        if cache:
            cache.parent.mkdir(parents=True, exist_ok=True)
            with replaced_atomically(cache, binary=True) as handle:
                np.savez(handle, crops=crops, found=found)
    return Split(crops[found], split.labels[found])


def _frame_all(
    faces: np.ndarray, seed: int, workers: int, on_progress: Callable[[int], None] | None
) -> tuple[np.ndarray, np.ndarray]:
    starts = range(0, len(faces), CHUNK)
    chunks, seeds = [faces[start : start + CHUNK] for start in starts], [seed * 1_000_003 + start for start in starts]
    if workers > 1 and len(chunks) > 1:
        # Spawned, not forked: the caller may have TensorFlow's threads running, which a fork copies half-alive.
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            return _gathered(pool.map(_frame_chunk, chunks, seeds), faces, on_progress)
    return _gathered(map(_frame_chunk, chunks, seeds), faces, on_progress)


def _gathered(
    framed: Iterator[tuple[np.ndarray, np.ndarray]], faces: np.ndarray, on_progress: Callable[[int], None] | None
) -> tuple[np.ndarray, np.ndarray]:
    crops, found = [faces[:0]], [np.zeros(0, bool)]
    for chunk_crops, chunk_found in framed:
        crops.append(chunk_crops)
        found.append(chunk_found)
        if on_progress:
            on_progress(sum(map(len, found)))
    return np.concatenate(crops), np.concatenate(found)


@functools.cache
def _recognizer() -> EmotionRecognizer:
    """One per process (a worker's, or the caller's for a single chunk): loading the models costs ~0.3 s."""
    return EmotionRecognizer.from_settings(Settings.load())


def _frame_chunk(faces: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    return pipeline_framed(faces, _recognizer(), seed)


def _framed_cache(split: Split, seed: int, cache_dir: Path) -> Path:
    """The crops change with the faces, the seed, and the pipeline's code and detection models."""
    digest = hashlib.sha1(f"{seed}|{MAX_ROLL}|{CHUNK}".encode())
    digest.update(np.ascontiguousarray(split.images).tobytes())
    package = Path(moodring.emotion.__file__).parent
    for file in sorted([*package.glob("*.py"), *package.glob("data/*.tflite")]):
        digest.update(file.read_bytes())
    return Path(cache_dir) / f"pipeline-framed-{digest.hexdigest()[:16]}.npz"
