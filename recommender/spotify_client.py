"""Spotify, as a best-effort extra: live popularity and one playlist per emotion, within a time budget.

Nothing here raises because of Spotify. Every public method answers within the caller's deadline
with what arrived in time plus a one-line reason when something did not, and the recommender then
uses its local table. The rules that keep Spotify (and us) safe:

- spotipy gets a `requests` session without retries: its own would retry POSTs on 5xx, and a
  retried `POST /me/playlists` whose first answer was lost makes a second playlist. We decide
  ourselves (`PausePolicy`): 429 waits `Retry-After` (capped by `MOODRING_SPOTIFY_MAX_PAUSE`; the spec
  promises no such header, so without one `DEFAULT_RETRY_AFTER`), and meanwhile no call goes out; a
  timeout pauses calls briefly; a login Spotify refuses (401 again after one refresh, or 403) is
  logged once, then no call goes out for `REFUSED_PAUSE` or until the token file changes.
- Only the 2026 endpoints: `GET /tracks/{id}` one by one (spotipy's `tracks()` calls the removed
  batch endpoint), `GET /me`, and the playlist endpoints of `recommender.playlists`.
- Calls run on a small pool; the caller waits at most until its deadline and unfinished lookups go
  on in the background, filling the popularity cache (TTL `MOODRING_POPULARITY_TTL`) for next time.
- `TrackObject.popularity` is deprecated in the 2026 spec: live popularity is a bonus that may vanish,
  and a track without it keeps the song table's value.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures import wait as wait_futures
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import requests
import spotipy
from moodring.recommender.playlists import JsonPlaylistIds, PlaylistIds, PlaylistKeeper
from moodring.recommender.spotify_auth import ClientToken, TokenSource, UserToken, token_file_signature, uses_pkce
from spotipy.oauth2 import SpotifyOauthError

from moodring.errors import NotFound, SpotifyRefused, SpotifyUnavailable
from moodring.settings import Settings

log = logging.getLogger(__name__)

POOL_WORKERS = 4
OUTAGE_PAUSE = 10.0
"""Seconds no call goes out after a timeout or refused app credentials (capped like Retry-After), so a
slow or misconfigured Spotify does not make every answer wait the whole budget."""
REFUSED_PAUSE = 600.0
"""Seconds no call goes out after Spotify refused the login, unless the token file changes first."""
DEFAULT_RETRY_AFTER = 5.0
"""Pause after a 429 that carries no usable Retry-After header."""
RATE_LIMITED_TRIES = 3
"""Requests one call makes while Spotify keeps answering 429 (each after its Retry-After)."""

T = TypeVar("T")


def track_url(track_id: str) -> str:
    """The public web link of a track."""
    return f"https://open.spotify.com/track/{track_id}"


def playlist_url(playlist_id: str) -> str:
    """The public web link of a playlist."""
    return f"https://open.spotify.com/playlist/{playlist_id}"


class PausePolicy:
    """When no Spotify call may go out, and why; shared by every pool thread.

    Two kinds of pause: a timed one (429, timeouts), which a caller may wait out when it ends before
    its deadline, and a refusal, which only a new login (the token file changes) or `REFUSED_PAUSE`
    lifts, and during which callers give up at once and quietly, since the reason was logged once.
    """

    def __init__(self, clock: Callable[[], float], max_pause: float, token_file: Path):
        self._clock = clock
        self._max_pause = max_pause
        self._token_file = token_file
        self._lock = threading.Lock()
        self._until = 0.0
        self._reason = ""
        self._refused_until = 0.0
        self._refused_login: tuple[int, int, int] | None = None
        self._refused_reason = ""

    def pause(self, seconds: float, reason: str) -> None:
        """No call goes out for `seconds` (at most MOODRING_SPOTIFY_MAX_PAUSE)."""
        seconds = min(max(seconds, 0.0), self._max_pause)
        with self._lock:
            until = self._clock() + seconds
            if until > self._until:
                self._until, self._reason = until, reason

    def refuse(self, reason: str) -> bool:
        """No call goes out until the login changes or `REFUSED_PAUSE` ends; True when newly refused."""
        with self._lock:
            fresh = not self._refused_now()
            if fresh:
                self._refused_reason = reason
            self._refused_until = self._clock() + REFUSED_PAUSE
            self._refused_login = token_file_signature(self._token_file)
            return fresh

    def refused(self) -> str | None:
        """Why calls are refused, or None when they may go out."""
        with self._lock:
            return self._refused_reason if self._refused_now() else None

    def _refused_now(self) -> bool:
        if self._refused_until <= self._clock():
            return False
        if token_file_signature(self._token_file) != self._refused_login:  # a new `moodring spotify-login`
            self._refused_until = 0.0
            return False
        return True

    @property
    def until(self) -> float:
        """When the timed pause ends (in the clock's time)."""
        return self._until

    def message(self) -> str:
        """The one-line reason of the timed pause, with the time left."""
        return f"{self._reason}; calls paused for {max(0.0, self._until - self._clock()):.1f} s"


class SpotifyGateway:
    """Live popularity and per-emotion playlists; thread-safe, bounded in time, never raising."""

    def __init__(
        self,
        settings: Settings,
        clock: Callable[[], float] = time.monotonic,
        playlist_ids: Callable[[str], PlaylistIds] | None = None,
    ):
        """`playlist_ids(account)` gives the emotion → playlist store (default: `MOODRING_PLAYLIST_STORE`)."""
        self._settings = settings
        self._clock = clock
        self._api_url = settings.spotify_api_url.rstrip("/") + "/"
        self._user_token = UserToken(settings)
        # Without a client secret (PKCE) the catalogue is read with the user's own token.
        self._catalog_token: TokenSource = self._user_token if uses_pkce(settings) else ClientToken(settings)
        self._pauses = PausePolicy(clock, settings.spotify_max_pause, settings.spotify_token_cache)
        self._playlists = PlaylistKeeper(
            partial(self._call, self._user_token),
            playlist_ids or partial(JsonPlaylistIds, settings.playlist_store),
        )
        self._pool = ThreadPoolExecutor(max_workers=POOL_WORKERS, thread_name_prefix="moodring-spotify")
        self._local = threading.local()
        self._lock = threading.RLock()  # RLock: a done-callback may run in the thread holding it
        # id -> (value, expires at); bounded by the song table, whose ids are the only ones asked for
        self._popularity: dict[str, tuple[int | None, float]] = {}
        self._in_flight: dict[str, Future] = {}
        self._closed = False

    @classmethod
    def from_settings(
        cls, settings: Settings, playlist_ids: Callable[[str], PlaylistIds] | None = None
    ) -> SpotifyGateway | None:
        """A gateway when a client id is configured, else None (local table only)."""
        if not settings.spotify_client_id:
            return None
        return cls(settings, playlist_ids=playlist_ids)

    @property
    def playlists_enabled(self) -> bool:
        """Whether a user login exists (`moodring spotify-login` wrote the token cache)."""
        return self._settings.spotify_token_cache.is_file()

    # --- popularity -----------------------------------------------------------------------------

    def popularity(self, track_ids: Iterable[str], deadline: float) -> tuple[dict[str, int | None], str | None]:
        """Live popularity of the tracks that answered by `deadline` (None: Spotify has no value).

        Returns the values and, if some track did not get one, the reason why (None when the reason
        was logged already: a refused login).
        """
        found: dict[str, int | None] = {}
        pending: dict[str, Future] = {}
        problem = None
        if self._catalog_token is self._user_token and not self.playlists_enabled:
            return found, None  # PKCE without a login yet: nothing to ask with
        now = self._clock()
        with self._lock:
            for track_id in dict.fromkeys(track_ids):
                cached = self._popularity.get(track_id)
                if cached and cached[1] > now:
                    found[track_id] = cached[0]
                    continue
                future = self._in_flight.get(track_id)
                if future is None:
                    if self._pauses.refused():
                        continue
                    if self._pauses.until >= deadline:
                        problem = self._pauses.message()
                        continue
                    future = self._submit(self._fetch_popularity, track_id, deadline)
                    self._in_flight[track_id] = future
                    future.add_done_callback(lambda _, key=track_id: self._forget_in_flight(key))
                pending[track_id] = future
        if pending:
            wait_futures(pending.values(), timeout=max(0.0, deadline - self._clock()))
        for track_id, future in pending.items():
            if not future.done():
                problem = problem or f"no answer within {self._settings.spotify_timeout:g} s"
            elif future.cancelled():
                problem = problem or "the recommender is closing"
            elif isinstance(future.exception(), SpotifyRefused):
                continue
            elif future.exception() is not None:
                problem = problem or str(future.exception())
            else:
                found[track_id] = future.result()
        return found, problem

    def _forget_in_flight(self, track_id: str) -> None:
        with self._lock:
            self._in_flight.pop(track_id, None)

    def _fetch_popularity(self, track_id: str, deadline: float) -> int | None:
        try:
            track = self._call(self._catalog_token, lambda client: client.track(track_id), deadline)
        except NotFound:
            track = None
        value = track.get("popularity") if isinstance(track, dict) else None
        popularity = value if isinstance(value, int) and 0 <= value <= 100 else None
        with self._lock:
            self._popularity[track_id] = (popularity, self._clock() + self._settings.popularity_ttl)
        return popularity

    # --- playlists ------------------------------------------------------------------------------

    def playlist(self, emotion: str, track_ids: list[str], deadline: float) -> tuple[str | None, str | None]:
        """Link of the emotion's playlist, now starting with `track_ids`; (None, reason) if not in time."""
        if not self.playlists_enabled or self._pauses.refused():
            return None, None
        if self._pauses.until >= deadline:
            return None, self._pauses.message()
        future = self._submit(self._playlists.put_on_top, emotion, track_ids, deadline)
        try:
            return playlist_url(future.result(timeout=max(0.0, deadline - self._clock()))), None
        except FutureTimeout:
            return None, f"playlist not ready within {self._settings.spotify_timeout:g} s"
        except SpotifyRefused:
            return None, None  # logged once when the refusal began
        except SpotifyUnavailable as exc:
            return None, str(exc)
        except CancelledError:
            return None, "the recommender is closing"
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            return None, f"unexpected answer from Spotify ({type(exc).__name__}: {exc})"
        except OSError as exc:  # the playlist store could not be written
            return None, f"cannot save the playlist id in {self._settings.playlist_store}: {exc.strerror}"

    # --- one call, with the pause rules ------------------------------------------------------------

    def _submit(self, fn: Callable[..., T], *args: Any) -> Future:
        if self._closed:
            future: Future = Future()
            future.set_exception(SpotifyUnavailable("recommender is closed"))
            return future
        return self._pool.submit(fn, *args)

    def _thread_client(self, token: TokenSource) -> spotipy.Spotify:
        """One spotipy client (and requests session) per pool thread and token: sessions are not thread-safe."""
        clients = self._local.__dict__.setdefault("clients", {})
        client = clients.get(id(token))
        if client is None:
            client = spotipy.Spotify(
                auth_manager=token,
                requests_session=requests.Session(),  # no retries: see the module docstring
                requests_timeout=self._settings.spotify_timeout,
            )
            client.prefix = self._api_url
            clients[id(token)] = client
        return client

    def _call(self, token: TokenSource, request: Callable[[spotipy.Spotify], T], deadline: float) -> T:
        """One request with `token`: waits out a pause that ends before `deadline`, refreshes a rejected
        token once, and turns every failure into `SpotifyUnavailable` (or a subclass)."""
        refreshed = False
        rate_limited = 0
        while True:
            refused = self._pauses.refused()
            if refused:
                raise SpotifyRefused(refused)
            now = self._clock()
            if self._pauses.until > now:
                if self._pauses.until >= deadline:
                    raise SpotifyUnavailable(self._pauses.message())
                time.sleep(self._pauses.until - now)
                continue
            try:
                return request(self._thread_client(token))
            except spotipy.SpotifyException as exc:
                status = exc.http_status
                if status == 429:
                    self._pauses.pause(_retry_after(exc.headers), "rate limited (HTTP 429)")
                    rate_limited += 1
                    if rate_limited < RATE_LIMITED_TRIES:
                        continue
                    raise SpotifyUnavailable(f"rate limited (HTTP 429) {rate_limited} times in a row") from None
                if status == 401 and not refreshed:
                    token.invalidate()
                    refreshed = True
                    continue
                if status in (401, 403):
                    self._refuse(f"Spotify refused the login (HTTP {status})")
                if status == 404:
                    raise NotFound("Spotify answered HTTP 404") from None
                raise SpotifyUnavailable(f"Spotify answered HTTP {status}") from None
            except SpotifyRefused as exc:  # the refresh itself was refused
                self._refuse(str(exc))
            except SpotifyOauthError as exc:
                self._pauses.pause(OUTAGE_PAUSE, f"Spotify refused our credentials ({exc.error})")
                raise SpotifyUnavailable(f"Spotify refused our credentials ({exc.error})") from None
            except requests.Timeout:
                self._pauses.pause(OUTAGE_PAUSE, "Spotify timed out")
                raise SpotifyUnavailable(f"Spotify timed out after {self._settings.spotify_timeout:g} s") from None
            except requests.RequestException as exc:  # refused or cut: fails fast, so no pause needed
                raise SpotifyUnavailable(f"Spotify unreachable ({type(exc).__name__})") from None

    def _refuse(self, reason: str) -> None:
        """Pause every call and say so once; raises `SpotifyRefused` for the caller to give up quietly."""
        if self._pauses.refuse(reason):
            log.warning(
                "%s; run `moodring spotify-login` again. No Spotify calls for %d minutes or until the login changes",
                reason,
                REFUSED_PAUSE // 60,
            )
        raise SpotifyRefused(reason) from None

    def close(self) -> None:
        """Stop the pool; lookups still running end at their own request timeout."""
        self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)


def _retry_after(headers: Any) -> float:
    """Seconds from a Retry-After header (Spotify sends whole seconds; the spec does not promise one)."""
    try:
        value = float((headers or {}).get("Retry-After"))
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER
    return value if value >= 0 else DEFAULT_RETRY_AFTER
