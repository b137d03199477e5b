"""The two rankings: `popularity` (the notebook's fixed list, pinned) and `varied` (the default), and their rules."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from dataclasses import replace
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from moodring.recommender import Listener, Recommender
from moodring.recommender.ranking import _numpy1_argsort, notebook_order
from moodring.recommender.strategies import STRATEGIES
from moodring.recommender.table import SongTable, embedded_table_path

from moodring import EMOTIONS
from moodring.settings import Settings

NOTEBOOK_HAPPY = ["Pumped Up Kicks", "Africa", "Take on Me", "Highway to Hell", "Here Comes The Sun"]


def run_cli(arguments: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "moodring.cli", "recommend", *arguments],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


def served_over(recommender: Recommender, replies: int, user_key: str, emotion: str = "happy") -> list[list[str]]:
    """Track ids of successive replies to one user, each built from the history so far as the store keeps it."""
    history: list[str] = []  # newest first
    served = []
    for _ in range(replies):
        listener = Listener.from_history(history[: recommender.settings.recent_memory], [])
        ids = [track.id for track in recommender.recommend(emotion, listener=listener, user_key=user_key).tracks]
        served.append(ids)
        history = ids[::-1] + history
    return served


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_popularity_ranking_is_the_notebook_top_five(how: str, tmp_path: Path, cli_env: dict[str, str]):
    if how == "flag":
        done = run_cli(["--emotion", "happy", "--ranking", "popularity", "--json"], cli_env, tmp_path)
    else:
        done = run_cli(["--emotion", "happy", "--json"], {**cli_env, "MOODRING_RANKING": "popularity"}, tmp_path)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert set(answer) == {"emotion", "mood", "tracks", "playlist_url"}
    assert (answer["emotion"], answer["mood"], answer["playlist_url"]) == ("happy", "Happy", None)
    assert [track["name"].removesuffix(" - Remastered 2009") for track in answer["tracks"]] == NOTEBOOK_HAPPY
    for track in answer["tracks"]:
        assert set(track) == {"id", "name", "artist", "popularity", "url", "valence", "energy"}
        assert track["url"] == f"https://open.spotify.com/track/{track['id']}"
        assert 0.0 <= track["valence"] <= 1.0 and 0.0 <= track["energy"] <= 1.0


def test_default_ranking_is_varied_in_the_cli(tmp_path: Path, cli_env: dict[str, str]):
    assert Settings.load(environ={}).ranking == "varied"
    done = run_cli(["--emotion", "happy", "--json"], cli_env, tmp_path)
    assert done.returncode == 0, done.stderr
    tracks = json.loads(done.stdout)["tracks"]
    assert len({track["artist"].casefold() for track in tracks}) == len(tracks) == 5


def test_popularity_ranking_is_the_top_of_the_mood_for_every_emotion(recommender: Recommender):
    songs = pd.read_csv(embedded_table_path())
    for strategy in STRATEGIES.values():
        for emotion in EMOTIONS:
            result = recommender.recommend(emotion, strategy=strategy.name, ranking="popularity")
            mood = strategy.target(emotion).mood
            assert result.mood == mood
            in_mood = songs[songs["mood"] == mood]
            popularity = [track.popularity for track in result.tracks]
            assert popularity == sorted(popularity, reverse=True)
            # nothing left out is more popular than the least popular song chosen
            left_out = in_mood[~in_mood["id"].isin([track.id for track in result.tracks])]
            assert left_out["popularity"].max() <= popularity[-1]


def test_history_does_not_apply_to_the_popularity_ranking(recommender: Recommender):
    top = recommender.recommend("happy", ranking="popularity").tracks
    everything = Listener(
        recent_track_ids=frozenset(track.id for track in top),
        disliked_track_ids=frozenset(track.id for track in top),
        disliked_artists=frozenset(track.artist.casefold() for track in top),
        avoided_point=(0.9, 0.9),
    )
    again = recommender.recommend("happy", ranking="popularity", listener=everything, user_key="discord:1").tracks
    assert again == top


def test_replayed_quicksort_sorts_and_agrees_with_numpy_when_values_are_distinct():
    generator = np.random.default_rng(7)
    for size in (0, 1, 5, 17, 18, 200, 1000):
        with_ties = generator.integers(0, 20, size).astype(float)
        order = _numpy1_argsort(with_ties.tolist())
        assert sorted(order) == list(range(size))
        assert list(with_ties[order]) == sorted(with_ties)
        distinct = generator.permutation(size).astype(float)
        assert _numpy1_argsort(distinct.tolist()) == np.argsort(distinct, kind="stable").tolist()


def test_notebook_order_puts_unknown_popularity_last():
    popularity = np.array([np.nan, 10.0, 30.0, np.nan, 20.0])
    assert notebook_order(popularity).tolist() == [2, 4, 1, 0, 3]


def test_varied_gives_one_track_per_artist_and_is_deterministic_per_seed(settings: Settings, table: SongTable):
    first = Recommender(table, settings).recommend("happy", k=10, user_key="discord:1")
    again = Recommender(table, settings).recommend("happy", k=10, user_key="discord:1")
    other_seed = Recommender(table, replace(settings, seed=1)).recommend("happy", k=10, user_key="discord:1")
    assert first == again
    assert [track.id for track in first.tracks] != [track.id for track in other_seed.tracks]
    for result in (first, other_seed):
        artists = [track.artist.casefold() for track in result.tracks]
        assert len(set(artists)) == len(artists) == 10


def test_varied_prefers_songs_near_the_emotion_target(recommender: Recommender):
    """Over users, the varied picks sit closer to the target than the notebook's pure-popularity picks."""
    for emotion in ("angry", "sad", "neutral"):
        target = STRATEGIES["notebook"].target(emotion)

        def mean_distance(tracks, target=target):
            return np.mean([np.hypot(t.valence - target.valence, t.energy - target.energy) for t in tracks])

        varied = [mean_distance(recommender.recommend(emotion, user_key=f"local:{user}").tracks) for user in range(20)]
        popular = mean_distance(recommender.recommend(emotion, ranking="popularity").tracks)
        assert np.mean(varied) < popular


def test_no_track_repeats_within_the_recent_memory(recommender: Recommender):
    assert recommender.settings.recent_memory == 20  # tracks: the last four five-track replies
    served = served_over(recommender, 6, "local:u1")
    first_four = [track_id for reply in served[:4] for track_id in reply]
    assert len(set(first_four)) == 20
    assert set(served[4]).isdisjoint(first_four)  # all 20 still remembered
    assert set(served[5]).isdisjoint(first_four[5:] + served[4])  # the oldest reply has left the memory


def test_four_replies_stay_popular(recommender: Recommender, table: SongTable):
    """The issue's bar: four `happy` replies to one user, 20 distinct tracks, mean popularity >= 0.85 x notebook's."""
    notebook_mean = np.mean(table.popularity[table.by_mood["Happy"][:5]])
    for user_key in ("local:u1", "discord:42"):
        ids = [track_id for reply in served_over(recommender, 4, user_key) for track_id in reply]
        popularity = [table.popularity[table.row_of[track_id]] for track_id in ids]
        assert len(set(ids)) == 20
        assert np.mean(popularity) >= 0.85 * notebook_mean


def test_different_users_get_mostly_different_lists(recommender: Recommender):
    firsts = [
        {track.id for track in recommender.recommend("happy", user_key=f"discord:{user}").tracks} for user in range(12)
    ]
    shared = [len(a & b) for a, b in combinations(firsts, 2)]
    assert np.mean(shared) < 2.5  # of five
    assert recommender.recommend("happy", user_key="discord:1") == recommender.recommend("happy", user_key="discord:1")


def test_the_old_ranking_name_still_works_with_a_warning(settings: Settings, table: SongTable, caplog):
    with caplog.at_level(logging.WARNING, logger="moodring.recommender"):
        old = Recommender(table, replace(settings, ranking="blend"))
        assert old.default_ranking == "varied"
        assert "MOODRING_RANKING 'blend' is deprecated" in caplog.text
        assert old.recommend("happy", ranking="blend") == old.recommend("happy", ranking="varied")


def test_recommend_is_thread_safe_and_keeps_no_state(recommender: Recommender):
    listeners = [Listener(recent_track_ids=frozenset(reply)) for reply in served_over(recommender, 5, "local:t")]
    calls = [(EMOTIONS[call % 7], listeners[call % 5], f"local:{call % 3}") for call in range(60)]

    def answer(call):
        emotion, listener, user_key = call
        return recommender.recommend(emotion, listener=listener, user_key=user_key)

    expected = [answer(call) for call in calls]
    results: dict[int, list] = {}
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            results[worker] = [answer(call) for call in calls]
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert all(result == expected for result in results.values())
