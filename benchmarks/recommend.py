"""How long one `Recommender.recommend()` call takes on the 686-song table (target: ≤ 1 ms).

Side by side in one run: the original notebook's way (filter the DataFrame and sort it on every
call), our default `popularity` ranking, the `blend` ranking with a user's memory, and the default
ranking with Spotify configured and its popularity cache warm (against the fake Spotify server in
`tests/`, so it needs no network). Run from the project root:

    python benchmarks/recommend.py [--calls 5000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pandas as pd
from moodring.recommender import Recommender
from moodring.recommender.strategies import STRATEGIES
from moodring.recommender.table import SongTable, embedded_table_path

from moodring import EMOTIONS
from moodring.settings import Settings


def per_call_us(call: Callable[[int], object], calls: int, repeats: int = 5) -> tuple[float, float]:
    """Median and best of `repeats` runs, in microseconds per call."""
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        for index in range(calls):
            call(index)
        runs.append((time.perf_counter() - started) / calls * 1e6)
    return statistics.median(runs), min(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    args = parser.parse_args()
    calls = args.calls
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings.load(
            environ={
                "MOODRING_PLAYLIST_STORE": f"{folder}/playlists.json",
                "MOODRING_SPOTIFY_TOKEN_CACHE": f"{folder}/token.json",
            }
        )
        table = SongTable.load()
        local = Recommender(table, settings)
        blend = Recommender(table, replace(settings, ranking="blend"))
        songs = pd.read_csv(embedded_table_path())
        notebook = STRATEGIES["notebook"]

        def pandas_notebook(index: int) -> object:
            mood = notebook.target(EMOTIONS[index % 7]).mood
            return songs[songs["mood"] == mood].sort_values(by="popularity", ascending=False)[:5]

        rows = [
            ("notebook's pandas filter + sort", per_call_us(pandas_notebook, calls // 10)),
            ("recommend(), ranking=popularity", per_call_us(lambda i: local.recommend(EMOTIONS[i % 7]), calls)),
            (
                "recommend(), ranking=blend, 50 users",
                per_call_us(lambda i: blend.recommend(EMOTIONS[i % 7], user_id=i % 50), calls),
            ),
        ]
        try:
            from tests.fake_spotify import FakeSpotify
        except ImportError:
            FakeSpotify = None  # noqa: N806 (run outside the source tree)
        if FakeSpotify is not None:
            with FakeSpotify() as fake:
                spotify_settings = Settings.load(environ=fake.environ(Path(folder)))
                with Recommender.from_settings(spotify_settings) as live:
                    for emotion in EMOTIONS:
                        live.recommend(emotion)  # warm the popularity cache
                    rows.append(
                        (
                            "recommend(), Spotify on, cache warm",
                            per_call_us(lambda i: live.recommend(EMOTIONS[i % 7]), calls),
                        )
                    )
        local.close()
        blend.close()
    print(f"songs: {len(table)}, calls per run: {calls} (pandas: {calls // 10}), median and best of 5 runs")
    for name, (median, best) in rows:
        print(f"{name:40s} {median:8.1f} µs/call (best {best:.1f})  {'OK' if median <= 1000 else 'over 1 ms'}")


if __name__ == "__main__":
    main()
