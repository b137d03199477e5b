"""FER2013 loading: the canonical splits, the cache, the image-folder layout, and one-line errors for bad files."""

from __future__ import annotations

import gzip
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from moodring.training.data import Fer2013, load_fer2013

from moodring import EMOTIONS
from moodring.errors import DataError
from tests.training.conftest import TINY, moodring_lines, run_cli, write_fer_csv

# The counts the dataset's README verifies against the original fer2013.csv.
EXPECTED_COUNTS = {
    "Training": [3995, 436, 4097, 7215, 4830, 3171, 4965],
    "PublicTest": [467, 56, 496, 895, 653, 415, 607],
    "PrivateTest": [491, 55, 528, 879, 594, 416, 626],
}


def test_loader_gives_canonical_splits_and_counts(fer: Fer2013) -> None:
    for name, expected in EXPECTED_COUNTS.items():
        split = fer.split(name)
        assert split.images.shape == (sum(expected), 48, 48)
        assert split.images.dtype == np.uint8
        assert np.bincount(split.labels, minlength=len(EMOTIONS)).tolist() == expected
    with pytest.raises(DataError, match="unknown split 'Holdout'"):
        fer.split("Holdout")


def test_loader_reads_its_cache_identically(tiny_csv: Path, tiny: Fer2013, tmp_path: Path) -> None:
    first = load_fer2013(tiny_csv, cache_dir=tmp_path)
    assert list(tmp_path.glob("fer2013-*.npz")), "the decoded arrays should be cached"
    second = load_fer2013(tiny_csv, cache_dir=tmp_path)
    for name in TINY:
        np.testing.assert_array_equal(first.split(name).images, second.split(name).images)
        np.testing.assert_array_equal(second.split(name).labels, tiny.split(name).labels)


def write_small_csv(path: Path, shade: int, rows_per_split: int = 1) -> None:
    row = " ".join([str(shade)] * 48 * 48)
    usages = ("Training", "PublicTest", "PrivateTest") * rows_per_split
    lines = ["emotion,pixels,Usage", *(f"{index % 7},{row},{usage}" for index, usage in enumerate(usages))]
    path.write_text("\n".join(lines) + "\n")


def test_cache_writers_running_at_once_all_succeed(tmp_path: Path) -> None:
    source = tmp_path / "fer.csv"
    write_small_csv(source, shade=7, rows_per_split=200)  # big enough for the writes to overlap
    cache_dir = tmp_path / "cache"
    with ThreadPoolExecutor(max_workers=8) as pool:
        loaded = list(pool.map(lambda _: load_fer2013(source, cache_dir=cache_dir), range(8)))
    assert all(int(data.test.images.max()) == 7 for data in loaded)
    assert [path.name.startswith("fer2013-") for path in cache_dir.iterdir()] == [True], "one cache, no temp files"


def test_a_changed_source_replaces_its_cache(tmp_path: Path) -> None:
    source = tmp_path / "fer.csv"
    cache_dir = tmp_path / "cache"
    write_small_csv(source, shade=7)
    load_fer2013(source, cache_dir=cache_dir)
    old_cache = next(cache_dir.iterdir())
    write_small_csv(source, shade=200)
    assert int(load_fer2013(source, cache_dir=cache_dir).test.images.max()) == 200
    assert not old_cache.exists() and len(list(cache_dir.iterdir())) == 1


def test_loader_reads_the_image_folder_layout(tiny: Fer2013, tmp_path: Path) -> None:
    from PIL import Image

    picks = {"train": (tiny.train, "Training"), "test": (tiny.val, "PublicTest")}
    for part, (split, prefix) in picks.items():
        for label, name in enumerate(EMOTIONS):
            folder = tmp_path / part / name
            folder.mkdir(parents=True)
            index = int(np.flatnonzero(split.labels == label)[0])
            Image.fromarray(split.images[index]).save(folder / f"{prefix}_{index}.png")
    data = load_fer2013(tmp_path)
    assert len(data.train) == 7 and len(data.val) == 7 and len(data.test) == 0
    assert sorted(data.train.labels.tolist()) == list(range(7))
    np.testing.assert_array_equal(
        data.train.images[data.train.labels == 3][0], tiny.train.images[tiny.train.labels == 3][0]
    )


def test_the_tiny_copy_has_the_layout_of_the_real_one(tiny: Fer2013, tmp_path: Path) -> None:
    """The training tests run on `write_fer_csv`'s faces: they must load as FER2013 does."""
    for name, count in TINY.items():
        split = tiny.split(name)
        assert split.images.shape == (count, 48, 48) and split.images.dtype == np.uint8
        assert set(split.labels.tolist()) == set(range(len(EMOTIONS)))
    again = load_fer2013(write_fer_csv(tmp_path / "again.csv"))
    np.testing.assert_array_equal(again.test.images, tiny.test.images)  # deterministic


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("emotion,pixels\n0,1 2 3\n", r"lacks column\(s\) Usage"),
        ("emotion,pixels,Usage\n0,1 2 3,Training\n", "exactly 2304 pixel values"),
        ("emotion,pixels,Usage\n9," + " ".join(["0"] * 2304) + ",Training\n", "outside 0..6"),
        ("emotion,pixels,Usage\n1," + " ".join(["0"] * 2304) + ",Holdout\n", "unknown Usage"),
    ],
)
def test_malformed_csv_is_a_one_line_data_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "fer.csv.gz"
    path.write_bytes(gzip.compress(content.encode()))
    with pytest.raises(DataError, match=message) as caught:
        load_fer2013(path)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)


def test_cli_bad_data_path_exits_2_with_one_line(tmp_path: Path, cli_env: dict[str, str], cli_home: Path) -> None:
    missing = tmp_path / "nowhere.csv.gz"
    result = run_cli("evaluate", "--data", str(missing), "--json", env=cli_env, cwd=cli_home)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"moodring: error: FER2013 not found at {missing}: expected a FER2013 csv with columns "
        "emotion,pixels,Usage (48x48 grayscale), or an image folder with train/<class>/* and test/<class>/*"
    ]
    assert moodring_lines(result.stderr) == 1
