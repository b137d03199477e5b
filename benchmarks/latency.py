"""End-to-end latency, Moodring vs the `fer` package: image file bytes in, emotions out, same images, same run.

Two JPEGs made from the public-domain astronaut photo (one face each): a 640x480 webcam-sized
picture and a 12 MP (4000x3000) phone photo; and a 640x480 one of its lower part, without a face.
Moodring is timed on `EmotionRecognizer.analyze` (decode, EXIF, downscale, detect, classify). `fer`
is timed as its users run it, on the same bytes: `cv2.imdecode` then `FER().detect_emotions` with
its defaults (Haar cascade, quantized TFLite model). Goal: p50 <= 25 ms at 640x480 on 2 cores, and
>= 3x faster than `fer`.

Extra install (benchmark only; `fer` is not a Moodring dependency; without it only Moodring is timed, as in
an installed wheel's lean environment):
    pip install --no-deps fer && pip install "setuptools<82"   # fer imports pkg_resources

Run: python benchmarks/latency.py [--runs 50] [--model A.tflite --model B.keras ...]
(`--model` compares candidate emotion models in the same run; default: the shipped one.)
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
from moodring.emotion import EmotionRecognizer
from PIL import Image

from moodring.settings import Settings

ASTRONAUT = Path(__file__).resolve().parents[1] / "examples" / "astronaut.jpg"


def test_pictures() -> dict[str, bytes]:
    """JPEG bytes of the astronaut as a 640x480 picture and as a 12 MP photo, face in the upper half, and a
    640x480 picture of the photo's lower part, without a face."""
    photo = Image.open(ASTRONAUT).convert("RGB")
    pictures = {}
    for name, (width, height) in {"640x480": (640, 480), "12 MP (4000x3000)": (4000, 3000)}.items():
        square = photo.resize((width, width), Image.Resampling.BICUBIC)
        out = io.BytesIO()
        square.crop((0, 0, width, height)).save(out, format="JPEG", quality=90)
        pictures[name] = out.getvalue()
    # The same photo's lower part, the suit and flag: a picture without a face, which the detector searches
    # hardest (square windows, then a closer look at near misses) before answering none.
    out = io.BytesIO()
    photo.crop((0, 190, 429, 512)).resize((640, 480), Image.Resampling.BICUBIC).save(out, format="JPEG", quality=90)
    pictures["640x480, no face"] = out.getvalue()
    return pictures


def timings(run, data: bytes, runs: int, warm_up: int = 2) -> tuple[list[float], list[float], object]:
    """Wall-clock and process CPU seconds per call. CPU time (all threads) barely moves when other
    processes compete for the cores, so it tells what a quiet machine's wall clock would show."""
    for _ in range(warm_up):
        result = run(data)
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = run(data)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return wall, cpu, result


def percentiles(seconds: list[float]) -> tuple[float, float]:
    values = np.array(seconds) * 1000
    return float(np.percentile(values, 50)), float(np.percentile(values, 95))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="timed runs per picture for Moodring (default 50)")
    parser.add_argument("--fer-runs", type=int, default=10, help="timed runs per picture for fer (default 10)")
    parser.add_argument(
        "--model", type=Path, action="append", help="emotion model to time (repeatable; default: MOODRING_MODEL)"
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    settings = Settings.load()
    models = args.model or [settings.model]
    recognizers = {path: EmotionRecognizer.from_settings(replace(settings, model=path)) for path in models}
    fer_analyze = _fer_analyzer()

    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")
    print(f"{'picture':<20}{'model':<22}{'p50 ms':>9}{'p95 ms':>9}{'CPU p50 ms':>12}{'faces':>7}  emotion")
    for name, data in test_pictures().items():
        if fer_analyze is not None:
            theirs, theirs_cpu, found = timings(fer_analyze, data, args.fer_runs, warm_up=1)
            fer_p50, fer_p95 = percentiles(theirs)
            fer_cpu_p50 = percentiles(theirs_cpu)[0]
            fer_emotion = max(found[0]["emotions"], key=found[0]["emotions"].get) if found else None
            print(
                f"{name:<20}{'fer':<22}{fer_p50:>9.1f}{fer_p95:>9.1f}{fer_cpu_p50:>12.1f}{len(found):>7}  {fer_emotion}"
            )
        for index, (path, recognizer) in enumerate(recognizers.items()):
            ours, ours_cpu, analysis = timings(recognizer.analyze, data, args.runs)
            ours_p50, ours_p95 = percentiles(ours)
            ours_cpu_p50 = percentiles(ours_cpu)[0]
            label = "moodring" if len(models) == 1 else Path(path).name
            speed_up = (
                f"   speed-up at p50: {fer_p50 / ours_p50:.1f}x wall, {fer_cpu_p50 / ours_cpu_p50:.1f}x CPU"
                if fer_analyze is not None
                else ""
            )
            print(
                f"{'' if index or fer_analyze else name:<20}{label:<22}{ours_p50:>9.1f}{ours_p95:>9.1f}"
                f"{ours_cpu_p50:>12.1f}{len(analysis.faces):>7}  {analysis.emotion}{speed_up}"
            )
    print(f"(median of {args.runs} runs per model" + (f", {args.fer_runs} for fer)" if fer_analyze else ")"))
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    print("\ngoal: p50 <= 25 ms at 640x480 on 2 cores, and >= 3x faster than fer")


def _fer_analyzer():
    """`fer` as its users run it on file bytes, or None (with a note) where it is not installed."""
    try:
        import cv2
        from fer.fer import FER
    except ImportError as exc:
        print(f"fer not timed ({exc.name} is not installed): Moodring only\n")
        return None
    logging.getLogger("fer").setLevel(logging.WARNING)
    detector = FER()
    return lambda data: detector.detect_emotions(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR))


if __name__ == "__main__":
    main()
