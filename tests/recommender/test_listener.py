"""What the recommender learns from a listener's feedback: `Listener.from_history` and the varied ranking."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
from moodring.recommender import Listener, Recommender, Track
from moodring.recommender.listener import ARTIST_DISLIKES_TO_BAN, MAX_LIKE_PULL

from moodring.store import FeedbackRow

START = datetime(2026, 12, 2, tzinfo=UTC)


def react(tracks: list[Track], liked: bool, minute: int) -> list[FeedbackRow]:
    """The rows that "more like this" (liked) or "not for me" on a reply of `tracks` records."""
    at = START + timedelta(minutes=minute)
    return [FeedbackRow(track.id, track.artist, track.valence, track.energy, liked, at) for track in tracks]


def ids(tracks: list[Track]) -> set[str]:
    return {track.id for track in tracks}


def test_not_for_me_means_none_of_the_replys_tracks_again(recommender: Recommender):
    disliked = recommender.recommend("happy", user_key="local:u1").tracks
    listener = Listener.from_history([], react(disliked, liked=False, minute=0))  # recent memory gone, feedback kept
    assert listener.disliked_track_ids == ids(disliked)
    for emotion in ("happy", "sad"):  # notebook: both draw from the Happy mood
        for user_key in ("local:u1", "local:u2"):
            offered = recommender.recommend(emotion, k=50, listener=listener, user_key=user_key).tracks
            assert ids(offered).isdisjoint(ids(disliked))


def test_two_disliked_tracks_of_an_artist_ban_the_artist(recommender: Recommender, table):
    rows = table.by_mood["Happy"]
    by_artist: dict[str, list[int]] = {}
    for row in rows:
        by_artist.setdefault(table.artist_keys[row], []).append(int(row))
    artist, songs = next((a, s) for a, s in by_artist.items() if len(s) >= 3)
    first, second = (recommender._track(row, table.popularity[row]) for row in songs[:2])

    once = Listener.from_history([], react([first], liked=False, minute=0))
    twice = Listener.from_history([], react([first], False, 0) + react([second], False, 1))
    assert once.disliked_artists == frozenset()
    assert ARTIST_DISLIKES_TO_BAN == 2 and twice.disliked_artists == {artist}
    for listener, artist_offered in ((once, True), (twice, False)):
        bans_only = replace(listener, avoided_point=None)  # the target stays put, so the artist ranks high
        offered = recommender.recommend("happy", k=50, listener=bans_only).tracks
        assert first.id not in ids(offered)
        assert (artist in {track.artist.casefold() for track in offered}) is artist_offered
        assert len(offered) == 50  # the mood has plenty of other artists


def test_the_latest_reaction_to_a_track_wins(recommender: Recommender):
    [track] = recommender.recommend("happy", k=1).tracks
    changed_mind = react([track], False, 0) + react([track], True, 1)
    random.Random(3).shuffle(changed_mind)  # the store's order does not matter, `at` does
    assert Listener.from_history([], changed_mind).disliked_track_ids == frozenset()
    assert Listener.from_history([], react([track], True, 0) + react([track], False, 1)).disliked_track_ids == {
        track.id
    }


def test_more_like_this_pulls_the_target_toward_the_liked_tracks(recommender: Recommender, table):
    rows = table.by_mood["Happy"]
    quiet = [recommender._track(row, table.popularity[row]) for row in rows if table.energy[row] < 0.45][:5]
    liked_energy = np.mean([track.energy for track in quiet])
    assert recommender.settings.strategy == "notebook"  # happy aims at (0.75, 0.75)

    once = Listener.from_history([], react(quiet, True, 0))
    twice = Listener.from_history([], react(quiet, True, 0) + react(quiet, True, 1))
    _, energy_once = once.target(0.75, 0.75)
    _, energy_twice = twice.target(0.75, 0.75)
    assert 0.75 > energy_once > energy_twice > liked_energy  # pulled more firmly with more likes, never all the way
    assert 0 < once.like_pull < twice.like_pull < MAX_LIKE_PULL

    def mean_energy(listener: Listener | None) -> float:
        return np.mean([track.energy for track in recommender.recommend("happy", listener=listener).tracks])

    assert mean_energy(twice) < mean_energy(None) - 0.15


def test_turned_down_replies_move_the_target_toward_what_was_kept(recommender: Recommender, table):
    rows = table.by_mood["Happy"]
    songs = [recommender._track(row, table.popularity[row]) for row in rows]
    loud = [track for track in songs if track.energy > 0.85][:5]
    quiet = [track for track in songs if track.energy < 0.5][:5]
    listener = Listener.from_history([track.id for track in loud + quiet], react(loud, False, 0))
    assert listener.kept_track_ids == ids(quiet)
    kept_points = [(track.valence, track.energy) for track in quiet]
    _, energy = listener.target(0.75, 0.75, kept_points)
    assert energy < 0.1  # moved a full step toward the kept, quieter songs
    offered = recommender.recommend("happy", listener=listener, user_key="local:u1").tracks
    assert max(track.energy for track in offered) <= 0.7


def test_a_listener_without_feedback_keeps_the_strategy_target():
    listener = Listener.from_history(["x" * 22], [])
    assert listener.target(0.75, 0.6, [(0.1, 0.1)]) == (0.75, 0.6)
    assert (listener.avoided_point, listener.liked_point, listener.like_pull) == (None, None, 0.0)
