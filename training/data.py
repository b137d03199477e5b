"""FER2013 loading: the canonical csv (plain or gzipped) or the image-folder release.

Splits follow the challenge: Training to train, PublicTest to select models, PrivateTest to
report once. Parsing the csv takes a few seconds, so the decoded arrays are cached as `.npz` in
the cache folder, keyed by the source file's path, size and modification time; a new version of
the source replaces its old cache rather than piling up beside it.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from moodring import EMOTIONS
from moodring.errors import DataError, first_line
from moodring.files import replaced_atomically

log = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("Training", "PublicTest", "PrivateTest")
FINAL_TRAINING = "Training+PublicTest"  # what a final run (`moodring train --final`) learns from
IMAGE_SIZE = 48
CSV_LAYOUT = "a FER2013 csv with columns emotion,pixels,Usage (48x48 grayscale)"
FOLDER_LAYOUT = "an image folder with train/<class>/* and test/<class>/*"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}


@dataclass(frozen=True)
class Split:
    """Faces as uint8 (N, 48, 48) and labels as int (N,) in `moodring.EMOTIONS` order."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class Fer2013:
    """The three canonical splits."""

    train: Split
    val: Split
    test: Split

    def split(self, name: str) -> Split:
        """A split by its FER2013 `Usage` name (Training, PublicTest, PrivateTest)."""
        by_name = dict(zip(SPLITS, (self.train, self.val, self.test), strict=False))
        if name not in by_name:
            raise DataError(f"unknown split {name!r}: choose one of {', '.join(SPLITS)}")
        return by_name[name]


def load_fer2013(path: Path, cache_dir: Path | None = None) -> Fer2013:
    """Load FER2013 from a csv/csv.gz file or an image folder; one-line `DataError` if unusable."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"FER2013 not found at {path}: expected {CSV_LAYOUT}, or {FOLDER_LAYOUT}")
    if path.is_dir():
        return _load_folder(path)
    cache = _cache_file(path, cache_dir) if cache_dir else None
    if cache and cache.exists():
        try:
            with np.load(cache) as stored:
                return _from_arrays(stored["images"], stored["labels"], stored["usage"])
        except (OSError, ValueError, KeyError):
            log.warning("ignoring unreadable FER2013 cache %s", cache)
    images, labels, usage = _parse_csv(path)
    if cache:
        _write_cache(cache, images=images, labels=labels, usage=usage)
    return _from_arrays(images, labels, usage)


def _cache_file(path: Path, cache_dir: Path) -> Path:
    stat = path.stat()
    source = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    version = hashlib.sha1(f"{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:8]
    return Path(cache_dir) / f"fer2013-{source}-{version}.npz"


def _write_cache(cache: Path, **arrays: np.ndarray) -> None:
    """Write atomically (two runs at once, one per core, may both build it), then drop the source's older caches."""
    with replaced_atomically(cache, binary=True) as handle:
        np.savez(handle, **arrays)
    source = cache.stem.rsplit("-", 1)[0]
    for stale in cache.parent.glob(f"{source}-*.npz"):
        if stale != cache:
            stale.unlink(missing_ok=True)


def _parse_csv(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype={"emotion": "Int64", "pixels": str, "Usage": str})
    except (OSError, ValueError, UnicodeDecodeError, EOFError) as exc:
        raise DataError(f"cannot read {path}: {first_line(exc)}; expected {CSV_LAYOUT}") from None
    missing = {"emotion", "pixels", "Usage"} - set(frame.columns)
    if missing:
        raise DataError(f"{path} lacks column(s) {', '.join(sorted(missing))}; expected {CSV_LAYOUT}")
    if frame.empty:
        raise DataError(f"{path} has no rows; expected {CSV_LAYOUT}")
    if frame["emotion"].isna().any() or not frame["emotion"].between(0, len(EMOTIONS) - 1).all():
        raise DataError(f"{path} has emotion labels outside 0..6; expected {CSV_LAYOUT}")
    bad_usage = set(frame["Usage"].unique()) - set(SPLITS)
    if bad_usage:
        raise DataError(f"{path} has unknown Usage value(s) {sorted(map(str, bad_usage))}; expected {CSV_LAYOUT}")
    pixel_count = IMAGE_SIZE * IMAGE_SIZE
    try:
        flat = np.fromstring(" ".join(frame["pixels"].astype(str)), dtype=np.int64, sep=" ")
    except ValueError as exc:
        raise DataError(f"{path} has unreadable pixels: {exc}; expected {CSV_LAYOUT}") from None
    if flat.size != len(frame) * pixel_count or flat.min() < 0 or flat.max() > 255:
        raise DataError(f"{path} has rows without exactly {pixel_count} pixel values in 0..255; expected {CSV_LAYOUT}")
    images = flat.astype(np.uint8).reshape(-1, IMAGE_SIZE, IMAGE_SIZE)
    return images, frame["emotion"].to_numpy(dtype=np.int64), frame["Usage"].to_numpy(dtype=str)


def _load_folder(root: Path) -> Fer2013:
    """The image-folder release: train/ is Training; test/ holds PublicTest_* and PrivateTest_*.

    Copies whose file names lost the split prefix have test/ divided deterministically: sorted
    names alternate between PublicTest and PrivateTest.
    """
    from PIL import Image, UnidentifiedImageError

    if not (root / "train").is_dir() or not (root / "test").is_dir():
        raise DataError(f"{root} is a folder without train/ and test/; expected {FOLDER_LAYOUT}")
    images, labels, usage = [], [], []
    for part in ("train", "test"):
        for label, name in enumerate(EMOTIONS):
            files = sorted(p for p in (root / part / name).glob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            for index, file in enumerate(files):
                try:
                    with Image.open(file) as image:
                        face = image.convert("L").resize((IMAGE_SIZE, IMAGE_SIZE))
                        images.append(np.asarray(face, dtype=np.uint8))
                except (OSError, UnidentifiedImageError) as exc:
                    raise DataError(f"cannot read image {file}: {first_line(exc)}") from None
                labels.append(label)
                usage.append(_folder_usage(part, file.name, index))
    if not labels:
        raise DataError(f"{root} has no images; expected {FOLDER_LAYOUT}")
    return _from_arrays(np.stack(images), np.array(labels), np.array(usage))


def _folder_usage(part: str, filename: str, index: int) -> str:
    if part == "train":
        return "Training"
    for split in ("PublicTest", "PrivateTest"):
        if filename.startswith(split):
            return split
    return "PublicTest" if index % 2 == 0 else "PrivateTest"


def _from_arrays(images: np.ndarray, labels: np.ndarray, usage: np.ndarray) -> Fer2013:
    def pick(name: str) -> Split:
        mask = usage == name
        return Split(images=images[mask], labels=labels[mask].astype(np.int64))

    return Fer2013(*(pick(name) for name in SPLITS))
