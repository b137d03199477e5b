"""`Recommender`: from an emotion to five tracks (and a playlist link), fast, thread-safe, Spotify-proof.

The recommender holds no per-user state: what it knows about a listener comes in with each call as a `Listener`
(built by the caller from the store), so answers survive restarts and one instance serves every thread.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from moodring.recommender.listener import Listener
from moodring.recommender.playlists import PlaylistIds
from moodring.recommender.ranking import POPULARITY_WEIGHT, POPULARITY_WEIGHT_AVOIDING, varied_scores
from moodring.recommender.spotify_client import SpotifyGateway, track_url
from moodring.recommender.strategies import get_strategy
from moodring.recommender.table import SongTable

from moodring import EMOTIONS
from moodring.errors import ConfigError, UnknownEmotionError
from moodring.settings import Settings

log = logging.getLogger(__name__)

RANKINGS: tuple[str, ...] = ("varied", "popularity")
"""`varied` (the default): popular songs near the emotion's target, one per artist, shaped by the `Listener`.
`popularity`: the notebook's fixed top songs of the mood; a listener's history does not apply to it."""
DEPRECATED_RANKINGS: dict[str, str] = {"blend": "varied"}
"""Old ranking names still accepted, with a warning, and what they now mean."""
MAX_TRACKS = 50
CANDIDATES_PER_TRACK = 2
"""Live popularity is asked for this many local candidates per requested track, then re-ranked."""


@dataclass(frozen=True)
class Track:
    """One recommended song; `popularity` is Spotify's 0-100, live when Spotify gave it, else the table's.

    `valence` and `energy` (0..1, from the song table) let a caller record feedback on a reply without the table.
    """

    id: str
    name: str
    artist: str
    popularity: int | None
    url: str
    valence: float
    energy: float

    def to_dict(self) -> dict[str, Any]:
        """The track as in `moodring recommend --json`."""
        return asdict(self)


@dataclass(frozen=True)
class Recommendation:
    """The answer for one emotion: its mood, the tracks in order, and the emotion's playlist link if any."""

    emotion: str
    mood: str
    tracks: list[Track] = field(default_factory=list)
    playlist_url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """`{"emotion", "mood", "tracks": [...], "playlist_url"}`, the `--json` shape."""
        return {
            "emotion": self.emotion,
            "mood": self.mood,
            "tracks": [track.to_dict() for track in self.tracks],
            "playlist_url": self.playlist_url,
        }


class Recommender:
    """Recommends tracks from a song table loaded once; optional Spotify for live data and playlists.

    `recommend` may be called from many threads at once: it reads only immutable state. It raises only for bad
    input (`UnknownEmotionError`, `ConfigError`); Spotify trouble costs at most `settings.spotify_timeout`
    seconds and one warning, and the answer then comes from the local table.
    """

    def __init__(
        self,
        table: SongTable,
        settings: Settings,
        spotify: SpotifyGateway | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        get_strategy(settings.strategy)  # a bad default should fail at start, not on the first selfie
        self.default_ranking = check_ranking(settings.ranking, "MOODRING_RANKING")
        self.table = table
        self.settings = settings
        self.spotify = spotify
        self._clock = clock
        self._song_bits = np.random.default_rng(settings.seed).integers(
            0, np.iinfo(np.uint64).max, size=len(table), dtype=np.uint64, endpoint=True
        )
        self._song_bits.flags.writeable = False

    @classmethod
    def from_settings(cls, settings: Settings, playlist_ids: Callable[[str], PlaylistIds] | None = None) -> Recommender:
        """Load the song table (`MOODRING_SONGS`, default: the embedded one); Spotify only when configured.

        `playlist_ids(account)` keeps each emotion's playlist id (the bot and CLI pass the database's).
        """
        table = SongTable.load(settings.songs)
        spotify = SpotifyGateway.from_settings(settings, playlist_ids)
        log.debug(
            "recommender: %d songs from %s; Spotify %s",
            len(table),
            table.source,
            "off (no client id)"
            if spotify is None
            else "on" + ("" if spotify.playlists_enabled else ", playlists off until `moodring spotify-login`"),
        )
        return cls(table, settings, spotify)

    def recommend(
        self,
        emotion: str,
        k: int = 5,
        *,
        strategy: str | None = None,
        ranking: str | None = None,
        listener: Listener | None = None,
        user_key: str | None = None,
        with_playlist: bool = False,
    ) -> Recommendation:
        """The top `k` tracks for `emotion`, and the emotion's refreshed playlist link if asked.

        `strategy` and `ranking` default to `MOODRING_STRATEGY` and `MOODRING_RANKING`. `listener` (None: no
        memory) shapes the `varied` ranking; `user_key` (e.g. "discord:<id>") seeds its per-user variety, so that
        users differ while one user's answer depends only on their history.
        """
        deadline = self._clock() + self.settings.spotify_timeout
        emotion_name = check_emotion(emotion)
        chosen = get_strategy(strategy or self.settings.strategy)
        ranking = self.default_ranking if ranking is None else check_ranking(ranking, "the ranking")
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_TRACKS:
            raise ConfigError(f"the number of tracks must be between 1 and {MAX_TRACKS}, got {k!r}")
        target = chosen.target(emotion_name)
        rows = self.table.by_mood[target.mood]
        popularity = self.table.popularity
        listener = listener or Listener()

        if ranking == "popularity":
            score = None
            candidates = rows[: k * CANDIDATES_PER_TRACK]
        else:
            score = self._varied_score(target.valence, target.energy, listener, user_key, emotion_name)
            ordered = rows[np.argsort(-score(rows, popularity[rows]), kind="stable")]
            candidates = self._pick_varied(ordered, k * CANDIDATES_PER_TRACK, listener)

        problems = []
        merged = popularity[candidates].copy()
        if self.spotify is not None and len(candidates):
            candidates, merged, problem = self._with_live_popularity(candidates, merged, score, deadline)
            if problem:
                problems.append(f"live popularity incomplete ({problem})")
        tracks = [self._track(row, value) for row, value in zip(candidates[:k], merged[:k], strict=False)]

        url = None
        if with_playlist and self.spotify is not None and tracks:
            url, problem = self.spotify.playlist(emotion_name, [track.id for track in tracks], deadline)
            if problem:
                problems.append(f"no playlist link ({problem})")
        if problems:
            log.warning("Spotify: %s; answered from the local song table", "; ".join(problems))
        return Recommendation(emotion=emotion_name, mood=target.mood, tracks=tracks, playlist_url=url)

    def _varied_score(
        self, valence: float, energy: float, listener: Listener, user_key: str | None, emotion: str
    ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """The `varied` ranking's score of table rows given their popularity, aimed where the listener leans."""
        row_of = self.table.row_of
        kept = [row_of[track_id] for track_id in listener.kept_track_ids if track_id in row_of]
        kept_points = list(zip(self.table.valence[kept].tolist(), self.table.energy[kept].tolist(), strict=True))
        point = listener.target(valence, energy, kept_points)
        weight = POPULARITY_WEIGHT if listener.avoided_point is None else POPULARITY_WEIGHT_AVOIDING

        def score(rows: np.ndarray, popularity: np.ndarray) -> np.ndarray:
            return varied_scores(
                popularity,
                self.table.valence[rows],
                self.table.energy[rows],
                point,
                self._nudges(rows, user_key, emotion),
                weight,
            )

        return score

    def _with_live_popularity(
        self,
        candidates: np.ndarray,
        popularity: np.ndarray,
        score: Callable[[np.ndarray, np.ndarray], np.ndarray] | None,
        deadline: float,
    ) -> tuple[np.ndarray, np.ndarray, str | None]:
        """The candidates ranked again with Spotify's live popularity where it differs from the table's
        (`score` None: by popularity alone), their popularity, and what went wrong asking, if anything."""
        live, problem = self.spotify.popularity(self.table.ids[candidates].tolist(), deadline)
        if not live:
            return candidates, popularity, problem
        merged = popularity.copy()
        for position, row in enumerate(candidates):
            value = live.get(self.table.ids[row])
            if value is not None:
                merged[position] = value
        if score is None:
            order = np.argsort(-np.nan_to_num(merged, nan=-1.0), kind="stable")
        else:
            order = np.argsort(-score(candidates, merged), kind="stable")
        return candidates[order], merged[order], problem

    def _track(self, row: int, popularity: float) -> Track:
        track_id = str(self.table.ids[row])
        return Track(
            id=track_id,
            name=str(self.table.names[row]),
            artist=str(self.table.artists[row]),
            popularity=None if np.isnan(popularity) else int(popularity),
            url=track_url(track_id),
            valence=float(self.table.valence[row]),
            energy=float(self.table.energy[row]),
        )

    def _nudges(self, rows: np.ndarray, user_key: str | None, emotion: str) -> np.ndarray:
        """A 0..1 nudge per row, the same for one seed, user and emotion, unrelated between users.

        Each song's seeded random bits are mixed with the user's and emotion's with splitmix64's finaliser: a few
        vectorised integer steps, where building a numpy generator per call would cost more than the ranking.
        """
        user_hash = 0 if user_key is None else zlib.crc32(user_key.encode())
        bits = self._song_bits[rows] ^ np.uint64((user_hash << 8) | EMOTIONS.index(emotion))
        bits ^= bits >> np.uint64(30)
        bits *= np.uint64(0xBF58476D1CE4E5B9)
        bits ^= bits >> np.uint64(27)
        bits *= np.uint64(0x94D049BB133111EB)
        bits ^= bits >> np.uint64(31)
        return (bits >> np.uint64(11)).astype(float) / float(1 << 53)

    def _pick_varied(self, ordered: np.ndarray, count: int, listener: Listener) -> np.ndarray:
        """Best rows first, one per artist, never a turned-down track or artist, no recent track while others remain.

        Rows passed over for being recent or a second song of an artist are used, in that order, only when a table
        is too small for the rules (a mood with few songs or artists).
        """
        ids, artist_keys = self.table.ids, self.table.artist_keys
        recent, banned_ids, banned_artists = (
            listener.recent_track_ids,
            listener.disliked_track_ids,
            listener.disliked_artists,
        )
        picked: list[int] = []
        artists: set[str] = set()
        passed_over: list[int] = []
        for row in ordered.tolist():
            track_id, artist = ids[row], artist_keys[row]
            if track_id in banned_ids or artist in banned_artists:
                continue
            if track_id in recent or artist in artists:
                passed_over.append(row)
                continue
            picked.append(row)
            artists.add(artist)
            if len(picked) == count:
                return np.asarray(picked, dtype=np.intp)
        for row in passed_over:  # recent songs of new artists first, then anything left, best first
            if len(picked) < count and artist_keys[row] not in artists:
                picked.append(row)
                artists.add(artist_keys[row])
        taken = set(picked)
        picked += [row for row in passed_over if row not in taken][: count - len(picked)]
        return np.asarray(picked, dtype=np.intp)

    def close(self) -> None:
        """Release Spotify's worker threads; the recommender must not be used afterwards."""
        if self.spotify is not None:
            self.spotify.close()

    def __enter__(self) -> Recommender:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def check_emotion(emotion: str) -> str:
    """The emotion's canonical name; `UnknownEmotionError` names the seven."""
    name = str(emotion).strip().lower()
    if name not in EMOTIONS:
        raise UnknownEmotionError(f"unknown emotion {emotion!r}; expected one of: {', '.join(EMOTIONS)}")
    return name


def check_ranking(ranking: str, source: str) -> str:
    """The ranking's current name; an old name is accepted with a warning naming `source`, where it was set."""
    if ranking in DEPRECATED_RANKINGS:
        current = DEPRECATED_RANKINGS[ranking]
        log.warning("%s %r is deprecated and now means %r; use %r", source, ranking, current, current)
        return current
    if ranking not in RANKINGS:
        raise ConfigError(f"unknown ranking {ranking!r}; expected one of: {', '.join(RANKINGS)}")
    return ranking
