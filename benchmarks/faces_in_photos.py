"""FER2013 in photos: labelled faces through the whole selfie pipeline, upright and with tilted heads.

Each FER2013 face is put in a photo as `moodring.training.photos` makes them (upscaled to 25-55 % of a
480-1024 px picture's shorter side, on a random background with no face, JPEG quality 70-95), rolled by 0,
+-10, +-20 or +-30 degrees around its centre. Every angle uses the same faces and layouts. Each
picture's bytes go through `EmotionRecognizer.analyze()`; a face counts as found when a reported box's
centre lies within a third of the face's side from the face's centre, and as correct when that box's
emotion is the label (a missed face is wrong; "acc of found" leaves missed faces out, to tell framing from detection).
Each background alone, with no face, goes through the same readers: every face reported on one is a
false alarm, so that a recall gain is not bought with faces on walls and memes.
The same faces as 48x48 PNGs give the whole-crop accuracy (the pipeline's path for face crops), the
ceiling for the pictures. `fer` (Haar cascade and its default TFLite model) runs on the same JPEG
bytes in the same run, scored the same way.

Parameters are chosen on PublicTest pictures (`--split PublicTest`); PrivateTest is the report.
Goals: upright within 1 point of whole-crop; +-20 degrees within 2 points of upright; +-30 within 4;
ahead of `fer` at every angle.

Extra install (benchmark only; `fer` is not a Moodring dependency; without it that column is skipped):
    pip install --no-deps fer && pip install "setuptools<82"   # fer imports pkg_resources

Run: python benchmarks/faces_in_photos.py [--split PrivateTest] [--limit 600] [--seed 36] [--no-fer]
     python benchmarks/faces_in_photos.py --measure-framing   # where BlazeFace's box and keypoints land in FER crops
"""

from __future__ import annotations

import argparse
import io
import logging
import time
import warnings

import cv2
import numpy as np
from moodring.emotion import EmotionRecognizer
from moodring.emotion.detect import KEYPOINT_NAMES, VARIANTS, BlazeFaceDetector, FaceDetector
from moodring.training.data import load_fer2013
from moodring.training.photos import FACE_SHARE, PICTURE_SIDES, background, jpeg, layouts, nearest_box, picture
from PIL import Image

from moodring import EMOTIONS
from moodring.settings import Settings

ANGLES = (0, -10, 10, -20, 20, -30, 30)


def png(face: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(face).save(out, format="PNG")
    return out.getvalue()


def moodring_reader(recognizer: EmotionRecognizer):
    def read(data: bytes) -> list:
        return [(face.box, face.emotion) for face in recognizer.analyze(data).faces]

    return read


def fer_reader():
    """`fer` as its users run it (defaults: Haar cascade, quantized TFLite model), or None if not installed."""
    try:
        from fer.fer import FER
    except ImportError:
        return None
    detector = FER()

    def read(data: bytes) -> list:
        found = detector.detect_emotions(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR))
        return [(tuple(face["box"]), max(face["emotions"], key=face["emotions"].get)) for face in found]

    return read


def run(args: argparse.Namespace, settings: Settings) -> None:
    split = load_fer2013(settings.fer2013_path, cache_dir=settings.cache_dir).split(args.split)
    rng = np.random.default_rng(args.seed)
    chosen = np.sort(rng.choice(len(split), size=min(args.limit, len(split)), replace=False))
    faces, labels = split.images[chosen], split.labels[chosen]
    pictures = layouts(len(faces), rng)
    recognizer = EmotionRecognizer.from_settings(settings)
    readers = {"moodring": moodring_reader(recognizer)}
    theirs = None if args.no_fer else fer_reader()
    if theirs is not None:
        readers["fer"] = theirs
    print(
        f"FER2013 {args.split}: {len(faces)} faces (seed {args.seed}), {PICTURE_SIDES[0]}-{PICTURE_SIDES[1]} px "
        f"pictures, faces {FACE_SHARE[0]:.0%}-{FACE_SHARE[1]:.0%} of the shorter side, JPEG 70-95; "
        f"model {settings.model}"
    )
    if theirs is None:
        print("fer column skipped (not installed, or --no-fer)")

    crops = zip(faces, labels, strict=True)
    whole = np.mean([recognizer.analyze(png(face)).emotion == EMOTIONS[label] for face, label in crops])
    found = {name: np.zeros(len(ANGLES)) for name in readers}
    correct = {name: np.zeros(len(ANGLES)) for name in readers}
    alarms = {name: 0 for name in readers}
    start = time.perf_counter()
    for number, (face, label, layout) in enumerate(zip(faces, labels, pictures, strict=True), start=1):
        scene = background(layout)
        faceless = jpeg(scene, layout.quality)
        for name, read in readers.items():
            alarms[name] += len(read(faceless))
        for column, angle in enumerate(ANGLES):
            data = jpeg(picture(face, layout, scene, angle), layout.quality)
            for name, read in readers.items():
                boxes_and_emotions = read(data)
                match = nearest_box([box for box, _ in boxes_and_emotions], layout)
                emotion = None if match is None else boxes_and_emotions[match][1]
                found[name][column] += emotion is not None
                correct[name][column] += emotion == EMOTIONS[label]
        if number % 100 == 0:
            print(f"  {number} faces, {time.perf_counter() - start:.0f} s", flush=True)

    print(f"\nwhole-crop accuracy (the same faces as 48x48 PNGs through analyze): {whole:.4f}\n")
    columns = ("acc", "recall", "acc of found")
    widths = {name: len(name) + 14 for name in readers}
    header = "".join(f"{name + ' ' + column:>{widths[name]}}" for name in readers for column in columns)
    print(f"{'angle':>6}{header}  ours - upright")
    for column, angle in enumerate(ANGLES):
        row = f"{angle:>6}"
        for name, width in widths.items():
            hits, seen = correct[name][column], found[name][column]
            row += f"{hits / len(faces):>{width}.4f}{seen / len(faces):>{width}.3f}{hits / max(seen, 1):>{width}.4f}"
        ours = correct["moodring"] / len(faces)
        print(row + f"{ours[column] - ours[0]:>+16.4f}")
    counts = ", ".join(f"{name} {count}" for name, count in alarms.items())
    print(f"\nfalse alarms (faces reported on the {len(faces)} backgrounds alone, no face in them): {counts}")
    print(
        "\ngoals: upright >= whole-crop - 0.01; +-20 >= upright - 0.02; +-30 >= upright - 0.04; ahead of fer at "
        "every angle"
    )


def measure_framing(args: argparse.Namespace, settings: Settings) -> None:
    """Where BlazeFace's box and six keypoints land in FER2013's frame, in crop sides (medians).

    Training and PublicTest faces (never PrivateTest), upscaled to 144-240 px and pasted on a plain
    grey 480x480 picture, upright as FER2013 has them; `detect.VARIANTS` holds the keypoint medians. The
    short-range model is measured as the pipeline uses it, through `FaceDetector`'s closer look; the
    full-range model in its own pass over the picture (its keypoints frame a face only when the closer look
    finds none).
    """
    data = load_fer2013(settings.fer2013_path, cache_dir=settings.cache_dir)
    images = np.concatenate([data.train.images, data.val.images])
    rng = np.random.default_rng(args.seed)
    chosen = rng.choice(len(images), size=min(args.limit, len(images)), replace=False)
    detectors = {"short": FaceDetector(), "full": BlazeFaceDetector("full")}
    for variant, detector in detectors.items():
        boxes, keypoints = [], []
        for index in chosen:
            side = int(rng.integers(144, 241))
            canvas = np.full((480, 480), int(rng.integers(60, 200)), np.uint8)
            x, y = (int(v) for v in rng.integers(0, 480 - side, size=2))
            canvas[y : y + side, x : x + side] = cv2.resize(images[index], (side, side), interpolation=cv2.INTER_CUBIC)
            inside = [
                d
                for d in detector.detect(np.repeat(canvas[..., None], 3, axis=2))
                if x <= d.x + d.w / 2 <= x + side
                and y <= d.y + d.h / 2 <= y + side
                and d.framing is VARIANTS[variant].framing
            ]
            if inside:
                d = inside[0]
                boxes.append([(d.x + d.w / 2 - x) / side, (d.y + d.h / 2 - y) / side, (d.w + d.h) / 2 / side])
                keypoints.append((np.array(d.keypoints) - (x, y)) / side)
        box, points = np.median(boxes, axis=0), np.median(keypoints, axis=0)
        rolls = [np.degrees(np.arctan2(*(k[1] - k[0])[::-1])) for k in keypoints]
        print(
            f"{variant}: {len(boxes)} of {len(chosen)} faces found; box centre ({box[0]:.3f}, {box[1]:.3f}), "
            f"box side {box[2]:.3f}, eye-line roll {np.median(rolls):.1f} deg (sd {np.std(rolls):.1f})"
        )
        spread = np.std(keypoints, axis=0)
        for name, (px, py), (sx, sy) in zip(KEYPOINT_NAMES, points, spread, strict=True):
            print(f"  {name:<10} ({px:.3f}, {py:.3f})  sd ({sx:.3f}, {sy:.3f})")
        print("  FerFraming(" + repr(tuple((round(float(px), 3), round(float(py), 3)) for px, py in points)) + ")")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="PrivateTest", choices=["PublicTest", "PrivateTest"])
    parser.add_argument("--limit", type=int, help="faces per angle (default 600; 3000 for --measure-framing)")
    parser.add_argument("--seed", type=int, default=36)
    parser.add_argument("--no-fer", action="store_true", help="skip the fer column")
    parser.add_argument("--measure-framing", action="store_true", help="measure FER2013's framing and stop")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("fer").setLevel(logging.WARNING)
    settings = Settings.load()
    if args.limit is None:
        args.limit = 3000 if args.measure_framing else 600
    if args.measure_framing:
        measure_framing(args, settings)
    else:
        run(args, settings)


if __name__ == "__main__":
    main()
