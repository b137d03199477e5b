"""Derive the compact song table shipped inside the package from the notebook's `data_moods.csv`.

A fresh install must recommend music without any download, so `recommender/data/songs.csv` keeps
only what the recommender reads (id, name, artist, popularity, valence, energy, mood) in the
source's row order, which the notebook's tie order depends on. Re-run after changing the columns:

    python -m moodring.recommender.build_song_table [SOURCE] [--out recommender/data/songs.csv]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from moodring.settings import DEFAULT_DATA_DIR

SOURCE = DEFAULT_DATA_DIR / "songs" / "data_moods.csv"
OUTPUT = Path(__file__).resolve().parent / "data" / "songs.csv"
COLUMNS = ["id", "name", "artist", "popularity", "valence", "energy", "mood"]


def build_song_table(source: Path, out: Path) -> int:
    """Write the compact table and return its row count; values are copied, never recomputed."""
    table = pd.read_csv(source, usecols=COLUMNS, dtype=str, keep_default_na=False)[COLUMNS]
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False, lineterminator="\n")
    return len(table)


def main() -> None:
    """Command-line entry: `python -m moodring.recommender.build_song_table`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", type=Path, default=SOURCE)
    parser.add_argument("--out", type=Path, default=OUTPUT)
    args = parser.parse_args()
    rows = build_song_table(args.source, args.out)
    print(f"{args.out}: {rows} rows, {args.out.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
