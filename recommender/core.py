"""`Recommender`: from an emotion to five tracks (and a playlist link), fast, thread-safe, Spotify-proof."""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from moodring.recommender.ranking import JITTER, blend_scores
from moodring.recommender.spotify_client import SpotifyGateway, track_url
from moodring.recommender.strategies import STRATEGIES, Strategy, get_strategy
from moodring.recommender.table import SongTable

from moodring import EMOTIONS
from moodring.errors import ConfigError, UnknownEmotionError
from moodring.settings import Settings

log = logging.getLogger(__name__)

RANKINGS: tuple[str, ...] = ("popularity", "blend")
"""`popularity`: the notebook's top songs of the mood. `blend`: see `recommender.ranking`."""
MAX_TRACKS = 50
CANDIDATES_PER_TRACK = 2
"""Live popularity is asked for this many local candidates per requested track, then re-ranked."""
MAX_REMEMBERED_USERS = 10_000
"""Per-user memory of recent tracks is kept for at most this many users (least recent dropped)."""


@dataclass(frozen=True)
class Track:
    """One recommended song; `popularity` is Spotify's 0-100, live when Spotify gave it, else the table's."""

    id: str
    name: str
    artist: str
    popularity: int | None
    url: str

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

    `recommend` may be called from many threads at once. It raises only for bad input
    (`UnknownEmotionError`, `ConfigError`); Spotify trouble costs at most `settings.spotify_timeout`
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
        _check_ranking(settings.ranking)
        self.table = table
        self.settings = settings
        self.spotify = spotify
        self._clock = clock
        self._lock = threading.Lock()
        self._recent: OrderedDict[str, deque[str]] = OrderedDict()
        self._user_strategies: dict[str, str] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> Recommender:
        """Load the song table (`MOODRING_SONGS`, default: the embedded one); Spotify only when configured."""
        table = SongTable.load(settings.songs)
        spotify = SpotifyGateway.from_settings(settings)
        log.debug(
            "recommender: %d songs from %s; Spotify %s",
            len(table),
            table.source,
            "off (no client id)"
            if spotify is None
            else "on" + ("" if spotify.playlists_enabled else ", playlists off until `moodring spotify-login`"),
        )
        return cls(table, settings, spotify)

    @property
    def strategies(self) -> tuple[str, ...]:
        """Names of the emotion → mood strategies a caller may choose."""
        return tuple(STRATEGIES)

    def set_user_strategy(self, user_id: int | str, strategy: str | None) -> None:
        """Make `strategy` this user's default (None: back to `MOODRING_STRATEGY`)."""
        key = str(user_id)
        with self._lock:
            if strategy is None:
                self._user_strategies.pop(key, None)
            else:
                self._user_strategies[key] = get_strategy(strategy).name

    def user_strategy(self, user_id: int | str | None) -> str:
        """The strategy used for this user when a call names none."""
        with self._lock:
            return self._user_strategies.get(str(user_id), self.settings.strategy)

    def recommend(
        self,
        emotion: str,
        k: int = 5,
        strategy: str | None = None,
        user_id: int | str | None = None,
        with_playlist: bool = False,
        ranking: str | None = None,
    ) -> Recommendation:
        """The top `k` tracks for `emotion`, and the emotion's refreshed playlist link if asked."""
        deadline = self._clock() + self.settings.spotify_timeout
        emotion_name = _check_emotion(emotion)
        chosen = get_strategy(strategy or self.user_strategy(user_id))
        ranking = _check_ranking(ranking or self.settings.ranking)
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_TRACKS:
            raise ConfigError(f"the number of tracks must be between 1 and {MAX_TRACKS}, got {k!r}")
        target = chosen.target(emotion_name)
        rows = self.table.by_mood[target.mood]
        popularity = self.table.popularity

        user_key = None if user_id is None else str(user_id)
        if ranking == "popularity":
            candidates = rows[: k * CANDIDATES_PER_TRACK]
        else:
            scores = self._blend(rows, popularity[rows], chosen, emotion_name, user_key)
            candidates = self._pick_varied(rows[np.argsort(-scores, kind="stable")], k * CANDIDATES_PER_TRACK, user_key)

        problems = []
        live: dict[str, int | None] = {}
        if self.spotify is not None:
            live, problem = self.spotify.popularity(self.table.ids[candidates].tolist(), deadline)
            if problem:
                problems.append(f"live popularity incomplete ({problem})")
        merged = popularity[candidates].copy()
        for position, row in enumerate(candidates):
            value = live.get(self.table.ids[row])
            if value is not None:
                merged[position] = value
        if live:  # Spotify moved some songs: rank the candidates again with the live values
            if ranking == "popularity":
                order = np.argsort(-np.nan_to_num(merged, nan=-1.0), kind="stable")
            else:
                order = np.argsort(-self._blend(candidates, merged, chosen, emotion_name, user_key), kind="stable")
            candidates, merged = candidates[order], merged[order]
        tracks = [self._track(row, value) for row, value in zip(candidates[:k], merged[:k], strict=False)]
        if ranking == "blend" and user_key is not None:
            self._remember(user_key, [track.id for track in tracks])

        url = None
        if with_playlist and self.spotify is not None and tracks:
            url, problem = self.spotify.playlist(emotion_name, [track.id for track in tracks], deadline)
            if problem:
                problems.append(f"no playlist link ({problem})")
        if problems:
            log.warning("Spotify: %s; answered from the local song table", "; ".join(problems))
        return Recommendation(emotion=emotion_name, mood=target.mood, tracks=tracks, playlist_url=url)

    def _track(self, row: int, popularity: float) -> Track:
        track_id = str(self.table.ids[row])
        return Track(
            id=track_id,
            name=str(self.table.names[row]),
            artist=str(self.table.artists[row]),
            popularity=None if np.isnan(popularity) else int(popularity),
            url=track_url(track_id),
        )

    def _blend(
        self, rows: np.ndarray, popularity: np.ndarray, strategy: Strategy, emotion: str, user_key: str | None
    ) -> np.ndarray:
        target = strategy.target(emotion)
        user_hash = 0 if user_key is None else zlib.crc32(user_key.encode())
        generator = np.random.default_rng([self.settings.seed, user_hash, EMOTIONS.index(emotion)])
        jitter = generator.random(len(self.table))[rows] * JITTER  # indexed by row: same nudge per song
        return blend_scores(
            popularity, self.table.valence[rows], self.table.energy[rows], (target.valence, target.energy), jitter
        )

    def _pick_varied(self, ordered: np.ndarray, count: int, user_key: str | None) -> np.ndarray:
        """Best rows first, one per artist, skipping the user's recent tracks while enough others remain."""
        with self._lock:
            recent = set(self._recent.get(user_key, ())) if user_key is not None else set()
        picked: list[int] = []
        artists: set[str] = set()
        for allow_recent, allow_same_artist in ((False, False), (True, False), (True, True)):
            for row in ordered:
                if len(picked) == count:
                    return np.asarray(picked, dtype=np.intp)
                artist = str(self.table.artists[row]).casefold()
                if row in picked or (not allow_recent and self.table.ids[row] in recent):
                    continue
                if not allow_same_artist and artist in artists:
                    continue
                picked.append(int(row))
                artists.add(artist)
        return np.asarray(picked, dtype=np.intp)

    def _remember(self, user_key: str, track_ids: list[str]) -> None:
        if self.settings.recent_memory == 0:
            return
        with self._lock:
            memory = self._recent.pop(user_key, None) or deque(maxlen=self.settings.recent_memory)
            memory.extend(track_ids)
            self._recent[user_key] = memory  # most recently served user last
            while len(self._recent) > MAX_REMEMBERED_USERS:
                self._recent.popitem(last=False)

    def close(self) -> None:
        """Release Spotify's worker threads; the recommender must not be used afterwards."""
        if self.spotify is not None:
            self.spotify.close()

    def __enter__(self) -> Recommender:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _check_emotion(emotion: str) -> str:
    name = str(emotion).strip().lower()
    if name not in EMOTIONS:
        raise UnknownEmotionError(f"unknown emotion {emotion!r}; expected one of: {', '.join(EMOTIONS)}")
    return name


def _check_ranking(ranking: str) -> str:
    if ranking not in RANKINGS:
        raise ConfigError(f"unknown ranking {ranking!r}; expected one of: {', '.join(RANKINGS)}")
    return ranking
