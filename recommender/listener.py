"""What the recommender knows about one listener, built from the store's history on every request.

The recommender keeps no memory of its own: the caller reads a user's recent tracks and feedback from the store,
builds a `Listener` with `Listener.from_history`, and passes it to `Recommender.recommend`. The rules it carries:

- recently served tracks are not offered again (the store keeps the last `MOODRING_RECENT_MEMORY` track ids);
- "not for me" on a reply turns down each of its tracks for good, and an artist with `ARTIST_DISLIKES_TO_BAN`
  turned-down tracks is not offered either;
- "more like this" pulls the emotion's (valence, energy) target toward an exponential moving average of the liked
  tracks, more firmly the more the user has liked (`Listener.target`);
- turned-down tracks also move the target: away from them, toward the recent tracks the user kept, so that
  similar songs stop coming, not only the same ones (`Listener.target`); the ranking then weighs fit over
  popularity for that user (`ranking.POPULARITY_WEIGHT_AVOIDING`).

A track's latest reaction wins: liking a song once turned down (the `popularity` ranking may offer it again)
lifts its ban.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from moodring.store import FeedbackRow

ARTIST_DISLIKES_TO_BAN = 2
"""Turned-down tracks of one artist after which that artist is not offered to the user again."""

LIKE_SMOOTHING = 0.2
"""Weight of each newly liked track in the moving average of liked (valence, energy)."""

MAX_LIKE_PULL = 0.6
"""The furthest likes move the target from the strategy's point toward the liked average (1 = all the way)."""

RECENT_DISLIKES = 15
"""The newest turned-down tracks (three replies) whose mean (valence, energy) the target moves away from."""

AVOID_STEP = 1.0
"""How far, in (valence, energy) units, the target moves from what was turned down toward what was kept; as far as
the unit square allows, so that the next reply tests the new direction clearly."""


@dataclass(frozen=True)
class Listener:
    """A listener's history, reduced to what ranking needs; immutable, so one may be shared across threads."""

    recent_track_ids: frozenset[str] = frozenset()
    disliked_track_ids: frozenset[str] = frozenset()
    disliked_artists: frozenset[str] = frozenset()  # casefolded
    avoided_point: tuple[float, float] | None = None  # mean (valence, energy) of the newest turned-down tracks
    liked_point: tuple[float, float] | None = None  # moving average of liked tracks' (valence, energy)
    like_pull: float = 0.0  # 0..MAX_LIKE_PULL: how far the target moves toward `liked_point`

    @classmethod
    def from_history(cls, recent_track_ids: Iterable[str], feedback: Iterable[FeedbackRow]) -> Listener:
        """Build from the store: the user's recent track ids (any order) and all their feedback rows (any order)."""
        latest: dict[str, FeedbackRow] = {}
        liked_point: tuple[float, float] | None = None
        liked_count = 0
        for reaction in sorted(feedback, key=lambda row: row.at):
            latest.pop(reaction.track_id, None)  # re-insert, so that `latest` stays in time order
            latest[reaction.track_id] = reaction
            if reaction.liked:
                point = (float(reaction.valence), float(reaction.energy))
                liked_point = point if liked_point is None else _moved(liked_point, point, LIKE_SMOOTHING)
                liked_count += 1
        disliked = [reaction for reaction in latest.values() if not reaction.liked]
        per_artist = Counter(reaction.artist.casefold() for reaction in disliked)
        banned_artists = frozenset(artist for artist, count in per_artist.items() if count >= ARTIST_DISLIKES_TO_BAN)
        newest = [(float(row.valence), float(row.energy)) for row in disliked[-RECENT_DISLIKES:]]
        return cls(
            recent_track_ids=frozenset(recent_track_ids),
            disliked_track_ids=frozenset(reaction.track_id for reaction in disliked),
            disliked_artists=banned_artists,
            avoided_point=_mean(newest) if newest else None,
            liked_point=liked_point,
            like_pull=MAX_LIKE_PULL * (1.0 - (1.0 - LIKE_SMOOTHING) ** liked_count),
        )

    @property
    def kept_track_ids(self) -> frozenset[str]:
        """Recent tracks the listener did not turn down."""
        return self.recent_track_ids - self.disliked_track_ids

    def target(
        self, valence: float, energy: float, kept_points: Sequence[tuple[float, float]] = ()
    ) -> tuple[float, float]:
        """The strategy's (valence, energy) target for an emotion, moved by what this listener liked and disliked.

        Likes pull it toward their moving average. Once something was turned down, it moves `AVOID_STEP` from the
        turned-down tracks' mean toward the mean of `kept_points` (the kept recent tracks), or straight away from
        the turned-down mean when nothing was kept: a reply is turned down as a whole, and only the contrast with
        kept replies tells which of its songs were the trouble (a listener who turns down loud replies keeps quiet
        ones).
        """
        point = (valence, energy)
        if self.liked_point is not None:
            point = _moved(point, self.liked_point, self.like_pull)
        if self.avoided_point is None:
            return point
        kept = _mean(kept_points) if kept_points else point
        away = (kept[0] - self.avoided_point[0], kept[1] - self.avoided_point[1])
        length = math.hypot(*away)
        if length == 0.0:
            return point
        return (
            min(max(point[0] + AVOID_STEP * away[0] / length, 0.0), 1.0),
            min(max(point[1] + AVOID_STEP * away[1] / length, 0.0), 1.0),
        )

    def excludes(self, track_id: str, artist_key: str) -> bool:
        """Whether a track may never be offered to this listener (turned down, or its artist is)."""
        return track_id in self.disliked_track_ids or artist_key in self.disliked_artists


def _mean(points: Sequence[tuple[float, float]]) -> tuple[float, float]:
    return (sum(point[0] for point in points) / len(points), sum(point[1] for point in points) / len(points))


def _moved(point: tuple[float, float], toward: tuple[float, float], share: float) -> tuple[float, float]:
    return (point[0] + share * (toward[0] - point[0]), point[1] + share * (toward[1] - point[1]))
