"""The local recommender: song tables, strategies, the notebook's ranking, the blend, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from moodring.recommender import Recommender, UnknownEmotionError
from moodring.recommender.build_song_table import build_song_table
from moodring.recommender.ranking import _numpy1_argsort, notebook_order
from moodring.recommender.strategies import STRATEGIES, load_strategies
from moodring.recommender.table import SongTable, embedded_table_path, mood_centroids

from moodring import EMOTIONS
from moodring.errors import ConfigError, DataError, MoodringError
from moodring.settings import Settings

NOTEBOOK_HAPPY = ["Pumped Up Kicks", "Africa", "Take on Me", "Highway to Hell", "Here Comes The Sun"]


@pytest.fixture(scope="module")
def table() -> SongTable:
    return SongTable.load()


@pytest.fixture
def recommender(settings: Settings, table: SongTable) -> Recommender:
    with Recommender(table, settings) as rec:
        yield rec


def clean_env() -> dict[str, str]:
    """The process environment without any Moodring or Spotify setting a developer may have."""
    return {key: value for key, value in os.environ.items() if not key.startswith(("MOODRING_", "SPOTIPY_"))}


def test_embedded_table_is_the_shared_table_rebuilt(shared_data: Path, tmp_path: Path):
    rebuilt = tmp_path / "songs.csv"
    rows = build_song_table(shared_data / "songs" / "data_moods.csv", rebuilt)
    assert rows == 686
    assert rebuilt.read_bytes() == embedded_table_path().read_bytes()
    assert embedded_table_path().stat().st_size < 100_000


def test_cli_recommend_happy_json_is_the_notebook_top_five(tmp_path: Path):
    done = subprocess.run(
        [sys.executable, "-m", "moodring.cli", "recommend", "--emotion", "happy", "--json"],
        capture_output=True,
        text=True,
        env=clean_env(),
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert set(answer) == {"emotion", "mood", "tracks", "playlist_url"}
    assert (answer["emotion"], answer["mood"], answer["playlist_url"]) == ("happy", "Happy", None)
    names = [track["name"].removesuffix(" - Remastered 2009") for track in answer["tracks"]]
    assert names == NOTEBOOK_HAPPY
    for track in answer["tracks"]:
        assert set(track) == {"id", "name", "artist", "popularity", "url"}
        assert track["url"] == f"https://open.spotify.com/track/{track['id']}"


def test_default_ranking_is_the_top_of_the_mood_for_every_emotion(recommender: Recommender, table: SongTable):
    songs = pd.read_csv(embedded_table_path())
    for strategy in STRATEGIES.values():
        for emotion in EMOTIONS:
            result = recommender.recommend(emotion, strategy=strategy.name)
            mood = strategy.target(emotion).mood
            assert result.mood == mood
            in_mood = songs[songs["mood"] == mood]
            popularity = [track.popularity for track in result.tracks]
            assert popularity == sorted(popularity, reverse=True)
            # nothing left out is more popular than the least popular song chosen
            left_out = in_mood[~in_mood["id"].isin([track.id for track in result.tracks])]
            assert left_out["popularity"].max() <= popularity[-1]


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


def test_strategies_are_the_documented_mappings():
    notebook = {emotion: STRATEGIES["notebook"].target(emotion).mood for emotion in EMOTIONS}
    assert notebook == {
        "disgust": "Sad",
        "happy": "Happy",
        "sad": "Happy",
        "fear": "Calm",
        "angry": "Calm",
        "surprise": "Energetic",
        "neutral": "Energetic",
    }
    match = STRATEGIES["match"]
    assert [match.target(emotion).mood for emotion in ("happy", "sad", "angry")] == ["Happy", "Sad", "Energetic"]


def test_a_strategy_file_missing_an_emotion_is_refused():
    with pytest.raises(ConfigError, match="no entry for .*neutral"):
        load_strategies(
            json.dumps(
                {"partial": {"emotions": {e: {"mood": "Happy", "valence": 0.5, "energy": 0.5} for e in EMOTIONS[:-1]}}}
            )
        )


def test_bad_input_is_a_one_line_error(recommender: Recommender):
    with pytest.raises(UnknownEmotionError, match="unknown emotion 'joy'; expected one of: angry"):
        recommender.recommend("joy")
    assert isinstance(UnknownEmotionError("x"), MoodringError)
    with pytest.raises(MoodringError, match="unknown strategy 'lift'"):
        recommender.recommend("happy", strategy="lift")
    with pytest.raises(MoodringError, match="unknown ranking"):
        recommender.recommend("happy", ranking="random")
    for k in (0, 51, "5"):
        with pytest.raises(ConfigError, match="number of tracks"):
            recommender.recommend("happy", k=k)
    assert recommender.recommend(" Happy ").emotion == "happy"


def test_cli_unknown_emotion_or_strategy_exits_2_with_one_line(tmp_path: Path):
    for arguments, message in (
        (["--emotion", "joy"], "unknown emotion 'joy'"),
        (["--emotion", "sad", "--strategy", "lift"], "unknown strategy 'lift'"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "moodring.cli", "recommend", *arguments],
            capture_output=True,
            text=True,
            env=clean_env(),
            cwd=tmp_path,
            timeout=120,
        )
        lines = done.stderr.strip().splitlines()
        assert (done.returncode, done.stdout, len(lines)) == (2, "", 1)
        assert lines[0].startswith("moodring: error: ") and message in lines[0]


def test_user_strategy_is_used_when_a_call_names_none(recommender: Recommender):
    recommender.set_user_strategy(7, "match")
    assert recommender.recommend("sad", user_id=7).mood == "Sad"
    assert recommender.recommend("sad", user_id=8).mood == "Happy"
    assert recommender.recommend("sad", user_id=7, strategy="notebook").mood == "Happy"
    recommender.set_user_strategy(7, None)
    assert recommender.recommend("sad", user_id=7).mood == "Happy"
    with pytest.raises(MoodringError):
        recommender.set_user_strategy(7, "lift")


def test_blend_gives_one_track_per_artist_and_is_deterministic_per_seed(settings: Settings, table: SongTable):
    blend = replace(settings, ranking="blend")
    first = Recommender(table, blend).recommend("happy", k=10, user_id=1)
    again = Recommender(table, blend).recommend("happy", k=10, user_id=1)
    other_seed = Recommender(table, replace(blend, seed=1)).recommend("happy", k=10, user_id=1)
    assert first == again
    assert [track.id for track in first.tracks] != [track.id for track in other_seed.tracks]
    artists = [track.artist.casefold() for track in first.tracks]
    assert len(set(artists)) == len(artists) == 10


def test_blend_prefers_songs_near_the_emotion_target(settings: Settings, table: SongTable):
    """The blend's picks sit closer to the target than the notebook's pure-popularity picks."""
    rec = Recommender(table, settings)
    for emotion in ("angry", "sad", "neutral"):
        target = STRATEGIES["notebook"].target(emotion)

        def mean_distance(tracks, target=target):
            rows = [int(np.flatnonzero(table.ids == track.id)[0]) for track in tracks]
            return np.hypot(table.valence[rows] - target.valence, table.energy[rows] - target.energy).mean()

        blended = rec.recommend(emotion, k=5, ranking="blend").tracks
        popular = rec.recommend(emotion, k=5).tracks
        assert mean_distance(blended) < mean_distance(popular)


def test_blend_does_not_repeat_a_users_recent_tracks(settings: Settings, table: SongTable):
    rec = Recommender(table, replace(settings, ranking="blend", recent_memory=15))
    served = [[track.id for track in rec.recommend("happy", user_id="u1").tracks] for _ in range(3)]
    flat = [track_id for batch in served for track_id in batch]
    assert len(set(flat)) == 15  # three lists, no repeat within the memory of 15
    fourth = [track.id for track in rec.recommend("happy", user_id="u1").tracks]
    assert set(fourth).isdisjoint(flat[5:])  # the oldest five left the memory; the rest still count
    fresh = Recommender(table, replace(settings, ranking="blend", recent_memory=15))
    assert rec.recommend("happy", user_id="u2") == fresh.recommend("happy", user_id="u2")  # memory is per user


def test_recommend_is_thread_safe(settings: Settings, table: SongTable):
    rec = Recommender(table, replace(settings, ranking="blend", recent_memory=10))
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for call in range(100):
                result = rec.recommend(EMOTIONS[call % 7], user_id=call % 5)
                assert len(result.tracks) == 5
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


@pytest.mark.parametrize(
    "name, rows",
    [
        ("data_moods.csv", 686),
        ("readthisinsteadofscrapping.csv", 1146),
        ("high_popularity_spotify_data.csv", 1437),
        ("low_popularity_spotify_data.csv", 3100),
    ],
)
def test_every_shared_song_table_loads(shared_data: Path, name: str, rows: int):
    table = SongTable.load(shared_data / "songs" / name)
    assert len(table) == rows
    assert all(len(track_id) == 22 for track_id in table.ids)
    assert sum(len(positions) for positions in table.by_mood.values()) == rows


def test_fer_labelled_table_takes_the_congruent_mood(shared_data: Path, settings: Settings):
    source = pd.read_csv(shared_data / "songs" / "readthisinsteadofscrapping.csv").drop_duplicates("track_id")
    table = SongTable.load(shared_data / "songs" / "readthisinsteadofscrapping.csv")
    mood_of = dict(zip(table.ids, table.moods, strict=True))
    for code, emotion in enumerate(EMOTIONS):
        ids = source.loc[source["Emotion"] == code, "track_id"]
        assert {mood_of[track_id] for track_id in ids} <= {STRATEGIES["match"].target(emotion).mood}
    result = Recommender(table, settings).recommend("sad", strategy="match")
    assert [track.popularity for track in result.tracks] == [None] * 5  # this table has no popularity


def test_unlabelled_table_takes_the_nearest_mood_centroid(tmp_path: Path):
    centroids = mood_centroids()
    assert centroids["Energetic"][1] > centroids["Calm"][1]  # energetic songs have more energy
    path = tmp_path / "songs.csv"
    rows = [
        {"track_id": f"{mood[0] * 21}{i}", "track_name": mood, "track_artist": "x", "valence": v, "energy": e}
        for i, (mood, (v, e)) in enumerate(centroids.items())
    ]
    pd.DataFrame(rows).to_csv(path, index=False)
    table = SongTable.load(path)
    assert list(table.moods) == list(centroids)


def test_table_problems_are_one_line_errors(tmp_path: Path):
    with pytest.raises(DataError, match="songs table not found"):
        SongTable.load(tmp_path / "missing.csv")
    no_artist = tmp_path / "no-artist.csv"
    pd.read_csv(embedded_table_path()).drop(columns="artist").to_csv(no_artist, index=False)
    with pytest.raises(DataError, match="missing column 'artist'"):
        SongTable.load(no_artist)
    odd_mood = tmp_path / "odd-mood.csv"
    pd.read_csv(embedded_table_path()).assign(mood="Grumpy").to_csv(odd_mood, index=False)
    with pytest.raises(DataError, match="unknown mood.*'Grumpy'"):
        SongTable.load(odd_mood)


def test_bad_default_strategy_fails_at_start(settings: Settings, table: SongTable):
    with pytest.raises(MoodringError, match="unknown strategy"):
        Recommender(table, replace(settings, strategy="lift"))
