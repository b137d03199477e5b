"""How the default `varied` ranking learns from "not for me", and whether it stays popular and varied.

1. A simulated listener turns down ("not for me") every reply that holds a track with energy > 0.7. The
   simulation keeps each user's history in memory as the store would (the last `MOODRING_RECENT_MEMORY` track
   ids, every feedback row), builds a `Listener` from it before each reply, and counts how many of the served
   tracks have energy > 0.7: in the first reply, and in replies 11-15 (after 10 replies). Goal: ≥ 80 % rarer.
   Averaged over simulated users (each its own `user_key`), recommender seeds, and the emotions of both
   strategies, grouped by the mood they draw from. The goal is for Happy: Calm and Sad songs are quiet already, and
   in Energetic 144 of 154 songs are loud, so with no repeat within 20 tracks at least half of them stay loud.
2. Four successive `happy` replies per user (history carried over), for 20 users: distinct tracks and their mean
   popularity, against 0.85 × the notebook top five's mean for Happy.
3. Two users asking for the same emotion: tracks their first replies share.

Run from the project root:

    python benchmarks/listener.py [--users 8] [--seeds 3] [--replies 15]
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import combinations

import numpy as np
from moodring.recommender import Listener, Recommender
from moodring.recommender.strategies import STRATEGIES
from moodring.recommender.table import SongTable

from moodring import EMOTIONS
from moodring.settings import Settings
from moodring.store import FeedbackRow

LOUD = 0.7
"""The simulated listener turns down every reply holding a track with more energy than this."""
REPLIES_BEFORE = 10
GOAL_REDUCTION = 0.80
POPULARITY_SHARE = 0.85
"""Share of the notebook top five's mean popularity that four varied replies must keep."""
START = datetime(2026, 12, 2, tzinfo=UTC)


def simulate(recommender: Recommender, emotion: str, strategy: str, user_key: str, replies: int) -> list[float]:
    """Share of loud tracks in each reply of one simulated listener who turns down every reply with one."""
    memory = recommender.settings.recent_memory
    recent: list[str] = []  # newest first, as store.recent_track_ids gives them
    feedback: list[FeedbackRow] = []
    shares = []
    for number in range(replies):
        listener = Listener.from_history(recent[:memory], feedback)
        tracks = recommender.recommend(emotion, strategy=strategy, listener=listener, user_key=user_key).tracks
        loud = [track.energy > LOUD for track in tracks]
        shares.append(sum(loud) / len(tracks))
        recent = [track.id for track in reversed(tracks)] + recent
        if any(loud):
            at = START + timedelta(minutes=number)
            feedback += [FeedbackRow(t.id, t.artist, t.valence, t.energy, False, at) for t in tracks]
    return shares


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=8, help="simulated users per emotion and seed")
    parser.add_argument("--seeds", type=int, default=3, help="recommender seeds (MOODRING_SEED 0..N-1)")
    parser.add_argument("--replies", type=int, default=15, help="replies per simulated user (at least 11)")
    args = parser.parse_args()
    settings = Settings.load(environ={})
    table = SongTable.load()

    by_mood: dict[str, list[list[float]]] = defaultdict(list)
    for seed in range(args.seeds):
        recommender = Recommender(table, replace(settings, seed=seed))
        for strategy in STRATEGIES.values():
            for emotion in EMOTIONS:
                mood = strategy.target(emotion).mood
                for user in range(args.users):
                    shares = simulate(recommender, emotion, strategy.name, f"sim:{user}", args.replies)
                    by_mood[mood].append(shares)
    print(
        f"1. tracks with energy > {LOUD} in the replies of a listener who turns down every reply holding one "
        f"({args.users} users x {args.seeds} seeds x each emotion of {len(STRATEGIES)} strategies)"
    )
    print(f"   {'mood':10s} {'runs':>5s} {'loud in mood':>12s} {'reply 1':>8s} {'replies 11+':>11s} {'reduction':>9s}")
    for mood, runs in sorted(by_mood.items()):
        shares = np.asarray(runs)
        before, after = shares[:, 0].mean(), shares[:, REPLIES_BEFORE:].mean()
        in_mood = (table.energy[table.by_mood[mood]] > LOUD).mean()
        reduction = f"{1 - after / before:9.0%}" if before else f"{'-':>9s}"
        verdict = "" if not before else "OK" if 1 - after / before >= GOAL_REDUCTION else "below goal"
        print(
            f"   {mood:10s} {len(runs):5d} {in_mood:12.0%} {before:8.1%} {after:11.1%} {reduction} {verdict}".rstrip()
        )

    recommender = Recommender(table, settings)
    happy_rows = table.by_mood[STRATEGIES["notebook"].target("happy").mood]
    bar = POPULARITY_SHARE * float(np.mean(table.popularity[happy_rows[:5]]))
    means = {}
    for user in [f"local:u{number}" for number in range(1, 21)]:
        served: list[str] = []
        popularity: list[int] = []
        for _ in range(4):
            listener = Listener.from_history(served[::-1][: settings.recent_memory], [])
            tracks = recommender.recommend("happy", listener=listener, user_key=user).tracks
            served += [track.id for track in tracks]
            popularity += [track.popularity for track in tracks]
        assert len(set(served)) == 20, f"{user}: a track repeated within four replies"
        means[user] = float(np.mean(popularity))
    print(
        f"2. four happy replies per user, history carried over: 20 distinct tracks for each of {len(means)} users; "
        f"mean popularity local:u1 {means['local:u1']:.1f}, lowest user {min(means.values()):.1f}, "
        f"all users {np.mean(list(means.values())):.1f} (bar {bar:.1f} = {POPULARITY_SHARE} x the notebook top five: "
        f"{'OK' if min(means.values()) >= bar else 'below bar'})"
    )

    firsts = {
        user: {track.id for track in recommender.recommend("happy", user_key=f"discord:{user}").tracks}
        for user in range(20)
    }
    shared = [len(firsts[a] & firsts[b]) for a, b in combinations(firsts, 2)]
    print(
        f"3. first happy reply of 20 users, per pair: {np.mean(shared):.2f} of 5 tracks shared on average, "
        f"{max(shared)} at most"
    )


if __name__ == "__main__":
    main()
