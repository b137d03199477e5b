"""The local recommender: song tables, strategies, bad input, the CLI (rankings: test_ranking.py)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from moodring.recommender import Recommender, UnknownEmotionError
from moodring.recommender.build_song_table import build_song_table
from moodring.recommender.strategies import STRATEGIES, load_strategies
from moodring.recommender.table import SongTable, embedded_table_path, mood_centroids

from moodring import EMOTIONS
from moodring.errors import ConfigError, DataError, MoodringError
from moodring.settings import Settings
from tests.recommender.test_ranking import run_cli


def test_embedded_table_is_the_shared_table_rebuilt(shared_data: Path, tmp_path: Path):
    rebuilt = tmp_path / "songs.csv"
    rows = build_song_table(shared_data / "songs" / "data_moods.csv", rebuilt)
    assert rows == 686
    assert rebuilt.read_bytes() == embedded_table_path().read_bytes()
    assert embedded_table_path().stat().st_size < 100_000


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


def test_cli_unknown_emotion_strategy_or_ranking_exits_2_with_one_line(tmp_path: Path, cli_env: dict[str, str]):
    for arguments, message in (
        (["--emotion", "joy"], "unknown emotion 'joy'"),
        (["--emotion", "sad", "--strategy", "lift"], "unknown strategy 'lift'"),
        (["--emotion", "sad", "--ranking", "random"], "unknown ranking 'random'"),
    ):
        done = run_cli(arguments, cli_env, tmp_path)
        lines = done.stderr.strip().splitlines()
        assert (done.returncode, done.stdout, len(lines)) == (2, "", 1)
        assert lines[0].startswith("moodring: error: ") and message in lines[0]


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
