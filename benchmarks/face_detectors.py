"""Which face detector should the selfie pipeline use? Recall, false alarms and speed, side by side.

Positives are real faces: FER2013 PrivateTest photos, upscaled to 120-300 px and pasted at random
places on 640x480 crops of scikit-image's non-face photos (grass, brick, a cat, a rocket...),
one face per canvas. A face counts as found when a detection's centre lies inside the pasted
photo and its area is 15-150% of it. False alarms are every other detection, on those canvases
and on the non-face photos themselves. Latency is `detect()` on the 640x480 canvases.

Extra install (benchmark only, not project dependencies):
    pip install scikit-image             # the background photos and the astronaut
    pip install --no-deps mtcnn && pip install lz4 joblib

Run: python benchmarks/face_detectors.py [--faces 400]
"""

from __future__ import annotations

import argparse
import statistics
import time

import cv2
import numpy as np
from moodring.emotion.detect import BlazeFaceDetector, FaceDetector
from moodring.training.data import load_fer2013

from moodring.settings import Settings

BACKGROUNDS = ("grass", "gravel", "brick", "chelsea", "coffee", "rocket", "hubble_deep_field", "coins", "page")


def haar(scale_to: int | None):
    """OpenCV's bundled frontal-face cascade with the usual parameters, optionally on a smaller copy."""
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")

    def detect(rgb: np.ndarray) -> list[tuple[float, float, float, float]]:
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        factor = 1.0
        if scale_to and max(gray.shape) > scale_to:
            factor = scale_to / max(gray.shape)
            gray = cv2.resize(gray, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        found = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(24, 24))
        return [tuple(v / factor for v in box) for box in found]

    return detect


def blazeface(variant: str | None):
    detector = FaceDetector() if variant is None else BlazeFaceDetector(variant)
    return lambda rgb: [(d.x, d.y, d.w, d.h) for d in detector.detect(rgb)]


def mtcnn():
    from mtcnn import MTCNN

    detector = MTCNN(stages="face_detection_only")
    return lambda rgb: [tuple(face["box"]) for face in detector.detect_faces(rgb) if face.get("confidence", 1.0) >= 0.9]


def background_photos() -> list[np.ndarray]:
    from skimage import data, img_as_ubyte

    photos = []
    for name in BACKGROUNDS:
        image = img_as_ubyte(getattr(data, name)())
        if image.ndim == 2:
            image = np.stack([image] * 3, axis=-1)
        photos.append(np.ascontiguousarray(image[..., :3]))
    return photos


def canvases(faces: np.ndarray, photos: list[np.ndarray], rng: np.random.Generator, per_canvas: int, sizes):
    """640x480 RGB canvases with `per_canvas` faces each (one per column), and their squares (x, y, side)."""
    column = 640 // per_canvas
    for start in range(0, len(faces) - per_canvas + 1, per_canvas):
        photo = photos[rng.integers(len(photos))]
        canvas = cv2.resize(photo, (640, 480), interpolation=cv2.INTER_AREA)
        squares = []
        for index, face in enumerate(faces[start : start + per_canvas]):
            side = int(rng.integers(sizes[0], min(sizes[1], column) + 1))
            x = index * column + int(rng.integers(0, column - side + 1))
            y = int(rng.integers(0, 480 - side + 1))
            big = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
            canvas[y : y + side, x : x + side] = big[..., None]
            squares.append((x, y, side))
        yield canvas, squares


def matches(box, square) -> bool:
    x, y, side = square
    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    area_ratio = box[2] * box[3] / side**2
    return x <= cx <= x + side and y <= cy <= y + side and 0.15 <= area_ratio <= 1.5


def score(detect, samples) -> tuple[float, int, float, list[float]]:
    """Recall, false alarms, median ms per canvas, and box side / photo side of each found face."""
    detect(samples[0][0])  # warm-up
    found = faces = false_alarms = 0
    times, sizes = [], []
    for canvas, squares in samples:
        start = time.perf_counter()
        boxes = detect(canvas)
        times.append(time.perf_counter() - start)
        matched = set()
        for square in squares:
            hits = [i for i, box in enumerate(boxes) if matches(box, square)]
            faces += 1
            found += bool(hits)
            if hits:
                matched.add(hits[0])
                sizes.append(boxes[hits[0]][2] / square[2])
        false_alarms += len(boxes) - len(matched)
    return found / faces, false_alarms, statistics.median(times) * 1000, sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=400, help="PrivateTest faces to paste per scenario (default 400)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip", nargs="*", default=[], help="detectors to leave out, e.g. mtcnn")
    args = parser.parse_args()

    settings = Settings.load()
    test = load_fer2013(settings.fer2013_path, cache_dir=settings.cache_dir).test
    rng = np.random.default_rng(args.seed)
    faces = test.images[rng.choice(len(test), size=min(args.faces, len(test)), replace=False)]
    photos = background_photos()
    selfies = list(canvases(faces, photos, rng, 1, (120, 300)))
    groups = list(canvases(faces, photos, rng, 4, (60, 140)))
    from skimage import data

    astronaut = np.ascontiguousarray(data.astronaut())
    candidates = {
        "haar": lambda: haar(None),
        "haar-320": lambda: haar(320),
        "blazeface-short": lambda: blazeface("short"),
        "blazeface-full": lambda: blazeface("full"),
        "blazeface-both": lambda: blazeface(None),
        "mtcnn": mtcnn,
    }
    print(
        f"selfie: {len(selfies)} canvases, one FER2013 PrivateTest face of 120-300 px each; group: {len(groups)} "
        f"canvases, four faces of 60-140 px each; {len(photos)} non-face photos. haar-320 runs on a copy\n"
        "downscaled to 320 px; blazeface-both is what emotion uses; false alarms count every unmatched box.\n"
    )
    header = f"{'detector':<17}{'selfie recall':>14}{'group recall':>13}{'false alarms':>13}{'non-face':>9}"
    print(header + f"{'astronaut':>10}{'p50 ms':>8}  box/photo side")
    for name, factory in candidates.items():
        if name in args.skip:
            continue
        detect = factory()
        selfie_recall, selfie_alarms, p50, sizes = score(detect, selfies)
        group_recall, group_alarms, _, _ = score(detect, groups)
        on_photos = sum(len(detect(photo)) for photo in photos)
        print(
            f"{name:<17}{selfie_recall:>14.3f}{group_recall:>13.3f}{selfie_alarms + group_alarms:>13}{on_photos:>9}"
            f"{len(detect(astronaut)):>10}{p50:>8.2f}  {statistics.median(sizes):.2f}"
        )


if __name__ == "__main__":
    main()
