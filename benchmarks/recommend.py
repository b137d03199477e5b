"""How long one `Recommender.recommend()` call takes on the 686-song table (target: ≤ 1 ms).

Side by side in one run: the original notebook's way (filter the DataFrame and sort it on every call), the
`popularity` ranking, the default `varied` ranking without a listener and with one (20 recent tracks and 30
feedback rows, likes and dislikes), `Listener.from_history` itself (the caller builds one per request), and the
default ranking with Spotify configured and its popularity cache warm (against the fake Spotify server in
`tests/`, so it needs no network). Run from the project root:

    python benchmarks/recommend.py [--calls 5000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
from moodring.recommender import Listener, Recommender
from moodring.recommender.strategies import STRATEGIES
from moodring.recommender.table import SongTable, embedded_table_path

from moodring import EMOTIONS
from moodring.settings import Settings
from moodring.store import FeedbackRow


def history(recommender: Recommender, user: int) -> tuple[list[str], list[FeedbackRow]]:
    """One user's store contents after six happy replies: the 20 newest track ids, and feedback on each reply."""
    recent: list[str] = []
    feedback: list[FeedbackRow] = []
    for number in range(6):
        listener = Listener.from_history(recent[:20], feedback)
        tracks = recommender.recommend("happy", listener=listener, user_key=f"bench:{user}").tracks
        recent = [track.id for track in reversed(tracks)] + recent
        at = datetime(2026, 12, 2, tzinfo=UTC) + timedelta(minutes=number)
        feedback += [FeedbackRow(t.id, t.artist, t.valence, t.energy, number % 3 == 0, at) for t in tracks]
    return recent[:20], feedback


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
        histories = [history(local, user) for user in range(50)]
        listeners = [Listener.from_history(recent, feedback) for recent, feedback in histories]

        def with_listener(index: int) -> object:
            return local.recommend(EMOTIONS[index % 7], listener=listeners[index % 50], user_key=f"bench:{index % 50}")

        def build_listener(index: int) -> object:
            return Listener.from_history(*histories[index % 50])

        songs = pd.read_csv(embedded_table_path())
        notebook = STRATEGIES["notebook"]

        def pandas_notebook(index: int) -> object:
            mood = notebook.target(EMOTIONS[index % 7]).mood
            return songs[songs["mood"] == mood].sort_values(by="popularity", ascending=False)[:5]

        rows = [
            ("notebook's pandas filter + sort", per_call_us(pandas_notebook, calls // 10)),
            (
                "recommend(), ranking=popularity",
                per_call_us(lambda i: local.recommend(EMOTIONS[i % 7], ranking="popularity"), calls),
            ),
            ("recommend(), varied, no listener", per_call_us(lambda i: local.recommend(EMOTIONS[i % 7]), calls)),
            ("recommend(), varied, listener, 50 users", per_call_us(with_listener, calls)),
            ("Listener.from_history (caller's cost)", per_call_us(build_listener, calls)),
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
                            "recommend(), varied, Spotify on, cache warm",
                            per_call_us(lambda i: live.recommend(EMOTIONS[i % 7]), calls),
                        )
                    )
        local.close()
    print(f"songs: {len(table)}, calls per run: {calls} (pandas: {calls // 10}), median and best of 5 runs")
    for name, (median, best) in rows:
        print(f"{name:42s} {median:8.1f} µs/call (best {best:.1f})  {'OK' if median <= 1000 else 'over 1 ms'}")


if __name__ == "__main__":
    main()
