"""`moodring predict IMAGE [IMAGE ...] [--json] [--annotate OUT]`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from moodring.emotion import MIN_PICTURE_SIDE

from moodring.errors import ConfigError, MoodringError
from moodring.settings import Settings

ANNOTATION_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `predict` to the `moodring` command."""
    predict = subparsers.add_parser(
        "predict",
        help="read the emotion of every face in one or more pictures",
        description="Read the emotion of every face in one or more pictures. The model loads once for all of "
        "them; an unreadable picture is reported on stderr, the others are still read, and the exit code is 2. "
        f"Pictures smaller than {MIN_PICTURE_SIDE} px on a side are refused: too small to hold a readable face.",
    )
    predict.add_argument(
        "images", nargs="+", type=Path, metavar="IMAGE", help="JPEG, PNG, WebP, GIF, BMP, TIFF or AVIF"
    )
    predict.add_argument("--json", action="store_true", help="print one JSON object per picture (JSON Lines)")
    predict.add_argument(
        "--annotate",
        type=Path,
        metavar="OUT",
        help="also save the picture with boxes and labels to OUT (.png, .jpg or .webp); "
        "with several pictures OUT is a folder, and each is saved there as <name>.annotated.png "
        "(<name>-2.annotated.png and so on when two pictures share a name)",
    )
    predict.set_defaults(handler=run_predict)


def _annotation_target(out: Path, image: Path, several: bool, taken: set[Path]) -> tuple[Path, str]:
    """Where to save a picture's annotated copy; pictures from different folders never overwrite each other."""
    if not several:
        return out, ANNOTATION_FORMATS[out.suffix.lower()]
    target, copy = out / f"{image.stem}.annotated.png", 1
    while target in taken:
        copy += 1
        target = out / f"{image.stem}-{copy}.annotated.png"
    taken.add(target)
    return target, "PNG"


def _describe(path: Path, analysis) -> str:
    if not analysis.faces:
        return f"{path}: no face found"
    count = f"{len(analysis.faces)} face{'s' if len(analysis.faces) > 1 else ''}"
    lines = [f"{path}: {analysis.emotion} ({count})"]
    for face in analysis.faces:
        runners_up = sorted(face.scores.items(), key=lambda item: -item[1])[1:3]
        others = ", ".join(f"{name} {score:.0%}" for name, score in runners_up)
        x, y, w, h = face.box
        lines.append(f"  {face.emotion} {face.scores[face.emotion]:.0%} at x={x} y={y} w={w} h={h} ({others})")
    return "\n".join(lines)


def run_predict(args: argparse.Namespace) -> int:
    """Handler of `moodring predict`: 0 if every picture was read, 2 if any was not."""
    several = len(args.images) > 1
    if args.annotate is not None:
        if several and args.annotate.suffix.lower() in ANNOTATION_FORMATS:
            raise ConfigError(f"--annotate {args.annotate}: with several pictures, give a folder")
        if not several and args.annotate.suffix.lower() not in ANNOTATION_FORMATS:
            raise ConfigError(f"--annotate {args.annotate}: use a .png, .jpg or .webp file name")
    settings = Settings.load()
    from moodring.emotion import EmotionRecognizer, annotate
    from moodring.emotion.image import read_image_file

    recognizer = EmotionRecognizer.from_settings(settings)
    failures = 0
    annotated: set[Path] = set()
    for path in args.images:
        try:
            data = read_image_file(path, settings.max_image_bytes)
            working = recognizer.decode(data)  # once: analysed, then drawn on
            analysis = recognizer.analyze_picture(working)
            if args.annotate is not None:
                target, image_format = _annotation_target(args.annotate, path, several, annotated)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(annotate(working, analysis, format=image_format))
        except (OSError, MoodringError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            print(f"moodring: error: {path}: {reason}", file=sys.stderr, flush=True)
            failures += 1
            continue
        if args.json:
            print(json.dumps({"path": str(path), **analysis.to_dict()}), flush=True)
        else:
            print(_describe(path, analysis), flush=True)
    return 2 if failures else 0
